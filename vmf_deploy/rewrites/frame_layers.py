"""4D ("frames folded into the batch") equivalents of the 5D video layers.

A clip ``(B, C, T, H, W)`` is carried as ``(B*T, C, H, W)`` (batch-major, then frame),
so every spatial op is a plain 2D op and every tensor has rank <= 4: the form
ExecuTorch's XNNPACK delegate accepts. Modules that mix frames take the clip batch
``batch`` (a Python int, static under ``torch.export``) and derive the frame count
from ``x.shape[0] // batch``.

Every module here is built from its 5D original and computes the same function up
to fp32 rounding (summation order). Ops are chosen from those the XNNPACK
partitioner claims: conv2d, linear, bmm, add/mul/sub/maximum, hardtanh, softmax
over the last dim, mean over dims (2, 3) of a 4D tensor with keepdim, permute,
view, constant pad and unit-step slices.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def clip_to_frames(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, T, H, W)`` → ``(B*T, C, H, W)`` through a 4D permute.

    One clip takes one reshape and one permute; a batch needs a reshape on each side.
    XNNPACK copies on every reshape (2.7 ms each for 1g's 38.5 MB clip), so the
    one-clip form saves one.
    """
    b, c, t, h, w = x.shape
    if b == 1:
        return x.reshape(c, t, h, w).permute(1, 0, 2, 3)
    return x.reshape(b, c, t, h * w).permute(0, 2, 1, 3).reshape(b * t, c, h, w)


