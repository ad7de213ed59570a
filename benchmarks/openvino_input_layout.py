"""What the OpenVINO IR's input reorder costs: the exported IR fed NCDHW, against the same IR declared NDHWC.

    .venv/bin/python benchmarks/openvino_input_layout.py                          # 560m and 1g, 64 frames
    .venv/bin/python benchmarks/openvino_input_layout.py --variants 560m --rounds 5

The CPU plugin runs the stem's 3-channel Conv3d channels-last, so its first node reorders the whole
``(1, 3, T, H, W)`` clip to ``(1, T, H, W, 3)``. onnxruntime's first convolution reads the planar clip
directly. Per variant the seeded model is exported with ``vmf-export``'s ``openvino`` target, then
compiled three ways with the IR's own compile options: as exported (fed NCDHW); with
``PrePostProcessor`` declaring the input tensor NDHWC (the clip fed already channels-last, as a
decoder that writes frames ``(T, H, W, 3)`` could); and the same fed an NCDHW clip transposed by
numpy inside the timed call. They take turns in blocks, order rotating, in one process; each also
runs once under ``PERF_COUNT`` for the input node's time. Prints a table, writes
``benchmarks/results/openvino_input_layout.json``.
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
REPO = Path(__file__).resolve().parents[1]


def input_node_ms(compiled, clip, runs: int = 5) -> tuple[str, float]:  # noqa: ANN001
    """The slowest node that reads the model input (``PERF_COUNT``, mean over ``runs``): its exec type and ms."""
    request = compiled.create_infer_request()
    request.infer({0: clip})
    totals: dict[tuple[str, str], float] = {}
    for _ in range(runs):
        request.infer({0: clip})
        for info in request.profiling_info:
            if info.node_name.startswith("video"):
                key = (info.node_name, info.exec_type)
                totals[key] = totals.get(key, 0.0) + info.real_time.total_seconds() * 1e3 / runs
    if not totals:
        return "none", 0.0
    (_, exec_type), ms = max(totals.items(), key=lambda kv: kv[1])
    return exec_type, ms


def main(argv: list[str] | None = None) -> int:
    """Export, compile both layouts, time them in turns; print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["560m", "1g"])
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--block", type=int, default=5, help="timed runs per configuration per round")
    parser.add_argument("--out", type=Path, default=RESULTS / "openvino_input_layout.json")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))

    import numpy as np
    import openvino as ov

    from vmf_deploy.bench.machine import describe, host_device_info
    from vmf_deploy.export.pipeline import export_model
    from vmf_deploy.manifest import write_json_atomic
    from vmf_deploy.parity import parity_clips
    from vmf_deploy.runners.openvino_cpu import compile_options

    device = host_device_info()
    load_before = [round(x, 2) for x in os.getloadavg()]
    print(f"{describe(device)}; {args.frames} frames, {args.threads} threads, load average {load_before}", flush=True)
    rows = []
    core = ov.Core()
    for variant in args.variants:
        with tempfile.TemporaryDirectory() as tmp:
            artifact = export_model(variant, "openvino", tmp, frames=args.frames).artifact
            planar = core.read_model(str(artifact))
            config = {**compile_options(planar), "INFERENCE_NUM_THREADS": str(args.threads)}
            channels_last = ov.preprocess.PrePostProcessor(core.read_model(str(artifact)))
            channels_last.input().tensor().set_layout(ov.Layout("NDHWC"))
            channels_last.input().model().set_layout(ov.Layout("NCDHW"))
            models = {"NCDHW (as exported)": planar, "NDHWC input": channels_last.build()}
            compiled = {name: core.compile_model(model, "CPU", config) for name, model in models.items()}
            profiled = {name: core.compile_model(model, "CPU", {**config, "PERF_COUNT": "YES"})
                        for name, model in models.items()}
        clip = parity_clips(tuple(int(d) for d in planar.input(0).get_shape()), [0])[0]
        last = np.ascontiguousarray(clip.transpose(0, 2, 3, 4, 1))
        feeds = {"NCDHW (as exported)": ("NCDHW (as exported)", lambda clip=clip: clip),
                 "NDHWC input": ("NDHWC input", lambda last=last: last),
                 "NDHWC input, numpy transpose in the call": (
                     "NDHWC input", lambda clip=clip: np.ascontiguousarray(clip.transpose(0, 2, 3, 4, 1)))}
        expected = compiled["NCDHW (as exported)"]({0: clip})[0]
        error = float(np.abs(compiled["NDHWC input"]({0: last})[0] - expected).max())
        samples: dict[str, list[float]] = {name: [] for name in feeds}
        names = list(feeds)
        for r in range(args.rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                model_name, feed = feeds[name]
                compiled[model_name]({0: feed()})
                for _ in range(args.block):
                    t = time.perf_counter()
                    compiled[model_name]({0: feed()})
                    samples[name].append((time.perf_counter() - t) * 1e3)
        base = statistics.median(samples[names[0]])
        for name in names:
            model_name = feeds[name][0]
            exec_type, node_ms = input_node_ms(profiled[model_name], feeds[name][1]())
            med = statistics.median(samples[name])
            rows.append({"variant": variant, "input": name, "median_ms": round(med, 2),
                         "ratio_to_ncdhw": round(med / base, 3), "input_node": exec_type,
                         "input_node_ms": round(node_ms, 2), "max_abs_error_vs_ncdhw": error,
                         "samples_ms": samples[name]})
            print(f"  {variant:<5} {name:<42} {med:7.2f} ms  ÷ NCDHW {med / base:.3f}   input node {exec_type} "
                  f"{node_ms:.2f} ms", flush=True)
    load_after = [round(x, 2) for x in os.getloadavg()]
    write_json_atomic(args.out, {"tool": "benchmarks/openvino_input_layout.py", "command": " ".join(sys.argv),
                                 "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "device": device,
                                 "load_average_before": load_before, "load_average_after": load_after,
                                 "frames": args.frames, "threads": args.threads, "rounds": args.rounds,
                                 "block": args.block, "results": rows})
    print(f"load average after {load_after}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
