"""Skipping idle XNNPACK passes: each pass still runs where it has work, and the program never changes."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

pytest.importorskip("executorch.exir")


class _ConvBatchNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class _BatchNormAlone(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x + 1)


class _Conv1d(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.flatten(2))


class _Plain(nn.Module):
    """Conv and Linear only: nothing for any of the skippable passes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv2d(3, 8, 3), nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))


LOWERED_CASES = {
    "FuseBatchNormPass": _ConvBatchNorm,
    "DecomposeBatchNorm": _BatchNormAlone,
    "Conv1dUnsqueezePass": _Conv1d,
}
"""Per pass, a model whose lowering gives that pass work (these three change the graph in our flow)."""


def _graph_calling(target: object, **meta: object) -> torch.fx.Graph:
    """A graph ``x -> target(x)``, the call node carrying ``meta``."""
    graph = torch.fx.Graph()
    node = graph.call_function(target, (graph.placeholder("x"),))
    node.meta.update(meta)
    graph.output(node)
    return graph


def _graph_of(build: object) -> torch.fx.Graph:
    """A graph made by ``build(graph, x)``, which returns the output node."""
    graph = torch.fx.Graph()
    graph.output(build(graph, graph.placeholder("x")))
    return graph


def _cat_of(count: int) -> torch.fx.Graph:
    from executorch.exir.dialects._ops import ops as exir_ops

    return _graph_of(lambda g, x: g.call_function(exir_ops.edge.aten.cat.default, ([x] * count,)))


def _pad_of(dequantized: bool) -> torch.fx.Graph:
    from executorch.exir.dialects._ops import ops as exir_ops

    ops = exir_ops.edge

    def build(g: torch.fx.Graph, x: torch.fx.Node) -> torch.fx.Node:
        if dequantized:
            x = g.call_function(ops.quantized_decomposed.dequantize_per_tensor.default, (x, 0.1, 0, -128, 127,
                                                                                         torch.int8))
        return g.call_function(ops.aten.constant_pad_nd.default, (x, [1, 1]))

    return _graph_of(build)


def _quantized_with_custom_meta() -> torch.fx.Graph:
    from executorch.exir.dialects._ops import ops as exir_ops

    def build(g: torch.fx.Graph, x: torch.fx.Node) -> torch.fx.Node:
        relu = g.call_function(exir_ops.edge.aten.relu.default, (x,))
        relu.meta["custom"] = {"stage": "backbone"}
        return g.call_function(exir_ops.edge.quantized_decomposed.quantize_per_tensor.default,
                               (relu, 0.1, 0, -128, 127, torch.int8))

    return _graph_of(build)


def _graphs_with_work() -> dict[str, list[torch.fx.Graph]]:
    """Per pass whose trigger ``to_edge_transform_and_lower`` never hands XNNPACK here, graphs holding that trigger.

    PReLU, Linear and max-pool are kept whole by the partitioner, so ``_prelu_kernel``, an ``addmm``
    from a Linear and ``max_pool2d_with_indices`` reach the passes only in other flows; the
    SDPA and bilinear passes match their own pattern graphs; the others' triggers are built by hand.
    """
    from executorch.backends.xnnpack.partition.graphs import bilinear_2d, sdpa
    from executorch.exir.dialects._ops import ops as exir_ops

    edge = exir_ops.edge.aten
    return {
        "PReLUReshapePass": [_graph_calling(edge._prelu_kernel.default)],
        "RemoveGetItemPass": [_graph_calling(edge.max_pool2d_with_indices.default), _graph_calling(edge.max.dim)],
        "ConvertToLinearPass": [_graph_calling(edge.addmm.default, source_fn_stack=[("fc", nn.Linear)]),
                                _graph_calling(edge.mm.default, source_fn_stack=[("linear", F.linear)])],
        "ConvertToSDPAPass": [pattern.graph for pattern in sdpa.get_graphs()],
        "ConvertToUpsampleBilinear2d": [pattern.graph for pattern in bilinear_2d.get_graphs()],
        "DimOrderOpsRevertPass": [_graph_calling(exir_ops.edge.dim_order_ops._clone_dim_order.default)],
        "PropagateCustomMetaPass": [_quantized_with_custom_meta()],
        "DecomposeConcatenate": [_cat_of(6)],
        "InsertPadQDQPass": [_pad_of(dequantized=True)],
        "RemoveRedundantCopyPass": [_graph_calling(edge._to_copy.default)],
    }


