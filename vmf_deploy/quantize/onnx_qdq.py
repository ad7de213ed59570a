"""int8 ONNX: onnxruntime's static QDQ quantization of the fp32 artifact, calibrated on real clips.

``quant_pre_process`` (shape inference, ONNX Runtime's basic graph optimisations) and then
``quantize_static(QuantFormat.QDQ, per_channel, activation_type, weight_type, reduce_range)``.
``reduce_range`` quantizes weights to 7 bits: on x86 CPUs without VNNI onnxruntime's u8s8
kernels (``vpmaddubsw``) saturate their 16-bit intermediate sums otherwise (measured here: a
pointwise Conv3d went from 0.078 to 0.015 relative L2 error with it).

What stays fp32 is chosen from the recipe's ``[quantization]`` table: op types
(``Softmax``: a quantized bridge softmax over ``T·H·W`` positions rounds every weight to 0),
activation-by-activation ``MatMul`` (the attention products), and every node inside named
module classes of the reference model (the frame-level DyReLU's coefficient MLP: its hidden
ReLU's output, mostly zeros with a few large values, keeps ~1 dB of SQNR in 8 bits). With
``fp32_module_weights = "int8"`` those modules' ``MatMul`` / ``Gemm`` weights are still stored as
int8 (weight-only, :mod:`.onnx_weight_only`): their activations stay fp32.

With ``fp32_outputs`` the nodes that compute the graph's outputs (the classifier ``Gemm`` and any
reshape after it) stay fp32 too, their weights int8 in the same weight-only form: quantizing the
logits to a u8 grid of (max - min) / 255 erased most of their clip-to-clip differences (the CI
fixture: centered SQNR 12.2 dB with it, 17.5 dB without; docs/int8.md).

Last, the int32 biases' all-zero zero points are dropped (:mod:`.onnx_bias_zero_points`): 1.6% of the file.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..export.targets import INPUT_NAME
from .onnx_bias_zero_points import drop_bias_zero_points
from .onnx_modules import COMPUTE_OP_TYPES, kept_module, node_modules
from .onnx_weight_only import quantize_kept_weights

CALIBRATION_METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}
DATA_MOVEMENT_OP_TYPES = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity")
"""Ops that only move their input's values: the walk back from a graph output goes through them."""
OUTPUT_REASON = "computes a graph output"


