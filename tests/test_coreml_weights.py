"""Core ML weight-only compression: int8 and 8-bit palettization shrink the saved weights on Linux."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import pytest
import torch

from vmf_deploy.export.errors import ExportError
from vmf_deploy.quantize.coreml_weights import compress_weights

pytestmark = pytest.mark.skipif(importlib.util.find_spec("coremltools") is None, reason="coremltools not installed")

WEIGHTS = Path("Data/com.apple.CoreML/weights/weight.bin")


class _Small(torch.nn.Module):
    """Conv (9216 weights) and a big linear (73728) get compressed; the head (320) is under the threshold."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(16, 64, 3)
        self.fc = torch.nn.Linear(64 * 6 * 6, 32)
        self.head = torch.nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.fc(torch.relu(self.conv(x)).flatten(1))))


@pytest.fixture(scope="module")
def fp32_mlmodel():
    from vmf_deploy.export.coreml_export import _quiet_coremltools, import_coremltools

    ct = import_coremltools()
    torch.manual_seed(0)
    x = torch.randn(1, 16, 8, 8)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pytree deprecation notices from torch.export
        program = torch.export.export(_Small().eval(), (x,)).run_decompositions({})
    with _quiet_coremltools():
        return ct.convert(program, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS17,
                          inputs=[ct.TensorType(name="x", shape=x.shape)], compute_precision=ct.precision.FLOAT32)


def _weights_size(mlmodel, path: Path) -> int:
    mlmodel.save(str(path))
    return (path / WEIGHTS).stat().st_size


@pytest.mark.parametrize(("mode", "options", "detail"), [
    ("int8", {"granularity": "per_channel"}, {"granularity": "per_channel"}),
    ("palettize8", {"palettize_mode": "kmeans"}, {"nbits": 8, "mode": "kmeans"}),
])
def test_compression_shrinks_weights(fp32_mlmodel, tmp_path: Path, mode: str, options: dict, detail: dict) -> None:
    compressed, summary = compress_weights(fp32_mlmodel, mode, options)
    assert summary.items() >= {**detail, "weight_threshold": 2048, "compressed_weights": 2,
                               "fp32_or_fp16_weights_kept": 4}.items()  # head weight + 3 biases
    assert summary["runtime"] == "not run: Core ML needs macOS"
    ratio = _weights_size(compressed, tmp_path / "q.mlpackage") / _weights_size(fp32_mlmodel, tmp_path / "f.mlpackage")
    assert ratio < 0.4, ratio


def test_bad_mode_or_option_raises(fp32_mlmodel) -> None:
    with pytest.raises(ExportError, match="unknown Core ML weight compression mode 'int4'"):
        compress_weights(fp32_mlmodel, "int4", {})
    with pytest.raises(ExportError, match="Core ML int8 weight compression failed: Invalid granularity"):
        compress_weights(fp32_mlmodel, "int8", {"granularity": "per_row"})
