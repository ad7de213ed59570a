"""The 3-channel input convolution as one convolution per colour, summed (OpenVINO's module rewrite)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch
from torch import nn

from vmf_deploy import build_seeded_model
from vmf_deploy.rewrites import run_rewrites
from vmf_deploy.rewrites.input_conv_split import ChannelSplitConv3d, InputConvChannelSplit, is_split, split_input_convs
from vmf_deploy.runners import runner_class


def rel_error(ref: torch.Tensor, out: torch.Tensor) -> float:
    return float((out - ref).abs().max() / ref.abs().max())


@pytest.mark.parametrize("bias", [False, True])
def test_split_conv_computes_the_conv(bias: bool) -> None:
    torch.manual_seed(0)
    conv = nn.Conv3d(3, 8, (5, 3, 3), stride=(4, 2, 2), padding=(2, 1, 1), bias=bias)
    x = torch.randn(2, 3, 12, 10, 9) * torch.tensor([1.0, 10.0, 100.0]).view(1, 3, 1, 1, 1)  # channels told apart
    split = ChannelSplitConv3d(conv)
    with torch.no_grad():
        ref, out = conv(x), split(x)
        swapped = conv(x[:, [0, 2, 1]])
    assert len(split.convs) == 3 and all(c.in_channels == 1 for c in split.convs)
    assert sum(c.bias is not None for c in split.convs) == int(bias)  # the bias is added once
    assert out.shape == ref.shape and rel_error(ref, out) <= 1e-6
    assert rel_error(ref, swapped) > 0.1  # a channel mix-up would show


def test_only_strided_dense_three_channel_convs_are_split() -> None:
    strided = {"stride": (8, 2, 2)}  # VMF-560M's fused stem: 32 input positions per output
    assert is_split(nn.Conv3d(3, 16, 3, **strided))
    assert not is_split(nn.Conv3d(3, 16, 3, stride=(4, 2, 2)))  # 1G-5G's stem: the split measured slower
    assert not is_split(nn.Conv3d(3, 3, 3, groups=3, **strided))  # depthwise: already per channel
    assert not is_split(nn.Conv3d(4, 16, 3, **strided))
    assert not is_split(nn.Conv2d(3, 16, 3, stride=8))
    assert not is_split(ChannelSplitConv3d(nn.Conv3d(3, 16, 3, **strided)))
    model = nn.Sequential(nn.Conv3d(3, 8, 1, **strided), nn.Conv3d(8, 8, 1))
    assert split_input_convs(model) == 1 and split_input_convs(model) == 0  # idempotent


@pytest.mark.parametrize("variant", ["560m", "1g", "x3d-s"])
def test_whole_model_matches_and_is_the_openvino_module_stage(variant: str) -> None:
    model = build_seeded_model(variant, frames=16, resolution=32).eval()
    expected = int(variant == "560m")  # its fused stem, stride (8, 2, 2); not 1G's (4, 2, 2) nor X3D's conv_xy
    x = torch.randn(model.cfg.input_shape, generator=torch.Generator().manual_seed(4))
    rewritten, applied = run_rewrites("openvino", "module", model)
    assert {a["name"]: a["count"] for a in applied}["input_conv_channel_split"] == expected
    assert sum(isinstance(m, ChannelSplitConv3d) for m in rewritten.modules()) == expected
    assert sum(isinstance(m, ChannelSplitConv3d) for m in model.modules()) == 0  # input untouched
    with torch.no_grad():
        assert rel_error(model(x), rewritten(x)) <= 1e-5
    assert InputConvChannelSplit().apply(model).count == 0  # before the stem fusion, the stem's convs are not strided
    for target in ("onnx", "executorch", "coreml"):
        _, others = run_rewrites(target, "module", model)
        assert "input_conv_channel_split" not in {a["name"] for a in others}
    _, unfused = run_rewrites("openvino", "module", model, fuse=False)
    assert "input_conv_channel_split" not in {a["name"] for a in unfused}


def _input_reorders(module: nn.Module, input_shape: tuple[int, ...]) -> list[str]:
    """The nodes of OpenVINO's compiled CPU graph that reorder the module's input itself."""
    import openvino as ov

    from vmf_deploy.export import onnx_export

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        onnx_export.save_onnx(onnx_export.trace_to_onnx(module, input_shape, 18, path), path)
        compiled = ov.Core().compile_model(ov.convert_model(str(path)), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return [op.get_friendly_name() for op in compiled.get_runtime_model().get_ordered_ops()
            if op.get_rt_info()["layerType"].astype(str) == "Reorder"
            and op.input_value(0).get_node().get_type_name() == "Parameter"]


@pytest.mark.skipif(runner_class("openvino-cpu").availability() is not None, reason="openvino is not installed")
def test_openvino_no_longer_reorders_the_clip() -> None:
    """What the rewrite is for: the CPU plugin reads the planar clip without copying it channels-last.

    The stem alone is compiled: the reorder is of the input, before the first conv, and the rest of
    the network would only make the two exports slower.
    """
    model = build_seeded_model("560m", frames=16, resolution=64).eval()
    stock, _ = run_rewrites("openvino", "module", model, skip={"input_conv_channel_split"})
    split, _ = run_rewrites("openvino", "module", model)
    shape = tuple(model.cfg.input_shape)
    assert _input_reorders(stock.stem, shape)  # the stock IR copies the whole clip before its first conv
    assert _input_reorders(split.stem, shape) == []