@contextlib.contextmanager
def quiet_quantizer() -> Iterator[None]:
    """Hold back onnxruntime.quantization's root-logger warnings (per-tensor notes that are not errors)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def fp32_nodes(proto: Any, options: dict, classes: dict[str, str]) -> dict[str, str]:
    """``{node name: why it stays fp32}`` for the recipe's ``[quantization]`` table.

    ``classes`` maps the reference model's module paths to class names.
    """
    initializers = {i.name for i in proto.graph.initializer}
    modules = node_modules(proto.graph, set(classes))
    keep_types = set(options["fp32_op_types"])
    keep_modules = set(options["fp32_modules"])
    out: dict[str, str] = {}
    for node in proto.graph.node:
        if node.op_type in keep_types:
            out[node.name] = f"op type {node.op_type}"
        elif (options["fp32_attention_matmuls"] and node.op_type == "MatMul"
              and not any(name in initializers for name in node.input)):
            out[node.name] = "attention MatMul (activation x activation)"
        else:
            hit = kept_module(modules[node.name], classes, keep_modules)
            if hit:
                out[node.name] = f"inside {hit}"
    if options["fp32_outputs"]:
        for name in output_nodes(proto.graph):
            out.setdefault(name, OUTPUT_REASON)
    return out


def output_nodes(graph: Any) -> list[str]:
    """Names of the nodes that compute ``graph``'s outputs: each output's producer, walked back
    through :data:`DATA_MOVEMENT_OP_TYPES` to the first node that computes, that one included."""
    producers = {out: node for node in graph.node for out in node.output}
    names: list[str] = []
    for output in graph.output:
        node = producers.get(output.name)
        while node is not None and node.name not in names:
            names.append(node.name)
            if node.op_type not in DATA_MOVEMENT_OP_TYPES:
                break
            node = producers.get(node.input[0])
    return names


class ClipReader:
    """onnxruntime's ``CalibrationDataReader`` protocol (``get_next`` and iteration) over a list of clips."""

    def __init__(self, clips: Sequence[np.ndarray]) -> None:
        self._clips = iter(clips)

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next input feed, ``None`` after the last clip."""
        clip = next(self._clips, None)
        return None if clip is None else {INPUT_NAME: np.ascontiguousarray(clip, dtype=np.float32)}

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return iter(self.get_next, None)


def quantize_onnx(fp32_path: Path, out_path: Path, clips: Sequence[np.ndarray], options: dict,
                  classes: dict[str, str], work_dir: Path) -> dict:
    """Quantize ``fp32_path`` into ``out_path`` (QDQ), calibrated on ``clips``; return the summary for the manifest.

    The fp32 graph the quantizer read stays at ``work_dir / "prepared.onnx"`` for :mod:`.layer_diff`.

    The summary: ``{"scheme", "per_channel", "reduce_range", "activations", "weights",
    "calibration_method", "fp32_nodes": {reason: count}, "fp32_module_weights", "weight_only_int8",
    "bias_zero_points_dropped" (:mod:`.onnx_bias_zero_points`), "compute_nodes": {"int8", "weight_only", "fp32"}, "by_op": {op: {"int8", "weight_only", "fp32"}}}``.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = work_dir / "prepared.onnx"
    with quiet_quantizer():
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        proto = onnx.load(str(prepared))
        keep = fp32_nodes(proto, options, classes)
        types = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
        quantize_static(
            str(prepared), str(out_path), ClipReader(clips), quant_format=QuantFormat.QDQ,
            per_channel=options["per_channel"], reduce_range=options["reduce_range"],
            activation_type=types[options["activations"]], weight_type=types[options["weights"]],
            calibrate_method=getattr(CalibrationMethod, CALIBRATION_METHODS[options["calibration_method"]]),
            nodes_to_exclude=sorted(keep), extra_options={"CalibTensorRangeSymmetric": False})
    quantized = onnx.load(str(out_path))
    weight_only = 0
    if options["fp32_module_weights"] == "int8":
        weighted = [name for name, reason in keep.items() if reason.startswith("inside ") or reason == OUTPUT_REASON]
        quantized, weight_only = quantize_kept_weights(quantized, weighted)
    quantized, zero_points_dropped = drop_bias_zero_points(quantized)
    if weight_only or zero_points_dropped:
        onnx.save_model(quantized, str(out_path))  # the staged file: published by the pipeline
    return {"scheme": "onnxruntime QDQ (quantize_static)", "per_channel": options["per_channel"],
            "reduce_range": options["reduce_range"], "activations": options["activations"],
            "weights": options["weights"], "calibration_method": options["calibration_method"],
            "fp32_nodes": dict(Counter(reason.split(" (")[0] for reason in keep.values()).most_common()),
            "fp32_module_weights": options["fp32_module_weights"], "weight_only_int8": weight_only,
            "bias_zero_points_dropped": zero_points_dropped,
            **compute_precision(quantized)}


def compute_precision(proto: Any) -> dict:
    """Count the compute nodes of a QDQ graph by what they compute in.

    ``int8``: both operands read through a ``DequantizeLinear`` (onnxruntime fuses the group into an
    int8 kernel); ``weight_only``: an int8 weight (a ``DequantizeLinear`` of an initializer) beside an
    fp32 activation, computed in fp32; ``fp32``: no int8 weight.
    """
    producers = {out: node for node in proto.graph.node for out in node.output}
    initializers = {i.name for i in proto.graph.initializer}
    by_op: dict[str, Counter] = {}
    for node in proto.graph.node:
        if node.op_type not in COMPUTE_OP_TYPES:
            continue
        operands = [producers.get(name) for name in node.input[:2]]
        dequantized = [p is not None and p.op_type == "DequantizeLinear" for p in operands]
        int8_weight = any(d and p.input[0] in initializers for d, p in zip(dequantized, operands, strict=True))
        precision = "int8" if all(dequantized) else "weight_only" if int8_weight else "fp32"
        by_op.setdefault(node.op_type, Counter())[precision] += 1
    total = sum(by_op.values(), Counter())
    kinds = ("int8", "weight_only", "fp32")
    return {"compute_nodes": {kind: total[kind] for kind in kinds},
            "by_op": {op: {kind: c[kind] for kind in kinds} for op, c in sorted(by_op.items())}}
