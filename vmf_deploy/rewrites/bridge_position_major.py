"""Bridges that read the feature map position-major, ``(B, N, C)`` (module stage, OpenVINO).

OpenVINO's CPU plugin keeps a convolution's output channels-last (``acdeb``: N, T, H, W, C in
memory). The bridges as written read the map channels-first through a ``(B, h, c, N)`` reshape,
so the plugin copies every map a bridge reads back to planar layout: on VMF-2G at 64 frames
those ``Reorder`` nodes took 29 of 131 ms, 12.6 ms of it the stem output alone
(``PERF_COUNT``, docs/openvino.md). Read as ``x.permute(0, 2, 3, 4, 1).reshape(B, N, C)``,
the map is already in the layout the plugin holds, and the copy disappears.

The heads then cannot be split off the channel axis without a copy, so the token-side
operands are made block-diagonal instead: the queries (Mobile→Former) or keys and values
(Former→Mobile) become ``(B, h·M, C)`` with head ``j``'s row holding its ``C/h`` channels
and zeros elsewhere. Every product of a zero adds an exact zero, so each score is the
same sum as the per-head one; only the summation order differs (fp32 rounding).

* **Mobile→Former**: scores ``S = X · Qᵀ`` ``(B, N, h·M)``, softmax over the positions
  (axis 1), ``Sᵀ · X`` ``(B, h·M, C)``, and each token's head block taken back with the mask
  (a sum over the ``h`` row groups). ``X`` is never transposed; the ``(N, h·M)`` scores are.
* **Former→Mobile**: ``S = X · Kᵀ`` ``(B, N, h·M)``, softmax within each head's ``M`` tokens,
  ``S · V`` ``(B, N, C)``: position-major throughout, permuted back to ``(B, C, T, H, W)``
  for the residual add (the plugin's layout again).

A Mobile→Former over fewer than :data:`MIN_POSITIONS` positions keeps the original arithmetic
(decided on the traced, static shape): there the softmax over the position axis and the
transposed scores cost more than the small map's reorder. Measured on VMF-560M at 64 frames,
whose largest map is 59 k positions, all bridges position-major ran 1.05–1.08× slower than the
stock IR and with this threshold 0.98×; only the stem-resolution maps of 1G–5G (200 k) pass it.
Per-frame-token bridges (``tokens_per_frame``) keep their own form. This is an OpenVINO
rewrite: onnxruntime runs the channels-first graph without copies
(``onnx_bridge_channels_first``), and the doubled multiply-adds of the block-diagonal
operands only pay where the copies they save are real.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from vmf_deploy.models.layers import FormerToMobile, MobileToFormer

from .base import Rewrite, RewriteResult, reclass_modules


def head_mask(channels: int, heads: int, dtype: torch.dtype) -> torch.Tensor:
    """``(heads, 1, channels)``: 1 where the channel belongs to the head, else 0."""
    per_head = channels // heads
    return (torch.arange(channels) // per_head == torch.arange(heads)[:, None]).to(dtype).unsqueeze(1)


def block_diagonal(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Token projections ``(B, M, C)`` → ``(B, h·M, C)``, head ``j``'s rows zero outside its channels."""
    b, m, c = tokens.shape
    return (tokens.unsqueeze(1) * mask).reshape(b, mask.shape[0] * m, c)


def position_major(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, T, H, W)`` → ``(B, T·H·W, C)``."""
    b, c = x.shape[:2]
    return x.permute(0, 2, 3, 4, 1).reshape(b, -1, c)


MIN_POSITIONS = 100_000
"""Mobile→Former reads a map position-major only from this many positions ``T·H·W`` on (a static shape)."""


class MobileToFormerPositionMajor(MobileToFormer):
    """:class:`MobileToFormer` reading the map as ``(B, N, C)`` with block-diagonal queries."""

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Return the updated tokens ``(B, M, d)`` (the parent's form for per-frame tokens and small maps)."""
        if self.per_frame or x.shape[2:].numel() < MIN_POSITIONS:
            return super().forward(x, tokens)
        feats = position_major(x)
        b, _, c = feats.shape
        m = tokens.shape[1]
        mask = head_mask(c, self.heads, x.dtype)
        q = block_diagonal(self.to_q(tokens), mask)  # (B, h·M, C)
        attn = torch.softmax(torch.matmul(feats, q.transpose(1, 2)) * self.scale, dim=1)  # (B, N, h·M)
        out = torch.matmul(attn.transpose(1, 2), feats).reshape(b, self.heads, m, c)
        out = (out * mask).sum(dim=1)  # (B, M, C): each channel from its own head's row
        out = out * (2.0 * F.hardsigmoid(self.gate(tokens)))
        return self.norm(tokens + self.proj(out))


class FormerToMobilePositionMajor(FormerToMobile):
    """:class:`FormerToMobile` computed as ``(B, N, C)`` with block-diagonal keys and values."""

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Return the feature map plus what it read from the tokens (the parent's form for per-frame tokens)."""
        if self.per_frame:
            return super().forward(x, tokens)
        b, c, t, h, w = x.shape
        m = tokens.shape[1]
        mask = head_mask(c, self.heads, x.dtype)
        k = block_diagonal(self.to_k(tokens), mask)  # (B, h·M, C)
        v = block_diagonal(self.to_v(tokens), mask)
        scores = torch.matmul(position_major(x), k.transpose(1, 2)) * self.scale  # (B, N, h·M)
        attn = torch.softmax(scores.reshape(b, -1, self.heads, m), dim=-1).reshape(b, -1, self.heads * m)
        out = torch.matmul(attn, v)  # (B, N, C)
        return x + out.reshape(b, t, h, w, c).permute(0, 4, 1, 2, 3)


POSITION_MAJOR_FORMS = {MobileToFormer: MobileToFormerPositionMajor, FormerToMobile: FormerToMobilePositionMajor}


def bridges_position_major(model: nn.Module) -> int:
    """Re-class every clip-token bridge of ``model`` (in place) to its position-major form; return the count.

    The count includes Mobile→Former bridges that will meet maps below :data:`MIN_POSITIONS` and
    keep the original arithmetic (the shape is known only when the model is traced).
    """
    return reclass_modules(model, POSITION_MAJOR_FORMS, when=lambda bridge: not bridge.per_frame)


class BridgePositionMajor(Rewrite):
    """Module-stage rewrite: the bridges read the map in OpenVINO's channels-last layout (no reorder copies)."""

    name = "bridge_position_major"
    stage = "module"
    targets = ("openvino",)

    def apply(self, obj: nn.Module) -> RewriteResult:
        """Return a copy of ``obj`` whose bridges are position-major, and how many were rewritten."""
        model = copy.deepcopy(obj)
        return RewriteResult(model, bridges_position_major(model))
