"""vmf-predict through exported artifacts: torch-cpu, onnxruntime-cpu and executorch-xnnpack agree on a real
video; everything comes from the manifest, whose hash is checked first."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import video_factory as vf

from vmf_deploy.cli.predict import EXIT_MODEL, EXIT_OK, main
from vmf_deploy.manifest import manifest_path, read_manifest
from vmf_deploy.parity import compare_logits
from vmf_deploy.runners import runner_class

VARIANT, FRAMES = "560m", 16


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return vf.write_video(tmp_path_factory.mktemp("video") / "street.avi", 90, (320, 240))


@pytest.fixture(scope="module")
def onnx_artifact(shared_export) -> Path:
    """560m at 16 frames exported by vmf-export's pipeline to ONNX (shared with the export tests)."""
    return shared_export(VARIANT, "onnx", FRAMES).artifact


@pytest.fixture(scope="module")
def pte_artifact(shared_export) -> Path:
    """The same model exported to ExecuTorch (XNNPACK); skipped where the runtime cannot run it."""
    reason = runner_class("executorch-xnnpack").availability()
    if reason:
        pytest.skip(reason)
    return shared_export(VARIANT, "executorch", FRAMES).artifact


def predict_record(tmp_path: Path, video: Path, *args: str) -> tuple[dict, dict]:
    """Run vmf-predict with --json and return (document, the video's record)."""
    out = tmp_path / f"pred{len(list(tmp_path.iterdir()))}.json"
    assert main([str(video), *args, "--json", str(out)]) == EXIT_OK
    doc = json.loads(out.read_text())
    return doc, doc["videos"][0]


def test_backends_agree_on_a_generated_video(onnx_artifact, pte_artifact, video, tmp_path):
    onnx, pte = str(onnx_artifact), str(pte_artifact)
    runs = {"torch-cpu": predict_record(tmp_path, video, "--artifact", onnx, "--backend", "torch-cpu"),
            "onnxruntime-cpu": predict_record(tmp_path, video, "--artifact", onnx),
            "executorch-xnnpack": predict_record(tmp_path, video, "--artifact", pte)}
    assert {doc["model"]["backend"] for doc, _ in runs.values()} == set(runs)  # .onnx/.pte picked their backend
    tolerance = read_manifest(manifest_path(onnx))["parity"]["tolerance"]["max_rel_error"]
    assert tolerance == 1e-4
    ref_logits = np.array(runs["torch-cpu"][1]["logits"])[None]
    ref_top5 = [t["index"] for t in runs["torch-cpu"][1]["top"]]
    for backend in ("onnxruntime-cpu", "executorch-xnnpack"):
        doc, rec = runs[backend]
        report = compare_logits([ref_logits], [np.array(rec["logits"])[None]])
        assert report.max_rel_error <= tolerance, (backend, report)
        assert [t["index"] for t in rec["top"]] == ref_top5, backend
        assert rec["sampled_frames"] == runs["torch-cpu"][1]["sampled_frames"]


def test_an_onnx_artifact_is_predicted_without_importing_torch(onnx_artifact, video, tmp_path):
    """onnxruntime needs no torch; finding the backend walked the table through torch-cpu and imported it (3 s)."""
    argv = [str(video), "--artifact", str(onnx_artifact), "--json", str(tmp_path / "p.json")]
    script = f"import sys\nfrom vmf_deploy.cli.predict import main\nprint(main({argv!r}), 'torch' in sys.modules)\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip().splitlines()[-1] == f"{EXIT_OK} False", done.stdout[-2000:] + done.stderr[-2000:]
    assert json.loads((tmp_path / "p.json").read_text())["model"]["backend"] == "onnxruntime-cpu"


def test_manifest_drives_preprocessing_and_model(onnx_artifact, video, tmp_path):
    doc, rec = predict_record(tmp_path, video, "--artifact", str(onnx_artifact))
    manifest = read_manifest(manifest_path(onnx_artifact))
    assert doc["model"]["input_shape"] == manifest["input"]["shape"] == [1, 3, FRAMES, 172, 172]
    assert doc["model"]["sha256"] == manifest["artifact"]["sha256"]
    assert doc["model_notes"] == ["this artifact was exported from the deterministic seeded init, not trained "
                                  "weights: the labels are meaningless (export a trained checkpoint: vmf-export "
                                  "--checkpoint FILE)"]
    assert len(rec["sampled_frames"]) == FRAMES and rec["sampled_frames"][:3] == [2, 8, 14]
    # the manifest's seeded source, rebuilt for torch-cpu, is the very model --variant builds
    _, eager = predict_record(tmp_path, video, "--variant", VARIANT, "--frames", str(FRAMES))
    _, rebuilt = predict_record(tmp_path, video, "--artifact", str(onnx_artifact), "--backend", "torch-cpu")
    assert eager["logits"] == rebuilt["logits"]


