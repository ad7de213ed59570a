"""Video Mobile-Former and the Mobile3D baseline networks."""

from __future__ import annotations

import math

import torch
from torch import nn

from .blocks import MobileBlock, Mobile3DHead, VMFBlock, VMFHead
from .config import VMFConfig
from .layers import Stem


def _stage_plan(cfg: VMFConfig) -> list[tuple[int, int, int, tuple[int, int, int]]]:
    """(in_channels, out_channels, hidden, stride) for every Mobile block in order."""
    plan = []
    c_in = cfg.dim
    for stage, (n_blocks, c_out, t_stride) in enumerate(
            zip(cfg.stage_blocks, cfg.stage_widths, cfg.stage_temporal_strides())):
        for i in range(n_blocks):
            stride = (t_stride, 2, 2) if i == 0 else (1, 1, 1)
            plan.append((c_in, c_out, cfg.hidden_width(c_out), stride))
            c_in = c_out
    return plan


def init_weights(module: nn.Module) -> None:
    """Mobile-Former's init: conv N(0, sqrt(2/(k·C_out))), Linear N(0, 0.01), BN γ=1 β=0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv3d, nn.Conv2d)):
            n = math.prod(m.kernel_size) * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm3d, nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def randomize_norm_statistics(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every norm layer non-trivial, deterministic statistics and affine parameters.

    A freshly initialised model has BN mean 0 / var 1 / γ 1 / β 0, which hides
    folding bugs; this makes BN folding and parity checks meaningful. Used for the
    deterministic seeded init that is exported when no checkpoint is given.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
                m.weight.copy_(0.75 + 0.5 * torch.rand(n, generator=g))
                m.bias.copy_(0.1 * torch.randn(n, generator=g))
    return model


class VideoMobileFormer(nn.Module):
    """Video Mobile-Former: a light 3D-CNN in parallel with a Former over global tokens.

    Input ``(B, 3, T, H, W)`` float32, normalised; output logits ``(B, num_classes)``.
    """

    def __init__(self, cfg: VMFConfig) -> None:
        super().__init__()
        if cfg.mobile_only:
            raise ValueError("VideoMobileFormer needs a config with mobile_only=False; use Mobile3D")
        self.cfg = cfg
        self.tokens_per_clip = cfg.num_tokens * (cfg.stem_frames() if cfg.tokens_per_frame else 1)
        self.tokens = nn.Parameter(torch.zeros(self.tokens_per_clip, cfg.token_dim))
        self.stem = Stem(cfg.dim, cfg.stem_temporal_stride)
        self.blocks = nn.ModuleList(VMFBlock(*spec, cfg=cfg) for spec in _stage_plan(cfg))
        self.head = VMFHead(cfg.stage_widths[-1], cfg)
        init_weights(self)
        nn.init.normal_(self.tokens, 0.0, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits for a batch of normalised clips."""
        x = self.stem(x)
        if self.cfg.tokens_per_frame and x.shape[2] * self.cfg.num_tokens != self.tokens_per_clip:
            raise ValueError(
                f"tokens_per_frame model was built for {self.tokens_per_clip // self.cfg.num_tokens} frames "
                f"after the stem but got {x.shape[2]}: build it with frames={self.cfg.frames}")
        tokens = self.tokens.unsqueeze(0).expand(x.shape[0], -1, -1)
        for block in self.blocks:
            x, tokens = block(x, tokens)
        return self.head(x, tokens)


class Mobile3D(nn.Module):
    """Mobile3D baseline: VMF's Mobile branch alone (no Former, bridges or DyReLU), conv head."""

    def __init__(self, cfg: VMFConfig) -> None:
        super().__init__()
        if not cfg.mobile_only:
            raise ValueError("Mobile3D needs a config with mobile_only=True")
        self.cfg = cfg
        self.stem = Stem(cfg.dim, cfg.stem_temporal_stride)
        self.blocks = nn.ModuleList(MobileBlock(*spec, cfg=cfg) for spec in _stage_plan(cfg))
        self.head = Mobile3DHead(cfg.stage_widths[-1], cfg)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits for a batch of normalised clips."""
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)
