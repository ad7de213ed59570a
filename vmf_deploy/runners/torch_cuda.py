"""``torch-cuda``: eager PyTorch fp32 on an NVIDIA GPU (TF32 off, so it computes what the CPU reference does)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .base import BackendUnavailable, Runner, RunnerError


class TorchCUDARunner(Runner):
    """Eager PyTorch on ``cuda:0``; loads a vmf-deploy checkpoint or takes a model.

    Latency is end to end per clip (host → device copy, forward, logits back to the host,
    which synchronises the stream).
    """

    name = "torch-cuda"
    uses_gpu = True
    artifact_suffix = ".safetensors"

    def __init__(self, threads: int | None = None, model: torch.nn.Module | None = None) -> None:
        super().__init__(threads)
        self.model = None
        if model is not None:
            self._place(model)

    @classmethod
    def availability(cls) -> str | None:
        """``skipped: no CUDA device`` (with the reason torch gives), else None."""
        if torch.cuda.is_available():
            return None
        if torch.version.cuda is None:
            return f"skipped: no CUDA device (torch {torch.__version__} is a CPU-only build)"
        return "skipped: no CUDA device"

    def _place(self, model: torch.nn.Module) -> None:
        reason = self.availability()
        if reason:
            raise BackendUnavailable(reason)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        self.model = model.eval().to("cuda")

    def load(self, artifact: Path) -> None:
        """Load a checkpoint written by ``save_checkpoint`` onto the GPU."""
        from ..checkpoint import CheckpointError, load_checkpoint

        try:
            model = load_checkpoint(artifact)
        except CheckpointError as e:
            raise RunnerError(str(e)) from None
        self._place(model)

    def run(self, clip: np.ndarray) -> np.ndarray:
        """Forward pass under ``torch.inference_mode``; logits back on the host."""
        if self.model is None:
            raise RunnerError("torch-cuda runner has no model: call load() or pass model=")
        if self.threads:
            torch.set_num_threads(self.threads)
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(clip, dtype=np.float32)).to("cuda", non_blocking=False)
            return self.model(x).float().cpu().numpy()

    def close(self) -> None:
        """Drop the model and free cached GPU memory."""
        self.model = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
