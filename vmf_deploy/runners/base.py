"""The backend-runner contract: load an artifact (or model) once, run clips, report why not.

A backend is one file in ``vmf_deploy/runners/`` and one entry in ``BACKENDS``
(``vmf_deploy/runners/__init__.py``). Runners import their runtime lazily so that
``--help`` and unrelated commands stay instant.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
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
    emulated: bool = False  # runs under an emulator (qemu): parity means something, latency and memory do not

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads

    @property
    def emulated_cpu(self) -> str | None:
        """The CPU model an emulated runner emulates (None for a runner on the host's own CPU)."""
        return None

    @classmethod
    def availability(cls) -> str | None:
        """``None`` if the backend can run here, else the reason it is skipped."""
        return None

    @abstractmethod
    def load(self, artifact: Path) -> None:
        """Load the artifact (raises :class:`RunnerError` with a clear message)."""

    @abstractmethod
    def run(self, clip: np.ndarray) -> np.ndarray:
        """Run one input ``(B, 3, T, H, W)`` float32 and return logits ``(B, classes)`` float32."""

    def close(self) -> None:
        """Release the loaded artifact."""
