"""Run each depthwise ``Conv3d`` of an exported ONNX graph as one grouped 2D ``Conv`` on a free reshape.

onnxruntime's CPU provider runs a grouped 3D convolution as one im2col + GEMM per
channel, each GEMM with a single output row: VMF's depthwise 3×3×3 convs are its
slowest nodes (about 30% of fused VMF-560M's time). Its grouped 2D convolution is
faster even fed a banded weight that multiplies by zeros (measured: docs/rewrites.md).
This rewrite moves every depthwise 3D conv onto the 2D kernels without copying the
feature map:

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
still measured faster at both. Above :data:`MAX_INFLATION` the node is left alone.
Results differ from the 3D conv only by fp32 summation order (the zero taps add
exact zeros).

The artifact keeps the compact ``(C, kt, kh·kw)`` weight: the banded weight is a
``MatMul`` of a 0/1 tap-selection matrix ``(T'·T, kt)`` with it, which onnxruntime
constant-folds once when the session is created (each entry is one weight times 1
plus zeros: exact). Storing the banded weight instead doubled VMF-5G's ``.onnx``
(52 → 106 MB).

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


def _ints(node: ir.Node, name: str, default: list[int]) -> list[int]:
    """The INTS attribute ``name`` of ``node``, or ``default``."""
    attr = node.attributes.get(name)
    return default if attr is None else list(attr.as_ints())


def depthwise_geometry(node: ir.Node) -> dict | None:
    """The geometry of a depthwise 5D ``Conv`` node, or None when the node is not one this rewrite handles.

    Returns ``{"shape": (B, C, T, H, W), "kt", "stride_t", "pad_t": (begin, end), "t_out", "weight", "bias",
    "strides_hw", "pads_hw", "dilations_hw"}`` (the last three in the 2D conv's attribute order).
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
    group = node.attributes.get_int("group", 1)
    if weight.ndim != 5 or group != c or weight.shape[:2] != (c, 1) or node.attributes.get_string(
            "auto_pad", "NOTSET") != "NOTSET":
        return None
    dilations = _ints(node, "dilations", [1, 1, 1])
    strides = _ints(node, "strides", [1, 1, 1])
    pads = _ints(node, "pads", [0] * 6)
    kt = weight.shape[2]
    t_out = (t + pads[0] + pads[3] - dilations[0] * (kt - 1) - 1) // strides[0] + 1
    if dilations[0] != 1 or t_out <= 0:
        return None
    return {"shape": (b, c, t, h, wd), "kt": kt, "stride_t": strides[0], "pad_t": (pads[0], pads[3]), "t_out": t_out,
            "weight": weight, "bias": None if bias is None else bias.const_value.numpy(),
            "strides_hw": strides[1:], "pads_hw": [pads[1], pads[2], pads[4], pads[5]], "dilations_hw": dilations[1:]}


def tap_selection(frames: int, t_out: int, kt: int, stride: int, pad_begin: int) -> np.ndarray:
    """``S[t'·T + t, k] = 1`` where output frame ``t'`` reads input frame ``t`` through temporal tap ``k``."""
    sel = np.zeros((t_out, frames, kt), dtype=np.float32)
    for to in range(t_out):
        for k in range(kt):
            ti = to * stride + k - pad_begin
            if 0 <= ti < frames:
                sel[to, ti, k] = 1.0
    return sel.reshape(t_out * frames, kt)


def banded_weight(weight: np.ndarray, frames: int, t_out: int, stride: int, pad_begin: int) -> np.ndarray:
    """The ``(C·T', T, kh, kw)`` grouped-2D weight of a depthwise ``(C, 1, kt, kh, kw)`` temporal kernel.

    The graph computes the same product (``tap_selection @ weight``) at load time; this is its numpy form.
    """
    c, _, kt, kh, kw = weight.shape
    sel = tap_selection(frames, t_out, kt, stride, pad_begin)
    return (sel @ weight.reshape(c, kt, kh * kw)).reshape(c * t_out, frames, kh, kw)


def spatial_only(geo: dict) -> bool:
    """True for a ``1×kh×kw`` kernel with temporal stride 1 and no temporal padding (a per-frame 2D conv)."""
    return geo["kt"] == 1 and geo["stride_t"] == 1 and geo["pad_t"] == (0, 0)


def conv2d_group(geo: dict) -> int | None:
    """The ``group`` of the equivalent 2D conv on ``(B, C·T, H, W)``, or None when the rewrite does not pay."""
    _, c, t, _, _ = geo["shape"]
    if spatial_only(geo):  # a depthwise 2D conv per frame
        return c * t
    return c if t / geo["kt"] <= MAX_INFLATION else None


def _int64(op, values: list[int]):  # noqa: ANN001, ANN202 - onnxscript builder types
    """An int64 constant (shapes for Reshape / Expand)."""
    return op.Constant(value=ir.tensor(np.asarray(values, dtype=np.int64)))


def conv2d_weight(op, geo: dict, name: str):  # noqa: ANN001, ANN201 - onnxscript builder types
    """The 2D conv's weight as graph nodes over the compact 3D weight (folded by onnxruntime at load)."""
    _, c, t, _, _ = geo["shape"]
    weight, kt = geo["weight"], geo["kt"]
    kh, kw = weight.shape[3:]
    if spatial_only(geo):  # each channel's kernel repeated per frame
        w = op.initializer(ir.tensor(weight.reshape(c, 1, 1, kh, kw)), f"{name}_depthwise")
        return op.Reshape(op.Expand(w, _int64(op, [c, t, 1, kh, kw])), _int64(op, [c * t, 1, kh, kw]))
    sel = op.initializer(ir.tensor(tap_selection(t, geo["t_out"], kt, geo["stride_t"], geo["pad_t"][0])),
                         f"{name}_taps")
    w = op.initializer(ir.tensor(weight.reshape(c, kt, kh * kw)), f"{name}_temporal")
    return op.Reshape(op.MatMul(sel, w), _int64(op, [c * geo["t_out"], t, kh, kw]))  # (C, T'·T, kh·kw) → 2D weight


def conv2d_bias(op, geo: dict, name: str):  # noqa: ANN001, ANN201 - onnxscript builder types
    """The 2D conv's bias: each channel's bias repeated for its output frames (None without a bias)."""
    if geo["bias"] is None:
        return None
    return op.initializer(ir.tensor(np.repeat(geo["bias"], geo["t_out"])), f"{name}_conv2d")


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
        if conv2d_group(geo) is None:
            return result.fail(f"banded 2D form would do {geo['shape'][2] / geo['kt']:.1f}× the multiply-adds "
                               f"(limit {MAX_INFLATION})")
        return result

    def rewrite(self, op, x, conv_out, **_):
        node = conv_out.producer()
        geo = depthwise_geometry(node)
        b, c, t, h, w = geo["shape"]
        _, _, t_out, h_out, w_out = list(conv_out.shape)
        weight = conv2d_weight(op, geo, node.inputs[1].name)
        bias = conv2d_bias(op, geo, node.inputs[2].name if geo["bias"] is not None else "")
        kh, kw = geo["weight"].shape[3:]
        y4 = op.Conv(op.Reshape(x, _int64(op, [b, c * t, h, w])), weight, *([bias] if bias is not None else []),
                     group=conv2d_group(geo), kernel_shape=[kh, kw], pads=geo["pads_hw"], strides=geo["strides_hw"],
                     dilations=geo["dilations_hw"])
        return op.Reshape(y4, _int64(op, [b, c, t_out, h_out, w_out]))


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
