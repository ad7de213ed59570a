"""Configuration dataclasses of Video Mobile-Former and the Mobile3D baselines.

Every variant is a frozen :class:`VMFConfig`; ablation knobs are validated in
``__post_init__`` so an invalid value fails before any module is built.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

DW_CONV_TYPES = ("3d", "2d", "2plus1d")
ACTIVATIONS = ("frame_dyrelu", "dyrelu", "relu")
TEMPORAL_DOWNSAMPLING = ("stem", "stages")


class ConfigError(ValueError):
    """An invalid variant name or ablation knob value."""


@dataclass(frozen=True)
class VMFConfig:
    """Architecture of one Video Mobile-Former (or Mobile3D) variant.

    Attributes:
        name: registry name of the variant.
        blocks: Mobile blocks per stage (4 stages), before ``depth_multiplier``.
        dim: stem width; stage ``i`` has width ``dim * 2**i``.
        exp: expansion ratio; a block's hidden width is ``round(exp * C_out)``.
        frames: default number of input frames (one clip covering the video).
        resolution: default square input resolution.
        temporal_stride: total temporal stride (at the stem by default).
        num_tokens: global tokens M (for the whole video, or per frame).
        token_dim: dimension d of the global tokens.
        tokens_per_frame: use T'×M tokens, each group of M bound to one frame.
        temporal_downsampling: ``"stem"`` (stride at the stem) or ``"stages"``
            (stride 2 at the start of successive stages instead).
        depth_multiplier: multiplies the blocks of every stage (k, 2k, 3k, 2k).
        dw_conv: depthwise conv of Mobile blocks: ``"3d"`` (3×3×3),
            ``"2d"`` (1×3×3) or ``"2plus1d"`` (1×3×3 then 3×1×1).
        activation: ``"frame_dyrelu"``, ``"dyrelu"`` (token-only) or ``"relu"``.
        mobile_only: Mobile3D baseline: no Former, no bridges, ReLU, conv head.
        former_heads: heads of the Former's self-attention.
        bridge_heads: heads of the cross-attention bridges.
        ffn_expansion: expansion of the Former's FFN.
        head_expansion: the head's 1×1×1 conv widens C4 to ``head_expansion * C4``.
        head_hidden: width of the classifier's hidden Linear.
        num_classes: number of output classes (Kinetics-400).
        dropout: dropout before the classifier.
        paper_params / paper_flops: the paper's Table 1 values (None for baselines).
    """

    name: str
    blocks: tuple[int, int, int, int]
    dim: int
    exp: float
    frames: int
    resolution: int
    temporal_stride: int
    num_tokens: int = 6
    token_dim: int = 128
    tokens_per_frame: bool = False
    temporal_downsampling: str = "stem"
    depth_multiplier: int = 1
    dw_conv: str = "3d"
    activation: str = "frame_dyrelu"
    mobile_only: bool = False
    former_heads: int = 4
    bridge_heads: int = 2
    ffn_expansion: int = 2
    head_expansion: int = 6
    head_hidden: int = 1920
    num_classes: int = 400
    dropout: float = 0.2
    paper_params: float | None = None
    paper_flops: float | None = None

    def __post_init__(self) -> None:
        def fail(knob: str, value: object, expected: str) -> None:
            raise ConfigError(f"{self.name}: invalid {knob}={value!r}; expected {expected}.")

        if len(self.blocks) != 4 or any(not isinstance(b, int) or b < 1 for b in self.blocks):
            fail("blocks", self.blocks, "4 positive integers")
        if not isinstance(self.num_tokens, int) or isinstance(self.num_tokens, bool) or self.num_tokens < 1:
            fail("num_tokens", self.num_tokens, "a positive integer")
        if not isinstance(self.tokens_per_frame, bool):
            fail("tokens_per_frame", self.tokens_per_frame, "True or False")
        if self.temporal_stride not in (1, 2, 4, 8, 16):
            fail("temporal_stride", self.temporal_stride, "one of 1, 2, 4, 8, 16")
        if self.temporal_downsampling not in TEMPORAL_DOWNSAMPLING:
            fail("temporal_downsampling", self.temporal_downsampling, f"one of {TEMPORAL_DOWNSAMPLING}")
        if self.temporal_downsampling == "stages" and self.temporal_stride > 16:
            fail("temporal_stride", self.temporal_stride, "at most 16 with stage downsampling (4 stages × 2)")
        if self.tokens_per_frame and self.temporal_downsampling == "stages":
            fail("tokens_per_frame", True, "False with temporal_downsampling='stages' (frames change per stage)")
        if not isinstance(self.depth_multiplier, int) or isinstance(self.depth_multiplier, bool) or self.depth_multiplier < 1:
            fail("depth_multiplier", self.depth_multiplier, "a positive integer")
        if self.dw_conv not in DW_CONV_TYPES:
            fail("dw_conv", self.dw_conv, f"one of {DW_CONV_TYPES}")
        if self.activation not in ACTIVATIONS:
            fail("activation", self.activation, f"one of {ACTIVATIONS}")
        if self.mobile_only and self.activation != "relu":
            fail("activation", self.activation, "'relu' for a Mobile3D baseline (it has no tokens)")
        if self.frames < 1 or self.resolution < 32:
            fail("frames/resolution", (self.frames, self.resolution), "frames >= 1 and resolution >= 32")
        if self.token_dim % self.former_heads:
            fail("former_heads", self.former_heads, f"a divisor of token_dim={self.token_dim}")

    # ----- derived quantities -------------------------------------------------
    @property
    def stage_blocks(self) -> tuple[int, ...]:
        """Blocks per stage after the depth multiplier."""
        return tuple(b * self.depth_multiplier for b in self.blocks)

    @property
    def stage_widths(self) -> tuple[int, ...]:
        """Output channels of the four stages."""
        return tuple(self.dim * 2**i for i in range(4))

    def hidden_width(self, out_channels: int) -> int:
        """Expanded width of a Mobile block with ``out_channels`` outputs (X3D rounding)."""
        return int(round(self.exp * out_channels))

    @property
    def stem_temporal_stride(self) -> int:
        """Temporal stride applied by the stem."""
        return self.temporal_stride if self.temporal_downsampling == "stem" else 1

    def stage_temporal_strides(self) -> tuple[int, ...]:
        """Temporal stride of the first block of each stage."""
        if self.temporal_downsampling == "stem":
            return (1, 1, 1, 1)
        n = int(math.log2(self.temporal_stride))
        return tuple(2 if i < n else 1 for i in range(4))

    def stem_frames(self, frames: int | None = None) -> int:
        """Frames after the stem for an input of ``frames`` frames."""
        t = self.frames if frames is None else frames
        return (t + 2 * 2 - 5) // self.stem_temporal_stride + 1

    @property
    def input_shape(self) -> tuple[int, int, int, int, int]:
        """Default input shape ``(1, 3, frames, resolution, resolution)``."""
        return (1, 3, self.frames, self.resolution, self.resolution)

    def replace(self, **overrides: object) -> "VMFConfig":
        """A copy with ``overrides`` applied (validated); unknown keys are an error."""
        fields = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            knobs = "num_tokens, tokens_per_frame, temporal_stride, temporal_downsampling, depth_multiplier, dw_conv, activation, frames, resolution, num_classes, dropout"
            raise ConfigError(f"{self.name}: unknown override(s) {unknown}; valid knobs include: {knobs}.")
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict:
        """JSON-serialisable dict of every field."""
        d = dataclasses.asdict(self)
        d["blocks"] = list(self.blocks)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "VMFConfig":
        """Inverse of :meth:`to_dict`."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ConfigError(f"config has unknown fields {unknown}: written by a newer vmf-deploy?")
        data = dict(data)
        data["blocks"] = tuple(data["blocks"])
        return cls(**data)
