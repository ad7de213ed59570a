"""The executorch recipe's ``dyrelu_application``: a kept DyReLU's ``relu(x) + a2·x`` in int8, its slopes in fp32;
and its ``fp32_op_types``: the adds and muls outside that application left fp32."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from xnnpack_int8 import quantized_program

from vmf_deploy.quantize.pt2e_xnnpack import dyrelu_application_nodes, fp32_op_type_nodes

SHAPE = (4, 16, 8, 8)  # four frames of one clip, frames in the batch as in the ExecuTorch model


class Slopes(torch.nn.Module):
    """A fused dynamic ReLU: ``a2`` from a coefficient MLP over the pooled map, then ``relu(x) + a2·x``."""

    def __init__(self) -> None:
        super().__init__()
        self.reduce = torch.nn.Linear(16, 8)
        self.expand = torch.nn.Linear(8, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a2 = F.hardtanh(self.expand(torch.relu(self.reduce(x.mean((2, 3))))), -1.0, 0.0)
        return F.relu(x) + a2.reshape(x.shape[0], x.shape[1], 1, 1) * x


class Net(torch.nn.Module):
    """conv → kept ``Slopes`` → a temporal tap that zero-pads the frames → conv."""

    def __init__(self) -> None:
        super().__init__()
        self.expand = torch.nn.Conv2d(16, 16, 1)
        self.act = Slopes()
        self.project = torch.nn.Conv2d(16, 16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.expand(x))
        previous = F.pad(y, (0, 0, 0, 0, 0, 0, 1, 0))[: y.shape[0]]  # frame t-1, zeros before the first
        return self.project(y + previous)


def _lowered(application: str) -> tuple[dict, bytes, torch.nn.Module, list[np.ndarray]]:
    """Net quantized with ``dyrelu_application`` and lowered to XNNPACK: its compute precision, .pte bytes, model, clips."""
    torch.manual_seed(0)
    model = Net().eval()
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal(SHAPE).astype(np.float32) for _ in range(16)]
    options = {"per_channel": True, "calibration_method": "minmax", "fp32_modules": ["Slopes"], "fp32_outputs": False,
               "kept_linears": "fp32", "dyrelu_application": application}
    precision, pte = quantized_program(model, clips, options, ("aten.mul", "aten.add", "aten.linear"))
    return precision, pte, model, clips


def test_the_application_is_the_output_sum_and_its_product() -> None:
    model = Net().eval()
    exported = torch.export.export(model, (torch.zeros(SHAPE),), strict=False)
    names = dyrelu_application_nodes(exported.graph, ["act"])
    targets = {str(n.target) for n in exported.graph.nodes if n.name in names}
    assert targets == {"aten.add.Tensor", "aten.mul.Tensor"}
    assert len(names) == 2  # the tap's add is outside the module
    assert dyrelu_application_nodes(exported.graph, ["project"]) == set()  # a conv ends in no such sum


def test_int8_application_runs_in_xnnpack_and_keeps_the_slopes_fp32() -> None:
    from executorch.runtime import Runtime

    fp32, _, _, _ = _lowered("fp32")
    int8, pte, model, clips = _lowered("int8")
    applied = dyrelu_application_nodes(torch.export.export(model, (torch.from_numpy(clips[0]),), strict=False).graph,
                                       ["act"])
    assert len(applied) == 2
    assert fp32["by_op"]["aten.mul"] == {"int8": 0, "dynamic_int8": 0, "weight_only_int8": 0, "fp32": 1}
    assert int8["by_op"]["aten.mul"] == {"int8": 1, "dynamic_int8": 0, "weight_only_int8": 0, "fp32": 0}
    assert int8["by_op"]["aten.add"]["int8"] == fp32["by_op"]["aten.add"]["int8"] + 1  # the module's sum
    kept = {"int8": 0, "dynamic_int8": 0, "weight_only_int8": 0, "fp32": 2}
    assert int8["by_op"]["aten.linear"] == fp32["by_op"]["aten.linear"] == kept
    program = Runtime.get().load_program(pte).load_method("forward")  # the int8 pad is accepted by XNNPACK
    for clip in clips[:4]:
        with torch.no_grad():
            expected = model(torch.from_numpy(clip)).numpy()
        got = program.execute([torch.from_numpy(clip)])[0].numpy()
        assert np.abs(got - expected).max() <= 0.1 * np.abs(expected).max()


def test_fp32_op_types_keep_the_adds_outside_the_application_fp32() -> None:
    model = Net().eval()
    graph = torch.export.export(model, (torch.zeros(SHAPE),), strict=False).graph
    classes = {name: type(module).__name__ for name, module in model.named_modules()}
    options = {"fp32_modules": ["Slopes"], "dyrelu_application": "int8", "fp32_op_types": ["add", "mul"]}
    kept = fp32_op_type_nodes(graph, options, classes)
    assert sorted(kept.values()) == ["add"]  # the tap's sum: the module's sum and product are its application
    assert set(kept).isdisjoint(dyrelu_application_nodes(graph, ["act"]))
    assert fp32_op_type_nodes(graph, {**options, "fp32_op_types": []}, classes) == {}
    # with the application in fp32 every add and mul is listed (the module's stay fp32 either way)
    assert sorted(fp32_op_type_nodes(graph, {**options, "dyrelu_application": "fp32"}, classes).values()) == [
        "add", "add", "mul"]



class TwoBranches(torch.nn.Module):
    """Two convs summed: the output is the add's, so nothing after it quantizes that sum."""

    def __init__(self) -> None:
        super().__init__()
        self.left, self.right = torch.nn.Conv2d(16, 16, 1), torch.nn.Conv2d(16, 16, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.left(x) + self.right(x)


def test_an_fp32_add_of_int8_convs_runs_in_xnnpack_unrounded() -> None:
    from executorch.runtime import Runtime

    torch.manual_seed(0)
    model = TwoBranches().eval()
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal(SHAPE).astype(np.float32) for _ in range(8)]
    options = {"per_channel": True, "calibration_method": "minmax", "fp32_modules": [], "fp32_outputs": False,
               "kept_linears": "fp32", "dyrelu_application": "int8"}
    outputs = {}
    for kept in ([], ["add"]):
        precision, pte = quantized_program(model, clips, {**options, "fp32_op_types": kept},
                                           ("aten.convolution", "aten.add"))
        assert precision["by_op"]["aten.convolution"]["int8"] == 2
        outputs[bool(kept)] = Runtime.get().load_program(pte).load_method("forward").execute(
            [torch.from_numpy(clips[0])])[0].numpy()
        assert precision["by_op"]["aten.add"]["fp32" if kept else "int8"] == 1
    assert len(np.unique(outputs[False])) <= 256 < len(np.unique(outputs[True]))  # the int8 add rounds its sum
    with torch.no_grad():
        expected = model(torch.from_numpy(clips[0])).numpy()
    assert np.abs(outputs[True] - expected).max() <= 0.1 * np.abs(expected).max()
