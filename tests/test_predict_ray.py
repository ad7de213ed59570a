"""vmf-predict --engine ray on a local, loopback-only Ray: every path once, corrupt videos as error rows, the plain
loop's top-5, resume after an interruption without redoing work, and a killed inference actor that Ray restarts."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import video_factory as vf

from vmf_deploy.batch import results as results_module
from vmf_deploy.cli.predict import EXIT_RAY, EXIT_VIDEO_FAILED, main

pytestmark = [pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="the ray extra is not installed "
                                 "(pip install -e '.[ray]')"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]  # Ray Data's own, about its own options

GOOD = 10
CORRUPT = {"x_cut.avi": "truncated", "y_noise.mp4": "not-a-video"}


@pytest.fixture(scope="module")
def ray_session():
    """One local, loopback-only Ray for the module (the CLI joins it), shut down at the end; yields its address."""
    from vmf_deploy.batch.ray_engine import connect

    connect(None, num_cpus=3)  # before anything imports ray: the loopback setting is read at import
    import ray

    address = ray.get_runtime_context().gcs_address
    assert address.startswith("127.0.0.1:"), address
    yield address
    ray.shutdown()


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten small generated videos (avi and mp4, in two folders) and two corrupt ones."""
    root = tmp_path_factory.mktemp("library")
    (root / "day2").mkdir()
    for i in range(GOOD):
        folder = root if i % 2 else root / "day2"
        vf.write_video(folder / f"clip{i:02d}{'.avi' if i % 3 else '.mp4'}", 20 + 3 * i, (96, 64))
    vf.truncate(root / "clip01.avi", root / "x_cut.avi", 0.4)
    vf.corrupt(root / "day2" / "clip00.mp4", root / "y_noise.mp4", start=0.0, stop=1.0)
    return root


@pytest.fixture(scope="module")
def artifact(trained_export) -> Path:
    """The trained fixture's ONNX export (shared with the parity tests): 16 frames of 48², logits that differ."""
    return trained_export("onnx").artifact


def videos_of(library: Path) -> list[str]:
    return sorted(str(p) for p in library.rglob("*") if p.suffix in (".avi", ".mp4"))


def read_results(out: Path) -> list[dict]:
    if out.suffix == ".jsonl":
        return [json.loads(line) for line in out.read_text().splitlines()]
    import pyarrow.parquet as pq

    return pq.read_table(out).to_pylist()


def ray_args(library: Path, artifact: Path, out: Path, *extra: str) -> list[str]:
    return [str(library), "--engine", "ray", "--artifact", str(artifact), "--out", str(out), "--workers", "2", *extra]


