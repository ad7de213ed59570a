"""Which graph should ``vmf-export --target openvino`` hand to ``openvino.convert_model``? (issue 17)

    .venv/bin/python benchmarks/openvino_routes.py                      # 560m, 16 frames, ~5 min on 2 cores
    .venv/bin/python benchmarks/openvino_routes.py --variant x3d-s --rounds 5

Four routes from the same seeded model to an OpenVINO ``ov.Model``:

* ``onnx-unfused``: the ONNX path with only the required rewrites (``--no-fuse``), read by OpenVINO's ONNX frontend;
* ``onnx-fused``: the ``--target onnx`` graph, shaped for onnxruntime (banded depthwise, channels-first softmax);
* ``torch.export``: ``torch.export.export`` of the unrewritten model, read by OpenVINO's PyTorch frontend;
* ``nn.Module``: ``convert_model(model, example_input=...)`` (OpenVINO traces the module itself).

For each: the time from the model to the ``ov.Model`` (the ONNX routes include the ONNX export; timed
after one untimed conversion by every route, so that no route pays for the process's imports), the op
count of the ``ov.Model``, the max |error| against PyTorch fp32, and the latency compiled for CPU with
the settings of ``export/openvino.toml``, the routes taking turns in blocks within one run.
Writes ``benchmarks/results/openvino_routes.json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ROUTES = ("onnx-unfused", "onnx-fused", "torch.export", "nn.Module")


def to_ov_model(route: str, model, shape: tuple[int, ...], folder: Path):  # noqa: ANN001, ANN201 - torch/ov lazily
    """The ``ov.Model`` of ``model`` by ``route``."""
    import openvino as ov
    import torch

    from vmf_deploy.export import onnx_export
    from vmf_deploy.rewrites import run_rewrites

    example = torch.zeros(shape)
    if route.startswith("onnx"):
        fuse = route == "onnx-fused"
        rewritten, _ = run_rewrites("onnx", "module", model, fuse=fuse)
        proto = onnx_export.simplify_onnx(onnx_export.trace_to_onnx(rewritten, shape, 18, Path("onnx.toml")),
                                          Path("onnx.toml"))
        proto, _ = run_rewrites("onnx", "onnx", proto, fuse=fuse)
        path = folder / f"{route}.onnx"
        onnx_export.save_onnx(onnx_export.prune_unused(proto), path)
        return ov.convert_model(str(path))
    if route == "torch.export":
        with torch.no_grad():
            return ov.convert_model(torch.export.export(model, (example,), strict=False))
    with torch.no_grad():
        return ov.convert_model(model, example_input=example)


def main(argv: list[str] | None = None) -> int:
    """Convert by every route, time the compiled models taking turns, print a table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="560m")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--block", type=int, default=10, help="timed runs per route per round")
    parser.add_argument("--out", type=Path, default=RESULTS / "openvino_routes.json")
    args = parser.parse_args(argv)

    import numpy as np
    import openvino as ov
    import torch

    from vmf_deploy.bench.machine import describe, host_device_info
    from vmf_deploy.manifest import write_json_atomic
    from vmf_deploy.models import build_seeded_model
    from vmf_deploy.parity import parity_clips

    torch.set_num_threads(args.threads)
    model = build_seeded_model(args.variant, seed=0, frames=args.frames).eval()
    shape = tuple(model.cfg.input_shape)
    clip = parity_clips(shape, [0])[0]
    with torch.inference_mode():
        expected = model(torch.from_numpy(clip)).numpy()
    core = ov.Core()
    config = {"INFERENCE_NUM_THREADS": args.threads, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
              "INFERENCE_PRECISION_HINT": "f32"}
    rows: dict[str, dict] = {}
    compiled = {}
    with tempfile.TemporaryDirectory() as tmp:
        for route in ROUTES:  # a throwaway conversion first: the first one of a process pays for imports
            to_ov_model(route, model, shape, Path(tmp))
        for route in ROUTES:
            start = time.perf_counter()
            ov_model = to_ov_model(route, model, shape, Path(tmp))
            seconds = time.perf_counter() - start
            ops = Counter(op.get_type_name() for op in ov_model.get_ordered_ops())
            compiled[route] = core.compile_model(ov_model, "CPU", config)
            got = compiled[route](clip)[0]
            rows[route] = {"convert_seconds": round(seconds, 2), "ops": sum(ops.values()),
                           "op_types": dict(ops.most_common(12)),
                           "max_abs_error": float(np.abs(got - expected).max()), "samples_ms": []}
    for r in range(args.rounds):
        order = ROUTES[r % len(ROUTES):] + ROUTES[:r % len(ROUTES)]
        for route in order:
            compiled[route](clip)  # untimed: the previous route just had the caches
            for _ in range(args.block):
                t = time.perf_counter()
                compiled[route](clip)
                rows[route]["samples_ms"].append((time.perf_counter() - t) * 1e3)
    best = min(statistics.median(row["samples_ms"]) for row in rows.values())
    device = host_device_info()
    print(f"{describe(device)}; {args.variant}, {args.frames} frames, {args.threads} threads, openvino "
          f"{ov.__version__}, loadavg {Path('/proc/loadavg').read_text().split()[:3]}")
    print(f"{'route':<14} {'convert s':>9} {'ops':>6} {'max |err|':>10} {'median ms':>10} {'÷ best':>7}")
    for route, row in rows.items():
        row["median_ms"] = round(statistics.median(row["samples_ms"]), 2)
        row["ratio_to_best"] = round(row["median_ms"] / best, 3)
        print(f"{route:<14} {row['convert_seconds']:>9.1f} {row['ops']:>6} {row['max_abs_error']:>10.2e} "
              f"{row['median_ms']:>10.1f} {row['ratio_to_best']:>7.2f}")
    result = {"tool": "benchmarks/openvino_routes.py", "command": " ".join(sys.argv),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "device": device,
              "loadavg": Path("/proc/loadavg").read_text().split()[:3],
              "variant": args.variant, "frames": args.frames, "threads": args.threads, "rounds": args.rounds,
              "block": args.block, "compile_config": config, "routes": rows}
    write_json_atomic(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
