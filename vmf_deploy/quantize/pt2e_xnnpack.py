"""int8 ExecuTorch: torchao PT2E with ExecuTorch's ``XNNPACKQuantizer`` on the 4D frames model.

XNNPACK has no 3D convolution, so the model quantized is the ``executorch`` module rewrite's
frames-in-the-batch form (``vmf_deploy.rewrites.frames_to_batch``), never a Conv3d:
``torch.export`` → ``prepare_pt2e`` → calibration → ``convert_pt2e`` → ``torch.export`` again,
then the usual XNNPACK lowering. The quantizer's symmetric config gives int8 per-channel
weights and int8 per-tensor activations for conv, linear, add, mul, cat and pooling; ``bmm``,
softmax, division and the sigmoids stay fp32. The recipe's ``calibration_method`` picks the
activations' observer: ``minmax`` (the calibration clips' full range) or ``histogram`` (the
quantizer's default, which clips the range to minimise the calibration clips' rounding error). Modules of the
recipe's ``fp32_modules`` classes are not annotated at all, nor the ops of its ``fp32_op_types``
(:func:`fp32_op_type_nodes`), nor, with ``fp32_outputs``, the ops that compute the program's outputs
(the classifier linear and any view after it). With
``kept_linears = "dynamic_int8"`` the linears among those left-out nodes are annotated by a second,
dynamic quantizer instead (:func:`dynamic_quantizer`): int8 weights, fp32 output; with ``"weight_only_int8"``
only their weights are (:func:`weight_only_quantizer`): int8 weights, fp32 input and output. With
``fp32_output_weights = "int8"`` the output linears alone get that weight-only form, whatever ``kept_linears`` says
of the others. With
``dyrelu_application = "int8"`` a kept DyReLU's ``relu(x) + a2·x`` is quantized after all
(:func:`dyrelu_application_nodes`); only its slopes ``a2`` are computed in fp32. With ``quantize_input``
the clip is quantized once as it enters, and the frames the stem gathers from it are copied as int8
(:func:`share_input_range`). Zero pads of int8 tensors keep their input's range (:func:`share_pad_ranges`),
which XNNPACK's int8 pad requires. With ``qat_steps``, the observers are wrapped in fake-quantizers
(``prepare_qat_pt2e``), and after calibration the weights are fine-tuned towards the float program's
logits with the ranges frozen (:mod:`vmf_deploy.quantize.distillation`).
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from . import distillation
from .layer_diff import LayerError
from .pt2e_layer_diff import clip_tensor, layer_diff

DEQUANTIZE_OPS = ("quantized_decomposed.dequantize_per_tensor", "quantized_decomposed.dequantize_per_channel")
QUANTIZE_OPS = ("quantized_decomposed.quantize_per_tensor",)
VIEW_OPS = ("aten.view", "aten.reshape", "aten._unsafe_view", "aten.squeeze", "aten.unsqueeze", "aten.permute",
            "aten.flatten", "aten.clone", "aten.alias")
"""Ops that only move their input's values: the walk back from an output goes through them."""
ACTIVATION_OBSERVERS = ("minmax", "histogram")
"""``[quantization] calibration_method`` values: the activations' observer."""


def fp32_module_paths(classes: dict[str, str], fp32_modules: Sequence[str]) -> list[str]:
    """Module paths of the reference model named in ``fp32_modules`` or whose class is (outermost only)."""
    keep = set(fp32_modules)
    paths = sorted(p for p, c in classes.items() if p and (c in keep or p in keep))
    return [p for p in paths if not any(p.startswith(q + ".") for q in paths)]


