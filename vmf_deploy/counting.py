"""Parameter and FLOP counting in the paper's convention.

One fused multiply-add = 1 FLOP (MACs, the fvcore convention) for convolutions,
Linear layers and attention matmuls; BatchNorm in eval mode costs 2 per element;
activations, softmax, LayerNorm, elementwise ops and mean-pooling are free.

:func:`count_flops` is an analytic counter: forward hooks read each module's
shapes and apply the formula of its type. The test suite cross-checks it
against ``torch.utils.flop_counter`` (which counts at the aten level).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from .models.layers import Former, FormerToMobile, MobileToFormer


def count_params(model: nn.Module) -> int:
    """Number of parameters of ``model`` (learnable tensors, buffers excluded)."""
    return sum(p.numel() for p in model.parameters())


def _conv_macs(m: nn.modules.conv._ConvNd, inputs: tuple, output: torch.Tensor) -> int:
    return output.numel() * (m.in_channels // m.groups) * math.prod(m.kernel_size)


def _linear_macs(m: nn.Linear, inputs: tuple, output: torch.Tensor) -> int:
    return output.numel() * m.in_features


def _batchnorm_flops(m: nn.modules.batchnorm._BatchNorm, inputs: tuple, output: torch.Tensor) -> int:
    return 2 * output.numel()


def _bridge_macs(m: MobileToFormer | FormerToMobile, inputs: tuple, output: torch.Tensor) -> int:
    # q·kᵀ and attn·v: every feature-map element meets every token of its group, twice.
    x, tokens = inputs[0], inputs[1]
    tokens_per_group = tokens.shape[1] // (x.shape[2] if m.per_frame else 1)
    return 2 * x.numel() * tokens_per_group


def _former_macs(m: Former, inputs: tuple, output: torch.Tensor) -> int:
    b, n, d = output.shape
    return 2 * b * n * n * d


_RULES: dict[type, Callable[..., int]] = {
    nn.Conv1d: _conv_macs,
    nn.Conv2d: _conv_macs,
    nn.Conv3d: _conv_macs,
    nn.Linear: _linear_macs,
    nn.BatchNorm1d: _batchnorm_flops,
    nn.BatchNorm2d: _batchnorm_flops,
    nn.BatchNorm3d: _batchnorm_flops,
    MobileToFormer: _bridge_macs,
    FormerToMobile: _bridge_macs,
    Former: _former_macs,
}


def flops_by_module(model: nn.Module, input_shape: Sequence[int]) -> dict[str, int]:
    """FLOPs of each counted module (qualified name → FLOPs) for one forward pass.

    Attention matmuls are attributed to their bridge/Former module; Linear layers
    inside those modules are counted separately under their own names.
    """
    counts: dict[str, int] = {}
    handles = []
    for name, module in model.named_modules():
        rule = _RULES.get(type(module))
        if rule is None:
            continue

        def hook(mod: nn.Module, inputs: tuple, output: torch.Tensor, _name: str = name, _rule=rule) -> None:
            counts[_name] = counts.get(_name, 0) + int(_rule(mod, inputs, output))

        handles.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(tuple(input_shape)))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return counts


def count_flops(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Total FLOPs (MACs convention, see module docstring) of one forward pass on ``input_shape``."""
    return sum(flops_by_module(model, input_shape).values())
