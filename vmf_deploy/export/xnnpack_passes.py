"""Skip the XNNPACK preprocess passes that have nothing to change in the program.

``XnnpackBackend.preprocess`` runs 17 graph passes on every delegated program. Each is an
``ExportPass`` that re-traces the whole graph through fake tensors and is then re-verified, whether
or not it changes anything: about 2.5 s per pass on 560m here. Most of them only act on ops that
the frames model does not contain (batch norm, PReLU, conv1d, max-pool indices, bilinear upsampling,
``[add]mm`` inside a Linear, attention in SDPA's decomposed form, dim-order copies, ``_to_copy``,
``cat`` of more than 5 tensors, pads of int8 tensors). :data:`WORK_TEST` holds, per such pass, a
test that is true whenever the pass could change the graph (the ops it looks for are present,
under the conditions the pass itself checks); inside :func:`idle_passes_skipped` a pass whose test
is false is not run. Passes without a test always run. The tests check each work test on a graph
holding its trigger and lower models both ways (byte-identical programs); 560m's fp32 and int8
programs were compared the same way (``benchmarks/NOTES.md``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import ClassVar

import torch
from executorch.backends.transforms.remove_getitem_op import RemoveGetItemPass
from executorch.backends.xnnpack import xnnpack_preprocess
from executorch.backends.xnnpack._passes import XNNPACKPassManager
from executorch.backends.xnnpack._passes.conv1d_unsqueeze_pass import Conv1dUnsqueezePass
from executorch.backends.xnnpack._passes.convert_to_linear import ConvertToLinearPass
from executorch.backends.xnnpack._passes.convert_to_sdpa import ConvertToSDPAPass
from executorch.backends.xnnpack._passes.convert_to_upsample_bilinear2d import ConvertToUpsampleBilinear2d
from executorch.backends.xnnpack._passes.decompose_batch_norm import DecomposeBatchNorm
from executorch.backends.xnnpack._passes.decompose_cat import DecomposeConcatenate
from executorch.backends.xnnpack._passes.fuse_batch_norm import FuseBatchNormPass
from executorch.backends.xnnpack._passes.insert_pad_qdq import InsertPadQDQPass
from executorch.backends.xnnpack._passes.prelu_reshape_pass import PReLUReshapePass
from executorch.backends.xnnpack._passes.propagate_custom_meta_pass import PropagateCustomMetaPass
from executorch.backends.xnnpack._passes.remove_redundant_copy_pass import RemoveRedundantCopyPass
from executorch.backends.xnnpack._passes.xnnpack_pass import XNNPACKPass
from executorch.backends.xnnpack.partition.graphs import bilinear_2d, sdpa
from executorch.backends.xnnpack.utils.quant_utils import is_dequant, is_quant
from executorch.exir.dialects._ops import ops as exir_ops
from executorch.exir.pass_base import ExportPass
from executorch.exir.passes.dim_order_ops_registry import MemoryFormatOpsMap
from executorch.exir.passes.memory_format_ops_pass import DimOrderOpsRevertPass
from executorch.exir.program._program import _transform
from torch.export import ExportedProgram
from torch.fx.passes.utils.source_matcher_utils import get_source_partitions

WorkTest = Callable[[torch.fx.Graph], bool]


def _targets(graph: torch.fx.Graph) -> set:
    return {node.target for node in graph.nodes if node.op == "call_function"}


def _has_any(*ops: object) -> WorkTest:
    """True when the graph calls one of ``ops``."""
    return lambda graph: not _targets(graph).isdisjoint(ops)


def _could_match(patterns: Callable[[], list[torch.fx.GraphModule]], common: tuple) -> WorkTest:
    """True when the graph calls every op of one of the patterns (a ``SubgraphMatcher`` match needs that).

    ``common`` are ops every pattern calls: a graph without them cannot match, and the patterns, which
    ExecuTorch builds by exporting small models (6 s for these two sets here), are not built.
    """
    def test(graph: torch.fx.Graph) -> bool:
        targets = _targets(graph)
        return set(common) <= targets and any(_targets(pattern.graph) <= targets for pattern in patterns())

    return test


def _has_linear_mm(graph: torch.fx.Graph) -> bool:
    """ConvertToLinearPass's own test: an ``[add]mm``/``bmm`` inside a Linear's source partition."""
    partitions = get_source_partitions(graph, ConvertToLinearPass.linear_modules)
    return any(node.target in ConvertToLinearPass.targets
               for group in partitions.values() for partition in group for node in partition.nodes)


def _has_conv1d(graph: torch.fx.Graph) -> bool:
    """A convolution whose weight is 3D (Conv1dUnsqueezePass's test; a weight without a shape counts)."""
    for node in graph.nodes:
        if node.op == "call_function" and node.target == exir_ops.edge.aten.convolution.default:
            weight = node.args[1]
            value = weight.meta.get("val") if isinstance(weight, torch.fx.Node) else None
            if value is None or value.dim() == 3:
                return True
    return False


def _has_long_cat(graph: torch.fx.Graph) -> bool:
    """A ``cat`` of more than 5 tensors (DecomposeConcatenate splits those; XNNPACK takes at most 5)."""
    return any(node.op == "call_function" and node.target == exir_ops.edge.aten.cat.default
               and len(node.args[0]) > 5 for node in graph.nodes)


def _has_padded_dequant(graph: torch.fx.Graph) -> bool:
    """A ``constant_pad_nd`` of a dequantized tensor (InsertPadQDQPass quantizes those pads)."""
    return any(node.op == "call_function" and node.target == exir_ops.edge.aten.constant_pad_nd.default
               and isinstance(node.args[0], torch.fx.Node) and is_dequant(node.args[0]) for node in graph.nodes)


def _has_custom_meta_qdq(graph: torch.fx.Graph) -> bool:
    """A quantize/dequantize whose input carries ``custom`` meta (PropagateCustomMetaPass copies it)."""
    return any((is_quant(node) or is_dequant(node)) and node.args and isinstance(node.args[0], torch.fx.Node)
               and "custom" in node.args[0].meta for node in graph.nodes)


BILINEAR_COMMON_OPS = (exir_ops.edge.aten.upsample_bilinear2d.vec,)
"""Ops every bilinear-upsampling pattern graph calls (a test checks them against ``bilinear_2d.get_graphs()``)."""
SDPA_COMMON_OPS = (exir_ops.edge.aten.logical_not.default, exir_ops.edge.aten.any.dim, exir_ops.edge.aten.where.self)
"""Ops every decomposed-SDPA pattern graph calls (its mask handling; a test checks them against ``sdpa.get_graphs()``)."""

_BATCH_NORM = _has_any(exir_ops.edge.aten.native_batch_norm.default,
                       exir_ops.edge.aten._native_batch_norm_legit_no_training.default)

WORK_TEST: dict[type, WorkTest] = {
    ConvertToUpsampleBilinear2d: _could_match(bilinear_2d.get_graphs, BILINEAR_COMMON_OPS),
    ConvertToLinearPass: _has_linear_mm,
    ConvertToSDPAPass: _could_match(sdpa.get_graphs, SDPA_COMMON_OPS),
    FuseBatchNormPass: _BATCH_NORM,
    DecomposeBatchNorm: _BATCH_NORM,
    RemoveGetItemPass: _has_any(exir_ops.edge.aten.max_pool2d_with_indices.default, exir_ops.edge.aten.max.dim),
    Conv1dUnsqueezePass: _has_conv1d,
    PReLUReshapePass: _has_any(exir_ops.edge.aten._prelu_kernel.default),
    DimOrderOpsRevertPass: _has_any(*MemoryFormatOpsMap),
    PropagateCustomMetaPass: _has_custom_meta_qdq,
    DecomposeConcatenate: _has_long_cat,
    InsertPadQDQPass: _has_padded_dequant,
    RemoveRedundantCopyPass: _has_any(exir_ops.edge.aten._to_copy.default),
}
"""Per XNNPACK pass: true when the pass could change the graph. Passes not listed always run."""


class IdleSkippingPassManager(XNNPACKPassManager):
    """``XNNPACKPassManager`` that skips a pass whose :data:`WORK_TEST` finds nothing to do in the current graph."""

    skipped: ClassVar[list[str]] = []
    """Where the names of skipped passes are appended (:func:`idle_passes_skipped` gives each block its own list)."""

    def transform(self) -> ExportedProgram:
        """Run the passes in order, each on the previous one's program, skipping the idle ones."""
        program = self.exported_program
        for pass_ in self.passes:
            has_work = WORK_TEST.get(pass_)
            if has_work is not None and not has_work(program.graph):
                self.skipped.append(pass_.__name__)
                continue
            if issubclass(pass_, XNNPACKPass):
                transform_pass = pass_(program)
            elif issubclass(pass_, ExportPass):
                transform_pass = pass_()
            else:
                raise TypeError(f"expected an XNNPACKPass or ExportPass, got {pass_}")
            program = _transform(program, transform_pass)
        return program


@contextlib.contextmanager
def idle_passes_skipped() -> Iterator[list[str]]:
    """Within the block ``XnnpackBackend.preprocess`` skips idle passes; yields the skipped passes' names."""
    skipped: ClassVar[list[str]] = []
    manager = type("IdleSkippingPassManager", (IdleSkippingPassManager,), {"skipped": skipped})
    previous = xnnpack_preprocess.XNNPACKPassManager
    xnnpack_preprocess.XNNPACKPassManager = manager
    try:
        yield skipped
    finally:
        xnnpack_preprocess.XNNPACKPassManager = previous
