"""ExecuTorch int8 with and without quantization-aware fine-tuning (``qat_steps``), judged in PyTorch's simulation.

    .venv/bin/python benchmarks/int8_qat_simulated.py --checkpoint run/last.safetensors --settings 0 2048:2048:3e-6
    .venv/bin/python benchmarks/int8_qat_simulated.py --checkpoint run/last.safetensors --frames 64 \\
        --settings 0 512:512:3e-6 2048:2048:3e-6 --set quantization.kept_linears=weight_only_int8

Each setting is ``STEPS[:CLIPS[:LEARNING_RATE]]`` (the recipe's ``qat_steps``, ``qat_clips`` and
``qat_learning_rate``; missing parts are the recipe's). The checkpoint goes through the export's
steps up to the int8 program (channel equalization, the ``executorch`` module rewrites,
``torch.export``, :func:`~vmf_deploy.quantize.pt2e_xnnpack.quantize_exported` with the executorch
recipe, calibrated on ``--calibration synthetic``), and the program ``convert_pt2e`` makes is run in
PyTorch on the int8 gate's clips (3 noise clips and ``--clips`` of the synthetic gate split), against
the fp32 frames model: no XNNPACK lowering (minutes per setting), so its numbers are the
simulation's, which the ``.pte`` follows to a few tenths of a dB (``int8_recipe_ab.py`` measures
the ``.pte``). Writes ``benchmarks/results/int8_qat_simulated.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "int8_qat_simulated.json"


def parse_setting(text: str, recipe: dict) -> dict:
    """``STEPS[:CLIPS[:LEARNING_RATE]]`` → the recipe keys it sets (missing parts: ``recipe``'s values)."""
    parts = text.split(":")
    if not 1 <= len(parts) <= 3:
        raise ValueError(f"a setting is STEPS[:CLIPS[:LEARNING_RATE]], got {text!r}")
    return {"qat_steps": int(parts[0]),
            "qat_clips": int(parts[1]) if len(parts) > 1 else recipe["qat_clips"],
            "qat_learning_rate": float(parts[2]) if len(parts) > 2 else recipe["qat_learning_rate"]}


def main(argv: list[str] | None = None) -> int:
    """Quantize the checkpoint once per setting, print and write the gate's metrics in simulation."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="a trained checkpoint")
    parser.add_argument("--variant", default="560m")
    parser.add_argument("--frames", type=int, help="clip length (default: the checkpoint's)")
    parser.add_argument("--settings", nargs="+", default=["0", "2048"], help="STEPS[:CLIPS[:LEARNING_RATE]] each")
    parser.add_argument("--set", action="append", default=[], dest="overrides", metavar="TABLE.KEY=VALUE",
                        help="a value of the executorch recipe, as vmf-export --set (repeatable), e.g. "
                             "quantization.kept_linears=weight_only_int8")
    parser.add_argument("--clips", type=int, default=240, help="gate-split clips (default 240, the gate's)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))

    import torch

    from vmf_deploy.bench.machine import describe, host_device_info
    from vmf_deploy.datasets import synthetic
    from vmf_deploy.export.errors import ExportError
    from vmf_deploy.export.manifest_builder import export_preprocessing
    from vmf_deploy.export.pipeline import load_model
    from vmf_deploy.export.recipes import load_recipe
    from vmf_deploy.export.targets import get_target
    from vmf_deploy.parity import compare_logits, parity_clips
    from vmf_deploy.preprocess import PreprocessSpec
    from vmf_deploy.quantize.calibration import load_calibration
    from vmf_deploy.quantize.channel_equalization import equalize_channels
    from vmf_deploy.quantize.pt2e_xnnpack import quantize_exported
    from vmf_deploy.rewrites import run_rewrites

    try:
        recipe = dict(load_recipe(get_target("executorch"), None, args.overrides).quantization)
    except ExportError as e:
        parser.error(str(e))
    settings = [parse_setting(s, recipe) for s in args.settings]

    torch.manual_seed(0)
    reference = load_model(args.variant, args.checkpoint, args.frames)
    shape = tuple(reference.cfg.input_shape)
    spec = PreprocessSpec.from_dict(export_preprocessing(reference.cfg, shape, args.checkpoint))
    calibration = load_calibration("synthetic", spec, recipe["calibration_clips"]).clips
    model = copy.deepcopy(reference).eval()
    equalize_channels(model, calibration, recipe["equalize_channels"])
    model.example_input_shape = shape
    frames_model, _ = run_rewrites("executorch", "module", model, fuse=True)
    example = torch.zeros(shape)
    with torch.no_grad():
        exported = torch.export.export(frames_model, (example,), strict=False)
        clips = parity_clips(shape, [0, 1, 2]) + synthetic.gate_clips(shape, args.clips)
        fp32 = [frames_model(torch.from_numpy(c)).numpy() for c in clips]
    classes = {name: type(m).__name__ for name, m in reference.named_modules()}

    rows = []
    for setting in settings:
        options = {**recipe, **setting}
        record: dict = {}
        qat = load_calibration("synthetic", spec, options["qat_clips"]).clips if options["qat_steps"] else ()
        program, _ = quantize_exported(exported, example, calibration, options, classes, diff_clips=0,
                                       qat_clips=qat, qat_record=record)
        with torch.no_grad():
            int8 = [program.module()(torch.from_numpy(c)).numpy() for c in clips]
        report = compare_logits(fp32, int8)
        rows.append({**setting, "centered_sqnr_db": report.centered_sqnr_db, "top1_agreement": report.top1_agreement,
                     "min_cosine": report.min_cosine, "max_rel_error": report.max_rel_error, "qat": record})
        print(f"{setting}: {report.centered_sqnr_db:.2f} dB, {report.top1_agreement:.1%}", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "tool": "benchmarks/int8_qat_simulated.py",
            "command": " ".join(sys.argv), "checkpoint": str(args.checkpoint), "variant": args.variant,
            "input_shape": list(shape), "gate_clips": len(clips), "recipe_overrides": args.overrides,
            "machine": describe(host_device_info()), "complete": len(rows) == len(settings), "rows": rows},
            indent=2) + "\n")

    print(f"\nExecuTorch int8 in PyTorch's simulation, {args.variant} from {args.checkpoint} at {shape}, "
          f"{len(clips)} gate clips{'; ' + ', '.join(args.overrides) if args.overrides else ''}")
    print(f"{'steps':>7}{'clips':>7}{'lr':>9}{'SQNR':>8}{'agree':>8}{'worst cos':>10}{'max rel':>9}"
          f"{'train mse':>20}{'s':>7}")
    for r in rows:
        q = r["qat"]
        mse = f"{q['mse_before']:.4f} → {q['mse_after']:.4f}" if q else "-"
        print(f"{r['qat_steps']:>7}{r['qat_clips'] if q else '-':>7}{r['qat_learning_rate'] if q else '-':>9}"
              f"{r['centered_sqnr_db']:8.2f}{r['top1_agreement']:8.1%}{r['min_cosine']:10.3f}{r['max_rel_error']:9.3f}"
              f"{mse:>20}{q.get('seconds', '-') if q else '-':>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
