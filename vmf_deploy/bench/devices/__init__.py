"""Phone backends: ``android`` (adb) and ``ios`` (Xcode tooling). They return results of the bench schema."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..harness import Harness


def run_on_device(backend: str, variant: str, harness: "Harness") -> dict:
    """Measure ``variant`` on the connected phone of ``backend`` (a ``skipped`` result when none is usable)."""
    if backend == "android":
        from .android import run_android

        return run_android(variant, harness)
    if backend == "ios":
        from .ios import run_ios

        return run_ios(variant, harness)
    raise ValueError(f"unknown device backend {backend!r}")
