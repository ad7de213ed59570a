"""``train``: fit any registry variant on a labelled clip source, with checkpoints that survive interrupts.

One run lives in one folder::

    RUN_DIR/epoch-003.safetensors   the model after each epoch (the newest ``keep`` are kept)
    RUN_DIR/last.safetensors        the newest complete epoch (what --resume and vmf-export read)
    RUN_DIR/best.safetensors        the epoch with the best validation top-1
    RUN_DIR/state.pt                optimizer, schedule and history, for --resume
    RUN_DIR/history.json            per-epoch loss, accuracy, throughput

Every file is written to a temp file and renamed, so an interrupt (Ctrl-C) at any moment
leaves the last complete epoch's files intact.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..atomic import atomic_output
from ..datasets import SYNTHETIC, DatasetError, open_source
from ..preprocess import spec_for
from .augment import augment
from .loader import BatchLoader, iterate_batches
from .schedule import warmup_cosine

STATE_FILE = "state.pt"
LAST = "last.safetensors"
BEST = "best.safetensors"


class TrainError(ValueError):
    """Training cannot start or continue as asked; the message names the problem and the fix."""


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved in ``state.pt`` and the checkpoints' metadata).

    The defaults are the trained reference's recipe (``benchmarks/train_reference.py``); AdamW at
    2e-3 with batch 8, the first defaults, stayed at chance (``benchmarks/NOTES.md``).
    """

    variant: str
    data: str
    out: str
    frames: int = 16
    size: int = 48
    epochs: int = 13
    batch_size: int = 32
    lr: float = 1.5e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    train_clips: int = 3200
    val_clips: int = 240
    val_data: str | None = None
    val_fraction: float = 0.1
    checkpoint: str | None = None
    seed: int = 0
    threads: int = 2
    workers: int = 0
    keep: int = 2
    augment: bool = True


@dataclass
class EpochRecord:
    """What one epoch did."""

    epoch: int
    train_loss: float
    train_top1: float
    val_top1: float
    val_top5: float
    val_loss: float
    clips_per_second: float
    seconds: float
    lr: float
    skipped: int = 0


@dataclass
class TrainResult:
    """A finished (or interrupted) run."""

    run_dir: Path
    history: list[EpochRecord] = field(default_factory=list)
    classes: tuple[str, ...] = ()
    interrupted: bool = False
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def last(self) -> Path:
        """The newest complete checkpoint."""
        return self.run_dir / LAST


Progress = Callable[[str, dict[str, Any]], None]
"""Callback ``(event, info)``: events ``start``, ``step``, ``epoch``, ``val``."""


