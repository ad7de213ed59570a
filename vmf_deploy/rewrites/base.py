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
from dataclasses import dataclass
from typing import Any


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