def _lower(model: nn.Module, skip: bool) -> tuple[bytes, list[str]]:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    from vmf_deploy.export.xnnpack_passes import idle_passes_skipped

    torch.manual_seed(0)
    program = torch.export.export(model.eval(), (torch.randn(1, 3, 8, 8),), strict=False)
    skipped: list[str] = []
    if skip:
        with idle_passes_skipped() as skipped:
            edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    else:
        edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    return edge.to_executorch().buffer, skipped


def test_every_skippable_pass_is_tested() -> None:
    from vmf_deploy.export.xnnpack_passes import WORK_TEST

    assert sorted([*LOWERED_CASES, *_graphs_with_work()]) == sorted(p.__name__ for p in WORK_TEST)


def test_work_tests_see_their_triggers_and_nothing_else() -> None:
    from executorch.exir.dialects._ops import ops as exir_ops

    from vmf_deploy.export.xnnpack_passes import WORK_TEST

    by_name = {p.__name__: test for p, test in WORK_TEST.items()}
    for name, graphs in _graphs_with_work().items():
        for graph in graphs:
            assert by_name[name](graph), f"{name}'s work test misses {list(graph.nodes)}"
    unrelated = [_graph_calling(exir_ops.edge.aten.bmm.default, source_fn_stack=[("attn", torch.bmm)]),
                 _cat_of(5), _pad_of(dequantized=False)]
    for graph in unrelated:
        assert not [p.__name__ for p, test in WORK_TEST.items() if test(graph)], list(graph.nodes)


def test_every_pattern_graph_calls_the_common_ops() -> None:
    """The ops a graph must call before the SDPA / bilinear pattern graphs are built are in every pattern."""
    from executorch.backends.xnnpack.partition.graphs import bilinear_2d, sdpa

    from vmf_deploy.export.xnnpack_passes import BILINEAR_COMMON_OPS, SDPA_COMMON_OPS, _targets

    for patterns, common in ((sdpa.get_graphs(), SDPA_COMMON_OPS), (bilinear_2d.get_graphs(), BILINEAR_COMMON_OPS)):
        assert patterns
        for pattern in patterns:
            assert set(common) <= _targets(pattern.graph), [str(op) for op in common]


def test_pattern_graphs_are_not_built_for_a_graph_without_the_common_ops() -> None:
    from executorch.backends.xnnpack._passes.convert_to_sdpa import ConvertToSDPAPass
    from executorch.exir.dialects._ops import ops as exir_ops

    from vmf_deploy.export import xnnpack_passes

    def refuse() -> list:
        raise AssertionError("pattern graphs built")

    edge = exir_ops.edge.aten
    attention = _graph_of(lambda g, x: g.call_function(edge.bmm.default, (g.call_function(
        edge._softmax.default, (g.call_function(edge.bmm.default, (x, x)), -1, False)), x)))
    assert not xnnpack_passes._could_match(refuse, xnnpack_passes.SDPA_COMMON_OPS)(attention)
    assert not xnnpack_passes.WORK_TEST[ConvertToSDPAPass](attention)
    with_mask = _graph_of(lambda g, x: g.call_function(edge.where.self, (g.call_function(edge.logical_not.default, (
        g.call_function(edge.any.dim, (x, -1)),)), x, x)))
    with pytest.raises(AssertionError, match="pattern graphs built"):
        xnnpack_passes._could_match(refuse, xnnpack_passes.SDPA_COMMON_OPS)(with_mask)


@pytest.mark.parametrize("pass_name", sorted(LOWERED_CASES))
def test_a_pass_with_work_runs_and_the_program_is_unchanged(pass_name: str) -> None:
    model = LOWERED_CASES[pass_name]()
    program, skipped = _lower(model, skip=True)
    assert pass_name not in skipped
    assert program == _lower(model, skip=False)[0]


def test_idle_passes_are_skipped_and_the_program_is_unchanged() -> None:
    from executorch.backends.xnnpack import xnnpack_preprocess

    from vmf_deploy.export.xnnpack_passes import WORK_TEST

    stock = xnnpack_preprocess.XNNPACKPassManager
    program, skipped = _lower(_Plain(), skip=True)
    assert set(skipped) == {p.__name__ for p in WORK_TEST}
    assert xnnpack_preprocess.XNNPACKPassManager is stock  # restored after the block
    assert program == _lower(_Plain(), skip=False)[0]
