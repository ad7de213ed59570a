"""The convolution that reads the RGB clip as one single-channel convolution per colour (module stage, OpenVINO).

OpenVINO's CPU plugin runs a convolution channels-last (``acdeb``: N, T, H, W, C in memory), so
it reorders the planar ``(B, 3, T, H, W)`` clip to ``(B, T, H, W, 3)`` before the stem's
3-channel Conv3d: on VMF-560M at 64 frames that one ``Reorder`` took 4.7 of 15.8 ms
(``PERF_COUNT``, AMD EPYC Zen 5; docs/openvino.md), more than OpenVINO's whole gap to onnxruntime,
whose first convolution reads the planar clip directly.

A convolution over one channel has the same memory layout channels-first and channels-last,
and channel ``c`` of a planar clip is one contiguous block. So a dense ``Conv3d`` with 3 input
channels (strided enough: below) becomes :class:`ChannelSplitConv3d`: three ``Conv3d(1 → C)`` on ``x[:, c:c+1]``
with the matching weight slices, summed (the bias added once). The result differs only by the
fp32 summation order of the three channels' partial sums.

The three convolutions are not cheaper than the one: the plugin's kernel costs about the same
per output whatever the input channels (VMF-1G at 64 frames: 3.2–3.6 ms each against 4.0 ms for
the 3-channel conv), so the split pays only where the reorder it saves outweighs two more
convolutions, i.e. where the convolution has few outputs per input position. Only a conv whose
strides multiply to :data:`MIN_STRIDE_PRODUCT` or more is split. Measured in turns at 64 frames
(``benchmarks/openvino_rewrites.py``, Zen 5): VMF-560M's fused stem, stride (8, 2, 2), 0.94× with
the split; 1G–5G's, stride (4, 2, 2), 1.09–1.11× (left alone); X3D's ``conv_xy``, stride (1, 2, 2),
is left alone too. This is an OpenVINO rewrite: onnxruntime reads the planar clip without a copy,
and ExecuTorch has its own frames layout.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from .base import Rewrite, RewriteResult, swap_modules

SPLIT_CHANNELS = 3
"""Input channels of the convolutions split: the RGB clip's."""
MIN_STRIDE_PRODUCT = 32
"""Smallest product of a conv's strides (input positions per output position) for which it is split."""


class ChannelSplitConv3d(nn.Module):
    """A dense ``Conv3d`` over a few input channels as one ``Conv3d(1 → C)`` per channel, summed."""

    def __init__(self, conv: nn.Conv3d) -> None:
        super().__init__()
        self.convs = nn.ModuleList()
        for channel in range(conv.in_channels):
            part = nn.Conv3d(1, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                             dilation=conv.dilation, bias=channel == 0 and conv.bias is not None,
                             padding_mode=conv.padding_mode)
            with torch.no_grad():
                part.weight.copy_(conv.weight[:, channel:channel + 1])
                if part.bias is not None:
                    part.bias.copy_(conv.bias)
            self.convs.append(part)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``Σ_c conv_c(x[:, c:c+1])``: the wrapped convolution of ``x``."""
        out = self.convs[0](x[:, 0:1])
        for channel in range(1, len(self.convs)):
            out = out + self.convs[channel](x[:, channel:channel + 1])
        return out


def is_split(module: nn.Module) -> bool:
    """Whether ``module`` is a dense ``Conv3d`` over :data:`SPLIT_CHANNELS` input channels whose strides multiply to
    :data:`MIN_STRIDE_PRODUCT` or more."""
    return (type(module) is nn.Conv3d and module.in_channels == SPLIT_CHANNELS and module.groups == 1
            and math.prod(module.stride) >= MIN_STRIDE_PRODUCT)


def split_input_convs(model: nn.Module) -> int:
    """Replace, in place, every convolution :func:`is_split` selects by a :class:`ChannelSplitConv3d`; return how many."""
    return swap_modules(model, {nn.Conv3d: ChannelSplitConv3d}, when=is_split)


class InputConvChannelSplit(Rewrite):
    """Module-stage rewrite: the strided 3-channel input convolution → three single-channel ones, summed."""

    name = "input_conv_channel_split"
    stage = "module"
    targets = ("openvino",)

    def apply(self, obj: nn.Module) -> RewriteResult:
        """Return a copy of ``obj`` with its strided 3-channel convolutions split, and how many were split."""
        model = copy.deepcopy(obj)
        return RewriteResult(model, split_input_convs(model))
