"""Frames-layout (4D, ExecuTorch) forms of the fused modules, registered with ``frames_to_batch``.

The ExecuTorch recipe first runs the module fusions (``stem_fusion``, ``dyrelu_fusion``)
on the 5D model, then ``frames_to_batch`` rebuilds it in the ``(B*T, C, H, W)`` layout.
This file teaches ``frames_to_batch`` the fused module types, so the two compose: the
fused stem becomes one Conv2d over its stacked temporal taps, the fused DyReLUs keep ``relu(x) + a2·x``
on frames. Ops are the XNNPACK-claimable ones ``frame_layers.py`` lists.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .dyrelu_fusion import FusedFrameDyReLU, FusedTokenDyReLU
from .frame_layers import FrameStackedConv3d, folded_linear
from .frames_to_batch import register_frame_converter
from .stem_fusion import FusedStem


class FrameFusedStem(nn.Module):
    """:class:`FusedStem` on frames: its 5×3×3 conv as one Conv2d on the clip's stacked frames, (folded) BN, ReLU."""

    def __init__(self, conv: nn.Module, bn: nn.Module, act: nn.Module) -> None:
        super().__init__()
        self.conv, self.bn, self.act = conv, bn, act

    def forward(self, clip: torch.Tensor, batch: int) -> torch.Tensor:
        """Clip ``(B, 3, T, H, W)`` → frames ``(B*T', C0, H/2, W/2)``."""
        return self.act(self.bn(self.conv(clip), batch), batch)


def _slope_halves(w0: torch.Tensor, b0: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor) -> tuple[nn.Linear, ...]:
    """The two coefficient halves with the hard-sigmoids' constants folded in.

    ``a2 = hs(z0) + hs(z1) − 1`` with ``hs(z) = hardtanh(z + 3, 0, 6) / 6`` equals
    ``hardtanh(z0', 0, 1) + hardtanh(z1', −1, 0)`` for ``z0' = (z0 + 3) / 6`` and
    ``z1' = (z1 + 3) / 6 − 1``: two clamps and one add instead of eleven nodes.
    """
    return (folded_linear(w0, b0, 1.0 / 6.0, 1.0 / 6.0, 0.5), folded_linear(w1, b1, 1.0 / 6.0, 1.0 / 6.0, -0.5))


def _slopes(hidden: torch.Tensor, half0: nn.Module, half1: nn.Module) -> torch.Tensor:
    """``a2`` from the folded halves of :func:`_slope_halves`."""
    return F.hardtanh(half0(hidden), 0.0, 1.0) + F.hardtanh(half1(hidden), -1.0, 0.0)


class FrameFusedDyReLU(nn.Module):
    """:class:`FusedFrameDyReLU` on frames ``(B*T, C, H, W)``: ``relu(x) + a2·x``, per-frame slopes."""

    def __init__(self, act: FusedFrameDyReLU) -> None:
        super().__init__()
        self.channels = act.channels
        self.w_pool, self.token_fc = act.w_pool, act.token_fc
        self.half0, self.half1 = _slope_halves(act.w_half0, act.b_half0, act.w_half1, act.b_half1)

    def forward(self, x: torch.Tensor, token0: torch.Tensor, batch: int) -> torch.Tensor:
        """Apply the fused dynamic ReLU; ``token0`` is ``(B, d)`` or ``(B, T, d)``."""
        bt, c = x.shape[:2]
        t = bt // batch
        pooled = F.linear(x.mean(dim=(2, 3), keepdim=True).reshape(bt, c), self.w_pool)  # (B*T, hidden)
        tok = self.token_fc(token0)  # (B, hidden), or (B, T, hidden) with per-frame tokens
        if tok.dim() == 3:
            hidden = F.relu(pooled + tok.reshape(bt, -1))
        elif batch == 1:  # the clip's token part broadcasts over the frames' rows
            hidden = F.relu(pooled + tok)
        else:
            hidden = F.relu((pooled.reshape(batch, t, -1) + tok.reshape(batch, 1, -1)).reshape(bt, -1))
        a2 = _slopes(hidden, self.half0, self.half1)
        return F.relu(x) + a2.reshape(bt, c, 1, 1) * x


class FrameFusedTokenDyReLU(nn.Module):
    """:class:`FusedTokenDyReLU` on frames: the clip's slopes broadcast over its frames."""

    def __init__(self, act: FusedTokenDyReLU) -> None:
        super().__init__()
        self.channels, self.fc1 = act.channels, act.fc1
        self.half0, self.half1 = _slope_halves(act.half0.weight, act.half0.bias, act.half1.weight, act.half1.bias)

    def forward(self, x: torch.Tensor, token0: torch.Tensor, batch: int) -> torch.Tensor:
        """Apply ``relu(x) + a2·x`` with slopes from token 0 (frame 0's token with per-frame tokens)."""
        if token0.dim() == 3:
            token0 = token0[:, 0:1].reshape(token0.shape[0], token0.shape[2])
        bt, c, h, w = x.shape
        a2 = _slopes(F.relu(self.fc1(token0)), self.half0, self.half1)
        frames = x.reshape(batch, bt // batch, c, h * w)
        return (F.relu(frames) + a2.reshape(batch, 1, c, 1) * frames).reshape(bt, c, h, w)


register_frame_converter(FusedStem)(
    lambda m, convert: FrameFusedStem(FrameStackedConv3d(m.conv), convert(m.bn), convert(m.act)))
register_frame_converter(FusedFrameDyReLU)(lambda m, _: FrameFusedDyReLU(m))
register_frame_converter(FusedTokenDyReLU)(lambda m, _: FrameFusedTokenDyReLU(m))
