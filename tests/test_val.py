"""`vmf-val` on the trained fixture: accuracy survives export to every CPU runtime, labels reach vmf-predict,
and bad input gets a clear message."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vmf_deploy.cli.dataset import main as dataset_main
from vmf_deploy.cli.predict import EXIT_OK as PREDICT_OK
from vmf_deploy.cli.predict import main as predict_main
from vmf_deploy.cli.val import main as val_main
from vmf_deploy.datasets import CLASSES
from vmf_deploy.native_build import VMF_RUN_ENV
from vmf_deploy.validate import ValidationError, agreement, parse_artifact, validate


@pytest.fixture(scope="module")
def test_videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The held-out test split as encoded files: 4 per class, 24 frames of 48² (the fixture samples 16)."""
    root = tmp_path_factory.mktemp("val") / "test"
    assert dataset_main(["synth", "--out", str(root), "--per-class", "4", "--frames", "24", "--size", "48"]) == 0
    return root


@pytest.fixture(scope="module")
def val_doc(trained_checkpoint: Path, trained_export, native_build_dir: Path, test_videos: Path,
            tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str, Path]:
    """vmf-val of the checkpoint and its ONNX and ExecuTorch artifacts (Python and native runtime), on files."""
    onnx, pte = trained_export("onnx").artifact, trained_export("executorch").artifact
    out = tmp_path_factory.mktemp("val-out")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(VMF_RUN_ENV, str(native_build_dir / "vmf_run"))
        args = ["--checkpoint", str(trained_checkpoint), "--data", str(test_videos), "--artifact", str(onnx),
                "--artifact", str(pte), "--artifact", f"{pte}@executorch-native", "--json", str(out / "val.json"),
                "--confusion", str(out / "confusion.png"), "--per-class"]
        import contextlib
        import io

        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert val_main(args) == 0
    return json.loads((out / "val.json").read_text()), printed.getvalue(), out


def test_the_trained_fixture_looks_at_its_input(val_doc) -> None:
    doc, _, _ = val_doc
    torch_row = doc["rows"][0]
    assert torch_row["backend"] == "torch-cpu" and doc["clips"] == 4 * len(CLASSES)
    assert torch_row["top1"] >= 2 / len(CLASSES), "the fixture should be well above chance (1/12)"
    predicted = np.asarray(torch_row["confusion"]).sum(axis=0)
    assert np.count_nonzero(predicted) >= 4, "the seeded init predicts one class for every clip; this must not"


def test_accuracy_survives_export_to_every_cpu_runtime(val_doc) -> None:
    doc, _, _ = val_doc
    rows = {r["backend"]: r for r in doc["rows"]}
    assert set(rows) == {"torch-cpu", "onnxruntime-cpu", "executorch-xnnpack", "executorch-native"}
    for backend, row in rows.items():
        assert row["top1"] == rows["torch-cpu"]["top1"], backend
        assert row["top5"] == rows["torch-cpu"]["top5"], backend
        if backend != "torch-cpu":
            assert row["top1_agreement"] == 1.0 and row["top5_overlap"] == 1.0, backend
            assert row["cosine_min"] > 0.99999 and row["centered_sqnr_db"] > 60, backend
            assert row["notes"] == [], backend


def test_val_prints_a_table_per_artifact_and_per_class_and_plots_the_confusion(val_doc) -> None:
    doc, printed, out = val_doc
    for header in ("top-1 agree", "centered SQNR dB", "top-1 per class"):
        assert header in printed
    for name in CLASSES:
        assert name in printed
    assert (out / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert doc["schema"] == "vmf-deploy/val" and doc["classes"] == list(CLASSES)
    assert all(set(r["per_class_top1"]) == set(CLASSES) for r in doc["rows"])


def test_vmf_predict_shows_the_checkpoints_classes_at_the_validated_rate(val_doc, trained_export,
                                                                          test_videos: Path, tmp_path: Path) -> None:
    doc, _, _ = val_doc
    out = tmp_path / "pred.json"
    code = predict_main([str(p) for p in sorted(test_videos.glob("*/*.*"))] +
                        ["--artifact", str(trained_export("onnx").artifact), "--json", str(out)])
    assert code == PREDICT_OK
    records = json.loads(out.read_text())["videos"]
    assert all(r["top"][0]["label"] in CLASSES for r in records)
    right = np.mean([r["top"][0]["label"] == Path(r["video"]).parent.name for r in records])
    onnx_row = next(r for r in doc["rows"] if r["backend"] == "onnxruntime-cpu")
    assert right == pytest.approx(onnx_row["top1"])


def test_agreement_of_identical_and_different_logits() -> None:
    ref = np.random.default_rng(0).standard_normal((6, 12)).astype(np.float32)
    same = agreement(ref, ref)
    assert same["top1_agreement"] == 1.0 and same["top5_overlap"] == 1.0 and same["cosine_min"] == pytest.approx(1)
    other = agreement(ref, -ref)
    assert other["top1_agreement"] == 0.0 and other["cosine_min"] == pytest.approx(-1)


def test_bad_input_is_a_clear_error(trained_checkpoint: Path, test_videos: Path, tmp_path: Path,
                                    shared_export) -> None:
    with pytest.raises(ValidationError, match="does not exist"):
        validate(tmp_path / "missing.safetensors", [], str(test_videos))
    with pytest.raises(ValidationError, match="dataset .* does not exist"):
        validate(trained_checkpoint, [], str(tmp_path / "nowhere"))
    (tmp_path / "other" / "juggling").mkdir(parents=True)
    (tmp_path / "other" / "juggling" / "x.mp4").write_bytes(next(test_videos.glob("*/*.*")).read_bytes())
    with pytest.raises(ValidationError, match=r"labels \['juggling'\] that are not in the class list"):
        validate(trained_checkpoint, [], str(tmp_path / "other"))
    seeded = shared_export("560m", "onnx", 16).artifact  # 172², the fixture is 48²
    with pytest.raises(ValidationError, match=r"takes \[1, 3, 16, 172, 172\] but checkpoint .* was trained at "
                                              r"\[1, 3, 16, 48, 48\]: export that checkpoint"):
        validate(trained_checkpoint, [(seeded, None)], str(test_videos))


def test_cli_usage_errors(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        val_main(["--checkpoint", str(tmp_path / "x.safetensors"), "--data", str(tmp_path), "--clips", "0"])
    assert exit_info.value.code == 2 and "--clips must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        val_main(["--checkpoint", str(tmp_path / "x.safetensors"), "--data", str(tmp_path)])
    assert exit_info.value.code == 2 and "x.safetensors does not exist" in capsys.readouterr().err


def test_an_at_suffix_that_names_no_backend_is_refused(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    """``model.onnx@tpu`` used to be read as a file named ``model.onnx@tpu``, "not found"."""
    with pytest.raises(SystemExit) as exit_info:
        val_main(["--checkpoint", str(tmp_path / "x.safetensors"), "--data", "synthetic",
                  "--artifact", str(tmp_path / "m.onnx@tpu")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "unknown backend 'tpu' after '@'; valid backends: torch-cpu," in err
    named = tmp_path / "m@v2.onnx"
    assert parse_artifact(str(named)) == (named, None)  # an '@' in a file name is not a backend
    existing = tmp_path / "clip@front"
    existing.write_bytes(b"x")
    assert parse_artifact(str(existing)) == (existing, None)  # an existing file is taken as it is
