"""ExecuTorch int8: the activations' observer (``[quantization] calibration_method``) on trained checkpoints.

    .venv/bin/python benchmarks/int8_observers.py --checkpoints run/last.safetensors other/last.safetensors

Each checkpoint (560m) is exported to int8 ExecuTorch once per method of
``vmf_deploy.quantize.pt2e_xnnpack.ACTIVATION_OBSERVERS`` (``minmax``, ``histogram``), from a copy
of ``export/executorch.toml`` that differs only in that key and whose int8 limits accept anything,
so that a refused artifact is still measured; then the int8 gate's metrics (243 clips against
PyTorch fp32) are judged against the real recipe's ``[parity.tolerance.int8]``. Prints a table and
writes ``benchmarks/results/int8_observers.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "int8_observers.json"


def main(argv: list[str] | None = None) -> int:
    """Export each checkpoint with each observer, judge it, print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=Path, nargs="+", required=True, help="trained 560m checkpoints")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))

    from vmf_deploy.bench.machine import describe, host_device_info
    from vmf_deploy.export.pipeline import export_model
    from vmf_deploy.export.recipes import accept_any_parity, load_recipe
    from vmf_deploy.export.targets import get_target
    from vmf_deploy.parity import ParityReport
    from vmf_deploy.quantize.pt2e_xnnpack import ACTIVATION_OBSERVERS

    target = get_target("executorch")
    recipe = load_recipe(target)
    limits = recipe.tolerance("int8")
    rows = []
    with tempfile.TemporaryDirectory(prefix="vmf-int8-observers-") as tmp:
        work = Path(tmp)
        any_parity = accept_any_parity(target, "int8", work).read_text()
        default = f'calibration_method = "{recipe.quantization["calibration_method"]}"'
        for checkpoint in args.checkpoints:
            for method in ACTIVATION_OBSERVERS:
                path = work / f"executorch-{method}.toml"
                path.write_text(any_parity.replace(default, f'calibration_method = "{method}"'))
                result = export_model("560m", "executorch", work / method, checkpoint=checkpoint, precision="int8",
                                      calibration="synthetic", recipe_path=path, force=True)
                metrics = result.manifest["parity"]["metrics"]
                failures = ParityReport(**metrics).failures(limits)
                rows.append({"checkpoint": str(checkpoint), "calibration_method": method,
                             "quantization_method_recorded": result.manifest["export"]["quantization"]
                             ["calibration_method"], "gate": "refused: " + "; ".join(failures) if failures else "passed",
                             **{k: metrics[k] for k in ("clips", "centered_sqnr_db", "min_cosine", "max_rel_error",
                                                        "top1_agreement", "reference_accuracy", "accuracy")}})
                r = rows[-1]
                print(f"{checkpoint}  {method:9s}  {r['centered_sqnr_db']:5.1f} dB  worst cosine {r['min_cosine']:.3f}  "
                      f"max rel {r['max_rel_error']:.2f}  agreement {r['top1_agreement']:.1%}  accuracy "
                      f"{r['reference_accuracy']:.1%} -> {r['accuracy']:.1%}  {r['gate']}", flush=True)
    document = {"benchmark": "int8_observers", "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "machine": describe(host_device_info()), "limits": asdict(limits), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
