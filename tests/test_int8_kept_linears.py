"""The executorch recipe's ``kept_linears``: the linears left out of static int8 (``fp32_modules``, ``fp32_outputs``)
as XNNPACK dynamically quantized linears (int8 weights, fp32 output), as weight-only int8 linears (int8 weights,
fp32 input and output), or fp32; and its ``fp32_output_weights``: the classifier's weights alone weight-only int8."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from xnnpack_int8 import profiled_run, quantized_program

SHAPE = (1, 16, 8, 8)


class Gate(torch.nn.Module):
    """A DyReLU-like coefficient MLP: two linears over the pooled map, a sigmoid."""

    def __init__(self) -> None:
        super().__init__()
        self.reduce = torch.nn.Linear(16, 64)
        self.expand = torch.nn.Linear(64, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.expand(torch.relu(self.reduce(x.mean((2, 3))))))


class Net(torch.nn.Module):
    """A conv (statically int8), a kept ``Gate`` module and a classifier computing the output."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(16, 16, 1)
        self.gate = Gate()
        self.classifier = torch.nn.Linear(16, 400)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.conv(x))
        return self.classifier((y * self.gate(y)[:, :, None, None]).mean((2, 3)))


def _lowered(kept_linears: str, output_weights: str = "fp32") -> tuple[dict, bytes, torch.nn.Module, list[np.ndarray]]:
    """Net quantized with ``kept_linears`` and ``fp32_output_weights = output_weights``, lowered to XNNPACK: its
    compute precision, .pte bytes, model, clips."""
    torch.manual_seed(0)
    model = Net().eval()
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal(SHAPE).astype(np.float32) for _ in range(16)]
    options = {"per_channel": True, "calibration_method": "minmax", "fp32_modules": ["Gate"], "fp32_outputs": True,
               "kept_linears": kept_linears, "fp32_output_weights": output_weights}
    precision, pte = quantized_program(model, clips, options, ("aten.convolution", "aten.linear"))
    return precision, pte, model, clips


def test_dynamic_int8_stores_the_kept_linears_int8_and_keeps_the_logits_fp32() -> None:
    from executorch.runtime import Runtime

    fp32, fp32_pte, model, clips = _lowered("fp32")
    dynamic, dynamic_pte, _, _ = _lowered("dynamic_int8")
    assert fp32["by_op"]["aten.linear"] == {"int8": 0, "dynamic_int8": 0, "weight_only_int8": 0, "fp32": 3}
    assert dynamic["by_op"]["aten.linear"] == {"int8": 0, "dynamic_int8": 3, "weight_only_int8": 0,
                                               "fp32": 0}  # the gate's two + classifier
    assert fp32["by_op"]["aten.convolution"] == dynamic["by_op"]["aten.convolution"]  # the static part is unchanged
    assert len(dynamic_pte) < len(fp32_pte) - 3 * 16 * 400  # the classifier's 6 400 weights: 1 byte, not 4
    program = Runtime.get().load_program(dynamic_pte).load_method("forward")
    for clip in clips[:4]:
        with torch.no_grad():
            expected = model(torch.from_numpy(clip)).numpy()
        got = program.execute([torch.from_numpy(clip)])[0].numpy()
        assert len(np.unique(got)) > 256  # fp32 logits, not 256 levels between a calibrated min and max
        assert np.abs(got - expected).max() <= 0.1 * np.abs(expected).max()


def test_weight_only_int8_runs_the_kept_linears_as_xnnpack_f32_qc8w(tmp_path: Path) -> None:
    fp32, fp32_pte, model, clips = _lowered("fp32")
    weight_only, weight_only_pte, _, _ = _lowered("weight_only_int8")
    assert weight_only["by_op"]["aten.linear"] == {"int8": 0, "dynamic_int8": 0, "weight_only_int8": 3, "fp32": 0}
    assert weight_only["by_op"]["aten.convolution"] == fp32["by_op"]["aten.convolution"]
    weights = 16 * 64 + 64 * 16 + 16 * 400
    assert len(weight_only_pte) < len(fp32_pte) - 2.5 * weights  # 1 byte, not 4, plus a scale per output channel
    ops, error = profiled_run(weight_only_pte, model, clips, tmp_path / "weight_only")
    assert ops["Fully Connected (NC, F32, QC8W) GEMM"] == 3  # fp32 activations, int8 weights, one XNNPACK op each
    assert "Fully Connected (NC, F32) GEMM" not in ops
    assert ops["Add (ND)"] == 3  # each bias, added after the linear (ExecuTorch's visitor refuses it inside)
    _, fp32_error = profiled_run(fp32_pte, model, clips, tmp_path / "fp32")
    assert error < fp32_error + 0.01  # weight rounding adds little to the int8 conv's error
    from executorch.runtime import Runtime

    logits = Runtime.get().load_program(weight_only_pte).load_method("forward").execute(
        [torch.from_numpy(clips[2])])[0].numpy()
    assert len(np.unique(logits)) > 256  # fp32 logits


def test_int8_output_weights_store_the_classifier_alone_as_weight_only_int8(tmp_path: Path) -> None:
    fp32, fp32_pte, model, clips = _lowered("fp32")
    classifier, classifier_pte, _, _ = _lowered("fp32", "int8")
    assert classifier["by_op"]["aten.linear"] == {"int8": 0, "dynamic_int8": 0, "weight_only_int8": 1, "fp32": 2}
    assert classifier["by_op"]["aten.convolution"] == fp32["by_op"]["aten.convolution"]
    assert len(classifier_pte) < len(fp32_pte) - 2.5 * 16 * 400  # the classifier's weights: 1 byte, not 4
    assert len(classifier_pte) > len(fp32_pte) - 3 * (16 * 400 + 2 * 16 * 64)  # the gate's weights stay fp32
    ops, error = profiled_run(classifier_pte, model, clips, tmp_path / "classifier")
    assert ops["Fully Connected (NC, F32, QC8W) GEMM"] == 1
    assert ops["Fully Connected (NC, F32) GEMM"] == 2  # the kept gate's two linears
    _, fp32_error = profiled_run(fp32_pte, model, clips, tmp_path / "fp32")
    assert error < fp32_error + 0.01
    from executorch.runtime import Runtime

    logits = Runtime.get().load_program(classifier_pte).load_method("forward").execute(
        [torch.from_numpy(clips[2])])[0].numpy()
    assert len(np.unique(logits)) > 256  # fp32 logits


def test_int8_output_weights_compose_with_dynamic_kept_linears() -> None:
    both, _, _, _ = _lowered("dynamic_int8", "int8")
    assert both["by_op"]["aten.linear"] == {"int8": 0, "dynamic_int8": 2, "weight_only_int8": 1, "fp32": 0}
