"""int8 export: calibration sources, the [quantization] recipe tables, and the int8 gate on the trained fixture.

The int8 exports run on the trained fixture (``conftest.trained_checkpoint``, 560m at 16 × 48²): the
seeded init barely looks at its input, so agreement and accuracy on it would mean nothing.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import numpy as np
import pytest
from recipe_edits import assert_edits_refused

from vmf_deploy.datasets.writer import write_video
from vmf_deploy.export.errors import ExportError
from vmf_deploy.export.pipeline import export_model
from vmf_deploy.export.recipes import load_recipe
from vmf_deploy.export.targets import get_target
from vmf_deploy.manifest import manifest_path
from vmf_deploy.parity import compare_logits
from vmf_deploy.preprocess import PreprocessSpec
from vmf_deploy.quantize.calibration import CalibrationError, load_calibration

SPEC = PreprocessSpec(frames=8, crop=32, short_side=32)

ARM_INT8_VS_X86 = 0.05
"""Largest max relative error allowed between the int8 .pte's logits on ARM (qemu, Cortex-A76) and on x86.
XNNPACK's QS8 kernels requantize with the same fp32 arithmetic on both ISAs, so the two differ only
where an fp32 rounding difference moves a value across a quantization step; not yet measured here."""


def _videos(folder: Path, count: int, value: int | None = None, size: int = 40) -> Path:
    """``count`` 12-frame mp4 files in ``folder``: random pixels, or all ``value``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        frames = (np.full((12, size, size, 3), value, np.uint8) if value is not None
                  else rng.integers(0, 256, (12, size, size, 3), dtype=np.uint8))
        write_video(folder / f"v{i}.mp4", frames, 12.0, "mp4v")
    return folder


# ----- calibration sources -----------------------------------------------------------------------

def test_synthetic_calibration_is_the_calibration_split_at_the_export_shape() -> None:
    calib = load_calibration("synthetic", SPEC, clips=5)
    assert len(calib.clips) == 5 and calib.clips[0].shape == (1, 3, 8, 32, 32)
    assert calib.describe()["kind"] == "synthetic"
    assert calib.sha256 == load_calibration("synthetic", SPEC, clips=5).sha256  # deterministic
    assert calib.sha256 != load_calibration("synthetic", SPEC, clips=4).sha256


def test_video_folders_labelled_or_not(tmp_path: Path) -> None:
    plain = load_calibration(_videos(tmp_path / "plain", 3), SPEC, clips=2)
    assert plain.kind == "video-folder" and len(plain.clips) == 2 and plain.clips[0].shape == (1, 3, 8, 32, 32)
    _videos(tmp_path / "ds" / "a", 3)
    _videos(tmp_path / "ds" / "b", 3, value=0)
    labelled = load_calibration(tmp_path / "ds", SPEC, clips=2)
    assert labelled.kind == "labelled-folder"
    assert abs(float(labelled.clips[1].mean()) - (0 - 0.45) / 0.225) < 1e-5  # round-robin: class b's 1st video


def test_calibration_source_errors(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="does not exist"):
        load_calibration(tmp_path / "nope", SPEC)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CalibrationError, match="holds no videos"):
        load_calibration(tmp_path / "empty", SPEC)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.mp4").write_bytes(b"not a video" * 100)
    with pytest.raises(CalibrationError, match="none of the 1 calibration videos"):
        load_calibration(tmp_path / "bad", SPEC)
    with pytest.raises(CalibrationError, match="positive integer"):
        load_calibration("synthetic", SPEC, clips=0)


# ----- recipes and arguments ---------------------------------------------------------------------