@pytest.fixture
def journalled(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Every row the engine hands back, in arrival order (the journal's appends, before any de-duplication)."""
    seen: list[dict] = []
    original = results_module.Journal.append

    def append(self, rows):
        seen.extend(rows)
        original(self, rows)

    monkeypatch.setattr(results_module.Journal, "append", append)
    return seen


def test_every_path_once_with_corrupt_videos_as_rows_and_the_plain_loops_top5(ray_session, library, artifact,
                                                                               tmp_path, journalled):
    from vmf_deploy.predict import Predictor

    out = tmp_path / "results.parquet"
    assert main(ray_args(library, artifact, out, "--logits")) == EXIT_VIDEO_FAILED
    rows = read_results(out)
    paths = videos_of(library)
    assert [r["path"] for r in rows] == paths
    assert sorted(r["path"] for r in journalled) == paths
    assert not results_module.journal_path(out).exists()
    errors = {Path(r["path"]).name: r["error_kind"] for r in rows if not r["ok"]}
    assert errors == CORRUPT
    plain = Predictor.from_artifact(artifact)
    for row in rows:
        if not row["ok"]:
            assert row["error_message"] and row["top_labels"] is None
            continue
        record = plain.predict(row["path"], 5).to_record()
        assert row["top_indices"] == [t["index"] for t in record["top"]]
        assert row["top_labels"] == [t["label"] for t in record["top"]]
        np.testing.assert_allclose(row["top_scores"], [t["score"] for t in record["top"]], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(row["logits"], record["logits"], rtol=1e-5, atol=1e-5)
        assert row["sampled_frames"] == record["sampled_frames"] and row["frames"] == record["video_info"]["frames"]
        assert row["decode_s"] > 0 and row["inference_s"] > 0
    plain.close()


def test_resume_after_an_interrupted_run_does_no_work_twice(ray_session, library, artifact, tmp_path,
                                                            monkeypatch, capsys):
    from vmf_deploy.batch import ray_engine

    out = tmp_path / "results.jsonl"
    original_append = results_module.Journal.append

    def append_then_interrupt(self, rows):
        original_append(self, rows)
        raise KeyboardInterrupt

    monkeypatch.setattr(results_module.Journal, "append", append_then_interrupt)
    assert main(ray_args(library, artifact, out)) == 130
    assert "rerun with --resume to go on" in capsys.readouterr().err and not out.exists()
    first = results_module.read_journal(out)
    assert 1 <= len(first) < GOOD + len(CORRUPT)
    monkeypatch.setattr(results_module.Journal, "append", original_append)
    asked: list[str] = []
    original_predict = ray_engine.predict_paths

    def spy(paths, *args, **kwargs):
        asked.extend(paths)
        return original_predict(paths, *args, **kwargs)

    monkeypatch.setattr(ray_engine, "predict_paths", spy)
    capsys.readouterr()
    assert main(ray_args(library, artifact, out, "--resume")) == EXIT_VIDEO_FAILED
    paths = videos_of(library)
    assert sorted(asked) == sorted(set(paths) - {r["path"] for r in first})
    assert f"{len(first)} already in {out}, {len(asked)} to predict" in capsys.readouterr().out
    rows = read_results(out)
    assert [r["path"] for r in rows] == paths
    by_path = {r["path"]: r for r in rows}
    assert all(by_path[r["path"]] == r for r in first)  # the journalled rows, timings and all, not recomputed
    asked.clear()
    assert main(ray_args(library, artifact, out, "--resume")) == EXIT_VIDEO_FAILED
    assert asked == [] and read_results(out) == rows


def test_a_job_that_returns_too_few_rows_writes_no_results_and_keeps_what_it_returned(ray_session, library, artifact,
                                                                                      tmp_path, monkeypatch, capsys):
    from vmf_deploy.batch import ray_engine

    original = ray_engine.predict_paths
    monkeypatch.setattr(ray_engine, "predict_paths", lambda paths, *a, **k: original(paths[:2], *a, **k))
    out = tmp_path / "results.parquet"
    assert main(ray_args(library, artifact, out)) == EXIT_RAY
    assert "returned no row for 10 of 12 videos" in capsys.readouterr().err
    assert not out.exists() and len(results_module.read_journal(out)) == 2

def test_a_killed_inference_actor_is_restarted_and_every_path_comes_once(ray_session, library, artifact, tmp_path,
                                                                         monkeypatch, journalled):
    import psutil

    out = tmp_path / "results.parquet"
    killed: list[tuple[int, int]] = []
    append = results_module.Journal.append  # the journalled fixture's recorder

    def kill_actor_on_first_rows(self, rows):
        append(self, rows)
        if not killed:
            actor = next(p for p in psutil.process_iter(["cmdline"])
                         if "InferenceActor" in " ".join(p.info["cmdline"] or []))
            os.kill(actor.pid, signal.SIGKILL)
            killed.append((actor.pid, len(journalled)))

    monkeypatch.setattr(results_module.Journal, "append", kill_actor_on_first_rows)
    assert main(ray_args(library, artifact, out)) == EXIT_VIDEO_FAILED
    assert killed and killed[0][1] < GOOD + len(CORRUPT), "the actor was killed after the job had finished"
    paths = videos_of(library)
    assert sorted(r["path"] for r in journalled) == paths  # nothing lost, nothing twice
    rows = read_results(out)
    assert [r["path"] for r in rows] == paths
    assert sum(r["ok"] for r in rows) == GOOD


def test_address_joins_a_running_ray_with_a_path_list_and_nothing_but_its_own_lines_on_the_console(
        ray_session, library, artifact, tmp_path):
    listed = [library / "clip01.avi", library / "day2" / "clip02.avi", library / "x_cut.avi"]
    (tmp_path / "videos.txt").write_text("# three of them\n" + "\n".join(map(str, listed)) + "\n")
    out = tmp_path / "results.parquet"
    run = subprocess.run([sys.executable, "-m", "vmf_deploy.cli.predict", str(tmp_path / "videos.txt"), "--engine",
                          "ray", "--address", ray_session, "--artifact", str(artifact), "--out", str(out)],
                         check=False, capture_output=True, text=True, timeout=300)
    assert run.returncode == EXIT_VIDEO_FAILED, run.stderr
    assert run.stderr == ""
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    assert lines[0] == "3 videos" and lines[1].startswith("model: 560m") and len(lines) == 4, run.stdout
    assert lines[2].startswith(f"✗ {library / 'x_cut.avi'}  truncated: ")
    assert lines[3] == f"2 of 3 videos predicted, 1 failed → {out}"
    assert [r["path"] for r in read_results(out)] == list(map(str, listed))


def test_executorch_artifacts_run_in_the_actors_too(ray_session, library, shared_export, tmp_path):
    from vmf_deploy.predict import Predictor
    from vmf_deploy.runners import runner_class

    reason = runner_class("executorch-xnnpack").availability()
    if reason:
        pytest.skip(reason)
    pte = shared_export("560m", "executorch", 16).artifact  # the one test_predict_backends reads
    out = tmp_path / "results.parquet"
    assert main([f"{library}/**/clip0[34]*", "--engine", "ray", "--artifact", str(pte), "--out", str(out)]) == 0
    rows = read_results(out)
    plain = Predictor.from_artifact(pte)
    assert [Path(r["path"]).name for r in rows] == ["clip03.mp4", "clip04.avi"]
    for row in rows:
        record = plain.predict(row["path"], 5).to_record()
        assert row["top_indices"] == [t["index"] for t in record["top"]]
        np.testing.assert_allclose(row["top_scores"], [t["score"] for t in record["top"]], rtol=1e-5, atol=1e-7)
    plain.close()
