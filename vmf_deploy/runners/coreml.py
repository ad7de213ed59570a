"""``coreml``: an exported ``.mlpackage`` run by Core ML through coremltools (macOS only).

Core ML models can be converted on Linux (``vmf-export --target coreml``) but only run on
macOS/iOS: off macOS this backend is ``skipped: needs macOS`` and nothing is measured.
Core ML picks its own threads; ``compute_units`` selects CPU / GPU / Neural Engine.
"""

from __future__ import annotations

import platform
from pathlib import Path

import numpy as np

from .base import BackendUnavailable, Runner, RunnerError

COMPUTE_UNITS = ("ALL", "CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE")


class CoreMLRunner(Runner):
    """coremltools ``MLModel.predict`` on a ``.mlpackage`` (fp32 or fp16 as exported)."""

    name = "coreml"
    artifact_suffix = ".mlpackage"
    export_target = "coreml"

    def __init__(self, threads: int | None = None, compute_units: str = "ALL") -> None:
        super().__init__(threads)
        if compute_units not in COMPUTE_UNITS:
            raise RunnerError(f"compute_units must be one of {COMPUTE_UNITS}, got {compute_units!r}")
        self.compute_units = compute_units
        self.model = None

    @classmethod
    def availability(cls) -> str | None:
        """``skipped: needs macOS`` off macOS; a missing coremltools otherwise; else None."""
        if platform.system() != "Darwin":
            return "skipped: needs macOS (Core ML runs only on macOS/iOS; vmf-export converts on any OS)"
        try:
            import coremltools  # noqa: F401
        except ImportError:
            return "skipped: coremltools is not installed (pip install 'vmf-deploy[export]')"
        return None

    def load(self, artifact: Path) -> None:
        """Load the ``.mlpackage`` (compiles it for this Mac) and read its input/output names."""
        reason = self.availability()
        if reason:
            raise BackendUnavailable(reason)
        import coremltools as ct

        artifact = Path(artifact)
        if not artifact.is_dir():
            raise RunnerError(f"Core ML package {artifact} does not exist: export it with vmf-export --target coreml")
        try:
            self.model = ct.models.MLModel(str(artifact), compute_units=ct.ComputeUnit[self.compute_units])
        except Exception as e:  # coremltools raises untyped errors from the Core ML framework
            raise RunnerError(f"Core ML could not load {artifact} ({type(e).__name__}: {e}); re-export it with "
                              "vmf-export --target coreml") from None
        spec = self.model.get_spec()
        self.input_name = spec.description.input[0].name
        self.output_name = spec.description.output[0].name

    def run(self, clip: np.ndarray) -> np.ndarray:
        """Predict on one clip; returns fp32 logits ``(B, classes)``."""
        if self.model is None:
            raise RunnerError("coreml runner has no model: call load() first")
        try:
            out = self.model.predict({self.input_name: np.ascontiguousarray(clip, dtype=np.float32)})
        except Exception as e:
            raise RunnerError(f"Core ML predict failed ({type(e).__name__}: {e})") from None
        return np.asarray(out[self.output_name], dtype=np.float32)

    def close(self) -> None:
        """Drop the model."""
        self.model = None
