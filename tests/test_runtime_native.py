"""The native runtime (runtimes/, vmf_run) built from scratch: C++ unit tests, preprocessing and
logits parity with the Python side, frames-dir classification, tamper refusal, bench JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from preprocess_reference import reference_video

from vmf_deploy.labels import kinetics400_labels, labels_path
from vmf_deploy.manifest import file_sha256, manifest_path, tree_sha256, write_json_atomic
from vmf_deploy.parity import parity_clips
from vmf_deploy.preprocess import PreprocessSpec, preprocess_video
from vmf_deploy.runners import RunnerError
from vmf_deploy.runners.executorch_native import ExecuTorchNativeRunner

SPEC = PreprocessSpec(frames=4, crop=32, short_side=36)


@pytest.fixture(scope="session")
def build_dir(native_build_dir: Path) -> Path:
    return native_build_dir


@pytest.fixture(scope="session")
def vmf_run(build_dir: Path) -> Path:
    return build_dir / "vmf_run"


def run_cli(binary: Path, *args: object) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True, timeout=300)


def write_manifest(artifact: Path, spec: PreprocessSpec, labels: list[str] | None = None) -> Path:
    """A complete version-1 manifest for ``artifact`` (as vmf-export writes it) plus the label file.

    Without ``labels``: the Kinetics-400 file; with them: ``<artifact>.labels.txt``, as for a checkpoint's classes.
    """
    if labels is None:
        labels_file, num_classes = labels_path().name, 400
        shutil.copy(labels_path(), artifact.parent / labels_file)
    else:
        labels_file, num_classes = artifact.name + ".labels.txt", len(labels)
        (artifact.parent / labels_file).write_text("".join(f"{name}\n" for name in labels))
    digest = file_sha256(artifact) if artifact.exists() else "0" * 64
    manifest = {
        "schema": "vmf-deploy/manifest", "schema_version": 1,
        "artifact": {"file": artifact.name, "format": "pte", "target": "executorch", "sha256": digest,
                     "size_bytes": artifact.stat().st_size if artifact.exists() else 0, "precision": "fp32"},
        "model": {"variant": "tiny-frames", "config": {}, "params": 0, "flops": 1_000_000,
                  "source": {"kind": "seeded-init", "seed": 0, "checkpoint": None, "checkpoint_sha256": None}},
        "input": {"name": "video", "shape": list(spec.input_shape), "dtype": "float32", "layout": "NCTHW"},
        "output": {"name": "logits", "shape": [1, num_classes], "dtype": "float32", "meaning": "class scores"},
        "labels": {"file": labels_file, "count": num_classes},
        "preprocessing": spec.to_dict(),
        "export": {"recipe": {}, "rewrites": [], "delegation": None, "versions": {}, "created": "", "export_seconds": 0},
        "parity": {"status": "not run: test fixture", "metrics": None},
    }
    return write_json_atomic(manifest_path(artifact), manifest)


class TinyVideoNet(torch.nn.Module):
    """A small 5D video CNN (Conv3d + BatchNorm3d, 400 classes by default) for the native-runtime tests."""

    def __init__(self, num_classes: int = 400) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv3d(3, 16, 3, stride=(1, 2, 2), padding=1), torch.nn.BatchNorm3d(16), torch.nn.ReLU(),
            torch.nn.Conv3d(16, 32, 3, stride=(1, 2, 2), padding=1), torch.nn.BatchNorm3d(32), torch.nn.ReLU())
        self.fc = torch.nn.Linear(32, num_classes)
        g = torch.Generator().manual_seed(0)
        for bn in (self.features[1], self.features[4]):  # non-trivial BatchNorm statistics
            bn.running_mean.copy_(0.1 * torch.randn(bn.num_features, generator=g))
            bn.running_var.copy_(0.5 + torch.rand(bn.num_features, generator=g))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).mean(dim=(2, 3, 4)))


class FrameTinyVideoNet(torch.nn.Module):
    """TinyVideoNet on 4D frames: what the frames_to_batch rewrite builds for it (registered below)."""

    def __init__(self, model: TinyVideoNet, convert) -> None:  # noqa: ANN001
        super().__init__()
        self.features, self.fc = convert(model.features), model.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from vmf_deploy.rewrites.frame_layers import clip_to_frames

        batch = x.shape[0]
        frames = self.features(clip_to_frames(x), batch)
        return self.fc(frames.mean(dim=(2, 3)).reshape(batch, -1, frames.shape[1]).mean(dim=1))


def lower_tiny(model: TinyVideoNet, path: Path) -> Path:
    """``model`` lowered by vmf_deploy's ExecuTorch path (BatchNorm folding, frames_to_batch, XNNPACK) to ``path``."""
    from vmf_deploy.export.executorch_export import lower_to_executorch
    from vmf_deploy.rewrites.frames_to_batch import register_frame_converter

    register_frame_converter(TinyVideoNet)(FrameTinyVideoNet)
    recipe = {"partitioner": "xnnpack", "require_full_delegation": True, "memory_planning": "greedy",
              "alloc_graph_input": True, "alloc_graph_output": True, "extract_delegate_segments": True}
    program = lower_to_executorch(model.eval(), torch.zeros(SPEC.input_shape), recipe)
    assert program.delegation["compute_ops_delegated_pct"] == 100.0
    return program.save(path)


