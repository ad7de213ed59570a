"""Labelled clip sources for training and validation: the procedural dataset, or video files on disk.

Both yield ``(clip, label)`` with ``clip`` the model input of one video, ``(3, T, S, S)`` float32,
made by the preprocessing the exported model's manifest will carry. Video files are decoded
and preprocessed by exactly the code ``vmf-predict`` uses (:func:`vmf_deploy.video.read_clip`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..preprocess import PreprocessSpec
from . import synthetic

SYNTHETIC = "synthetic"
"""The ``--data`` value that selects the procedural dataset."""


class DatasetError(ValueError):
    """A dataset that cannot be used as given; the message names the problem and the fix."""


@dataclass(frozen=True)
class Sample:
    """One labelled video: where it is (a file, or a synthetic ``split:index``) and its class."""

    source: str
    label: int


@dataclass
class Skipped:
    """Videos that could not be read, with why (the report lists them; nothing crashes)."""

    items: list[tuple[str, str]] = field(default_factory=list)

    def add(self, source: str, reason: str) -> None:
        """Count one unreadable video."""
        self.items.append((source, reason))

    def __len__(self) -> int:
        return len(self.items)


class SyntheticSource:
    """``length`` clips of one split of the procedural dataset, rendered at the spec's shape.

    ``epoch`` selects fresh samples: epoch ``e`` renders indices ``e·length .. (e+1)·length − 1``,
    so a long training run never sees a clip twice, and the ``val``/``test`` splits stay unseen.
    """

    def __init__(self, split: str, length: int, spec: PreprocessSpec, seed: int = 0, fresh_per_epoch: bool = False):
        synthetic.split_id(split)
        if length < len(synthetic.CLASSES):
            raise DatasetError(f"the synthetic {split} split needs at least {len(synthetic.CLASSES)} clips "
                               f"(one per class), got {length}")
        self.split, self.length, self.spec, self.seed = split, length, spec, seed
        self.fresh_per_epoch = fresh_per_epoch
        self.classes = synthetic.CLASSES
        self.skipped = Skipped()
        self.hflip = tuple(synthetic.CLASSES.index(synthetic.HFLIP_LABELS.get(c, c)) for c in synthetic.CLASSES)

    def __len__(self) -> int:
        return self.length

    def sample(self, i: int, epoch: int = 0) -> Sample:
        """The ``i``-th sample of ``epoch``."""
        index = i + (epoch * self.length if self.fresh_per_epoch else 0)
        return Sample(f"{SYNTHETIC}:{self.split}:{index}", synthetic.label_of(index))

    def load(self, i: int, epoch: int = 0) -> tuple[np.ndarray, int] | None:
        """Render the ``i``-th clip of ``epoch`` as ``((3, T, S, S) float32, label)``."""
        index = i + (epoch * self.length if self.fresh_per_epoch else 0)
        clip = synthetic.render_clip(index, self.split, self.seed, self.spec.frames, self.spec.crop)
        return synthetic.normalise(clip.frames, self.spec.mean, self.spec.std)[0], clip.label

    def describe(self) -> dict:
        """What this source is, for reports and checkpoint metadata."""
        return {"kind": SYNTHETIC, "split": self.split, "clips": self.length, "seed": self.seed,
                "fresh_per_epoch": self.fresh_per_epoch}


class VideoFolder:
    """Labelled video files: ``ROOT/<class>/*.{mp4,avi,mov,mkv,webm,...}``, or a CSV of ``path,label``.

    ``classes`` fixes the class list (a trained model's); otherwise it comes from
    ``ROOT/classes.txt`` when present, else the sorted class folders (or CSV labels).
    Unreadable videos are skipped at :meth:`load` and counted in :attr:`skipped`.
    """

    def __init__(self, root: str | Path, spec: PreprocessSpec, classes: tuple[str, ...] | None = None) -> None:
        self.root, self.spec = Path(root), spec
        self.skipped = Skipped()
        self.hflip = None
        if not self.root.exists():
            raise DatasetError(f"dataset {self.root} does not exist; pass a folder of class folders, a CSV of "
                               f"path,label, or '{SYNTHETIC}'")
        pairs = read_csv_pairs(self.root) if self.root.is_file() else _scan_folders(self.root)
        found = list(dict.fromkeys(label for _, label in pairs))
        if classes is None:
            listed = self.root / "classes.txt" if self.root.is_dir() else None
            classes = _read_classes(listed) if listed is not None and listed.is_file() else tuple(sorted(found))
        unknown = sorted(set(found) - set(classes))
        if unknown:
            raise DatasetError(f"dataset {self.root} has labels {unknown[:5]} that are not in the class list "
                               f"({', '.join(classes[:8])}{', ...' if len(classes) > 8 else ''}); fix the labels, "
                               "or validate with the model that was trained on these classes")
        self.classes = tuple(classes)
        index = {c: i for i, c in enumerate(self.classes)}
        self.samples = [Sample(str(path), index[label]) for path, label in pairs]
        if not self.samples:
            raise DatasetError(f"dataset {self.root} holds no videos; write one with `vmf-dataset synth --out DIR`")

    def __len__(self) -> int:
        return len(self.samples)

    def sample(self, i: int, epoch: int = 0) -> Sample:
        """The ``i``-th video."""
        return self.samples[i]

    def load(self, i: int, epoch: int = 0) -> tuple[np.ndarray, int] | None:
        """Decode and preprocess the ``i``-th video; ``None`` (and counted as skipped) if it cannot be read."""
        from ..video import VideoError, read_clip

        sample = self.samples[i]
        try:
            clip = read_clip(sample.source, self.spec)
        except VideoError as e:
            self.skipped.add(sample.source, f"{e.kind}: {getattr(e, 'reason', e)}")
            return None
        return clip.input[0], sample.label

    def describe(self) -> dict:
        """What this source is, for reports and checkpoint metadata."""
        return {"kind": "csv" if self.root.is_file() else "folder", "root": str(self.root), "clips": len(self)}


def _read_classes(path: Path) -> tuple[str, ...]:
    names = tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
    if len(set(names)) != len(names):
        raise DatasetError(f"{path} lists a class twice; give each class one line")
    return names


def _scan_folders(root: Path) -> list[tuple[Path, str]]:
    from ..video import VIDEO_EXTENSIONS

    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DatasetError(f"dataset {root} has no class folders; lay it out as {root}/<class>/<video>.mp4 "
                           "(the UCF-101 / Kinetics layout) or pass a CSV of path,label")
    pairs = []
    for folder in folders:
        videos = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
        if not videos:
            raise DatasetError(f"class folder {folder} holds no videos ({', '.join(VIDEO_EXTENSIONS[:5])}, ...); "
                               "add videos or remove the folder")
        pairs.extend((v, folder.name) for v in videos)
    return pairs


def read_csv_pairs(path: Path) -> list[tuple[Path, str]]:
    """``path,label`` rows (a header row naming them is skipped); relative paths are from the CSV's folder."""
    try:
        with open(path, newline="") as f:
            rows = [row for row in csv.reader(f) if row and any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DatasetError(f"dataset {path} is not a readable CSV of path,label ({e})") from None
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "label"]:
        rows = rows[1:]
    pairs = []
    for n, row in enumerate(rows, 1):
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise DatasetError(f"{path} row {n} is {row!r}; every row must be path,label")
        video = Path(row[0].strip())
        pairs.append((video if video.is_absolute() else path.parent / video, row[1].strip()))
    return pairs


def load_batch(source: SyntheticSource | VideoFolder, indices: list[int],
               epoch: int = 0) -> tuple[list[tuple[int, np.ndarray, int]], list[tuple[str, str]]]:
    """Load ``indices`` of ``source``: ``([(index, clip, label), ...], [(video, reason), ...] skipped now)``.

    A module-level function of numpy-only code, so that a worker process can run it on a copy of
    ``source`` without importing torch; the caller counts the skipped videos in its own source.
    """
    before = len(source.skipped)
    loaded = []
    for i in indices:
        item = source.load(i, epoch)
        if item is not None:
            loaded.append((i, item[0], item[1]))
    return loaded, list(source.skipped.items[before:])


def open_source(data: str, spec: PreprocessSpec, split: str = "train", clips: int | None = None, seed: int = 0,
                classes: tuple[str, ...] | None = None, fresh_per_epoch: bool = False) -> SyntheticSource | VideoFolder:
    """``data`` = ``synthetic`` (that split, ``clips`` long) or a folder / CSV of labelled videos."""
    if data == SYNTHETIC:
        if classes is not None and tuple(classes) != synthetic.CLASSES:
            raise DatasetError(f"the model's classes ({', '.join(classes[:5])}, ...) are not the synthetic "
                               "dataset's; validate it on the data it was trained on")
        return SyntheticSource(split, clips or 20 * len(synthetic.CLASSES), spec, seed, fresh_per_epoch)
    return VideoFolder(data, spec, classes)
