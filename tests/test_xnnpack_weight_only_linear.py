"""``xnnpack_weight_only_linear``: which linears are weight-only int8, and moving their bias out keeps the output."""

from __future__ import annotations

import torch
import torchao.quantization.pt2e.quantize_pt2e  # noqa: F401 - registers the quantized_decomposed ops

from vmf_deploy.export.xnnpack_weight_only_linear import is_weight_only_linear, split_weight_only_bias

ops = torch.ops.quantized_decomposed


class WeightOnly(torch.nn.Module):
    """``linear(x, dequantize_per_channel(W_int8), b)``, as ``convert_pt2e`` leaves a weight-only linear."""

    def __init__(self) -> None:
        super().__init__()
        weight = torch.randn(8, 4)
        self.register_buffer("scale", weight.abs().amax(1) / 127)
        self.register_buffer("zero", torch.zeros(8, dtype=torch.int64))
        self.register_buffer("weight", torch.round(weight / self.scale[:, None]).to(torch.int8))
        self.register_buffer("bias", torch.randn(8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = ops.dequantize_per_channel(self.weight, self.scale, self.zero, 0, -127, 127, torch.int8)
        return torch.relu(torch.nn.functional.linear(x, weight, self.bias))


def _traced(module: torch.nn.Module, x: torch.Tensor) -> torch.fx.GraphModule:
    return torch.export.export(module, (x,)).module()


def _linears(graph_module: torch.fx.GraphModule) -> list[torch.fx.Node]:
    return [n for n in graph_module.graph.nodes if n.op == "call_function" and n.target is torch.ops.aten.linear.default]


def test_split_weight_only_bias_moves_the_bias_into_an_add_and_keeps_the_output() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 4)
    graph_module = _traced(WeightOnly(), x)
    expected = graph_module(x)
    (linear,) = _linears(graph_module)
    assert is_weight_only_linear(linear)
    assert split_weight_only_bias(graph_module) == 1
    assert len(linear.args) == 2
    (add,) = linear.users
    assert add.target is torch.ops.aten.add.Tensor and next(iter(add.users)).target is torch.ops.aten.relu.default
    torch.testing.assert_close(graph_module(x), expected, rtol=0, atol=1e-6)
    assert split_weight_only_bias(graph_module) == 0  # nothing left to move


def test_linears_that_are_not_weight_only() -> None:
    class Static(WeightOnly):  # int8 in and out: XNNPACK's static int8 linear
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = ops.dequantize_per_tensor(ops.quantize_per_tensor(x, 0.1, 0, -128, 127, torch.int8),
                                          0.1, 0, -128, 127, torch.int8)
            return ops.quantize_per_tensor(super().forward(x), 0.1, 0, -128, 127, torch.int8)

    class Dynamic(WeightOnly):  # the input's scale computed as it runs: XNNPACK's dynamic int8 linear
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            scale, zero = ops.choose_qparams.tensor(x, -128, 127, 1e-5, torch.int8)
            x = ops.dequantize_per_tensor.tensor(ops.quantize_per_tensor.tensor(x, scale, zero, -128, 127, torch.int8),
                                                 scale, zero, -128, 127, torch.int8)
            return super().forward(x)

    class Fp32(torch.nn.Linear):
        pass

    x = torch.randn(3, 4)
    for module in (Static(), Dynamic(), Fp32(4, 8)):
        (linear,) = _linears(_traced(module, x))
        assert not is_weight_only_linear(linear), type(module).__name__
