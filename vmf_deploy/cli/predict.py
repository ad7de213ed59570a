"""``vmf-predict``: top-k labels for video files (the model's classes: a checkpoint's own, else Kinetics-400).

Exit codes: 0 every video was predicted; 1 at least one video failed (each failure
is reported, the others are still predicted); 2 usage error (bad arguments, no
video found in a directory, unwritable --json path); 3 the model could not be
loaded (manifest, artifact hash, checkpoint, labels or backend); 4 with ``--engine ray``,
Ray could not be reached or the job failed (finished rows are kept: rerun with --resume).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TextIO

from .common import fail, output_file_problem

EXIT_OK, EXIT_VIDEO_FAILED, EXIT_USAGE, EXIT_MODEL, EXIT_RAY = 0, 1, 2, 3, 4
PROG = "vmf-predict"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used by the docs)."""
    from ..runners import BACKENDS

    parser = argparse.ArgumentParser(
        prog=PROG, description="Predict the top-k classes of videos with an exported artifact (its manifest gives "
        "preprocessing and labels) or a PyTorch variant (a checkpoint's class names, else Kinetics-400).",
        epilog="exit codes: 0 all videos predicted, 1 some video failed, 2 usage error, 3 model could not be "
        "loaded, 4 the Ray job failed (--engine ray)")
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="video files, or directories (every video in "
                        "them, sorted by name); with --engine ray also glob patterns, .txt/.csv/.parquet path "
                        "lists and URIs pyarrow opens (docs/ray.md)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--artifact", type=Path, help="exported artifact (.onnx, .pte, .mlpackage, .xml) with its "
                        ".manifest.json beside it")
    source.add_argument("--variant", help="registry name run in eager PyTorch (torch-cpu or torch-cuda)")
    parser.add_argument("--checkpoint", type=Path, help="weights for --variant, with their class names and "
                        "preprocessing (without it: the seeded init)")
    parser.add_argument("--frames", type=int, help="clip length for --variant's seeded init (default: the variant's)")
    parser.add_argument("--backend", choices=list(BACKENDS), help="default: torch-cpu for --variant; for "
                        "--artifact the first backend that runs its format (.onnx onnxruntime-cpu, .pte "
                        "executorch-xnnpack, .mlpackage coreml); torch-cpu/torch-cuda with --artifact run the "
                        "PyTorch model it was exported from (the reference)")
    parser.add_argument("--topk", type=int, default=5, help="classes to show per video (default 5)")
    parser.add_argument("--json", metavar="FILE", help="write one record per video to FILE ('-' for stdout)")
    parser.add_argument("--threads", type=int, help="intra-op threads of the backend (default: its own)")
    parser.add_argument("--allow-partial", action="store_true", help="predict on the decodable part of truncated "
                        "or corrupt videos instead of failing them")
    parser.add_argument("--prefetch", type=int, default=2, help="videos decoded ahead while the model runs on the "
                        "current one (default 2; 0 decodes and infers one video at a time)")
    parser.add_argument("--decoders", type=int, default=2, help="threads decoding videos ahead (default 2, "
                        "overlap.DEFAULT_DECODERS)")
    parser.add_argument("--hint", choices=("auto", "latency", "throughput"), default="auto",
                        help="how the backend is compiled, for backends that have such a choice (OpenVINO's "
                        "performance hint): 'throughput' keeps several clips in flight on an async queue, "
                        "'latency' runs one at a time; 'auto' (default): throughput for more than one video "
                        "with --prefetch > 0, else latency")
    parser.add_argument("--progress", action="store_true", help="show the progress bar over the files (on stderr) "
                        "even when the output is not a terminal")
    parser.add_argument("--verbose", action="store_true", help="show what the libraries print (by default it goes "
                        "to a temp log file, or OUT.ray.log with --engine ray)")
    from .predict_ray import add_ray_arguments

    add_ray_arguments(parser)
    return parser


def expand_videos(args: list[str]) -> list[str]:
    """Files as given; directories replaced by their videos (sorted). Missing paths stay, to fail per file."""
    from ..video import VIDEO_EXTENSIONS, list_videos

    out: list[str] = []
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            videos = list_videos(path)
            if not videos:
                fail(PROG, f"directory {arg} holds no video files ({', '.join(VIDEO_EXTENSIONS[:6])}, ...)",
                     EXIT_USAGE)
            out.extend(str(v) for v in videos)
        else:
            out.append(arg)
    return out


