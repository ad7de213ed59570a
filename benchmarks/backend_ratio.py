"""One runtime ÷ another per variant, the two taking turns in one run (issue 8's ExecuTorch ≤ 1.2× onnxruntime,
issue 17's OpenVINO ≤ 1.0× onnxruntime).

    .venv/bin/python benchmarks/backend_ratio.py                 # ExecuTorch ÷ onnxruntime, 4 variants, 64 frames
    .venv/bin/python benchmarks/backend_ratio.py --variants 560m --frames 16 --rounds 3
    .venv/bin/python benchmarks/backend_ratio.py --backends onnxruntime-cpu openvino-cpu --max-ratio 1.0 \
        --out benchmarks/results/backend_ratio_openvino.json

The bench matrix measures one backend after another; on a VM whose speed drifts for minutes
at a time, a ratio of two such medians carries the drift. Here each runtime lives in its own
process (so neither's thread pool runs while the other is timed) and they take turns: per
round, each process runs one untimed clip and ``--block`` timed clips, then hands over. Each is fed the
clip in its artifact's own input layout (an OpenVINO IR takes it channels-last), as ``vmf-bench`` does. Both
see the same minutes, so the ratio of their medians is the runtimes', not the machine's.
The ratio is the second backend's median ÷ the first's. Writes ``benchmarks/results/backend_ratio.json``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
BACKENDS = ("onnxruntime-cpu", "executorch-xnnpack")
MAX_RATIO = 1.2


def serve(backend: str, artifact: str, threads: int, conn) -> None:  # noqa: ANN001 - a multiprocessing Connection
    """Worker: load ``artifact`` with ``backend``'s runner, then answer ``block`` requests with timed samples."""
    from vmf_deploy.parity import parity_clips
    from vmf_deploy.preprocess import to_layout
    from vmf_deploy.runners import get_runner

    runner = get_runner(backend, threads=threads)
    runner.load(Path(artifact))
    conn.send("ready")
    clip = None
    while (block := conn.recv()) is not None:
        if clip is None:
            clip = to_layout(parity_clips(block["shape"], [0])[0], runner.input_layout)  # as the artifact takes it
        runner.run(clip)  # untimed: the other process just had the cores
        samples = []
        for _ in range(block["runs"]):
            t = time.perf_counter()
            runner.run(clip)
            samples.append((time.perf_counter() - t) * 1e3)
        conn.send(samples)
    runner.close()


def take_turns(artifacts: dict[str, Path], shape: tuple[int, ...], threads: int, rounds: int,
               block: int) -> dict[str, list[float]]:
    """Time every backend's artifact in alternating blocks (order rotating each round); samples per backend."""
    ctx = mp.get_context("spawn")
    workers = {}
    for backend, artifact in artifacts.items():
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=serve, args=(backend, str(artifact), threads, child), daemon=True)
        proc.start()
        workers[backend] = (proc, parent)
    for backend, (_, conn) in workers.items():
        if conn.recv() != "ready":
            raise RuntimeError(f"{backend} worker did not start")
    samples: dict[str, list[float]] = {b: [] for b in artifacts}
    order = list(artifacts)
    for r in range(rounds):
        for backend in order[r % len(order):] + order[:r % len(order)]:
            conn = workers[backend][1]
            conn.send({"runs": block, "shape": shape})
            samples[backend] += conn.recv()
    for proc, conn in workers.values():
        conn.send(None)
        proc.join(timeout=60)
    return samples


def main(argv: list[str] | None = None) -> int:
    """Export each variant for both runtimes, time them taking turns, print and store the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=["560m", "1g", "2g", "5g"])
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--block", type=int, default=3)
    parser.add_argument("--backends", nargs=2, default=list(BACKENDS), metavar=("BASE", "OTHER"),
                        help="the ratio is OTHER ÷ BASE (default: executorch-xnnpack ÷ onnxruntime-cpu)")
    parser.add_argument("--max-ratio", type=float, default=MAX_RATIO, help=f"the criterion (default {MAX_RATIO})")
    parser.add_argument("--out", type=Path, default=RESULTS / "backend_ratio.json")
    args = parser.parse_args(argv)

    from vmf_deploy import build_seeded_model
    from vmf_deploy.bench.artifacts import export_artifact
    from vmf_deploy.bench.machine import describe, host_device_info
    from vmf_deploy.manifest import write_json_atomic
    from vmf_deploy.runners import runner_class

    base, other = args.backends

    device = host_device_info()
    print(f"backend_ratio: {describe(device)}; {args.threads} threads, {args.rounds} rounds × {args.block} runs",
          flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="vmf-backend-ratio-") as work:
        for variant in args.variants:
            shape = tuple(build_seeded_model(variant, seed=0, frames=args.frames).cfg.input_shape)
            artifacts = {b: export_artifact(runner_class(b).export_target, variant, args.frames,
                                            Path(work) / variant) for b in (base, other)}
            samples = take_turns(artifacts, shape, args.threads, args.rounds, args.block)
            med = {b: statistics.median(s) for b, s in samples.items()}
            ratio = med[other] / med[base]
            rows.append({"variant": variant, "frames": args.frames, "median_ms": med, "samples_ms": samples,
                         "ratio": ratio})
            print(f"  {variant:<5} {base} {med[base]:7.1f} ms   {other} {med[other]:7.1f} ms   ratio {ratio:.3f}× "
                  f"({'met' if ratio <= args.max_ratio else 'missed'}: ≤ {args.max_ratio}×)", flush=True)
    write_json_atomic(args.out, {"tool": "benchmarks/backend_ratio.py", "command": " ".join(sys.argv),
                                 "device": device, "threads": args.threads, "rounds": args.rounds,
                                 "block": args.block, "ratio": f"{other} ÷ {base}", "results": rows})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