def test_quantization_tables_are_validated(tmp_path: Path) -> None:
    assert_edits_refused("onnx", [
        ('reduce_range = true', 'reduce_range = "yes"', r"\[quantization\].reduce_range"),
        ('calibration_method = "minmax"', 'calibration_method = "mse"', "calibration_method"),
        ('\nweights = "int8"\n', '\nweights = "int8"\nsmooth = 1\n', "smooth"),
        ('fp32_module_weights = "int8"', 'fp32_module_weights = "int4"', "fp32_module_weights"),
        ('fp32_attention_matmuls = true\n', '', "lacks"),
        ('banded_depthwise = false', 'banded_depthwise = 0', "banded_depthwise"),
        ('equalize_channels = 0.5', 'equalize_channels = 2', r"equalize_channels must be a number from 0 to 1"),
        ('equalize_channels = 0.5', 'equalize_channels = true', r"equalize_channels must be a number from 0 to 1"),
        ('max_accuracy_drop = 0.04', 'max_accuracy_drop = 5', "max_accuracy_drop")], tmp_path)
    assert_edits_refused("executorch", [
        ('calibration_method = "minmax"', 'calibration_method = "entropy"', "calibration_method"),
        ('calibration_method = "minmax"\n', '', "lacks"),
        ('kept_linears = "fp32"', 'kept_linears = "int4"', r"kept_linears must be one of"),
        ('fp32_output_weights = "', 'fp32_output_weights = "int4" # "', r"fp32_output_weights must be one of"),
        ('dyrelu_application = "int8"', 'dyrelu_application = "int4"', r"dyrelu_application must be one of"),
        ('quantize_input = true', 'quantize_input = "once"', r"\[quantization\].quantize_input"),
        ('equalize_channels = 0.5\n', '', "lacks"),
        ('qat_steps = 0', 'qat_steps = -1', r"qat_steps must be an integer from 0"),
        ('qat_clips = 2048', 'qat_clips = 0', r"qat_clips must be an integer from 1"),
        ('qat_learning_rate = 3e-6', 'qat_learning_rate = 0', r"qat_learning_rate must be a number above 0"),
        ('fp32_op_types = ["add", "mul"]', 'fp32_op_types = "add"', r"\[quantization\].fp32_op_types")], tmp_path)
    for target in ("onnx", "executorch", "coreml"):
        recipe = load_recipe(get_target(target))
        assert recipe.quantization and recipe.tolerance("int8").min_top1_agreement > 0


def test_int8_onnx_leaves_out_the_banded_depthwise_form_unless_the_recipe_keeps_it() -> None:
    from types import SimpleNamespace

    from vmf_deploy.export.onnx_export import quantized_skips

    assert quantized_skips(None) == set()  # fp32: the banded form, built from the compact weight at load
    assert quantized_skips(SimpleNamespace(options={"banded_depthwise": False})) == {"onnx_depthwise_conv2d"}
    assert quantized_skips(SimpleNamespace(options={"banded_depthwise": True})) == set()
    assert load_recipe(get_target("onnx")).quantization["banded_depthwise"] is False


def test_int8_is_never_calibrated_on_noise(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="pass --calibration synthetic"):
        export_model("560m", "onnx", tmp_path, frames=8, precision="int8")
    with pytest.raises(ExportError, match="--calibration is for --precision int8"):
        export_model("560m", "onnx", tmp_path, frames=8, calibration="synthetic")
    with pytest.raises(ExportError, match="does not exist"):
        export_model("560m", "onnx", tmp_path, frames=8, precision="int8", calibration=tmp_path / "missing")
    assert not any(tmp_path.iterdir())


def test_accuracy_is_measured_on_labelled_rows_only() -> None:
    ref = [np.array([[2.0, 1.0, 0.0]]), np.array([[0.0, 2.0, 1.0]]), np.array([[0.0, 1.0, 2.0]])]
    cand = [np.array([[2.0, 1.0, 0.0]]), np.array([[2.0, 0.0, 1.0]]), np.array([[0.0, 1.0, 2.0]])]
    report = compare_logits(ref, cand, [None, 1, 2])
    assert report.reference_accuracy == 1.0 and report.accuracy == 0.5 and report.accuracy_drop == 0.5
    from vmf_deploy.parity import ParityTolerance

    failures = report.failures(ParityTolerance(max_rel_error=10, min_top1_agreement=0, max_accuracy_drop=0.01))
    assert any("50.0 points below" in f for f in failures)
    assert compare_logits(ref, cand).accuracy is None


