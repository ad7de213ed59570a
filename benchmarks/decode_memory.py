"""Streamed decoding keeps memory bounded: peak RSS and decode time of vmf-predict's clip reader.

Generates (once, cached in --video-dir) a long 1080p test video with OpenCV's mp4v
writer, and a 10-second one with the same content, then measures each case in a
fresh subprocess (so peak RSS belongs to that case alone):

* ``baseline``: the worker's imports only (Python, numpy, OpenCV, vmf_deploy);
* ``count pass``: ``grab()`` through the whole video, no pixel conversion (what
  a second pass costs when a header's frame count is wrong);
* ``read_clip``: the vmf-predict reader, one 64-frame 172-px clip (560m's input);
* ``naive``: every frame decoded into a list (the whole-video approach), on the
  10-second video only; its memory is extrapolated linearly to the long video.

Each case runs ``--repeats`` times, interleaved; the table shows medians (every run
is in the JSON). Prints a table and writes ``benchmarks/results/decode_memory.json``.

    .venv/bin/python benchmarks/decode_memory.py            # 10 min, 1080p, 30 fps
    .venv/bin/python benchmarks/decode_memory.py --minutes 2
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "decode_memory.json"
WIDTH, HEIGHT = 1920, 1080


def frame_source() -> "object":
    """A generator function of test frames: gradients, a colour ramp and a moving white square."""
    import numpy as np

    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    base = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    base[..., 0] = (255 * x / (WIDTH - 1)).astype(np.uint8)
    base[..., 1] = (255 * y / (HEIGHT - 1)).astype(np.uint8)

    def frame(i: int) -> np.ndarray:
        f = base.copy()
        f[..., 2] = (i * 3) % 256
        top, left = (i * 7) % (HEIGHT - 200), (i * 11) % (WIDTH - 200)
        f[top:top + 200, left:left + 200] = 255
        return f

    return frame


def generate(path: Path, seconds: float, fps: float) -> float:
    """Write ``seconds`` of 1080p mp4v video to ``path`` (via a temp name); return the seconds it took."""
    import cv2

    frames = int(round(seconds * fps))
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    t0 = time.perf_counter()
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise SystemExit(f"OpenCV could not open an mp4v writer for {tmp}")
    make = frame_source()
    try:
        for i in range(frames):
            writer.write(make(i))
    finally:
        writer.release()
    tmp.replace(path)
    return time.perf_counter() - t0


def ensure_video(directory: Path, seconds: float, fps: float) -> tuple[Path, float | None]:
    """The cached test video of this length, generated if missing; (path, generation seconds or None)."""
    path = directory / f"vmf_decode_bench_{WIDTH}x{HEIGHT}_{fps:g}fps_{seconds:g}s.mp4"
    if path.is_file():
        return path, None
    need = seconds * fps * 40_000  # ~28 KB per mp4v frame measured, with margin
    free = shutil.disk_usage(directory).free
    if free < 2 * need:
        raise SystemExit(f"{directory} has {free / 1e9:.1f} GB free; the video needs about {need / 1e9:.1f} GB")
    print(f"generating {path} ({seconds:g} s at {fps:g} fps) ...", flush=True)
    return path, generate(path, seconds, fps)


def worker(mode: str, video: str) -> dict:
    """Run one case in this process and return its measurements (peak RSS from getrusage)."""
    import cv2
    import numpy as np  # noqa: F401  (imported in every mode, so the baseline includes it)

    from vmf_deploy.preprocess import PreprocessSpec
    from vmf_deploy.video import read_clip

    out: dict = {"mode": mode}
    t0 = time.perf_counter()
    if mode == "count":
        cap = cv2.VideoCapture(video, cv2.CAP_FFMPEG)
        n = 0
        while cap.grab():
            n += 1
        cap.release()
        out.update(frames_decoded=n, frames_kept=0, decode_s=time.perf_counter() - t0)
    elif mode == "read_clip":
        clip = read_clip(video, PreprocessSpec(frames=64, crop=172, short_side=172))
        s = clip.stats
        out.update(frames_decoded=s.grabbed, frames_kept=s.max_retained, passes=s.passes, retrieved=s.retrieved,
                   decode_s=s.decode_seconds, preprocess_s=s.preprocess_seconds, video_frames=clip.num_frames)
    elif mode == "naive":
        cap = cv2.VideoCapture(video, cv2.CAP_FFMPEG)
        frames = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
        cap.release()
        out.update(frames_decoded=len(frames), frames_kept=len(frames), decode_s=time.perf_counter() - t0,
                   bytes_per_frame=int(frames[0].nbytes))
    elif mode != "baseline":
        raise SystemExit(f"unknown mode {mode}")
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return out


def measure(mode: str, video: Path) -> dict:
    """Run :func:`worker` in a fresh interpreter."""
    proc = subprocess.run([sys.executable, __file__, "--worker", mode, str(video)], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"worker {mode} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def median_row(runs: list[dict]) -> dict:
    """One row of medians over repeated runs of a case (counts are identical across runs)."""
    row = dict(runs[0])
    for key, value in runs[0].items():
        if isinstance(value, float):
            row[key] = statistics.median(r[key] for r in runs)
    return row


def print_table(rows: list[dict], title: str) -> None:
    """Render the measurements with rich."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in ("case", "video", "frames decoded", "frames kept", "decode s", "decode fps", "preprocess s",
                "peak RSS MB", "above baseline MB"):
        table.add_column(col, justify="left" if col in ("case", "video") else "right")
    for r in rows:
        fps = f"{r['frames_decoded'] / r['decode_s']:.0f}" if r.get("decode_s") else "—"
        table.add_row(r["case"], r["video"], str(r.get("frames_decoded", "—")), str(r.get("frames_kept", "—")),
                      f"{r['decode_s']:.1f}" if "decode_s" in r else "—", fps,
                      f"{r['preprocess_s']:.1f}" if "preprocess_s" in r else "—", f"{r['peak_rss_mb']:.0f}",
                      f"{r['above_baseline_mb']:.0f}")
    Console(width=170).print(table)


