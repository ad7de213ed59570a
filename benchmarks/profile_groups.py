"""Per-op profiles of ``vmf-bench --profile`` runs, summed into op groups, side by side.

    .venv/bin/vmf-bench --backend executorch-xnnpack --artifact A.pte --profile --runs 20 --json a.json
    .venv/bin/vmf-bench --backend executorch-xnnpack --artifact B.pte --profile --runs 20 --json b.json
    .venv/bin/python benchmarks/profile_groups.py fp32=a.json int8=b.json --out benchmarks/results/profile_groups.json

Each ``NAME=FILE`` is a ``vmf-bench --json`` file whose first result holds a profile (ETDump, onnxruntime's
profiler or OpenVINO's ``PERF_COUNT``). Its ops are summed into groups by name: convolutions, linears, the
attention's softmax and batch matmuls, layout ops (transposes, reshapes, slices, pads, copies), element-wise
ops, int8 ↔ fp32 conversions (``Convert``, ``QuantizeLinear`` / ``DequantizeLinear``, ``FakeQuantize``). The runs
are profiled one after the other, so compare the groups within a column and their shares, not the totals
across columns: a latency ratio comes from timing in turns (``int8_recipe_ab.py``). Prints the table and
writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "profile_groups.json"
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("int8 <-> fp32 conversion", ("convert", "quantizelinear", "dequantizelinear", "fakequantize")),
    ("attention: softmax, batch matmul", ("softmax", "batch matrix")),
    ("convolution", ("convolution", "conv")),
    ("linear", ("fully connected", "gemm", "matmul", "fullyconnected")),
    ("layout: transpose, reshape, slice, pad, copy", ("transpose", "reshape", "slice", "pad", "copy", "reorder",
                                                       "concat", "gather")),
    ("element-wise: add, mul, clamp", ("add", "multiply", "mul", "clamp", "subtract", "eltwise", "relu")),
)
"""Group name → lower-case substrings of an op name; the first group that matches wins, so ``Convert`` is a
conversion, not a convolution, and XNNPACK's ``Batch Matrix Multiply ... GEMM`` is attention, not a linear."""


def group_of(op: str) -> str:
    """The group of a profiled op name."""
    name = op.lower()
    return next((group for group, keys in GROUPS if any(key in name for key in keys)), "other (means, pooling, ...)")


def grouped(path: Path) -> dict[str, float]:
    """ms per clip of each group in the profile of a ``vmf-bench --json`` file."""
    result = json.loads(path.read_text())["results"][0]
    profile = result.get("profile")
    if not profile or "ops" not in profile:
        raise SystemExit(f"{path}: no per-op profile (run vmf-bench with --profile)")
    totals: dict[str, float] = {}
    for op in profile["ops"]:
        totals[group_of(op["op"])] = totals.get(group_of(op["op"]), 0.0) + op["total_ms"]
    return totals


def main(argv: list[str] | None = None) -> int:
    """Group each profile, print the groups side by side with their shares, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profiles", nargs="+", help="NAME=FILE: a vmf-bench --json file with a profile")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    columns: dict[str, dict[str, float]] = {}
    sources: dict[str, dict] = {}
    for item in args.profiles:
        name, sep, file = item.partition("=")
        if not sep:
            parser.error(f"{item!r}: give NAME=FILE")
        columns[name] = grouped(Path(file))
        data = json.loads(Path(file).read_text())
        sources[name] = {"file": file, "artifact": data["results"][0].get("artifact"),
                         "device": data.get("device"), "created": data.get("created")}
    first = next(iter(columns.values()))
    groups = sorted({g for c in columns.values() for g in c}, key=lambda g: -first.get(g, 0.0))
    print(f"{'ms per clip (share)':<46}" + "".join(f"{name:>20}" for name in columns))
    for group in groups:
        print(f"{group:<46}" + "".join(f"{c.get(group, 0.0):10.2f} ({c.get(group, 0.0) / sum(c.values()):5.1%})"
                                       for c in columns.values()))
    print(f"{'total':<46}" + "".join(f"{sum(c.values()):20.2f}" for c in columns.values()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                    "tool": "benchmarks/profile_groups.py", "command": " ".join(sys.argv),
                                    "sources": sources, "groups_ms": columns}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
