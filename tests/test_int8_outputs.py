"""The recipe's ``fp32_outputs``: the nodes that compute a model's logits are never quantized (onnx, executorch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from vmf_deploy.export.recipes import load_recipe
from vmf_deploy.export.targets import INPUT_NAME, get_target
from vmf_deploy.parity import compare_logits
from vmf_deploy.quantize.onnx_qdq import OUTPUT_REASON, output_nodes, quantize_onnx
from vmf_deploy.quantize.pt2e_xnnpack import output_nodes as fx_output_nodes

SHAPE = (1, 3, 4, 8, 8)
CLASSES = 12
HIDDEN = 128  # the classifier weight (1 536 values) is large enough to be stored int8 (MIN_ELEMENTS)


def _classifier(path: Path) -> Path:
    """video → Conv3d → Relu → global mean → Gemm → Reshape → logits.

    The classifier's bias spreads the logits over about ±20 while the clips move them by a few
    tenths: 256 levels between the logits' min and max cannot hold those differences.
    """
    rng = np.random.default_rng(0)
    conv = rng.standard_normal((HIDDEN, 3, 1, 3, 3)).astype(np.float32) * 0.3
    weight = rng.standard_normal((CLASSES, HIDDEN)).astype(np.float32) * 0.5
    bias = np.linspace(-20, 20, CLASSES).astype(np.float32)
    nodes = [
        helper.make_node("Conv", [INPUT_NAME, "conv_w"], ["c"], name="conv", pads=[0, 1, 1, 0, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("ReduceMean", ["r", "axes"], ["pooled"], name="pool", keepdims=0),
        helper.make_node("Gemm", ["pooled", "fc_w", "fc_b"], ["fc"], name="classifier", transB=1),
        helper.make_node("Reshape", ["fc", "shape"], ["logits"], name="to_logits"),
    ]
    graph = helper.make_graph(
        nodes, "classifier", [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, list(SHAPE))],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, CLASSES])],
        [numpy_helper.from_array(conv, "conv_w"), numpy_helper.from_array(weight, "fc_w"),
         numpy_helper.from_array(bias, "fc_b"), numpy_helper.from_array(np.array([2, 3, 4], np.int64), "axes"),
         numpy_helper.from_array(np.array([1, CLASSES], np.int64), "shape")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    return path


def _clips(count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(SHAPE).astype(np.float32) for _ in range(count)]


def _logits(path: Path, clips: list[np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [session.run(None, {INPUT_NAME: clip})[0] for clip in clips]


def test_output_nodes_walk_back_through_reshapes_to_the_op_that_computes(tmp_path: Path) -> None:
    proto = onnx.load(str(_classifier(tmp_path / "fp32.onnx")))
    assert output_nodes(proto.graph) == ["to_logits", "classifier"]


@pytest.mark.parametrize("fp32_outputs", [True, False])
def test_onnx_logits_stay_fp32_and_keep_their_clip_to_clip_differences(tmp_path: Path, fp32_outputs: bool) -> None:
    fp32 = _classifier(tmp_path / "fp32.onnx")
    options = {**load_recipe(get_target("onnx")).quantization,
               "fp32_modules": [], "fp32_outputs": fp32_outputs}
    int8 = tmp_path / "int8.onnx"
    summary = quantize_onnx(fp32, int8, _clips(16, 0), options, {}, tmp_path)

    proto = onnx.load(str(int8))
    producer = next(node for node in proto.graph.node if "logits" in node.output)
    gemm_inputs = {node.output[0]: node for node in proto.graph.node if node.op_type == "DequantizeLinear"}
    gemm = next(node for node in proto.graph.node if node.op_type == "Gemm")
    clips = _clips(24, 1)
    report = compare_logits(_logits(fp32, clips), _logits(int8, clips))
    if fp32_outputs:
        assert summary["fp32_nodes"] == {OUTPUT_REASON: 2}
        assert producer.op_type == "Reshape" and producer.input[0] == gemm.output[0]
        assert gemm.input[1] in gemm_inputs  # the weight: int8 behind a DequantizeLinear (weight-only)
        assert summary["by_op"]["Gemm"] == {"int8": 0, "weight_only": 1, "fp32": 0}
        assert report.centered_sqnr_db > 16, report.centered_sqnr_db  # 19.0 dB here
    else:
        assert producer.op_type == "DequantizeLinear"  # u8 logits
        assert summary["by_op"]["Gemm"] == {"int8": 1, "weight_only": 0, "fp32": 0}
        assert report.centered_sqnr_db < 14, report.centered_sqnr_db  # 12.0 dB here


def test_executorch_output_nodes_walk_back_through_views() -> None:
    class Classifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)
            self.fc = torch.nn.Linear(4, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.conv(x).mean((2, 3))).reshape(1, 5)

    program = torch.export.export(Classifier(), (torch.randn(1, 3, 8, 8),))
    assert fx_output_nodes(program.graph) == ["reshape", "linear"]
    assert fx_output_nodes(program.module().graph) == ["reshape", "linear"]  # the names the quantizer sees
