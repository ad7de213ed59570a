"""Description of the machine a benchmark ran on: CPU model, cores, ISA flags, memory, library versions."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
from pathlib import Path

# ISA extensions that decide which kernels the runtimes pick (reported when the CPU has them).
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
             "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8",
             "neon", "asimd", "asimddp", "asimdhp", "sve", "sve2", "i8mm", "bf16")
LIBRARIES = ("vmf-deploy", "torch", "numpy", "onnx", "onnxruntime", "onnxruntime-gpu", "executorch", "coremltools",
             "openvino")


def _cpuinfo() -> dict[str, str]:
    """The first processor block of /proc/cpuinfo (Linux/Android), else empty."""
    path = Path("/proc/cpuinfo")
    if not path.is_file():
        return {}
    info: dict[str, str] = {}
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            if info:
                break
            continue
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
    return info


def cpu_model() -> str:
    """Human-readable CPU model name."""
    info = _cpuinfo()
    for key in ("model name", "Hardware", "Processor"):
        if info.get(key):
            return info[key]
    if platform.system() == "Darwin":
        import subprocess

        out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    return platform.processor() or platform.machine()


def isa_flags() -> list[str]:
    """The ISA extensions of :data:`ISA_FLAGS` this CPU reports (Linux /proc/cpuinfo flags)."""
    info = _cpuinfo()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    return [f for f in ISA_FLAGS if f in flags]


def library_versions() -> dict[str, str]:
    """Installed versions of the packages that produce or run the measured artifacts."""
    out = {}
    for name in LIBRARIES:
        try:
            out[name.replace("-", "_")] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def cuda_device() -> str | None:
    """Name of the first CUDA device visible to PyTorch, or None."""
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # a broken CUDA install must not break the machine description
        return None


def physical_cores() -> int | None:
    """Physical core count (psutil), or None when it cannot be told."""
    try:
        import psutil

        return psutil.cpu_count(logical=False)
    except ImportError:
        return None


def memory_bytes() -> int | None:
    """Total physical memory in bytes."""
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except ImportError:
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError):
            return None


def host_device_info() -> dict:
    """The ``device`` object of a results document for this machine."""
    return {
        "name": socket.gethostname(),
        "kind": "host",
        "os": platform.platform(),
        "arch": platform.machine(),
        "cpu_model": cpu_model(),
        "physical_cores": physical_cores(),
        "logical_cores": os.cpu_count() or 1,
        "isa_flags": isa_flags(),
        "memory_bytes": memory_bytes(),
        "gpu": cuda_device(),
        "libraries": library_versions(),
    }


def describe(device: dict) -> str:
    """One line for tables and docs: CPU, cores, ISA, memory."""
    mem = f", {device['memory_bytes'] / 2**30:.0f} GiB" if device.get("memory_bytes") else ""
    isa = f", {'/'.join(device['isa_flags'])}" if device.get("isa_flags") else ""
    gpu = f", GPU {device['gpu']}" if device.get("gpu") else ""
    return f"{device['cpu_model']} ({device['logical_cores']} logical cores{isa}{mem}{gpu}), {device['os']}"



def _calls_per_second(call, seconds: float) -> float:  # noqa: ANN001 - any zero-argument callable
    """How many times ``call()`` runs per second, repeated for about ``seconds`` after one untimed call."""
    import time

    call()  # first call: thread-pool start-up, page faults
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        call()
        count += 1
    return count / elapsed


def gemm_gflops(seconds: float = 0.3, n: int = 512) -> float:
    """Multiply-adds per second (×1e-9) of repeated fp32 ``n×n`` matmuls in NumPy's BLAS for about ``seconds``.

    A probe of the machine's state, not a benchmark: on a shared VM whose speed drifts,
    probes taken between measurements show how fast the machine was while each ran.
    """
    import numpy as np

    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = a.T.copy()
    return _calls_per_second(lambda: a @ b, seconds) * n**3 / 1e9


def copy_gbps(seconds: float = 0.3, megabytes: int = 64) -> float:
    """Memory bandwidth probe: GB/s (read + write) of copying a ``megabytes`` fp32 buffer for about ``seconds``.

    The buffer is far larger than the caches, so this sees what the GEMM probe does not:
    a neighbour on a shared host eating the memory bandwidth.
    """
    import numpy as np

    src = np.ones(megabytes * 2**20 // 4, dtype=np.float32)
    dst = np.empty_like(src)
    return _calls_per_second(lambda: np.copyto(dst, src), seconds) * 2 * src.nbytes / 1e9
