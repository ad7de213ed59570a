"""Mobile blocks, the VMF block (bridges + Former + Mobile) and the heads."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import VMFConfig
from .layers import Former, FormerToMobile, MobileToFormer, make_activation


class DepthwiseConv(nn.Module):
    """Depthwise spatio-temporal conv of a Mobile block: 3D, 2D or (2+1)D."""

    def __init__(self, channels: int, kind: str, stride: tuple[int, int, int]) -> None:
        super().__init__()
        st, ss, _ = stride
        if kind == "3d":
            self.convs = nn.Sequential(
                nn.Conv3d(channels, channels, 3, stride=stride, padding=1, groups=channels, bias=False))
        elif kind == "2d":
            self.convs = nn.Sequential(
                nn.Conv3d(channels, channels, (1, 3, 3), stride=(st, ss, ss), padding=(0, 1, 1),
                          groups=channels, bias=False))
        else:  # "2plus1d"
            self.convs = nn.Sequential(
                nn.Conv3d(channels, channels, (1, 3, 3), stride=(1, ss, ss), padding=(0, 1, 1),
                          groups=channels, bias=False),
                nn.Conv3d(channels, channels, (3, 1, 1), stride=(st, 1, 1), padding=(1, 0, 0),
                          groups=channels, bias=False),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the depthwise conv(s)."""
        return self.convs(x)


class MobileBlock(nn.Module):
    """Inverted bottleneck on the feature map: expand → act → depthwise → act → project.

    Activations receive token 0 (frame-level / token DyReLU) or ignore it (ReLU).
    The first block of a stage has an X3D-style projection shortcut (1×1×1 conv + BN).
    """

    def __init__(self, in_channels: int, out_channels: int, hidden: int, stride: tuple[int, int, int],
                 cfg: VMFConfig) -> None:
        super().__init__()
        self.expand = nn.Conv3d(in_channels, hidden, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(hidden)
        self.act1 = make_activation(cfg.activation, hidden, cfg.token_dim)
        self.dw = DepthwiseConv(hidden, cfg.dw_conv, stride)
        self.bn2 = nn.BatchNorm3d(hidden)
        self.act2 = make_activation(cfg.activation, hidden, cfg.token_dim)
        self.project = nn.Conv3d(hidden, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(out_channels)
        self.shortcut: nn.Module | None = None
        if in_channels != out_channels or stride != (1, 1, 1):
            self.shortcut = nn.Sequential(
                nn.Conv3d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm3d(out_channels),
            )

    def forward(self, x: torch.Tensor, token0: torch.Tensor | None = None) -> torch.Tensor:
        """Return the block output; ``token0`` drives dynamic activations."""
        out = self.act1(self.bn1(self.expand(x)), token0)
        out = self.act2(self.bn2(self.dw(out)), token0)
        out = self.bn3(self.project(out))
        return out + (x if self.shortcut is None else self.shortcut(x))


class VMFBlock(nn.Module):
    """One Video Mobile-Former block: Mobile→Former, Former, Mobile, Former→Mobile."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int, stride: tuple[int, int, int],
                 cfg: VMFConfig) -> None:
        super().__init__()
        self.per_frame = cfg.tokens_per_frame
        self.num_tokens = cfg.num_tokens
        self.mobile_to_former = MobileToFormer(in_channels, cfg.token_dim, cfg.bridge_heads, cfg.tokens_per_frame)
        self.former = Former(cfg.token_dim, cfg.former_heads, cfg.ffn_expansion)
        self.mobile = MobileBlock(in_channels, out_channels, hidden, stride, cfg)
        self.former_to_mobile = FormerToMobile(out_channels, cfg.token_dim, cfg.bridge_heads, cfg.tokens_per_frame)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the updated feature map and tokens."""
        tokens = self.former(self.mobile_to_former(x, tokens))
        x = self.mobile(x, first_token(tokens, self.num_tokens, self.per_frame))
        return self.former_to_mobile(x, tokens), tokens


def first_token(tokens: torch.Tensor, num_tokens: int, per_frame: bool) -> torch.Tensor:
    """Token 0 of the clip ``(B, d)``, or of every frame ``(B, T', d)`` with per-frame tokens."""
    if not per_frame:
        return tokens[:, 0]
    b, n, d = tokens.shape
    return tokens.reshape(b, n // num_tokens, num_tokens, d)[:, :, 0]


class VMFHead(nn.Module):
    """Mobile-Former head: bridge, 1×1×1 conv → BN → ReLU6, pool, h-swish, ⊕ token 0, MLP."""

    def __init__(self, channels: int, cfg: VMFConfig) -> None:
        super().__init__()
        wide = cfg.head_expansion * channels
        self.per_frame = cfg.tokens_per_frame
        self.num_tokens = cfg.num_tokens
        self.mobile_to_former = MobileToFormer(channels, cfg.token_dim, cfg.bridge_heads, cfg.tokens_per_frame)
        self.conv = nn.Conv3d(channels, wide, 1, bias=False)
        self.bn = nn.BatchNorm3d(wide)
        self.fc1 = nn.Linear(wide + cfg.token_dim, cfg.head_hidden)
        self.bn_fc = nn.BatchNorm1d(cfg.head_hidden)
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(cfg.head_hidden, cfg.num_classes)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Return logits ``(B, num_classes)``."""
        tokens = self.mobile_to_former(x, tokens)
        token0 = first_token(tokens, self.num_tokens, self.per_frame)
        if token0.dim() == 3:
            token0 = token0.mean(dim=1)
        x = F.relu6(self.bn(self.conv(x)))
        x = F.hardswish(x.mean(dim=(2, 3, 4)))
        x = torch.cat([x, token0], dim=1)
        x = F.hardswish(self.bn_fc(self.fc1(x)))
        return self.classifier(self.dropout(x))


class Mobile3DHead(nn.Module):
    """X3D-style conv head of the Mobile3D baselines: 1×1×1 conv → BN → ReLU, pool, MLP."""

    def __init__(self, channels: int, cfg: VMFConfig) -> None:
        super().__init__()
        wide = cfg.head_expansion * channels
        self.conv = nn.Conv3d(channels, wide, 1, bias=False)
        self.bn = nn.BatchNorm3d(wide)
        self.fc1 = nn.Linear(wide, cfg.head_hidden)
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(cfg.head_hidden, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits ``(B, num_classes)``."""
        x = F.relu(self.bn(self.conv(x))).mean(dim=(2, 3, 4))
        return self.classifier(self.dropout(F.relu(self.fc1(x))))
