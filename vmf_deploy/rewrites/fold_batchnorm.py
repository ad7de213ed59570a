"""Fold eval-mode BatchNorm into the conv or Linear that feeds it.

The pairs are found on the dataflow, not guessed from module order: a meta-device copy
of the model runs once on its export shape (``model.example_input_shape`` or
``model.cfg.input_shape``), and a BatchNorm (1d/2d/3d) is folded when its input is the
output of a Conv (1d/2d/3d) or Linear module used by nothing else. The conv's
weight and bias absorb ``γ / sqrt(var + eps)`` and ``β − mean · γ / sqrt(var + eps)``
(computed in float64, stored in the conv's dtype) and the BatchNorm becomes
``nn.Identity``. The model is deep-copied; the original is untouched.
"""

from __future__ import annotations

import copy
from collections import Counter

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from .base import Rewrite, RewriteResult

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def example_input(model: nn.Module) -> torch.Tensor:
    """A zero input of the shape the model is exported at: ``model.example_input_shape`` if set
    (``lower_to_executorch`` sets it on its copy), else ``model.cfg.input_shape``."""
    shape = getattr(model, "example_input_shape", None) or getattr(getattr(model, "cfg", None), "input_shape", None)
    if shape is None:
        raise ValueError(f"{type(model).__name__} has neither example_input_shape nor cfg.input_shape: the "
                         "rewrite needs the input shape to trace the model; set model.example_input_shape")
    return torch.zeros(tuple(shape))


class _UseCounter(TorchFunctionMode):
    """Counts the tensor-producing torch calls that read each tensor (keeps the tensors alive so ids stay unique)."""

    def __init__(self) -> None:
        super().__init__()
        self.uses: Counter[int] = Counter()
        self.alive: list[torch.Tensor] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204 - torch protocol
        result = func(*args, **(kwargs or {}))
        outputs = result if isinstance(result, (tuple, list)) else (result,)
        if any(isinstance(o, torch.Tensor) for o in outputs):  # dataflow; x.dim()/x.shape are not uses
            for arg in (*args, *(kwargs or {}).values()):
                if isinstance(arg, torch.Tensor):
                    self.uses[id(arg)] += 1
                    self.alive.append(arg)
        return result


def find_conv_bn_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """``(conv_path, bn_path)`` of every BatchNorm whose input is a Conv/Linear module's output used by nothing else.

    Found by running a meta-device copy once on the export shape with module hooks (which
    tensor each conv produced, which tensor each BatchNorm read) and a function mode counting
    the uses of every tensor: dataflow, not module order.
    """
    meta = copy.deepcopy(model).to("meta")
    produced: dict[int, str] = {}
    read: list[tuple[str, int]] = []
    hooks = []
    for name, module in meta.named_modules():
        if isinstance(module, _CONVS):
            hooks.append(module.register_forward_hook(
                lambda mod, args, out, name=name: produced.__setitem__(id(out), name)))
        elif isinstance(module, _NORMS):
            hooks.append(module.register_forward_pre_hook(
                lambda mod, args, name=name: read.append((name, id(args[0])))))
    counter = _UseCounter()
    try:
        with torch.no_grad(), counter:
            outputs = meta(example_input(model).to("meta"))
    finally:
        for h in hooks:
            h.remove()
    del outputs
    pairs = []
    for bn_path, tensor_id in read:
        conv_path = produced.get(tensor_id)
        if conv_path is not None and counter.uses[tensor_id] == 1 and (conv_path, bn_path) not in pairs:
            pairs.append((conv_path, bn_path))
    return pairs


def fold_into(conv: nn.Module, bn: nn.modules.batchnorm._BatchNorm) -> None:
    """Absorb eval-mode ``bn`` into ``conv`` (a Conv or Linear) in place."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError(f"cannot fold {bn}: it tracks no running statistics")
    with torch.no_grad():
        scale = bn.running_var.double().add(bn.eps).rsqrt()
        if bn.weight is not None:
            scale = scale * bn.weight.double()
        shift = -bn.running_mean.double() * scale
        if bn.bias is not None:
            shift = shift + bn.bias.double()
        weight = conv.weight.double() * scale.reshape(-1, *([1] * (conv.weight.dim() - 1)))
        bias = shift if conv.bias is None else conv.bias.double() * scale + shift
        conv.weight.copy_(weight.to(conv.weight.dtype))
        if conv.bias is None:
            conv.bias = nn.Parameter(bias.to(conv.weight.dtype))
        else:
            conv.bias.copy_(bias.to(conv.bias.dtype))


def _set_module(root: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    setattr(root.get_submodule(parent_path) if parent_path else root, name, module)


class FoldBatchNorm(Rewrite):
    """BatchNorm after a Conv/Linear (sole consumer) → folded into its weights; BN → Identity."""

    name = "fold_batchnorm"
    stage = "module"
    targets = ("executorch",)
    required = True  # XNNPACK cannot fuse BatchNorm3d/1d; unfolded they would fall back to portable kernels

    def apply(self, obj: nn.Module) -> RewriteResult:
        """Return a folded deep copy of ``obj`` (in eval mode) and the number of folds."""
        if obj.training:
            raise ValueError("fold_batchnorm needs an eval-mode model (call model.eval()): training-mode "
                             "BatchNorm uses batch statistics and cannot be folded")
        model = copy.deepcopy(obj)
        pairs = find_conv_bn_pairs(model)
        for conv_path, bn_path in pairs:
            fold_into(model.get_submodule(conv_path), model.get_submodule(bn_path))
            _set_module(model, bn_path, nn.Identity())
        return RewriteResult(model, len(pairs))