def check_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Reject option combinations that do not make sense, with the fix."""
    if args.variant:  # the registry imports torch, which an artifact's runtime may not need
        from ..models import list_models
        from ..models.registry import unknown_model_error

        if args.variant not in list_models():
            parser.error(str(unknown_model_error(args.variant)))
    from ..predict import is_eager

    if args.variant and args.backend and not is_eager(args.backend):
        parser.error(f"--variant runs eager PyTorch (torch-cpu, torch-cuda); to use {args.backend}, export first "
                     f"(vmf-export --variant {args.variant} ...) and pass --artifact")
    if args.artifact and (args.checkpoint or args.frames):
        parser.error("--checkpoint and --frames go with --variant; an artifact's manifest fixes both")
    if args.checkpoint and args.frames:
        parser.error("--frames applies to the seeded init only: a checkpoint fixes its clip length")
    for name in ("topk", "frames", "threads", "decoders"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be a positive integer, got {value}")
    if args.prefetch < 0:
        parser.error(f"--prefetch must be 0 (serial) or a positive integer, got {args.prefetch}")
    problem = output_file_problem("--json", args.json, "predictions.json") if args.json not in (None, "-") else None
    if problem:
        parser.error(problem)
    from .predict_ray import check_ray_args

    check_ray_args(args, parser)


def load_predictor(args: argparse.Namespace, videos: int = 1) -> "object":
    """The Predictor the arguments ask for, for ``videos`` files (exit 3 with the reason if it cannot be loaded)."""
    from ..predict import ModelLoadError, Predictor

    throughput = args.hint == "throughput" or (args.hint == "auto" and videos > 1 and args.prefetch > 0)
    try:
        if args.artifact:
            return Predictor.from_artifact(args.artifact, args.backend, args.threads, throughput)
        return Predictor.from_variant(args.variant, args.checkpoint, args.frames, args.threads,
                                      backend=args.backend or "torch-cpu")
    except ModelLoadError as e:
        fail(PROG, str(e), EXIT_MODEL)


def describe_model(info: dict) -> str:
    """One line naming what runs: variant, weights, artifact, backend."""
    weights = {"seeded-init": f"seeded init (seed {info['seed']})", "checkpoint": f"checkpoint {info['checkpoint']}"}
    parts = [f"{info['variant']}", weights.get(info["source"], str(info["source"]))]
    if info["artifact"]:
        parts.append(f"artifact {info['artifact']} ({info['precision']}, sha256 {info['sha256'][:12]}… verified)")
    in_flight = info.get("in_flight", 1)
    parts.append(f"backend {info['backend']}" + (f" ({in_flight} clips in flight)" if in_flight > 1 else ""))
    parts.append("input " + "×".join(map(str, info["input_shape"])))
    return " · ".join(parts)


def print_prediction(console: object, record: dict) -> None:
    """Human-readable block for one video record."""
    from rich.markup import escape

    if not record["ok"]:
        console.print(f"[bold red]✗[/] {escape(record['video'])}  [red]{escape(record['error']['kind'])}[/]: "
                      f"{escape(record['error']['message'])}")
        return
    v, s = record["video_info"], record["seconds"]
    seconds = f", {v['frames'] / v['fps']:.1f} s" if v["fps"] > 0 else ""
    console.print(f"[bold green]✓[/] {escape(record['video'])}  {v['width']}×{v['height']}, {v['frames']} frames"
                  f"{seconds}, {escape(v['codec'])}/{escape(v['container'])} → {len(record['sampled_frames'])}-frame clip")
    for item in record["top"]:
        console.print(f"   {item['rank']:>2}. {item['score']:.4f}  {escape(item['label'])}")
    console.print(f"   decode {s['decode']:.3f} s · preprocess {s['preprocess']:.3f} s · "
                  f"inference {s['inference']:.3f} s")
    for note in record["notes"]:
        console.print(f"   [yellow]note[/]: {escape(note)}")


def progress_console(console: object, videos: list[str], forced: bool, err: TextIO) -> object | None:
    """Where the progress bar over the files goes: the console if it is a terminal, ``err`` if ``forced``, else None."""
    from rich.console import Console

    if len(videos) < 2:
        return None
    if console.is_terminal:
        return console
    return Console(file=err, force_terminal=True) if forced else None


def run_batch(predictor: object, videos: list[str], args: argparse.Namespace, console: object,
              err: TextIO) -> list[dict]:
    """Predict every video, decoding the next ones during inference; a failure is recorded and the batch goes on."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..overlap import predict_overlapped
    from ..predict import error_record

    records: list[dict] = []
    bar_console = progress_console(console, videos, args.progress, err)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=bar_console, transient=bar_console is console, disable=bar_console is None) as progress:
        task = progress.add_task("predicting", total=len(videos))
        for video, outcome in predict_overlapped(predictor, videos, args.topk, args.allow_partial, args.prefetch,
                                                 args.decoders):
            record = error_record(video, outcome) if isinstance(outcome, Exception) else outcome.to_record()
            records.append(record)
            print_prediction(console, record)
            progress.update(task, advance=1, description=f"predicted {Path(video).name}")
    return records


def write_json(target: str, predictor: object, records: list[dict]) -> None:
    """Write the predictions document to ``target`` (atomically) or stdout for ``-``."""
    from ..manifest import write_json_atomic

    doc = {"schema": "vmf-deploy/predictions", "schema_version": 1, "model": predictor.model_info,
           "model_notes": predictor.notes, "load_seconds": predictor.load_seconds, "videos": records,
           "failed": sum(not r["ok"] for r in records)}
    if target == "-":
        print(json.dumps(doc, indent=2))
    else:
        write_json_atomic(target, doc)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``vmf-predict``."""
    from rich.console import Console

    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(args, parser)
    if args.engine == "ray":
        from .predict_ray import run_ray

        return run_ray(args)
    videos = expand_videos(args.videos)
    from .quiet import libraries_quiet

    with libraries_quiet(PROG, args.verbose) as (out, err):
        console = Console(file=err if args.json == "-" else out, highlight=False,
                          width=None if out.isatty() else 120)
        t0 = time.perf_counter()
        predictor = load_predictor(args, len(videos))
        console.print(f"model: {describe_model(predictor.model_info)} (loaded in {time.perf_counter() - t0:.2f} s)")
        for note in predictor.notes:
            console.print(f"[yellow]note[/]: {note}")
        try:
            records = run_batch(predictor, videos, args, console, err)
        finally:
            predictor.close()
        failed = sum(not r["ok"] for r in records)
        if len(records) > 1:
            console.print(f"{len(records) - failed} of {len(records)} videos predicted, {failed} failed")
    if args.json:
        write_json(args.json, predictor, records)
    return EXIT_VIDEO_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
