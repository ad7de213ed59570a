"""int8 OpenVINO IR: NNCF's post-training quantization (``nncf.quantize``) of the fp32 ``ov.Model``.

NNCF inserts ``FakeQuantize`` pairs on activations and weights, calibrated on real clips; the
CPU plugin runs the quantized convolutions and MatMuls in int8. ``OverflowFix.ENABLE`` quantizes
the weights of the first layers to 7 bits: on x86 CPUs without VNNI (AVX2 ``vpmaddubsw``) the
8-bit kernels saturate their 16-bit intermediate sums otherwise (measured on a toy model here:
relative L2 error 0.087 without it, 0.0039 with it).

What stays fp32 goes into NNCF's ``IgnoredScope``, chosen from the recipe's ``[quantization]``
table the way the ONNX path chooses it: OpenVINO op types (the softmaxes, the poolings), and
the attention MatMuls and every node of the named module classes, found on the ONNX graph the
IR was converted from. OpenVINO's ONNX frontend names each op after its ONNX node
(``node_Conv_12`` or ``node_Conv_12/WithoutBiases``), and the exporter's scope of that node names
its module in the reference model (:func:`.onnx_modules.scope_modules`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .layer_diff import LayerError, add_squares
from .onnx_modules import kept_module, node_modules

COMPUTE_OP_TYPES = ("Convolution", "GroupConvolution", "MatMul")
"""OpenVINO op types counted as compute (the ones int8 speeds up)."""
PRESETS = {"performance": "PERFORMANCE", "mixed": "MIXED"}
"""``[quantization] preset`` → ``nncf.QuantizationPreset``: symmetric activations, or asymmetric ones."""
OVERFLOW_FIX = {"enable": "ENABLE", "first_layer_only": "FIRST_LAYER", "disable": "DISABLE"}
"""``[quantization] overflow_fix`` → ``nncf.quantization.advanced_parameters.OverflowFix``."""
CALIBRATION_METHODS = {"minmax": "MINMAX", "mean_minmax": "MEAN_MINMAX", "mean_quantile": "MEAN_QUANTILE",
                       "histogram": "HISTOGRAM"}
"""``[quantization] calibration_method`` → NNCF's ``RangeEstimatorParametersSet`` for activations."""
LAYER_DIFF_METHOD = ("OpenVINO: each activation FakeQuantize of the int8 IR against the fp32 IR's tensor at that "
                     "point, both run in OpenVINO's CPU plugin")


def onnx_node(friendly_name: str) -> str:
    """The ONNX node an IR op came from (``node_Conv_12/WithoutBiases`` → ``node_Conv_12``)."""
    return friendly_name.split("/", 1)[0]


