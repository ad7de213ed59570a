"""vmf-predict throughput in videos/s over a folder: the serial loop against the overlapped pipeline.

Generates (once, cached in ``--video-dir``) a folder of mp4v videos at the sizes issue 19 measured,
1280×720 × 132 frames and 640×272 × 250 frames, half each. For every artifact (``--artifact``,
e.g. the 560m 64-frame ONNX and ExecuTorch exports) one :class:`~vmf_deploy.predict.Predictor` is
loaded and the folder predicted in turns, interleaved round by round:

* ``serial``: ``prefetch=0``, decode + preprocess, then inference, one video at a time (before issue 19);
* ``overlap``: ``prefetch=2``, one decoder alongside inference;
* ``overlap ×2``: ``prefetch=2``, two decoders (vmf-predict's default);
* ``overlap ×2, N in flight`` (backends with a throughput mode: OpenVINO): the same with the artifact
  compiled for throughput (``--hint throughput``, vmf-predict's default for several videos), N clips
  on the backend's async queue.

Decoders are threads. "wake-ups in run" is the share of 1 ms wake-ups a sleeping Python thread
gets during ``run`` (about 0%: ``run`` holds the GIL, so decoder threads progress only inside
FFmpeg and numpy calls meanwhile). Per video it also sums the reader's decode + preprocess seconds and the inference
seconds: the serial loop costs their sum, an ideal overlap the larger one. Prints a table and
writes ``benchmarks/results/predict_throughput.json`` with every sample and
``/proc/loadavg`` before and after.

    vmf-export --variant 560m --target onnx --out /tmp/art      # and --target executorch
    .venv/bin/python benchmarks/predict_throughput.py --artifact /tmp/art/560m-64f.onnx /tmp/art/560m-64f.pte
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "predict_throughput.json"
SIZES = (((1280, 720), 132), ((640, 272), 250))
MODES = (("serial", 0, 1), ("overlap", 2, 1), ("overlap ×2", 2, 2))


def ensure_videos(directory: Path, count: int) -> list[Path]:
    """``count`` generated videos alternating the two sizes, written once into ``directory``."""
    sys.path.insert(0, str(ROOT / "tests"))
    import video_factory as vf

    directory.mkdir(parents=True, exist_ok=True)
    videos = []
    for i in range(count):
        (width, height), frames = SIZES[i % 2]
        path = directory / f"v{i:03d}_{width}x{height}.mp4"
        if not path.is_file():
            tmp = path.with_name(f".{path.stem}.partial.mp4")
            shifted = lambda j, h, w, s=i: vf.moving_pattern(j + 7 * s, h, w)  # noqa: E731 - distinct videos
            vf.write_video(tmp, frames, (width, height), pattern=shifted)
            tmp.replace(path)
        videos.append(path)
    return videos


def gil_wakeups(predictor: object, runs: int = 3) -> float:
    """Fraction of the 1 ms wake-ups a sleeping Python thread gets during ``run`` (0: ``run`` holds the GIL)."""
    import threading

    import numpy as np

    clip = np.zeros(predictor.spec.tensor_shape, np.float32)  # in the layout the runner takes
    predictor.runner.run(clip)
    ticks: list[float] = []
    stop = threading.Event()

    def sleeper() -> None:
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    thread = threading.Thread(target=sleeper)
    thread.start()
    fractions = []
    for _ in range(runs):
        t0 = time.perf_counter()
        predictor.runner.run(clip)
        t1 = time.perf_counter()
        fractions.append(sum(t0 < t < t1 for t in ticks) / ((t1 - t0) * 1000))
    stop.set()
    thread.join()
    return statistics.median(fractions)


def run_pass(predictor: object, videos: list[Path], prefetch: int, decoders: int) -> dict:
    """Predict every video once; wall seconds, videos/s and the per-stage sums."""
    from vmf_deploy.overlap import predict_overlapped

    t0 = time.perf_counter()
    read_s = infer_s = 0.0
    failed = 0
    for _, outcome in predict_overlapped(predictor, videos, prefetch=prefetch, decoders=decoders):
        if isinstance(outcome, Exception):
            failed += 1
            continue
        read_s += outcome.clip.stats.decode_seconds + outcome.clip.stats.preprocess_seconds
        infer_s += outcome.inference_seconds
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "videos_per_s": len(videos) / wall, "decode_preprocess_s": read_s,
            "inference_s": infer_s, "failed": failed}


def main(argv: list[str] | None = None) -> int:
    """Generate the videos, run every mode for every artifact interleaved, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--artifact", type=Path, nargs="+", required=True, help="exported artifacts to run")
    parser.add_argument("--videos", type=int, default=12, help="videos in the folder (default 12)")
    parser.add_argument("--video-dir", type=Path, default=Path("/tmp/vmf-predict-throughput"))
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per mode (default 3)")
    parser.add_argument("--threads", type=int, help="intra-op threads of the backends (default: their own)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    from vmf_deploy.bench.machine import describe, host_device_info
    from vmf_deploy.manifest import write_json_atomic
    from vmf_deploy.predict import Predictor

    videos = ensure_videos(args.video_dir, args.videos)
    device = host_device_info()
    load = [Path("/proc/loadavg").read_text().split()[:3]]
    rows = []
    for artifact in args.artifact:
        predictor = Predictor.from_artifact(artifact, threads=args.threads)
        queued = Predictor.from_artifact(artifact, threads=args.threads, throughput=True)
        modes = [(name, prefetch, decoders, predictor) for name, prefetch, decoders in MODES]
        if queued.runner.in_flight > 1:  # the backend has a throughput mode (OpenVINO): vmf-predict's default there
            modes.append((f"overlap ×2, {queued.runner.in_flight} in flight", 2, 2, queued))
        try:
            wakeups = gil_wakeups(predictor)
            samples: dict[str, list[dict]] = {name: [] for name, *_ in modes}
            for rnd in range(args.rounds):
                for name, prefetch, decoders, runs_on in modes:
                    samples[name].append(run_pass(runs_on, videos, prefetch, decoders))
                    print(f"{artifact.name} round {rnd + 1}/{args.rounds} {name}: "
                          f"{samples[name][-1]['videos_per_s']:.2f} videos/s", flush=True)
        finally:
            predictor.close()
            queued.close()
        serial = statistics.median(s["videos_per_s"] for s in samples["serial"])
        for name, prefetch, decoders, runs_on in modes:
            runs = samples[name]
            rows.append({"artifact": artifact.name, "backend": predictor.model_info["backend"],
                         "threads": args.threads, "gil_free_wakeups": wakeups, "mode": name,
                         "prefetch": prefetch, "decoders": decoders, "in_flight": runs_on.runner.in_flight,
                         "videos_per_s": statistics.median(r["videos_per_s"] for r in runs),
                         "decode_preprocess_s_per_video": statistics.median(r["decode_preprocess_s"] for r in runs)
                         / len(videos),
                         "inference_s_per_video": statistics.median(r["inference_s"] for r in runs) / len(videos),
                         "vs_serial": statistics.median(r["videos_per_s"] for r in runs) / serial, "runs": runs})
    load.append(Path("/proc/loadavg").read_text().split()[:3])
    table = Table(title=f"vmf-predict over {len(videos)} videos (half 1280×720 × 132 frames, half 640×272 × 250), "
                        f"median of {args.rounds} interleaved rounds, backend threads {args.threads or 'default'}; "
                        f"{describe(device)}; "
                        f"load {load[0]} → {load[-1]}")
    for col in ("artifact", "backend", "wake-ups in run", "mode", "videos/s", "× serial",
                "decode+preprocess s/video", "inference s/video"):
        table.add_column(col, justify="left" if col in ("artifact", "backend", "mode") else "right")
    for r in rows:
        table.add_row(r["artifact"], r["backend"], f"{r['gil_free_wakeups']:.0%}", r["mode"],
                      f"{r['videos_per_s']:.2f}", f"{r['vs_serial']:.2f}", f"{r['decode_preprocess_s_per_video']:.3f}",
                      f"{r['inference_s_per_video']:.3f}")
    Console(width=200).print(table)
    write_json_atomic(args.out, {"tool": "benchmarks/predict_throughput.py", "command": " ".join(sys.argv),
                                 "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "device": device,
                                 "loadavg_1_5_15_before_after": load, "videos": [str(v) for v in videos],
                                 "rounds": args.rounds, "results": rows})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
