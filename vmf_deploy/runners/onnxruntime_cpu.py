"""``onnxruntime-cpu``: an exported ``.onnx`` in ONNX Runtime's CPU execution provider."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import BackendUnavailable, Runner, RunnerError


class OnnxRuntimeCPURunner(Runner):
    """ONNX Runtime, CPU EP, full graph optimisation, explicit intra-op threads."""

    name = "onnxruntime-cpu"
    artifact_suffix = ".onnx"
    export_target = "onnx"
    providers = ["CPUExecutionProvider"]
    # onnxruntime's memory pattern pre-plans one block for every intermediate; on the 64-frame
    # VMF models it raised peak RSS by 1.5-1.6x (1g 184 -> 305 MB, 2g 312 -> 489 MB) and was not
    # faster (0.95-1.0x the latency without it, interleaved; benchmarks/NOTES.md). Off on the CPU.
    memory_pattern = False

    @classmethod
    def availability(cls) -> str | None:
        """Reason onnxruntime (or this EP) is missing, else None."""
        try:
            import onnxruntime as ort
        except ImportError:
            return "skipped: onnxruntime is not installed (pip install 'vmf-deploy[export]')"
        if cls.providers[0] not in ort.get_available_providers():
            return f"skipped: {cls.providers[0]} is not available in this onnxruntime build"
        return None

    def session_options(self):  # noqa: ANN201 - onnxruntime type imported lazily
        """Session options used for every session (threads, optimisation level)."""
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.enable_mem_pattern = self.memory_pattern
        if self.threads:
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
        return opts

    def load(self, artifact: Path) -> None:
        """Create the inference session."""
        reason = self.availability()
        if reason:
            raise BackendUnavailable(reason)
        import onnxruntime as ort

        try:
            self.session = ort.InferenceSession(str(artifact), self.session_options(), providers=self.providers)
        except Exception as e:  # onnxruntime raises its own untyped exceptions
            raise RunnerError(f"onnxruntime could not load {artifact}: {e}") from None
        self.input_name = self.session.get_inputs()[0].name

    def run(self, clip: np.ndarray) -> np.ndarray:
        """Run the session on one clip."""
        return self.session.run(None, {self.input_name: np.ascontiguousarray(clip, dtype=np.float32)})[0]

    def close(self) -> None:
        """Drop the session."""
        self.session = None
