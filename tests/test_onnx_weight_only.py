"""Weight-only int8 of the MatMul / Gemm weights an int8 ONNX graph keeps in fp32 (quantize/onnx_weight_only.py)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from vmf_deploy.quantize.onnx_qdq import compute_precision
from vmf_deploy.quantize.onnx_weight_only import MIN_ELEMENTS, int8_per_channel, quantize_kept_weights


def test_int8_per_channel_rounds_each_channel_within_half_a_step() -> None:
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((6, 40)).astype(np.float32) * np.arange(1, 7, dtype=np.float32)[:, None]
    weight[2] = 0.0
    for axis in (0, 1):
        values, scales = int8_per_channel(weight, axis)
        assert values.dtype == np.int8 and scales.shape == (weight.shape[axis],)
        assert np.abs(values).max() <= 127
        shape = (-1, 1) if axis == 0 else (1, -1)
        error = np.abs(values * scales.reshape(shape) - weight)
        assert np.all(error <= scales.reshape(shape) / 2 + 1e-7)
    assert int8_per_channel(weight, 0)[1][2] == 1.0  # an all-zero channel keeps a valid scale


def _graph(rng: np.random.Generator) -> onnx.ModelProto:
    """x (4, 64) → Gemm(transB) → MatMul(x·W) → MatMul(W·xᵀ) → out; plus a MatMul sharing W_left outside the set."""
    def init(name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.1, name)

    nodes = [
        helper.make_node("Gemm", ["x", "w_gemm", "b_gemm"], ["g"], name="gemm", transB=1),  # w (out, in)
        helper.make_node("MatMul", ["g", "w_right"], ["r"], name="right"),  # x · W
        helper.make_node("Transpose", ["r"], ["rt"], name="t", perm=[1, 0]),
        helper.make_node("MatMul", ["w_left", "rt"], ["out"], name="left"),  # W · x
        helper.make_node("MatMul", ["w_left", "rt"], ["shared"], name="outside"),
        helper.make_node("MatMul", ["g", "w_small"], ["small"], name="small"),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 64])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape)
         for n, shape in (("out", [48, 4]), ("shared", [48, 4]), ("small", [4, 4]))],
        [init("w_gemm", (96, 64)), init("b_gemm", (96,)), init("w_right", (96, 80)), init("w_left", (48, 80)),
         init("w_small", (96, 4))])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_kept_weights_become_int8_behind_a_dequantize_and_compute_the_same() -> None:
    rng = np.random.default_rng(0)
    model = _graph(rng)
    assert 96 * 4 < MIN_ELEMENTS <= 48 * 80
    out, count = quantize_kept_weights(model, ["gemm", "right", "left", "small"])
    onnx.checker.check_model(out, full_check=True)
    inits = {i.name: numpy_helper.to_array(i) for i in out.graph.initializer}
    assert count == 2  # w_gemm and w_right
    assert inits["w_gemm_int8"].dtype == np.int8 and inits["w_gemm_scale"].shape == (96,)  # transB: rows
    assert inits["w_right_int8"].dtype == np.int8 and inits["w_right_scale"].shape == (80,)  # x · W: columns
    assert "w_left" in inits and inits["w_left"].dtype == np.float32  # also read by a node outside the set
    assert inits["w_small"].dtype == np.float32  # below MIN_ELEMENTS
    assert "w_gemm" not in inits and "w_right" not in inits

    x = rng.standard_normal((4, 64)).astype(np.float32)
    run = lambda m: ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(  # noqa: E731
        None, {"x": x})
    for want, got in zip(run(model), run(out), strict=True):
        rel = np.linalg.norm(got - want) / np.linalg.norm(want)
        assert 0 < rel < 2e-2, rel  # rounded (≈ 0.7 % rms per 8-bit layer), not unchanged

    only_left, count = quantize_kept_weights(model, ["left", "outside"])
    assert count == 1 and {i.name for i in only_left.graph.initializer} >= {"w_left_int8", "w_left_scale"}
    scales = numpy_helper.to_array(next(i for i in only_left.graph.initializer if i.name == "w_left_scale"))
    assert scales.shape == (48,)  # W · x: the output channels are W's rows


def test_nothing_to_convert_returns_the_model_unchanged() -> None:
    model = _graph(np.random.default_rng(1))
    out, count = quantize_kept_weights(model, ["t", "no-such-node"])
    assert count == 0 and out is model


@pytest.mark.parametrize("weight_only", [False, True])
def test_compute_precision_tells_weight_only_from_int8(weight_only: bool) -> None:
    model = _graph(np.random.default_rng(2))
    if weight_only:
        model, _ = quantize_kept_weights(model, ["gemm", "right"])
    summary = compute_precision(model)
    expected = {"int8": 0, "weight_only": 2, "fp32": 3} if weight_only else {"int8": 0, "weight_only": 0, "fp32": 5}
    assert summary["compute_nodes"] == expected
    assert summary["by_op"]["Gemm"] == ({"int8": 0, "weight_only": 1, "fp32": 0} if weight_only
                                        else {"int8": 0, "weight_only": 0, "fp32": 1})
