"""XNNPACK runs a linear of fp32 activations and int8 weights as one weight-only int8 op.

The executorch recipe keeps some linears out of static int8: the DyReLU's coefficient MLPs
(``fp32_modules``) and the classifier that computes the logits (``fp32_outputs``). In fp32 their
weights are most of an int8 ``.pte`` (560m at 64 frames: 9.7 MB int8 against 19 MB fp32). onnx and
OpenVINO store such weights int8 and widen them as they run. XNNPACK can too: its fully connected
op takes fp32 activations with per-channel int8 weights (``xnn_datatype_qcint8`` filter, the
``f32-qc8w`` GEMMs), but ExecuTorch 1.5.1 never asks for it. Its ``LinearConfig`` reads a
``dequantize_per_channel`` weight as static int8 and then wants a quantized input and output, so
the linear falls out of the delegate; and its linear visitor refuses a bias unless both input and
weight are quantized.

Pattern: ``linear(x, dequantize_per_channel(W_int8), b)`` whose output is not quantized, as PT2E leaves a
linear whose weight alone was annotated (``pt2e_xnnpack.weight_only_quantizer``). ``x`` is fp32, or the
``dequantize`` of an int8 tensor, which XNNPACK then converts to fp32 as a separate op.
Replacement: :func:`split_weight_only_bias` moves ``b`` into an fp32 ``add`` after the linear (the
delegate runs it), and :class:`WeightOnlyLinearConfig` claims the bias-free linear with its weight
dequantization, which XNNPACK lowers as one ``Fully Connected (NC, F32, QC8W)``.
"""

from __future__ import annotations

import torch
from executorch.backends.xnnpack.partition.config.gemm_configs import LinearConfig
from executorch.backends.xnnpack.partition.config.xnnpack_config import ConfigPrecisionType
from torch.export import ExportedProgram

WEIGHT_DEQUANTIZE = "quantized_decomposed::dequantize_per_channel"
FUSED_ACTIVATIONS = ("aten::relu", "aten::hardtanh")
"""What ``LinearConfig`` fuses into a linear's output, before its ``quantize``."""


def _calls(node: object, prefix: str) -> bool:
    """Whether ``node`` calls an op whose ``namespace::name`` starts with ``prefix`` (ATen or edge dialect)."""
    if not isinstance(node, torch.fx.Node) or node.op != "call_function" or not hasattr(node.target, "name"):
        return False
    return node.target.name().startswith(prefix)


def is_weight_only_linear(node: torch.fx.Node) -> bool:
    """``aten.linear`` of a per-channel dequantized weight whose output is not quantized, and whose input is
    fp32 or a dequantized tensor of a fixed scale (a dynamically quantized linear is not one)."""
    if not _calls(node, "aten::linear") or len(node.args) < 2 or not _calls(node.args[1], WEIGHT_DEQUANTIZE):
        return False
    output = node
    if len(node.users) == 1 and any(_calls(next(iter(node.users)), act) for act in FUSED_ACTIVATIONS):
        output = next(iter(node.users))  # XNNPACK fuses it into the linear, quantize included
    if any(_calls(user, "quantized_decomposed::quantize") for user in output.users):
        return False
    source = node.args[0]
    return not (_calls(source, "quantized_decomposed::dequantize") and isinstance(source.args[1], torch.fx.Node))


def split_weight_only_bias(graph_module: torch.fx.GraphModule) -> int:
    """Rewrite each weight-only ``linear(x, W, b)`` as ``linear(x, W) + b``; returns how many were rewritten."""
    graph = graph_module.graph
    rewritten = 0
    for node in list(graph.nodes):
        if not is_weight_only_linear(node):
            continue
        bias = node.args[2] if len(node.args) > 2 else node.kwargs.get("bias")
        if bias is None:
            continue
        users = list(node.users)
        with graph.inserting_after(node):
            added = graph.call_function(torch.ops.aten.add.Tensor, (node, bias))
        for user in users:
            user.replace_input_with(node, added)
        node.args, node.kwargs = tuple(node.args[:2]), {}
        added.meta = {key: value for key, value in node.meta.items() if key != "source_fn_stack"}  # not a linear
        rewritten += 1
    if rewritten:
        graph.lint()
        graph_module.recompile()
    return rewritten


class WeightOnlyLinearConfig(LinearConfig):
    """``LinearConfig`` that also lowers a bias-free weight-only int8 linear (fp32 input and output)."""

    def _weight_only(self, node: torch.fx.Node) -> bool:
        return is_weight_only_linear(node) and len(node.args) == 2

    def check_constraints(self, node: torch.fx.Node, ep: ExportedProgram) -> bool:
        """ExecuTorch's constraints; a weight-only linear that still has its bias is left out (the visitor refuses it)."""
        if is_weight_only_linear(node) and not self._weight_only(node):
            return False
        return super().check_constraints(node, ep)

    def _get_act_deps(self, node: torch.fx.Node, ep: ExportedProgram,
                      precision: ConfigPrecisionType) -> tuple[bool, list[torch.fx.Node]]:
        if self._weight_only(node):
            return True, []  # the input enters as fp32; a dequantize before it is lowered as its own Convert
        return super()._get_act_deps(node, ep, precision)

    def _get_output_deps(self, node: torch.fx.Node, ep: ExportedProgram,
                         precision: ConfigPrecisionType) -> tuple[bool, list[torch.fx.Node]]:
        if self._weight_only(node):  # fp32 output: fuse a following relu as for an fp32 linear, no quantize
            return super()._get_output_deps(node, ep, ConfigPrecisionType.FP32)
        return super()._get_output_deps(node, ep, precision)

