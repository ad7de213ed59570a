"""Which module fusions make the OpenVINO IR faster? (issue 17: rewrites on by default only where they measured faster)

    .venv/bin/python benchmarks/openvino_rewrites.py                           # 560m and 2g, 16 frames, ~10 min
    .venv/bin/python benchmarks/openvino_rewrites.py --variants 560m --rounds 3
    .venv/bin/python benchmarks/openvino_rewrites.py --variants 2g --frames 64 --configs stem stem+bridges

Starting from the unfused graph the ``openvino`` target converts (docs/openvino.md), each
configuration applies a subset of the module-stage fusions (``stem_conv_fusion``: the stem's two
convs as one Conv3d; ``dyrelu_fusion``: ``max(a1·x, a2·x)`` as ``relu(x) + a2·x``;
``bridge_position_major``: the bridges read the map as ``(B, N, C)``; ``input_conv_channel_split``:
the 3-channel input conv as one conv per colour, summed), exports that
graph to ONNX, converts it with ``openvino.convert_model`` and compiles it for CPU with the
settings of ``export/openvino.toml``. Per variant the compiled models take turns in blocks
(order rotating every round) in one process. Prints a table, writes
``benchmarks/results/openvino_rewrites.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
CONFIGS = {"unfused": (), "stem": ("stem_conv_fusion",), "dyrelu": ("dyrelu_fusion",),
           "stem+dyrelu": ("stem_conv_fusion", "dyrelu_fusion"), "bridges": ("bridge_position_major",),
           "stem+bridges": ("stem_conv_fusion", "bridge_position_major"),
           "stem+bridges+split": ("stem_conv_fusion", "bridge_position_major", "input_conv_channel_split")}
"""Configuration name → the module fusions it applies."""


def compiled_ir(model, shape: tuple[int, ...], fusions: tuple[str, ...], folder: Path,  # noqa: ANN001, ANN201
                config: dict):
    """``model`` with ``fusions`` applied, through ONNX and ``convert_model``, compiled for CPU; and its op count."""
    import openvino as ov

    from vmf_deploy.export import onnx_export
    from vmf_deploy.rewrites import rewrite_classes

    rewritten = model
    for rewrite in rewrite_classes():  # in the registry's order, whichever targets each one lists
        if rewrite.name in fusions:
            result = rewrite().apply(rewritten)
            assert result.count, f"{rewrite.name} found nothing to rewrite"
            rewritten = result.obj
    proto = onnx_export.simplify_onnx(onnx_export.trace_to_onnx(rewritten, shape, 18, Path("openvino.toml")),
                                      Path("openvino.toml"))
    path = folder / f"{'-'.join(fusions) or 'unfused'}.onnx"
    onnx_export.save_onnx(onnx_export.prune_unused(proto), path)
    ov_model = ov.convert_model(str(path))
    return ov.Core().compile_model(ov_model, "CPU", config), len(ov_model.get_ordered_ops())


def main(argv: list[str] | None = None) -> int:
    """Measure every configuration of every variant taking turns; print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["560m", "2g"])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--block", type=int, default=8, help="timed runs per configuration per round")
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS),
                        help="configurations to compare (default all; 'unfused' is always measured)")
    parser.add_argument("--out", type=Path, default=RESULTS / "openvino_rewrites.json")
    args = parser.parse_args(argv)
    configs = {name: CONFIGS[name] for name in CONFIGS if name == "unfused" or name in args.configs}

    import numpy as np
    import torch

    from vmf_deploy.bench.machine import describe, host_device_info
    from vmf_deploy.export.openvino_export import compile_config
    from vmf_deploy.export.recipes import load_recipe
    from vmf_deploy.export.targets import get_target
    from vmf_deploy.manifest import write_json_atomic
    from vmf_deploy.models import build_seeded_model
    from vmf_deploy.parity import parity_clips

    torch.set_num_threads(args.threads)
    config = {**compile_config(load_recipe(get_target("openvino")).options), "INFERENCE_NUM_THREADS": str(args.threads)}
    device = host_device_info()
    load_before = [round(x, 2) for x in os.getloadavg()]
    print(f"{describe(device)}; {args.frames} frames, {args.threads} threads, load average {load_before}", flush=True)
    rows = []
    for variant in args.variants:
        model = build_seeded_model(variant, seed=0, frames=args.frames).eval()
        shape = tuple(model.cfg.input_shape)
        clip = parity_clips(shape, [0])[0]
        with torch.inference_mode():
            expected = model(torch.from_numpy(clip)).numpy()
        compiled, ops, errors, samples = {}, {}, {}, {name: [] for name in configs}
        with tempfile.TemporaryDirectory() as tmp:
            for name, fusions in configs.items():
                compiled[name], ops[name] = compiled_ir(model, shape, fusions, Path(tmp), config)
                errors[name] = float(np.abs(compiled[name](clip)[0] - expected).max())
        names = list(configs)
        for r in range(args.rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                compiled[name](clip)  # untimed: the previous configuration just had the caches
                for _ in range(args.block):
                    t = time.perf_counter()
                    compiled[name](clip)
                    samples[name].append((time.perf_counter() - t) * 1e3)
        base = statistics.median(samples["unfused"])
        for name in names:
            med = statistics.median(samples[name])
            rows.append({"variant": variant, "config": name, "fusions": list(CONFIGS[name]), "ops": ops[name],
                         "max_abs_error": errors[name], "median_ms": round(med, 2),
                         "ratio_to_unfused": round(med / base, 3), "samples_ms": samples[name]})
            print(f"  {variant:<5} {name:<12} {ops[name]:>5} ops  max|err| {errors[name]:.1e}  {med:7.1f} ms  "
                  f"÷ unfused {med / base:.3f}", flush=True)
    load_after = [round(x, 2) for x in os.getloadavg()]
    write_json_atomic(args.out, {"tool": "benchmarks/openvino_rewrites.py", "command": " ".join(sys.argv),
                                 "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "device": device,
                                 "load_average_before": load_before, "load_average_after": load_after,
                                 "frames": args.frames, "threads": args.threads, "rounds": args.rounds,
                                 "block": args.block, "compile_config": config, "results": rows})
    print(f"load average after {load_after}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