def dyrelu_application_nodes(graph: torch.fx.Graph, paths: Sequence[str]) -> set[str]:
    """Names of the nodes that apply each module at ``paths`` to its feature map: ``relu(x) + a2·x``.

    A fused dynamic ReLU ends in that sum. Walking back from the module's output through
    :data:`VIEW_OPS` finds the ``add``; it and its ``mul`` operand are the application, everything
    else in the module (the pooling, the coefficient MLP, the clamps) computes ``a2``. The ``relu``
    needs no entry: the quantizer shares its input's range with it anyway. A module whose output is
    not such a sum (the unfused ``max(a1·x, a2·x)``) yields nothing.
    """
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import get_module_name_filter

    names: set[str] = set()
    for path in paths:
        inside = get_module_name_filter(path)
        members = {n for n in graph.nodes if n.op == "call_function" and inside(n)}
        for node in members:
            if all(user in members for user in node.users):
                continue
            while _aten_op(node) in VIEW_OPS and node.all_input_nodes and node.all_input_nodes[0] in members:
                node = node.all_input_nodes[0]
            if _aten_op(node) != "aten.add":
                continue
            products = [a for a in node.all_input_nodes if a in members and _aten_op(a) == "aten.mul"]
            if products:
                names.update([node.name, *(a.name for a in products)])
    return names


def applied_dyrelu_nodes(graph: torch.fx.Graph, options: dict, classes: dict[str, str]) -> set[str]:
    """The kept DyReLUs' application nodes that ``dyrelu_application = "int8"`` quantizes (none with ``"fp32"``)."""
    if options.get("dyrelu_application", "fp32") != "int8":  # manifests older than the key applied it in fp32
        return set()
    return dyrelu_application_nodes(graph, fp32_module_paths(classes, options["fp32_modules"]))


def fp32_op_type_nodes(graph: torch.fx.Graph, options: dict, classes: dict[str, str]) -> dict[str, str]:
    """``{node name: op}`` of the nodes the recipe's ``fp32_op_types`` (``"add"``, ``"mul"``, …) keep fp32.

    A kept DyReLU's application (:func:`applied_dyrelu_nodes`) is not among them: ``dyrelu_application``
    decides its precision. Nodes inside ``fp32_modules`` are listed too (they stay fp32 either way).
    """
    ops = {f"aten.{op}" for op in options.get("fp32_op_types", [])}  # manifests older than the key: none
    applied = applied_dyrelu_nodes(graph, options, classes) if ops else set()
    return {n.name: _aten_op(n).removeprefix("aten.") for n in graph.nodes
            if n.op == "call_function" and _aten_op(n) in ops and n.name not in applied}


def _contiguous_constants(module: torch.nn.Module) -> None:
    """Give every constant a dense layout: ``convert_pt2e`` can fold expanded views (stride 0), which
    ExecuTorch's memory planning refuses ("0 in strides is not supported")."""
    for name, value in list(module.named_buffers()) + list(module.named_parameters()):
        if 0 in value.stride():
            owner, _, attr = name.rpartition(".")
            target = module.get_submodule(owner) if owner else module
            dense = value.detach().contiguous().clone()
            if isinstance(value, torch.nn.Parameter):
                setattr(target, attr, torch.nn.Parameter(dense, requires_grad=False))
            else:
                target.register_buffer(attr, dense)
    for name in dir(module):
        value = getattr(module, name, None)
        if isinstance(value, torch.Tensor) and 0 in value.stride() and name not in dict(module.named_buffers()):
            setattr(module, name, value.contiguous().clone())


def quantization_config(per_channel: bool, calibration_method: str) -> Any:
    """``XNNPACKQuantizer``'s symmetric int8 config with the activations observed by ``calibration_method``."""
    from dataclasses import replace

    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import get_symmetric_quantization_config
    from torchao.quantization.pt2e import MinMaxObserver

    if calibration_method not in ACTIVATION_OBSERVERS:
        raise ValueError(f"calibration_method must be one of {ACTIVATION_OBSERVERS}, got {calibration_method!r}")
    config = get_symmetric_quantization_config(is_per_channel=per_channel)
    if calibration_method == "histogram":
        return config
    eps = config.input_activation.observer_or_fake_quant_ctr.p.keywords["eps"]  # a PartialWrapper of a partial
    activations = replace(config.input_activation, observer_or_fake_quant_ctr=MinMaxObserver.with_args(eps=eps))
    return replace(config, input_activation=activations, output_activation=activations)


