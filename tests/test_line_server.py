"""The line protocol of the child-process runners: a reply per request, ``quit`` honoured, a stuck child killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from vmf_deploy.runners.line_server import fast_tmp_dir, request, stop_server

ECHO_SERVER = """
import sys
print("ready 0", flush=True)
for line in sys.stdin:
    if line.strip() == "quit":
        sys.exit(0)
    print("ok " + line.split()[1], flush=True)
"""

DEAF_SERVER = """
import signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready 0", flush=True)
sys.stdin.readline()
time.sleep(60)
"""


def start(source: str) -> subprocess.Popen:
    """A Python child running ``source`` with text pipes, as the runners start theirs, after its ``ready`` line."""
    process = subprocess.Popen([sys.executable, "-c", source], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True, bufsize=1)
    assert process.stdout.readline().strip() == "ready 0"
    return process


def test_requests_are_answered_in_order_and_quit_ends_the_child_cleanly() -> None:
    process = start(ECHO_SERVER)
    assert request(process, "run a.raw b.raw") == "ok a.raw"
    assert request(process, "run c.raw d.raw 1x3") == "ok c.raw"
    stop_server(process, timeout=30)
    assert process.returncode == 0  # it read quit and exited; it was not killed
    assert process.stdin.closed and process.stdout.closed


def test_a_child_that_does_not_quit_is_killed_after_the_timeout() -> None:
    process = start(DEAF_SERVER)
    stop_server(process, timeout=0.5)
    assert process.returncode == -signal.SIGKILL
    assert process.stdin.closed and process.stdout.closed


def test_a_child_that_already_died_is_only_closed() -> None:
    process = start(ECHO_SERVER)
    process.kill()
    process.wait()
    stop_server(process, timeout=30)  # no quit written to a dead child, no BrokenPipeError
    assert process.returncode == -signal.SIGKILL and process.stdin.closed


def test_the_tensor_folder_is_writable_shared_memory_or_the_default() -> None:
    folder = fast_tmp_dir()
    if Path("/dev/shm").is_dir() and os.access("/dev/shm", os.W_OK):
        assert folder == "/dev/shm"
    else:
        assert folder is None
