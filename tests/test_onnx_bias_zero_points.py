"""The int32 biases' all-zero zero points dropped from an int8 QDQ graph (quantize/onnx_bias_zero_points.py)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from vmf_deploy.export.targets import INPUT_NAME
from vmf_deploy.quantize.onnx_bias_zero_points import drop_bias_zero_points
from vmf_deploy.quantize.onnx_qdq import ClipReader


def _fp32_model(rng: np.random.Generator) -> onnx.ModelProto:
    """The clip (1, 8, 6, 6) → Conv (bias) → Relu → Flatten → Gemm (bias) → logits."""
    def init(name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.2, name)

    nodes = [helper.make_node("Conv", [INPUT_NAME, "w_conv", "b_conv"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Flatten", ["r"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "w_fc", "b_fc"], ["logits"], name="fc", transB=1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [1, 8, 6, 6])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
                              [init("w_conv", (16, 8, 3, 3)), init("b_conv", (16,)), init("w_fc", (10, 576)),
                               init("b_fc", (10,))])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _quantized(tmp_path: Path) -> onnx.ModelProto:
    """The model through onnxruntime's quantize_static, as the onnx recipe runs it (QDQ, u8s8, per channel)."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    rng = np.random.default_rng(0)
    onnx.save(_fp32_model(rng), tmp_path / "fp32.onnx")
    clips = [rng.standard_normal((1, 8, 6, 6)).astype(np.float32) for _ in range(8)]
    quantize_static(str(tmp_path / "fp32.onnx"), str(tmp_path / "int8.onnx"), ClipReader(clips),
                    quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return onnx.load(tmp_path / "int8.onnx")


def _zero_point_dtypes(model: onnx.ModelProto) -> list[int]:
    """The element type of every ``DequantizeLinear`` zero point that is an initializer."""
    inits = {i.name: i for i in model.graph.initializer}
    return sorted(inits[n.input[2]].data_type for n in model.graph.node
                  if n.op_type == "DequantizeLinear" and len(n.input) > 2 and n.input[2] in inits)


def _optimized(model: onnx.ModelProto, path: Path) -> tuple[ort.InferenceSession, Counter]:
    """A session of ``model`` and the op types of the graph onnxruntime optimized it into."""
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(path)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session, Counter(node.op_type for node in onnx.load(path).graph.node)


def test_bias_zero_points_are_dropped_and_onnxruntime_runs_the_same_int8_kernels(tmp_path: Path) -> None:
    quantized = _quantized(tmp_path)
    assert _zero_point_dtypes(quantized).count(TensorProto.INT32) == 2  # what quantize_static writes for the biases

    out, dropped = drop_bias_zero_points(quantized)
    onnx.checker.check_model(out, full_check=True)
    assert dropped == 2
    assert TensorProto.INT32 not in _zero_point_dtypes(out)
    assert TensorProto.INT8 in _zero_point_dtypes(out)  # the weights' zero points stay: onnxruntime fuses on them
    weight_bytes = lambda model: sum(i.ByteSize() for i in model.graph.initializer)  # noqa: E731
    assert weight_bytes(out) < weight_bytes(quantized)

    before, ops_before = _optimized(quantized, tmp_path / "before.onnx")
    after, ops_after = _optimized(out, tmp_path / "after.onnx")
    assert ops_after == ops_before and ops_before["QLinearConv"] == 1 and ops_before["QGemm"] == 1
    x = np.random.default_rng(1).standard_normal((1, 8, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(after.run(None, {INPUT_NAME: x})[0], before.run(None, {INPUT_NAME: x})[0])


def test_a_nonzero_or_absent_zero_point_is_left_alone(tmp_path: Path) -> None:
    quantized = _quantized(tmp_path)
    for init in quantized.graph.initializer:
        if init.data_type == TensorProto.INT32 and init.name.endswith("_zero_point"):
            values = numpy_helper.to_array(init).copy()
            values[0] = 3
            init.CopyFrom(numpy_helper.from_array(values, init.name))
    out, dropped = drop_bias_zero_points(quantized)
    assert dropped == 0 and out is quantized

    stripped, _ = drop_bias_zero_points(_quantized(tmp_path))
    again, dropped = drop_bias_zero_points(stripped)
    assert dropped == 0 and again is stripped
