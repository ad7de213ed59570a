"""``vmf-dataset``: write datasets to disk. ``vmf-dataset synth`` encodes the procedural action dataset."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .common import fail, output_folder_problem

PROG = "vmf-dataset"
SPLITS = ("train", "val", "test", "calibration")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    parser = argparse.ArgumentParser(prog=PROG, description="Write labelled video datasets to disk.")
    sub = parser.add_subparsers(dest="command", required=True)
    synth = sub.add_parser("synth", help="the procedural action dataset as encoded videos, DIR/<class>/*.mp4",
                           description="Render the procedural action dataset (12 classes that differ only over time: "
                           "moving left/right/up/down, rotating either way, growing/shrinking, flashing slow/fast, "
                           "meeting/parting) and encode it as DIR/<class>/*.mp4 with DIR/classes.txt. Deterministic "
                           "from --seed and --split; splits never share a clip.")
    synth.add_argument("--out", type=Path, required=True, help="output folder (created)")
    synth.add_argument("--per-class", type=int, required=True, help="videos per class")
    synth.add_argument("--frames", type=int, default=32, help="frames per video (default 32)")
    synth.add_argument("--size", type=int, default=64, help="frame side in pixels, even (default 64)")
    synth.add_argument("--fps", type=float, default=16.0, help="frame rate written in the files (default 16)")
    synth.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    synth.add_argument("--split", choices=SPLITS, default="test",
                       help="which split to write (default test: held out from `vmf-train --data synthetic`)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``vmf-dataset``."""
    args = build_parser().parse_args(argv)
    if args.per_class < 1:
        fail(PROG, f"--per-class must be at least 1, got {args.per_class}")
    if args.frames < 1:
        fail(PROG, f"--frames must be at least 1, got {args.frames}")
    if args.size < 16 or args.size % 2:
        fail(PROG, f"--size must be an even number of pixels >= 16, got {args.size}")
    if args.fps <= 0:
        fail(PROG, f"--fps must be positive, got {args.fps}")
    problem = output_folder_problem("--out", args.out)
    if problem:
        fail(PROG, problem)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..datasets.writer import write_synthetic

    start = time.perf_counter()
    with Progress(TextColumn("[bold]synth[/]"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("videos", total=None)
        try:
            written = write_synthetic(args.out, args.per_class, args.frames, args.size, args.fps, args.seed,
                                      args.split, progress=lambda done, total: bar.update(task, completed=done,
                                                                                          total=total))
        except (OSError, RuntimeError, ValueError) as e:
            fail(PROG, str(e), 1)
    print(f"wrote {written.files} videos ({written.fourcc} {written.suffix}, {args.frames} frames, "
          f"{args.size}x{args.size}, split {args.split}, seed {args.seed}) to {written.root} in "
          f"{time.perf_counter() - start:.1f} s; classes in {written.root / 'classes.txt'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
