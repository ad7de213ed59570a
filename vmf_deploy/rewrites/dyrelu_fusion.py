"""Fuse the dynamic ReLUs: ``max(a1·x, a2·x)`` → ``relu(x) + a2·x`` and a slimmer coefficient MLP.

Frame-level DyReLU (``FrameDyReLU``) computes per-frame, per-channel coefficients
``s = mean(hsig(fc2(relu(fc1([pool(x) ⊕ token0])))) over the two halves of fc2)``,
then ``a1 = 2s``, ``a2 = 2s − 1`` and ``max(a1·x, a2·x)``. Because ``a1 − a2 = 1``
and ``a1 ≥ 0``, the activation is exactly ``relu(x) + a2·x``: the feature map is
read by one ReLU and one multiply-add instead of two multiplies and a maximum, and
the per-frame ``a1`` tensors disappear.

The coefficient MLP is rewritten exactly (only fc1's summation order changes):

* ``fc1([p ⊕ t]) = W_p·p + (W_t·t + b)``: the token half is computed once per clip
  instead of being expanded to every frame and concatenated;
* the pooled features stay channels-first ``(B, C, T)`` (no transposes), the two
  Linears become ``W @ (B, C, T)`` matmuls;
* ``2·mean(h0, h1) − 1 = h0 + h1 − 1`` exactly (scaling by 2 and 0.5 is exact in
  binary floating point), so the two halves of fc2 are added, not averaged.

fc2's halves are *not* pre-averaged into one C-output Linear: hard-sigmoid is
applied before the average, so that fold would change the function.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from vmf_deploy.models.layers import FrameDyReLU, TokenDyReLU

from .base import Rewrite, RewriteResult, swap_modules


def split_halves(weight: torch.Tensor, bias: torch.Tensor, channels: int) -> tuple[torch.Tensor, ...]:
    """fc2's ``(2C, hidden)`` weight and ``(2C,)`` bias as the two halves ``(C, hidden)``, ``(C,)`` each."""
    return weight[:channels], weight[channels:], bias[:channels], bias[channels:]


class FusedFrameDyReLU(nn.Module):
    """``FrameDyReLU`` as ``relu(x) + a2·x`` with a channels-first, concat-free coefficient MLP."""

    def __init__(self, src: FrameDyReLU) -> None:
        super().__init__()
        c = src.channels
        self.channels = c
        w1 = src.fc1.weight.detach()
        self.w_pool = nn.Parameter(w1[:, :c].clone(), requires_grad=False)  # (hidden, C)
        self.token_fc = nn.Linear(w1.shape[1] - c, w1.shape[0])
        w0, w1h, b0, b1 = split_halves(src.fc2.weight.detach(), src.fc2.bias.detach(), c)
        with torch.no_grad():
            self.token_fc.weight.copy_(w1[:, c:])
            self.token_fc.bias.copy_(src.fc1.bias)
        self.w_half0 = nn.Parameter(w0.clone(), requires_grad=False)  # (C, hidden)
        self.w_half1 = nn.Parameter(w1h.clone(), requires_grad=False)
        self.b_half0 = nn.Parameter(b0.clone().reshape(1, c, 1), requires_grad=False)
        self.b_half1 = nn.Parameter(b1.clone().reshape(1, c, 1), requires_grad=False)

    def slope(self, x: torch.Tensor, token0: torch.Tensor) -> torch.Tensor:
        """The negative-side slope ``a2 = 2s − 1`` of shape ``(B, C, T, 1, 1)``."""
        b, c, t = x.shape[:3]
        pooled = x.mean(dim=(3, 4))  # (B, C, T)
        tok = self.token_fc(token0)  # (B, hidden) or (B, T, hidden)
        tok = tok.unsqueeze(2) if tok.dim() == 2 else tok.transpose(1, 2)  # (B, hidden, 1 or T)
        hidden = F.relu(torch.matmul(self.w_pool, pooled) + tok)  # (B, hidden, T)
        h0 = F.hardsigmoid(torch.matmul(self.w_half0, hidden) + self.b_half0)  # (B, C, T)
        h1 = F.hardsigmoid(torch.matmul(self.w_half1, hidden) + self.b_half1)
        return (h0 + h1 - 1.0).reshape(b, c, t, 1, 1)

    def forward(self, x: torch.Tensor, token0: torch.Tensor) -> torch.Tensor:
        """Return ``relu(x) + a2·x`` (= ``max(a1·x, a2·x)`` of the original)."""
        return F.relu(x) + self.slope(x, token0) * x


class FusedTokenDyReLU(nn.Module):
    """``TokenDyReLU`` as ``relu(x) + a2·x``; the slopes come from token 0 alone."""

    def __init__(self, src: TokenDyReLU) -> None:
        super().__init__()
        c = src.channels
        self.channels = c
        self.fc1 = src.fc1
        w0, w1, b0, b1 = split_halves(src.fc2.weight.detach(), src.fc2.bias.detach(), c)
        self.half0 = nn.Linear(w0.shape[1], c)
        self.half1 = nn.Linear(w0.shape[1], c)
        with torch.no_grad():
            self.half0.weight.copy_(w0)
            self.half0.bias.copy_(b0)
            self.half1.weight.copy_(w1)
            self.half1.bias.copy_(b1)

    def forward(self, x: torch.Tensor, token0: torch.Tensor) -> torch.Tensor:
        """Return ``relu(x) + a2·x`` with ``a2`` per clip and channel."""
        if token0.dim() == 3:  # per-frame tokens: the clip's slopes come from frame 0's token
            token0 = token0[:, 0]
        hidden = F.relu(self.fc1(token0))
        a2 = F.hardsigmoid(self.half0(hidden)) + F.hardsigmoid(self.half1(hidden)) - 1.0
        return F.relu(x) + a2.reshape(x.shape[0], self.channels, 1, 1, 1) * x


FUSED = {FrameDyReLU: FusedFrameDyReLU, TokenDyReLU: FusedTokenDyReLU}


def fuse_dyrelu(model: nn.Module) -> int:
    """Swap every ``FrameDyReLU`` / ``TokenDyReLU`` in ``model`` for its fused form, in place; return the count."""
    return swap_modules(model, FUSED)


class DyReLUFusion(Rewrite):
    """Module-stage rewrite: dynamic ReLUs → ``relu(x) + a2·x`` with the concat-free coefficient MLP."""

    name = "dyrelu_fusion"
    stage = "module"
    targets = ("onnx", "coreml", "executorch")  # ExecuTorch: frame forms registered in frame_fusions.py

    def apply(self, obj: nn.Module) -> RewriteResult:
        """Return a copy of ``obj`` with fused dynamic ReLUs, and how many were fused."""
        from . import frame_fusions  # noqa: F401 - registers the fused modules' frames-layout forms

        model = copy.deepcopy(obj)
        return RewriteResult(model, fuse_dyrelu(model))
