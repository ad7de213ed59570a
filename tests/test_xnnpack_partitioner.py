"""The checked XNNPACK partitioner: the same program as the stock one, with the op check run once."""

from __future__ import annotations

import pytest
import torch
from torch import nn

pytest.importorskip("executorch.exir")


class _KeptOps(nn.Module):
    """Conv, hardswish, max-pool and Linear: three of the ops XNNPACK asks ``to_edge`` to keep whole."""

    def __init__(self, pool_stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.pool = nn.MaxPool2d(kernel_size=2 if pool_stride <= 2 else 1, stride=pool_stride)
        self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pool(nn.functional.hardswish(self.conv(x)))
        return self.fc(y.mean(dim=(2, 3)))


def _program(pool_stride: int) -> torch.export.ExportedProgram:
    torch.manual_seed(0)
    return torch.export.export(_KeptOps(pool_stride).eval(), (torch.randn(2, 3, 16, 16),), strict=False)


def _lower(program: torch.export.ExportedProgram, checked: bool) -> bytes:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    from vmf_deploy.export.xnnpack_partitioner import CheckedXnnpackPartitioner

    partitioner = CheckedXnnpackPartitioner() if checked else XnnpackPartitioner()
    return to_edge_transform_and_lower(program, partitioner=[partitioner]).to_executorch().buffer


def _quantized(program: torch.export.ExportedProgram) -> torch.export.ExportedProgram:
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(program.module(), quantizer)
    for seed in range(4):
        prepared(torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(seed)))
    return torch.export.export(convert_pt2e(prepared), (torch.randn(2, 3, 16, 16),), strict=False)


def _decided_check(program: torch.export.ExportedProgram) -> tuple[list, object]:
    from vmf_deploy.export.xnnpack_partitioner import CheckedXnnpackPartitioner

    return CheckedXnnpackPartitioner().ops_to_not_decompose(program.run_decompositions({}))


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_same_program_as_the_stock_partitioner(precision: str) -> None:
    program = _program(pool_stride=2)
    if precision == "int8":
        program = _quantized(program)
    ops, check = _decided_check(program)
    assert torch.ops.aten.linear.default in ops and check is None  # every kept node passes: the check is skipped
    assert _lower(program, checked=True) == _lower(program, checked=False)


def test_a_node_failing_the_check_keeps_the_stock_path() -> None:
    from vmf_deploy.export.xnnpack_partitioner import nodes_failing

    program = _program(pool_stride=3)  # XNNPACK's max-pool needs stride <= kernel size
    ops, check = _decided_check(program)
    assert check is not None
    failing = nodes_failing(program.run_decompositions({}), ops, check)
    assert [node.target for node in failing] == [torch.ops.aten.max_pool2d.default]
    assert _lower(program, checked=True) == _lower(program, checked=False)
