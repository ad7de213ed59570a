"""``executorch-xnnpack``: a ``.pte`` lowered to the XNNPACK delegate, run by ExecuTorch's Python runtime.

Threads: ExecuTorch's Python bindings expose the process-wide threadpool that XNNPACK
uses (``_unsafe_reset_threadpool``, marked experimental); ``threads`` resets it on load.
It is global to the process, so two runners with different ``threads`` share the last value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import BackendUnavailable, Runner, RunnerError


class ExecuTorchXNNPACKRunner(Runner):
    """ExecuTorch runtime (``executorch.runtime``), program ``forward`` method, XNNPACK backend."""

    name = "executorch-xnnpack"
    artifact_suffix = ".pte"
    export_target = "executorch"

    @classmethod
    def availability(cls) -> str | None:
        """Reason the ExecuTorch runtime or its XNNPACK backend is missing, else None."""
        try:
            from executorch.runtime import Runtime
        except ImportError:
            return "skipped: executorch is not installed (pip install 'vmf-deploy[export]')"
        try:
            if not Runtime.get().backend_registry.is_available("XnnpackBackend"):
                return "skipped: this executorch build has no XnnpackBackend registered"
        except Exception as e:  # the pybindings can fail to load (ABI mismatch with torch)
            return f"skipped: the ExecuTorch runtime could not start ({type(e).__name__}: {e})"
        return None

    def load(self, artifact: Path) -> None:
        """Load the program and its ``forward`` method; set the threadpool size if ``threads`` is given."""
        reason = self.availability()
        if reason:
            raise BackendUnavailable(reason)
        from executorch.runtime import Runtime

        artifact = Path(artifact)
        if not artifact.is_file():
            raise RunnerError(f"ExecuTorch program {artifact} does not exist: export it with "
                              "vmf-export --target executorch")
        if self.threads:
            from executorch.extension.pybindings import portable_lib

            portable_lib._unsafe_reset_threadpool(int(self.threads))
        try:
            program = Runtime.get().load_program(artifact)
            method = program.load_method("forward")
        except Exception as e:  # the runtime raises RuntimeError/ValueError with an error code
            raise RunnerError(f"ExecuTorch could not load {artifact} ({type(e).__name__}: {e}); is it a .pte "
                              "written by vmf-export --target executorch with this executorch version?") from None
        if method is None:
            raise RunnerError(f"{artifact} has no 'forward' method (methods: {sorted(program.method_names)})")
        self.program, self.method = program, method
        meta = method.metadata
        self.input_shape = tuple(meta.input_tensor_meta(0).sizes()) if meta.num_inputs() else None

    def run(self, clip: np.ndarray) -> np.ndarray:
        """Execute ``forward`` on one clip ``(B, 3, T, H, W)``; returns logits ``(B, classes)``."""
        import torch

        if getattr(self, "method", None) is None:
            raise RunnerError("executorch-xnnpack runner has no program: call load() first")
        clip = np.ascontiguousarray(clip, dtype=np.float32)
        if self.input_shape is not None and tuple(clip.shape) != self.input_shape:
            raise RunnerError(f"the program was exported for input {self.input_shape} but got {tuple(clip.shape)}: "
                              "re-export with matching --frames / resolution or feed clips of that shape")
        try:
            outputs = self.method.execute([torch.from_numpy(clip)])
        except Exception as e:
            raise RunnerError(f"ExecuTorch forward failed ({type(e).__name__}: {e})") from None
        return outputs[0].numpy().copy()

    def close(self) -> None:
        """Drop the method and program."""
        self.method = None
        self.program = None
