"""Videos/s of vmf-predict's Ray engine (1 and 2 inference actors) against the plain serial loop.

Generates (once, cached in --video-dir) ``--videos`` short test videos with OpenCV's mp4v
writer, then times, interleaved for ``--repeats`` rounds on the same machine:

* ``serial``: the plain ``vmf-predict`` loop: one ``Predictor``, ``predict()`` per video;
* ``overlapped``: ``vmf-predict``'s local engine, decoding ahead while the model runs
  (:func:`vmf_deploy.overlap.predict_overlapped`, its defaults: prefetch 2, 1 decoder);
* ``ray, N actor(s)``: :func:`vmf_deploy.batch.ray_engine.predict_paths` with N inference
  actors and ``--workers`` decode tasks, on one local Ray started once (its start-up is
  reported apart; actor start-up and model loading are inside every round, as the model
  load is in the serial loop's).

Each figure is wall time from nothing loaded to every result in hand. Prints a table (medians,
ratios to the serial loop) and writes ``benchmarks/results/ray_throughput.json`` with every
round, the CPU, and the load average around each round (the machine may be shared); with
``--threads N`` the file is ``ray_throughput-threadsN.json``.

    .venv/bin/vmf-export --variant 560m --target onnx --frames 16 --out /tmp/art
    .venv/bin/python benchmarks/ray_throughput.py --artifact /tmp/art/560m-16f.onnx
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "ray_throughput.json"


def make_videos(folder: Path, count: int, frames: int, size: tuple[int, int]) -> list[str]:
    """``count`` mp4v videos of ``frames`` frames at ``size`` in ``folder`` (reused when already there)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import video_factory as vf

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"clip{i:03d}-{frames}f-{size[0]}x{size[1]}.mp4"
        if not path.exists():
            tmp = path.with_name(".tmp-" + path.name)
            vf.write_video(tmp, frames + i % 7, size)
            tmp.rename(path)
        paths.append(str(path))
    return paths


def serial(paths: list[str], artifact: str, threads: int | None) -> float:
    """Seconds for the plain loop: load the model, predict every video in turn."""
    from vmf_deploy.predict import Predictor

    t0 = time.perf_counter()
    predictor = Predictor.from_artifact(artifact, None, threads)
    for path in paths:
        predictor.predict(path, 5)
    predictor.close()
    return time.perf_counter() - t0


def overlapped(paths: list[str], artifact: str, threads: int | None) -> float:
    """Seconds for the local engine's overlapped loop: load the model, decode ahead while it runs."""
    from vmf_deploy.overlap import predict_overlapped
    from vmf_deploy.predict import Predictor

    t0 = time.perf_counter()
    predictor = Predictor.from_artifact(artifact, None, threads)
    for _video, outcome in predict_overlapped(predictor, paths, 5):
        if isinstance(outcome, Exception):
            raise SystemExit(f"the overlapped loop failed on a generated video: {outcome}")
    predictor.close()
    return time.perf_counter() - t0


def on_ray(paths: list[str], artifact: str, threads: int | None, actors: int, workers: int) -> float:
    """Seconds for the Ray engine with ``actors`` inference actors and ``workers`` decode tasks."""
    from vmf_deploy.batch.ray_engine import ModelRef, predict_paths
    from vmf_deploy.predict import Predictor

    t0 = time.perf_counter()
    driver = Predictor.from_artifact(artifact)  # what the CLI does first: load once, take the spec
    spec = driver.spec
    driver.close()
    rows: list[dict] = []
    predict_paths(paths, ModelRef(artifact=artifact, threads=threads), spec, rows.extend, topk=5, keep_logits=False,
                  allow_partial=False, workers=workers, actors=actors, use_gpu=False)
    seconds = time.perf_counter() - t0
    if sorted(r["path"] for r in rows) != sorted(paths) or not all(r["ok"] for r in rows):
        raise SystemExit("the Ray run did not return one good row per video")
    return seconds


def main() -> int:
    """Run the interleaved rounds, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--artifact", required=True, help="an exported .onnx (or .pte) with its manifest")
    parser.add_argument("--videos", type=int, default=36, help="generated videos (default 36)")
    parser.add_argument("--frames", type=int, default=90, help="frames per video (default 90, 3 s at 30 fps)")
    parser.add_argument("--size", default="320x240", help="WxH of the videos (default 320x240)")
    parser.add_argument("--workers", type=int, default=2, help="decode tasks of the Ray runs (default 2)")
    parser.add_argument("--threads", type=int, help="backend threads per model (default: the backend's own)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--video-dir", type=Path, default=Path("/tmp/vmf-ray-bench-videos"))
    args = parser.parse_args()

    from vmf_deploy.batch.ray_engine import connect
    from vmf_deploy.bench.machine import describe, host_device_info
    from vmf_deploy.cli.quiet import third_party_output_to

    width, height = (int(v) for v in args.size.split("x"))
    paths = make_videos(args.video_dir, args.videos, args.frames, (width, height))
    artifact = str(Path(args.artifact).resolve())
    configs = {"serial": lambda: serial(paths, artifact, args.threads),
               "overlapped": lambda: overlapped(paths, artifact, args.threads)}
    for actors in (1, 2):
        configs[f"ray, {actors} actor{'s' if actors > 1 else ''}"] = (
            lambda a=actors: on_ray(paths, artifact, args.threads, a, args.workers))
    rounds: dict[str, list[dict]] = {name: [] for name in configs}
    results = RESULTS.with_name(f"ray_throughput-threads{args.threads}.json") if args.threads else RESULTS
    log = results.with_suffix(".ray.log")
    with third_party_output_to(log) as (out, _err):
        t0 = time.perf_counter()
        connect(None, num_cpus=args.workers + 2)
        ray_start = time.perf_counter() - t0
        for r in range(args.repeats):
            for name, run in configs.items():
                load_before = os.getloadavg()
                seconds = run()
                rounds[name].append({"round": r, "seconds": seconds, "load_before": load_before,
                                     "load_after": os.getloadavg()})
                print(f"round {r} {name}: {seconds:.2f} s, load {load_before[0]:.2f}", file=out, flush=True)
        import ray

        ray.shutdown()
    log.unlink(missing_ok=True)
    device = host_device_info()
    base = statistics.median(x["seconds"] for x in rounds["serial"])
    table = []
    for name, runs in rounds.items():
        median = statistics.median(x["seconds"] for x in runs)
        table.append({"config": name, "median_seconds": median, "videos_per_second": len(paths) / median,
                      "speedup_vs_serial": base / median})
    print(f"{len(paths)} videos, {args.frames}+ frames at {args.size}; artifact {Path(artifact).name}; "
          f"{describe(device)}; Ray started in {ray_start:.1f} s (not counted)")
    print(f"{'config':<16} {'median s':>9} {'videos/s':>9} {'vs serial':>10}")
    for row in table:
        print(f"{row['config']:<16} {row['median_seconds']:>9.2f} {row['videos_per_second']:>9.2f} "
              f"{row['speedup_vs_serial']:>9.2f}×")
    doc = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "device": device,
           "describe": describe(device), "artifact": Path(artifact).name, "videos": len(paths),
           "frames": args.frames, "size": args.size, "workers": args.workers, "threads": args.threads,
           "repeats": args.repeats, "ray_start_seconds": ray_start, "table": table, "rounds": rounds}
    results.parent.mkdir(parents=True, exist_ok=True)
    from vmf_deploy.manifest import write_json_atomic

    write_json_atomic(results, doc)
    print(f"wrote {results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