PAD_OPS = ("aten.pad", "aten.constant_pad_nd")
"""Zero padding: exact in int8 when the pad keeps its input's range (0.0 is the zero point)."""


def share_pad_ranges(model: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """Give each zero pad of a quantized tensor its input's range, and the views after it the pad's.

    ``XNNPACKQuantizer`` leaves pads unannotated: a pad between a quantized producer and a
    quantized consumer reads a dequantized tensor and feeds a quantize of another range, and
    XNNPACK refuses such a pad ("Failed to create StaticConstantPad", its int8 pad keeps one
    range). The frames model's temporal taps pad the clip's stack of frames: with
    ``dyrelu_application = "int8"``, or without the DyReLU in ``fp32_modules``, the stack they
    pad is the DyReLU's int8 output.
    """
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer_utils import propagate_annotation
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation, SharedQuantizationSpec
    from torchao.quantization.pt2e.quantizer.quantizer import Q_ANNOTATION_KEY

    for node in model.graph.nodes:
        if node.op != "call_function" or _aten_op(node) not in PAD_OPS or Q_ANNOTATION_KEY in node.meta:
            continue
        source = node.args[0]
        annotation = source.meta.get(Q_ANNOTATION_KEY) if isinstance(source, torch.fx.Node) else None
        if annotation is None or annotation.output_qspec is None:
            continue
        shared = SharedQuantizationSpec(source)
        node.meta[Q_ANNOTATION_KEY] = QuantizationAnnotation(
            input_qspec_map={source: shared}, output_qspec=shared, _annotated=True)
    propagate_annotation(model)
    return model


LAYOUT_OPS = (*VIEW_OPS, "aten.slice", *PAD_OPS)
"""Ops that copy or rearrange values without computing: a range passes through them unchanged."""
GUARDS = "_guards_fn"
"""The submodule ``ExportedProgram.module()`` calls with the inputs to check its shape guards (reads no values)."""


def gathered_input(placeholder: torch.fx.Node) -> tuple[list[torch.fx.Node], list[torch.fx.Node]]:
    """The layout ops and the ``cat`` nodes through which ``placeholder`` reaches everything that reads it.

    Returns ``([], [])`` unless every path from the input runs through :data:`LAYOUT_OPS` into a
    ``cat`` whose inputs all come that way: the frames model's stem, whose temporal taps gather
    single frames of the clip and concatenate them (``frame_layers._frame_taps``).
    """
    layout: list[torch.fx.Node] = []
    cats: list[torch.fx.Node] = []
    frontier = [placeholder]
    while frontier:
        for user in frontier.pop().users:
            if user.op == "call_module" and user.target == GUARDS:
                continue
            if _aten_op(user) in LAYOUT_OPS:
                layout.append(user)
                frontier.append(user)
            elif _aten_op(user) == "aten.cat":
                if user not in cats:
                    cats.append(user)
            else:
                return [], []
    if not cats or any(a not in layout for cat in cats for a in cat.all_input_nodes):
        return [], []
    return layout, cats


def share_input_range(model: torch.fx.GraphModule, activation: Any) -> torch.fx.GraphModule:
    """Quantize a clip the stem gathers frames from once, as it enters, and copy its frames as int8.

    Left to ``XNNPACKQuantizer``, each ``cat`` of gathered frames quantizes its own inputs: the
    clip is transposed to frames and every frame a tap reads is sliced in fp32, then converted
    (VMF-1G at 64 frames: a 38.5 MB fp32 transpose, 80 fp32 slices, 80 conversions). Here the
    input gets the activation spec ``activation`` (one range, the calibration clips'), and the
    layout ops and the ``cat`` nodes of :func:`gathered_input` share it: XNNPACK converts the clip
    once and moves int8 from then on. A ``cat`` of pieces of one tensor needs no range of its own.
    Runs before ``XNNPACKQuantizer``, which leaves annotated nodes alone.
    """
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation, SharedQuantizationSpec
    from torchao.quantization.pt2e.quantizer.quantizer import Q_ANNOTATION_KEY

    for placeholder in model.graph.find_nodes(op="placeholder"):
        layout, cats = gathered_input(placeholder)
        if not cats:
            continue
        shared = SharedQuantizationSpec(placeholder)
        placeholder.meta[Q_ANNOTATION_KEY] = QuantizationAnnotation(output_qspec=activation, _annotated=True)
        for node in layout:
            node.meta[Q_ANNOTATION_KEY] = QuantizationAnnotation(
                input_qspec_map={node.args[0]: shared}, output_qspec=shared, _annotated=True)
        for cat in cats:
            cat.meta[Q_ANNOTATION_KEY] = QuantizationAnnotation(
                input_qspec_map=dict.fromkeys(cat.all_input_nodes, shared), output_qspec=shared, _annotated=True)
    return model


def annotating_quantizer(annotate: Callable[[torch.fx.GraphModule], torch.fx.GraphModule]) -> Any:
    """A ``Quantizer`` whose ``annotate`` is ``annotate``, for a ``ComposableQuantizer``: :func:`share_input_range`
    goes first (``XNNPACKQuantizer`` leaves annotated nodes alone), :func:`share_pad_ranges` last."""
    from torchao.quantization.pt2e.quantizer import Quantizer

    class Annotating(Quantizer):
        def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
            return annotate(model)

        def validate(self, model: torch.fx.GraphModule) -> None:
            pass

    return Annotating()


def dynamic_quantizer(selected: Callable[[torch.fx.Node], bool]) -> Any:
    """``XNNPACKQuantizer`` of the ``selected`` nodes' linears (and convs) as dynamically quantized ops.

    Int8 per-channel weights; each input quantized per row when the op runs, from its own range, so no
    calibration range is involved; the output stays fp32. XNNPACK runs them as its ``qd8-f32-qc8w``
    kernels. The other ops of those nodes (sigmoid, mul, the DyReLU's max) are not annotated.
    """
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )

    quantizer = XNNPACKQuantizer()
    quantizer.set_global(get_symmetric_quantization_config(is_per_channel=True, is_dynamic=True))
    quantizer.set_filter_function(selected)
    return quantizer


