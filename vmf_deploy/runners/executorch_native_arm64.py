"""``executorch-native-arm64``: a ``.pte`` run by the cross-built aarch64 ``vmf_run`` under qemu.

The ARM64 build of the native runtime (``python -m vmf_deploy.native_build --arch aarch64``) runs
under ``qemu-aarch64-static`` with ``QEMU_CPU`` set to a phone core (``cortex-a76`` unless
``qemu_cpu=`` or ``$VMF_QEMU_CPU`` says otherwise): XNNPACK's and the optimized kernels' ARM NEON
code paths, the code a phone runs, checked against PyTorch here. Everything else is the
``executorch-native`` runner (a persistent ``vmf_run --serve``; the sha256 check refuses a tampered
``.pte``). Timings under emulation mean nothing: vmf-bench records ``"latency": "not measured: emulated"``.
"""

from __future__ import annotations

from pathlib import Path

from ..cross_build import QEMU, missing_cross_tools, qemu_command, qemu_env, vmf_run_aarch64_path
from ..cross_build import qemu_cpu as default_qemu_cpu
from .base import BackendUnavailable
from .executorch_native import ExecuTorchNativeRunner

BUILD_HINT = "python -m vmf_deploy.native_build --arch aarch64 (see docs/runtime.md)"


class ExecuTorchNativeARM64Runner(ExecuTorchNativeRunner):
    """The aarch64 ``vmf_run`` (ExecuTorch C++ Module API, XNNPACK) under ``qemu-aarch64-static``."""

    name = "executorch-native-arm64"

    def __init__(self, threads: int | None = None, binary: str | Path | None = None,
                 qemu_cpu: str | None = None) -> None:
        super().__init__(threads, binary if binary is not None else vmf_run_aarch64_path())
        self.qemu_cpu = qemu_cpu or default_qemu_cpu()

    @classmethod
    def availability(cls) -> str | None:
        """Reason the emulated ARM64 runtime cannot run (qemu or the aarch64 build missing), else None."""
        return cls._missing(vmf_run_aarch64_path())

    @staticmethod
    def _missing(binary: Path) -> str | None:
        qemu = [tool for tool in missing_cross_tools() if tool.startswith(QEMU)]
        if qemu:
            return f"skipped: {qemu[0]} is not installed"
        if not binary.is_file():
            return f"skipped: aarch64 native runtime not built ({binary} missing; run {BUILD_HINT})"
        return None

    @property
    def emulation(self) -> dict[str, str]:
        """What this runner emulates (vmf-bench's ``emulation``): emulator, architecture, CPU model."""
        return {"emulator": QEMU, "arch": "aarch64", "cpu": self.qemu_cpu}

    def load(self, artifact: Path) -> None:
        """Start the aarch64 ``vmf_run --serve`` under qemu on the artifact (see ExecuTorchNativeRunner.load)."""
        reason = self._missing(self.binary)
        if reason:
            raise BackendUnavailable(reason)
        super().load(artifact)

    def launcher(self) -> list[str]:
        """``qemu-aarch64-static -L /usr/aarch64-linux-gnu vmf_run``."""
        return qemu_command(self.binary)

    def child_env(self) -> dict[str, str]:
        """This process's environment with ``QEMU_CPU`` set to the emulated core."""
        return qemu_env(self.qemu_cpu)
