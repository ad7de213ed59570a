"""Which layers cost int8 its precision: the int8 gate with one more module kept fp32 at a time.

    .venv/bin/python benchmarks/int8_sensitivity.py --checkpoint runs/reference-560m-36e/last.safetensors \
        --modules blocks.0 blocks.1 blocks.0.mobile blocks.0.mobile.dw+blocks.0.mobile.expand --out s.json

A trained checkpoint is exported to int8 once per entry of ``--modules`` (plus once with the recipe as it is),
through ``vmf-export``'s pipeline, with the target's recipe (or ``--recipe``) and a ``--set`` override whose
``quantization.fp32_modules`` also lists the entry: module paths of the reference model (``blocks.0.mobile.dw``) or
class names, several joined by ``+``. Each export's int8 gate (PyTorch fp32 against the artifact on the recipe's
noise clips and the labelled held-out clips) gives the row: centered SQNR, top-1 agreement, accuracy, worst-clip
cosine and size.
No latency: the rows say where the error is made, and keeping a layer fp32 costs what its int8 kernels saved (time
that with ``benchmarks/int8_recipe_ab.py``). Writes ``benchmarks/results/int8_sensitivity.json`` (or ``--out``)
after every export, then prints the table. A row the gate refuses records the refusal's first line; with
``--accept-any`` the limits accept anything, so every row is measured (for a model the recipe's gate refuses).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from int8 import BACKENDS, REPO
from int8_recipe_ab import recipe_for

RESULTS = REPO / "benchmarks" / "results" / "int8_sensitivity.json"


def keeping_overrides(target: str, source: Path | None, extra: list[str]) -> tuple[str, ...]:
    """The ``--set`` that keeps ``extra`` fp32 besides the ``fp32_modules`` of ``source`` (default: ``target``'s
    recipe): a list replaces the recipe's, so it repeats the recipe's entries first."""
    from vmf_deploy.export.recipes import load_recipe, toml_literal
    from vmf_deploy.export.targets import get_target

    kept = load_recipe(get_target(target), source).quantization["fp32_modules"]
    return (f"quantization.fp32_modules={toml_literal([*kept, *extra])}",)


def label(extra: list[str]) -> str:
    """A row's name: ``blocks.*.mobile (8)`` for the same module of every block, else the entries joined by ``+``."""
    if not extra:
        return "(the recipe as it is)"
    patterns = {re.sub(r"\.\d+(\.|$)", r".*\1", name, count=1) for name in extra}
    if len(extra) > 1 and len(patterns) == 1:
        return f"{patterns.pop()} ({len(extra)})"
    return "+".join(extra)


def main(argv: list[str] | None = None) -> int:
    """Export the checkpoint once per ``--modules`` entry, print and write the gate's metrics."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="a trained checkpoint")
    parser.add_argument("--variant", default="560m", help="the checkpoint's variant (default 560m)")
    parser.add_argument("--target", choices=list(BACKENDS), default="onnx")
    parser.add_argument("--modules", nargs="+", required=True,
                        help="module paths or class names to keep fp32, one export each; join several with +")
    parser.add_argument("--recipe", type=Path, help="the recipe to start from (default: the target's)")
    parser.add_argument("--accept-any", action="store_true",
                        help="measure every row, even where the recipe's int8 gate would refuse it: the target's "
                             "recipe with limits that accept anything (not with --recipe)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.accept_any and args.recipe:
        parser.error("--accept-any edits the target's own recipe; drop --recipe")
    sys.path.insert(0, str(REPO))

    from vmf_deploy.bench.machine import describe, host_device_info
    from vmf_deploy.export.errors import ExportError
    from vmf_deploy.export.pipeline import export_model

    entries = [[], *([name for name in entry.split("+") if name] for entry in args.modules)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, extra in enumerate(entries):
            folder = Path(tmp) / str(index)
            row = {"kept_fp32": extra}
            try:
                result = export_model(args.variant, args.target, folder, checkpoint=args.checkpoint,
                                      precision="int8", calibration="synthetic",
                                      recipe_path=recipe_for(args.target, args.accept_any, folder / "recipe",
                                                             args.recipe),
                                      recipe_overrides=keeping_overrides(args.target, args.recipe, extra))
            except ExportError as refused:  # a gate that says no is a row, not a crash
                row["gate"] = "refused: " + str(refused).split("\n")[0]
            else:
                metrics = result.manifest["parity"]["metrics"]
                row.update({key: metrics[key] for key in ("centered_sqnr_db", "top1_agreement", "min_cosine",
                                                          "accuracy", "reference_accuracy")})
                row.update(gate="not judged (--accept-any)" if args.accept_any else "passed",
                           max_rel_error=metrics["max_rel_error"], bytes=result.manifest["artifact"]["size_bytes"])
            rows.append(row)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({
                "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "tool": "benchmarks/int8_sensitivity.py", "command": " ".join(sys.argv), "target": args.target,
                "recipe": str(args.recipe or "default"), "accept_any": args.accept_any, "variant": args.variant,
                "checkpoint": str(args.checkpoint),
                "machine": describe(host_device_info()),
                "complete": index == len(entries) - 1, "rows": rows}, indent=2) + "\n")
            print(f"{label(extra)}: {row['gate']}", flush=True)

    print(f"\nint8 {args.target}, {args.variant} from {args.checkpoint}: one more module kept fp32 per row")
    print(f"{'kept fp32 besides the recipe':<48}{'SQNR':>7}{'agree':>8}{'accuracy':>10}{'worst cos':>10}{'MB':>7}")
    for row in rows:
        name = label(row["kept_fp32"])
        if "bytes" not in row:
            print(f"{name:<48}{row['gate']}")
            continue
        accuracy = f"{row['accuracy']:.1%}" if row["accuracy"] is not None else "-"
        print(f"{name:<48}{row['centered_sqnr_db']:7.1f}{row['top1_agreement']:8.1%}{accuracy:>10}"
              f"{row['min_cosine']:10.3f}{row['bytes'] / 1e6:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
