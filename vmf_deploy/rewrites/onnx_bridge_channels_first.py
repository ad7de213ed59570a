"""Keep the feature map channels-first through the cross-attention bridges of an exported ONNX graph.

The feature map between VMF's convs is ``(B, C, T·H·W)``: channels-first. Both bridges,
as exported, and the fused ``Attention`` node alike, want it position-major
``(B, N, C)``, and onnxruntime's CPU provider copies the whole map into that layout: on
VMF-2G's first block the Mobile→Former key transpose alone took 6.2 ms of a 98 ms clip
(a strided copy with an inner dimension of 20 channels). Neither bridge needs it:

* **Mobile→Former** (6 tokens read the map): the exported chain
  ``softmax(q·X)·Xᵀ`` already reads ``X`` channels-first; onnxruntime fuses its
  ``Transpose(X) → MatMul`` into one ``FusedMatMul(transB=1)``, so no copy of the map is
  made. This rewrite leaves that chain as it is (it is the alternative to
  ``onnx_bridge_attention``, which would replace it by an ``Attention`` node fed a
  transposed copy of the map).
* **Former→Mobile** (every position reads the 6 tokens): the exported chain transposes the
  map into queries ``(B, h, N, c)`` and the result back to ``(B, h, c, N)``. The same
  attention, transposed: scores ``S = (scale·K)·X`` are ``(B, h, M, N)`` (one row per token),
  the softmax runs over the token axis, and the output ``(Vᵀ·E) / Z`` is ``(B, h, c, N)``,
  channels-first, where ``E = exp(S − max_M S)`` and ``Z = Σ_M E``. Only the token-side
  tensors (``M·C`` values) are transposed. The softmax is written as ReduceMax / Sub /
  Exp / ReduceSum with the division moved after the value MatMul: onnxruntime's
  ``Softmax`` on a non-last axis transposes internally (measured slower, 6.6 vs 1.3 ms at
  VMF-2G's 20 × 50176 map, ``benchmarks/fusion_speed.py --attention-ops``).

Results differ from the exported chain only by fp32 rounding (the scale is applied to the
keys instead of the scores, and the division by the softmax sum after the MatMul).
Measured whole-model effect (onnxruntime CPU, 64 frames, 2 threads, interleaved):
``benchmarks/NOTES.md``.

This is an onnxruntime-CPU layout: the recipe's ``[onnx] bridges = "channels-first"``
(the default) selects it; ``"attention"`` selects ``onnx_bridge_attention`` instead, for
runtimes with a fused attention kernel.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import onnx_ir.passes.common as ir_passes
from onnxscript.rewriter import pattern
from onnxscript.rewriter._basics import MatchResult

from .base import Rewrite, RewriteResult
from .onnx_bridge_attention import FormerToMobileAttention, default_opset

MIN_OPSET = 18
"""``ReduceMax`` takes its axes as an input from opset 18 on."""


class FormerToMobileChannelsFirst(FormerToMobileAttention):
    """The Former→Mobile chain (pattern and checks of :class:`FormerToMobileAttention`) in the map's own layout."""

    def check(self, context, feature, q_shape, key, value, scale, out_shape, **_) -> MatchResult:
        result = super().check(context, feature, q_shape, key, value, scale, out_shape)
        if result and default_opset(context.model) < MIN_OPSET:
            return MatchResult().fail(f"the graph's opset is below {MIN_OPSET}")
        return result

    def rewrite(self, op, feature, q_shape, key, value, scale, out_shape, **_):
        feats = op.Reshape(feature, q_shape)  # (B, h, c, N): a view of the map
        keys = op.Transpose(op.Mul(key, scale), perm=[0, 2, 1, 3])  # (B, M, h, c) → (B, h, M, c)
        scores = op.MatMul(keys, feats)  # (B, h, M, N)
        token_axis = op.Constant(value=ir.tensor(np.asarray([2], dtype=np.int64)))
        exps = op.Exp(op.Sub(scores, op.ReduceMax(scores, token_axis, keepdims=1)))
        total = op.ReduceSum(exps, token_axis, keepdims=1)  # (B, h, 1, N)
        values_t = op.Transpose(value, perm=[0, 2, 3, 1])  # (B, M, h, c) → (B, h, c, M)
        return op.Reshape(op.Div(op.MatMul(values_t, exps), total), out_shape)  # (B, h, c, N) → the map's shape


def bridges_channels_first(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """Return ``model`` with every Former→Mobile bridge in the channels-first form, and the count."""
    ir_model = ir.serde.deserialize_model(model)
    count = pattern.RewriteRuleSet([FormerToMobileChannelsFirst.rule()]).apply_to_model(ir_model)
    if not count:
        return model, 0
    ir_passes.RemoveUnusedNodesPass()(ir_model)  # the replaced chains' transposes and scale Muls
    ir_passes.LiftConstantsToInitializersPass(size_limit=0)(ir_model)
    ir_model.graph.sort()
    return ir.serde.serialize_model(ir_model), count


class OnnxBridgeChannelsFirst(Rewrite):
    """ONNX-stage rewrite: the bridges read and write the feature map channels-first (no copy of the map)."""

    name = "onnx_bridge_channels_first"
    stage = "onnx"
    targets = ("onnx",)

    def apply(self, obj: onnx.ModelProto) -> RewriteResult:
        """Rewrite the Former→Mobile bridges of ``obj`` (returns a new ModelProto)."""
        model, count = bridges_channels_first(obj)
        return RewriteResult(model, count)
