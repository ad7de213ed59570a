"""Drop the all-zero zero points of the int32 biases in an int8 QDQ graph.

onnxruntime's ``quantize_static`` stores each quantized bias as an int32 initializer read through a
``DequantizeLinear`` whose third input, the zero point, is an int32 initializer of zeros: one per
output channel. That input is optional in ONNX (absent means 0), so the zeros carry nothing. In the
int8 VMF-560M they were 0.063 MB of a 4.67 MB ``.onnx`` (docs/int8.md, where an int8 artifact's
bytes go).

Only the biases' zero points are dropped. The int8 weights' zero points are all zeros too, but
onnxruntime fuses a ``DequantizeLinear`` → ``Gemm`` group into ``QGemm`` only when the weight's zero
point is present: without them the optimized graph of the int8 560m kept none of its 74 ``QGemm``
(onnxruntime 1.32, 2026-12-07). Without the biases' zero points onnxruntime builds the same optimized
graph and returns the same logits to the bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def has_all_zero_bias_zero_point(node: Any) -> bool:
    """True when ``node`` (an ``onnx_ir`` node) dequantizes a constant int32 tensor with an all-zero zero point."""
    if node.op_type != "DequantizeLinear" or node.domain != "" or len(node.inputs) < 3:
        return False
    x, zero_point = node.inputs[0], node.inputs[2]
    if x is None or zero_point is None or x.const_value is None or zero_point.const_value is None:
        return False
    points = zero_point.const_value.numpy()
    return x.const_value.dtype.name == "INT32" and points.dtype == np.int32 and not points.any()


def drop_bias_zero_points(proto: Any) -> tuple[Any, int]:
    """Return ``proto`` (an ``onnx.ModelProto``) without the all-zero zero points of its int32 biases'
    ``DequantizeLinear`` nodes, and how many nodes lost theirs. Initializers left unread are removed."""
    import onnx_ir as ir

    model = ir.serde.deserialize_model(proto)
    graph = model.graph
    dropped = 0
    for node in graph:
        if has_all_zero_bias_zero_point(node):
            zero_point = node.inputs[2]
            node.resize_inputs(2)
            if not zero_point.uses() and zero_point.is_initializer():
                graph.initializers.pop(zero_point.name)
            dropped += 1
    if not dropped:
        return proto, 0
    return ir.serde.serialize_model(model), dropped
