"""Run each depthwise ``Conv3d`` of an exported ONNX graph as one grouped 2D ``Conv`` on a free reshape.

onnxruntime's CPU provider runs a grouped 3D convolution as one im2col + GEMM per
channel, each GEMM with a single output row: VMF's depthwise 3×3×3 convs are its
slowest nodes (about a third of VMF-560M's time). Its 2D grouped convolution is
2–3× faster on the same work (measured: docs/rewrites.md). This rewrite moves
every depthwise 3D conv onto the 2D kernels without copying the feature map:

* the ``(B, C, T, H, W)`` input is reshaped (no data movement) to ``(B, C·T, H, W)``,
  so each channel's frames become ``T`` consecutive 2D channels;
* **temporal kernel > 1** (``kt×kh×kw``, any temporal stride and padding): one 2D conv
  with ``group = C``; group ``c`` maps its ``T`` input frames to ``T'`` output frames
  with a *banded* weight ``W2[c, t', t, i, j] = w[c, k, i, j]`` where
  ``t = t'·stride + k − pad`` (zero elsewhere; out-of-range taps are the zero padding);
* **temporal kernel 1** (the ``dw_conv="2d"`` knob) with temporal stride 1: a 2D
  depthwise conv with ``group = C·T`` and each channel's kernel repeated per frame;
* the output ``(B, C·T', H', W')`` is reshaped back to ``(B, C, T', H', W')``.

The banded form multiplies by zeros: ``T / kt`` times the depthwise conv's
multiply-adds (VMF-560M at 64 frames: T' = 8, 2.7×; 1G–5G: T' = 16, 5.3×), and it
still measured 2–3× faster at both. Above :data:`MAX_INFLATION` the node is left
alone. Results differ from the 3D conv only by fp32 summation order (the zero
taps add exact zeros).

This is an onnxruntime-CPU rewrite: it runs on the ONNX target only. ExecuTorch
gets its own 2D forms (``frames_to_batch``), CoreML keeps the native 3D conv.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import onnx_ir.passes.common as ir_passes
from onnxscript.rewriter import pattern
from onnxscript.rewriter._basics import MatchResult

from .base import Rewrite, RewriteResult

MAX_INFLATION = 6.0
"""Largest ``T / kt`` (zero multiply-adds per useful one, plus one) the banded form is used for."""


def _attr(node: ir.Node, name: str, default: list[int] | int | str) -> list[int] | int | str:
    """Attribute ``name`` of ``node`` as a Python value, or ``default``."""
    attr = node.attributes.get(name)
    return default if attr is None else attr.value if not isinstance(attr.value, tuple) else list(attr.value)


def depthwise_geometry(node: ir.Node) -> dict | None:
    """The geometry of a depthwise 5D ``Conv`` node, or None when the node is not one this rewrite handles.

    Returns ``{"shape": (B, C, T, H, W), "kt", "stride_t", "pad_t": (begin, end), "t_out", "weight", "bias"}``.
    """
    x, w = node.inputs[0], node.inputs[1]
    bias = node.inputs[2] if len(node.inputs) > 2 else None
    shape = None if x.shape is None else list(x.shape)
    if shape is None or len(shape) != 5 or not all(isinstance(d, int) for d in shape):
        return None
    if w.const_value is None or (bias is not None and bias.const_value is None):
        return None
    weight = w.const_value.numpy()
    b, c, t, h, wd = shape
    group = _attr(node, "group", 1)
    if weight.ndim != 5 or group != c or weight.shape[:2] != (c, 1) or _attr(node, "auto_pad", "NOTSET") != "NOTSET":
        return None
    dilations = _attr(node, "dilations", [1, 1, 1])
    strides = _attr(node, "strides", [1, 1, 1])
    pads = _attr(node, "pads", [0] * 6)
    kt = weight.shape[2]
    t_out = (t + pads[0] + pads[3] - dilations[0] * (kt - 1) - 1) // strides[0] + 1
    if dilations[0] != 1 or t_out <= 0:
        return None
    return {"shape": (b, c, t, h, wd), "kt": kt, "stride_t": strides[0], "pad_t": (pads[0], pads[3]), "t_out": t_out,
            "weight": weight, "bias": None if bias is None else bias.const_value.numpy(),
            "strides_hw": strides[1:], "pads_hw": [pads[1], pads[2], pads[4], pads[5]], "dilations_hw": dilations[1:]}


def banded_weight(weight: np.ndarray, frames: int, t_out: int, stride: int, pad_begin: int) -> np.ndarray:
    """The ``(C·T', T, kh, kw)`` grouped-2D weight of a depthwise ``(C, 1, kt, kh, kw)`` temporal kernel."""
    c, _, kt, kh, kw = weight.shape
    band = np.zeros((c, t_out, frames, kh, kw), dtype=weight.dtype)
    for to in range(t_out):
        for k in range(kt):
            ti = to * stride + k - pad_begin
            if 0 <= ti < frames:
                band[:, to, ti] = weight[:, 0, k]
    return band.reshape(c * t_out, frames, kh, kw)


def conv2d_form(geo: dict) -> tuple[np.ndarray, np.ndarray | None, int] | None:
    """``(weight, bias, group)`` of the equivalent 2D conv on ``(B, C·T, H, W)``, or None when not worth it."""
    _, c, t, _, _ = geo["shape"]
    weight, bias, kt = geo["weight"], geo["bias"], geo["kt"]
    if kt == 1 and geo["stride_t"] == 1 and geo["pad_t"] == (0, 0):  # spatial-only: plain depthwise per frame
        return (np.repeat(weight[:, :, 0], t, axis=0), None if bias is None else np.repeat(bias, t), c * t)
    if t / kt > MAX_INFLATION:
        return None
    band = banded_weight(weight, t, geo["t_out"], geo["stride_t"], geo["pad_t"][0])
    return band, None if bias is None else np.repeat(bias, geo["t_out"]), c


class DepthwiseConv3dAsConv2d(pattern.RewriteRuleClassBase):
    """``Conv`` (5D, depthwise) → ``Reshape`` → grouped 2D ``Conv`` → ``Reshape``."""

    def pattern(self, op, x):
        return op.Conv(x, _allow_other_inputs=True, _allow_other_attributes=True, _outputs=["conv_out"])

    def check(self, context, x, conv_out, **_) -> MatchResult:
        result = MatchResult()
        node = conv_out.producer()
        geo = depthwise_geometry(node)
        if geo is None:
            return result.fail("not a static-shape depthwise 5D Conv with constant weights")
        if conv_out.shape is None or not all(isinstance(d, int) for d in conv_out.shape):
            return result.fail("the conv output shape is not static")
        if conv2d_form(geo) is None:
            return result.fail(f"banded 2D form would do {geo['shape'][2] / geo['kt']:.1f}× the multiply-adds "
                               f"(limit {MAX_INFLATION})")
        return result

    def rewrite(self, op, x, conv_out, **_):
        node = conv_out.producer()
        geo = depthwise_geometry(node)
        weight, bias, group = conv2d_form(geo)
        b, c, t, h, w = geo["shape"]
        _, _, t_out, h_out, w_out = list(conv_out.shape)
        x4 = op.Reshape(x, op.Constant(value=ir.tensor(np.asarray([b, c * t, h, w], dtype=np.int64))))
        inputs = [x4, op.initializer(ir.tensor(weight), f"{node.inputs[1].name}_conv2d")]
        if bias is not None:
            inputs.append(op.initializer(ir.tensor(bias), f"{node.inputs[2].name}_conv2d"))
        y4 = op.Conv(*inputs, group=group, kernel_shape=list(weight.shape[2:]), pads=geo["pads_hw"],
                     strides=geo["strides_hw"], dilations=geo["dilations_hw"])
        return op.Reshape(y4, op.Constant(value=ir.tensor(np.asarray([b, c, t_out, h_out, w_out], dtype=np.int64))))


def depthwise_to_conv2d(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """Return ``model`` with every eligible depthwise 3D ``Conv`` as a grouped 2D ``Conv``, and the count."""
    ir_model = ir.serde.deserialize_model(model)
    count = pattern.RewriteRuleSet([DepthwiseConv3dAsConv2d.rule()]).apply_to_model(ir_model)
    if not count:
        return model, 0
    ir_passes.RemoveUnusedNodesPass()(ir_model)  # the replaced 3D weights
    ir_passes.LiftConstantsToInitializersPass(size_limit=0)(ir_model)  # the new shape constants
    ir_model.graph.sort()
    return ir.serde.serialize_model(ir_model), count


class OnnxDepthwiseConv2d(Rewrite):
    """ONNX-stage rewrite: depthwise 3D convs → grouped 2D convs on a reshaped view (onnxruntime's faster kernels)."""

    name = "onnx_depthwise_conv2d"
    stage = "onnx"
    targets = ("onnx",)

    def apply(self, obj: onnx.ModelProto) -> RewriteResult:
        """Rewrite the depthwise convs of ``obj`` (returns a new ModelProto)."""
        model, count = depthwise_to_conv2d(obj)
        return RewriteResult(model, count)