# ----- int8 exports of the trained fixture -------------------------------------------------------

def _check_int8_manifest(result, size_fp32: int | None = None) -> dict:
    manifest = json.loads(manifest_path(result.artifact).read_text())
    assert manifest["artifact"]["precision"] == "int8"
    assert result.artifact.name.endswith(f"-int8{result.artifact.suffix}")
    q = manifest["export"]["quantization"]
    assert q["calibration"]["source"] == "synthetic" and q["calibration"]["clips"] == 64
    assert len(q["calibration"]["sha256"]) == 64
    assert q["layer_errors"]["tensors"] > 0 and q["layer_errors"]["worst"][0]["module"]
    parity = manifest["parity"]
    assert parity["status"] == "passed" and parity["metrics"]["clips"] == 3 + 240
    metrics = parity["metrics"]
    assert metrics["reference_accuracy"] is not None and metrics["accuracy"] is not None  # labelled held-out clips
    assert parity["clip_sources"][1]["labels_used"] is True
    if size_fp32 is not None:
        assert manifest["artifact"]["size_bytes"] < 0.5 * size_fp32
    return manifest


@pytest.fixture(scope="module")
def onnx_int8(trained_export):
    """The trained fixture exported to int8 ONNX, calibrated on 64 synthetic clips (once per session)."""
    return trained_export("onnx-int8")


def test_onnx_int8_from_the_trained_fixture_passes_the_int8_gate(onnx_int8, trained_export) -> None:
    result = onnx_int8
    manifest = _check_int8_manifest(result, trained_export("onnx").manifest["artifact"]["size_bytes"])
    q = manifest["export"]["quantization"]
    assert q["reduce_range"] is True and q["by_op"]["Conv"] == {"int8": 29, "weight_only": 0, "fp32": 1}  # the stem
    assert q["fp32_nodes"]["op type Softmax"] == 17 and q["fp32_nodes"]["inside FrameDyReLU"] > 0
    assert q["fp32_nodes"]["inside Stem"] >= 1
    assert q["fp32_nodes"]["computes a graph output"] == 1  # the classifier: fp32 logits
    # the element-wise ops between the int8 convs and linears run fp32 (residuals, bridge updates, gates, h-swish)
    assert q["fp32_nodes"]["op type Add"] > 0 and q["fp32_nodes"]["op type Mul"] > 0
    # the DyReLU's MLP: fp32 arithmetic on int8 weights (per channel, behind a DequantizeLinear)
    assert q["fp32_module_weights"] == "int8" and q["weight_only_int8"] == 65  # and the classifier's
    # the classifier reads the head's fp32 h-swish (a Mul), so it counts as weight-only too
    assert q["by_op"]["MatMul"]["weight_only"] == 48 and q["by_op"]["Gemm"]["weight_only"] == 17
    # the int32 biases' all-zero zero points are left out (tests/test_onnx_bias_zero_points.py)
    assert q["bias_zero_points_dropped"] == 128
    assert q["layer_errors"]["method"].startswith("onnxruntime qdq_loss_debug")
    # the recipe's banded_depthwise = false: the depthwise convs stay native Conv3d (QLinearConv), compact weights
    assert q["banded_depthwise"] is False
    # the Mobile blocks' hidden channels were equalized before calibration (tests/test_int8_channel_equalization.py)
    assert q["channel_equalization"]["blocks"] == 8 and q["channel_equalization"]["strength"] == 0.5
    assert q["channel_equalization"]["scale_max"] > 1.0
    applied = {r["name"] for r in manifest["export"]["rewrites"]}
    assert "onnx_depthwise_conv2d" not in applied
    assert "onnx_depthwise_conv2d" in {r["name"] for r in trained_export("onnx").manifest["export"]["rewrites"]}
    import onnx

    graph = onnx.load(str(result.artifact)).graph
    weights = {i.name: i for i in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}

    def weight_rank(conv: onnx.NodeProto) -> int:
        name = conv.input[1]
        return len(weights[name if name in weights else producers[name].input[0]].dims)  # behind its DequantizeLinear

    depthwise = [n for n in graph.node if n.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in n.attribute)]
    assert depthwise and all(weight_rank(n) == 5 for n in depthwise)
    from vmf_deploy.bench.artifacts import artifact_precision
    from vmf_deploy.cli.bench import COLUMNS, table_row

    assert artifact_precision(result.artifact) == "int8"  # vmf-bench's precision column
    row = {"backend": "onnxruntime-cpu", "variant": "560m", "status": "ok", "flops": None, "clips_per_s": None,
           "latency_ms": None, "parity": None, "memory": None,
           "artifact": {"size_bytes": 1, "precision": artifact_precision(result.artifact)}}
    assert table_row(row)[COLUMNS.index("precision")] == "int8"
    folder = result.artifact.parent
    assert sorted(p.name for p in folder.iterdir()) == [result.artifact.name, result.artifact.name + ".labels.txt",
                                                        manifest_path(result.artifact).name]