def test_overlapped_batch_equals_the_serial_loop_on_onnx(onnx_artifact, video, tmp_path):
    """The default pipeline (two videos decoded ahead) gives the serial loop's records, a corrupt file included."""
    vf.truncate(video, tmp_path / "cut.avi", 0.4)
    videos = [str(video), str(tmp_path / "cut.avi"), str(video)]
    docs = []
    for prefetch in ("0", "2"):
        out = tmp_path / f"batch{prefetch}.json"
        assert main([*videos, "--artifact", str(onnx_artifact), "--prefetch", prefetch, "--json", str(out)]) == 1
        docs.append(json.loads(out.read_text())["videos"])
    serial, overlapped = docs
    assert [r["ok"] for r in overlapped] == [True, False, True] and overlapped[1]["error"]["kind"] == "truncated"
    for a, b in zip(serial, overlapped):
        assert a.get("top") == b.get("top") and a.get("logits") == b.get("logits") and a.get("error") == b.get("error")


@pytest.fixture
def artifact_copy(onnx_artifact, tmp_path) -> Path:
    """A private copy of the ONNX artifact, its manifest and labels, safe to damage."""
    src = onnx_artifact
    for f in (src, manifest_path(src), src.parent / "kinetics400_labels.txt"):
        shutil.copy(f, tmp_path / f.name)
    return tmp_path / src.name


def expect_model_error(capsys, argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == EXIT_MODEL
    assert message in capsys.readouterr().err


def test_tampered_artifact_is_refused_before_loading(artifact_copy, video, capsys):
    data = bytearray(artifact_copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact_copy.write_bytes(bytes(data))
    expect_model_error(capsys, [str(video), "--artifact", str(artifact_copy)],
                       "does not match its manifest (sha256")


def test_missing_manifest_and_labels_are_model_errors(artifact_copy, video, capsys):
    (artifact_copy.parent / "kinetics400_labels.txt").unlink()
    expect_model_error(capsys, [str(video), "--artifact", str(artifact_copy)],
                       "kinetics400_labels.txt named by the manifest is missing: copy it beside the artifact")
    manifest_path(artifact_copy).unlink()
    expect_model_error(capsys, [str(video), "--artifact", str(artifact_copy)],
                       "560m-16f.onnx.manifest.json not found; it is written beside the artifact by vmf-export")


def test_backend_must_match_the_artifact_format(artifact_copy, video, capsys):
    expect_model_error(capsys, [str(video), "--artifact", str(artifact_copy), "--backend", "executorch-xnnpack"],
                       "backend executorch-xnnpack runs .pte artifacts, not .onnx: omit --backend to use "
                       "onnxruntime-cpu")


def test_native_executorch_runtime_agrees(pte_artifact, video, tmp_path):
    reason = runner_class("executorch-native").availability()
    if reason:
        pytest.skip(reason)
    _, ref = predict_record(tmp_path, video, "--artifact", str(pte_artifact), "--backend", "torch-cpu")
    doc, native = predict_record(tmp_path, video, "--artifact", str(pte_artifact), "--backend", "executorch-native")
    assert doc["model"]["backend"] == "executorch-native"
    report = compare_logits([np.array(ref["logits"])[None]], [np.array(native["logits"])[None]])
    assert report.max_rel_error <= 1e-4, report
    assert [t["index"] for t in native["top"]] == [t["index"] for t in ref["top"]]


def test_malformed_manifest_is_a_model_error(artifact_copy, video, capsys):
    path = manifest_path(artifact_copy)
    manifest = json.loads(path.read_text())
    del manifest["labels"]["file"]
    path.write_text(json.dumps(manifest))
    expect_model_error(capsys, [str(video), "--artifact", str(artifact_copy)],
                       "is malformed (missing or wrong field 'file'); re-export the artifact")


def test_onnxruntime_cpu_session_plans_memory_without_the_pattern_block() -> None:
    """The CPU runner turns off onnxruntime's memory pattern (1.5-1.6x peak RSS at 64 frames, no speed gain)."""
    pytest.importorskip("onnxruntime")
    cpu = runner_class("onnxruntime-cpu")(threads=2).session_options()
    assert cpu.enable_mem_pattern is False and cpu.intra_op_num_threads == 2
    assert runner_class("onnxruntime-cuda").memory_pattern is True  # the GPU keeps onnxruntime's default
