"""Skipping idle ``to_edge`` passes: each pass still runs where it has work, and the program never changes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

pytest.importorskip("executorch.exir")


class _Plain(nn.Module):
    """Conv, Linear and a float constant: nothing for any of the skippable passes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv2d(3, 8, 3), nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x) + 0.5).mean(dim=(2, 3)))


class _MixedTypes(nn.Module):
    """A float tensor plus an int64 one: ``RemoveMixedTypeOperators`` casts the int64 operand."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.arange(x.shape[-1])


class _SymbolicSize(nn.Module):
    """A tensor scaled by its own (dynamic) batch size: ``SymToTensorPass`` wraps the SymInt."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * x.shape[0]


def _capture(model: nn.Module, dynamic: bool) -> torch.export.ExportedProgram:
    x = torch.randn(2, 3, 8, 8)
    shapes = {"x": {0: torch.export.Dim("batch", min=1, max=4)}} if dynamic else None
    return torch.export.export(model.eval(), (x,), dynamic_shapes=shapes, strict=False)


def _to_edge(model: nn.Module, skip: bool, dynamic: bool = False) -> tuple[str, list[str]]:
    """The edge program's code (and the skipped passes) after ``to_edge``, with or without skipping."""
    from executorch.exir import to_edge

    from vmf_deploy.export.edge_passes import idle_edge_passes_skipped

    skipped: list[str] = []
    if skip:
        with idle_edge_passes_skipped() as skipped:
            edge = to_edge(_capture(model, dynamic))
    else:
        edge = to_edge(_capture(model, dynamic))
    return edge.exported_program().graph_module.code, skipped


def _lowered(model: nn.Module, skip: bool) -> tuple[bytes, list[str]]:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    from vmf_deploy.export.edge_passes import idle_edge_passes_skipped

    torch.manual_seed(0)
    skipped: list[str] = []
    if skip:
        with idle_edge_passes_skipped() as skipped:
            edge = to_edge_transform_and_lower(_capture(model, False), partitioner=[XnnpackPartitioner()])
    else:
        edge = to_edge_transform_and_lower(_capture(model, False), partitioner=[XnnpackPartitioner()])
    return edge.to_executorch().buffer, skipped


def test_a_plain_model_skips_all_four_and_lowers_to_the_same_program() -> None:
    from vmf_deploy.export.edge_passes import WORK_TEST

    torch.manual_seed(0)
    model = _Plain()
    stock, _ = _lowered(model, skip=False)
    skipping, skipped = _lowered(model, skip=True)
    assert skipping == stock
    assert set(skipped) == {p.__name__ for p in WORK_TEST}


@pytest.mark.parametrize(("model", "dynamic", "pass_name"), [
    (_MixedTypes(), False, "RemoveMixedTypeOperators"),
    (_SymbolicSize(), True, "SymToTensorPass"),
])
def test_a_pass_with_work_still_runs(model: nn.Module, dynamic: bool, pass_name: str) -> None:
    stock, _ = _to_edge(model, skip=False, dynamic=dynamic)
    skipping, skipped = _to_edge(model, skip=True, dynamic=dynamic)
    assert pass_name not in skipped
    assert skipping == stock


def test_work_tests_see_their_triggers() -> None:
    from executorch.exir.passes.normalize_transpose_pass import NormalizeTransposePass
    from executorch.exir.passes.replace_broken_ops_with_function_ops_pass import ReplaceBrokenOpsWithFunctionalOpsPass

    from vmf_deploy.export.edge_passes import WORK_TEST

    def calling(target: object) -> torch.fx.GraphModule:
        graph = torch.fx.Graph()
        graph.output(graph.call_function(target, (graph.placeholder("x"),)))
        return torch.fx.GraphModule(nn.Module(), graph)

    assert WORK_TEST[NormalizeTransposePass](calling(torch.ops.aten.t.default))
    assert not WORK_TEST[NormalizeTransposePass](calling(torch.ops.aten.permute_copy.default))
    assert WORK_TEST[ReplaceBrokenOpsWithFunctionalOpsPass](calling(torch.ops.aten.alias.default))
    assert not WORK_TEST[ReplaceBrokenOpsWithFunctionalOpsPass](calling(torch.ops.aten.view_copy.default))


def test_the_stock_passes_are_restored_after_the_block() -> None:
    from executorch.exir.program import _program

    from vmf_deploy.export.edge_passes import idle_edge_passes_skipped

    stock = _program._get_aten_to_edge_passes
    with pytest.raises(RuntimeError), idle_edge_passes_skipped():
        assert _program._get_aten_to_edge_passes is not stock
        raise RuntimeError
    assert _program._get_aten_to_edge_passes is stock
