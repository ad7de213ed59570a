"""The backend-runner contract: load an artifact (or model) once, run clips, report why not.

A backend is one file in ``vmf_deploy/runners/`` and one entry in ``BACKENDS``
(``vmf_deploy/runners/__init__.py``). Runners import their runtime lazily so that
``--help`` and unrelated commands stay instant.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from concurrent.futures import Future
from pathlib import Path

import numpy as np


class BackendUnavailable(RuntimeError):
    """This backend cannot run on this machine; the message is the reason (``skipped: ...``)."""


class RunnerError(RuntimeError):
    """The backend failed to load or run an artifact; the message says what to do."""


class Runner(ABC):
    """Runs one exported artifact (or a PyTorch model) on normalised clips.

    Subclasses set ``name`` (the ``--backend`` value) and ``artifact_suffix``
    (``.onnx``, ``.pte``, ``.mlpackage`` or ``None`` for eager PyTorch).
    """

    name: str = ""
    artifact_suffix: str | None = None
    export_target: str | None = None  # the vmf-export --target that produces its artifact
    uses_gpu: bool = False  # runs on a CUDA device (a Ray actor running it asks for one GPU)
    throughput: bool = False
    """Set before :meth:`load` to compile for many clips in flight (OpenVINO's THROUGHPUT hint) instead of
    one clip's latency; backends without such a mode ignore it."""
    in_flight: int = 1
    """How many clips :meth:`submit` usefully keeps running at once (1: it runs each clip synchronously)."""
    input_layout: str = "NCTHW"
    """The layout the loaded artifact takes (``vmf_deploy.preprocess.LAYOUTS``): a clip already in it is fed as is;
    ``NCTHW`` clips are accepted by every runner (converted, at a copy's cost, where the artifact takes another)."""

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads

    @classmethod
    def availability(cls) -> str | None:
        """``None`` if the backend can run here, else the reason it is skipped."""
        return None

    @abstractmethod
    def load(self, artifact: Path) -> None:
        """Load the artifact (raises :class:`RunnerError` with a clear message)."""

    @abstractmethod
    def run(self, clip: np.ndarray) -> np.ndarray:
        """Run one input ``(B, 3, T, H, W)`` (or ``input_layout``) float32 and return logits ``(B, classes)`` float32."""

    def submit(self, clip: np.ndarray) -> Future:
        """Start one clip; the returned future holds its logits (or the error ``run`` raised).

        Runs it now, synchronously, unless the backend has an asynchronous queue (``in_flight`` > 1).
        """
        future: Future = Future()
        try:
            future.set_result(self.run(clip))
        except Exception as e:  # noqa: BLE001 - handed to whoever reads the future, as run would raise it
            future.set_exception(e)
        return future

    def close(self) -> None:
        """Release the loaded artifact."""
