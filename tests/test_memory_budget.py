"""Liveness analysis behind the memory budget: weights + largest activation set."""

from __future__ import annotations

import torch
from torch import nn

from vmf_deploy import build_seeded_model
from vmf_deploy.bench.memory_budget import memory_budget

N = 4 * 8 * 16 * 16  # elements of the test input
NB = N * 4  # its bytes in fp32


class Residual(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = x * 2
        b = a + 1  # x, a and b alive at once
        return b + x


class ViewKeepsBase(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = x * 2
        v = a.view(-1)  # no new storage, but a stays alive as long as v is read
        b = x + 1
        c = b * 3  # a (through v), b and c alive at once; x was freed after b
        return c + v.view_as(c)


class Shrinking(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).sum(dim=-1)


def test_residual_keeps_three_maps_alive() -> None:
    b = memory_budget(Residual(), torch.zeros(4, 8, 16, 16))
    assert b.weights_bytes == 0
    assert b.activation_bytes == 3 * NB


def test_views_allocate_nothing_and_extend_their_base() -> None:
    b = memory_budget(ViewKeepsBase(), torch.zeros(4, 8, 16, 16))
    assert b.activation_bytes == 3 * NB


def test_weights_are_counted_apart_from_activations() -> None:
    m = Shrinking()
    b = memory_budget(m, torch.zeros(4, 8, 16, 16))
    assert b.weights_bytes == (16 * 2 + 2) * 4
    # input (N) + linear output (N/8) alive together; the sum's output is smaller still
    assert b.activation_bytes == NB + NB // 8
    assert b.limit_bytes() == 2 * (b.weights_bytes + b.activation_bytes)


def test_vmf_budget_covers_its_input_and_its_parameters() -> None:
    model = build_seeded_model("560m", seed=0, frames=8)
    shape = tuple(model.cfg.input_shape)
    b = memory_budget(model, torch.zeros(shape))
    params = sum(p.numel() for p in model.parameters()) * 4
    assert params <= b.weights_bytes <= params + sum(t.numel() * t.element_size() for t in model.buffers())
    input_bytes = torch.zeros(shape).numel() * 4
    assert input_bytes < b.activation_bytes < 10 * input_bytes
