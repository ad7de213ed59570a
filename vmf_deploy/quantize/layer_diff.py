"""Per-layer numeric diff of a quantized ONNX graph against its fp32 graph, named by reference-model module.

Built on onnxruntime's ``qdq_loss_debug``: both graphs are run with every intermediate tensor
made an output, and each tensor the QDQ graph quantizes is matched with the same tensor of the
fp32 graph. Two SQNRs per tensor:

* ``sqnr_db`` (onnxruntime's ``xmodel_err``): the QDQ graph's value against the fp32 graph's at
  that point, everything upstream quantized: it only goes down along the network;
* ``local_db`` (``qdq_err``): that tensor against its own quantize-dequantize round trip, the
  error this one quantization adds: a tensor whose range does not fit 8 bits (a softmax over
  thousands of positions, ranges calibrated on the wrong data) stands out here.

The layers a failing gate prints are the ones with the lowest ``local_db`` and the steepest
``sqnr_db`` drops; each row names the module of the reference model it belongs to.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .onnx_modules import node_modules
from .onnx_qdq import ClipReader, quiet_quantizer


@dataclass(frozen=True)
class LayerError:
    """One quantized tensor of the graph, in graph order.

    Attributes:
        tensor: the tensor's name in the fp32 graph.
        node: the node that produces it, and ``op_type`` its type.
        module: the reference-model module the node belongs to (``""`` if unknown).
        sqnr_db: fp32 graph vs QDQ graph at this tensor (dB).
        local_db: this tensor vs its own quantize-dequantize (dB); ``None`` for a graph input.
    """

    tensor: str
    node: str
    op_type: str
    module: str
    sqnr_db: float
    local_db: float | None

    def to_dict(self) -> dict:
        """JSON form."""
        return asdict(self)


def _finite(value: float) -> float:
    return float(value) if math.isfinite(value) else (200.0 if value > 0 else -200.0)


def onnx_layer_diff(float_path: Path, qdq_path: Path, clips: Sequence[np.ndarray], module_paths: set[str],
                    work_dir: Path) -> list[LayerError]:
    """Every quantized tensor of ``qdq_path`` against ``float_path`` (the graph it was quantized from), on ``clips``.

    ``float_path`` must be the graph ``quantize_static`` read (tensor names are matched).
    """
    import onnx
    from onnxruntime.quantization.qdq_loss_debug import (collect_activations, compute_activation_error,
                                                         create_activation_matching,
                                                         modify_model_output_intermediate_tensors)

    float_aug, qdq_aug = work_dir / "float-debug.onnx", work_dir / "qdq-debug.onnx"
    with quiet_quantizer():
        modify_model_output_intermediate_tensors(str(float_path), str(float_aug))
        modify_model_output_intermediate_tensors(str(qdq_path), str(qdq_aug))
        float_acts = collect_activations(str(float_aug), ClipReader(clips))
        qdq_acts = collect_activations(str(qdq_aug), ClipReader(clips))
    float_aug.unlink(missing_ok=True)
    qdq_aug.unlink(missing_ok=True)
    errors = compute_activation_error(create_activation_matching(qdq_acts, float_acts))

    proto = onnx.load(str(float_path))
    producers = {out: (i, node) for i, node in enumerate(proto.graph.node) for out in node.output}
    modules = node_modules(proto.graph, module_paths)
    rows = []
    for tensor, err in errors.items():
        index, node = producers.get(tensor, (-1, None))
        rows.append((index, LayerError(
            tensor=tensor, node=node.name if node is not None else "(graph input)",
            op_type=node.op_type if node is not None else "input",
            module=modules.get(node.name, "") if node is not None else "input",
            sqnr_db=_finite(err["xmodel_err"]),
            local_db=_finite(err["qdq_err"]) if "qdq_err" in err else None)))
    return [row for _, row in sorted(rows, key=lambda r: r[0])]


def worst_layers(layers: Sequence[LayerError], count: int = 5) -> list[tuple[LayerError, float]]:
    """The ``count`` layers that add the most error: ``(layer, drop)`` by lowest ``local_db``, then steepest drop.

    ``drop`` is how many dB this tensor's ``sqnr_db`` is below the lowest before it: how much worse
    the network got here (0 for the first tensor).
    """
    drops: list[float] = []
    lowest = None
    for layer in layers:
        drops.append(0.0 if lowest is None else max(lowest - layer.sqnr_db, 0.0))
        lowest = layer.sqnr_db if lowest is None else min(lowest, layer.sqnr_db)
    ranked = sorted(zip(layers, drops),
                    key=lambda x: (x[0].local_db if x[0].local_db is not None else 200.0) - x[1])
    return ranked[:count]


def format_worst(layers: Sequence[LayerError], count: int = 5) -> str:
    """The worst layers as lines for an error message, each naming its module."""
    lines = []
    for layer, drop in worst_layers(layers, count):
        local = "n/a" if layer.local_db is None else f"{layer.local_db:.1f} dB"
        lines.append(f"  {layer.module or '(unknown module)'}: {layer.op_type} {layer.node} output: own quantization "
                     f"{local}, network SQNR here {layer.sqnr_db:.1f} dB (-{drop:.1f} dB at this layer)")
    return "\n".join(lines)


def summarize(layers: Sequence[LayerError], count: int = 5) -> dict:
    """The manifest's per-layer error summary: quantized tensors, the lowest SQNRs and the worst layers."""
    if not layers:
        return {"tensors": 0, "worst": []}
    return {"tensors": len(layers), "min_local_db": min((x.local_db for x in layers if x.local_db is not None),
                                                         default=None),
            "final_sqnr_db": layers[-1].sqnr_db,
            "worst": [{**layer.to_dict(), "drop_db": round(drop, 2)} for layer, drop in worst_layers(layers, count)]}
