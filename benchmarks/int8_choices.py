"""What each "keep it fp32" choice of the int8 ONNX recipe costs and gains, measured side by side.

    .venv/bin/python benchmarks/int8_choices.py --checkpoint runs/reference-560m/last.safetensors
    .venv/bin/python benchmarks/int8_choices.py --frames 64 --calibration-clips 6 --rounds 12 \
        --only "recipe (softmax, adds, muls, attention matmuls, DyReLU, logits fp32)" \
        "logits quantized too (fp32_outputs off)" \
        --out benchmarks/results/int8_choices_latency_64f.json       # seeded init: latency only

The checkpoint is exported to fp32 ONNX once (``vmf-export``'s pipeline), then quantized with
``vmf_deploy.quantize.onnx_qdq.quantize_onnx`` under variants of ``export/onnx.toml``'s
``[quantization]`` table, all calibrated on the same 64 synthetic calibration clips. Each is
judged as the int8 gate judges (centered SQNR, top-1 agreement, accuracy on the 240 labelled
gate-split clips) and timed: every variant and fp32 loaded in onnxruntime (2 threads) and run
in turns on one clip, medians over the rounds. Prints a table, writes
``benchmarks/results/int8_choices.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "int8_choices.json"

VARIANTS: dict[str, dict] = {
    "recipe (softmax, adds, muls, attention matmuls, DyReLU, logits fp32)": {},
    "logits quantized too (fp32_outputs off)": {"fp32_outputs": False},
    "DyReLU quantized too": {"fp32_modules": []},
    "softmax quantized too": {"fp32_op_types": ["Add", "Mul"]},
    "adds and muls quantized too": {"fp32_op_types": ["Softmax"]},
    "attention matmuls quantized too": {"fp32_attention_matmuls": False},
    "everything quantized": {"fp32_op_types": [], "fp32_attention_matmuls": False, "fp32_modules": []},
    "reduce_range off": {"reduce_range": False},
    "percentile calibration": {"calibration_method": "percentile"},
    "element-wise ops fp32 too": {"fp32_op_types": ["Softmax", "Mul", "Add", "Sub", "Relu", "HardSigmoid", "Clip",
                                                    "ReduceMean", "Div"]},
    "convolutions only": {"fp32_op_types": ["Softmax", "Mul", "Max", "Add", "Relu", "Gemm", "MatMul", "Concat",
                                            "Sub", "HardSigmoid", "ReduceMean"]},
}


def main(argv: list[str] | None = None) -> int:
    """Quantize each variant, judge it, time it, print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="a trained checkpoint; without it the seeded init (latency "
                        "only: its SQNR and agreement mean nothing)")
    parser.add_argument("--variant", default="560m")
    parser.add_argument("--frames", type=int, help="clip length (default: the checkpoint's / variant's)")
    parser.add_argument("--calibration-clips", type=int, help="default: the recipe's")
    parser.add_argument("--only", nargs="+", choices=sorted(VARIANTS), help="these variants only")
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON written (default {RESULTS})")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "benchmarks"))

    import numpy as np
    import onnxruntime as ort
    from int8 import interleaved_ms

    from vmf_deploy.bench.machine import describe, host_device_info
    from vmf_deploy.datasets.synthetic import gate_clips, label_of
    from vmf_deploy.export.parity_gate import reference_logits
    from vmf_deploy.export.pipeline import export_model, load_model
    from vmf_deploy.export.recipes import load_recipe
    from vmf_deploy.export.targets import get_target
    from vmf_deploy.parity import compare_logits
    from vmf_deploy.preprocess import PreprocessSpec
    from vmf_deploy.quantize.calibration import load_calibration
    from vmf_deploy.quantize.onnx_qdq import quantize_onnx

    recipe = load_recipe(get_target("onnx"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        fp32 = export_model(args.variant, "onnx", work, checkpoint=args.checkpoint, frames=args.frames)
        model = load_model(args.variant, args.checkpoint, args.frames)
        classes = {name: type(m).__name__ for name, m in model.named_modules()}
        shape = tuple(fp32.manifest["input"]["shape"])
        spec = PreprocessSpec.from_dict(fp32.manifest["preprocessing"])
        calibration = load_calibration("synthetic", spec,
                                       args.calibration_clips or recipe.quantization["calibration_clips"])
        clips = gate_clips(shape, recipe.heldout_clips if args.checkpoint else 4)  # seeded: nothing to judge
        labels = [label_of(i) for i in range(len(clips))]
        reference = reference_logits(model, clips)
        artifacts = {"fp32": fp32.artifact}
        for name, change in VARIANTS.items():
            if args.only and name not in args.only:
                continue
            path = work / f"v{len(artifacts)}.onnx"
            summary = quantize_onnx(fp32.artifact, path, calibration.clips, {**recipe.quantization, **change},
                                    classes, work)
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            report = compare_logits(reference, [session.run(None, {"video": c})[0] for c in clips], labels)
            artifacts[name] = path
            rows.append({"variant": name, "change": change, "compute_nodes": summary["compute_nodes"],
                         "centered_sqnr_db": report.centered_sqnr_db, "top1_agreement": report.top1_agreement,
                         "reference_accuracy": report.reference_accuracy, "accuracy": report.accuracy,
                         "size_bytes": path.stat().st_size})
            print(f"{name}: {report.centered_sqnr_db:.1f} dB, agreement {report.top1_agreement:.1%}", flush=True)
        clip = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        ms = interleaved_ms(artifacts, "onnxruntime-cpu", clip, args.rounds, block=5, threads=2)
    for row in rows:
        row["ms"], row["over_fp32"] = ms[row["variant"]], ms[row["variant"]] / ms["fp32"]
    machine = describe(host_device_info())
    print(f"\nint8 choices on onnxruntime CPU, {args.checkpoint} at {shape}; {machine}; fp32 {ms['fp32']:.1f} ms")
    print(f"{'variant':<50}{'int8/fp32 nodes':>16}{'SQNR dB':>9}{'agree':>8}{'accuracy':>10}{'ms':>7}{'÷fp32':>7}")
    for r in rows:
        nodes = f"{r['compute_nodes']['int8']}/{r['compute_nodes']['fp32']}"
        print(f"{r['variant']:<50}{nodes:>16}{r['centered_sqnr_db']:9.1f}{r['top1_agreement']:8.1%}"
              f"{r['accuracy']:10.1%}{r['ms']:7.1f}{r['over_fp32']:7.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                   "machine": machine, "checkpoint": str(args.checkpoint), "input_shape": shape,
                                   "fp32_ms": ms["fp32"], "reference_accuracy": rows[0]["reference_accuracy"],
                                   "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
