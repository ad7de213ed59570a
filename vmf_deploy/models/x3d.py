"""X3D-XS and X3D-S, the paper's CPU-speed peers, built in-tree (no torchvision, no pytorchvideo).

The architecture follows pytorchvideo's ``create_x3d`` (Feichtenhofer, "X3D: Expanding
Architectures for Efficient Video Recognition", CVPR 2020) layer for layer:

- stem: Conv 1×3×3 stride (1,2,2) 3→24, depthwise Conv 5×1×1 (temporal), BN, ReLU;
- four stages of widths 24/48/96/192; base depths 1/2/5/3 times the depth factor 2.2,
  rounded up as pytorchvideo's ``round_repeats`` does → 3/5/11/7 blocks; spatial stride 2
  in each stage's first block;
- block: 1×1×1 expand (inner width ``int(2.25 × C_out)``) → BN → ReLU → 3×3×3 depthwise →
  BN → Squeeze-Excitation (blocks 1, 3, 5, … of a stage; reduced width
  ``round_width(inner, 1/16)``) → swish → 1×1×1 project → BN; the sum with the shortcut is
  followed by ReLU; the shortcut is a 1×1×1 conv (+ BN when the width changes) in a stage's
  first block;
- head: 1×1×1 conv 192→432, BN, ReLU, global average pool, Linear 432→2048 (no bias, no BN),
  ReLU, dropout 0.5, Linear 2048→400. Output: logits (pytorchvideo's default head ends with a
  softmax; vmf-deploy models return logits everywhere).

X3D-XS and X3D-S are the same network; the published models differ only in their input:
4×160² (XS) and 13×160² (S). For benchmarking against Video Mobile-Former, the registry's
default input is the VMF paper's protocol, 64 frames × 160² (Table 12), for both.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

from .config import ConfigError
from .registry import register_model


def round_width(width: float, multiplier: float, min_width: int = 8, divisor: int = 8) -> int:
    """pytorchvideo's ``round_width``: scale ``width`` and round to a multiple of ``divisor``."""
    width *= multiplier
    width_out = max(min_width, int(width + divisor / 2) // divisor * divisor)
    if width_out < 0.9 * width:
        width_out += divisor
    return int(width_out)


def round_repeats(repeats: int, multiplier: float) -> int:
    """pytorchvideo's ``round_repeats``: blocks of a stage after the depth factor (rounded up)."""
    return int(math.ceil(multiplier * repeats))


@dataclass(frozen=True)
class X3DConfig:
    """Architecture and default input of one X3D model.

    Shares the interface of :class:`~vmf_deploy.models.config.VMFConfig` that the rest of
    vmf-deploy uses (``name``, ``frames``, ``resolution``, ``temporal_stride``,
    ``num_classes``, ``input_shape``, ``replace``, ``to_dict``/``from_dict``,
    ``paper_params``, ``paper_flops``).

    Attributes:
        name: registry name.
        frames / resolution: default input (64 × 160², the VMF paper's protocol).
        temporal_stride: temporal stride of the stem's 5×1×1 conv (1 in the published models).
        width_factor / depth_factor: X3D's expansion factors (2.0 / 2.2 for XS and S).
        bottleneck_factor: inner width of a block is ``int(bottleneck_factor × C_out)``.
        se_ratio: SE reduced width is ``round_width(inner, se_ratio)``.
        head_dim: width of the head's hidden Linear.
        num_classes / dropout: classifier.
        published_frames / published_resolution: the input the published numbers refer to
            (4 × 160² for X3D-XS, 13 × 160² for X3D-S).
        published_params / published_flops: the X3D paper's Table 3 values at that input
            (multiply-adds).
    """

    name: str
    frames: int = 64
    resolution: int = 160
    temporal_stride: int = 1
    width_factor: float = 2.0
    depth_factor: float = 2.2
    bottleneck_factor: float = 2.25
    se_ratio: float = 0.0625
    head_dim: int = 2048
    num_classes: int = 400
    dropout: float = 0.5
    published_frames: int = 13
    published_resolution: int = 160
    published_params: float | None = None
    published_flops: float | None = None

    STEM_DIM_IN = 12
    BASE_DEPTHS = (1, 2, 5, 3)

    def __post_init__(self) -> None:
        def fail(knob: str, value: object, expected: str) -> None:
            raise ConfigError(f"{self.name}: invalid {knob}={value!r}; expected {expected}.")

        for knob in ("frames", "resolution", "num_classes", "head_dim", "published_frames"):
            value = getattr(self, knob)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                fail(knob, value, "a positive integer")
        if self.resolution < 32:
            fail("resolution", self.resolution, "at least 32 (the network strides by 32)")
        if self.temporal_stride not in (1, 2, 4):
            fail("temporal_stride", self.temporal_stride, "one of 1, 2, 4")
        if self.frames < self.temporal_stride:
            fail("frames", self.frames, f"at least temporal_stride={self.temporal_stride}")
        if not 0.0 <= self.dropout < 1.0:
            fail("dropout", self.dropout, "a probability in [0, 1)")
        if self.width_factor <= 0 or self.depth_factor <= 0 or self.bottleneck_factor <= 0 or self.se_ratio < 0:
            fail("width/depth/bottleneck/se factors", (self.width_factor, self.depth_factor,
                                                       self.bottleneck_factor, self.se_ratio), "positive numbers")

    # ----- derived quantities -------------------------------------------------
    @property
    def stem_width(self) -> int:
        """Output channels of the stem (24 for XS/S)."""
        return round_width(self.STEM_DIM_IN, self.width_factor)

    @property
    def stage_widths(self) -> tuple[int, ...]:
        """Output channels of the four stages (24, 48, 96, 192 for XS/S)."""
        dims = [self.STEM_DIM_IN]
        for _ in range(3):
            dims.append(round_width(dims[-1], 2.0))
        return tuple(round_width(d, self.width_factor) for d in dims)

    @property
    def stage_depths(self) -> tuple[int, ...]:
        """Blocks per stage after the depth factor (3, 5, 11, 7 for XS/S)."""
        return tuple(round_repeats(d, self.depth_factor) for d in self.BASE_DEPTHS)

    def inner_width(self, out_channels: int) -> int:
        """Inner (expanded) width of a block with ``out_channels`` outputs."""
        return int(self.bottleneck_factor * out_channels)

    @property
    def input_shape(self) -> tuple[int, int, int, int, int]:
        """Default input shape ``(1, 3, frames, resolution, resolution)``."""
        return (1, 3, self.frames, self.resolution, self.resolution)

    @property
    def paper_params(self) -> float | None:
        """Published parameter count (independent of the input)."""
        return self.published_params

    @property
    def paper_flops(self) -> float | None:
        """Published FLOPs scaled to this config's ``frames``; None at another resolution/stride.

        Exact scaling: every conv of X3D keeps the number of frames and the head pools
        globally, so FLOPs are linear in T.
        """
        if (self.published_flops is None or self.resolution != self.published_resolution
                or self.temporal_stride != 1):
            return None
        return self.published_flops * self.frames / self.published_frames

    def replace(self, **overrides: object) -> "X3DConfig":
        """A copy with ``overrides`` applied (validated); unknown keys are an error."""
        fields = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ConfigError(f"{self.name}: unknown override(s) {unknown}; valid knobs: "
                              "frames, resolution, temporal_stride, num_classes, dropout, width_factor, depth_factor, "
                              "bottleneck_factor, se_ratio, head_dim")
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict:
        """JSON-serialisable dict of every field (plus ``"family": "x3d"``)."""
        return {"family": "x3d", **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "X3DConfig":
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        family = data.pop("family", "x3d")
        if family != "x3d":
            raise ConfigError(f"config of family {family!r} is not an X3D config")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ConfigError(f"X3D config has unknown fields {unknown}: written by a newer vmf-deploy?")
        return cls(**data)


def _bn(channels: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(channels, eps=1e-5, momentum=0.1)


class SqueezeExcitation(nn.Module):
    """Channel attention: global mean → 1×1×1 conv → ReLU → 1×1×1 conv → sigmoid → scale."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv3d(channels, reduced, 1, bias=True)
        self.fc2 = nn.Conv3d(reduced, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale each channel of ``x`` by its excitation."""
        s = x.mean(dim=(2, 3, 4), keepdim=True)
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))


class X3DStem(nn.Module):
    """(2+1)D stem: 1×3×3 conv stride (1,2,2), depthwise 5×1×1 temporal conv, BN, ReLU."""

    def __init__(self, out_channels: int, temporal_stride: int) -> None:
        super().__init__()
        self.conv_xy = nn.Conv3d(3, out_channels, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False)
        self.conv_t = nn.Conv3d(out_channels, out_channels, (5, 1, 1), stride=(temporal_stride, 1, 1),
                                padding=(2, 0, 0), groups=out_channels, bias=False)
        self.bn = _bn(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the stem."""
        return torch.relu(self.bn(self.conv_t(self.conv_xy(x))))


class X3DBlock(nn.Module):
    """Residual inverted bottleneck with a 3×3×3 depthwise conv, optional SE and swish."""

    def __init__(self, in_channels: int, inner: int, out_channels: int, spatial_stride: int, se_reduced: int) -> None:
        super().__init__()
        stride = (1, spatial_stride, spatial_stride)
        self.conv_a = nn.Conv3d(in_channels, inner, 1, bias=False)
        self.bn_a = _bn(inner)
        self.conv_b = nn.Conv3d(inner, inner, 3, stride=stride, padding=1, groups=inner, bias=False)
        self.bn_b = _bn(inner)
        self.se = SqueezeExcitation(inner, se_reduced) if se_reduced > 0 else None
        self.conv_c = nn.Conv3d(inner, out_channels, 1, bias=False)
        self.bn_c = _bn(out_channels)
        # pytorchvideo: a conv shortcut when the shape changes; its BN only when the width does.
        self.shortcut = None
        if in_channels != out_channels or spatial_stride > 1:
            conv = nn.Conv3d(in_channels, out_channels, 1, stride=stride, bias=False)
            self.shortcut = nn.Sequential(conv, _bn(out_channels)) if in_channels != out_channels else conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        y = torch.relu(self.bn_a(self.conv_a(x)))
        y = self.bn_b(self.conv_b(y))
        if self.se is not None:
            y = self.se(y)
        y = self.bn_c(self.conv_c(nn.functional.silu(y)))
        return torch.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class X3DHead(nn.Module):
    """1×1×1 conv + BN + ReLU, global average pool, Linear (no bias) + ReLU, dropout, classifier."""

    def __init__(self, in_channels: int, inner: int, cfg: X3DConfig) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_channels, inner, 1, bias=False)
        self.bn = _bn(inner)
        self.fc = nn.Linear(inner, cfg.head_dim, bias=False)
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(cfg.head_dim, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits from the last stage's features."""
        x = torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3, 4))
        return self.classifier(self.dropout(torch.relu(self.fc(x))))


