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

``qdq_loss_debug``'s ``collect_activations`` keeps every intermediate tensor of every clip of a
graph (5g at 64 × 224²: killed at 24 GiB on 4 clips; one clip of both graphs still peaked at 23 GiB).
Here both graphs run once per clip and per group of tensors of at most :data:`CHUNK_BYTES`
(onnxruntime computes only the outputs asked for), and only each tensor's sums of squares are
kept: the same SQNRs as ``compute_activation_error`` over the concatenated clips.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .onnx_modules import node_modules
from .onnx_qdq import ClipReader, quiet_quantizer

CHUNK_BYTES = 1 << 30
"""At most this many bytes of intermediate tensors are fetched from one run of a graph."""


@dataclass(frozen=True)
class LayerError:
    """One quantized tensor of the graph, in graph order.

    Attributes:
        tensor: the tensor's name in the fp32 graph.
        node: the node that produces it, and ``op_type`` its type.
        module: the reference-model module the node belongs to (``""`` if unknown).
        sqnr_db: fp32 graph vs QDQ graph at this tensor (dB).
        local_db: this tensor vs its own quantize-dequantize (dB); ``None`` for a graph input.
        input_sqnr_db: the lowest ``sqnr_db`` of the tensors this node reads (``None``: not known); where
            known, a layer's drop is measured from its own inputs, not from everything before it in graph order.
        rounded: whether the quantized program rounds this node's output to int8 (``None``: not known). Where
            known, only rounded nodes are ranked: an fp32 op adds no rounding, though a sum that cancels (a
            LayerNorm's mean) or a sharp softmax shows a low SQNR after it.
    """

    tensor: str
    node: str
    op_type: str
    module: str
    sqnr_db: float
    local_db: float | None
    input_sqnr_db: float | None = None
    rounded: bool | None = None

    def to_dict(self) -> dict:
        """JSON form."""
        return asdict(self)


def _finite(value: float) -> float:
    return float(value) if math.isfinite(value) else (200.0 if value > 0 else -200.0)


def _sqnr_db(signal: float, noise: float) -> float:
    """``20·log10(‖x‖ / ‖x − y‖)`` from the sums of squares, with ``qdq_loss_debug``'s epsilon."""
    eps = float(np.finfo("float").eps)
    return _finite(20 * math.log10(max(math.sqrt(signal), eps) / max(math.sqrt(noise), eps)))


def add_squares(sums: list[float], reference: np.ndarray, candidate: np.ndarray) -> None:
    """Add ``‖reference‖²`` and ``‖reference − candidate‖²`` (float64) to ``sums``."""
    ref = np.asarray(reference, np.float64).ravel()
    diff = ref - np.asarray(candidate, np.float64).ravel()
    sums[0] += float(ref @ ref)
    sums[1] += float(diff @ diff)


def tensor_bytes(proto: Any) -> dict[str, int]:
    """float32 bytes of every tensor of ``proto`` whose shape is known (shape inference's ``value_info``)."""
    sizes = {}
    for info in [*proto.graph.input, *proto.graph.value_info, *proto.graph.output]:
        dims = info.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            sizes[info.name] = 4 * math.prod(d.dim_value for d in dims)
    return sizes


def chunks(names: Sequence[str], sizes: dict[str, int], default: int, budget: int) -> list[list[str]]:
    """``names`` in order, grouped so that each group's ``sizes`` (``default`` when unknown) sum to at most ``budget``."""
    groups: list[list[str]] = [[]]
    total = 0
    for name in names:
        size = sizes.get(name, default)
        if groups[-1] and total + size > budget:
            groups.append([])
            total = 0
        groups[-1].append(name)
        total += size
    return [group for group in groups if group]


