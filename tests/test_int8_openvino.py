"""OpenVINO int8 (NNCF) and fp16 IRs of the trained fixture: their gates pass, the int8 gate can refuse, and
vmf-bench reports the int8 IR's precision.

The exports run on the trained fixture (``conftest.trained_checkpoint``, 560m at 16 × 48²), as in
``tests/test_int8.py``: the seeded init barely looks at its input.
"""

from __future__ import annotations

import json
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
from vmf_deploy.runners import runner_class

pytestmark = pytest.mark.skipif(runner_class("openvino-cpu").availability() is not None,
                                reason="openvino is not installed (pip install 'vmf-deploy[openvino]')")


def _fp32_weight_bytes(manifest: dict) -> int:
    """What the model's parameters take in fp32 (the fp32 IR's ``.bin`` is about this)."""
    return 4 * int(manifest["model"]["params"])


@pytest.fixture(scope="module")
def openvino_int8(trained_export):
    """The trained fixture exported to an int8 IR, calibrated on 64 synthetic clips (once per session)."""
    return trained_export("openvino-int8")


def test_openvino_int8_passes_the_int8_gate(openvino_int8) -> None:
    manifest = json.loads(manifest_path(openvino_int8.artifact).read_text())
    assert manifest["artifact"]["precision"] == "int8" and openvino_int8.artifact.name == "560m-16f-int8.xml"
    assert manifest["artifact"]["size_bytes"] < 0.4 * _fp32_weight_bytes(manifest)  # 0.48 before the weight-only int8
    q = manifest["export"]["quantization"]
    assert q["calibration"]["source"] == "synthetic" and q["calibration"]["clips"] == 64
    assert len(q["calibration"]["sha256"]) == 64
    assert q["overflow_fix"] == "enable" and q["per_channel"] is True
    assert q["by_op"]["Convolution"]["fp32"] == 0 and q["by_op"]["GroupConvolution"]["fp32"] == 0
    assert q["by_op"]["MatMul"]["int8"] > 0
    # fp32_module_weights = "int8": the DyReLU's MLP computes in fp32 on int8 weights (nncf.compress_weights)
    assert q["fp32_module_weights"] == "int8" and q["by_op"]["MatMul"]["weight_only"] > 0
    import openvino as ov

    fp32_weights = [op for op in ov.Core().read_model(str(openvino_int8.artifact)).get_ordered_ops()
                    if op.get_type_name() == "Constant" and op.get_output_element_type(0).get_type_name() == "f32"
                    and op.get_byte_size() > 64 * 1024]
    assert fp32_weights == []  # every weight matrix is int8 (the largest, fp32, would be the classifier's)
    kept = q["fp32_nodes"]
    assert kept["op type Softmax"] == 17 and kept["attention MatMul"] > 0 and kept["inside FrameDyReLU"] > 0
    layers = q["layer_errors"]
    assert layers["method"].startswith("OpenVINO: each activation FakeQuantize")
    assert layers["tensors"] > 0 and all(row["module"] for row in layers["worst"])
    parity = manifest["parity"]
    assert parity["status"] == "passed" and parity["metrics"]["clips"] == 3 + 240
    assert parity["metrics"]["accuracy"] is not None
    assert "nncf" in manifest["export"]["versions"]
    assert sorted(p.name for p in openvino_int8.artifact.parent.iterdir()) == sorted(
        [openvino_int8.artifact.name, "560m-16f-int8.bin", openvino_int8.artifact.name + ".labels.txt",
         manifest_path(openvino_int8.artifact).name])


def test_vmf_bench_labels_the_int8_ir_int8(openvino_int8) -> None:
    # vmf-bench times checkpoint-free artifacts only (its parity reference is the seeded init); its row and
    # precision column come from these two functions, as for the ONNX int8 artifact (tests/test_int8.py)
    from vmf_deploy.bench.artifacts import artifact_precision
    from vmf_deploy.cli.bench import COLUMNS, table_row

    assert artifact_precision(openvino_int8.artifact) == "int8"
    row = {"backend": "openvino-cpu", "variant": "560m", "status": "ok", "flops": None, "clips_per_s": None,
           "latency_ms": None, "parity": None, "memory": None,
           "artifact": {"size_bytes": 1, "precision": artifact_precision(openvino_int8.artifact)}}
    assert table_row(row)[COLUMNS.index("precision")] == "int8"


