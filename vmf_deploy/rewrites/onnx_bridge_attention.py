"""Fuse each cross-attention bridge of an exported ONNX graph into one ``Attention`` node.

The exporter writes every bridge as a reshape/transpose/MatMul/Mul/Softmax/MatMul
chain. Two onnxscript pattern rules find them and replace each by the standard
ONNX ``Attention`` op (opset 23) with 3D inputs ``(B, S, hidden)``,
``q_num_heads = kv_num_heads = heads`` and the bridge's own ``scale``:

* **Mobile→Former** (queries: projected tokens ``(B, h, M, c)``; keys = values: the
  flattened feature map, reshaped ``(B, h, c, N)``): the feature map is transposed
  once to ``(B, N, C)`` and feeds both key and value.
* **Former→Mobile** (queries: the feature map; keys/values: projected tokens): the
  feature map is transposed to ``(B, N, C)``, the output back to ``(B, C, N)``.

Why the standard ``Attention`` and not ``com.microsoft.MultiHeadAttention``: measured on
onnxruntime 1.32 CPU, 2 threads, at VMF-560M's first-stage sizes (see docs/rewrites.md),
``MultiHeadAttention`` converts 3D query/key/value to its BNSH layout with extra copies
and was 1.4× (Former→Mobile) to 17× (Mobile→Former, 3D key) slower than ``Attention``.

A model whose default-domain opset is below 23 is converted to opset 23 first
(onnxscript's version converter) when at least one bridge matches.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnx_ir as ir
import onnx_ir.passes.common as ir_passes
from onnxscript import version_converter
from onnxscript.rewriter import pattern
from onnxscript.rewriter._basics import MatchResult

from .base import Rewrite, RewriteResult

ATTENTION_OPSET = 23


def _static_shape(value: ir.Value | None) -> list[int] | None:
    """The fully static shape of ``value``, or None."""
    if value is None or value.shape is None or not all(isinstance(d, int) for d in value.shape):
        return None
    return list(value.shape)


def _scalar(value: ir.Value | None) -> float | None:
    """The value of a constant scalar (or one-element tensor), or None."""
    if value is None or value.const_value is None:
        return None
    arr = value.const_value.numpy()
    return float(arr.reshape(-1)[0]) if arr.size == 1 else None


def _shape_constant(op: Any, dims: list[int]) -> ir.Value:
    """An int64 shape constant for a Reshape."""
    return op.Constant(value=ir.tensor(np.asarray(dims, dtype=np.int64)))


class MobileToFormerAttention(pattern.RewriteRuleClassBase):
    """Tokens (queries) read the feature map (keys = values, no projection)."""

    def pattern(self, op, query, feature, kv_shape, scale, out_shape):
        kv = op.Reshape(feature, kv_shape, _allow_other_attributes=True)  # (B, h, c, N)
        scores = op.Mul(op.MatMul(query, kv), scale)  # (B, h, M, N)
        probs = op.Softmax(scores, axis=-1)
        out = op.MatMul(probs, op.Transpose(kv, perm=[0, 1, 3, 2]))  # (B, h, M, c)
        out = op.Transpose(out, perm=[0, 2, 1, 3])
        return op.Reshape(out, out_shape, _allow_other_attributes=True)  # (B, M, C)

    def check(self, context, query, feature, kv_shape, scale, out_shape, **_) -> MatchResult:
        result = MatchResult()
        q, kv = _static_shape(query), kv_shape.const_value
        if q is None or len(q) != 4 or kv is None:
            return result.fail("query shape or key/value shape is not static 4D")
        b, h, m, c = q
        kvs = kv.numpy().tolist()
        if len(kvs) != 4 or kvs[:3] != [b, h, c] or kvs[3] <= 0:
            return result.fail(f"key/value shape {kvs} does not match query {q}")
        if _scalar(scale) is None:
            return result.fail("scale is not a constant scalar")
        out = out_shape.const_value
        if out is None or out.numpy().tolist() != [b, m, h * c]:
            return result.fail("output is not reshaped to (B, M, C)")
        return result

    def rewrite(self, op, query, feature, kv_shape, scale, out_shape, **_):
        b, h, m, c = _static_shape(query)
        n = int(kv_shape.const_value.numpy()[3])
        q3 = op.Reshape(op.Transpose(query, perm=[0, 2, 1, 3]), _shape_constant(op, [b, m, h * c]))
        kv3 = op.Transpose(op.Reshape(feature, _shape_constant(op, [b, h * c, n])), perm=[0, 2, 1])
        return op.Attention(q3, kv3, kv3, q_num_heads=h, kv_num_heads=h, scale=_scalar(scale))


class FormerToMobileAttention(pattern.RewriteRuleClassBase):
    """The feature map (queries, no projection) reads the projected tokens (keys, values)."""

    def pattern(self, op, feature, q_shape, key, value, scale, out_shape):
        q = op.Transpose(op.Reshape(feature, q_shape, _allow_other_attributes=True), perm=[0, 1, 3, 2])  # (B,h,N,c)
        k_t = op.Transpose(key, perm=[0, 2, 3, 1])  # key (B, M, h, c) → (B, h, c, M)
        v = op.Transpose(value, perm=[0, 2, 1, 3])  # value (B, M, h, c) → (B, h, M, c)
        probs = op.Softmax(op.Mul(op.MatMul(q, k_t), scale), axis=-1)  # (B, h, N, M)
        out = op.Transpose(op.MatMul(probs, v), perm=[0, 1, 3, 2])  # (B, h, c, N)
        return op.Reshape(out, out_shape, _allow_other_attributes=True)

    def check(self, context, feature, q_shape, key, value, scale, out_shape, **_) -> MatchResult:
        result = MatchResult()
        k, v, qs = _static_shape(key), _static_shape(value), q_shape.const_value
        if k is None or v is None or qs is None or len(k) != 4 or k != v:
            return result.fail("key/value shapes are not static, equal and 4D")
        b, m, h, c = k
        qdims = qs.numpy().tolist()
        if len(qdims) != 4 or qdims[:3] != [b, h, c] or qdims[3] <= 0:
            return result.fail(f"query shape {qdims} does not match key {k}")
        if _scalar(scale) is None:
            return result.fail("scale is not a constant scalar")
        if out_shape.const_value is None:
            return result.fail("output shape is not constant")
        return result

    def rewrite(self, op, feature, q_shape, key, value, scale, out_shape, **_):
        b, m, h, c = _static_shape(key)
        n = int(q_shape.const_value.numpy()[3])
        q3 = op.Transpose(op.Reshape(feature, _shape_constant(op, [b, h * c, n])), perm=[0, 2, 1])  # (B, N, C)
        tokens_shape = _shape_constant(op, [b, m, h * c])
        out = op.Attention(q3, op.Reshape(key, tokens_shape), op.Reshape(value, tokens_shape),
                           q_num_heads=h, kv_num_heads=h, scale=_scalar(scale))  # (B, N, C)
        return op.Reshape(op.Transpose(out, perm=[0, 2, 1]), out_shape)


def bridge_rules() -> pattern.RewriteRuleSet:
    """The two bridge rules as one rule set."""
    return pattern.RewriteRuleSet([MobileToFormerAttention.rule(), FormerToMobileAttention.rule()])


def default_opset(model: ir.Model) -> int:
    """The model's default-domain opset version."""
    return int(model.opset_imports.get("", 1))