@contextlib.contextmanager
def quiet_nncf() -> Iterator[None]:
    """Hold back NNCF's progress bars, info logs and warnings about ignored-scope entries it does not find."""
    import nncf

    logger = logging.getLogger("nncf")
    level = logger.level
    nncf.set_log_level(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def op_modules(ov_model: Any, proto: Any, scopes: dict[str, str], module_paths: set[str]) -> dict[str, str]:
    """``{IR op name: reference-model module path}``: the exporter's scope of its ONNX node, else a weight-name guess.

    ``scopes`` is :func:`.onnx_modules.scope_modules` of the exported graph, ``proto`` the
    simplified graph the IR was converted from (its nodes' weights name the rest).
    """
    guessed = node_modules(proto.graph, module_paths)
    out = {}
    for op in ov_model.get_ordered_ops():
        name = op.get_friendly_name()
        if op.get_type_name() == "Parameter":
            out[name] = "input"
        else:
            out[name] = scopes.get(onnx_node(name)) or guessed.get(onnx_node(name), "")
    return out


def kept_fp32(ov_model: Any, proto: Any, modules: dict[str, str], options: dict,
              classes: dict[str, str]) -> dict[str, str]:
    """``{IR op name: why it stays fp32}`` for the recipe's ``[quantization]`` table.

    ``proto`` is the ONNX graph the IR was converted from, ``modules`` :func:`op_modules`'s map,
    ``classes`` the reference model's module paths → class names.
    """
    initializers = {i.name for i in proto.graph.initializer}
    attention = {n.name for n in proto.graph.node
                 if n.op_type == "MatMul" and not any(name in initializers for name in n.input)}
    keep_types, keep_modules = set(options["fp32_op_types"]), set(options["fp32_modules"])
    out: dict[str, str] = {}
    for op in ov_model.get_ordered_ops():
        kind, name = op.get_type_name(), op.get_friendly_name()
        if kind in ("Constant", "Parameter", "Result"):
            continue
        hit = kept_module(modules.get(name, ""), classes, keep_modules)
        if kind in keep_types:
            out[name] = f"op type {kind}"
        elif options["fp32_attention_matmuls"] and kind == "MatMul" and onnx_node(name) in attention:
            out[name] = "attention MatMul (activation x activation)"
        elif hit:
            out[name] = f"inside {hit}"
    return out


def quantize_openvino(ov_model: Any, proto: Any, modules: dict[str, str], clips: Sequence[np.ndarray],
                      options: dict, classes: dict[str, str]) -> tuple[Any, dict]:
    """``nncf.quantize`` ``ov_model`` calibrated on ``clips``; return the int8 model and the manifest's summary.

    ``proto`` is the ONNX graph ``ov_model`` was converted from and ``modules`` :func:`op_modules`'s map.

    With ``fp32_module_weights = "int8"`` the weights NNCF left fp32 (those of the nodes kept in fp32) are
    then stored as per-channel symmetric int8 (``nncf.compress_weights``): the CPU plugin widens them as
    it computes, in fp32.

    The summary: ``{"scheme", "preset", "per_channel", "overflow_fix", "calibration_method",
    "fast_bias_correction", "fp32_nodes": {reason: count}, "fp32_module_weights",
    "compute_nodes": {"int8", "weight_only", "fp32"}, "by_op": {op: {"int8", "weight_only", "fp32"}}}``.
    """
    import nncf
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        OverflowFix,
        QuantizationParameters,
    )
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    keep = kept_fp32(ov_model, proto, modules, options, classes)
    advanced = AdvancedQuantizationParameters(
        overflow_fix=getattr(OverflowFix, OVERFLOW_FIX[options["overflow_fix"]]),
        weights_quantization_params=QuantizationParameters(per_channel=options["per_channel"]),
        activations_range_estimator_params=getattr(RangeEstimatorParametersSet,
                                                   CALIBRATION_METHODS[options["calibration_method"]]))
    dataset = nncf.Dataset([np.ascontiguousarray(c, dtype=np.float32) for c in clips])
    with quiet_nncf():
        quantized = nncf.quantize(
            ov_model, dataset, preset=getattr(nncf.QuantizationPreset, PRESETS[options["preset"]]),
            target_device=nncf.TargetDevice.CPU, subset_size=len(clips),
            fast_bias_correction=options["fast_bias_correction"],
            ignored_scope=nncf.IgnoredScope(names=sorted(keep), validate=False), advanced_parameters=advanced)
        if options["fp32_module_weights"] == "int8":  # what stayed fp32 keeps fp32 arithmetic on int8 weights
            quantized = nncf.compress_weights(quantized, mode=nncf.CompressWeightsMode.INT8_SYM)
    return quantized, {
        "scheme": "NNCF post-training quantization (nncf.quantize, FakeQuantize)", "preset": options["preset"],
        "per_channel": options["per_channel"], "overflow_fix": options["overflow_fix"],
        "calibration_method": options["calibration_method"],
        "fast_bias_correction": options["fast_bias_correction"],
        "fp32_nodes": dict(Counter(reason.split(" (")[0] for reason in keep.values()).most_common()),
        "fp32_module_weights": options["fp32_module_weights"], **compute_precision(quantized)}


def _quantized_input(port: Any) -> bool:
    """Whether an op input is int8: a ``FakeQuantize`` output or an int8 weight, through layout and scale ops."""
    node = port.get_source_output().get_node()
    for _ in range(4):
        kind = node.get_type_name()
        if kind == "FakeQuantize":
            return True
        if kind == "Constant":
            return node.get_output_element_type(0).get_type_name() in ("i8", "u8", "i4", "u4")
        if kind not in ("Convert", "Multiply", "Subtract", "Reshape", "Transpose") or node.get_input_size() == 0:
            return False
        node = node.input_value(0).get_node()
    return False


def compute_precision(ov_model: Any) -> dict:
    """Count the compute ops of a quantized IR by what they compute in.

    ``int8``: both inputs int8 (what the CPU plugin runs as int8 kernels); ``weight_only``: an int8
    weight beside an fp32 activation (computed in fp32); ``fp32``: neither.
    """
    by_op: dict[str, Counter] = {}
    for op in ov_model.get_ordered_ops():
        if op.get_type_name() in COMPUTE_OP_TYPES:
            activation, weight = (_quantized_input(port) for port in op.inputs()[:2])
            kind = "int8" if activation and weight else "weight_only" if weight else "fp32"
            by_op.setdefault(op.get_type_name(), Counter())[kind] += 1
    total = sum(by_op.values(), Counter())
    kinds = ("int8", "weight_only", "fp32")
    return {"compute_nodes": {k: total[k] for k in kinds},
            "by_op": {op: {k: c[k] for k in kinds} for op, c in sorted(by_op.items())}}


