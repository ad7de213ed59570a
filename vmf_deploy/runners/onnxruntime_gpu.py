"""``onnxruntime-cuda`` / ``onnxruntime-tensorrt``: an exported ``.onnx`` on an NVIDIA GPU.

Needs a CUDA device (checked through the driver, ``libcuda``) and an onnxruntime build with
the execution provider (``pip install onnxruntime-gpu``). A session whose first provider is
not the one asked for (ONNX Runtime silently falls back to the CPU) is refused: no CPU
number is ever reported as a GPU one. Latency is end to end per clip: host input,
device compute, host logits.
"""

from __future__ import annotations

import ctypes
import sys
import tempfile
from pathlib import Path

from .base import BackendUnavailable, RunnerError
from .onnxruntime_cpu import OnnxRuntimeCPURunner


def cuda_device_count() -> int:
    """Number of CUDA devices the NVIDIA driver reports (0 when there is no driver or device)."""
    name = "nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return 0
    count = ctypes.c_int(0)
    if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return count.value


class OnnxRuntimeCUDARunner(OnnxRuntimeCPURunner):
    """ONNX Runtime with the CUDA execution provider (fp32, TF32 off)."""

    name = "onnxruntime-cuda"
    uses_gpu = True
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    memory_pattern = True  # onnxruntime's default: the CPU measurement that turned it off does not carry over

    @classmethod
    def availability(cls) -> str | None:
        """``skipped: no CUDA device``, a missing onnxruntime/EP, or None."""
        if cuda_device_count() == 0:
            return "skipped: no CUDA device"
        try:
            import onnxruntime as ort
        except ImportError:
            return "skipped: onnxruntime is not installed (pip install onnxruntime-gpu)"
        if cls.providers[0] not in ort.get_available_providers():
            return (f"skipped: {cls.providers[0]} is not in this onnxruntime build "
                    f"({', '.join(ort.get_available_providers())}); pip install onnxruntime-gpu")
        return None

    def provider_options(self) -> list[dict]:
        """Options of each provider in :attr:`providers` (fp32 semantics: no TF32)."""
        return [{"use_tf32": "0"}, {}]

    def load(self, artifact: Path) -> None:
        """Create the session on the GPU provider; refuse a silent fallback to the CPU."""
        reason = self.availability()
        if reason:
            raise BackendUnavailable(reason)
        import onnxruntime as ort

        try:
            self.session = ort.InferenceSession(str(artifact), self.session_options(), providers=self.providers,
                                                provider_options=self.provider_options())
        except Exception as e:  # onnxruntime raises its own untyped exceptions
            raise RunnerError(f"onnxruntime ({self.providers[0]}) could not load {artifact}: {e}") from None
        active = self.session.get_providers()
        if not active or active[0] != self.providers[0]:
            raise RunnerError(f"onnxruntime did not create {self.providers[0]} (active providers: {active}); "
                              "check the CUDA/cuDNN (and TensorRT) libraries onnxruntime-gpu needs")
        self.input_name = self.session.get_inputs()[0].name


class OnnxRuntimeTensorRTRunner(OnnxRuntimeCUDARunner):
    """ONNX Runtime with the TensorRT execution provider (fp32 engines, cached per run)."""

    name = "onnxruntime-tensorrt"
    providers = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]

    def provider_options(self) -> list[dict]:
        """TensorRT in fp32 with an engine cache in a temp dir; CUDA fallback without TF32."""
        self._cache = tempfile.TemporaryDirectory(prefix="vmf-trt-")
        return [{"trt_fp16_enable": "False", "trt_engine_cache_enable": "True",
                 "trt_engine_cache_path": self._cache.name}, {"use_tf32": "0"}, {}]

    def close(self) -> None:
        """Drop the session and the engine cache."""
        super().close()
        cache = getattr(self, "_cache", None)
        if cache is not None:
            cache.cleanup()
