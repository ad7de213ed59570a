"""``python -m vmf_deploy.numerics`` refuses what it cannot diff meaningfully, with the reason and the fix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from vmf_deploy.manifest import ManifestError, manifest_path
from vmf_deploy.numerics.cli import compare, main


def _copy(artifact: Path, folder: Path) -> Path:
    """The artifact and its manifest, copied into ``folder`` (created)."""
    folder.mkdir()
    copy = folder / artifact.name
    shutil.copyfile(artifact, copy)
    shutil.copyfile(manifest_path(artifact), manifest_path(copy))
    return copy


@pytest.fixture
def onnx_pair(shared_export, tmp_path: Path) -> tuple[Path, Path]:
    artifact = shared_export("560m", "onnx", 16).artifact
    return _copy(artifact, tmp_path / "a"), _copy(artifact, tmp_path / "b")


@pytest.mark.parametrize("edit,named", [
    (lambda m: m["model"]["source"].update(seed=m["model"]["source"]["seed"] + 1), "weights"),
    (lambda m: m["model"].update(variant="1g"), "variant"),
    (lambda m: m["input"]["shape"].__setitem__(2, 8), "input"),
], ids=["weights", "variant", "input"])
def test_a_second_artifact_of_another_model_is_refused(onnx_pair, edit, named: str) -> None:
    first, other = onnx_pair
    manifest = json.loads(manifest_path(other).read_text())
    edit(manifest)
    manifest_path(other).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=rf"{other} is not an export of the same model \({named} "):
        compare(first, other)


def test_an_artifact_that_is_not_its_manifests_is_refused(onnx_pair, capsys: pytest.CaptureFixture) -> None:
    first, _ = onnx_pair
    with first.open("r+b") as f:
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 0xFF]))
    with pytest.raises(ManifestError, match="sha256"):
        compare(first, None)
    assert main([str(first)]) == 1
    assert "sha256" in capsys.readouterr().err


def test_a_negative_clip_seed_is_a_usage_error(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["model.onnx", "--seed", "-1"])
    assert exit_info.value.code == 2 and "--seed must be 0 or more, got -1" in capsys.readouterr().err


def test_a_format_it_cannot_tap_is_refused_before_any_work(tmp_path: Path) -> None:
    package = tmp_path / "560m-16f.mlpackage"
    package.mkdir()
    with pytest.raises(ValueError, match=r"only \.onnx, \.pte and \.xml \(OpenVINO\) artifacts can be tapped here"):
        compare(package, None)
