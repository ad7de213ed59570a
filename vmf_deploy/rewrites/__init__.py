"""Graph rewrites per export target; each rewrite is one file (see ``base.py``).

``REWRITES`` lists ``"module:Class"`` entries in the order they run. Rewrites are
imported lazily. ``run_rewrites`` applies those of one target and stage.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection
from typing import Any

from .base import Rewrite, RewriteResult

REWRITES: list[str] = [
    # entries are added by the rewrite files' authors, e.g. "conv3d_to_conv2d:Conv3dToConv2d"
    # fusions (helper C): module fusions run before fold_batchnorm / frames_to_batch, which convert their modules
    "stem_fusion:StemConvFusion",
    "dyrelu_fusion:DyReLUFusion",
    "bridge_sdpa:BridgeSDPA",
    "onnx_bridge_attention:OnnxBridgeAttention",
    "onnx_depthwise_conv2d:OnnxDepthwiseConv2d",
    # ExecuTorch (helper B): BN folding on the 5D graph, then the whole model → 4D frames-in-batch layout
    "fold_batchnorm:FoldBatchNorm",
    "frames_to_batch:FramesToBatch",
]


def rewrite_classes() -> list[type[Rewrite]]:
    """All registered rewrite classes in run order."""
    out = []
    for entry in REWRITES:
        module, cls = entry.split(":")
        out.append(getattr(importlib.import_module(f"{__name__}.{module}"), cls))
    return out


def run_rewrites(target: str, stage: str, obj: Any, fuse: bool = True,
                 skip: Collection[str] = ()) -> tuple[Any, list[dict]]:
    """Apply the rewrites of ``target`` at ``stage`` to ``obj``.

    With ``fuse=False`` only the ``required`` rewrites run (those the target cannot do without);
    ``skip`` names optional rewrites to leave out (to measure what each one contributes).
    Returns the rewritten object and ``[{"name", "count"}]`` for the manifest.
    """
    applied = []
    for cls in rewrite_classes():
        if target not in cls.targets or cls.stage != stage or not (fuse or cls.required):
            continue
        if cls.name in skip and not cls.required:
            continue
        result = cls().apply(obj)
        obj = result.obj
        applied.append({"name": cls.name, "count": result.count})
    return obj, applied


__all__ = ["REWRITES", "Rewrite", "RewriteResult", "rewrite_classes", "run_rewrites"]
