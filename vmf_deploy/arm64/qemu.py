"""Which ARM CPU ``qemu-aarch64-static`` emulates, and the ``/proc/cpuinfo`` that CPU's programs read.

qemu-user gives a guest program the emulated CPU's ISA features (``AT_HWCAP``), but its files are
the host's: a guest reading ``/proc/cpuinfo`` finds an x86 description, and onnxruntime's
``cpuinfo`` library then crashes on import (qemu 7.2). With ``QEMU_LD_PREFIX=ROOT`` qemu opens
``ROOT/<path>`` instead of ``<path>`` wherever that file exists, so :func:`write_cpu_files` puts an
ARM description in ``ROOT/proc/cpuinfo`` and ``ROOT/sys/devices/system/cpu``. The description
carries the emulated core's MIDR (implementer, part, variant, revision), which is what kernel
libraries read to pick core-specific code (e.g. the Cortex-A53/A55 narrow-load kernels);
:func:`cpu_view` makes a per-CPU root of symlinks so that one userland serves every CPU model.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

QEMU_BINARY = "qemu-aarch64-static"
CPU_ENV = "VMF_QEMU_CPU"
DEFAULT_CPU = "cortex-a76"  # a phone big core (Snapdragon 855, Dimensity 1000 era)
APT_PACKAGES = "qemu-user-static debootstrap"

MIDR: dict[str, int] = {
    "a64fx": 0x461F0010,
    "cortex-a35": 0x411FD040,
    "cortex-a53": 0x410FD034,
    "cortex-a57": 0x411FD070,
    "cortex-a72": 0x410FD083,
    "cortex-a76": 0x414FD0B1,
    "max": 0x000F0510,  # qemu's own "max" (every feature qemu has, SVE included): implementer 0, part 'Q'
    "neoverse-n1": 0x414FD0C1,
}
"""MIDR_EL1 of each CPU model of qemu-aarch64 7.2 (``qemu-aarch64-static -cpu help``), as the
emulated CPU reports it to ``mrs x0, midr_el1`` (read under qemu; ``tests/test_onnxruntime_arm64.py``
checks the table against it)."""

VIEW_ENTRIES = ("bin", "etc", "lib", "sbin", "usr")
"""The userland's top-level folders a guest program needs; anything else (``/tmp``, ``/dev``, the
artifact's folder) stays the host's."""


def qemu_binary() -> Path | None:
    """Path of ``qemu-aarch64-static`` on ``PATH``, or None."""
    found = shutil.which(QEMU_BINARY)
    return Path(found) if found else None


def missing_qemu_message() -> str:
    """What to install when qemu is missing."""
    return f"{QEMU_BINARY} not found: install it with apt-get install -y {APT_PACKAGES}"


def qemu_cpu(cpu: str | None = None) -> str:
    """The CPU model to emulate: ``cpu``, else ``$VMF_QEMU_CPU``, else :data:`DEFAULT_CPU` (ValueError if unknown)."""
    chosen = cpu or os.environ.get(CPU_ENV) or DEFAULT_CPU
    if chosen not in MIDR:
        source = "" if cpu else f" (from ${CPU_ENV})"
        raise ValueError(f"unknown QEMU CPU model {chosen!r}{source}; qemu-aarch64 7.2 emulates "
                         f"{', '.join(MIDR)}")
    return chosen


def cpuinfo_text(cpu: str, count: int) -> str:
    """A Linux arm64 ``/proc/cpuinfo`` describing ``count`` cores of model ``cpu``."""
    midr = MIDR[cpu]
    block = (f"CPU implementer\t: {midr >> 24 & 0xFF:#04x}\nCPU architecture: 8\n"
             f"CPU variant\t: {midr >> 20 & 0xF:#x}\nCPU part\t: {midr >> 4 & 0xFFF:#05x}\n"
             f"CPU revision\t: {midr & 0xF}\n")
    return "".join(f"processor\t: {i}\n{block}\n" for i in range(count))


def write_cpu_files(root: Path, cpu: str, count: int | None = None) -> None:
    """Write ``root/proc/cpuinfo`` and ``root/sys/devices/system/cpu/{possible,present}`` for ``cpu``.

    ``count`` defaults to the host's logical CPUs: qemu-user runs guest threads on host threads.
    """
    count = count or os.cpu_count() or 1
    (root / "proc").mkdir(parents=True, exist_ok=True)
    (root / "proc" / "cpuinfo").write_text(cpuinfo_text(cpu, count))
    cpus = root / "sys" / "devices" / "system" / "cpu"
    cpus.mkdir(parents=True, exist_ok=True)
    for name in ("possible", "present"):
        (cpus / name).write_text("0\n" if count == 1 else f"0-{count - 1}\n")


def cpu_view(root: Path, cpu: str, dest: Path) -> Path:
    """A ``QEMU_LD_PREFIX`` folder for ``cpu``: symlinks to ``root``'s :data:`VIEW_ENTRIES` plus its cpu files."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in VIEW_ENTRIES:
        if (root / name).exists():
            (dest / name).symlink_to(root.resolve() / name)
    write_cpu_files(dest, cpu)
    return dest
