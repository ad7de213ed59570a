"""Calibration clips for int8: decoded and preprocessed exactly as the artifact's input at inference.

``--calibration SOURCE`` is one of:

* ``synthetic``: the ``calibration`` split of the procedural action dataset, rendered at the
  export's shape (never shares a sample with the train / val / test / gate splits);
* a folder of class folders (``ROOT/<class>/*.mp4``, what ``vmf-dataset synth`` writes) or a
  ``path,label`` CSV: the labelled dataset's videos, labels ignored;
* a folder of unlabelled videos (``ROOT/*.mp4``).

Video files go through :func:`vmf_deploy.video.read_clip` with the manifest's preprocessing
spec, the code ``vmf-predict`` runs. The clips' SHA-256 goes into the manifest, so that two
artifacts calibrated on the same data can be told apart from two that were not.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..preprocess import PreprocessSpec

SYNTHETIC = "synthetic"
"""The ``--calibration`` value that selects the procedural dataset's calibration split."""
DEFAULT_CLIPS = 64
"""Calibration clips when neither ``--calibration-clips`` nor the recipe says otherwise."""


class CalibrationError(ValueError):
    """The calibration source cannot give the clips asked for; the message says what to pass instead."""


@dataclass
class CalibrationSet:
    """Model inputs to calibrate int8 ranges on, and what the manifest records about them.

    Attributes:
        clips: ``(1, 3, T, H, W)`` float32 model inputs.
        source: the ``--calibration`` value (``synthetic`` or a path).
        kind: ``synthetic``, ``labelled-folder``, ``csv`` or ``video-folder``.
        skipped: ``(video, reason)`` for each file that could not be decoded.
    """

    clips: list[np.ndarray]
    source: str
    kind: str
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def sha256(self) -> str:
        """SHA-256 over the clips' float32 bytes, in order."""
        digest = hashlib.sha256()
        for clip in self.clips:
            digest.update(np.ascontiguousarray(clip, dtype=np.float32).tobytes())
        return digest.hexdigest()

    def describe(self) -> dict:
        """The manifest's ``quantization.calibration`` object."""
        return {"source": self.source, "kind": self.kind, "clips": len(self.clips), "sha256": self.sha256,
                "skipped": len(self.skipped)}


def load_calibration(source: str | Path, spec: PreprocessSpec, clips: int = DEFAULT_CLIPS,
                     seed: int = 0) -> CalibrationSet:
    """Up to ``clips`` calibration clips from ``source`` (see the module docstring), preprocessed by ``spec``.

    Raises:
        CalibrationError: an unknown source, no videos, or no video that decodes.
    """
    if not isinstance(clips, int) or clips < 1:
        raise CalibrationError(f"--calibration-clips must be a positive integer, got {clips!r}")
    if str(source) == SYNTHETIC:
        from ..datasets import synthetic

        rendered = [synthetic.render_clip(i, "calibration", seed, spec.frames, spec.crop) for i in range(clips)]
        inputs = [synthetic.normalise(c.frames, spec.mean, spec.std) for c in rendered]
        return CalibrationSet(inputs, SYNTHETIC, SYNTHETIC)
    root = Path(source)
    if not root.exists():
        raise CalibrationError(f"calibration source {root} does not exist; pass a folder of videos, a folder of "
                               f"class folders, a path,label CSV, or '{SYNTHETIC}'")
    videos, kind = _videos(root)
    if not videos:
        raise CalibrationError(f"calibration source {root} holds no videos (looked for {_extensions()} files in "
                               "it and in its sub-folders); pass a folder of the videos the model will see")
    return _decode(videos[: clips], str(root), kind, spec)


def _extensions() -> str:
    from ..video import VIDEO_EXTENSIONS

    return "/".join(VIDEO_EXTENSIONS[:4]) + "/..."


def _videos(root: Path) -> tuple[list[Path], str]:
    """The videos of ``root`` spread over its classes (round-robin), and the source's kind."""
    from ..datasets.sources import read_csv_pairs
    from ..video import VIDEO_EXTENSIONS, list_videos

    if root.is_file():
        if root.suffix.lower() != ".csv":
            raise CalibrationError(f"calibration source {root} is a file but not a path,label CSV; pass a folder "
                                   f"of videos, a CSV, or '{SYNTHETIC}'")
        return _round_robin(read_csv_pairs(root)), "csv"
    direct = list_videos(root)
    if direct:
        return direct, "video-folder"
    pairs = [(p, d.name) for d in sorted(root.iterdir()) if d.is_dir()
             for p in sorted(d.iterdir()) if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS]
    return _round_robin(pairs), "labelled-folder"


def _round_robin(pairs: list[tuple[Path, str]]) -> list[Path]:
    """Interleave the videos of each label, so that the first N calibration clips cover every class."""
    by_label: dict[str, list[Path]] = {}
    for path, label in pairs:
        by_label.setdefault(label, []).append(path)
    lists = list(by_label.values())
    return [lst[i] for i in range(max((len(x) for x in lists), default=0)) for lst in lists if i < len(lst)]


def _decode(videos: list[Path], source: str, kind: str, spec: PreprocessSpec) -> CalibrationSet:
    from ..video import VideoError, read_clip

    inputs, skipped = [], []
    for path in videos:
        try:
            inputs.append(read_clip(path, spec).input)
        except VideoError as e:
            skipped.append((str(path), f"{e.kind}: {getattr(e, 'reason', e)}"))
    if not inputs:
        first = f" (first: {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
        raise CalibrationError(f"none of the {len(videos)} calibration videos in {source} could be decoded{first}; "
                               f"pass readable videos or '{SYNTHETIC}'")
    return CalibrationSet(inputs, source, kind, skipped)