def activation_errors(float_aug: Path, qdq_aug: Path, clips: Sequence[np.ndarray], sizes: dict[str, int],
                      budget: int = CHUNK_BYTES) -> dict[str, dict[str, float]]:
    """``compute_activation_error``'s ``{tensor: {"qdq_err", "xmodel_err"}}`` (dB) over ``clips``, in bounded memory.

    ``float_aug`` / ``qdq_aug``: the graphs with every intermediate tensor as an output
    (``modify_model_output_intermediate_tensors``); ``sizes``: each tensor's bytes in the float graph
    (:func:`tensor_bytes`), which sets how many are fetched per run (a matched tensor is fetched
    three times: float, before and after its quantize-dequantize).
    """
    import onnxruntime as ort
    from onnxruntime.quantization.qdq_loss_debug import _TENSOR_SAVE_POSTFIX, create_activation_matching

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # as collect_activations
    sessions = {kind: ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
                for kind, path in (("float", float_aug), ("qdq", qdq_aug))}
    saved = {kind: {out.name[:-len(_TENSOR_SAVE_POSTFIX)]: out.name for out in session.get_outputs()
                    if out.name.endswith(_TENSOR_SAVE_POSTFIX)} for kind, session in sessions.items()}
    matching = create_activation_matching({name: [name] for name in saved["qdq"]},  # names in place of values
                                          {name: [name] for name in saved["float"]})
    sums: dict[str, dict[str, list[float]]] = {name: {"qdq_err": [0.0, 0.0]} for name in matching}
    default = 4 * math.prod(np.shape(clips[0])) if clips else 0
    for group in chunks(list(matching), {n: 3 * b for n, b in sizes.items()}, 3 * default, budget):
        float_names = [matching[n]["float"][0] for n in group if matching[n].get("float")]
        qdq_names = sorted({matching[n][k][0] for n in group for k in ("pre_qdq", "post_qdq")})
        for feed in ClipReader(clips):
            values = dict(zip(qdq_names, sessions["qdq"].run([saved["qdq"][n] for n in qdq_names], feed),
                              strict=True))
            if float_names:
                values.update({("float", n): v for n, v in zip(
                    float_names, sessions["float"].run([saved["float"][n] for n in float_names], feed), strict=True)})
            for name in group:
                match = matching[name]
                post = values[match["post_qdq"][0]]
                add_squares(sums[name]["qdq_err"], values[match["pre_qdq"][0]], post)
                if match.get("float"):
                    add_squares(sums[name].setdefault("xmodel_err", [0.0, 0.0]),
                                 values[("float", match["float"][0])], post)
            del values
    return {name: {key: _sqnr_db(*pair) for key, pair in tensor.items()} for name, tensor in sums.items()}


def onnx_layer_diff(float_path: Path, qdq_path: Path, clips: Sequence[np.ndarray], module_paths: set[str],
                    work_dir: Path) -> list[LayerError]:
    """Every quantized tensor of ``qdq_path`` against ``float_path`` (the graph it was quantized from), on ``clips``.

    ``float_path`` must be the graph ``quantize_static`` read (tensor names are matched).
    """
    import onnx
    from onnxruntime.quantization.qdq_loss_debug import modify_model_output_intermediate_tensors

    proto = onnx.load(str(float_path))
    float_aug, qdq_aug = work_dir / "float-debug.onnx", work_dir / "qdq-debug.onnx"
    with quiet_quantizer():
        modify_model_output_intermediate_tensors(str(float_path), str(float_aug))
        modify_model_output_intermediate_tensors(str(qdq_path), str(qdq_aug))
        errors = activation_errors(float_aug, qdq_aug, clips, tensor_bytes(proto))
    float_aug.unlink(missing_ok=True)
    qdq_aug.unlink(missing_ok=True)

    producers = {out: (i, node) for i, node in enumerate(proto.graph.node) for out in node.output}
    modules = node_modules(proto.graph, module_paths)
    rows = []
    for tensor, err in errors.items():
        index, node = producers.get(tensor, (-1, None))
        rows.append((index, LayerError(
            tensor=tensor, node=node.name if node is not None else "(graph input)",
            op_type=node.op_type if node is not None else "input",
            module=modules.get(node.name, "") if node is not None else "input",
            sqnr_db=err["xmodel_err"],
            local_db=err.get("qdq_err"))))
    return [row for _, row in sorted(rows, key=lambda r: r[0])]


def worst_layers(layers: Sequence[LayerError], count: int = 5) -> list[tuple[LayerError, float]]:
    """The ``count`` layers that add the most error: ``(layer, drop)`` by lowest ``local_db``, then steepest drop.

    ``drop`` is how many dB this tensor's ``sqnr_db`` is below the lowest before it: how much worse
    the network got here (0 for the first tensor). Where the rows know their inputs' SQNR and whether they
    are rounded (:func:`~.pt2e_layer_diff.layer_diff`), only the rounded layers are ranked, by the noise they add
    to their own inputs' (``10^(-SQNR/10)``, a fraction of the signal), and ``drop`` is from those inputs: in a
    network of parallel paths the lowest SQNR so far may be another path's, and a drop of many dB from an exact
    input (the first conv) can be less noise than a drop of 2 dB at 20 dB.
    """
    if any(layer.input_sqnr_db is not None for layer in layers):
        def before(layer: LayerError) -> float:
            return layer.input_sqnr_db if layer.input_sqnr_db is not None else layer.sqnr_db

        candidates = sorted((layer for layer in layers if layer.rounded), reverse=True,
                            key=lambda layer: 10 ** (-layer.sqnr_db / 10) - 10 ** (-before(layer) / 10))
        return [(layer, max(before(layer) - layer.sqnr_db, 0.0)) for layer in candidates[:count]]
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
