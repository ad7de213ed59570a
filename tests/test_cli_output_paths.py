"""Every command checks its output paths before any work: a folder given as a file, a file in a folder's place.

Before, ``vmf-val --json DIR``, ``vmf-bench --json DIR``, ``vmf-predict --json DIR`` and ``python -m
vmf_deploy.numerics --json DIR`` ran to the end and then raised ``IsADirectoryError``, and ``vmf-train --out FILE``
a ``FileExistsError``. The inputs below do not exist, so a command that did any work first would fail on them
instead, with another message.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vmf_deploy.cli import bench, dataset, predict, train, val
from vmf_deploy.cli.common import output_file_problem, output_folder_problem
from vmf_deploy.numerics import cli as numerics
from vmf_deploy.rewrites import report as rewrites_report


@pytest.fixture()
def places(tmp_path: Path) -> dict[str, Path]:
    """A folder, a file, and paths that do not exist."""
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    return {"folder": tmp_path / "folder", "file": tmp_path / "file", "missing": tmp_path / "missing",
            "checkpoint": tmp_path / "no.safetensors", "video": tmp_path / "no.mp4"}


CASES = {
    "predict --json folder": (predict.main, lambda p: [str(p["video"]), "--variant", "560m",
                                                       "--json", str(p["folder"])],
                              "--json {folder} is a folder; pass a file path, e.g. {folder}/predictions.json"),
    "predict --json under a file": (predict.main, lambda p: [str(p["video"]), "--variant", "560m",
                                                             "--json", f"{p['file']}/x.json"],
                                    "--json {file}/x.json: {file} is a file, not a folder"),
    "predict --engine ray --out folder": (predict.main, lambda p: [str(p["video"]), "--variant", "560m", "--engine",
                                                                   "ray", "--out", str(p["folder"] / "p.parquet")],
                                          "--out {folder}/p.parquet is a folder; pass a file path"),
    "val --json folder": (val.main, lambda p: ["--checkpoint", str(p["checkpoint"]), "--data", "synthetic",
                                               "--json", str(p["folder"])],
                          "--json {folder} is a folder; pass a file path, e.g. {folder}/report.json"),
    "val --json in a missing folder": (val.main, lambda p: ["--checkpoint", str(p["checkpoint"]), "--data",
                                                            "synthetic", "--json", f"{p['missing']}/r.json"],
                                       "--json {missing}/r.json: its folder {missing} does not exist; create it first"),
    "val --confusion folder": (val.main, lambda p: ["--checkpoint", str(p["checkpoint"]), "--data", "synthetic",
                                                    "--confusion", str(p["folder"])],
                               "--confusion {folder} is a folder; pass a file path, e.g. {folder}/confusion.png"),
    "bench --json folder": (bench.main, lambda p: ["--backend", "torch-cpu", "--variant", "560m",
                                                   "--json", str(p["folder"])],
                            "--json {folder} is a folder; pass a file path, e.g. {folder}/results.json"),
    "bench --plot in a missing folder": (bench.main, lambda p: ["--backend", "torch-cpu", "--variant", "560m",
                                                                "--plot", f"{p['missing']}/l.png"],
                                         "--plot {missing}/l.png: its folder {missing} does not exist"),
    "bench --workdir file": (bench.main, lambda p: ["--backend", "torch-cpu", "--variant", "560m",
                                                    "--workdir", str(p["file"])],
                             "--workdir {file} is a file; pass a folder"),
    "train --out file": (train.main, lambda p: ["--variant", "560m", "--data", str(p["missing"]),
                                                "--out", str(p["file"])],
                         "--out {file} is a file; pass a folder"),
    "numerics --json folder": (numerics.main, lambda p: [str(p["missing"] / "a.onnx"), "--json", str(p["folder"])],
                               "--json {folder} is a folder; pass a file path, e.g. {folder}/diff.json"),
    "rewrites.report --json in a missing folder": (rewrites_report.main, lambda p: ["--json", f"{p['missing']}/r.json"],
                                                   "--json {missing}/r.json: its folder {missing} does not exist"),
    "dataset --out under a file": (dataset.main, lambda p: ["synth", "--per-class", "1", "--out", f"{p['file']}/d"],
                                   "--out {file}/d: {file} is a file, not a folder"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_output_path_is_a_usage_error_before_any_work(case: str, places: dict[str, Path],
                                                            capsys: pytest.CaptureFixture) -> None:
    if case.startswith("predict --engine ray"):
        (places["folder"] / "p.parquet").mkdir()
    entry, argv, message = CASES[case]
    with pytest.raises(SystemExit) as e:
        entry(argv(places))
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    assert message.format(**{k: str(v) for k, v in places.items()}) in err
    assert "Traceback" not in err
    assert places["file"].read_text() == "x" and not places["missing"].exists()
    assert [p.name for p in places["folder"].iterdir()] in ([], ["p.parquet"])


def test_the_helpers_accept_what_can_be_written(tmp_path: Path) -> None:
    assert output_file_problem("--json", tmp_path / "new.json", "r.json") is None
    (tmp_path / "old.json").write_text("{}")
    assert output_file_problem("--json", tmp_path / "old.json", "r.json") is None  # replaced atomically
    assert output_folder_problem("--out", tmp_path) is None
    assert output_folder_problem("--out", tmp_path / "a" / "b") is None  # made with its parents
