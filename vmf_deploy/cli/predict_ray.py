"""``vmf-predict --engine ray``: score a video library on Ray Data, results in Parquet or JSON Lines.

The options this engine adds to ``vmf-predict``, their checks, and the run: expand the
SOURCEs, load the model once here (so a bad artifact fails fast with exit 3), skip what
``--resume`` finds done, run :mod:`vmf_deploy.batch.ray_engine` with its output journalled,
then write ``--out`` atomically. Ray's own output goes to ``<out>.ray.log``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

PROG = "vmf-predict"


def add_ray_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--engine`` option and the options of the Ray engine."""
    group = parser.add_argument_group("Ray engine (docs/ray.md)")
    group.add_argument("--engine", choices=["local", "ray"], default="local", help="local: this process (default); ray: "
                       "decode tasks and inference actors on Ray Data, results in --out")
    group.add_argument("--address", metavar="ADDR", help="join the Ray cluster at ADDR (e.g. ray://head:10001 or head:6379); "
                       "default: start Ray on this machine")
    group.add_argument("--workers", type=int, help="decode/preprocess tasks running at once (default: as many as "
                       "the free CPUs allow; a local Ray gets the cores left after the actors, at least 1)")
    group.add_argument("--actors", type=int, default=1, help="inference actors, each with its own loaded model "
                       "(default 1)")
    group.add_argument("--out", type=Path, help="result file: .parquet, or .jsonl for JSON Lines (one row a video)")
    group.add_argument("--resume", action="store_true", help="skip the videos already in --out (or in the journal "
                       "an interrupted run left beside it)")
    group.add_argument("--logits", action="store_true", help="keep every class's logit in the result rows")