def quantize_exported(exported: Any, example: torch.Tensor, clips: Sequence[np.ndarray], options: dict,
                      classes: dict[str, str], diff_clips: int = 2, qat_clips: Sequence[np.ndarray] = (),
                      qat_record: dict | None = None, model_outputs: int | None = None) -> tuple[Any, list[LayerError]]:
    """PT2E-quantize an ``ExportedProgram`` of the frames model: the re-exported quantized program and its layer diff.

    ``classes`` maps the reference model's module paths to class names: the frames rewrite keeps
    the module paths, so ``fp32_modules`` are found by path. The layer diff (:func:`layer_diff`)
    runs on the first ``diff_clips`` calibration clips (0: none). With the recipe's ``qat_steps``,
    the program is fake-quantized instead, calibrated on ``clips``, and its weights fine-tuned on
    ``qat_clips`` to give the float program's logits (:func:`~vmf_deploy.quantize.distillation.distill`)
    before it is converted; what the fine-tuning did goes into ``qat_record``. ``model_outputs``: how many of
    the program's outputs are the model's (None: all); ``fp32_outputs`` keeps only those fp32, not the block
    outputs :mod:`vmf_deploy.numerics` adds to a rebuilt program.
    """
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer, get_module_name_filter
    from torchao.quantization.pt2e import generate_numeric_debug_handle
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e, prepare_qat_pt2e
    from torchao.quantization.pt2e.quantizer import ComposableQuantizer

    from vmf_deploy.export.xnnpack_weight_only_linear import split_weight_only_bias

    qat_steps = options.get("qat_steps", 0)  # manifests older than the key were calibrated only
    if qat_steps and not qat_clips:
        raise ValueError("qat_steps needs qat_clips: the clips the weights are fine-tuned on")
    quantizer = XNNPACKQuantizer()
    method = options.get("calibration_method", "histogram")  # manifests older than the key were histogram-calibrated
    config = quantization_config(options["per_channel"], method)
    if qat_steps:
        config = distillation.fake_quant_config(config)
    quantizer.set_global(config)
    kept = [get_module_name_filter(path) for path in fp32_module_paths(classes, options["fp32_modules"])]
    generate_numeric_debug_handle(exported)
    reference = exported.module()
    model = distillation.own_parameters(exported.module()) if qat_steps else exported.module()
    # manifests older than the key lack it
    outputs = set(output_nodes(model.graph, model_outputs)) if options.get("fp32_outputs", False) else set()
    applied = applied_dyrelu_nodes(model.graph, options, classes)
    kept_ops = set(fp32_op_type_nodes(model.graph, options, classes))

    def left_out(node: torch.fx.Node) -> bool:
        return (node.name in outputs or node.name in kept_ops
                or (node.name not in applied and any(inside(node) for inside in kept)))

    if kept or outputs or kept_ops:  # set_module_name(path, None) is not supported: filter those nodes out instead
        quantizer.set_filter_function(lambda node: not left_out(node))
        kept_linears = options.get("kept_linears", "fp32")
        parts = [quantizer]
        if options.get("fp32_output_weights", "fp32") == "int8":  # manifests older than the key kept them fp32
            parts.append(weight_only_quantizer(lambda node: node.name in outputs, config.weight))
        if kept_linears == "dynamic_int8":
            parts.append(dynamic_quantizer(left_out))
        elif kept_linears == "weight_only_int8":
            parts.append(weight_only_quantizer(left_out, config.weight))
        quantizer = ComposableQuantizer(parts) if len(parts) > 1 else quantizer
    quantizers = [quantizer, annotating_quantizer(share_pad_ranges)]
    if options.get("quantize_input", False):  # manifests older than the key quantized each gathered frame
        quantizers.insert(0, annotating_quantizer(lambda graph: share_input_range(graph, config.input_activation)))
    prepared = (prepare_qat_pt2e if qat_steps else prepare_pt2e)(model, ComposableQuantizer(quantizers))
    with torch.no_grad():
        for clip in clips:
            prepared(clip_tensor(clip))
    if qat_steps:
        distillation.freeze_ranges(prepared)
        record = distillation.distill(prepared, reference, qat_clips, qat_steps, options["qat_learning_rate"])
        if qat_record is not None:
            qat_record.update(record)
    converted = convert_pt2e(prepared)
    split_weight_only_bias(converted)
    _contiguous_constants(converted)
    layers = layer_diff(reference, converted, clips[:diff_clips]) if diff_clips else []
    with torch.no_grad():
        return torch.export.export(converted, (example,), strict=False), layers