def test_gate_refuses_an_int8_ir_calibrated_on_black_videos(trained_checkpoint: Path, tmp_path: Path) -> None:
    black = tmp_path / "black"
    black.mkdir()
    for i in range(4):
        write_video(black / f"v{i}.mp4", np.zeros((12, 64, 64, 3), np.uint8), 12.0, "mp4v")
    out = tmp_path / "out"
    with pytest.raises(ExportError) as info:
        export_model("560m", "openvino", out, checkpoint=trained_checkpoint, precision="int8", calibration=black)
    message = str(info.value)
    assert "parity gate refused 560m-16f-int8.xml" in message
    assert "Layers adding the most error (OpenVINO: each activation FakeQuantize" in message
    worst = [line for line in message.splitlines() if line.startswith("  ")]
    assert len(worst) == 5 and all(line.strip().startswith(("blocks.", "head", "stem", "input")) for line in worst)
    assert not out.exists()


def test_openvino_fp16_weights_pass_their_gate(trained_checkpoint: Path, tmp_path: Path) -> None:
    import openvino as ov

    result = export_model("560m", "openvino", tmp_path, checkpoint=trained_checkpoint, precision="fp16")
    manifest = result.manifest
    assert result.artifact.name == "560m-16f-fp16.xml" and manifest["artifact"]["precision"] == "fp16"
    assert manifest["parity"]["status"] == "passed" and manifest["parity"]["tolerance"]["min_centered_sqnr_db"] == 40.0
    assert manifest["artifact"]["size_bytes"] < 0.6 * _fp32_weight_bytes(manifest)  # 0.56 (the .xml is not halved)
    weights = [op for op in ov.Core().read_model(str(result.artifact)).get_ordered_ops()
               if op.get_type_name() == "Constant" and op.get_output_element_type(0).get_type_name() == "f16"]
    assert weights

    from vmf_deploy.numerics.cli import compare

    report = compare(result.artifact, None)  # the fp16 IR block by block
    assert [row["block"] for row in report["blocks"]] == ["stem"] + [f"blocks.{i}" for i in range(8)] + ["logits"]
    assert report["artifacts"][0]["precision"] == "fp16"
    assert all(45 < row["sqnr_db_0"] < 100 for row in report["blocks"])  # fp16 weights: found, and not fp32


def test_numerics_aligns_the_int8_ir_blocks_with_pytorch(openvino_int8) -> None:
    from vmf_deploy.numerics.cli import compare

    report = compare(openvino_int8.artifact, None)
    assert [row["block"] for row in report["blocks"]] == ["stem"] + [f"blocks.{i}" for i in range(8)] + ["logits"]
    assert report["artifacts"][0]["precision"] == "int8"
    assert all(5 < row["sqnr_db_0"] < 60 for row in report["blocks"])  # int8 noise, block by block
    assert report["blocks"][1]["sqnr_db_0"] > report["blocks"][-2]["sqnr_db_0"]  # it accumulates


def test_openvino_quantization_table_is_validated(tmp_path: Path) -> None:
    assert_edits_refused("openvino", [
        ('overflow_fix = "enable"', 'overflow_fix = "on"', r"\[quantization\].overflow_fix"),
        ('preset = "mixed"', 'preset = "fast"', "preset"),
        ('fast_bias_correction = true', '', "lacks"),
        ('fp32_module_weights = "int8"', 'fp32_module_weights = "int4"', "fp32_module_weights")], tmp_path)
    recipe = load_recipe(get_target("openvino"))
    assert recipe.tolerance("int8").min_centered_sqnr_db > 0 and recipe.tolerance("fp16").min_top1_agreement == 1.0
    with pytest.raises(ExportError, match="pass --calibration synthetic"):
        export_model("560m", "openvino", tmp_path / "x", frames=8, precision="int8")
