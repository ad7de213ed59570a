"""4D ("frames in the batch") forms of the X3D peer's modules (``vmf_deploy.models.x3d``).

Conv3d and BatchNorm3d inside them are converted generically (``frame_layers.py``); these
classes only re-express the modules that hold rank-5 logic: the Squeeze-Excitation's
global mean, the head's global pool, and the stem/blocks that call their children.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .frame_layers import clip_to_frames, global_mean


class FrameSqueezeExcitation(nn.Module):
    """SE on frames: 4D global mean per clip → two 1×1 convs on ``(B, C, 1, 1)`` → sigmoid, broadcast over frames."""

    def __init__(self, se: nn.Module, convert) -> None:  # noqa: ANN001 - the converter callback
        super().__init__()
        self.fc1, self.fc2 = convert(se.fc1), convert(se.fc2)

    def forward(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        """Scale each channel of every frame by its clip's excitation."""
        bt, c, h, w = x.shape
        pooled = global_mean(x, batch).reshape(batch, c, 1, 1)
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(pooled, batch)), batch))
        return (x.reshape(batch, bt // batch, c, h * w) * s.reshape(batch, 1, c, 1)).reshape(bt, c, h, w)


class FrameX3DStem(nn.Module):
    """X3D stem on frames: per-frame 1×3×3 conv, temporal depthwise taps, (folded) BN, ReLU."""

    def __init__(self, stem: nn.Module, convert) -> None:  # noqa: ANN001
        super().__init__()
        self.conv_xy, self.conv_t, self.bn = convert(stem.conv_xy), convert(stem.conv_t), convert(stem.bn)

    def forward(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        """Frames ``(B*T, 3, H, W)`` → stem features on frames."""
        return F.relu(self.bn(self.conv_t(self.conv_xy(x, batch), batch), batch))


class FrameX3DBlock(nn.Module):
    """X3D bottleneck on frames: 1×1 → 3×3×3 depthwise taps → SE → swish → 1×1, residual, ReLU."""

    def __init__(self, block: nn.Module, convert) -> None:  # noqa: ANN001
        super().__init__()
        self.conv_a, self.bn_a = convert(block.conv_a), convert(block.bn_a)
        self.conv_b, self.bn_b = convert(block.conv_b), convert(block.bn_b)
        self.se = None if block.se is None else convert(block.se)
        self.conv_c, self.bn_c = convert(block.conv_c), convert(block.bn_c)
        self.shortcut = None if block.shortcut is None else convert(block.shortcut)

    def forward(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        """Apply the block to frames."""
        y = F.relu(self.bn_a(self.conv_a(x, batch), batch))
        y = self.bn_b(self.conv_b(y, batch), batch)
        if self.se is not None:
            y = self.se(y, batch)
        y = self.bn_c(self.conv_c(F.silu(y), batch), batch)
        return F.relu(y + (x if self.shortcut is None else self.shortcut(x, batch)))


class FrameX3DHead(nn.Module):
    """X3D head on frames: 1×1 conv (+folded BN) → ReLU, 4D global mean, MLP."""

    def __init__(self, head: nn.Module, convert) -> None:  # noqa: ANN001
        super().__init__()
        self.conv, self.bn = convert(head.conv), convert(head.bn)
        self.fc, self.classifier = head.fc, head.classifier

    def forward(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        """Logits ``(B, classes)``."""
        x = global_mean(F.relu(self.bn(self.conv(x, batch), batch)), batch)
        return self.classifier(F.relu(self.fc(x)))


class FrameX3D(nn.Module):
    """X3D on 4D frames; input ``(B, 3, T, H, W)`` and output as the original."""

    def __init__(self, model: nn.Module, convert) -> None:  # noqa: ANN001
        super().__init__()
        self.cfg = model.cfg
        self.stem, self.blocks, self.head = convert(model.stem), convert(model.blocks), convert(model.head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for clips ``(B, 3, T, H, W)``."""
        batch = x.shape[0]
        return self.head(self.blocks(self.stem(clip_to_frames(x), batch), batch), batch)