class X3D(nn.Module):
    """X3D network: input ``(B, 3, T, H, W)`` normalised float32, output logits ``(B, num_classes)``."""

    def __init__(self, cfg: X3DConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.stem = X3DStem(cfg.stem_width, cfg.temporal_stride)
        blocks: list[nn.Module] = []
        in_channels = cfg.stem_width
        for width, depth in zip(cfg.stage_widths, cfg.stage_depths):
            inner = cfg.inner_width(width)
            for i in range(depth):
                se = round_width(inner, cfg.se_ratio) if cfg.se_ratio > 0 and i % 2 == 0 else 0
                blocks.append(X3DBlock(in_channels, inner, width, 2 if i == 0 else 1, se))
                in_channels = width
        self.blocks = nn.Sequential(*blocks)
        self.head = X3DHead(in_channels, cfg.inner_width(cfg.stage_widths[-1]), cfg)
        self._init_weights()

    def _init_weights(self) -> None:
        # pytorchvideo's init_net_weights: Kaiming-normal (fan_out) convs, BN γ=1/β=0,
        # Linear N(0, 0.01) with zero bias.
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits for a batch of normalised clips."""
        return self.head(self.blocks(self.stem(x)))


X3D_XS = X3DConfig(name="x3d-xs", published_frames=4, published_params=3.76e6, published_flops=0.60e9)
"""X3D-XS: published at 4×160² (3.76M params, 0.60 GFLOPs); default input here 64×160²."""

X3D_S = X3DConfig(name="x3d-s", published_frames=13, published_params=3.76e6, published_flops=1.96e9)
"""X3D-S: published at 13×160² (3.76M params, 1.96 GFLOPs); default input here 64×160²."""

for _cfg in (X3D_XS, X3D_S):
    register_model(_cfg.name, _cfg)(X3D)
