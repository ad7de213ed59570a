"""``xnnpack_int8_pad``: XNNPACK pads an int8 tensor in int8, and leaves a pad that changes range in fp32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from xnnpack_int8 import profiled_run, quantized_program

SHAPE = (4, 8, 6, 6)  # four frames of one clip, frames in the batch as in the ExecuTorch model


class TapNet(torch.nn.Module):
    """conv → a temporal tap that zero-pads the frames → conv: the frames model's pad between two int8 convs."""

    def __init__(self) -> None:
        super().__init__()
        self.first = torch.nn.Conv2d(8, 8, 1)
        self.second = torch.nn.Conv2d(8, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.first(x)
        previous = F.pad(y, (0, 0, 0, 0, 0, 0, 1, 0))[: y.shape[0]]  # frame t-1, zeros before the first
        return self.second(previous)


def _profiled_ops(partitioner: str, directory: Path) -> tuple[dict[str, int], float]:
    """TapNet quantized and lowered with ``partitioner``: the XNNPACK ops it runs and its error (``profiled_run``)."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

    from vmf_deploy.export.xnnpack_partitioner import CheckedXnnpackPartitioner

    torch.manual_seed(0)
    model = TapNet().eval()
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal(SHAPE).astype(np.float32) for _ in range(8)]
    options = {"per_channel": True, "calibration_method": "minmax", "fp32_modules": [], "fp32_outputs": False,
               "kept_linears": "fp32", "dyrelu_application": "int8"}
    chosen = CheckedXnnpackPartitioner() if partitioner == "vmf" else XnnpackPartitioner()
    _, pte = quantized_program(model, clips, options, ("aten.convolution",), chosen)
    return profiled_run(pte, model, clips, directory)


def test_a_pad_between_int8_convs_runs_in_int8(tmp_path: Path) -> None:
    ours, error = _profiled_ops("vmf", tmp_path / "vmf")
    stock, stock_error = _profiled_ops("executorch", tmp_path / "executorch")
    assert ours.get("Constant Pad (ND, X8)") == 1 and "Constant Pad (ND, X32)" not in ours
    assert stock.get("Constant Pad (ND, X32)") == 1 and "Constant Pad (ND, X8)" not in stock  # ExecuTorch's configs
    assert stock["Convert (NC)"] == ours["Convert (NC)"] + 2  # the fp32 pad's dequantize and quantize
    assert error == pytest.approx(stock_error, abs=1e-6)  # the same int8 arithmetic: zero is the zero point
    assert error <= 0.05


def _pad_between(scale_in: float, scale_out: float) -> torch.fx.Node:
    """The pad node of ``dequantize(scale_in) → zero pad → quantize(scale_out)``."""
    import torchao.quantization.pt2e.quantize_pt2e  # noqa: F401 - registers the quantized_decomposed ops

    ops = torch.ops.quantized_decomposed

    def pad(x: torch.Tensor) -> torch.Tensor:
        y = ops.dequantize_per_tensor.default(x, scale_in, 0, -128, 127, torch.int8)
        padded = torch.ops.aten.constant_pad_nd.default(y, [1, 1])
        return ops.quantize_per_tensor.default(padded, scale_out, 0, -128, 127, torch.int8)

    graph = torch.fx.symbolic_trace(pad).graph
    return next(n for n in graph.nodes if n.target is torch.ops.aten.constant_pad_nd.default)


def test_only_a_pad_that_keeps_its_range_is_claimed_as_int8() -> None:
    from vmf_deploy.export.xnnpack_int8_pad import Int8ConstantPadConfig, keeps_its_range

    same, other = _pad_between(0.1, 0.1), _pad_between(0.1, 0.2)
    assert keeps_its_range(same)
    assert not keeps_its_range(other)  # XNNPACK would refuse to create it: left in fp32
    config = Int8ConstantPadConfig()
    config.set_enabled_precision_types(None)
    assert len(config.get_node_and_deps(same, None)) == 3  # the pad with its dequantize and quantize
    assert config.get_node_and_deps(other, None) == [other]
