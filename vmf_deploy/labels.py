"""Kinetics-400 class names shipped with the package."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

LABELS_FILE = "kinetics400_labels.txt"


def labels_path() -> Path:
    """Path of the packaged label file (one class name per line, index order)."""
    return Path(str(resources.files("vmf_deploy") / "data" / LABELS_FILE))


@lru_cache(maxsize=None)
def kinetics400_labels() -> tuple[str, ...]:
    """The 400 Kinetics-400 class names; index = class id."""
    labels = tuple(line.strip() for line in labels_path().read_text().splitlines() if line.strip())
    if len(labels) != 400:
        raise RuntimeError(f"{labels_path()} has {len(labels)} labels, expected 400: the package is damaged")
    return labels
