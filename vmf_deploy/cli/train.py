"""``vmf-train``: train or fine-tune any registry variant on a folder of videos or the procedural dataset.

Exit codes: 0 trained; 1 training failed; 2 usage error (bad arguments, data or checkpoint);
130 interrupted (Ctrl-C): the last complete epoch's checkpoint is intact and ``--resume`` continues.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .common import fail, output_folder_problem

PROG = "vmf-train"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def build_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    p = argparse.ArgumentParser(
        prog=PROG, description="Train or fine-tune a Video Mobile-Former (or any registry variant) on labelled "
        "videos, DIR/<class>/*.mp4 or a CSV of path,label, or on the procedural dataset ('synthetic'). Writes "
        "RUN_DIR/epoch-NNN.safetensors, last.safetensors and best.safetensors (class names and preprocessing in "
        "their metadata), ready for vmf-export --checkpoint.",
        epilog="exit codes: 0 trained, 1 failed, 2 usage error, 130 interrupted (resume with --resume)")
    p.add_argument("--variant", required=True, help="registry name (560m, 1g, 2g, 5g, mobile3d-*, x3d-*)")
    p.add_argument("--data", required=True, help="'synthetic', a folder of class folders, or a CSV of path,label")
    p.add_argument("--out", type=Path, required=True, metavar="RUN_DIR", help="run folder for checkpoints")
    p.add_argument("--frames", type=int, default=16, help="clip length to train at (default 16)")
    p.add_argument("--size", type=int, default=48, help="square crop to train at (default 48)")
    p.add_argument("--epochs", type=int, default=13, help="epochs (default 13; with --resume, the new total)")
    p.add_argument("--batch-size", type=int, default=32, help="clips per step (default 32)")
    p.add_argument("--lr", type=float, default=1.5e-3, help="peak AdamW learning rate (default 1.5e-3)")
    p.add_argument("--weight-decay", type=float, default=0.05, help="AdamW weight decay (default 0.05)")
    p.add_argument("--warmup-epochs", type=float, default=1.0, help="linear warm-up before the cosine (default 1)")
    p.add_argument("--label-smoothing", type=float, default=0.1, help="default 0.1")
    p.add_argument("--train-clips", type=int, default=3200, help="synthetic: fresh clips per epoch (default 3200)")
    p.add_argument("--val-clips", type=int, default=240, help="synthetic: held-out validation clips (default 240)")
    p.add_argument("--val-data", help="folder/CSV of validation videos (default: 10%% of --data held out)")
    p.add_argument("--checkpoint", type=Path, help="fine-tune from these weights (a new class count replaces "
                   "the classifier)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last epoch")
    p.add_argument("--seed", type=int, default=0, help="default 0")
    p.add_argument("--threads", type=int, default=2, help="intra-op threads (default 2)")
    p.add_argument("--workers", type=int, default=0, help="processes that load batches (default 0: one background "
                   "thread; more helps decoding large videos on machines with spare cores)")
    p.add_argument("--keep", type=int, default=2, help="epoch checkpoints to keep besides last/best (default 2)")
    p.add_argument("--no-augment", action="store_true", help="train without augmentation")
    return p


def _check(args: argparse.Namespace) -> None:
    if args.workers < 0:
        fail(PROG, f"--workers must be >= 0, got {args.workers}")
    for name in ("frames", "epochs", "batch_size", "threads"):
        if getattr(args, name) < 1:
            fail(PROG, f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.batch_size < 2:
        fail(PROG, "--batch-size must be at least 2 (BatchNorm needs two clips per step)")
    if args.size < 32:
        fail(PROG, f"--size must be at least 32 pixels, got {args.size}")
    if args.lr <= 0 or args.weight_decay < 0 or not 0 <= args.label_smoothing < 1:
        fail(PROG, "--lr must be > 0, --weight-decay >= 0 and --label-smoothing in [0, 1)")
    if args.resume and args.checkpoint:
        fail(PROG, "--resume continues the run in --out; --checkpoint starts a new one: pass one of them")
    problem = output_folder_problem("--out", args.out)
    if problem:
        fail(PROG, problem)


def _reporter(console):
    """A progress callback drawing a rich bar per epoch (loss, accuracy, clips/s, ETA) and a line per epoch."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress(TextColumn("[bold]epoch {task.fields[epoch]}[/]"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("loss {task.fields[loss]:.3f}  top-1 {task.fields[top1]:.1%}  {task.fields[speed]:.1f} "
                              "clips/s"), TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True)
    state: dict = {}

    def report(event: str, info: dict) -> None:
        if event == "start":
            cfg = info["config"]
            console.print(f"{PROG}: {cfg.variant} on {cfg.data} ({len(info['classes'])} classes; {info['train']} "
                          f"training / {info['val']} validation clips per epoch) at {cfg.frames}x{cfg.size}², "
                          f"epochs {info['first_epoch'] + 1}-{info['epochs']}, batch {cfg.batch_size}, "
                          f"{cfg.threads} threads → {cfg.out}")
            state["steps"] = info["steps_per_epoch"]
            bar.start()
        elif event == "step":
            if state.get("epoch") != info["epoch"]:
                if "task" in state:
                    bar.remove_task(state["task"])
                state["epoch"] = info["epoch"]
                state["task"] = bar.add_task("train", total=state["steps"], epoch=info["epoch"] + 1, loss=0.0,
                                             top1=0.0, speed=0.0)
            bar.update(state["task"], completed=info["step"], loss=info["loss"], top1=info["top1"],
                       speed=info["clips_per_second"])
        elif event == "epoch":
            r = info["record"]
            console.print(f"epoch {r.epoch}: loss {r.train_loss:.3f}, train top-1 {r.train_top1:.1%}, val top-1 "
                          f"{r.val_top1:.1%} (top-5 {r.val_top5:.1%}), {r.clips_per_second:.1f} clips/s, "
                          f"{r.seconds:.0f} s" + (f", {r.skipped} unreadable videos skipped" if r.skipped else ""))

    return report, bar


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``vmf-train``."""
    args = build_parser().parse_args(argv)
    _check(args)
    from rich.console import Console

    from ..models import list_models
    from ..models.registry import unknown_model_error
    from ..train import TrainConfig, TrainError, train

    if args.variant not in list_models():
        fail(PROG, str(unknown_model_error(args.variant)))
    cfg = TrainConfig(variant=args.variant, data=args.data, out=str(args.out), frames=args.frames, size=args.size,
                      epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                      warmup_epochs=args.warmup_epochs, label_smoothing=args.label_smoothing,
                      train_clips=args.train_clips, val_clips=args.val_clips, val_data=args.val_data,
                      checkpoint=str(args.checkpoint) if args.checkpoint else None, seed=args.seed,
                      threads=args.threads, workers=args.workers, keep=args.keep,
                      augment=not args.no_augment)
    console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)
    report, bar = _reporter(console)
    start = time.perf_counter()
    try:
        result = train(cfg, resume=args.resume, progress=report)
    except TrainError as e:
        bar.stop()
        fail(PROG, str(e), EXIT_USAGE)
    finally:
        bar.stop()
    minutes = (time.perf_counter() - start) / 60
    if result.skipped:
        console.print(f"{len(result.skipped)} unreadable videos were skipped:")
        for path, reason in result.skipped[:20]:
            console.print(f"  {path}: {reason}")
    if result.interrupted:
        done = result.history[-1].epoch if result.history else 0
        console.print(f"{PROG}: interrupted after {done} complete epoch(s); "
                      + (f"{result.last} is intact; continue with --resume" if done else "no checkpoint was written"))
        return EXIT_INTERRUPTED
    last = result.history[-1] if result.history else None
    if last is None:
        console.print(f"{PROG}: nothing to do: the run already has {cfg.epochs} epochs (raise --epochs to continue)")
        return EXIT_OK
    print(f"trained {cfg.variant} for {last.epoch} epochs in {minutes:.1f} min: val top-1 {last.val_top1:.1%}, "
          f"top-5 {last.val_top5:.1%}; checkpoint {result.last}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
