"""The captured program written in core ATen node by node: same outputs, same lowered program, one re-trace fewer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.export import ExportedProgram

from vmf_deploy.export.core_aten import REWRITES, to_core_aten
from vmf_deploy.models.registry import build_seeded_model
from vmf_deploy.rewrites import run_rewrites


class _EveryOp(nn.Module):
    """Calls each op :data:`REWRITES` swaps, on 4D tensors XNNPACK takes (a reshape that views and one that copies)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1, groups=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self.conv(F.pad(x, (0, 0, 0, 0, 1, 1))))  # (2, 8, 6, 6) after a pad of the channels
        y = torch.softmax(y, dim=-1).transpose(1, 2)  # (2, 6, 8, 6), not contiguous
        y = y.reshape(2, 6, 48, 1)  # a copy
        return y.reshape(1, 2, 6, 48) + 1.0  # a view


def _capture(model: nn.Module, example: torch.Tensor) -> ExportedProgram:
    with torch.no_grad():
        return torch.export.export(model.eval(), (example,), strict=False)


def _decompositions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the table size of every ``run_decompositions`` call (0: functionalisation only).

    XNNPACK's pattern graphs (built once per process, by exports of their own) are built first.
    """
    from executorch.backends.xnnpack.partition.graphs import bilinear_2d, sdpa

    bilinear_2d.get_graphs()
    sdpa.get_graphs()
    calls: list[int] = []
    stock = ExportedProgram.run_decompositions

    def counted(self: ExportedProgram, table: dict | None = None, *args: object, **kwargs: object) -> ExportedProgram:
        calls.append(len(table) if table is not None else -1)
        return stock(self, table, *args, **kwargs)

    monkeypatch.setattr(ExportedProgram, "run_decompositions", counted)
    return calls


def _lower(program: ExportedProgram) -> bytes:
    from executorch.exir import to_edge_transform_and_lower

    from vmf_deploy.export.xnnpack_partitioner import CheckedXnnpackPartitioner
    from vmf_deploy.export.xnnpack_passes import idle_passes_skipped

    with idle_passes_skipped():
        edge = to_edge_transform_and_lower(program, partitioner=[CheckedXnnpackPartitioner()])
    return edge.to_executorch().buffer


def test_every_op_is_swapped_and_the_outputs_are_unchanged() -> None:
    torch.manual_seed(0)
    model, x = _EveryOp(), torch.randn(2, 2, 6, 6)
    program = _capture(model, x)
    swapped = to_core_aten(program)
    assert set(swapped) == {str(op) for op in REWRITES} and swapped["aten.reshape.default"] == 2
    targets = {node.target for node in program.graph.nodes if node.op == "call_function"}
    assert not targets & set(REWRITES)
    assert torch.ops.aten.clone.default in targets  # the copying reshape's copy
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), model(x), rtol=0, atol=0)


def test_arguments_without_a_one_op_core_form_are_left() -> None:
    class Other(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.pad(x, (1, 1), mode="reflect").softmax(-1, dtype=torch.float64)

    program = _capture(Other(), torch.randn(1, 2, 5))
    assert not to_core_aten(program)


def test_the_lowered_program_is_the_stock_one_without_the_second_decomposition(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _decompositions(monkeypatch)
    torch.manual_seed(0)
    model, x = _EveryOp(), torch.randn(2, 2, 6, 6)
    stock = _lower(_capture(model, x))
    stock_calls = list(calls)
    calls.clear()
    program = _capture(model, x)
    to_core_aten(program)
    assert _lower(program) == stock
    assert len(stock_calls) == 2 and calls == [0]  # functionalisation only


@pytest.mark.slow  # two lowerings of a VMF model: 70 s here
def test_vmf_frames_program_is_byte_identical(monkeypatch: pytest.MonkeyPatch) -> None:
    """A VMF frames model (one block per stage, 4 frames): the same ``.pte`` as the stock lowering's."""
    model = build_seeded_model("560m", frames=4, resolution=32, blocks=(1, 1, 1, 1)).eval()
    model.example_input_shape = model.cfg.input_shape
    frames, _ = run_rewrites("executorch", "module", model, fuse=True)
    x = torch.zeros(model.cfg.input_shape)
    calls = _decompositions(monkeypatch)
    stock = _lower(_capture(frames, x))
    program = _capture(frames, x)
    assert to_core_aten(program)
    calls.clear()
    assert _lower(program) == stock
    assert calls == [0]