@pytest.fixture(scope="session")
def pte(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A .pte of TinyVideoNet (400 classes) with its manifest and the Kinetics-400 labels."""
    torch.manual_seed(0)
    path = lower_tiny(TinyVideoNet(), tmp_path_factory.mktemp("pte") / "tiny-frames.pte")
    write_manifest(path, SPEC)
    return path


def write_frames(folder: Path, frames: list[np.ndarray]) -> Path:
    """Binary PPM (RGB) / PGM (grayscale) files, in name order: what `ffmpeg ... %06d.ppm` writes."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        gray = frame.ndim == 2
        header = f"{'P5' if gray else 'P6'}\n{frame.shape[1]} {frame.shape[0]}\n255\n".encode()
        (folder / f"{i:06d}.{'pgm' if gray else 'ppm'}").write_bytes(header + np.ascontiguousarray(frame).tobytes())
    return folder


def random_video(n: int, h: int, w: int, seed: int, gray: bool = False) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (h, w) if gray else (h, w, 3)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(n)]


def top5_lines(stdout: str) -> list[str]:
    """Label names of the ranked lines vmf_run prints ("  1. label   0.1234  (class 6)")."""
    lines = [line for line in stdout.splitlines() if line.strip()[:2] in {f"{i}." for i in range(1, 6)}]
    return [line.split(".", 1)[1].rsplit("(class", 1)[0].rsplit(None, 1)[0].strip() for line in lines]