def main(argv: list[str] | None = None) -> int:
    """Generate the videos (cached), measure every case, print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the long video (default 10)")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--video-dir", type=Path, default=Path("/tmp"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--repeats", type=int, default=3, help="runs per case (medians are reported)")
    parser.add_argument("--worker", nargs=2, metavar=("MODE", "VIDEO"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return 0

    import cv2
    import psutil

    long_video, long_gen = ensure_video(args.video_dir, args.minutes * 60, args.fps)
    short_video, short_gen = ensure_video(args.video_dir, 10.0, args.fps)
    long_name, short_name = f"{args.minutes:g} min 1080p", "10 s 1080p"
    baseline = measure("baseline", short_video)
    cases = (("count pass: grab() only", "count", long_video, long_name),
             ("read_clip: 64-frame clip", "read_clip", long_video, long_name),
             ("read_clip: 64-frame clip", "read_clip", short_video, short_name),
             ("naive: all frames in a list", "naive", short_video, short_name))
    runs: list[list[dict]] = [[] for _ in cases]
    for rep in range(args.repeats):
        for i, (case, mode, video, name) in enumerate(cases):
            print(f"run {rep + 1}/{args.repeats}: {case} on {name} ...", flush=True)
            runs[i].append(measure(mode, video))
    rows = []
    for (case, _, _, name), case_runs in zip(cases, runs):
        r = median_row(case_runs)
        r.update(case=case, video=name, above_baseline_mb=r["peak_rss_mb"] - baseline["peak_rss_mb"], runs=case_runs)
        rows.append(r)
    naive = rows[-1]
    long_frames = rows[0]["frames_decoded"]
    extrapolated_gb = (baseline["peak_rss_mb"] + naive["bytes_per_frame"] * long_frames / 2**20) / 1024
    title = (f"Decoding memory, {platform.node()} ({psutil.cpu_count()} CPUs), OpenCV {cv2.__version__}, "
             f"median of {args.repeats}")
    print_table(rows, title)
    print(f"naive whole-video decoding of the {long_name} video would need ≈ {extrapolated_gb:.0f} GB "
          f"({long_frames} frames × {naive['bytes_per_frame'] / 2**20:.1f} MiB, extrapolated, not run)")
    result = {
        "benchmark": "decode_memory", "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"node": platform.node(), "cpus": psutil.cpu_count(), "memory_gb": psutil.virtual_memory().total / 2**30,
                    "python": platform.python_version(), "opencv": cv2.__version__},
        "videos": {"long": {"path": str(long_video), "seconds": args.minutes * 60, "fps": args.fps,
                            "size": [WIDTH, HEIGHT], "codec": "mp4v", "bytes": long_video.stat().st_size,
                            "generation_seconds": long_gen},
                   "short": {"path": str(short_video), "seconds": 10.0, "fps": args.fps, "size": [WIDTH, HEIGHT],
                             "codec": "mp4v", "bytes": short_video.stat().st_size, "generation_seconds": short_gen}},
        "repeats": args.repeats, "load_average_1_5_15": list(psutil.getloadavg()),
        "baseline_peak_rss_mb": baseline["peak_rss_mb"], "rows": rows,
        "naive_long_video_extrapolated_gb": extrapolated_gb,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    from vmf_deploy.manifest import write_json_atomic

    write_json_atomic(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
