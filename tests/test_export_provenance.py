"""Sharing fx provenance records during lowering: scoped, restored, and the program unchanged."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from vmf_deploy.export.provenance import shared_provenance


def _node_source() -> object:
    from torch.fx.traceback import NodeSource

    graph = torch.fx.symbolic_trace(nn.ReLU()).graph
    node = next(n for n in graph.nodes if n.op == "call_function" or n.op == "call_module")
    node.meta["from_node"] = [NodeSource(None, "earlier_pass")]
    return NodeSource(node, "a_pass")


def test_deepcopy_shares_inside_and_copies_after() -> None:
    from torch.fx.traceback import NodeSource

    source = _node_source()
    with shared_provenance():
        assert copy.deepcopy(source) is source
        assert copy.deepcopy([source])[0] is source
    copied = copy.deepcopy(source)
    assert copied is not source and copied == source
    assert "__deepcopy__" not in NodeSource.__dict__


def test_restored_after_an_error() -> None:
    from torch.fx.traceback import NodeSource

    with pytest.raises(RuntimeError, match="boom"), shared_provenance():
        raise RuntimeError("boom")
    assert "__deepcopy__" not in NodeSource.__dict__


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x)).mean(dim=(2, 3), keepdim=True).reshape(x.shape[0], 8)
        return self.fc(y)


def _lower(shared: bool) -> bytes:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    torch.manual_seed(0)
    exported = torch.export.export(_Tiny().eval(), (torch.randn(2, 3, 16, 16),), strict=False)
    context = shared_provenance() if shared else torch.no_grad()
    with context:
        return to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()]).to_executorch().buffer


def test_lowered_program_is_byte_identical() -> None:
    pytest.importorskip("executorch.exir")
    assert _lower(shared=True) == _lower(shared=False)
