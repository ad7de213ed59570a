"""A thin, testable wrapper over the ``adb`` command line: find the tool and a device, push, shell, pull."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


class DeviceUnavailable(RuntimeError):
    """No usable device or tool; the message is the ``skipped: ...`` reason."""


class DeviceError(RuntimeError):
    """A device command failed; the message names the command and its output."""


def find_adb() -> str:
    """Path of ``adb`` ($ADB, else on PATH); :class:`DeviceUnavailable` when absent."""
    adb = os.environ.get("ADB") or shutil.which("adb")
    if not adb:
        raise DeviceUnavailable("skipped: adb not installed (install Android platform-tools or set $ADB)")
    return adb


def parse_devices(output: str) -> list[tuple[str, str]]:
    """``(serial, state)`` pairs of ``adb devices`` output (state: device, unauthorized, offline, ...)."""
    pairs = []
    for line in output.splitlines():
        line = line.strip()
        if not line or line.startswith(("List of devices", "*")):
            continue
        parts = line.split()
        if len(parts) >= 2:
            pairs.append((parts[0], parts[1]))
    return pairs


@dataclass
class Adb:
    """Commands against one device (``adb -s SERIAL ...``)."""

    adb: str
    serial: str
    timeout_s: float = 1800.0

    @classmethod
    def connect(cls, timeout_s: float = 1800.0) -> "Adb":
        """The device named by $ANDROID_SERIAL, else the only/first ready one (DeviceUnavailable if none)."""
        adb = find_adb()
        try:
            out = subprocess.run([adb, "devices"], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise DeviceUnavailable(f"skipped: adb devices did not answer ({e})") from None
        devices = parse_devices(out.stdout)
        wanted = os.environ.get("ANDROID_SERIAL")
        if wanted:
            devices = [d for d in devices if d[0] == wanted]
            if not devices:
                raise DeviceUnavailable(f"skipped: no adb device {wanted} ($ANDROID_SERIAL)")
        ready = [s for s, state in devices if state == "device"]
        if not ready:
            if devices:
                serial, state = devices[0]
                raise DeviceUnavailable(f"skipped: adb device {serial} is {state} (accept the USB-debugging prompt "
                                        "or reconnect it)")
            raise DeviceUnavailable("skipped: no adb device")
        return cls(adb, ready[0], timeout_s)

    def command(self, *args: str) -> list[str]:
        """The full argv of an adb command for this device."""
        return [self.adb, "-s", self.serial, *args]

    def call(self, *args: str) -> str:
        """Run an adb command; its stdout, or :class:`DeviceError` with its output."""
        argv = self.command(*args)
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            raise DeviceError(f"{shlex.join(argv)} timed out after {self.timeout_s:.0f} s") from None
        if out.returncode != 0:
            detail = " ".join((out.stderr or out.stdout).split())[-400:]
            raise DeviceError(f"{shlex.join(argv)} failed (exit {out.returncode}): {detail}")
        return out.stdout

    def shell(self, command: list[str], cwd: str | None = None) -> str:
        """Run ``command`` (argv, quoted here) in the device shell, optionally in ``cwd``; its stdout.

        ``adb shell`` does not return the remote exit status on old devices, so the command
        echoes it and a non-zero status becomes :class:`DeviceError`.
        """
        line = shlex.join(command)
        if cwd:
            line = f"cd {shlex.quote(cwd)} && {line}"
        out = self.call("shell", f"{line}; echo __vmf_exit=$?")
        body, _, status = out.rpartition("__vmf_exit=")
        if status.strip() != "0":
            raise DeviceError(f"on device {self.serial}: {line} failed (exit {status.strip()}): "
                              f"{' '.join(body.split())[-400:]}")
        return body

    def push(self, local: Path, remote: str) -> None:
        """Copy a local file to the device."""
        self.call("push", str(local), remote)

    def pull(self, remote: str, local: Path) -> None:
        """Copy a device file to ``local``."""
        self.call("pull", remote, str(local))

    def getprop(self, name: str) -> str:
        """A system property of the device."""
        return self.call("shell", "getprop", name).strip()
