"""Graph rewrites per export target; each rewrite is one file (see ``base.py``).

``REWRITE_STAGES`` groups the ``"module:Class"`` entries by stage (module fusions, the ONNX
graph, ExecuTorch's frames layout); ``REWRITES`` is all of them in the order they run. Rewrites
are imported lazily. ``run_rewrites`` applies those of one target and stage.
``ALTERNATIVES`` names rewrites that do the same job in different forms: exactly one of
each group runs, chosen by a recipe key.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection, Mapping
from typing import Any

from .base import Rewrite, RewriteResult

REWRITE_STAGES: dict[str, list[str]] = {
    # nn.Module fusions, shared by the targets each one lists; they run before the frames stage,
    # which converts their modules
    "module": [
        "stem_fusion:StemConvFusion",
        "input_conv_split:InputConvChannelSplit",
        "dyrelu_fusion:DyReLUFusion",
        "bridge_sdpa:BridgeSDPA",
        "bridge_position_major:BridgePositionMajor",
    ],
    # on the exported onnx.ModelProto (onnxscript rewriter / onnx-ir)
    "onnx": [
        "onnx_bridge_channels_first:OnnxBridgeChannelsFirst",
        "onnx_bridge_attention:OnnxBridgeAttention",
        "onnx_depthwise_conv2d:OnnxDepthwiseConv2d",
    ],
    # ExecuTorch: BatchNorm folded on the 5D graph, then the whole model in the 4D frames-in-batch layout
    "frames": [
        "fold_batchnorm:FoldBatchNorm",
        "frames_to_batch:FramesToBatch",
    ],
}
"""The rewrites grouped by the stage of the export they belong to, each group in run order."""

REWRITES: list[str] = [entry for group in REWRITE_STAGES.values() for entry in group]
"""Every rewrite as a ``"module:Class"`` entry, in the order they run."""

ALTERNATIVES: dict[str, dict[str, str]] = {
    # recipe key → {value: the rewrite it selects}; the first value is the default
    "bridges": {"channels-first": "onnx_bridge_channels_first", "attention": "onnx_bridge_attention"},
}
"""Groups of alternative rewrites, each chosen by one recipe key (``[onnx] bridges``)."""


def unchosen_alternatives(choices: Mapping[str, str] | None = None) -> set[str]:
    """The rewrites that ``choices`` (recipe key → value; missing keys take the default) leave out.

    Raises ValueError naming the key and its allowed values for an unknown value.
    """
    left_out = set()
    for key, options in ALTERNATIVES.items():
        chosen = (choices or {}).get(key, next(iter(options)))
        if chosen not in options:
            raise ValueError(f"{key} = {chosen!r} is not one of {', '.join(repr(v) for v in options)}")
        left_out |= {name for value, name in options.items() if value != chosen}
    return left_out


def rewrite_classes() -> list[type[Rewrite]]:
    """All registered rewrite classes in run order."""
    out = []
    for entry in REWRITES:
        module, cls = entry.split(":")
        out.append(getattr(importlib.import_module(f"{__name__}.{module}"), cls))
    return out


def run_rewrites(target: str, stage: str, obj: Any, fuse: bool = True, skip: Collection[str] = (),
                 choices: Mapping[str, str] | None = None) -> tuple[Any, list[dict]]:
    """Apply the rewrites of ``target`` at ``stage`` to ``obj``.

    With ``fuse=False`` only the ``required`` rewrites run (those the target cannot do without);
    ``skip`` names optional rewrites to leave out (to measure what each one contributes);
    ``choices`` picks one rewrite of each :data:`ALTERNATIVES` group (default: the first).
    Returns the rewritten object and ``[{"name", "count"}]`` for the manifest.
    """
    skip = set(skip) | unchosen_alternatives(choices)
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


__all__ = ["ALTERNATIVES", "REWRITES", "REWRITE_STAGES", "Rewrite", "RewriteResult", "rewrite_classes", "run_rewrites",
           "unchosen_alternatives"]
