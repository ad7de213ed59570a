"""Backend runners, one file each; ``BACKENDS`` maps a ``--backend`` name to its class.

Entries are ``"module:Class"`` strings imported on first use, so listing backends
never imports a runtime.
"""

from __future__ import annotations

import importlib

from .base import BackendUnavailable, Runner, RunnerError

BACKENDS: dict[str, str] = {
    "torch-cpu": "torch_cpu:TorchCPURunner",
    "onnxruntime-cpu": "onnxruntime_cpu:OnnxRuntimeCPURunner",
    "executorch-xnnpack": "executorch_xnnpack:ExecuTorchXNNPACKRunner",
    "executorch-native": "executorch_native:ExecuTorchNativeRunner",
    "executorch-native-arm64": "executorch_native_arm64:ExecuTorchNativeARM64Runner",
    "coreml": "coreml:CoreMLRunner",
    "openvino-cpu": "openvino_cpu:OpenVINOCPURunner",
    "openvino-gpu": "openvino_cpu:OpenVINOGPURunner",
    "onnxruntime-cuda": "onnxruntime_gpu:OnnxRuntimeCUDARunner",
    "onnxruntime-tensorrt": "onnxruntime_gpu:OnnxRuntimeTensorRTRunner",
    "torch-cuda": "torch_cuda:TorchCUDARunner",
    "onnxruntime-arm64": "onnxruntime_arm64:OnnxRuntimeARM64Runner",
}


def runner_class(backend: str) -> type[Runner]:
    """The runner class of ``backend`` (ValueError listing valid names if unknown)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid backends: {', '.join(BACKENDS)}")
    module, cls = BACKENDS[backend].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def get_runner(backend: str, threads: int | None = None, **kwargs: object) -> Runner:
    """Instantiate the runner of ``backend``."""
    return runner_class(backend)(threads=threads, **kwargs)


__all__ = ["BACKENDS", "BackendUnavailable", "Runner", "RunnerError", "get_runner", "runner_class"]
