"""vmf-export: a successful run from a checkpoint, and every error case as a one-paragraph message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import vmf_deploy
from vmf_deploy.cli.export import main
from vmf_deploy.export import pipeline
from vmf_deploy.manifest import file_sha256


def run_cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_paragraph(err: str) -> None:
    assert err.startswith("vmf-export: error: ")
    assert "Traceback" not in err
    assert err.strip().count("\n") == 0 or "vmf-export: error:" in err.splitlines()[-1]


@pytest.fixture(scope="module")
def checkpoint_560m(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "560m.safetensors"
    vmf_deploy.save_checkpoint(vmf_deploy.build_seeded_model("560m", seed=1), path)
    return path


def test_help_is_instant_and_imports_no_exporter() -> None:
    code = ("import sys; from vmf_deploy.cli.export import main; rc = main(['--help']); "
            "print(rc, [m for m in ('executorch', 'coremltools', 'onnx', 'onnxruntime') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "--variant" in out and "--no-fuse" in out
    assert out.strip().splitlines()[-1] == "0 []"


def test_export_from_checkpoint_end_to_end(capsys: pytest.CaptureFixture, tmp_path: Path,
                                           checkpoint_560m: Path) -> None:
    code, out, err = run_cli(capsys, "--variant", "560m", "--target", "onnx", "--frames", "4",
                             "--checkpoint", str(checkpoint_560m), "--out", str(tmp_path))
    assert code == 0, err
    for step in ("trace", "rewrite", "save", "parity"):
        assert f"✓ {step}" in out
    assert "560m-4f.onnx" in out and "passed" in out and "1 of 1 export(s) passed" in out
    assert "seeded init" not in out
    manifest = json.loads((tmp_path / "560m-4f.onnx.manifest.json").read_text())
    assert manifest["model"]["source"] == {"kind": "checkpoint", "seed": None, "checkpoint": str(checkpoint_560m),
                                           "checkpoint_sha256": file_sha256(checkpoint_560m)}
    assert manifest["input"]["shape"] == [1, 3, 4, 172, 172] and manifest["model"]["config"]["frames"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["560m-4f.onnx", "560m-4f.onnx.manifest.json",
                                                          "kinetics400_labels.txt"]

    # the same export again: refused without --force, replaced with it
    code, out, err = run_cli(capsys, "--variant", "560m", "--target", "onnx", "--frames", "4",
                             "--checkpoint", str(checkpoint_560m), "--out", str(tmp_path))
    assert code == 1 and "already exists; pass --force" in err
    assert_one_paragraph(err)


def test_unknown_variant(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "--variant", "9g", "--target", "onnx", "--out", str(tmp_path))
    assert code == 1 and "unknown variant '9g'" in err and "560m" in err
    assert_one_paragraph(err)


def test_unknown_target(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "--variant", "560m", "--target", "tflite", "--out", str(tmp_path))
    assert code == 2 and "invalid choice: 'tflite'" in err and "Traceback" not in err


def test_checkpoint_of_another_variant(capsys: pytest.CaptureFixture, tmp_path: Path,
                                       checkpoint_560m: Path) -> None:
    code, out, err = run_cli(capsys, "--variant", "1g", "--target", "all", "--checkpoint", str(checkpoint_560m),
                             "--out", str(tmp_path / "out"))
    assert code == 1 and "holds variant '560m', not '1g'" in err and "--variant 560m" in err
    assert err.count("vmf-export: error:") == 1 and "1g → onnx" not in out  # once, before any target starts
    assert_one_paragraph(err)
    assert not (tmp_path / "out").exists()


def test_a_file_that_is_not_a_checkpoint_is_refused_once_before_any_export(capsys: pytest.CaptureFixture,
                                                                           tmp_path: Path) -> None:
    bogus = tmp_path / "model.pte"
    bogus.write_bytes(b"\x00" * 64)
    code, out, err = run_cli(capsys, "--variant", "560m", "--target", "all", "--checkpoint", str(bogus),
                             "--out", str(tmp_path / "out"))
    assert code == 1 and f"checkpoint {bogus} is not a readable safetensors file" in err
    assert err.count("vmf-export: error:") == 1 and "export(s) passed" not in out
    assert not (tmp_path / "out").exists()


def test_missing_checkpoint(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "--variant", "560m", "--target", "onnx", "--checkpoint",
                           str(tmp_path / "nope.safetensors"), "--out", str(tmp_path))
    assert code == 1 and "does not exist" in err
    assert_one_paragraph(err)


def test_checkpoint_with_all_variants(capsys: pytest.CaptureFixture, tmp_path: Path, checkpoint_560m: Path) -> None:
    code, _, err = run_cli(capsys, "--variant", "all", "--target", "onnx", "--checkpoint", str(checkpoint_560m),
                           "--out", str(tmp_path))
    assert code == 1 and "--checkpoint holds one variant" in err


def test_output_dir_is_a_file(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, out, err = run_cli(capsys, "--variant", "560m", "--target", "onnx", "--out", str(blocker))
    assert code == 1 and f"--out {blocker} is a file; pass a folder" in err
    assert "560m → onnx" not in out  # refused before any export started
    code, out, err = run_cli(capsys, "--variant", "560m", "--target", "onnx", "--out", str(blocker / "sub"))
    assert code == 1 and f"--out {blocker / 'sub'}: {blocker} is a file, not a folder" in err
    assert "560m → onnx" not in out
    assert_one_paragraph(err)
    assert blocker.read_text() == "x"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores directory permissions")
def test_output_dir_not_writable(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, _, err = run_cli(capsys, "--variant", "560m", "--target", "onnx", "--out", str(locked))
    finally:
        locked.chmod(0o700)
    assert code == 1 and "is not writable" in err


def test_existing_artifact_without_force(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    (tmp_path / "560m-8f.pte").write_bytes(b"old")
    code, _, err = run_cli(capsys, "--variant", "560m", "--target", "executorch", "--frames", "8",
                           "--out", str(tmp_path))
    assert code == 1 and "560m-8f.pte already exists; pass --force" in err
    assert_one_paragraph(err)
    assert (tmp_path / "560m-8f.pte").read_bytes() == b"old"


def test_precision_the_target_cannot_produce(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "--variant", "560m", "--target", "onnx", "--precision", "fp16",
                           "--out", str(tmp_path))
    assert code == 1 and "exports fp32, int8 only" in err


def test_invalid_recipe_file(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('target = "onnx"\n[onnx]\nopset = 7\nsimplify = true\ncheck = true\n')
    code, _, err = run_cli(capsys, "--variant", "560m", "--target", "onnx", "--recipe", str(bad),
                           "--out", str(tmp_path / "out"))
    assert code == 1 and "[onnx].opset must be an integer from 18" in err and str(bad) in err
    code, _, err = run_cli(capsys, "--variant", "560m", "--target", "all", "--recipe", str(bad),
                           "--out", str(tmp_path / "out"))
    assert code == 1 and "--recipe is the recipe of one target" in err


@torch.library.custom_op("vmftest::twist", mutates_args=())
def twist(x: torch.Tensor) -> torch.Tensor:
    """An op no exporter knows: stands for a user's custom kernel."""
    return x * 2


@twist.register_fake
def _twist_fake(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


class WithCustomOp(torch.nn.Module):
    """A VMF whose input goes through ``vmftest::twist`` first."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model, self.cfg = model, model.cfg

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(twist(x))


@pytest.mark.parametrize("target, recipe_key", [("onnx", "onnx.toml [onnx].opset"),
                                                ("coreml", "coreml.toml [coreml].minimum_deployment_target")])
def test_exporter_failure_names_op_and_recipe(capsys: pytest.CaptureFixture, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch, target: str, recipe_key: str) -> None:
    real_build = pipeline.build_seeded_model
    monkeypatch.setattr(pipeline, "build_seeded_model",
                        lambda name, seed=0, **kw: WithCustomOp(real_build(name, seed, **{**kw, "resolution": 64})))
    code, _, err = run_cli(capsys, "--variant", "560m", "--target", target, "--frames", "4",
                           "--out", str(tmp_path / "out"))
    assert code == 1 and "vmftest" in err and "twist" in err and recipe_key in err
    assert f"{target} export failed at op" in err
    assert_one_paragraph(err)
    assert not (tmp_path / "out").exists()
