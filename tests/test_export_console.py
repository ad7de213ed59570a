"""vmf-export's console: only the tool's own lines; the libraries' output goes to vmf-export.log.

The end-to-end test runs the real CLI in a fresh process (the noise comes from native code
writing to file descriptor 2, which an in-process capture would not see), to every target,
with the default ``--jobs`` (two processes on a 2-core machine). It exports mobile3d-560m:
the noise comes from the libraries (their imports, the ExecuTorch runtime's CPU probe), not
from the model, and its ExecuTorch lowering takes 15 s instead of 560m's 70 s.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import vmf_deploy
from vmf_deploy.export.parallel import run_exports

OWN_LINES = [
    r"[^ ]+ → (onnx|executorch|coreml|openvino)",              # an export's header
    r"  ✓ [a-z]+ +\d+\.\d\d s",                                 # a finished step
    r"running \d+ exports at once, each in its own process \(--jobs\)",
    r"\s*vmf-export\s*",                                         # the summary table's title
    r"[┏┃┡│└].*",                                               # the summary table
    r"artifacts, manifests and .* are in .*",
    r"\d+ of \d+ export\(s\) passed in \d+\.\d s",
    r"the libraries' own output \(\d+ lines\) is in .*vmf-export\.log; --verbose shows it here",
]


def test_third_party_output_is_captured_from_python_native_code_and_children(tmp_path: Path) -> None:
    log = tmp_path / "third-party.log"
    script = textwrap.dedent(f"""
        import logging, os, subprocess, sys, warnings
        from pathlib import Path
        from vmf_deploy.cli.quiet import third_party_output_to
        logging.basicConfig()  # a library's stream handler, bound to sys.stderr before the capture
        with third_party_output_to(Path({str(log)!r})) as (out, err):
            print("own-out", file=out)
            print("own-err", file=err)
            print("noise-print")
            warnings.warn("noise-warning")
            logging.getLogger("somelib").warning("noise-logging")
            os.write(2, b"noise-native\\n")
            subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('noise-child\\\\n')"], check=True)
        print("after")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "own-out\nafter\n"
    assert done.stderr == "own-err\n"
    text = log.read_text()
    for noise in ("noise-print", "noise-warning", "noise-logging", "noise-native", "noise-child"):
        assert noise in text


def test_export_all_targets_prints_only_its_own_lines(tmp_path: Path) -> None:
    checkpoint = tmp_path / "mobile3d-560m.safetensors"
    vmf_deploy.save_checkpoint(vmf_deploy.build_seeded_model("mobile3d-560m", seed=1), checkpoint)
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "vmf_deploy.cli.export", "--variant", "mobile3d-560m",
                           "--target", "all",
                           "--frames", "4", "--checkpoint", str(checkpoint), "--out", str(out)],
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    foreign = [line for line in done.stdout.splitlines()
               if line.strip() and not any(re.fullmatch(p, line) for p in OWN_LINES)]
    assert foreign == [], "third-party lines on the console:\n" + "\n".join(foreign)
    assert "4 of 4 export(s) passed" in done.stdout
    log = out / "vmf-export.log"
    # the noise the issue names was produced, and went to the log instead of the console
    text = log.read_text()
    assert "cpuinfo" in text or "Failed to load" in text, text[:2000]
    assert f"is in {log}" in done.stdout


def test_failed_exports_in_worker_processes_come_back_as_messages(tmp_path: Path) -> None:
    outcomes = run_exports([("560m", "onnx"), ("560m", "tflite")], {"out_dir": tmp_path, "frames": 0}, jobs=2)
    assert [o.cell for o in outcomes] == [("560m", "onnx"), ("560m", "tflite")]
    assert all(o.result is None for o in outcomes)
    assert "--frames must be a positive integer" in outcomes[0].error
    assert "tflite" in outcomes[1].error and "Traceback" not in outcomes[1].error
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("option,value", [("--jobs", "0"), ("--jobs", "-2"), ("--frames", "0"),
                                          ("--calibration-clips", "0")])
def test_counts_must_be_positive(capsys: pytest.CaptureFixture, tmp_path: Path, option: str, value: str) -> None:
    """Refused before any export starts: ``--calibration-clips 0`` used to calibrate on the recipe's 64."""
    from vmf_deploy.cli.export import main

    code = main(["--variant", "560m", "--target", "onnx", "--precision", "int8", "--calibration", "synthetic",
                 option, value, "--out", str(tmp_path / "o")])
    printed = capsys.readouterr()
    assert code == 1 and f"{option} must be a positive integer, got {value}" in printed.err
    assert "560m → onnx" not in printed.out and not (tmp_path / "o").exists()
