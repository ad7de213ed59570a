"""The executorch recipe's ``calibration_method``: which observer sets the int8 activations' ranges."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vmf_deploy.quantize.pt2e_xnnpack import quantization_config, quantize_exported

SHAPE = (1, 32, 16, 16)


class PointwiseHead(torch.nn.Module):
    """A 1×1 conv, ReLU and a Linear over the pooled map: every op the quantizer annotates."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(32, 16, 1)
        self.fc = torch.nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


def _calibration_clips() -> list[np.ndarray]:
    """64 post-ReLU maps, one of them with 8× the range (a confident clip's activations)."""
    rng = np.random.default_rng(0)
    clips = [np.maximum(rng.standard_normal(SHAPE), 0).astype(np.float32) for _ in range(64)]
    clips[5] *= 8
    return clips


def _quantized(model: torch.nn.Module, clips: list[np.ndarray], **method: str):
    """``model`` quantized by :func:`quantize_exported`, calibrated on ``clips`` (``calibration_method`` if given)."""
    example = torch.from_numpy(clips[0])
    options = {"per_channel": True, "fp32_modules": [], "fp32_outputs": False, **method}
    return quantize_exported(torch.export.export(model, (example,), strict=False), example, clips, options, {}, 0)[0]


def _input_scale(program) -> float:
    """The scale of the int8 tensor the program's input is quantized to."""
    node = next(n for n in program.graph.nodes if n.op == "call_function" and "quantize_per_tensor" in str(n.target))
    return float(node.args[1])


@pytest.mark.parametrize("method, observer", [("minmax", "MinMaxObserver"), ("histogram", "HistogramObserver")])
def test_the_method_names_the_activations_observer(method: str, observer: str) -> None:
    config = quantization_config(True, method)
    for spec in (config.input_activation, config.output_activation):
        assert spec.observer_or_fake_quant_ctr.p.func.__name__ == observer
        assert spec.dtype == torch.int8 and spec.qscheme == torch.per_tensor_affine
    assert config.weight.qscheme == torch.per_channel_symmetric  # the weights are not the method's business
    with pytest.raises(ValueError, match="calibration_method"):
        quantization_config(True, "entropy")


def test_minmax_keeps_the_calibration_range_where_histogram_clips_it() -> None:
    torch.manual_seed(0)
    model = PointwiseHead().eval()
    clips = _calibration_clips()
    programs, errors = {}, {}
    for method in ("minmax", "histogram"):
        programs[method] = _quantized(model, clips, calibration_method=method)
        wide = torch.from_numpy(clips[5])
        with torch.no_grad():
            errors[method] = float((programs[method].module()(wide) - model(wide)).abs().max())
    low, high = min(float(c.min()) for c in clips), max(float(c.max()) for c in clips)
    assert _input_scale(programs["minmax"]) * 255 == pytest.approx(high - low, rel=1e-3)  # the full range
    assert _input_scale(programs["histogram"]) < 0.9 * _input_scale(programs["minmax"])  # clipped
    assert errors["minmax"] < 0.5 * errors["histogram"], errors  # the wide clip is rounded, not clipped


def test_a_manifest_without_the_key_rebuilds_as_histogram() -> None:
    torch.manual_seed(0)
    model = PointwiseHead().eval()
    clips = _calibration_clips()
    old = _quantized(model, clips)
    histogram = _quantized(model, clips, calibration_method="histogram")
    minmax = _quantized(model, clips, calibration_method="minmax")
    assert _input_scale(old) == _input_scale(histogram) < _input_scale(minmax)
