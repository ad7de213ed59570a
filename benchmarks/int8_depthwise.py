"""The int8 ONNX recipe's ``banded_depthwise``: size and onnxruntime latency of both forms, side by side.

    .venv/bin/python benchmarks/int8_depthwise.py --variants 560m 1g 2g 5g --frames 64    # seeded init: size, latency
    .venv/bin/python benchmarks/int8_depthwise.py --variants 560m --checkpoint run/last.safetensors   # + the int8 gate

For each variant the model is exported through ``vmf-export``'s pipeline three times: fp32 and
``--precision int8 --calibration synthetic`` with ``[quantization] banded_depthwise`` false (the
recipe: native depthwise ``Conv3d``, run as ``QLinearConv``) and true (``onnx_depthwise_conv2d``'s
banded 2D form, whose weights the int8 file stores T/kt times larger). Without ``--checkpoint`` the
int8 exports use a copy of the recipe whose int8 limits accept anything (the seeded init's logits
barely move between clips), and their gate metrics are printed but mean nothing. The three
artifacts are loaded in onnxruntime (2 threads) and timed in turns on one clip (``int8.py``'s
``interleaved_ms``), medians. Prints a table and writes ``benchmarks/results/int8_depthwise.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "int8_depthwise.json"
FORMS = {"int8 native Conv3d": "false", "int8 banded 2D": "true"}
"""Row name → the recipe's ``banded_depthwise`` value."""


def recipe_with(banded: str, latency_only: bool, folder: Path) -> Path:
    """A copy of the onnx recipe with ``banded_depthwise = banded`` (and, ``latency_only``, any int8 parity accepted)."""
    from vmf_deploy.export.recipes import accept_any_parity, default_recipe_path
    from vmf_deploy.export.targets import get_target

    folder.mkdir(parents=True, exist_ok=True)
    source = (accept_any_parity(get_target("onnx"), "int8", folder) if latency_only
              else default_recipe_path(get_target("onnx")))
    text = source.read_text()
    if "banded_depthwise = false" not in text:
        raise SystemExit(f"{source} has no 'banded_depthwise = false' line to edit")
    path = folder / f"onnx-banded-{banded}.toml"
    path.write_text(text.replace("banded_depthwise = false", f"banded_depthwise = {banded}"))
    return path


def main(argv: list[str] | None = None) -> int:
    """Export both int8 forms of each variant, time them against fp32, print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=["560m", "1g", "2g", "5g"])
    parser.add_argument("--frames", type=int, help="clip length (default: the checkpoint's / variant's)")
    parser.add_argument("--checkpoint", type=Path, help="a trained checkpoint of the (single) variant: the int8 "
                        "gate is judged for real")
    parser.add_argument("--rounds", type=int, default=8, help="rounds of turns (default 8)")
    parser.add_argument("--block", type=int, default=5, help="timed runs per artifact per round (default 5)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.checkpoint and len(args.variants) != 1:
        parser.error("--checkpoint belongs to one variant: give one --variants")
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "benchmarks"))

    import numpy as np
    from int8 import interleaved_ms

    from vmf_deploy.bench.machine import describe, host_device_info
    from vmf_deploy.export.pipeline import export_model

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for variant in args.variants:
            results = {"fp32": export_model(variant, "onnx", work / variant / "fp32", checkpoint=args.checkpoint,
                                            frames=args.frames)}
            for name, banded in FORMS.items():
                folder = work / variant / f"banded-{banded}"
                results[name] = export_model(
                    variant, "onnx", folder, checkpoint=args.checkpoint, frames=args.frames, precision="int8",
                    calibration="synthetic", recipe_path=recipe_with(banded, args.checkpoint is None, folder))
            shape = results["fp32"].manifest["input"]["shape"]
            clip = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
            ms = interleaved_ms({name: r.artifact for name, r in results.items()}, "onnxruntime-cpu", clip,
                                args.rounds, args.block, args.threads)
            for name, result in results.items():
                gate = result.manifest["parity"]["metrics"]
                rows.append({"variant": variant, "form": name, "input_shape": shape, "ms": ms[name],
                             "over_fp32": ms[name] / ms["fp32"],
                             "bytes": result.manifest["artifact"]["size_bytes"],
                             "smaller": results["fp32"].manifest["artifact"]["size_bytes"]
                             / result.manifest["artifact"]["size_bytes"],
                             "rewrites": [r["name"] for r in result.manifest["export"]["rewrites"]],
                             "centered_sqnr_db": gate["centered_sqnr_db"], "top1_agreement": gate["top1_agreement"],
                             "gate": "not judged (seeded init)" if args.checkpoint is None and name != "fp32"
                             else "passed"})
            print(f"{variant}: exported and timed", flush=True)

    machine = describe(host_device_info())
    source = str(args.checkpoint) if args.checkpoint else "seeded init"
    print(f"\nint8 depthwise forms on onnxruntime CPU, {source}; {machine}; {args.threads} threads, "
          f"{args.rounds} rounds of {args.block} runs in turns; load average {os.getloadavg()[0]:.1f}")
    print(f"{'variant':<8}{'form':<20}{'MB':>7}{'÷ size':>8}{'ms':>8}{'÷ fp32':>8}{'SQNR':>7}{'agree':>8}")
    for r in rows:
        print(f"{r['variant']:<8}{r['form']:<20}{r['bytes'] / 1e6:7.2f}{r['smaller']:7.2f}x{r['ms']:8.1f}"
              f"{r['over_fp32']:8.2f}{r['centered_sqnr_db']:7.1f}{r['top1_agreement']:8.1%}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                    "machine": machine, "source": source, "threads": args.threads,
                                    "rounds": args.rounds, "block": args.block,
                                    "load_average": os.getloadavg(), "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
