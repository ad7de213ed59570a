"""``--help`` of every command is instant: it imports no ML library (torch alone takes 2–3 s to import)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

SCRIPTS = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]["scripts"]
ENTRY_POINTS = {**SCRIPTS, "python -m vmf_deploy.numerics": "vmf_deploy.numerics.cli:main"}
HEAVY = ("torch", "onnx", "onnxruntime", "executorch", "coremltools", "openvino", "cv2", "ray")


@pytest.mark.parametrize("command", list(ENTRY_POINTS))
def test_help_imports_no_ml_library(command: str) -> None:
    module, function = ENTRY_POINTS[command].split(":")
    script = (f"import sys\nfrom {module} import {function} as main\n"
              "try:\n    code = main(['--help'])\nexcept SystemExit as e:\n    code = e.code\n"
              f"print(code, sorted(m for m in {HEAVY!r} if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "usage:" in done.stdout, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "0 []"
