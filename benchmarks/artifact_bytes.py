"""Where the bytes of fp32 and int8 artifacts go, and how far from 4× smaller each int8 artifact can get.

    .venv/bin/python benchmarks/artifact_bytes.py --artifacts fp32=out/560m-16f.pte int8=out8/560m-16f-int8.pte \\
        --out benchmarks/results/artifact_bytes.json

Every byte of each ``.onnx``, ``.pte`` or OpenVINO IR (``.xml`` with its ``.bin``) goes to one (role, stored dtype)
row (``vmf_deploy.bench.artifact_bytes``).
The first artifact of each format is that format's fp32 reference. For each other one the summary gives:

- its size ÷ its reference's;
- the weights it still stores in fp32 (or fp16);
- everything that is not a conv or linear weight (graph, scales, zero points, biases, norms, constants);
- the ceiling: the reference's size ÷ (the reference's weights at one byte each + this artifact's other bytes), the
  most this artifact's layout allows once every weight is int8.

Sizes depend on the architecture and the recipe, not on the CPU or on trained values. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from vmf_deploy.bench.artifact_bytes import (
    WEIGHT_ROLES,
    ArtifactBytes,
    ArtifactBytesError,
    artifact_bytes,
    breakdown_table,
)

REPO = Path(__file__).resolve().parents[1]

FLOAT_DTYPES = ("fp32", "float", "f32", "fp16", "float16", "f16")


def summary(item: ArtifactBytes, reference: ArtifactBytes) -> dict:
    """Size ÷ the reference, float weights left, non-weight bytes, and the ceiling of its layout."""
    weights = item.role_bytes(*WEIGHT_ROLES)
    other = item.file_bytes - weights
    reference_weights_int8 = reference.role_bytes(*WEIGHT_ROLES) / 4
    return {"bytes": item.file_bytes, "smaller": reference.file_bytes / item.file_bytes,
            "float_weight_bytes": item.dtype_bytes(*FLOAT_DTYPES, roles=WEIGHT_ROLES),
            "non_weight_bytes": other, "ceiling_smaller": reference.file_bytes / (reference_weights_int8 + other)}


def parse_artifacts(pairs: list[str]) -> list[tuple[str, Path]]:
    """``NAME=PATH`` pairs, in order."""
    named = []
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"--artifacts takes NAME=PATH pairs, got {pair!r}")
        named.append((name, Path(path)))
    return named


def references(named: list[tuple[str, ArtifactBytes]]) -> dict[str, str]:
    """Format → the name of the first artifact of that format."""
    first: dict[str, str] = {}
    for name, item in named:
        first.setdefault(item.format, name)
    return first


def summaries(named: list[tuple[str, ArtifactBytes]]) -> dict[str, dict]:
    """Name → :func:`summary` against its format's reference, for every artifact that is not a reference."""
    by_name, first = dict(named), references(named)
    return {name: {"against": first[item.format], **summary(item, by_name[first[item.format]])}
            for name, item in named if first[item.format] != name}


def print_tables(named: list[tuple[str, ArtifactBytes]]) -> None:
    """The per-artifact rows, then each artifact's summary against its format's reference."""
    width = [34, 38, 8, 10, 8]
    print(" | ".join(h.ljust(w) for h, w in zip(("artifact / role", "stored as", "tensors", "MB", "share"), width)))
    for line in breakdown_table(named):
        print(" | ".join(cell.ljust(w) for cell, w in zip(line, width)))
    print("\nartifact             | against              | MB     | smaller | float weights MB | non-weight MB "
          "| ceiling")
    for name, s in summaries(named).items():
        print(f"{name:20s} | {s['against']:20s} | {s['bytes'] / 1e6:6.3f} | {s['smaller']:6.2f}× | "
              f"{s['float_weight_bytes'] / 1e6:16.3f} | {s['non_weight_bytes'] / 1e6:13.3f} | "
              f"{s['ceiling_smaller']:.2f}×")


def main(argv: list[str] | None = None) -> int:
    """Break down the artifacts, print the tables and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--artifacts", nargs="+", required=True, metavar="NAME=PATH",
                        help="each format's fp32 reference first, then the artifacts to compare with it")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/artifact_bytes.json")
    args = parser.parse_args(argv)
    named_paths = parse_artifacts(args.artifacts)
    try:
        named = [(name, artifact_bytes(path)) for name, path in named_paths]
    except ArtifactBytesError as e:
        raise SystemExit(f"artifact_bytes: {e}") from None
    print_tables(named)
    done = summaries(named)
    doc = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "references": references(named),
           "artifacts": {name: {**item.to_dict(), "summary": done.get(name)} for name, item in named}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
