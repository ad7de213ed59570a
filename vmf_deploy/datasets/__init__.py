"""Labelled video datasets: the procedural action dataset and folders / CSVs of video files."""

from .sources import (SYNTHETIC, DatasetError, Sample, Skipped, SyntheticSource, VideoFolder, load_batch,
                      open_source)
from .synthetic import CLASSES, gate_clips, render_clip

__all__ = ["CLASSES", "SYNTHETIC", "DatasetError", "Sample", "Skipped", "SyntheticSource", "VideoFolder",
           "gate_clips", "load_batch", "open_source", "render_clip"]
