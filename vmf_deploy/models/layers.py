"""Building blocks of Video Mobile-Former: bridges, Former, dynamic ReLU, stem.

Each piece is its own ``nn.Module`` class so graph rewrites and the FLOP counter
can find it by type. Tensors stay at rank <= 5 everywhere (CoreML's limit).
Feature maps are ``(B, C, T, H, W)``; tokens are ``(B, M, d)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def group_frames(x: torch.Tensor, tokens: torch.Tensor, per_frame: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Flatten a feature map to ``(B', C, N)`` and tokens to ``(B', M, d)``.

    With ``per_frame`` every frame becomes its own batch entry and is paired with
    its own group of ``M`` tokens (the ``tokens_per_frame`` ablation).
    """
    b, c, t, h, w = x.shape
    if not per_frame:
        return x.reshape(b, c, t * h * w), tokens
    feats = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h * w)
    return feats, tokens.reshape(b * t, tokens.shape[1] // t, tokens.shape[2])


class MobileToFormer(nn.Module):
    """Mobile→Former cross-attention: the tokens read the whole feature map.

    Queries are a Linear projection of the tokens; keys and values are the raw
    flattened feature map (no projection on the long side). A channel gate
    ``2·hard_sigmoid(Linear(tokens))`` scales the attended features, an output
    Linear maps them back to ``d``, and the result is added to the tokens
    followed by LayerNorm.
    """

    def __init__(self, channels: int, token_dim: int, heads: int = 2, per_frame: bool = False) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"MobileToFormer: {channels} channels do not split into {heads} heads")
        self.channels, self.heads, self.per_frame = channels, heads, per_frame
        self.scale = (channels // heads) ** -0.5
        self.to_q = nn.Linear(token_dim, channels)
        self.gate = nn.Linear(token_dim, channels)
        self.proj = nn.Linear(channels, token_dim)
        self.norm = nn.LayerNorm(token_dim)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Return the updated tokens ``(B, M_total, d)``."""
        feats, toks = group_frames(x, tokens, self.per_frame)
        b, c, n = feats.shape
        m = toks.shape[1]
        ch = c // self.heads
        kv = feats.reshape(b, self.heads, ch, n)  # (B, h, c, N)
        q = self.to_q(toks).reshape(b, m, self.heads, ch).transpose(1, 2)  # (B, h, M, c)
        out = self.attend(q, kv).transpose(1, 2).reshape(b, m, c)
        out = out * (2.0 * F.hardsigmoid(self.gate(toks)))
        toks = toks + self.proj(out)
        return self.norm(toks.reshape(tokens.shape))

    def attend(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        """Attention of queries ``(B, h, M, c)`` over the feature map ``(B, h, c, N)``: ``(B, h, M, c)``."""
        attn = torch.softmax(torch.matmul(q, kv) * self.scale, dim=-1)  # (B, h, M, N)
        return torch.matmul(attn, kv.transpose(2, 3))


class FormerToMobile(nn.Module):
    """Former→Mobile cross-attention: every position reads the tokens.

    Queries are the feature map itself (no projection); keys and values are
    Linear projections of the tokens. The result is added to the feature map.
    """

    def __init__(self, channels: int, token_dim: int, heads: int = 2, per_frame: bool = False) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"FormerToMobile: {channels} channels do not split into {heads} heads")
        self.channels, self.heads, self.per_frame = channels, heads, per_frame
        self.scale = (channels // heads) ** -0.5
        self.to_k = nn.Linear(token_dim, channels)
        self.to_v = nn.Linear(token_dim, channels)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Return the feature map plus what it read from the tokens."""
        b0, c, t, h, w = x.shape
        feats, toks = group_frames(x, tokens, self.per_frame)
        b, _, n = feats.shape
        m = toks.shape[1]
        ch = c // self.heads
        q = feats.reshape(b, self.heads, ch, n).transpose(2, 3)  # (B, h, N, c)
        k = self.to_k(toks).reshape(b, m, self.heads, ch).transpose(1, 2)  # (B, h, M, c)
        v = self.to_v(toks).reshape(b, m, self.heads, ch).transpose(1, 2)
        out = self.attend(q, k, v).transpose(2, 3).reshape(b, c, n)  # (B, C, N)
        if self.per_frame:
            out = out.reshape(b0, t, c, h, w).permute(0, 2, 1, 3, 4)
        return x + out.reshape(b0, c, t, h, w)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Attention of the positions ``(B, h, N, c)`` over the tokens ``(B, h, M, c)``: ``(B, h, N, c)``."""
        attn = torch.softmax(torch.matmul(q, k.transpose(2, 3)) * self.scale, dim=-1)  # (B, h, N, M)
        return torch.matmul(attn, v)


class Former(nn.Module):
    """Transformer layer over the global tokens (post-norm, as Mobile-Former).

    Self-attention projects only the queries; keys and values are the tokens.
    """

    def __init__(self, token_dim: int, heads: int = 4, ffn_expansion: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (token_dim // heads) ** -0.5
        self.to_q = nn.Linear(token_dim, token_dim)
        self.proj = nn.Linear(token_dim, token_dim)
        self.norm1 = nn.LayerNorm(token_dim)
        self.ffn = nn.Sequential(
            nn.Linear(token_dim, token_dim * ffn_expansion),
            nn.GELU(),
            nn.Linear(token_dim * ffn_expansion, token_dim),
        )
        self.norm2 = nn.LayerNorm(token_dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Return the updated tokens ``(B, M, d)``."""
        b, m, d = tokens.shape
        dh = d // self.heads
        q = self.to_q(tokens).reshape(b, m, self.heads, dh).transpose(1, 2)
        kv = tokens.reshape(b, m, self.heads, dh).transpose(1, 2)
        attn = torch.softmax(torch.matmul(q, kv.transpose(2, 3)) * self.scale, dim=-1)
        out = torch.matmul(attn, kv).transpose(1, 2).reshape(b, m, d)
        tokens = self.norm1(tokens + self.proj(out))
        return self.norm2(tokens + self.ffn(tokens))


class FrameDyReLU(nn.Module):
    """Frame-level dynamic ReLU: per-frame, per-channel slopes from the clip and token 0.

    The per-frame spatial mean of the input (T' × C) is concatenated with token 0
    and mapped by Linear → ReLU → Linear → hard-sigmoid to ``s``; the slopes are
    ``a1 = 2s`` and ``a2 = 2s − 1`` and the output is ``max(a1·x, a2·x)``.
    The second Linear has ``2C`` outputs as in Mobile-Former's DyReLU head; the
    two halves are averaged into the one coefficient ``s`` per channel so that
    ``a1 − a2 = 1`` holds exactly (the DyReLU fusion rewrite relies on it).
    """

    def __init__(self, channels: int, token_dim: int, reduction: int = 4) -> None:
        super().__init__()
        self.channels = channels
        hidden = (channels + token_dim) // reduction
        self.fc1 = nn.Linear(channels + token_dim, hidden)
        self.fc2 = nn.Linear(hidden, 2 * channels)

    def coefficients(self, x: torch.Tensor, token0: torch.Tensor) -> torch.Tensor:
        """Return ``s`` of shape ``(B, C, T, 1, 1)`` for input ``x`` and token 0.

        ``token0`` is ``(B, d)`` (one token for the clip) or ``(B, T, d)`` (per frame).
        """
        b, c, t = x.shape[:3]
        pooled = x.mean(dim=(3, 4)).transpose(1, 2)  # (B, T, C)
        if token0.dim() == 2:
            token0 = token0.unsqueeze(1).expand(b, t, token0.shape[-1])
        z = torch.cat([pooled, token0], dim=-1)
        s = F.hardsigmoid(self.fc2(F.relu(self.fc1(z))))  # (B, T, 2C)
        s = s.reshape(b, t, 2, c).mean(dim=2)  # (B, T, C)
        return s.transpose(1, 2).reshape(b, c, t, 1, 1)

    def forward(self, x: torch.Tensor, token0: torch.Tensor) -> torch.Tensor:
        """Apply ``max(2s·x, (2s−1)·x)``."""
        s = self.coefficients(x, token0)
        a1 = 2.0 * s
        return torch.maximum(a1 * x, (a1 - 1.0) * x)


class TokenDyReLU(nn.Module):
    """Token-only dynamic ReLU (image Mobile-Former): slopes from token 0 alone.

    The same slopes are used for every frame: ``s = hsig(Linear(ReLU(Linear(token0))))``,
    ``out = max(2s·x, (2s−1)·x)``.
    """

    def __init__(self, channels: int, token_dim: int, reduction: int = 4) -> None:
        super().__init__()
        self.channels = channels
        self.fc1 = nn.Linear(token_dim, token_dim // reduction)
        self.fc2 = nn.Linear(token_dim // reduction, 2 * channels)

    def forward(self, x: torch.Tensor, token0: torch.Tensor) -> torch.Tensor:
        """Apply the token-conditioned dynamic ReLU to ``x``."""
        if token0.dim() == 3:  # per-frame tokens: the clip's slopes come from frame 0's token
            token0 = token0[:, 0]
        b, c = x.shape[:2]
        s = F.hardsigmoid(self.fc2(F.relu(self.fc1(token0))))
        s = s.reshape(b, 2, c).mean(dim=1).reshape(b, c, 1, 1, 1)
        a1 = 2.0 * s
        return torch.maximum(a1 * x, (a1 - 1.0) * x)


class TokenFreeReLU(nn.ReLU):
    """Plain ReLU that accepts (and ignores) token 0, so blocks treat activations alike."""

    def forward(self, x: torch.Tensor, token0: torch.Tensor | None = None) -> torch.Tensor:  # noqa: ARG002
        """Return ``relu(x)``."""
        return super().forward(x)


def make_activation(kind: str, channels: int, token_dim: int) -> nn.Module:
    """Build the Mobile-block activation named by ``kind``."""
    if kind == "frame_dyrelu":
        return FrameDyReLU(channels, token_dim)
    if kind == "dyrelu":
        return TokenDyReLU(channels, token_dim)
    return TokenFreeReLU()


class Stem(nn.Module):
    """(2+1)D stem: 1×3×3 conv stride (1,2,2), depthwise 5×1×1 temporal conv, BN, ReLU."""

    def __init__(self, out_channels: int, temporal_stride: int) -> None:
        super().__init__()
        self.conv_xy = nn.Conv3d(3, out_channels, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False)
        self.conv_t = nn.Conv3d(
            out_channels, out_channels, (5, 1, 1), stride=(temporal_stride, 1, 1),
            padding=(2, 0, 0), groups=out_channels, bias=False,
        )
        self.bn = nn.BatchNorm3d(out_channels)
        self.act = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map a normalised clip ``(B, 3, T, H, W)`` to ``(B, C0, T', H/2, W/2)``."""
        return self.act(self.bn(self.conv_t(self.conv_xy(x))))
