"""``torch-cpu``: eager PyTorch, the reference every artifact is compared against.

torch is imported when a clip runs, not with the module: finding the backend of an ``.onnx``
or ``.pte`` walks the backend table from here, and must not pay torch's import for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .base import Runner, RunnerError

if TYPE_CHECKING:
    import torch


class TorchCPURunner(Runner):
    """Eager PyTorch fp32 on the CPU; loads a vmf-deploy checkpoint or takes a model."""

    name = "torch-cpu"
    artifact_suffix = ".safetensors"

    def __init__(self, threads: int | None = None, model: torch.nn.Module | None = None) -> None:
        super().__init__(threads)
        self.model = model.eval() if model is not None else None

    def load(self, artifact: Path) -> None:
        """Load a checkpoint written by ``save_checkpoint``."""
        from ..checkpoint import CheckpointError, load_checkpoint

        try:
            self.model = load_checkpoint(artifact)
        except CheckpointError as e:
            raise RunnerError(str(e)) from None

    def run(self, clip: np.ndarray) -> np.ndarray:
        """Forward pass under ``torch.inference_mode``."""
        import torch

        if self.model is None:
            raise RunnerError("torch-cpu runner has no model: call load() or pass model=")
        if self.threads:
            torch.set_num_threads(self.threads)
        with torch.inference_mode():
            return self.model(torch.from_numpy(np.ascontiguousarray(clip, dtype=np.float32))).numpy()
