"""Weight-only int8 for the MatMul and Gemm nodes an int8 ONNX graph keeps in fp32.

The recipe keeps some modules' nodes fp32 (the frame-level DyReLU: its coefficient MLP's hidden
ReLU loses most of its SQNR with 8-bit activations). Their activations must stay fp32, but their
weights need not: this pass stores the constant 2D weight of each such node as symmetric int8
with one scale per output channel, read through a ``DequantizeLinear`` — the weight-only form
of ONNX's QDQ convention. onnxruntime computes the product in fp32 on the dequantized weight,
so only the weight's rounding (8 bits, not the 7 of ``reduce_range``: no int8 kernel reads it)
enters the result. In VMF-560M's int8 graph (64 × 172²) those weights were 3.6 of 8.2 MB.

A weight is converted only if every node that reads it is one of the given nodes and reads it
with the same output-channel axis, so a tensor shared with a node outside the set stays fp32.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np

WEIGHT_OPS = ("MatMul", "Gemm")
"""The node types whose constant 2D weight is converted."""
MIN_ELEMENTS = 1024
"""Smaller weights stay fp32: under 3 KB saved each, against one more node to run."""


def int8_per_channel(weight: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 of ``weight`` with one scale per index of ``axis``: ``(values, scales)``.

    ``weight ≈ values * scales`` broadcast along ``axis``; an all-zero channel gets scale 1.
    """
    reduce_axes = tuple(i for i in range(weight.ndim) if i != axis)
    peak = np.abs(weight).max(axis=reduce_axes)
    scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    shape = [1] * weight.ndim
    shape[axis] = -1
    values = np.clip(np.rint(weight / scales.reshape(shape)), -127, 127).astype(np.int8)
    return values, scales


def output_axis(node: Any, index: int) -> int | None:
    """The output-channel axis of input ``index`` of a ``MatMul`` / ``Gemm`` node read as a 2D weight, or None.

    ``MatMul``: the first axis of a left operand (``W · x``, the channels-first DyReLU form), the
    last of a right one (``x · W``). ``Gemm``: only ``B`` is a weight; its first axis with ``transB``.
    """
    if node.op_type == "MatMul":
        return 0 if index == 0 else 1
    if index != 1:
        return None
    trans_b = node.attributes.get("transB")
    return 0 if trans_b is not None and trans_b.as_int() else 1


def quantize_kept_weights(proto: Any, nodes: Collection[str]) -> tuple[Any, int]:
    """Return ``proto`` (an ``onnx.ModelProto``) with the fp32 2D weights of the ``MatMul`` / ``Gemm`` nodes
    named in ``nodes`` stored as per-output-channel int8 behind a ``DequantizeLinear``, and how many were
    converted (see :func:`output_axis` for the channel axis)."""
    import onnx_ir as ir

    model = ir.serde.deserialize_model(proto)
    graph = model.graph
    wanted = set(nodes)
    converted = 0
    for node in list(graph):
        if node.op_type not in WEIGHT_OPS or node.domain != "" or node.name not in wanted:
            continue
        for index, value in enumerate(node.inputs[:2]):
            axis = output_axis(node, index)
            if axis is None or value is None or value.const_value is None or not value.is_initializer():
                continue
            uses = value.uses()
            if any(user.name not in wanted or user.op_type not in WEIGHT_OPS or output_axis(user, i) != axis
                   for user, i in uses):
                continue
            weight = value.const_value.numpy()
            if weight.dtype != np.float32 or weight.ndim != 2 or weight.size < MIN_ELEMENTS:
                continue
            values, scales = int8_per_channel(weight, axis)
            q = ir.Value(name=f"{value.name}_int8", const_value=ir.tensor(values, name=f"{value.name}_int8"))
            s = ir.Value(name=f"{value.name}_scale", const_value=ir.tensor(scales, name=f"{value.name}_scale"))
            graph.register_initializer(q)
            graph.register_initializer(s)
            dequantize = ir.node("DequantizeLinear", [q, s], attributes={"axis": axis},
                                 name=f"{value.name}_DequantizeLinear_weight_only")
            dequantize.outputs[0].name = f"{value.name}_dequantized"
            dequantize.outputs[0].shape = ir.Shape(weight.shape)
            dequantize.outputs[0].type = ir.TensorType(ir.DataType.FLOAT)
            graph.insert_before(node, dequantize)
            value.replace_all_uses_with(dequantize.outputs[0])
            graph.initializers.pop(value.name)
            converted += 1
    if not converted:
        return proto, 0
    graph.sort()
    return ir.serde.serialize_model(model), converted
