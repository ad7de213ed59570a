"""vmf-predict, vmf-val and vmf-bench keep the libraries' output off the console, as vmf-export does.

Loading an ExecuTorch program imports torchao (its optional CUDA kernels fail to load, loudly) and
runs the runtime's CPU probe, which writes from C++ to file descriptor 2. The CLIs therefore run in
fresh processes here: an in-process capture sees neither, and a second import prints nothing.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import video_factory as vf

LOG_LINE = r"the libraries' own output \(\d+ lines\) is in (\S+\.log); --verbose shows it here"
NOISE = re.compile(r"cpuinfo|Failed to load|warn", re.IGNORECASE)


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, timeout=600, check=False)


def _check_quiet(done: subprocess.CompletedProcess) -> str:
    """The run's console holds no library line and names the log on stderr; returns the log's text."""
    assert done.returncode == 0, done.stdout + done.stderr
    foreign = [line for line in (done.stdout + done.stderr).splitlines() if NOISE.search(line)]
    assert foreign == [], "third-party lines on the console:\n" + "\n".join(foreign)
    match = re.fullmatch(LOG_LINE, done.stderr.strip())
    assert match, done.stderr
    log = Path(match.group(1))
    text = log.read_text()
    log.unlink()
    return text


def test_libraries_quiet_logs_the_noise_and_keeps_the_tools_errors_on_the_console() -> None:
    script = textwrap.dedent("""
        import os, sys
        from vmf_deploy.cli.common import fail
        from vmf_deploy.cli.quiet import libraries_quiet
        verbose = sys.argv[1] == "verbose"
        with libraries_quiet("vmf-test", verbose) as (out, err):
            print("own-out", file=out)
            os.write(2, b"noise-native\\n")
            print("noise-print")
            fail("vmf-test", "bad input")
    """)
    quiet = subprocess.run([sys.executable, "-c", script, "quiet"], capture_output=True, text=True, timeout=120,
                           check=False)
    assert quiet.returncode == 2
    assert quiet.stdout == "own-out\n"
    error, log_line = quiet.stderr.splitlines()
    assert error == "vmf-test: error: bad input"
    match = re.fullmatch(LOG_LINE, log_line)
    assert match and "vmf-test-" in match.group(1)
    assert Path(match.group(1)).read_text() == "noise-native\nnoise-print\n"
    Path(match.group(1)).unlink()

    verbose = subprocess.run([sys.executable, "-c", script, "verbose"], capture_output=True, text=True, timeout=120,
                             check=False)
    assert verbose.returncode == 2
    assert verbose.stdout == "own-out\nnoise-print\n"
    assert verbose.stderr == "noise-native\nvmf-test: error: bad input\n"


def test_predict_and_val_on_an_executorch_program_print_only_their_own_lines(trained_checkpoint: Path,
                                                                               trained_export,
                                                                               tmp_path: Path) -> None:
    pte = trained_export("executorch").artifact
    video = vf.write_video(tmp_path / "clip.mp4", 24, (64, 48))
    predicted = _run("vmf_deploy.cli.predict", "--artifact", str(pte), str(video))
    log = _check_quiet(predicted)
    assert "cpuinfo" in log or "Failed to load" in log, log[:2000]
    assert "backend executorch-xnnpack" in " ".join(predicted.stdout.split()) and "    1. " in predicted.stdout

    validated = _run("vmf_deploy.cli.val", "--checkpoint", str(trained_checkpoint), "--artifact", str(pte),
                     "--data", "synthetic", "--clips", "12")
    log = _check_quiet(validated)
    assert "cpuinfo" in log or "Failed to load" in log, log[:2000]
    assert "executorch-xnnpack" in validated.stdout and "top-1 agree" in validated.stdout


def test_bench_keeps_its_exports_library_output_off_the_console() -> None:
    """vmf-bench exports in its own process (the measurements run in workers, whose output it keeps)."""
    done = _run("vmf_deploy.cli.bench", "--backend", "executorch-xnnpack", "--variant", "mobile3d-560m",
                "--frames", "4", "--runs", "1", "--warmup", "0")
    log = _check_quiet(done)
    assert "cpuinfo" in log or "Failed to load" in log, log[:2000]
    assert re.search(r"executorch-xnnpack +mobile3d-560m +ok median", done.stdout), done.stdout