def _split_folder(source, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A stratified, deterministic held-out split of a folder dataset's indices."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    by_class: dict[int, list[int]] = {}
    for i in range(len(source)):
        by_class.setdefault(source.sample(i).label, []).append(i)
    for label, items in sorted(by_class.items()):
        items = list(rng.permutation(items))
        n_val = max(1, int(round(fraction * len(items)))) if len(items) > 1 else 0
        val.extend(items[:n_val])
        train.extend(items[n_val:])
    return sorted(train), sorted(val)


def _sources(cfg: TrainConfig):
    """(train source, train indices, val source, val indices, classes)."""
    from ..preprocess import PreprocessSpec

    spec = PreprocessSpec(frames=cfg.frames, crop=cfg.size, short_side=cfg.size)
    try:
        if cfg.data == SYNTHETIC:
            train = open_source(SYNTHETIC, spec, "train", cfg.train_clips, cfg.seed, fresh_per_epoch=True)
            val = open_source(SYNTHETIC, spec, "val", cfg.val_clips, cfg.seed)
            return train, list(range(len(train))), val, list(range(len(val))), train.classes
        train = open_source(cfg.data, spec)
        if cfg.val_data:
            val = open_source(cfg.val_data, spec, classes=train.classes)
            train_idx, val_idx = list(range(len(train))), list(range(len(val)))
        else:
            val = train
            train_idx, val_idx = _split_folder(train, cfg.val_fraction, cfg.seed)
    except DatasetError as e:
        raise TrainError(str(e)) from None
    if len(train.classes) < 2:
        raise TrainError(f"dataset {cfg.data} has one class ({train.classes[0]}); a classifier needs at least two "
                         "class folders")
    if not train_idx:
        raise TrainError(f"dataset {cfg.data} leaves no training videos after holding out the validation split; "
                         "add videos or pass --val-data")
    return train, train_idx, val, val_idx, train.classes


def _build_model(cfg: TrainConfig, classes: tuple[str, ...]) -> torch.nn.Module:
    from ..checkpoint import CheckpointError, load_checkpoint
    from ..models import ConfigError, build_model

    try:
        if cfg.checkpoint:
            model = load_checkpoint(cfg.checkpoint, cfg.variant, num_classes=len(classes))
            model.cfg = model.cfg.replace(frames=cfg.frames, resolution=cfg.size)
            return model
        return build_model(cfg.variant, frames=cfg.frames, resolution=cfg.size, num_classes=len(classes))
    except (CheckpointError, ConfigError) as e:
        raise TrainError(str(e)) from None


def evaluate(model: torch.nn.Module, source, indices: list[int], batch_size: int = 8, epoch: int = 0,
             loader: BatchLoader | None = None) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Eval-mode logits ``(N, classes)``, labels and the indices that loaded, over ``indices`` of ``source``.

    ``loader`` (a :class:`BatchLoader` of ``source``) makes the batches; by default a background thread.
    """
    model.eval()
    logits, labels, used = [], [], []
    batches = loader.batches(indices, batch_size, epoch) if loader else iterate_batches(source, indices, batch_size,
                                                                                         epoch)
    with torch.inference_mode():
        for clips, y, idx in batches:
            logits.append(model(clips).float().numpy())
            labels.append(y.numpy())
            used.extend(idx)
    if not logits:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64), []
    return np.concatenate(logits), np.concatenate(labels), used


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of rows whose label is among the ``k`` largest logits."""
    if len(labels) == 0:
        return float("nan")
    top = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    return float(np.mean([label in row for label, row in zip(labels, top)]))


def _save(model: torch.nn.Module, path: Path, cfg: TrainConfig, classes: tuple[str, ...], record: dict) -> None:
    from ..checkpoint import save_checkpoint

    spec = spec_for(model.cfg).to_dict()
    save_checkpoint(model, path, classes=classes, preprocessing=spec, training={"config": asdict(cfg), **record})


def _write_state(run_dir: Path, state: dict) -> None:
    with atomic_output(run_dir / STATE_FILE) as tmp:
        torch.save(state, tmp)


def _read_state(run_dir: Path) -> dict:
    path = run_dir / STATE_FILE
    if not path.is_file() or not (run_dir / LAST).is_file():
        raise TrainError(f"--resume found no finished epoch in {run_dir} ({STATE_FILE} and {LAST} missing); "
                         "drop --resume to start a new run there")
    try:
        return torch.load(path, weights_only=True)
    except Exception as e:  # a damaged state file: say so instead of a pickle traceback
        raise TrainError(f"{path} is damaged or not a vmf-train state ({type(e).__name__}); delete the run folder's "
                         f"{STATE_FILE} and fine-tune from {run_dir / LAST} with --checkpoint instead") from None


def train(cfg: TrainConfig, resume: bool = False, progress: Progress | None = None) -> TrainResult:
    """Train (or continue with ``resume``) one run; returns its history. KeyboardInterrupt is caught.

    The run draws from torch's global generator (the init, dropout) only inside a fork seeded from
    ``cfg.seed``, so the same config trains the same model whatever the process ran before, and the
    caller's random state is left as it was.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return _train(cfg, resume, progress)


def _train(cfg: TrainConfig, resume: bool, progress: Progress | None) -> TrainResult:
    torch.set_num_threads(max(cfg.threads, 1))
    run_dir = Path(cfg.out)
    state = None
    if resume:
        state = _read_state(run_dir)
        saved = TrainConfig(**state["config"])
        if saved.variant != cfg.variant or saved.data != cfg.data:
            raise TrainError(f"--resume: {run_dir} is a run of --variant {saved.variant} on --data {saved.data}, "
                             f"not {cfg.variant} on {cfg.data}; resume with those, or choose another --out")
        cfg = TrainConfig(**{**state["config"], "epochs": cfg.epochs})
    elif (run_dir / STATE_FILE).exists():
        raise TrainError(f"{run_dir} already holds a run; pass --resume to continue it, or choose another --out")
    train_src, train_idx, val_src, val_idx, classes = _sources(cfg)
    if state is not None and tuple(state["classes"]) != tuple(classes):
        raise TrainError(f"--resume: the run in {run_dir} was trained on {len(state['classes'])} classes, the data now "
                         f"has {len(classes)} ({', '.join(classes[:5])}, ...); resume on the same data")
    run_dir.mkdir(parents=True, exist_ok=True)
    if state is not None:
        from ..checkpoint import load_checkpoint

        model = load_checkpoint(run_dir / LAST, cfg.variant)
    else:
        model = _build_model(cfg, classes)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(len(train_idx) // cfg.batch_size, 1)
    total_steps = steps_per_epoch * cfg.epochs
    warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
    history = [EpochRecord(**r) for r in state["history"]] if state else []
    first_epoch = len(history)
    step = first_epoch * steps_per_epoch
    best = max((r.val_top1 for r in history), default=-1.0)
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
    generator = torch.Generator().manual_seed(cfg.seed + first_epoch)
    torch.manual_seed(cfg.seed + first_epoch)
    result = TrainResult(run_dir, history, tuple(classes))
    if progress:
        progress("start", {"config": cfg, "classes": classes, "train": len(train_idx), "val": len(val_idx),
                           "steps_per_epoch": steps_per_epoch, "first_epoch": first_epoch, "epochs": cfg.epochs})
    train_loader = BatchLoader(train_src, cfg.workers)
    val_loader = train_loader if val_src is train_src else BatchLoader(val_src, cfg.workers)
    try:
        for epoch in range(first_epoch, cfg.epochs):
            model.train()
            order = list(np.random.default_rng([cfg.seed, epoch]).permutation(train_idx))
            seen, loss_sum, correct, t0 = 0, 0.0, 0, time.perf_counter()
            lr = cfg.lr
            for clips, labels, _ in train_loader.batches(order, cfg.batch_size, epoch, drop_last=True):
                if len(labels) < 2:
                    continue  # BatchNorm needs two clips
                if cfg.augment:
                    clips, labels = augment(clips, labels, generator, hflip=train_src.hflip)
                lr = cfg.lr * warmup_cosine(step, total_steps, warmup)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                logits = model(clips)
                loss = F.cross_entropy(logits, labels, label_smoothing=cfg.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                optimizer.step()
                step += 1
                seen += len(labels)
                loss_sum += float(loss.detach()) * len(labels)
                correct += int((logits.argmax(1) == labels).sum())
                if progress:
                    progress("step", {"epoch": epoch, "step": step - epoch * steps_per_epoch, "loss": loss_sum / seen,
                                      "top1": correct / seen, "clips_per_second": seen / (time.perf_counter() - t0)})
            train_seconds = time.perf_counter() - t0
            if progress:
                progress("val", {"epoch": epoch, "clips": len(val_idx)})
            logits, labels, _ = evaluate(model, val_src, val_idx, cfg.batch_size, loader=val_loader)
            val_loss = float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels))) if len(labels) else float("nan")
            record = EpochRecord(epoch=epoch + 1, train_loss=loss_sum / max(seen, 1), train_top1=correct / max(seen, 1),
                                 val_top1=topk_accuracy(logits, labels, 1), val_top5=topk_accuracy(logits, labels, 5),
                                 val_loss=val_loss, clips_per_second=seen / max(train_seconds, 1e-9),
                                 seconds=time.perf_counter() - t0, lr=lr,
                                 skipped=len(train_src.skipped) + (len(val_src.skipped) if val_src is not train_src else 0))
            history.append(record)
            _checkpoint_epoch(model, optimizer, cfg, classes, history, run_dir, best)
            best = max(best, record.val_top1)
            if progress:
                progress("epoch", {"record": record})
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        train_loader.close()
        val_loader.close()
    result.skipped = sorted(set(train_src.skipped.items + (val_src.skipped.items if val_src is not train_src else [])))
    return result


def _checkpoint_epoch(model, optimizer, cfg: TrainConfig, classes, history: list[EpochRecord], run_dir: Path,
                      best: float) -> None:
    """Write the epoch's checkpoint, ``last``, ``best`` when it improved, the resume state and the history."""
    record = asdict(history[-1])
    epoch_file = run_dir / f"epoch-{record['epoch']:03d}.safetensors"
    _save(model, epoch_file, cfg, classes, record)
    if record["val_top1"] > best:
        _save(model, run_dir / BEST, cfg, classes, record)
    _save(model, run_dir / LAST, cfg, classes, record)
    _write_state(run_dir, {"config": asdict(cfg), "classes": list(classes), "optimizer": optimizer.state_dict(),
                           "history": [asdict(r) for r in history]})
    with atomic_output(run_dir / "history.json") as tmp:
        tmp.write_text(json.dumps([asdict(r) for r in history], indent=2))
    kept = sorted(run_dir.glob("epoch-*.safetensors"))
    for old in kept[:-cfg.keep] if cfg.keep > 0 else []:
        os.unlink(old)
