"""Preprocessing milliseconds per frame: the three implementations issue 19 went through, interleaved in one run.

``before`` is ``vmf_deploy/preprocess.py`` as of commit ``3374d84`` (float64, every kept row converted
whole), loaded from git and fed an RGB view of the BGR frame as the old reader did; ``crop plan`` is
the same file at ``38d71c6`` (gather the crop's rows and columns, blend in HWC, normalise per
channel); ``after`` is :func:`vmf_deploy.preprocess.preprocess_frame` (one gather of the four
corners in CHW order) on the BGR frame, as :func:`vmf_deploy.video.read_clip` calls it now. All
preprocess the same decoded frames of generated 1280×720 and 640×272 videos to the 560m input
(172 px), taking turns over the 64 frames, ``--rounds`` times. Also reported: the largest
difference from ``before`` and from ``crop plan``, and ``read_clip``'s decode / preprocess seconds
on each video. ``after, NTHWC`` is the same function with a channels-last spec (an OpenVINO IR's clip,
``export/openvino.toml``'s ``input_layout``), whose crop must equal ``after``'s transposed exactly. Prints a table, writes ``benchmarks/results/preprocess_speed.json``.

    .venv/bin/python benchmarks/preprocess_speed.py
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "preprocess_speed.json"
BEFORE_COMMIT = "3374d84"
CROP_PLAN_COMMIT = "38d71c6"
VIDEOS = (("1280×720, 132 frames", (1280, 720), 132), ("640×272, 250 frames", (640, 272), 250))


def load_at(commit: str) -> object:
    """The preprocess module of ``commit``, imported from ``git show`` under another name."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:vmf_deploy/preprocess.py"],
                            check=True, capture_output=True, text=True).stdout
    name = f"preprocess_{commit}"
    path = Path(tempfile.mkdtemp(prefix="vmf-preprocess-")) / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def decoded_frames(path: Path, count: int) -> list:
    """The first ``count`` BGR frames of a video, as OpenCV decodes them."""
    import cv2

    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    frames = []
    while len(frames) < count:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def time_frames(fn: object, frames: list) -> float:
    """Median milliseconds of ``fn(frame)`` over ``frames``."""
    times = []
    for frame in frames:
        t0 = time.perf_counter()
        fn(frame)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main(argv: list[str] | None = None) -> int:
    """Generate the videos, time both paths interleaved, print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of 64 frames per path, taking turns (default 5)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import numpy as np
    from rich.console import Console
    from rich.table import Table

    sys.path.insert(0, str(ROOT / "tests"))
    import video_factory as vf

    from vmf_deploy.bench.machine import describe, host_device_info
    from vmf_deploy.manifest import write_json_atomic
    from vmf_deploy.preprocess import PreprocessSpec, preprocess_frame, rgb_channels
    from vmf_deploy.video import bgr_to_rgb, read_clip

    before, crop_plan = load_at(BEFORE_COMMIT), load_at(CROP_PLAN_COMMIT)
    spec = PreprocessSpec(frames=64, crop=172, short_side=172)
    channels_last = dataclasses.replace(spec, layout="NTHWC")
    old_spec = before.PreprocessSpec(frames=1, crop=172, short_side=172)
    plan_spec = crop_plan.PreprocessSpec(frames=64, crop=172, short_side=172)
    device = host_device_info()
    load = [Path("/proc/loadavg").read_text().split()[:3]]
    rows = []
    with tempfile.TemporaryDirectory(prefix="vmf-preprocess-speed-") as work:
        for name, size, count in VIDEOS:
            video = vf.write_video(Path(work) / f"{size[0]}x{size[1]}.mp4", count, size)
            frames = decoded_frames(video, 64)

            def old(frame: np.ndarray) -> np.ndarray:
                return before.preprocess_clip([bgr_to_rgb(frame)], old_spec)[0, :, 0]

            def planned(frame: np.ndarray) -> np.ndarray:
                pixels, channels = crop_plan.rgb_channels(frame, order="BGR")
                return crop_plan.preprocess_frame(pixels, plan_spec, channels)

            def new(frame: np.ndarray) -> np.ndarray:
                pixels, channels = rgb_channels(frame, order="BGR")
                return preprocess_frame(pixels, spec, channels)

            def new_last(frame: np.ndarray) -> np.ndarray:
                pixels, channels = rgb_channels(frame, order="BGR")
                return preprocess_frame(pixels, channels_last, channels)

            paths = {"before": old, "crop plan": planned, "after": new, "after, NTHWC": new_last}
            samples: dict[str, list[float]] = {k: [] for k in paths}
            for _ in range(args.rounds):
                for key, fn in paths.items():
                    samples[key].append(time_frames(fn, frames))
            diff = max(float(np.abs(old(f) - new(f)).max()) for f in frames)
            diff_plan = max(float(np.abs(planned(f) - new(f)).max()) for f in frames)
            diff_last = max(float(np.abs(new_last(f) - new(f).transpose(1, 2, 0)).max()) for f in frames)
            clip = read_clip(video, spec)
            med = {k: statistics.median(v) for k, v in samples.items()}
            rows.append({"video": name, "size": list(size), "frames": count, "ms_per_frame": med,
                         "samples_ms_per_frame": samples, "speedup": med["before"] / med["after"],
                         "speedup_over_crop_plan": med["crop plan"] / med["after"],
                         "channels_last_over_planar": med["after, NTHWC"] / med["after"],
                         "max_abs_difference": diff, "max_abs_difference_crop_plan": diff_plan,
                         "max_abs_difference_channels_last": diff_last,
                         "read_clip_decode_s": clip.stats.decode_seconds,
                         "read_clip_preprocess_s": clip.stats.preprocess_seconds})
    load.append(Path("/proc/loadavg").read_text().split()[:3])
    table = Table(title=f"Preprocessing per frame to 172 px, median of {args.rounds} interleaved rounds × 64 frames; "
                        f"{describe(device)}; load {load[0]} → {load[-1]}")
    for col in ("video", "before ms", "crop plan ms", "after ms", "after NTHWC ms", "speedup", "over crop plan",
                "NTHWC ÷ after", "max |Δ|", "max |Δ| crop plan", "max |Δ| NTHWC", "read_clip decode s",
                "read_clip preprocess s"):
        table.add_column(col, justify="left" if col == "video" else "right")
    for r in rows:
        ms = r["ms_per_frame"]
        table.add_row(r["video"], f"{ms['before']:.2f}", f"{ms['crop plan']:.2f}", f"{ms['after']:.2f}",
                      f"{ms['after, NTHWC']:.2f}", f"{r['speedup']:.1f}×", f"{r['speedup_over_crop_plan']:.2f}×",
                      f"{r['channels_last_over_planar']:.2f}", f"{r['max_abs_difference']:.1e}",
                      f"{r['max_abs_difference_crop_plan']:.1e}", f"{r['max_abs_difference_channels_last']:.1e}",
                      f"{r['read_clip_decode_s']:.3f}",
                      f"{r['read_clip_preprocess_s']:.3f}")
    Console(width=200).print(table)
    write_json_atomic(args.out, {"tool": "benchmarks/preprocess_speed.py", "command": " ".join(sys.argv),
                                 "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "device": device,
                                 "loadavg_1_5_15_before_after": load, "before_commit": BEFORE_COMMIT,
                                 "crop_plan_commit": CROP_PLAN_COMMIT,
                                 "rounds": args.rounds, "results": rows})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