def _sqnr_db(signal_squares: float, noise_squares: float) -> float:
    """``20 log10(|reference| / |reference - other|)`` (onnxruntime's ``qdq_loss_debug`` definition) from the
    sums of squares of ``reference`` and of ``reference - other``, capped at ±200 dB."""
    if noise_squares == 0:
        return 200.0
    ratio = max(float(np.sqrt(signal_squares)), 1e-30) / float(np.sqrt(noise_squares))
    return float(np.clip(20 * np.log10(ratio), -200.0, 200.0))


def openvino_layer_diff(fp32_model: Any, int8_model: Any, modules: dict[str, str],
                        clips: Sequence[np.ndarray]) -> list[LayerError]:
    """Every fake-quantized activation of ``int8_model`` against the same tensor of ``fp32_model``, on ``clips``.

    ``sqnr_db``: the fp32 IR's tensor against the int8 IR's quantized one (everything upstream
    quantized); ``local_db``: the int8 IR's tensor against its own quantize-dequantize.
    ``modules`` (:func:`op_modules`) names each op's module in the reference model.
    """
    import openvino as ov

    fp32_ops = {op.get_friendly_name(): op for op in fp32_model.get_ordered_ops()}
    taps = []  # (fake quantize op, the op it reads, its output index)
    for op in int8_model.get_ordered_ops():
        if op.get_type_name() != "FakeQuantize":
            continue
        source = op.input_value(0)
        producer = source.get_node()
        if producer.get_type_name() != "Constant" and producer.get_friendly_name() in fp32_ops:
            taps.append((op, producer, source.get_index()))
    if not taps:
        return []
    fp32 = fp32_model.clone()
    fp32_by_name = {op.get_friendly_name(): op for op in fp32.get_ordered_ops()}
    fp32_outputs = [fp32_by_name[p.get_friendly_name()].output(i) for _, p, i in taps]
    int8 = int8_model.clone()
    int8_by_name = {op.get_friendly_name(): op for op in int8.get_ordered_ops()}
    int8_outputs = [int8_by_name[fq.get_friendly_name()].output(0) for fq, _, _ in taps]
    int8_inputs = [int8_by_name[fq.get_friendly_name()].input_value(0) for fq, _, _ in taps]

    def keys(compiled: Any, outputs: list) -> list:
        return [next(o for o in compiled.outputs if o.get_any_name() in out.get_names()) for out in outputs]

    for outputs in (fp32_outputs, int8_outputs, int8_inputs):  # an output needs a name to be fetched by
        for out in outputs:
            if not out.get_names():
                out.get_tensor().set_names({f"vmf_tap_{out.get_node().get_friendly_name()}_{out.get_index()}"})
    core = ov.Core()
    fp32.add_outputs(fp32_outputs)
    int8.add_outputs(int8_outputs + int8_inputs)
    fp32_compiled = core.compile_model(fp32, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    int8_compiled = core.compile_model(int8, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    fp32_keys, int8_keys = keys(fp32_compiled, fp32_outputs), keys(int8_compiled, int8_outputs + int8_inputs)
    network = [[0.0, 0.0] for _ in taps]  # fp32 tensor vs quantized one, summed over the clips
    local = [[0.0, 0.0] for _ in taps]  # the int8 IR's tensor before vs after its FakeQuantize
    for clip in clips:  # one clip's taps in memory at a time (5g at 64 × 224²: gigabytes per clip)
        clip = np.ascontiguousarray(clip, dtype=np.float32)
        reference, quantized = fp32_compiled(clip), int8_compiled(clip)
        for k in range(len(taps)):
            after = quantized[int8_keys[k]]
            add_squares(network[k], reference[fp32_keys[k]], after)
            add_squares(local[k], quantized[int8_keys[len(taps) + k]], after)
        del reference, quantized
    rows = []
    for k, (_, producer, _) in enumerate(taps):
        name, kind = producer.get_friendly_name(), producer.get_type_name()
        rows.append(LayerError(tensor=f"{name}:{taps[k][2]}", node=name, op_type=kind, module=modules.get(name, ""),
                               sqnr_db=_sqnr_db(*network[k]), local_db=_sqnr_db(*local[k])))
    return rows
