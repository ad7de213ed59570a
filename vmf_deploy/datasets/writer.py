"""Write the procedural dataset as real encoded video files: ``DIR/<class>/*.mp4`` plus ``classes.txt``.

OpenCV's FFmpeg writers in opencv-python-headless have no H.264 encoder; MPEG-4 Part 2
(``mp4v``) in ``.mp4`` is used, and Motion-JPEG in ``.avi`` where that writer cannot open.
Each file is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..atomic import atomic_output
from .synthetic import CLASSES, render_clip, split_id

CODECS = ((".mp4", "mp4v"), (".avi", "MJPG"))
"""(suffix, fourcc) in order of preference."""


@dataclass(frozen=True)
class WrittenDataset:
    """What :func:`write_synthetic` wrote."""

    root: Path
    files: int
    suffix: str
    fourcc: str


def _open_writer(path: Path, fourcc: str, fps: float, size: tuple[int, int]):
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size, True)
    return writer if writer.isOpened() else None


def pick_codec(tmp_dir: Path, fps: float, size: tuple[int, int]) -> tuple[str, str]:
    """The first of :data:`CODECS` whose writer opens here."""
    for suffix, fourcc in CODECS:
        probe = tmp_dir / f".codec-probe{suffix}"
        writer = _open_writer(probe, fourcc, fps, size)
        if writer is not None:
            writer.release()
            probe.unlink(missing_ok=True)
            return suffix, fourcc
        probe.unlink(missing_ok=True)
    raise RuntimeError("OpenCV can open neither an mp4v (.mp4) nor an MJPG (.avi) video writer in this install; "
                       "install opencv-python-headless (vmf-deploy[video])")


def write_video(path: Path, frames: np.ndarray, fps: float, fourcc: str) -> None:
    """Encode ``(T, H, W, 3)`` uint8 RGB ``frames`` to ``path`` atomically."""
    t, h, w, _ = frames.shape
    with atomic_output(path, suffix=path.suffix) as tmp:
        writer = _open_writer(tmp, fourcc, fps, (w, h))
        if writer is None:
            raise RuntimeError(f"OpenCV could not open a {fourcc} writer for {path}")
        try:
            for frame in frames:
                writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
        finally:
            writer.release()


def write_synthetic(out: str | Path, per_class: int, frames: int = 32, size: int = 64, fps: float = 16.0,
                    seed: int = 0, split: str = "test",
                    progress: Callable[[int, int], None] | None = None) -> WrittenDataset:
    """Render ``per_class`` clips of every class of ``split`` and encode them under ``out``.

    Sample ``index`` of the split goes to ``out/<class>/<split>-<index:06d>.<suffix>``; the
    same arguments always write the same clips. ``classes.txt`` and ``dataset.json`` describe it.
    """
    split_id(split)
    if per_class < 1:
        raise ValueError(f"--per-class must be at least 1, got {per_class}")
    if size % 2:
        raise ValueError(f"--size must be even (OpenCV's writers round odd sizes down), got {size}")
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    suffix, fourcc = pick_codec(root, fps, (size, size))
    for name in CLASSES:
        (root / name).mkdir(exist_ok=True)
    total = per_class * len(CLASSES)
    for index in range(total):
        clip = render_clip(index, split, seed, frames, size)
        write_video(root / clip.name / f"{split}-{index:06d}{suffix}", clip.frames, fps, fourcc)
        if progress:
            progress(index + 1, total)
    with atomic_output(root / "classes.txt") as tmp:
        tmp.write_text("".join(f"{c}\n" for c in CLASSES))
    meta = {"dataset": "vmf-deploy synthetic actions", "split": split, "seed": seed, "per_class": per_class,
            "frames": frames, "size": size, "fps": fps, "codec": fourcc, "suffix": suffix, "classes": list(CLASSES)}
    with atomic_output(root / "dataset.json") as tmp:
        tmp.write_text(json.dumps(meta, indent=2) + os.linesep)
    return WrittenDataset(root, total, suffix, fourcc)
