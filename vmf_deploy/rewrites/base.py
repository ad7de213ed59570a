"""The rewrite contract, after onnxruntime's fusion classes: one rewrite per file.

A rewrite declares the target(s) it serves and the stage it runs at:

* ``"module"``: on the PyTorch ``nn.Module`` before capture (module swaps by type,
  e.g. Conv3d → per-tap Conv2d for XNNPACK, bridges → SDPA);
* ``"onnx"``: on the exported ``onnx.ModelProto`` (onnxscript rewriter / onnx-ir).

``apply`` returns the rewritten object and how many times the pattern fired; the
export pipeline records ``{"name", "count"}`` of every rewrite in the manifest.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn


@dataclass(frozen=True)
class RewriteResult:
    """The rewritten object and the number of pattern matches replaced."""

    obj: Any
    count: int


class Rewrite(ABC):
    """One graph rewrite: a pattern, its replacement and a count."""

    name: str = ""
    stage: str = "module"  # "module" or "onnx"
    targets: tuple[str, ...] = ()
    required: bool = False  # True: the target cannot run without it (applied even with --no-fuse)

    @abstractmethod
    def apply(self, obj: Any) -> RewriteResult:
        """Rewrite ``obj`` (an ``nn.Module`` or ``onnx.ModelProto``); never changes its numerics beyond fp32 rounding."""


def swap_modules(model: nn.Module, replacements: Mapping[type, Callable[[nn.Module], nn.Module]],
                 when: Callable[[nn.Module], bool] = lambda module: True) -> int:
    """Replace, in place, every submodule whose exact type is a key (and for which ``when`` holds) by
    ``replacements[type](child)``.

    The replacement keeps the child's train/eval mode. Returns how many modules were replaced.
    """
    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            make = replacements.get(type(child))
            if make is not None and when(child):
                setattr(parent, name, make(child).train(child.training))
                count += 1
    return count


def reclass_modules(model: nn.Module, forms: Mapping[type, type],
                    when: Callable[[nn.Module], bool] = lambda module: True) -> int:
    """Re-class, in place, every submodule whose exact type is a key of ``forms`` (and for which ``when``
    holds) to ``forms[type]``; return how many.

    For forms that are subclasses with the same parameters and buffers: only ``forward`` changes,
    so nothing is copied or re-initialised.
    """
    count = 0
    for module in model.modules():
        form = forms.get(type(module))
        if form is not None and when(module):
            module.__class__ = form
            count += 1
    return count