def _aten_op(node: torch.fx.Node) -> str:
    """``aten.add`` for a node of an exported (pre-edge) graph calling ``aten.add.Tensor``."""
    return ".".join(str(node.target).split(".")[:2])


def output_nodes(graph: torch.fx.Graph, first: int | None = None) -> list[str]:
    """Names of the nodes that compute ``graph``'s outputs (only the ``first`` ones, if given): each output's
    producer, walked back through :data:`VIEW_OPS` to the first node that computes, that one included."""
    names: list[str] = []
    for output in graph.find_nodes(op="output"):
        produced: list[torch.fx.Node] = []
        torch.fx.node.map_arg(output.args[0], produced.append)  # every output, in order
        for node in produced[:first]:
            while node.op == "call_function" and node.name not in names:
                names.append(node.name)
                if _aten_op(node) not in VIEW_OPS or not node.all_input_nodes:
                    break
                node = node.all_input_nodes[0]
    return names


def _name(target: Any) -> str:
    name = getattr(target, "__name__", str(target))
    return ".".join(name.split(".")[:2])


def weight_only_quantizer(selected: Callable[[torch.fx.Node], bool], weight: Any) -> Any:
    """A quantizer of the ``selected`` nodes' linears' weights alone, with the ``weight`` spec (per-channel int8).

    Input, output and bias stay fp32: XNNPACK runs such a linear as its ``f32-qc8w`` fully connected op
    (``vmf_deploy.export.xnnpack_weight_only_linear``), reading fp32 activations and the int8 weights.
    """
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation

    def annotate(model: torch.fx.GraphModule) -> torch.fx.GraphModule:
        for node in model.graph.nodes:
            if (node.op == "call_function" and node.target is torch.ops.aten.linear.default and selected(node)
                    and "quantization_annotation" not in node.meta):
                node.meta["quantization_annotation"] = QuantizationAnnotation(
                    input_qspec_map={node.args[1]: weight}, _annotated=True)
        return model

    return annotating_quantizer(annotate)


