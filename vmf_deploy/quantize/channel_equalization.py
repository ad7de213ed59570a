"""Equalize the Mobile blocks' hidden channels before int8 calibration (the recipe's ``equalize_channels``).

Inside a :class:`~vmf_deploy.models.MobileBlock` the expand conv's BN output goes through a positively
homogeneous activation (``FrameDyReLU``, ``TokenDyReLU`` or ReLU: ``f(s·x) = s·f(x)`` for ``s > 0``) into the
depthwise conv. Multiplying hidden channel ``c`` by ``s_c`` at ``bn1`` and dividing the depthwise filter of that
channel by ``s_c`` computes the same function: the cross-layer scaling of data-free quantization (Nagel et al.,
2019) and SmoothQuant. A ``FrameDyReLU`` reads its input's per-frame spatial mean, so its ``fc1`` input column ``c``
is divided by ``s_c`` too, and its slopes do not move.

Both convs quantize their weights per output channel, so the scales cost their weights nothing. The two
activations between them, ``bn1``'s output (the expand conv's) and the activation's (the depthwise conv's input),
are quantized per tensor: one int8 range ``[min, max]`` for every channel, set by the widest. Channel ``c``'s room
is the largest factor that keeps it inside both tensors' ``[min, max]`` over the calibration clips, and
``s_c = room_c ** strength``: the tensors' ranges, and so every other channel's resolution, stay as they were, and a
narrow channel gets ``s_c`` times more of the 256 levels. A strength below 1 leaves each channel headroom for clips
wider than the calibration clips (SmoothQuant's migration strength plays the same part). The scales are capped at
:data:`MAX_SCALE`, so that a channel that barely moved on the calibration clips is not blown up past what it does on
other inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from vmf_deploy.models import FrameDyReLU, MobileBlock, TokenDyReLU, TokenFreeReLU

MAX_SCALE = 16.0
"""The largest factor a hidden channel is multiplied by."""
HOMOGENEOUS_ACTIVATIONS = (FrameDyReLU, TokenDyReLU, TokenFreeReLU)
"""Mobile-block activations with ``f(s·x) = s·f(x)`` for ``s > 0`` (their slopes do not depend on ``s``)."""


def equalizable_blocks(model: nn.Module) -> list[tuple[str, MobileBlock]]:
    """``(path, block)`` for every Mobile block of ``model`` whose first activation is positively homogeneous."""
    return [(name, module) for name, module in model.named_modules()
            if isinstance(module, MobileBlock) and isinstance(module.act1, HOMOGENEOUS_ACTIVATIONS)]


@dataclass
class ChannelRange:
    """Per-channel extremes of one activation over the calibration clips (the tensor's are their min and max)."""

    low: torch.Tensor
    high: torch.Tensor

    def widen(self, low: torch.Tensor, high: torch.Tensor) -> ChannelRange:
        """This range widened to include another batch's extremes."""
        return ChannelRange(torch.minimum(self.low, low), torch.maximum(self.high, high))

    def room(self) -> torch.Tensor:
        """How far each channel can be multiplied before it leaves the tensor's ``[min, max]``."""
        tiny = torch.finfo(self.high.dtype).tiny
        up = torch.where(self.high > 0, self.high.max() / self.high.clamp(min=tiny), torch.inf)
        down = torch.where(self.low < 0, self.low.min() / self.low.clamp(max=-tiny), torch.inf)
        return torch.minimum(up, down)


@torch.inference_mode()
def hidden_channel_ranges(model: nn.Module, blocks: Sequence[tuple[str, MobileBlock]],
                          clips: Sequence[np.ndarray]) -> dict[tuple[str, str], ChannelRange]:
    """``{(block path, "bn1" or "act1"): ChannelRange}`` of each block's two hidden activations over ``clips``,
    with ``model`` in eval mode."""
    ranges: dict[tuple[str, str], ChannelRange] = {}

    def observe(key: tuple[str, str]):
        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            per_channel = output.transpose(0, 1).flatten(1)
            low, high = per_channel.amin(dim=1), per_channel.amax(dim=1)
            ranges[key] = ranges[key].widen(low, high) if key in ranges else ChannelRange(low, high)
        return hook

    handles = [getattr(block, name).register_forward_hook(observe((path, name)))
               for path, block in blocks for name in ("bn1", "act1")]
    was_training = model.training
    model.eval()
    try:
        for clip in clips:
            model(torch.from_numpy(np.ascontiguousarray(clip, dtype=np.float32)))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return ranges


def channel_scales(ranges: Sequence[ChannelRange], strength: float, max_scale: float = MAX_SCALE) -> torch.Tensor:
    """Each channel's factor: ``room ** strength``, where ``room`` is the largest factor every one of ``ranges``
    allows without widening that tensor's ``[min, max]`` (so no other channel loses resolution), from 1 up to
    ``max_scale``."""
    room = torch.stack([r.room() for r in ranges]).amin(dim=0)
    return room.pow(strength).clamp(1.0, max_scale)


@torch.no_grad()
def scale_hidden_channels(block: MobileBlock, scales: torch.Tensor) -> None:
    """Multiply ``block``'s hidden channels by ``scales`` between ``bn1`` and the depthwise conv; the block's output
    is unchanged (up to fp32 rounding)."""
    block.bn1.weight.mul_(scales)
    block.bn1.bias.mul_(scales)
    if isinstance(block.act1, FrameDyReLU):
        block.act1.fc1.weight[:, : block.act1.channels].div_(scales)
    first = block.dw.convs[0]
    first.weight.div_(scales.view(-1, *([1] * (first.weight.dim() - 1))))


def equalize_channels(model: nn.Module, clips: Sequence[np.ndarray], strength: float,
                      max_scale: float = MAX_SCALE) -> dict:
    """Equalize the hidden channels of every eligible Mobile block of ``model`` in place, ranges from ``clips``.

    ``strength`` (the recipe's ``equalize_channels``, 0 to 1) is the exponent of each channel's room: 1 takes
    every channel to its tensor's range on the calibration clips, leaving no headroom for other clips.

    Returns the manifest's summary: ``{"blocks": n, "strength": s, "max_scale": cap, "scale_median": m,
    "scale_max": x, "capped_channels": k}``.
    """
    blocks = equalizable_blocks(model)
    if not blocks:
        return {"blocks": 0, "strength": strength, "max_scale": max_scale}
    ranges = hidden_channel_ranges(model, blocks, clips)
    all_scales = []
    for path, block in blocks:
        scales = channel_scales([ranges[(path, "bn1")], ranges[(path, "act1")]], strength, max_scale)
        scale_hidden_channels(block, scales)
        all_scales.append(scales)
    flat = torch.cat(all_scales)
    return {"blocks": len(blocks), "strength": strength, "max_scale": max_scale,
            "scale_median": round(float(flat.median()), 3), "scale_max": round(float(flat.max()), 3),
            "capped_channels": int((flat >= max_scale).sum())}
