"""Labels flow from the checkpoint: a 12-class checkpoint's class names and preprocessing reach the exported
label file and manifest, and vmf-predict prints them, in eager PyTorch and through an exported ONNX artifact."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import video_factory as vf

from vmf_deploy import build_seeded_model, save_checkpoint
from vmf_deploy.cli.predict import EXIT_MODEL, EXIT_OK, main
from vmf_deploy.export.errors import ExportError
from vmf_deploy.export.pipeline import ExportResult, export_model
from vmf_deploy.manifest import manifest_path, read_manifest
from vmf_deploy.parity import compare_logits
from vmf_deploy.preprocess import PreprocessSpec

VARIANT = "560m"
CLASSES = [f"custom class {i}" for i in range(12)]


def tiny_checkpoint(path: Path, classes: list[str] | None = CLASSES, num_classes: int = 12, frames: int = 8,
                    seed: int = 4) -> Path:
    """A seeded 560m at ``frames`` × 32² saved with ``classes`` and a 36-pixel short side (not spec_for's 32)."""
    model = build_seeded_model(VARIANT, seed=seed, frames=frames, resolution=32, num_classes=num_classes)
    spec = PreprocessSpec(frames=frames, crop=32, short_side=36)
    return save_checkpoint(model, path, classes=classes, preprocessing=spec.to_dict(), training={"epoch": 1})


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "trained.safetensors")


@pytest.fixture(scope="module")
def exported(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> ExportResult:
    """The checkpoint exported to ONNX by vmf-export's pipeline (its config: 8 frames of 32²)."""
    return export_model(VARIANT, "onnx", tmp_path_factory.mktemp("out"), checkpoint=checkpoint)


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return vf.write_video(tmp_path_factory.mktemp("video") / "clip.avi", 40, (96, 64))


def predict_record(tmp_path: Path, video: Path, *args: str) -> tuple[dict, dict]:
    """Run vmf-predict (top 12) with --json and return (document, the video's record)."""
    out = tmp_path / f"pred{len(list(tmp_path.iterdir()))}.json"
    assert main([str(video), *args, "--topk", "12", "--json", str(out)]) == EXIT_OK
    doc = json.loads(out.read_text())
    return doc, doc["videos"][0]


def assert_checkpoint_labels(record: dict) -> None:
    """Every class of the record is named by CLASSES at its index."""
    assert len(record["logits"]) == 12
    assert [(t["index"], t["label"]) for t in record["top"]] == [(t["index"], CLASSES[t["index"]])
                                                                 for t in record["top"]]
    assert sorted(t["index"] for t in record["top"]) == list(range(12))


def test_export_ships_the_checkpoints_labels_and_preprocessing(exported: ExportResult) -> None:
    manifest = read_manifest(exported.manifest_path)
    assert manifest == exported.manifest
    assert manifest["labels"] == {"file": "560m-8f.onnx.labels.txt", "count": 12}
    assert (exported.artifact.parent / "560m-8f.onnx.labels.txt").read_text() == "".join(f"{c}\n" for c in CLASSES)
    assert manifest["output"]["shape"] == [1, 12]
    assert manifest["output"]["meaning"] == ("unnormalised scores of the checkpoint's 12 classes; softmax for "
                                             "probabilities; index = line of the label file")
    assert "Kinetics" not in json.dumps(manifest["output"])
    assert manifest["preprocessing"] == PreprocessSpec(frames=8, crop=32, short_side=36).to_dict()
    assert manifest["input"]["shape"] == [1, 3, 8, 32, 32]
    assert not (exported.artifact.parent / "kinetics400_labels.txt").exists()


def test_artifacts_of_two_checkpoints_keep_their_own_labels(exported: ExportResult, tmp_path: Path) -> None:
    other_classes = [f"other {i}" for i in range(7)]
    other = tiny_checkpoint(tmp_path / "other.safetensors", other_classes, num_classes=7, frames=4, seed=5)
    out = exported.artifact.parent
    result = export_model(VARIANT, "onnx", out, checkpoint=other)
    assert result.manifest["labels"] == {"file": "560m-4f.onnx.labels.txt", "count": 7}
    assert (out / "560m-4f.onnx.labels.txt").read_text().splitlines() == other_classes
    assert (out / "560m-8f.onnx.labels.txt").read_text().splitlines() == CLASSES


def test_predict_with_the_checkpoint_prints_its_classes(checkpoint: Path, video: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    doc, record = predict_record(tmp_path, video, "--variant", VARIANT, "--checkpoint", str(checkpoint))
    assert_checkpoint_labels(record)
    assert doc["model"]["input_shape"] == [1, 3, 8, 32, 32] and doc["model_notes"] == []
    out = capsys.readouterr().out
    assert f"  {record['top'][0]['label']}" in out and record["top"][0]["label"].startswith("custom class")


def test_predict_through_the_onnx_artifact_prints_the_checkpoints_classes(exported: ExportResult, checkpoint: Path,
                                                                          video: Path, tmp_path: Path) -> None:
    artifact = str(exported.artifact)
    runs = {"onnxruntime-cpu": predict_record(tmp_path, video, "--artifact", artifact),
            "torch-cpu artifact": predict_record(tmp_path, video, "--artifact", artifact, "--backend", "torch-cpu"),
            "torch-cpu checkpoint": predict_record(tmp_path, video, "--variant", VARIANT, "--checkpoint",
                                                   str(checkpoint))}
    reference = np.array(runs["torch-cpu checkpoint"][1]["logits"])[None]
    for name, (_, record) in runs.items():
        assert_checkpoint_labels(record)
        assert compare_logits([reference], [np.array(record["logits"])[None]]).max_rel_error <= 1e-4, name
    assert runs["onnxruntime-cpu"][0]["model"]["backend"] == "onnxruntime-cpu"


def test_export_refuses_frames_unlike_the_checkpoints_preprocessing(checkpoint: Path, tmp_path: Path) -> None:
    started: list[tuple[str, float | None]] = []
    with pytest.raises(ExportError, match=r"was trained on 8-frame 32x32 clips \(its preprocessing metadata\) but "
                                          r"this export's input is 4 frames of 32x32: drop --frames \(or pass "
                                          r"--frames 8\)"):
        export_model(VARIANT, "onnx", tmp_path / "out", checkpoint=checkpoint, frames=4,
                     progress=lambda *step: started.append(step))
    assert not (tmp_path / "out").exists()
    assert started == []  # refused before any step of the export ran


def test_a_checkpoint_without_names_for_its_classes_is_refused(tmp_path: Path, video: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    unnamed = tiny_checkpoint(tmp_path / "unnamed.safetensors", classes=None)
    message = "has 12 classes but no class names in its metadata"
    with pytest.raises(SystemExit) as e:
        main([str(video), "--variant", VARIANT, "--checkpoint", str(unnamed)])
    assert e.value.code == EXIT_MODEL and message in capsys.readouterr().err
    started: list[tuple[str, float | None]] = []
    with pytest.raises(ExportError, match=message):
        export_model(VARIANT, "onnx", tmp_path / "out", checkpoint=unnamed, progress=lambda *step: started.append(step))
    assert not (tmp_path / "out").exists() and not manifest_path(tmp_path / "out" / "560m-8f.onnx").exists()
    assert started == []  # refused before any step of the export ran
