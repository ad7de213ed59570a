"""The ONNX per-layer diff streams the clips and still gives ``qdq_loss_debug``'s SQNRs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from vmf_deploy.export.recipes import load_recipe
from vmf_deploy.export.targets import INPUT_NAME, get_target
from vmf_deploy.quantize.layer_diff import activation_errors, onnx_layer_diff, tensor_bytes
from vmf_deploy.quantize.onnx_qdq import ClipReader, quantize_onnx

SHAPE = (1, 3, 4, 8, 8)


def _conv_net(path: Path) -> Path:
    """video → Conv3d → Relu → Conv3d → global mean → Gemm: a small graph with several quantized tensors."""
    rng = np.random.default_rng(0)
    weights = {"w1": rng.standard_normal((16, 3, 1, 3, 3)).astype(np.float32) * 0.3,
               "w2": rng.standard_normal((16, 16, 1, 1, 1)).astype(np.float32) * 0.3,
               "fc_w": rng.standard_normal((5, 16)).astype(np.float32) * 0.5,
               "fc_b": np.zeros(5, np.float32), "axes": np.array([2, 3, 4], np.int64)}
    nodes = [
        helper.make_node("Conv", [INPUT_NAME, "w1"], ["c1"], name="conv1", pads=[0, 1, 1, 0, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2"),
        helper.make_node("ReduceMean", ["c2", "axes"], ["pooled"], name="pool", keepdims=0),
        helper.make_node("Gemm", ["pooled", "fc_w", "fc_b"], ["logits"], name="classifier", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "net", [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, list(SHAPE))],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 5])],
        [numpy_helper.from_array(v, k) for k, v in weights.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    return path


@pytest.fixture(scope="module")
def quantized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[np.ndarray]]:
    work = tmp_path_factory.mktemp("layer-diff")
    options = {**load_recipe(get_target("onnx")).quantization, "fp32_modules": [], "fp32_outputs": True}
    rng = np.random.default_rng(1)
    calibration = [rng.standard_normal(SHAPE).astype(np.float32) for _ in range(8)]
    quantize_onnx(_conv_net(work / "fp32.onnx"), work / "int8.onnx", calibration, options, {}, work)
    clips = [rng.standard_normal(SHAPE).astype(np.float32) * scale for scale in (0.5, 1.0, 3.0)]
    return work / "prepared.onnx", work / "int8.onnx", clips


def test_streamed_sqnrs_equal_qdq_loss_debug_over_all_clips(quantized, tmp_path: Path) -> None:
    from onnxruntime.quantization.qdq_loss_debug import (
        collect_activations,
        compute_activation_error,
        create_activation_matching,
        modify_model_output_intermediate_tensors,
    )

    prepared, qdq, clips = quantized
    float_aug, qdq_aug = tmp_path / "f.onnx", tmp_path / "q.onnx"
    modify_model_output_intermediate_tensors(str(prepared), str(float_aug))
    modify_model_output_intermediate_tensors(str(qdq), str(qdq_aug))
    expected = compute_activation_error(create_activation_matching(
        collect_activations(str(qdq_aug), ClipReader(clips)), collect_activations(str(float_aug), ClipReader(clips))))
    sizes = tensor_bytes(onnx.load(str(prepared)))
    assert sizes["c1"] == 4 * 16 * 4 * 8 * 8 and sizes[INPUT_NAME] == 4 * 3 * 4 * 8 * 8
    for budget in (1 << 30, 1):  # every tensor in one run; one tensor per run
        streamed = activation_errors(float_aug, qdq_aug, clips, sizes, budget)
        assert set(streamed) == set(expected) and len(streamed) >= 3
        for name, errors in expected.items():
            assert streamed[name].keys() == errors.keys(), name
            for key, value in errors.items():
                assert streamed[name][key] == pytest.approx(value, abs=1e-3), (name, key, budget)
    one_clip = activation_errors(float_aug, qdq_aug, clips[:1], sizes)  # the clips are pooled, not averaged
    assert any(abs(one_clip[n]["xmodel_err"] - streamed[n]["xmodel_err"]) > 0.1 for n in streamed)


def test_layer_rows_follow_the_graph_and_name_their_nodes(quantized, tmp_path: Path) -> None:
    prepared, qdq, clips = quantized
    rows = onnx_layer_diff(prepared, qdq, clips, set(), tmp_path)
    order = [node.name for node in onnx.load(str(prepared)).graph.node]
    named = [row.node for row in rows if row.node != "(graph input)"]
    assert named == sorted(named, key=order.index) and {"conv1", "relu1"} & set(named)
    assert all(np.isfinite(row.sqnr_db) and row.sqnr_db < 200 for row in rows)
    assert not list(tmp_path.glob("*-debug.onnx"))  # the augmented graphs are removed
