"""Side-by-side exports (``vmf-export --jobs``): workers wait passively between torch's ops; each cell has its own options."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from vmf_deploy.export.parallel import passive_openmp_waits, run_exports


def test_workers_started_in_the_block_wait_passively(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    with passive_openmp_waits(), ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        assert pool.submit(os.getenv, "OMP_WAIT_POLICY").result() == "PASSIVE"
    assert "OMP_WAIT_POLICY" not in os.environ  # this process's environment is left as it was


def test_a_policy_the_environment_names_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    with passive_openmp_waits():
        assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


@pytest.mark.parametrize("jobs", [1, 2])
def test_one_cell_twice_with_its_own_options(tmp_path: Path, jobs: int) -> None:
    cells = [("560m", "onnx"), ("560m", "onnx")]
    own = [{"precision": "int8", "out_dir": tmp_path / "int8"}, {"frames": 0, "out_dir": tmp_path / "zero-frames"}]
    outcomes = run_exports(cells, {"out_dir": tmp_path / "shared"}, jobs=jobs, cell_options=own)
    assert [o.cell for o in outcomes] == cells and all(o.result is None for o in outcomes)
    assert "--calibration" in outcomes[0].error and "--frames" not in outcomes[0].error
    assert "--frames must be a positive integer" in outcomes[1].error
    assert not any(tmp_path.iterdir())


def test_cell_options_must_match_the_cells(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="1 entries for 2 cells"):
        run_exports([("560m", "onnx")] * 2, {"out_dir": tmp_path}, jobs=1, cell_options=[{}])