def test_onnx_int8_passes_the_int8_gate_on_arm64(onnx_int8, trained_checkpoint: Path, arm64_userland: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The same int8 .onnx in onnxruntime's aarch64 kernels (qemu, cortex-a76) meets the int8 limits on the gate's clips.

    ARM's u8s8 kernels (NEON, dot product) do not saturate as x86's non-VNNI ones do, so the artifact's
    reduce_range (7-bit weights) only costs precision there; the gate judges what they compute.
    """
    from vmf_deploy.export.manifest_builder import export_labels
    from vmf_deploy.export.parity_gate import run_gate
    from vmf_deploy.export.pipeline import load_model

    monkeypatch.delenv("VMF_QEMU_CPU", raising=False)
    recipe = load_recipe(get_target("onnx"))
    reference = load_model("560m", trained_checkpoint, None)
    gate = run_gate(reference, onnx_int8.artifact, "onnxruntime-arm64", recipe.seeds, recipe.tolerance("int8"),
                    recipe.tolerance_key("int8"), tuple(reference.cfg.input_shape), recipe.heldout_clips,
                    classes=export_labels(trained_checkpoint))
    assert gate.record["runtime"].endswith("aarch64 CPU under qemu-aarch64-static (cortex-a76)")
    assert gate.report.clips == 3 + recipe.heldout_clips and gate.report.accuracy is not None
    x86 = json.loads(manifest_path(onnx_int8.artifact).read_text())["parity"]["metrics"]
    print(f"int8 on arm64 cortex-a76: {gate.report.to_dict()}; on x86: {x86}")


def test_gate_refuses_int8_calibrated_on_black_videos_and_names_the_layers(trained_checkpoint: Path,
                                                                            tmp_path: Path) -> None:
    black = _videos(tmp_path / "black", 4, value=0, size=64)
    out = tmp_path / "out"
    with pytest.raises(ExportError) as info:
        export_model("560m", "onnx", out, checkpoint=trained_checkpoint, precision="int8", calibration=black)
    message = str(info.value)
    assert "parity gate refused 560m-16f-int8.onnx" in message and "centered SQNR" in message
    assert "Layers adding the most error (onnxruntime qdq_loss_debug" in message
    worst = [line for line in message.splitlines() if line.startswith("  ")]
    assert len(worst) == 5 and all(line.strip().startswith(("blocks.", "head", "stem")) for line in worst)
    recipe = load_recipe(get_target("onnx"))
    hint = message.splitlines()[-1]
    assert hint.startswith("To trade latency for precision, keep modules fp32: add --set 'quantization.fp32_modules=")
    assert f"the list of {recipe.path} and the worst layer's module" in hint
    setting = shlex.split(hint.split("add --set ", 1)[1])[0]  # as the shell hands it to vmf-export
    kept = load_recipe(get_target("onnx"), None, [setting]).quantization["fp32_modules"]
    assert kept[:-1] == recipe.quantization["fp32_modules"] and kept[-1] in "\n".join(worst)
    assert not out.exists()


def test_a_refused_int8_export_says_how_to_keep_layers_fp32() -> None:
    from vmf_deploy.export.lowering import QuantizationPlan
    from vmf_deploy.export.pipeline import _layer_diff_explainer
    from vmf_deploy.quantize.layer_diff import LayerError

    plan = QuantizationPlan("int8", {}, None, {}, layers=[LayerError(
        tensor="conv2d_5", node="conv2d_5", op_type="conv2d", module="blocks.0.mobile.dw", sqnr_db=18.0,
        local_db=None, input_sqnr_db=24.0, rounded=True)], layer_diff_method="a simulation")
    recipe = Path("export/executorch.toml")
    lines = _layer_diff_explainer(plan, recipe)().splitlines()
    assert lines[0] == "Layers adding the most error (a simulation):"
    assert lines[1].startswith("  blocks.0.mobile.dw: conv2d conv2d_5 output") and "(-6.0 dB at this layer)" in lines[1]
    assert "\"blocks.0.mobile\"" in lines[2] and "fp32_modules" in lines[2] and str(recipe) in lines[2]
    assert "qat_steps" not in lines[2]  # a recipe without the key (onnx, OpenVINO) cannot fine-tune
    plan.options = {"fp32_modules": ["FrameDyReLU", "LayerNorm"]}
    line = _layer_diff_explainer(plan, recipe)().splitlines()[2]
    assert "--set 'quantization.fp32_modules=[\"FrameDyReLU\", \"LayerNorm\", \"blocks.0.mobile.dw\"]'" in line
    setting = shlex.split(line.split("add --set ", 1)[1])[0]  # as the shell hands it to vmf-export
    kept = load_recipe(get_target("executorch"), None, [setting]).quantization["fp32_modules"]
    assert kept == ["FrameDyReLU", "LayerNorm", "blocks.0.mobile.dw"]
    plan.options = {"fp32_modules": ["blocks.0.mobile.dw"]}  # the worst module is kept already: no --set to give
    assert "--set '" not in _layer_diff_explainer(plan, recipe)()
    plan.options = {"qat_steps": 0}
    assert "--set quantization.qat_steps=2048" in _layer_diff_explainer(plan, recipe)().splitlines()[2]
    plan.options = {"qat_steps": 2048}
    assert "qat_steps" not in _layer_diff_explainer(plan, recipe)()
    assert _layer_diff_explainer(QuantizationPlan("int8", {}, None, {}), recipe) is None  # no diff, no explainer


@pytest.fixture(scope="module")
def executorch_int8(trained_export):
    """The trained fixture exported to int8 ExecuTorch, calibrated on 64 synthetic clips (once per session)."""
    return trained_export("executorch-int8")


def test_executorch_int8_is_fully_delegated_int8_and_passes_the_gate(executorch_int8, trained_export,
                                                                     native_build_dir: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    result = executorch_int8
    manifest = _check_int8_manifest(result, trained_export("executorch").manifest["artifact"]["size_bytes"])
    delegation = manifest["export"]["delegation"]
    assert delegation["compute_ops_delegated_pct"] == 100.0 and delegation["portable_ops"] == 0
    q = manifest["export"]["quantization"]
    assert q["by_op"]["aten.convolution"]["fp32"] == 0 and q["by_op"]["aten.convolution"]["int8"] > 0
    assert q["by_op"]["aten.bmm"]["int8"] == 0  # attention products stay fp32
    assert "blocks.0.mobile.act1" in q["fp32_module_paths"]
    assert {"blocks.0.former.norm1", "blocks.0.mobile_to_former.norm"} <= set(q["fp32_module_paths"])  # LayerNorm
    assert q["fp32_outputs"] is True and any(name.startswith("linear") for name in q["fp32_output_nodes"])
    assert q["calibration_method"] == "minmax" and q["kept_linears"] == "fp32" and q["dyrelu_application"] == "int8"
    assert q["quantize_input"] is True
    assert q["channel_equalization"]["blocks"] == 8 and q["channel_equalization"]["scale_max"] > 1.0
    assert [name for name, _ in result.steps].count("equalize channels") == 1
    # the element-wise ops outside the DyReLU's application stay fp32 (tests/test_int8_dyrelu_application.py)
    assert q["fp32_op_types"] == ["add", "mul"]
    assert q["fp32_op_type_nodes"]["add"] > 0 and q["fp32_op_type_nodes"]["mul"] > 0
    assert q["compute_ops"]["dynamic_int8"] == 0  # the kept linears stay fp32 (tests/test_int8_kept_linears.py)
    assert q["fp32_output_weights"] == "int8" and q["by_op"]["aten.linear"]["weight_only_int8"] == 1  # the classifier
    assert q["layer_errors"]["method"].startswith("torchao numeric debugger")
    assert [name for name, _ in result.steps].count("quantize") == 1

    # runtimes/ (vmf_run, the C++ Module API the apps use) runs the int8 .pte as the Python runtime does
    from vmf_deploy.datasets.synthetic import gate_clips
    from vmf_deploy.native_build import VMF_RUN_ENV
    from vmf_deploy.runners import get_runner

    monkeypatch.setenv(VMF_RUN_ENV, str(native_build_dir / "vmf_run"))
    clips = gate_clips(tuple(manifest["input"]["shape"]), 3, seed=7)
    outputs = []
    for backend in ("executorch-xnnpack", "executorch-native"):
        runner = get_runner(backend, threads=2)
        runner.load(result.artifact)
        outputs.append([runner.run(c) for c in clips])
        runner.close()
    for py, native in zip(*outputs):
        assert np.abs(py - native).max() <= 1e-4 * np.abs(py).max()


def test_executorch_int8_on_arm64_meets_the_int8_limits(executorch_int8, aarch64_build_dir: Path) -> None:
    """The int8 .pte on the emulated Cortex-A76 (ARM's quantized XNNPACK kernels) vs PyTorch fp32 and vs x86."""
    import torch

    from vmf_deploy.checkpoint import load_checkpoint
    from vmf_deploy.datasets.synthetic import gate_clips
    from vmf_deploy.export.parity_gate import run_artifact
    from vmf_deploy.parity import ParityTolerance

    manifest = json.loads(manifest_path(executorch_int8.artifact).read_text())
    clips = gate_clips(tuple(manifest["input"]["shape"]), 3, seed=7)
    arm = run_artifact("executorch-native-arm64", executorch_int8.artifact, clips)
    x86 = run_artifact("executorch-xnnpack", executorch_int8.artifact, clips)
    model = load_checkpoint(manifest["model"]["source"]["checkpoint"]).eval()
    with torch.inference_mode():
        reference = [model(torch.from_numpy(c)).numpy() for c in clips]
    tolerance = ParityTolerance(**manifest["parity"]["tolerance"])
    # the per-clip int8 limits; top-1 agreement, accuracy and the spread metrics need the gate's 243 clips
    report = compare_logits(reference, arm)
    assert report.max_rel_error <= tolerance.max_rel_error and report.min_cosine >= tolerance.min_cosine
    assert compare_logits(x86, arm).max_rel_error <= ARM_INT8_VS_X86


def test_coreml_int8_converts_and_says_what_was_not_run(trained_checkpoint: Path, tmp_path: Path) -> None:
    # palettize8 takes the same path; tests/test_coreml_weights.py compresses with both schemes
    result = export_model("560m", "coreml", tmp_path, checkpoint=trained_checkpoint, precision="int8")
    manifest = json.loads(manifest_path(result.artifact).read_text())
    q = manifest["export"]["quantization"]
    assert manifest["artifact"]["precision"] == "int8" and q["compressed_weights"] > 0
    assert q["runtime"] == "not run: Core ML needs macOS" and q["calibration"]["source"] is None
    assert manifest["parity"]["status"] == "not run: CoreML runtime needs macOS"
    assert manifest["parity"]["metrics"] is None


# ----- layer-aligned numerics --------------------------------------------------------------------

def test_numerics_aligns_onnx_blocks_with_pytorch(onnx_int8, trained_export, tmp_path: Path) -> None:
    from vmf_deploy.numerics.cli import compare, main

    fp32, int8 = trained_export("onnx").artifact, onnx_int8.artifact
    report = compare(int8, fp32)
    blocks = [row["block"] for row in report["blocks"]]
    assert blocks == ["stem"] + [f"blocks.{i}" for i in range(8)] + ["logits"]
    assert all(row["sqnr_db_1"] > 90 for row in report["blocks"])  # fp32 taps found the right tensors
    stem, *rest = report["blocks"]
    assert stem["sqnr_db_0"] > 60  # the onnx recipe keeps the stem fp32
    assert all(5 < row["sqnr_db_0"] < 60 for row in rest)  # int8 noise, block by block
    assert rest[0]["sqnr_db_0"] > rest[-2]["sqnr_db_0"]  # it accumulates
    assert report["artifacts"][0]["precision"] == "int8"
    assert main([str(int8), "--json", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["blocks"][-1]["block"] == "logits"


def test_numerics_rebuilds_the_int8_executorch_program_it_diffs(executorch_int8, tmp_path: Path,
                                                                 capfd: pytest.CaptureFixture) -> None:
    """The tapped rebuild is the artifact's own program: its logits are the .pte's, bit for bit (the 200 dB cap)."""
    from vmf_deploy.numerics.cli import main

    assert main([str(executorch_int8.artifact), "--json", str(tmp_path / "r.json")]) == 0
    printed = capfd.readouterr()
    assert "blocks.7" in printed.out and "cpuinfo" not in printed.out + printed.err  # the runtime's probe: in the log
    report = json.loads((tmp_path / "r.json").read_text())
    side = report["artifacts"][0]
    assert side["precision"] == "int8" and side["tapped_logits_db"] >= 150
    assert [row["block"] for row in report["blocks"]] == ["stem"] + [f"blocks.{i}" for i in range(8)] + ["logits"]
    assert all(5 < row["sqnr_db_0"] < 60 for row in report["blocks"])  # int8 noise, the stem's output included


@pytest.mark.slow
def test_numerics_rebuilds_an_executorch_program_with_its_blocks(trained_checkpoint: Path, trained_export) -> None:
    from vmf_deploy.numerics.cli import compare

    report = compare(trained_export("executorch").artifact, None)
    assert all(row["sqnr_db_0"] > 60 for row in report["blocks"])
    assert report["artifacts"][0]["tapped_logits_db"] > 100


def test_a_latency_only_recipe_keeps_everything_but_the_limits(tmp_path: Path) -> None:
    from vmf_deploy.export.recipes import accept_any_parity

    for target in ("onnx", "executorch", "coreml"):
        default = load_recipe(get_target(target))
        relaxed = load_recipe(get_target(target), accept_any_parity(get_target(target), "int8", tmp_path))
        assert relaxed.options == default.options and relaxed.quantization == default.quantization
        assert relaxed.tolerance("fp32") == default.tolerance("fp32")
        assert relaxed.tolerance("int8").min_top1_agreement == 0.0 and relaxed.tolerance("int8").min_cosine == 0.0
