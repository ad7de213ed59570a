"""The child-process side of the runners that serve a program over a line protocol.

``executorch-native`` (``vmf_run --serve``) and ``onnxruntime-arm64`` (``ort_server.py`` under qemu) each keep
one child process per artifact and send it one line per clip: ``run IN.raw OUT.raw ...``, answered by
``ok ...`` or ``error <message>``, with the tensors as raw float32 files in a private temp folder.
``quit`` ends the child. This module holds what both do the same way.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def fast_tmp_dir() -> str | None:
    """A RAM-backed folder for the per-clip tensor files (``/dev/shm`` on Linux), else None (the default temp dir)."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def request(process: subprocess.Popen, line: str) -> str:
    """Send one command line to the child and return its one-line reply, stripped (empty if it stopped)."""
    process.stdin.write(line + "\n")
    process.stdin.flush()
    return process.stdout.readline().strip()


def stop_server(process: subprocess.Popen, timeout: float) -> None:
    """Ask the child to ``quit`` and close its pipes; kill it if it has not exited within ``timeout`` s.

    It is killed at once if its stdin is gone; a child that has already exited only has its pipes closed.
    """
    if process.poll() is None:
        try:
            process.stdin.write("quit\n")
            process.stdin.flush()
            process.wait(timeout=timeout)
        except (BrokenPipeError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()
    for pipe in (process.stdin, process.stdout):
        try:
            pipe.close()
        except BrokenPipeError:
            pass
