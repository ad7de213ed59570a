"""``executorch-xnnpack``: a ``.pte`` lowered to the XNNPACK delegate, run by ExecuTorch's C++ runtime bindings.

The bindings are loaded without ``executorch.exir`` (:mod:`.executorch_bindings`), so that loading a
program costs what it costs an app, not the export compiler's import.

Threads: ExecuTorch's Python bindings expose the process-wide threadpool that XNNPACK
uses (``_unsafe_reset_threadpool``, marked experimental); ``threads`` resets it on load.
It is global to the process, so two runners with different ``threads`` share the last value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import BackendUnavailable, Runner, RunnerError


class ExecuTorchXNNPACKRunner(Runner):
    """ExecuTorch runtime (the ``_C`` bindings ``executorch.runtime`` wraps), program ``forward`` method, XNNPACK."""

    name = "executorch-xnnpack"
    artifact_suffix = ".pte"
    export_target = "executorch"

    @classmethod
    def availability(cls) -> str | None:
        """Reason the ExecuTorch runtime or its XNNPACK backend is missing, else None."""
        from .executorch_bindings import registered_backends

        try:
            if "XnnpackBackend" not in registered_backends():
                return "skipped: this executorch build has no XnnpackBackend registered"
        except ModuleNotFoundError:
            return "skipped: executorch is not installed (pip install 'vmf-deploy[export]')"
        except Exception as e:  # the pybindings can fail to load (ABI mismatch with torch)
            return f"skipped: the ExecuTorch runtime could not start ({type(e).__name__}: {e})"
        return None

    def load(self, artifact: Path) -> None:
        """Load the program and its ``forward`` method; set the threadpool size if ``threads`` is given."""
        reason = self.availability()
        if reason:
            raise BackendUnavailable(reason)
        from .executorch_bindings import load_program, set_threads

        artifact = Path(artifact)
        if not artifact.is_file():
            raise RunnerError(f"ExecuTorch program {artifact} does not exist: export it with "
                              "vmf-export --target executorch")
        if self.threads:
            set_threads(self.threads)
        try:
            program = load_program(artifact)
            names = [program.get_method_name(i) for i in range(program.num_methods())]
            method = program.load_method("forward") if "forward" in names else None
        except Exception as e:  # the runtime raises RuntimeError/ValueError with an error code
            raise RunnerError(f"ExecuTorch could not load {artifact} ({type(e).__name__}: {e}); is it a .pte "
                              "written by vmf-export --target executorch with this executorch version?") from None
        if method is None:
            raise RunnerError(f"{artifact} has no 'forward' method (methods: {sorted(names)})")
        self.program, self.method = program, method
        meta = method.method_meta()
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
            outputs = self.method([torch.from_numpy(clip)])
        except Exception as e:
            raise RunnerError(f"ExecuTorch forward failed ({type(e).__name__}: {e})") from None
        return outputs[0].numpy().copy()

    def close(self) -> None:
        """Drop the method and program."""
        self.method = None
        self.program = None