FUSED_ACTIVATIONS = ("aten.relu", "aten.hardtanh", "aten.clamp")
"""Activations XNNPACK applies as an int8 op's output clamp (``XNNPACKQuantizer`` annotates them with the op)."""


def _quantized_output(node: torch.fx.Node) -> bool:
    """Whether ``node``'s output is quantized with a fixed scale, directly or after one of :data:`FUSED_ACTIVATIONS`.

    A ``quantize`` whose scale is computed when it runs (a dynamically quantized op's input) does not count.
    """
    for user in node.users:
        if user.op != "call_function":
            continue
        if _name(user.target) in QUANTIZE_OPS and not isinstance(user.args[1], torch.fx.Node):
            return True
        if _name(user.target) in FUSED_ACTIVATIONS and _quantized_output(user):
            return True
    return False


def compute_precision(graph_module: torch.fx.GraphModule, compute_ops: Sequence[str]) -> dict:
    """int8 vs fp32 compute ops of a lowered program, inside the XNNPACK delegate and outside it.

    A compute op is int8 when both its inputs come from ``dequantize`` nodes and its output goes
    to a fixed-scale ``quantize`` node, directly or through a ReLU or clamp that XNNPACK folds into the op's
    output range (the pattern XNNPACK fuses into an int8 kernel: the quantizer annotates a
    conv → ReLU pair at the ReLU's output); ``dynamic_int8`` when
    both inputs are dequantized, the activation's scale computed at run time (``choose_qparams``),
    and the output stays fp32 (:func:`dynamic_quantizer`); ``weight_only_int8`` when only its weight is
    dequantized, per channel (:func:`weight_only_quantizer`); an op that only reads dequantized tensors
    of fixed scales (a ``bmm`` after a quantized ``linear``) runs in fp32. Returns
    ``{"compute_ops": {kind: count}, "by_op": {op: {kind: count}}}`` over those four kinds.
    """
    from vmf_deploy.export.xnnpack_weight_only_linear import is_weight_only_linear

    by_op: dict[str, Counter] = {}
    kinds = ("int8", "dynamic_int8", "weight_only_int8", "fp32")

    def visit(gm: torch.fx.GraphModule) -> None:
        for node in gm.graph.nodes:
            if node.op == "get_attr" and node.name.startswith("lowered_module"):
                visit(getattr(gm, node.target).original_module.graph_module)
            if node.op != "call_function" or node.target is operator.getitem:
                continue
            op = _name(node.target)
            if op not in compute_ops:
                continue
            args = [a for a in node.args[:2] if isinstance(a, torch.fx.Node)]
            dequantized = (len(args) == 2
                           and all(a.op == "call_function" and _name(a.target) in DEQUANTIZE_OPS for a in args))
            if dequantized and _quantized_output(node):
                kind = "int8"
            elif dequantized and isinstance(args[0].args[1], torch.fx.Node):  # a scale computed when the op runs
                kind = "dynamic_int8"
            elif is_weight_only_linear(node):
                kind = "weight_only_int8"
            else:
                kind = "fp32"
            by_op.setdefault(op, Counter())[kind] += 1

    visit(graph_module)
    total = sum(by_op.values(), Counter())
    return {"compute_ops": {k: total[k] for k in kinds},
            "by_op": {op: {k: c[k] for k in kinds} for op, c in sorted(by_op.items())}}
