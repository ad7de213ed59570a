"""Rebuild a 5D video model as an equivalent model whose forward runs on 4D frames.

ExecuTorch's XNNPACK delegate takes only 4D tensors and 1D/2D convs, and the portable
kernels reject rank-5 convs. This rewrite converts a model module by module, by type,
into the "frames folded into the batch" layout ``(B*T, C, H, W)`` (``frame_layers.py``,
``frame_vmf.py``): Conv3d → per-temporal-tap Conv2d sums, BatchNorm3d → BatchNorm2d,
LayerNorm → 4D means, the bridges, DyReLU and heads → 4D forms. The converted model
keeps the original's input ``(B, 3, T, H, W)`` and output ``(B, classes)``.

Extending it to a new architecture means registering a converter for each module type
that holds rank-5 logic (``@register_frame_converter(MyBlock)``); Conv3d, BatchNorm3d,
Sequential, LayerNorm and elementwise modules are handled generically. A module with
no converter is an error naming its type, never a silent 5D leftover.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch

from torch import nn

from ..models import blocks as B
from ..models import layers as L
from ..models import vmf as V
from ..models import x3d as X
from . import frame_layers as FL
from . import frame_vmf as FV
from . import frame_x3d as FX
from .base import Rewrite, RewriteResult
from .fold_batchnorm import example_input

CONVERTERS: dict[type, Callable[[nn.Module, "FrameConverter"], nn.Module]] = {}
"""Module type → function building its frame form from the module and the converter."""

ELEMENTWISE = (nn.Identity, nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, nn.SiLU, nn.Sigmoid, nn.GELU,
               nn.Tanh, nn.Dropout)
"""Layout-agnostic modules: applied to frames unchanged."""


class UnsupportedModule(TypeError):
    """A module type the frames rewrite has no converter for."""


def register_frame_converter(*types: type) -> Callable:
    """Register ``fn(module, convert) -> frame module`` for ``types`` (decorator).

    ``convert(child)`` converts a child module; ``convert.input_shape(module)`` is the 5D shape
    of the module's first tensor input at the export shape (for static frame counts).
    """

    def wrap(fn: Callable) -> Callable:
        for t in types:
            CONVERTERS[t] = fn
        return fn

    return wrap


def record_input_shapes(model: nn.Module, shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """Shape of the first tensor input of every submodule for an input of ``shape`` (run on the meta device)."""
    meta = copy.deepcopy(model).to("meta")
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = []
    for name, module in meta.named_modules():
        def hook(mod: nn.Module, args: tuple, name: str = name) -> None:
            tensor = next((a for a in args if isinstance(a, torch.Tensor)), None)
            if tensor is not None and name not in shapes:
                shapes[name] = tuple(tensor.shape)
        hooks.append(module.register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            meta(torch.zeros(shape, device="meta"))
    finally:
        for h in hooks:
            h.remove()
    return shapes


class FrameConverter:
    """Converts a model to its frame form by type, knowing every module's input shape at the export shape."""

    def __init__(self, model: nn.Module, shape: tuple[int, ...]) -> None:
        self.names = {id(m): n for n, m in model.named_modules()}
        self.shapes = record_input_shapes(model, shape)

    def input_shape(self, module: nn.Module) -> tuple[int, ...]:
        """The shape of ``module``'s first tensor input (ValueError if it never ran)."""
        name = self.names.get(id(module))
        if name not in self.shapes:
            raise ValueError(f"{type(module).__name__} ({name}) did not run on the example input; cannot size it")
        return self.shapes[name]

    def __call__(self, module: nn.Module) -> nn.Module:
        """The frame form of ``module``, converting its children recursively (most specific type first)."""
        for cls in type(module).__mro__:
            if cls in CONVERTERS:
                return CONVERTERS[cls](module, self)
        if isinstance(module, ELEMENTWISE):
            return FL.FrameElementwise(module)
        raise UnsupportedModule(
            f"frames_to_batch has no converter for {type(module).__module__}.{type(module).__qualname__}; register "
            "one with vmf_deploy.rewrites.frames_to_batch.register_frame_converter (see frame_vmf.py for examples)")


register_frame_converter(nn.Conv3d)(lambda m, _: FL.FrameConv3d(m))
register_frame_converter(nn.BatchNorm3d)(lambda m, _: FL.FrameBatchNorm(m))
register_frame_converter(nn.LayerNorm)(lambda m, _: FL.DelegableLayerNorm(m))
register_frame_converter(nn.Sequential)(lambda m, convert: FL.FrameSequential([convert(c) for c in m]))
register_frame_converter(B.DepthwiseConv)(lambda m, convert: convert(m.convs))
register_frame_converter(L.TokenFreeReLU)(lambda m, _: FV.FrameReLU())
register_frame_converter(L.FrameDyReLU)(lambda m, _: FV.FrameDyReLU4D(m))
register_frame_converter(L.TokenDyReLU)(lambda m, _: FV.FrameTokenDyReLU(m))
register_frame_converter(L.MobileToFormer)(
    lambda m, convert: FV.FrameMobileToFormer(m, convert(m.norm), frames=convert.input_shape(m)[2]))
register_frame_converter(L.FormerToMobile)(
    lambda m, convert: FV.FrameFormerToMobile(m, frames=convert.input_shape(m)[2]))
register_frame_converter(L.Former)(lambda m, convert: FV.FrameFormer(m, convert(m.norm1), convert(m.norm2)))
register_frame_converter(L.Stem)(
    lambda m, convert: FV.FrameStem(convert(m.conv_xy), convert(m.conv_t), convert(m.bn), convert(m.act)))
register_frame_converter(B.MobileBlock)(FV.FrameMobileBlock)
register_frame_converter(B.VMFBlock)(FV.FrameVMFBlock)
register_frame_converter(B.VMFHead)(FV.FrameVMFHead)
register_frame_converter(B.Mobile3DHead)(FV.FrameMobile3DHead)
register_frame_converter(V.VideoMobileFormer)(FV.FrameVideoMobileFormer)
register_frame_converter(V.Mobile3D)(FV.FrameMobile3D)
register_frame_converter(X.SqueezeExcitation)(FX.FrameSqueezeExcitation)
register_frame_converter(X.X3DStem)(FX.FrameX3DStem)
register_frame_converter(X.X3DBlock)(FX.FrameX3DBlock)
register_frame_converter(X.X3DHead)(FX.FrameX3DHead)
register_frame_converter(X.X3D)(FX.FrameX3D)

_RANK5 = (nn.Conv3d, nn.BatchNorm3d)


class FramesToBatch(Rewrite):
    """The whole network → the frames-in-batch 4D layout (Conv3d → per-tap Conv2d, 4D bridges/means)."""

    name = "frames_to_batch"
    stage = "module"
    targets = ("executorch",)
    required = True  # XNNPACK takes only 4D tensors and 2D convs; portable kernels reject rank-5 convs

    def apply(self, obj: nn.Module) -> RewriteResult:
        """Return the 4D model (built from a deep copy of ``obj``) and the number of rank-5 layers replaced."""
        model = copy.deepcopy(obj).eval()
        count = sum(isinstance(m, _RANK5) for m in model.modules())
        frames = FrameConverter(model, tuple(example_input(model).shape))(model).eval()
        leftover = [type(m).__name__ for m in frames.modules() if isinstance(m, _RANK5)]
        if leftover:  # a custom converter kept a 5D layer
            raise UnsupportedModule(f"frames_to_batch left rank-5 layers in the model: {sorted(set(leftover))}")
        return RewriteResult(frames, count)
