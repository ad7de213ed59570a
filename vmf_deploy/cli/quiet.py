"""Keep third-party output off the console: everything the libraries print goes to a log file.

torch, torchao, coremltools and the ExecuTorch runtime print deprecation notices, optional
CUDA-kernel load failures and CPU-probe messages (from C++, straight to file descriptor 2)
that are not errors for the user. :func:`third_party_output_to` points file descriptors 1 and
2, and Python's ``sys.stdout``/``sys.stderr``, at a log file for the duration of a command,
and hands back streams on the original descriptors for the tool's own lines. Child
processes started inside inherit the redirection. :func:`libraries_quiet` wraps it for a
command (a temp log, ``--verbose`` to skip it, a closing line naming the log), and
:func:`console_streams` is where a tool's own errors go meanwhile.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

_CONSOLE: contextvars.ContextVar[tuple[TextIO, TextIO] | None] = contextvars.ContextVar("vmf_console", default=None)


def console_streams() -> tuple[TextIO, TextIO]:
    """The console's ``(stdout, stderr)``: the streams :func:`third_party_output_to` hands out while it
    redirects, else ``sys.stdout`` and ``sys.stderr``. A tool's own messages (its errors) go here."""
    return _CONSOLE.get() or (sys.stdout, sys.stderr)


def _own_stream(stream: TextIO, fd: int) -> tuple[TextIO, bool]:
    """A stream for the tool's lines: a copy of ``fd`` when ``stream`` writes to it, else ``stream`` itself.

    Returns the stream and whether it was opened here (and must be closed). ``stream`` is not
    on ``fd`` when it was replaced (pytest's ``capsys``, ``redirect_stdout``); it then stays
    the destination, since the redirection of ``fd`` does not touch it.
    """
    try:
        on_fd = stream.fileno() == fd
    except (AttributeError, OSError, ValueError):
        on_fd = False
    if not on_fd:
        return stream, False
    return os.fdopen(os.dup(fd), "w", buffering=1, encoding=getattr(stream, "encoding", None) or "utf-8",
                     errors="replace"), True


@contextlib.contextmanager
def third_party_output_to(log_path: Path) -> Iterator[tuple[TextIO, TextIO]]:
    """Send everything printed to stdout/stderr (Python and native code, this process and its children)
    to ``log_path`` (appended); yield ``(out, err)`` streams that still reach the console."""
    sys.stdout.flush()
    sys.stderr.flush()
    out, own_out = _own_stream(sys.stdout, 1)
    err, own_err = _own_stream(sys.stderr, 2)
    saved = os.dup(1), os.dup(2)
    log = open(log_path, "a", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115 - closed below
    token = _CONSOLE.set((out, err))
    try:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            yield out, err
    finally:
        _CONSOLE.reset(token)
        for stream in (sys.stdout, sys.stderr, log, out, err):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        log.close()
        if own_out:
            out.close()
        if own_err:
            err.close()


@contextlib.contextmanager
def libraries_quiet(command: str, verbose: bool = False) -> Iterator[tuple[TextIO, TextIO]]:
    """Run a command's body with the libraries' output in a temp log (none when ``verbose``).

    Yields the console's ``(out, err)`` streams for the tool's own lines. On the way out, a log
    with lines is named on stderr (``--verbose shows it here``); an empty one is removed.
    """
    if verbose:
        yield sys.stdout, sys.stderr
        return
    log = temp_log_path(command)
    try:
        with third_party_output_to(log) as streams:
            yield streams
    finally:
        lines = count_lines(log)
        if lines:
            print(f"the libraries' own output ({lines} lines) is in {log}; --verbose shows it here", file=sys.stderr)
        else:
            log.unlink(missing_ok=True)


def temp_log_path(command: str) -> Path:
    """A fresh, empty temp file for ``command``'s third-party output (``vmf-export-XXXX.log``)."""
    import tempfile

    fd, name = tempfile.mkstemp(prefix=f"{command}-", suffix=".log")
    os.close(fd)
    return Path(name)


def count_lines(path: Path) -> int:
    """Non-blank lines in ``path`` (0 when it does not exist)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return sum(1 for line in f if line.strip())
    except OSError:
        return 0
