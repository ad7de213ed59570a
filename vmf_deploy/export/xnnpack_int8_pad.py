"""XNNPACK runs a zero pad of an int8 tensor in int8, instead of in fp32 between two conversions.

ExecuTorch 1.5.1's ``ConstantPadConfig`` claims ``constant_pad_nd`` for fp32 only, so a quantized
pad (``dequantize → pad → quantize``) is lowered as three XNNPACK ops: a ``Convert`` of the whole
int8 map to fp32, an fp32 ``Constant Pad`` and a ``Convert`` back. The frames model pads the stack
of frames before every temporal depthwise convolution (``frame_layers.temporal_taps``): on VMF-2G at
64 frames those pads took 4.0 ms of the int8 program's 53 ms, as long as in the fp32 program, plus
their two conversions each (ETDump, AMD EPYC Zen 5, 2026-12-05).

XNNPACK's own pad takes int8 tensors (``xnn_define_static_constant_pad`` on ``qint8``) when the
input and output share one range, which ``pt2e_xnnpack.share_pad_ranges`` gives every zero pad of
an int8 tensor. :class:`Int8ConstantPadConfig` claims that pattern as one int8 pad; a pad whose
two ranges differ stays fp32 as before, since XNNPACK refuses to create it.
"""

from __future__ import annotations

import torch
from executorch.backends.xnnpack.partition.config.generic_node_configs import ConstantPadConfig
from executorch.backends.xnnpack.partition.config.xnnpack_config import ConfigPrecisionType
from executorch.backends.xnnpack.utils.quant_utils import is_dequant, is_quant
from torch.export import ExportedProgram


def keeps_its_range(node: torch.fx.Node) -> bool:
    """Whether ``node`` reads one ``dequantize_per_tensor`` and feeds one ``quantize_per_tensor`` of the same range."""
    source = node.args[0]
    if not (isinstance(source, torch.fx.Node) and is_dequant(source)) or len(node.users) != 1:
        return False
    sink = next(iter(node.users))
    return is_quant(sink) and source.args[1:] == sink.args[1:]


class Int8ConstantPadConfig(ConstantPadConfig):
    """``ConstantPadConfig`` that also lowers ``dequantize → pad → quantize`` of one range as an int8 pad."""

    def supported_precision_types(self) -> list[ConfigPrecisionType]:
        """fp32, and statically quantized int8."""
        return [ConfigPrecisionType.FP32, ConfigPrecisionType.STATIC_QUANT]

    def get_node_and_deps(self, node: torch.fx.Node, ep: ExportedProgram) -> list[torch.fx.Node]:
        """The pad with its ``dequantize`` and ``quantize`` when it keeps its range, else the fp32 pad alone."""
        if not keeps_its_range(node):
            return [node]
        return super().get_node_and_deps(node, ep)
