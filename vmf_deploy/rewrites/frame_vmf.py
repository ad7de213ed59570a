"""4D ("frames in the batch") forms of the Video Mobile-Former modules.

Each class is built from the 5D module of the same role (``vmf_deploy.models``) and
its already-converted children; see ``frame_layers.py`` for the layout and the op
rules. Feature maps are ``(B*T, C, H, W)``; tokens are kept 2D, ``(B*M, d)`` (``M`` all of a
clip's tokens), so each token ``Linear`` lowers to one GEMM without the two reshapes a 3D
input costs (ExecuTorch's lowering time is per node; see ``benchmarks/NOTES.md``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..models import layers as L
from .frame_layers import (FrameRepeat, clip_to_frames, first_token_of, global_mean, hard_sigmoid,
                           mean_over_frames, merge_heads, scaled_linear, split_heads)


class FrameMobileToFormer(nn.Module):
    """Mobile→Former cross-attention on frames: the tokens attend over every position of the clip.

    Keys/values are the raw feature map, read frame by frame: ``(B·T·heads, ch, H·W)`` is a
    view of the frames, so the map is never re-laid out. The scores ``q @ x`` come per frame
    ``(B·T·heads, M, H·W)``; only they (``M/ch`` the map's size) are re-laid out for the softmax over
    all ``T·H·W`` positions and back, and the attended values are the per-frame ``x @ attnᵀ``
    summed over frames. Measured on VMF-2G's first bridge (ExecuTorch 1.5.1, XNNPACK, 2 threads):
    15.4 → 10.4 ms against the earlier form, which permuted the map to ``(B, heads, ch, T·H·W)``
    and ran ``kv @ attnᵀ`` as one GEMM with ``K = T·H·W`` and nothing to parallelise over.

    Constants are folded into the projections: the attention scale into ``to_q``, the gate
    ``2·hard_sigmoid(g) = hardtanh(g + 3, 0, 6) / 3`` into ``gate``'s bias (+3) and ``proj``'s
    weight (/3), and for clip tokens the frame count that turns the frames' mean into their sum
    into ``proj``'s weight too.
    """

    def __init__(self, bridge: L.MobileToFormer, norm: nn.Module, frames: int) -> None:
        super().__init__()
        self.heads, self.per_frame = bridge.heads, bridge.per_frame
        self.to_q = scaled_linear(bridge.to_q, bridge.scale, bridge.scale)
        self.gate = scaled_linear(bridge.gate, 1.0, bias_shift=3.0)
        self.proj = scaled_linear(bridge.proj, (1 if bridge.per_frame else frames) / 3.0)
        self.norm = norm
        self.repeat = FrameRepeat(1 if bridge.per_frame else frames)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor, batch: int) -> torch.Tensor:
        """Return the updated tokens ``(B*M_total, d)``."""
        bt, c, h, w = x.shape
        heads, ch = self.heads, c // self.heads
        b = bt if self.per_frame else batch  # the attention's batch: frames, or clips
        m = tokens.shape[0] // b
        q = split_heads(self.to_q(tokens), b, heads)  # (b*heads, M, ch)
        if self.per_frame:  # the frames are the batch already: one softmax per frame
            kv = x.reshape(bt * heads, ch, h * w)
            attn = torch.softmax(torch.bmm(q, kv), dim=-1)  # (B*T*heads, M, HW)
            out_t = torch.bmm(kv, attn.transpose(1, 2))  # (B*T*heads, ch, M)
        else:
            out_t = self._attend_clip(x, q, batch)
        if b == 1:
            out = out_t.permute(2, 0, 1).reshape(m, c)
        else:
            out = out_t.reshape(b, heads, ch, m).permute(0, 3, 1, 2).reshape(b * m, c)
        out = out * F.hardtanh(self.gate(tokens), 0.0, 6.0)
        return self.norm(tokens + self.proj(out))

    def _attend_clip(self, x: torch.Tensor, q: torch.Tensor, batch: int) -> torch.Tensor:
        """Clip tokens ``q (B*heads, M, ch)`` over all frames of ``x``.

        Returns the frames' mean of the attended values, ``(B*heads, ch, M)`` (``proj`` carries the × T).
        """
        bt, c, h, w = x.shape
        t, heads, m = bt // batch, self.heads, q.shape[1]
        ch, hw = c // heads, h * w
        if self.repeat.frames != t:
            raise ValueError(f"FrameMobileToFormer was converted for {self.repeat.frames} frames, got {t}")
        feats = x.reshape(bt * heads, ch, hw)  # per frame and head, a view of the frames
        q_frames = self.repeat(q.reshape(batch, heads * m * ch)).reshape(bt * heads, m, ch)
        scores = torch.bmm(q_frames, feats)  # (B*T*heads, M, HW)
        scores = scores.reshape(batch, t, heads * m, hw).permute(0, 2, 1, 3).reshape(batch, heads * m, t * hw)
        attn = torch.softmax(scores, dim=-1)  # over the clip's T*HW positions
        if batch == 1:  # one 4D permute straight to the (frame, head) batches of attnᵀ
            attn_t = attn.reshape(heads, m, t, hw).permute(2, 0, 3, 1).reshape(bt * heads, hw, m)
        else:
            attn_t = attn.reshape(batch, heads * m, t, hw).permute(0, 2, 1, 3).reshape(bt * heads, m, hw)
            attn_t = attn_t.transpose(1, 2)
        per_frame = torch.bmm(feats, attn_t)  # (B*T*heads, ch, M): each frame's share
        return mean_over_frames(per_frame.reshape(bt, heads * ch * m), batch).reshape(batch * heads, ch, m)


class FrameFormerToMobile(nn.Module):
    """Former→Mobile cross-attention on frames: every position reads the tokens, frame by frame.

    Logits are computed transposed, ``k @ x`` → ``(B*T*heads, M, H·W)``, so the feature map
    is never transposed; only the small logits are transposed around the softmax over tokens.
    The attention scale is folded into ``to_k``.
    """

    def __init__(self, bridge: L.FormerToMobile, frames: int) -> None:
        super().__init__()
        self.heads, self.per_frame = bridge.heads, bridge.per_frame
        self.to_k, self.to_v = scaled_linear(bridge.to_k, bridge.scale, bridge.scale), bridge.to_v
        self.repeat = FrameRepeat(1 if bridge.per_frame else frames)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor, batch: int) -> torch.Tensor:
        """Return the feature map plus what it read from the tokens."""
        bt, c, h, w = x.shape
        t = bt // batch
        heads, ch = self.heads, c // self.heads
        b = bt if self.per_frame else batch
        k = split_heads(self.to_k(tokens), b, heads)  # (b*heads, M, ch)
        v_t = split_heads(self.to_v(tokens), b, heads, keys_last=True)  # (b*heads, ch, M)
        if not self.per_frame:
            if self.repeat.frames != t:
                raise ValueError(f"FrameFormerToMobile was converted for {self.repeat.frames} frames, got {t}")
            k = self.repeat(k.reshape(batch, -1)).reshape(bt * heads, *k.shape[1:])
            v_t = self.repeat(v_t.reshape(batch, -1)).reshape(bt * heads, *v_t.shape[1:])
        logits = torch.bmm(k, x.reshape(bt * heads, ch, h * w))  # (B*T*heads, M, HW)
        attn = torch.softmax(logits.transpose(1, 2), dim=-1).transpose(1, 2)  # softmax over the tokens
        return x + torch.bmm(v_t, attn).reshape(bt, c, h, w)


class FrameFormer(nn.Module):
    """The Former on the tokens, with delegable LayerNorms and the attention scale folded into ``to_q``."""

    def __init__(self, former: L.Former, norm1: nn.Module, norm2: nn.Module) -> None:
        super().__init__()
        self.heads = former.heads
        self.to_q = scaled_linear(former.to_q, former.scale, former.scale)
        self.proj, self.ffn = former.proj, former.ffn
        self.norm1, self.norm2 = norm1, norm2

    def forward(self, tokens: torch.Tensor, batch: int) -> torch.Tensor:
        """Return the updated tokens ``(B*M, d)``; each clip's ``M`` tokens attend to each other."""
        q = split_heads(self.to_q(tokens), batch, self.heads)  # (B*heads, M, dh)
        kv = split_heads(tokens, batch, self.heads)
        attn = torch.softmax(torch.bmm(q, kv.transpose(1, 2)), dim=-1)
        out = merge_heads(torch.bmm(attn, kv), batch)
        tokens = self.norm1(tokens + self.proj(out))
        return self.norm2(tokens + self.ffn(tokens))


def _split_coefficients(s: torch.Tensor, channels: int) -> torch.Tensor:
    """Average the two halves of the DyReLU head's ``2C`` outputs (``reshape(2, C).mean``)."""
    return (s[:, :channels] + s[:, channels:]) * 0.5


def _dyrelu(x: torch.Tensor, a1: torch.Tensor) -> torch.Tensor:
    """``max(a1·x, (a1 − 1)·x)`` with broadcastable slopes."""
    return torch.maximum(a1 * x, (a1 - 1.0) * x)


class FrameDyReLU4D(nn.Module):
    """Frame-level DyReLU on frames: per-frame 4D spatial means, the token half of ``fc1`` broadcast.

    ``fc1(cat(pooled, token0))`` is split into ``fc1_x(pooled) + fc1_t(token0)`` so that the
    clip's token is added by broadcasting instead of being copied per frame.
    """

    def __init__(self, act: L.FrameDyReLU) -> None:
        super().__init__()
        c = act.channels
        self.channels = c
        w, bias = act.fc1.weight.detach(), act.fc1.bias.detach()
        self.fc1_x = nn.Linear(c, w.shape[0])
        self.fc1_t = nn.Linear(w.shape[1] - c, w.shape[0], bias=False)
        with torch.no_grad():
            self.fc1_x.weight.copy_(w[:, :c])
            self.fc1_x.bias.copy_(bias)
            self.fc1_t.weight.copy_(w[:, c:])
        self.fc2 = act.fc2

    def forward(self, x: torch.Tensor, token0: torch.Tensor, batch: int) -> torch.Tensor:
        """Apply the dynamic ReLU; ``token0`` is ``(B, d)`` or ``(B, T, d)``."""
        bt, c = x.shape[:2]
        t = bt // batch
        pooled = x.mean(dim=(2, 3), keepdim=True).reshape(bt, c)
        hidden = self.fc1_x(pooled).reshape(batch, t, -1)
        token_part = self.fc1_t(token0)
        if token_part.dim() == 2:
            token_part = token_part.reshape(batch, 1, -1)
        hidden = (hidden + token_part).reshape(bt, -1)
        s = hard_sigmoid(self.fc2(F.relu(hidden)))
        a1 = 2.0 * _split_coefficients(s, c).reshape(bt, c, 1, 1)
        return _dyrelu(x, a1)


class FrameTokenDyReLU(nn.Module):
    """Token-only DyReLU on frames: the clip's slopes broadcast over its frames."""

    def __init__(self, act: L.TokenDyReLU) -> None:
        super().__init__()
        self.channels, self.fc1, self.fc2 = act.channels, act.fc1, act.fc2

    def forward(self, x: torch.Tensor, token0: torch.Tensor, batch: int) -> torch.Tensor:
        """Apply the dynamic ReLU with slopes from token 0 (frame 0's token with per-frame tokens)."""
        if token0.dim() == 3:
            token0 = token0[:, 0:1].reshape(token0.shape[0], token0.shape[2])
        bt, c, h, w = x.shape
        s = hard_sigmoid(self.fc2(F.relu(self.fc1(token0))))
        a1 = 2.0 * _split_coefficients(s, c).reshape(batch, 1, c, 1)
        return _dyrelu(x.reshape(batch, bt // batch, c, h * w), a1).reshape(bt, c, h, w)


class FrameReLU(nn.Module):
    """``TokenFreeReLU`` on frames (ignores the token)."""

    def forward(self, x: torch.Tensor, token0: torch.Tensor | None = None, batch: int = 1) -> torch.Tensor:  # noqa: ARG002
        """Return ``relu(x)``."""
        return F.relu(x)


class FrameStem(nn.Module):
    """The (2+1)D stem, clip in, frames out: per-frame 1×3×3 conv, temporal depthwise taps, (folded) BN, ReLU."""

    def __init__(self, conv_xy: nn.Module, conv_t: nn.Module, bn: nn.Module, act: nn.Module) -> None:
        super().__init__()
        self.conv_xy, self.conv_t, self.bn, self.act = conv_xy, conv_t, bn, act

    def forward(self, clip: torch.Tensor, batch: int) -> torch.Tensor:
        """Clip ``(B, 3, T, H, W)`` → frames ``(B*T', C0, H/2, W/2)``."""
        frames = self.conv_xy(clip_to_frames(clip), batch)
        return self.act(self.bn(self.conv_t(frames, batch), batch), batch)


class FrameMobileBlock(nn.Module):
    """Inverted bottleneck on frames (children already converted; BNs folded or per-frame)."""

    def __init__(self, block: nn.Module, convert) -> None:  # noqa: ANN001 - the converter callback
        super().__init__()
        self.expand, self.bn1, self.act1 = convert(block.expand), convert(block.bn1), convert(block.act1)
        self.dw, self.bn2, self.act2 = convert(block.dw), convert(block.bn2), convert(block.act2)
        self.project, self.bn3 = convert(block.project), convert(block.bn3)
        self.shortcut = None if block.shortcut is None else convert(block.shortcut)

    def forward(self, x: torch.Tensor, token0: torch.Tensor | None, batch: int) -> torch.Tensor:
        """Return the block output on frames."""
        out = self.act1(self.bn1(self.expand(x, batch), batch), token0, batch)
        out = self.act2(self.bn2(self.dw(out, batch), batch), token0, batch)
        out = self.bn3(self.project(out, batch), batch)
        return out + (x if self.shortcut is None else self.shortcut(x, batch))


class FrameVMFBlock(nn.Module):
    """One VMF block on frames: Mobile→Former, Former, Mobile, Former→Mobile."""

    def __init__(self, block: nn.Module, convert) -> None:  # noqa: ANN001
        super().__init__()
        self.per_frame, self.num_tokens = block.per_frame, block.num_tokens
        self.mobile_to_former = convert(block.mobile_to_former)
        self.former = convert(block.former)
        self.mobile = convert(block.mobile)
        self.former_to_mobile = convert(block.former_to_mobile)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the updated frames and tokens."""
        tokens = self.former(self.mobile_to_former(x, tokens, batch), batch)
        x = self.mobile(x, first_token_of(tokens, batch, self.num_tokens, self.per_frame), batch)
        return self.former_to_mobile(x, tokens, batch), tokens


class FrameVMFHead(nn.Module):
    """The VMF head on frames: bridge, 1×1 conv (+folded BN) → ReLU6, 4D global mean, MLP."""

    def __init__(self, head: nn.Module, convert) -> None:  # noqa: ANN001
        super().__init__()
        self.per_frame, self.num_tokens = head.per_frame, head.num_tokens
        self.mobile_to_former = convert(head.mobile_to_former)
        self.conv, self.bn = convert(head.conv), convert(head.bn)
        self.fc1, self.bn_fc, self.classifier = head.fc1, head.bn_fc, head.classifier

    def forward(self, x: torch.Tensor, tokens: torch.Tensor, batch: int) -> torch.Tensor:
        """Return logits ``(B, num_classes)``."""
        tokens = self.mobile_to_former(x, tokens, batch)
        token0 = first_token_of(tokens, batch, self.num_tokens, self.per_frame)
        if token0.dim() == 3:
            token0 = mean_over_frames(token0.reshape(-1, token0.shape[-1]), batch)
        x = F.relu6(self.bn(self.conv(x, batch), batch))
        x = F.hardswish(global_mean(x, batch))
        x = torch.cat([x, token0], dim=1)
        x = F.hardswish(self.bn_fc(self.fc1(x)))
        return self.classifier(x)


class FrameMobile3DHead(nn.Module):
    """The Mobile3D conv head on frames: 1×1 conv (+folded BN) → ReLU, 4D global mean, MLP."""

    def __init__(self, head: nn.Module, convert) -> None:  # noqa: ANN001
        super().__init__()
        self.conv, self.bn = convert(head.conv), convert(head.bn)
        self.fc1, self.classifier = head.fc1, head.classifier

    def forward(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        """Return logits ``(B, num_classes)``."""
        x = global_mean(F.relu(self.bn(self.conv(x, batch), batch)), batch)
        return self.classifier(F.relu(self.fc1(x)))


class FrameVideoMobileFormer(nn.Module):
    """Video Mobile-Former whose whole forward runs on 4D frames; input and output as the original."""

    def __init__(self, model: nn.Module, convert) -> None:  # noqa: ANN001
        super().__init__()
        self.cfg = model.cfg
        self.tokens = model.tokens
        self.repeat_tokens = FrameRepeat(convert.input_shape(model)[0])  # clip batch, static at export
        self.stem = convert(model.stem)
        self.blocks = nn.ModuleList(convert(b) for b in model.blocks)
        self.head = convert(model.head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, classes)`` for clips ``(B, 3, T, H, W)``."""
        batch = x.shape[0]
        frames = self.stem(x, batch)
        if self.cfg.tokens_per_frame and (frames.shape[0] // batch) * self.cfg.num_tokens != self.tokens.shape[0]:
            raise ValueError(f"tokens_per_frame model was built for {self.tokens.shape[0] // self.cfg.num_tokens} "
                             f"frames after the stem but got {frames.shape[0] // batch}: build it with "
                             f"frames={self.cfg.frames}")
        tokens = self.repeat_tokens(self.tokens.reshape(1, -1)).reshape(-1, self.tokens.shape[1])  # (B*M, d)
        for block in self.blocks:
            frames, tokens = block(frames, tokens, batch)
        return self.head(frames, tokens, batch)


class FrameMobile3D(nn.Module):
    """The Mobile3D baseline on 4D frames; input and output as the original."""

    def __init__(self, model: nn.Module, convert) -> None:  # noqa: ANN001
        super().__init__()
        self.cfg = model.cfg
        self.stem = convert(model.stem)
        self.blocks = nn.ModuleList(convert(b) for b in model.blocks)
        self.head = convert(model.head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, classes)`` for clips ``(B, 3, T, H, W)``."""
        batch = x.shape[0]
        frames = self.stem(x, batch)
        for block in self.blocks:
            frames = block(frames, None, batch)
        return self.head(frames, batch)
