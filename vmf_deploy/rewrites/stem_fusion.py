"""Fuse the (2+1)D stem's two convolutions into one Conv3d.

The stem is ``conv_xy`` (3→C0, 1×3×3, stride (1,2,2), no bias) on every input frame,
then ``conv_t`` (depthwise 5×1×1, temporal stride s, zero padding 2, no bias).
Both are linear, ``conv_xy`` has no bias, so ``conv_t``'s zero padding equals ``conv_xy``
of zero frames, and their composition is exactly one dense conv with kernel 5×3×3,
stride (s,2,2), padding (2,1,1) and weight ``W[c, ci, k, i, j] = w_t[c, k] · w_xy[c, ci, i, j]``.

Why it pays: ``conv_xy`` runs at the full input frame rate (64 frames) although the
strided temporal conv reads only 5 of every ``s`` frames, and runtimes execute the
depthwise temporal conv as a slow grouped conv. The fused conv computes only the
frames the stem outputs (135 multiply-adds per output instead of 27·s + 5).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from vmf_deploy.models.layers import Stem

from .base import Rewrite, RewriteResult, swap_modules


def merge_stem_convs(conv_xy: nn.Conv3d, conv_t: nn.Conv3d) -> nn.Conv3d:
    """One Conv3d computing ``conv_t(conv_xy(x))`` (``conv_xy`` bias-free; ``conv_t`` may carry a folded BN bias)."""
    c = conv_xy.out_channels
    if (conv_xy.kernel_size[0] != 1 or conv_xy.stride[0] != 1 or conv_xy.padding[0] != 0
            or conv_xy.groups != 1 or conv_xy.bias is not None
            or conv_t.groups != c or conv_t.out_channels != c or conv_t.kernel_size[1:] != (1, 1)
            or conv_t.stride[1:] != (1, 1) or conv_t.padding[1:] != (0, 0)
            or conv_xy.dilation != (1, 1, 1) or conv_t.dilation != (1, 1, 1)):
        raise ValueError(f"merge_stem_convs: not a (bias-free 1×k×k dense, kt×1×1 depthwise) pair: {conv_xy}, {conv_t}")
    kt = conv_t.kernel_size[0]
    merged = nn.Conv3d(conv_xy.in_channels, c, (kt, *conv_xy.kernel_size[1:]),
                       stride=(conv_t.stride[0], *conv_xy.stride[1:]),
                       padding=(conv_t.padding[0], *conv_xy.padding[1:]), bias=conv_t.bias is not None)
    with torch.no_grad():
        w_t = conv_t.weight.reshape(c, 1, kt, 1, 1)  # (C0, 1, kt, 1, 1)
        merged.weight.copy_(w_t * conv_xy.weight)  # (C0, 3, 1, kh, kw) broadcast over kt
        if conv_t.bias is not None:  # a BatchNorm already folded into conv_t: its bias carries over
            merged.bias.copy_(conv_t.bias)
    return merged


class FusedStem(nn.Module):
    """The stem as one Conv3d → BN → ReLU (same function as :class:`Stem`)."""

    def __init__(self, stem: Stem) -> None:
        super().__init__()
        self.conv = merge_stem_convs(stem.conv_xy, stem.conv_t)
        self.bn = stem.bn
        self.act = stem.act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a normalised clip ``(B, 3, T, H, W)`` to ``(B, C0, T', H/2, W/2)``."""
        return self.act(self.bn(self.conv(x)))


def fuse_stem(model: nn.Module) -> int:
    """Replace every :class:`Stem` in ``model`` by a :class:`FusedStem`, in place; return the count."""
    return swap_modules(model, {Stem: FusedStem})


class StemConvFusion(Rewrite):
    """Module-stage rewrite: the stem's spatial and temporal convs → one 5×3×3 Conv3d."""

    name = "stem_conv_fusion"
    stage = "module"
    targets = ("onnx", "coreml", "executorch", "openvino")  # ExecuTorch: frame form in frame_fusions.py

    def apply(self, obj: nn.Module) -> RewriteResult:
        """Return a copy of ``obj`` with a fused stem, and how many stems were fused."""
        from . import frame_fusions  # noqa: F401 - registers the fused modules' frames-layout forms

        model = copy.deepcopy(obj)
        return RewriteResult(model, fuse_stem(model))