def check_ray_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Reject Ray options without ``--engine ray`` and the local-only ``--json`` with it."""
    ray_only = [name for name in ("address", "workers", "out") if getattr(args, name) is not None]
    ray_only += [f"{name}" for name in ("resume", "logits") if getattr(args, name)]
    if args.actors != 1:
        ray_only.append("actors")
    if args.engine != "ray":
        if ray_only:
            parser.error(f"--{ray_only[0]} goes with --engine ray")
        return
    if args.hint == "throughput":
        parser.error("--hint throughput is for the local engine: Ray's inference actors run one clip at a time "
                     "(scale them with --actors)")
    if args.json:
        parser.error("--engine ray writes its results with --out FILE.parquet (or .jsonl), not --json")
    if args.out is None:
        parser.error("--engine ray needs --out FILE.parquet (or .jsonl) for its results")
    for name in ("workers", "actors"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be a positive integer, got {value}")


def run_ray(args: argparse.Namespace) -> int:
    """Run ``vmf-predict --engine ray``; returns the exit code."""
    from rich.console import Console

    from ..batch.results import ResultsError, check_out
    from ..batch.sources import SourceError, expand_sources
    from .common import fail
    from .predict import EXIT_USAGE

    console = Console(highlight=False, soft_wrap=True)
    try:
        check_out(args.out)
        paths, duplicates = expand_sources(args.videos)
        done = _resumed_rows(args)
    except (SourceError, ResultsError) as e:
        fail(PROG, str(e), EXIT_USAGE)
    done_paths = {row["path"] for row in done}
    todo = [p for p in paths if p not in done_paths]
    note = f" ({duplicates} duplicate paths dropped)" if duplicates else ""
    resumed = f"; {len(paths) - len(todo)} already in {args.out}, {len(todo)} to predict" if args.resume else ""
    console.print(f"{len(paths)} videos{note}{resumed}")
    return _predict_and_write(args, paths, todo, done, console)


def _resumed_rows(args: argparse.Namespace) -> list[dict]:
    """With --resume, the rows of --out and of its journal (each path once); else none."""
    from ..batch.results import read_journal, read_rows

    if not args.resume:
        return []
    rows: dict[str, dict] = {}
    for row in read_rows(args.out) + read_journal(args.out):
        rows.setdefault(row["path"], row)
    return list(rows.values())


def _predict_and_write(args: argparse.Namespace, paths: list[str], todo: list[str], done: list[dict],
                       console: object) -> int:
    """Load the model, run the missing paths on Ray (journalled), write every row to --out."""
    from ..batch.results import Journal, write_rows
    from .predict import EXIT_OK, EXIT_RAY, EXIT_VIDEO_FAILED, describe_model

    model, spec, info = _checked_model(args)
    console.print(f"model: {describe_model(info)}")
    journal = Journal(args.out, fresh=not args.resume)
    new: list[dict] = []
    if todo:
        code = _run_on_ray(args, todo, model, spec, journal, new, console)
        if code is not None:
            journal.close()
            return code
    returned = {row["path"] for row in new}
    missing = [p for p in todo if p not in returned]
    if missing:  # --out is written only when it holds every path
        print(f"{PROG}: error: the Ray job returned no row for {len(missing)} of {len(todo)} videos (first: "
              f"{missing[0]}); the {len(new)} rows it returned are kept in {journal.path}: rerun with --resume",
              file=sys.stderr)
        journal.close()
        return EXIT_RAY
    by_path = {row["path"]: row for row in done + new}
    ordered = [by_path.pop(p) for p in paths if p in by_path] + list(by_path.values())
    write_rows(args.out, ordered)
    journal.discard()
    failed = sum(not row["ok"] for row in ordered)
    console.print(f"{len(ordered) - failed} of {len(ordered)} videos predicted, {failed} failed → {args.out}")
    return EXIT_VIDEO_FAILED if failed else EXIT_OK


def _checked_model(args: argparse.Namespace) -> tuple[object, object, dict]:
    """``(ModelRef for the actors, preprocessing spec, model info)``, loading the model here once (exit 3 if not)."""
    from ..batch.ray_engine import ModelRef, absolute
    from ..predict import ModelLoadError, Predictor
    from ..runners import runner_class
    from .common import fail
    from .predict import EXIT_MODEL

    model = ModelRef(artifact=absolute(args.artifact), variant=args.variant, checkpoint=absolute(args.checkpoint),
                     frames=args.frames, backend=args.backend, threads=args.threads)
    gpu = args.backend is not None and runner_class(args.backend).uses_gpu
    try:  # a GPU backend is checked on this machine's CPU counterpart: the GPUs may be on the workers only
        if args.artifact:
            predictor = Predictor.from_artifact(model.artifact, None if gpu else args.backend, args.threads)
        else:
            predictor = Predictor.from_variant(args.variant, model.checkpoint, args.frames, args.threads,
                                               backend="torch-cpu" if gpu else args.backend or "torch-cpu")
    except ModelLoadError as e:
        fail(PROG, str(e), EXIT_MODEL)
    info = dict(predictor.model_info, backend=args.backend or predictor.model_info["backend"])
    spec = predictor.spec
    predictor.close()
    return model, spec, info


def _run_on_ray(args: argparse.Namespace, todo: list[str], model: object, spec: object, journal: object,
                new: list[dict], console: object) -> int | None:
    """Predict ``todo`` on Ray, appending rows to ``new`` and the journal; an exit code if the run stopped."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..batch.ray_engine import RayEngineError, cluster_gpus, connect, predict_paths
    from ..runners import runner_class
    from .predict import EXIT_RAY
    from .quiet import count_lines, third_party_output_to

    actors, workers = args.actors, args.workers
    local_cpus = (workers or max(1, (os.cpu_count() or 1) - actors)) + actors
    log = args.out.with_name(args.out.name + ".ray.log")
    uses_gpu = args.backend is not None and runner_class(args.backend).uses_gpu
    console_file, started, code = console.file, False, None
    redirect = contextlib.nullcontext((sys.stdout, sys.stderr)) if args.verbose else third_party_output_to(log)
    with redirect as (out, err):
        console.file = out
        errors = Console(file=err, highlight=False, soft_wrap=True)
        try:
            started = connect(args.address, local_cpus)
            if uses_gpu and not cluster_gpus():
                raise RayEngineError(f"backend {args.backend} needs a GPU and the Ray cluster has none; use a CPU "
                                     "backend or a cluster with GPUs")
            with Progress(TextColumn("predicting on Ray"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=console, transient=True) as progress:
                task = progress.add_task("predicting", total=len(todo))

                def take(rows: list[dict]) -> None:
                    journal.append(rows)
                    new.extend(rows)
                    for row in rows:
                        if not row["ok"]:
                            progress.console.print(f"✗ {row['path']}  {row['error_kind']}: {row['error_message']}",
                                                   markup=False)
                    progress.advance(task, len(rows))

                predict_paths(todo, model, spec, take, topk=args.topk, keep_logits=args.logits,
                              allow_partial=args.allow_partial, workers=workers, actors=actors, use_gpu=uses_gpu)
        except RayEngineError as e:
            kept = f"; the {len(new)} rows finished are kept in {journal.path}: rerun with --resume" if new else ""
            errors.print(f"{PROG}: error: {e}{kept}", markup=False)
            code = EXIT_RAY
        except KeyboardInterrupt:
            errors.print(f"interrupted: the {len(new)} rows finished are kept in {journal.path}; rerun with "
                         "--resume to go on", markup=False)
            code = 130
        finally:
            if started:
                import ray

                ray.shutdown()
            console.file = console_file
    if not count_lines(log):
        log.unlink(missing_ok=True)
    elif code is not None:
        print(f"Ray's own output is in {log}", file=sys.stderr)
    return code