def fuse_bridges(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """Return ``model`` with every bridge fused into one ``Attention`` node, and the count."""
    ir_model = ir.serde.deserialize_model(model)
    count = bridge_rules().apply_to_model(ir_model)
    if not count:
        return model, 0
    if default_opset(ir_model) < ATTENTION_OPSET:
        # Convert the untouched graph first, then fuse, so the converter never sees Attention.
        ir_model = ir.serde.deserialize_model(model)
        try:
            version_converter.convert_version(ir_model, ATTENTION_OPSET, fallback=False)
        except Exception as e:  # the converter raises its own error types per op adapter
            raise ValueError(f"onnx_bridge_attention needs opset {ATTENTION_OPSET} for the Attention op, and "
                             f"converting the graph from opset {default_opset(ir_model)} failed ({e}); export "
                             f"with [onnx].opset = {ATTENTION_OPSET} in the recipe, or use --no-fuse") from None
        count = bridge_rules().apply_to_model(ir_model)
    ir_passes.RemoveUnusedNodesPass()(ir_model)  # the replaced chains' shape constants and scales
    ir_passes.LiftConstantsToInitializersPass(size_limit=0)(ir_model)  # new shape constants as initializers
    ir_model.graph.sort()
    return ir.serde.serialize_model(ir_model), count


class OnnxBridgeAttention(Rewrite):
    """ONNX-stage rewrite: every Mobile→Former / Former→Mobile bridge → one ``Attention`` node."""

    name = "onnx_bridge_attention"
    stage = "onnx"
    targets = ("onnx",)

    def apply(self, obj: onnx.ModelProto) -> RewriteResult:
        """Fuse the bridges of ``obj`` (returns a new ModelProto)."""
        model, count = fuse_bridges(obj)
        return RewriteResult(model, count)
