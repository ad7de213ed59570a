"""Worker processes of side-by-side exports (``vmf-export --jobs``) wait passively between torch's ops."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import pytest

from vmf_deploy.export.parallel import passive_openmp_waits


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