def test_cpp_unit_tests_pass(build_dir: Path) -> None:
    proc = subprocess.run(["ctest", "--test-dir", str(build_dir), "--output-on-failure"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "100% tests passed" in proc.stdout


def test_xnnpack_backend_is_registered(vmf_run: Path) -> None:
    proc = run_cli(vmf_run, "--version")
    assert proc.returncode == 0 and "XnnpackBackend" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("n, h, w, gray, short_side, crop", [
    (37, 90, 160, False, 36, 32),    # downscale, landscape, long video
    (3, 160, 90, False, 36, 32),     # portrait, short video: frames repeat in order
    (9, 20, 24, False, 36, 32),      # upscale
    (8, 64, 64, True, 36, 32),       # grayscale frames (PGM) as RGB
    (11, 33, 47, False, 32, 32),     # odd sizes, crop == short side
    (4, 480, 640, False, 172, 160),  # VGA down to a 172 short side
    (5, 720, 1280, False, 172, 172),  # 720p to the 560m input
])
def test_preprocessing_matches_python(vmf_run: Path, tmp_path: Path, n: int, h: int, w: int, gray: bool,
                                      short_side: int, crop: int) -> None:
    spec = PreprocessSpec(frames=4, crop=crop, short_side=short_side, mean=(0.43, 0.45, 0.47),
                          std=(0.22, 0.225, 0.23))
    frames = random_video(n, h, w, seed=n, gray=gray)
    manifest = write_manifest(tmp_path / "absent.pte", spec)
    out = tmp_path / "input.raw"
    proc = run_cli(vmf_run, "--manifest", manifest, "--frames-dir", write_frames(tmp_path / "frames", frames),
                   "--preprocess-only", "--save-input", out)
    assert proc.returncode == 0, proc.stderr
    native = np.fromfile(out, dtype=np.float32).reshape(spec.input_shape)
    expected = preprocess_video(frames, spec)
    assert np.abs(native - expected).max() <= 1e-5
    assert np.abs(native - reference_video(frames, spec)).max() <= 1e-5


def test_sha256_matches_python(vmf_run: Path, tmp_path: Path) -> None:
    blob = tmp_path / "blob.bin"
    blob.write_bytes(np.random.default_rng(0).integers(0, 256, 200_003, dtype=np.uint8).tobytes())
    tree = tmp_path / "model.mlpackage"
    for rel, size in [("Manifest.json", 10), ("Data/com.apple.CoreML/model.mlmodel", 1000), ("a-b", 3),
                      ("a/b", 5), ("Data/com.apple.CoreML/weights/weight.bin", 70_000)]:
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(bytes(range(256)) * (size // 256) + b"x" * (size % 256))
    assert run_cli(vmf_run, "--sha256", blob).stdout.strip() == file_sha256(blob)
    assert run_cli(vmf_run, "--sha256", tree).stdout.strip() == tree_sha256(tree)


def test_native_logits_equal_executorch_python(vmf_run: Path, pte: Path) -> None:
    from vmf_deploy.runners.executorch_xnnpack import ExecuTorchXNNPACKRunner

    native, python = ExecuTorchNativeRunner(binary=vmf_run), ExecuTorchXNNPACKRunner()
    native.load(pte)
    python.load(pte)
    try:
        for clip in parity_clips(SPEC.input_shape, [0, 1, 2]):
            a, b = native.run(clip), python.run(clip)
            assert a.shape == b.shape == (1, 400)
            assert np.abs(a - b).max() <= 1e-5 * max(1.0, np.abs(b).max())
            assert native.last_model_ms is not None and native.last_model_ms > 0
    finally:
        native.close()
        python.close()


def python_top5(artifact: Path, frames: np.ndarray, spec: PreprocessSpec,
                labels: list[str] | tuple[str, ...]) -> list[str]:
    """The top-5 class names of ``frames`` through the ExecuTorch Python runtime, the reference for ``vmf_run``."""
    from vmf_deploy.runners.executorch_xnnpack import ExecuTorchXNNPACKRunner

    python = ExecuTorchXNNPACKRunner()
    python.load(artifact)
    logits = python.run(preprocess_video(frames, spec))[0]
    return [labels[i] for i in np.argsort(-logits, kind="stable")[:5]]


def test_frames_dir_prints_the_top5_of_the_python_pipeline(vmf_run: Path, pte: Path, tmp_path: Path) -> None:
    frames = random_video(23, 72, 96, seed=5)
    proc = run_cli(vmf_run, pte, "--frames-dir", write_frames(tmp_path / "frames", frames))
    assert proc.returncode == 0, proc.stderr
    assert top5_lines(proc.stdout) == python_top5(pte, frames, SPEC, kinetics400_labels())
    assert "timings: decode" in proc.stdout


def test_frames_dir_prints_a_checkpoints_own_class_names(vmf_run: Path, tmp_path: Path) -> None:
    """A 12-class model whose manifest names ``<artifact>.labels.txt``: vmf_run prints those names."""
    classes = [f"custom class {i}" for i in range(12)]
    torch.manual_seed(1)
    path = lower_tiny(TinyVideoNet(num_classes=12), tmp_path / "tiny-12.pte")
    write_manifest(path, SPEC, classes)
    frames = random_video(17, 48, 64, seed=3)
    proc = run_cli(vmf_run, path, "--frames-dir", write_frames(tmp_path / "frames", frames))
    assert proc.returncode == 0, proc.stderr
    assert top5_lines(proc.stdout) == python_top5(path, frames, SPEC, classes)


def test_tampered_pte_is_refused(vmf_run: Path, pte: Path, tmp_path: Path) -> None:
    tampered = tmp_path / pte.name
    data = bytearray(pte.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered.write_bytes(bytes(data))
    shutil.copy(manifest_path(pte), manifest_path(tampered))
    shutil.copy(labels_path(), tmp_path / labels_path().name)
    np.zeros(SPEC.input_shape, np.float32).tofile(tmp_path / "in.raw")
    proc = run_cli(vmf_run, tampered, "--input-raw", tmp_path / "in.raw")
    assert proc.returncode == 1
    assert "does not match its manifest" in proc.stderr and "re-export" in proc.stderr
    runner = ExecuTorchNativeRunner(binary=vmf_run)
    with pytest.raises(RunnerError, match="does not match its manifest"):
        runner.load(tampered)


def test_bench_json_follows_the_vmf_bench_schema(vmf_run: Path, pte: Path, tmp_path: Path) -> None:
    from vmf_deploy.bench.schema import validate

    clip = parity_clips(SPEC.input_shape, [0])[0]
    np.save(tmp_path / "clip.npy", clip)
    out = tmp_path / "bench.json"
    proc = run_cli(vmf_run, pte, "--input-npy", tmp_path / "clip.npy", "--bench", "--warmup", 1, "--runs", 3,
                   "--json", out)
    assert proc.returncode == 0, proc.stderr
    doc = validate(json.loads(out.read_text()))
    result = doc["results"][0]
    assert result["backend"] == "executorch-native" and result["status"] == "ok"
    assert len(result["latency_ms"]["samples"]) == 3 and result["artifact"]["sha256"] == file_sha256(pte)


def test_bad_inputs_get_clear_errors(vmf_run: Path, pte: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    proc = run_cli(vmf_run, pte, "--frames-dir", tmp_path / "empty")
    assert proc.returncode == 1 and "has no .ppm/.pgm frames" in proc.stderr
    (tmp_path / "short.raw").write_bytes(b"\0" * 12)
    proc = run_cli(vmf_run, pte, "--input-raw", tmp_path / "short.raw")
    assert proc.returncode == 1 and "holds 12 bytes" in proc.stderr
    newer = json.loads(manifest_path(pte).read_text()) | {"schema_version": 2}
    (tmp_path / "newer.json").write_text(json.dumps(newer))
    proc = run_cli(vmf_run, pte, "--manifest", tmp_path / "newer.json", "--input-raw", tmp_path / "short.raw")
    assert proc.returncode == 1 and "schema_version 2; this runtime reads 1" in proc.stderr
    proc = run_cli(vmf_run, tmp_path / "none.pte", "--input-raw", tmp_path / "short.raw")
    assert proc.returncode == 1 and "none.pte.manifest.json not found" in proc.stderr
    proc = run_cli(vmf_run, pte, "--runs", "0")
    assert proc.returncode == 2 and "--runs needs an integer >= 1" in proc.stderr


def test_runner_reports_an_unbuilt_runtime(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VMF_RUN", str(tmp_path / "missing" / "vmf_run"))
    reason = ExecuTorchNativeRunner.availability()
    assert reason is not None and reason.startswith("skipped: native runtime not built")


@pytest.mark.slow
def test_real_vmf_export_runs_natively(vmf_run: Path, tmp_path: Path) -> None:
    """vmf-export's 560m (16 frames) .pte: native logits equal the Python runtime's, frames-dir top-5 agrees."""
    from vmf_deploy.export.pipeline import export_model
    from vmf_deploy.runners.executorch_xnnpack import ExecuTorchXNNPACKRunner

    result = export_model("560m", "executorch", tmp_path / "export", frames=16)
    spec = PreprocessSpec.from_dict(result.manifest["preprocessing"])
    native, python = ExecuTorchNativeRunner(binary=vmf_run), ExecuTorchXNNPACKRunner()
    native.load(result.artifact)
    python.load(result.artifact)
    try:
        for clip in parity_clips(spec.input_shape, [0, 1, 2]):
            a, b = native.run(clip), python.run(clip)
            assert np.abs(a - b).max() <= 1e-5 * max(1.0, np.abs(b).max())
    finally:
        native.close()
    frames = random_video(40, 180, 320, seed=7)
    proc = run_cli(vmf_run, result.artifact, "--frames-dir", write_frames(tmp_path / "frames", frames))
    assert proc.returncode == 0, proc.stderr
    logits = python.run(preprocess_video(frames, spec))[0]
    assert top5_lines(proc.stdout) == [kinetics400_labels()[i] for i in np.argsort(-logits, kind="stable")[:5]]


@pytest.mark.slow
def test_exported_checkpoint_classes_reach_vmf_run(vmf_run: Path, tmp_path: Path) -> None:
    """vmf-export of a 12-class checkpoint saved with class names: vmf_run prints them from the label file."""
    from vmf_deploy import build_seeded_model, save_checkpoint
    from vmf_deploy.export.pipeline import export_model

    classes = [f"custom class {i}" for i in range(12)]
    model = build_seeded_model("560m", seed=4, frames=8, resolution=32, num_classes=12)
    checkpoint = save_checkpoint(model, tmp_path / "trained.safetensors", classes=classes)
    result = export_model("560m", "executorch", tmp_path / "export", checkpoint=checkpoint)
    assert result.manifest["labels"] == {"file": "560m-8f.pte.labels.txt", "count": 12}
    spec = PreprocessSpec.from_dict(result.manifest["preprocessing"])
    frames = random_video(30, 72, 96, seed=8)
    proc = run_cli(vmf_run, result.artifact, "--frames-dir", write_frames(tmp_path / "frames", frames))
    assert proc.returncode == 0, proc.stderr
    assert top5_lines(proc.stdout) == python_top5(result.artifact, frames, spec, classes)


def test_raw_tensor_mode_writes_npy_logits(vmf_run: Path, pte: Path, tmp_path: Path) -> None:
    """An input tensor (.npy or raw + --shape) in, a logits file (.npy or raw) out: parity without decoding."""
    clip = parity_clips(SPEC.input_shape, [3])[0]
    np.save(tmp_path / "clip.npy", clip)
    clip.tofile(tmp_path / "clip.raw")
    shape = ",".join(map(str, SPEC.input_shape))
    proc = run_cli(vmf_run, pte, "--input-npy", tmp_path / "clip.npy", "--output-npy", tmp_path / "a.npy")
    assert proc.returncode == 0, proc.stderr
    proc = run_cli(vmf_run, pte, "--input-raw", tmp_path / "clip.raw", "--shape", shape, "--output-raw",
                   tmp_path / "b.raw")
    assert proc.returncode == 0, proc.stderr
    logits = np.load(tmp_path / "a.npy")
    assert logits.shape == (1, 400) and logits.dtype == np.float32
    np.testing.assert_array_equal(logits.ravel(), np.fromfile(tmp_path / "b.raw", dtype=np.float32))
    runner = ExecuTorchNativeRunner(binary=vmf_run)
    runner.load(pte)
    try:
        np.testing.assert_allclose(runner.run(clip), logits, rtol=0, atol=1e-6)
    finally:
        runner.close()
    proc = run_cli(vmf_run, pte, "--input-raw", tmp_path / "clip.raw", "--shape", "1,3,8,32,32")
    assert proc.returncode == 1 and "--shape 1,3,8,32,32 differs from the model input (1, 3, 4, 32, 32)" in proc.stderr
    np.save(tmp_path / "wrong.npy", clip[:, :, :2])
    proc = run_cli(vmf_run, pte, "--input-npy", tmp_path / "wrong.npy")
    assert proc.returncode == 1 and "has shape (1, 3, 2, 32, 32) but the model input is" in proc.stderr
    proc = run_cli(vmf_run, pte, "--input-npy", tmp_path / "clip.npy", "--shape", shape)
    assert proc.returncode == 2 and "--shape describes --input-raw" in proc.stderr