def frames_to_clip(x: torch.Tensor, batch: int) -> torch.Tensor:
    """``(B*T, C, H, W)`` → ``(B, C, T, H, W)`` (for tests and debugging; not used in exported graphs)."""
    bt, c, h, w = x.shape
    return x.reshape(batch, bt // batch, c, h, w).permute(0, 2, 1, 3, 4)


def temporal_taps(x: torch.Tensor, batch: int, kernel: int, stride: int, padding: int) -> list[torch.Tensor]:
    """The frames each temporal tap reads, for a conv of ``kernel`` taps, ``stride`` and zero ``padding``.

    Returns ``kernel`` tensors ``(B*T_out, C, H, W)``: tap ``j`` holds input frames
    ``stride·i + j − padding`` (zeros outside the clip) for ``i < T_out``. Only 4D
    pads, views and unit-step slices are used: a temporal stride is a view
    ``(B, T/s, s, ·)`` plus a slice on the phase axis.
    """
    bt, c, h, w = x.shape
    t = bt // batch
    t_out = (t + 2 * padding - kernel) // stride + 1
    if batch == 1:
        return _frame_taps(x, kernel, stride, padding, t_out)
    frames = x.reshape(batch, t, c, h * w)
    length = max(t + 2 * padding, stride * (t_out - 1) + kernel)
    length = -(-length // stride) * stride  # round up to a multiple of the stride
    pad_after = length - t - padding
    if padding or pad_after:
        frames = F.pad(frames, (0, 0, 0, 0, padding, pad_after))
    frames = frames.reshape(batch, length // stride, stride, c * h * w)
    taps = []
    for j in range(kernel):
        start, phase = divmod(j, stride)
        tap = frames[:, start:start + t_out, phase:phase + 1]
        taps.append(tap.reshape(batch * t_out, c, h, w))
    return taps


def _frame_taps(x: torch.Tensor, kernel: int, stride: int, padding: int, t_out: int) -> list[torch.Tensor]:
    """:func:`temporal_taps` for one clip: frames are dim 0, so taps are slices of it, copied as little as possible.

    No reshape, so XNNPACK keeps the tensor channels-last between convs instead of
    transposing it to NCHW and back around every tap. XNNPACK copies every slice and pad
    (it has no views), so: a tap that reads only real frames slices ``x`` itself (and is
    ``x`` when it reads all of them, the centre tap of a "same" conv); only taps that reach
    past the clip's ends read the zero-padded stack. A strided tap gathers one frame per
    output with a cat; its out-of-clip frames are a single zero frame instead of a padded
    copy of the whole input.
    """
    t = x.shape[0]

    def in_clip(first: int) -> bool:  # does the stride-1 tap starting at input frame ``first`` stay inside?
        return first >= 0 and first + t_out <= t

    if stride == 1:
        padded = None
        taps = []
        for j in range(kernel):
            first = j - padding
            if in_clip(first):
                taps.append(x if (first, t_out) == (0, t) else x[first:first + t_out])
                continue
            if padded is None:
                padded = F.pad(x, (0, 0, 0, 0, 0, 0, padding, padding))
            taps.append(padded[j:j + t_out])
        return taps
    zero = None
    taps = []
    for j in range(kernel):
        pieces = []
        for i in range(t_out):
            f = stride * i + j - padding
            if 0 <= f < t:
                pieces.append(x[f:f + 1])
                continue
            if zero is None:  # exact zeros: frame 0 of a one-frame zero pad in front of the first frame
                zero = F.pad(x[0:1], (0, 0, 0, 0, 0, 0, 1, 0))[0:1]
            pieces.append(zero)
        taps.append(pieces[0] if t_out == 1 else torch.cat(pieces, dim=0))
    return taps


def stacked_clip_frames(clip: torch.Tensor, kernel: int, stride: int, padding: int) -> torch.Tensor:
    """The ``kernel`` input frames of every output of a temporal conv, stacked on channels, read from the clip.

    ``clip`` is ``(B, C, T, H, W)``. Returns ``(B*T_out, C*kernel, H, W)``: channel ``c·kernel + j`` of
    output ``i`` is channel ``c`` of frame ``stride·i + j − padding`` (zeros outside the clip). Those
    ``kernel`` frames are consecutive, so each output's stack is one slice of the clip's time axis
    (zero-padded at its ends), and the stacks are one ``cat``. The clip is read as it is: no
    frames-in-batch transpose, and frames that no output reads (a stride above the kernel) are
    never copied.
    """
    b, c, t, h, w = clip.shape
    t_out = (t + 2 * padding - kernel) // stride + 1
    pieces = []
    for i in range(t_out):
        first = stride * i - padding
        start, stop = max(first, 0), min(first + kernel, t)
        piece = clip[:, :, start:stop]
        before, after = start - first, first + kernel - stop
        if before or after:
            piece = F.pad(piece, (0, 0, 0, 0, before, after))
        pieces.append(piece.reshape(b, 1, c * kernel, h * w))
    return torch.cat(pieces, dim=1).reshape(b * t_out, c * kernel, h, w)


class FrameConv3d(nn.Module):
    """A Conv3d ``kt×kh×kw`` as ``kt`` Conv2d ``kh×kw`` over temporally shifted frames, summed.

    A 1×kh×kw conv (temporal stride allowed) is one Conv2d on the selected frames.
    The bias (e.g. from a folded BatchNorm) is carried by the first tap.
    """

    def __init__(self, conv: nn.Conv3d) -> None:
        super().__init__()
        if conv.dilation[0] != 1 or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError(f"FrameConv3d: unsupported Conv3d {conv} (temporal dilation, non-zero padding mode "
                             "or string padding); only zero-padded, undilated-in-time convs convert")
        kt, kh, kw = conv.kernel_size
        self.kernel, self.stride, self.padding = kt, conv.stride[0], conv.padding[0]
        self.taps = nn.ModuleList()
        for j in range(kt):
            tap = nn.Conv2d(conv.in_channels, conv.out_channels, (kh, kw), stride=conv.stride[1:],
                            padding=conv.padding[1:], dilation=conv.dilation[1:], groups=conv.groups,
                            bias=conv.bias is not None and j == 0)
            with torch.no_grad():
                tap.weight.copy_(conv.weight[:, :, j])
                if tap.bias is not None:
                    tap.bias.copy_(conv.bias)
            self.taps.append(tap)

    def forward(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        """Apply the conv to frames ``(B*T, C, H, W)``; returns ``(B*T_out, C_out, H_out, W_out)``."""
        if self.kernel == 1 and self.stride == 1 and self.padding == 0:
            return self.taps[0](x)
        inputs = temporal_taps(x, batch, self.kernel, self.stride, self.padding)
        out = self.taps[0](inputs[0])
        for tap, frames in zip(self.taps[1:], inputs[1:]):
            out = out + tap(frames)
        return out


class FrameStackedConv3d(nn.Module):
    """A dense Conv3d ``kt×kh×kw`` on the clip as one Conv2d over each output's ``kt`` frames stacked on channels.

    It takes the clip ``(B, C, T, H, W)``, as the network's first conv does, and returns frames.
    :class:`FrameConv3d` runs ``kt`` convs on gathered frames and adds their full-size outputs; here
    :func:`stacked_clip_frames` gathers each output's frames once, straight from the clip, and one
    Conv2d with ``C·kt`` input channels (the Conv3d's weight, whose ``(C, kt)`` axes are already
    adjacent) computes the sum. It pays where the input has few channels, as the stem's RGB: XNNPACK
    transposes the stacked frames to channels-last once, with ``3·kt`` values per pixel, and the
    clip is never turned into frames first (XNNPACK copies a reshape of the program's input, then
    transposes it).
    """

    def __init__(self, conv: nn.Conv3d) -> None:
        super().__init__()
        kt, kh, kw = conv.kernel_size
        if (conv.groups != 1 or conv.dilation[0] != 1 or conv.padding_mode != "zeros"
                or isinstance(conv.padding, str) or conv.padding[0] >= kt):
            raise ValueError(f"FrameStackedConv3d: unsupported Conv3d {conv} (grouped, dilated in time, non-zero "
                             "padding mode, string padding, or temporal padding not below the kernel); use "
                             "FrameConv3d")
        self.kernel, self.stride, self.padding = kt, conv.stride[0], conv.padding[0]
        self.conv = nn.Conv2d(kt * conv.in_channels, conv.out_channels, (kh, kw), stride=conv.stride[1:],
                              padding=conv.padding[1:], dilation=conv.dilation[1:], bias=conv.bias is not None)
        with torch.no_grad():
            self.conv.weight.copy_(conv.weight.reshape(self.conv.weight.shape))
            if conv.bias is not None:
                self.conv.bias.copy_(conv.bias)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """Apply the conv to a clip ``(B, C, T, H, W)``; returns frames ``(B*T_out, C_out, H_out, W_out)``."""
        return self.conv(stacked_clip_frames(clip, self.kernel, self.stride, self.padding))


class FrameBatchNorm(nn.Module):
    """An unfolded BatchNorm3d in eval mode as BatchNorm2d over frames (same per-channel statistics)."""

    def __init__(self, bn: nn.BatchNorm3d) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(bn.num_features, eps=bn.eps, affine=bn.affine,
                                 track_running_stats=bn.track_running_stats)
        self.bn.load_state_dict(bn.state_dict())
        self.bn.eval()

    def forward(self, x: torch.Tensor, batch: int) -> torch.Tensor:  # noqa: ARG002 - uniform frame-module call
        """Normalise frames ``(B*T, C, H, W)``."""
        return self.bn(x)


class FrameElementwise(nn.Module):
    """A layout-agnostic module (ReLU, Hardswish, SiLU, Identity, Dropout, ...) in the frame-module call form."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor, batch: int) -> torch.Tensor:  # noqa: ARG002
        """Apply the wrapped module."""
        return self.module(x)


class FrameSequential(nn.Module):
    """``nn.Sequential`` of frame modules, passing ``batch`` along."""

    def __init__(self, modules: list[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(modules)

    def forward(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        """Apply every layer in order."""
        for layer in self.layers:
            x = layer(x, batch)
        return x


class DelegableLayerNorm(nn.Module):
    """LayerNorm over the last dim written with 4D means (XNNPACK has no layer-norm op).

    ``y = (x − mean) · rsqrt(var + eps) · γ + β`` with the biased variance, as ``nn.LayerNorm``.
    """

    def __init__(self, norm: nn.LayerNorm) -> None:
        super().__init__()
        if len(norm.normalized_shape) != 1:
            raise ValueError(f"DelegableLayerNorm: only LayerNorm over the last dim converts, got {norm}")
        self.eps = norm.eps
        self.weight = None if norm.weight is None else nn.Parameter(norm.weight.detach().clone())
        self.bias = None if norm.bias is None else nn.Parameter(norm.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` over its last dim."""
        shape = x.shape
        rows = x.reshape(1, -1, shape[-1], 1)  # (1, rows, d, 1): mean over dims (2, 3) = over d
        centred = rows - rows.mean(dim=(2, 3), keepdim=True)
        var = (centred * centred).mean(dim=(2, 3), keepdim=True)
        y = (centred * torch.rsqrt(var + self.eps)).reshape(shape)
        if self.weight is not None:
            y = y * self.weight
        if self.bias is not None:
            y = y + self.bias
        return y


def folded_linear(weight: torch.Tensor, bias: torch.Tensor | None, weight_scale: float = 1.0,
                  bias_scale: float = 1.0, bias_shift: float = 0.0) -> nn.Linear:
    """A frozen ``Linear`` computing ``weight_scale·(W x) + bias_scale·b + bias_shift`` (no ``b``: zero).

    Folds a constant scale or offset around a linear map into its parameters, so the lowered
    graph has one node fewer per fold.
    """
    out = nn.Linear(weight.shape[1], weight.shape[0], bias=True)
    b = bias.detach().reshape(-1) if bias is not None else torch.zeros(weight.shape[0])
    with torch.no_grad():
        out.weight.copy_(weight.detach() * weight_scale)
        out.bias.copy_(b * bias_scale + bias_shift)
    return out.requires_grad_(False)


def scaled_linear(linear: nn.Linear, weight_scale: float, bias_scale: float = 1.0,
                  bias_shift: float = 0.0) -> nn.Linear:
    """:func:`folded_linear` of ``linear``'s parameters (``linear`` itself is not modified)."""
    return folded_linear(linear.weight, linear.bias, weight_scale, bias_scale, bias_shift)


def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """``relu6(x + 3) / 6``, ATen's hardsigmoid formula, with Python-scalar constants.

    ``F.hardsigmoid``'s default decomposition lifts its constants as 0-d tensors, which
    ExecuTorch converts in portable kernels at every run; written this way the captured
    graph holds no ``hardsigmoid`` and the lowering needs no extra decomposition pass.
    """
    return F.hardtanh(x + 3.0, 0.0, 6.0) / 6.0


def mean_over_frames(x: torch.Tensor, batch: int) -> torch.Tensor:
    """Mean over frames of per-frame vectors ``(B*T, D)`` → ``(B, D)``, as a 4D mean."""
    bt, d = x.shape
    return x.reshape(batch, bt // batch, d).transpose(1, 2).reshape(batch, d, bt // batch, 1).mean(
        dim=(2, 3), keepdim=True).reshape(batch, d)


def global_mean(x: torch.Tensor, batch: int) -> torch.Tensor:
    """Mean over (T, H, W) of frames ``(B*T, C, H, W)`` → ``(B, C)``: per-frame means, then the frame mean."""
    per_frame = x.mean(dim=(2, 3), keepdim=True).reshape(x.shape[0], x.shape[1])
    return mean_over_frames(per_frame, batch)


class FrameRepeat(nn.Module):
    """``(B, ...)`` → ``(B*T, ...)`` for a static ``T``: each entry repeated for its frames.

    A broadcast multiply by a stored ``ones(1, T, 1)`` (XNNPACK has no expand op; a multiply by
    one is exact).
    """

    def __init__(self, frames: int) -> None:
        super().__init__()
        self.frames = frames
        self.register_buffer("ones", torch.ones(1, frames, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Repeat every batch entry of ``x`` ``frames`` times along the batch dim."""
        if self.frames == 1:
            return x
        b = x.shape[0]
        return (x.reshape(b, 1, -1) * self.ones).reshape(b * self.frames, *x.shape[1:])


def split_heads(x: torch.Tensor, groups: int, heads: int, keys_last: bool = False) -> torch.Tensor:
    """``(groups*M, heads*dh)`` → ``(groups*heads, M, dh)``, or ``(groups*heads, dh, M)`` with ``keys_last``.

    One clip (``groups == 1``) needs a single permute; 3D tensors go straight to ``torch.bmm``.
    """
    n, d = x.shape
    m, dh = n // groups, d // heads
    if groups == 1:
        return x.reshape(m, heads, dh).permute(1, 2, 0) if keys_last else x.reshape(m, heads, dh).transpose(0, 1)
    order = (0, 2, 3, 1) if keys_last else (0, 2, 1, 3)
    split = x.reshape(groups, m, heads, dh).permute(*order)
    return split.reshape(groups * heads, *split.shape[2:])


def merge_heads(x: torch.Tensor, groups: int) -> torch.Tensor:
    """``(groups*heads, M, dh)`` → ``(groups*M, heads*dh)``, the inverse of :func:`split_heads`."""
    gh, m, dh = x.shape
    heads = gh // groups
    if groups == 1:
        return x.transpose(0, 1).reshape(m, heads * dh)
    return x.reshape(groups, heads, m, dh).transpose(1, 2).reshape(groups * m, heads * dh)


def first_token_of(tokens: torch.Tensor, batch: int, num_tokens: int, per_frame: bool) -> torch.Tensor:
    """Token 0 ``(B, d)`` of each clip's tokens ``(B*M, d)``, or ``(B, T, d)`` of every frame, by a unit-step slice."""
    n, d = tokens.shape
    if not per_frame:
        return tokens.reshape(batch, (n // batch) * d)[:, 0:d]
    groups = n // num_tokens  # B*T
    return tokens.reshape(groups, num_tokens * d)[:, 0:d].reshape(batch, groups // batch, d)
