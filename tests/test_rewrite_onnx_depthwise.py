"""ONNX depthwise rewrite: every depthwise Conv3d becomes a grouped 2D Conv on a reshaped view, same outputs."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest
import torch
from onnx_helpers import WHOLE_MODEL_VARIANTS, assert_rewrite_matches, export, rel_error, run
from torch import nn

from vmf_deploy.export import onnx_export
from vmf_deploy.rewrites import run_rewrites
from vmf_deploy.rewrites.onnx_depthwise_conv2d import (
    MAX_INFLATION,
    OnnxDepthwiseConv2d,
    banded_weight,
    depthwise_to_conv2d,
)

pytest.importorskip("onnxruntime")


def conv_ranks(proto: onnx.ModelProto) -> Counter:
    """Conv nodes by the rank of their input (4 = 2D conv, 5 = 3D conv), from ONNX shape inference."""
    inferred = onnx.shape_inference.infer_shapes(proto)
    ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in
             [*inferred.graph.value_info, *inferred.graph.input]}
    return Counter(ranks.get(n.input[0]) for n in proto.graph.node if n.op_type == "Conv")


def stored_floats(proto: onnx.ModelProto) -> int:
    """Number of values stored in the graph's initializers."""
    return sum(int(np.prod(t.dims)) for t in proto.graph.initializer)


class DepthwiseThenMix(nn.Module):
    """A depthwise Conv3d (+ optional BN, folded by the exporter) followed by a pointwise conv."""

    def __init__(self, channels: int, kernel: tuple[int, int, int], stride: tuple[int, int, int],
                 padding: tuple[int, int, int], bias: bool, norm: bool) -> None:
        super().__init__()
        self.dw = nn.Conv3d(channels, channels, kernel, stride=stride, padding=padding, groups=channels, bias=bias)
        self.bn = nn.BatchNorm3d(channels) if norm else nn.Identity()
        self.mix = nn.Conv3d(channels, 8, 1)
        if norm:
            with torch.no_grad():
                self.bn.running_mean.uniform_(-0.5, 0.5)
                self.bn.running_var.uniform_(0.5, 2.0)
                self.bn.weight.uniform_(0.5, 1.5)
                self.bn.bias.uniform_(-0.2, 0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mix(torch.relu(self.bn(self.dw(x))))


CASES = {
    "3x3x3 spatial stride 2": ((3, 3, 3), (1, 2, 2), (1, 1, 1), False, True),
    "3x3x3 stride 1 with bias": ((3, 3, 3), (1, 1, 1), (1, 1, 1), True, False),
    "3x3x3 temporal stride 2": ((3, 3, 3), (2, 2, 2), (1, 1, 1), False, True),
    "5x3x3 temporal pad 2": ((5, 3, 3), (1, 1, 1), (2, 1, 1), False, True),
    "3x1x1 temporal only": ((3, 1, 1), (1, 1, 1), (1, 0, 0), False, False),
    "1x3x3 spatial only": ((1, 3, 3), (1, 2, 2), (0, 1, 1), False, True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_single_depthwise_conv_becomes_one_2d_conv(case: str) -> None:
    torch.manual_seed(0)
    kernel, stride, padding, bias, norm = CASES[case]
    module = DepthwiseThenMix(12, kernel, stride, padding, bias, norm).eval()
    shape = (1, 12, 6, 11, 9)
    proto = export(module, shape)
    assert conv_ranks(proto) == {5: 2}
    fused, count = depthwise_to_conv2d(proto)
    assert count == 1
    assert conv_ranks(fused) == {4: 1, 5: 1}  # the depthwise conv is 2D now, the pointwise one untouched
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    assert_rewrite_matches(module, proto, fused, x)
    # the compact weight is stored, the banded one built in-graph: the artifact barely grows
    tap_matrix, repeated_bias, shapes = 6 * 6 * kernel[0], 12 * 6, 32  # at most, for 6 frames and 12 channels
    assert stored_floats(fused) <= stored_floats(proto) + tap_matrix + repeated_bias + shapes


def test_banded_weight_reproduces_the_temporal_taps() -> None:
    """Each output frame's band holds the kernel's taps at the input frames it reads; the rest is zero."""
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((2, 1, 3, 1, 1)).astype(np.float32)
    band = banded_weight(weight, frames=5, t_out=3, stride=2, pad_begin=1).reshape(2, 3, 5)
    expected = np.zeros((2, 3, 5), np.float32)
    for to in range(3):
        for k in range(3):
            ti = 2 * to + k - 1
            if 0 <= ti < 5:
                expected[:, to, ti] = weight[:, 0, k, 0, 0]
    np.testing.assert_array_equal(band, expected)
    assert np.count_nonzero(band[:, 0, 0]) == 2 and not band[:, 0, 2:].any()  # frame -1 is padding


def test_dense_and_too_long_convs_are_left_alone() -> None:
    torch.manual_seed(0)
    dense = nn.Sequential(nn.Conv3d(4, 4, 3, padding=1)).eval()
    proto = export(dense, (1, 4, 4, 8, 8))
    assert OnnxDepthwiseConv2d().apply(proto).count == 0
    frames = int(3 * MAX_INFLATION) + 3  # T / kt above the limit: the banded form would waste too much
    long_clip = DepthwiseThenMix(4, (3, 3, 3), (1, 1, 1), (1, 1, 1), False, False).eval()
    result = OnnxDepthwiseConv2d().apply(export(long_clip, (1, 4, frames, 6, 6)))
    assert result.count == 0


@pytest.mark.parametrize("variant", WHOLE_MODEL_VARIANTS)
def test_whole_model_every_depthwise_conv_rewritten(variant: str, seeded_onnx) -> None:
    model, proto = seeded_onnx(variant)
    fused, count = depthwise_to_conv2d(proto)
    assert count == len(model.blocks) + 1  # a 3×3×3 per Mobile block, and the unfused stem's 5×1×1 temporal conv
    assert conv_ranks(fused)[4] == count
    assert stored_floats(fused) < 1.01 * stored_floats(proto)
    onnx_export.check_onnx(fused)
    x = np.random.default_rng(1).standard_normal(model.cfg.input_shape).astype(np.float32)
    assert rel_error(run(proto, x), run(fused, x)) <= 1e-5


@pytest.mark.parametrize("dw_conv", ["2d", "2plus1d"])
def test_depthwise_knobs(dw_conv: str, seeded_onnx) -> None:
    model, proto = seeded_onnx("560m", dw_conv=dw_conv)
    fused, count = depthwise_to_conv2d(proto)
    assert count == len(model.blocks) * (2 if dw_conv == "2plus1d" else 1) + 1  # + the stem's temporal conv
    assert conv_ranks(fused)[5] == conv_ranks(proto)[5] - count
    x = np.random.default_rng(2).standard_normal(model.cfg.input_shape).astype(np.float32)
    assert rel_error(run(proto, x), run(fused, x)) <= 1e-5


def test_registered_for_onnx_only_and_off_with_no_fuse(seeded_onnx) -> None:
    model, proto = seeded_onnx("560m")
    _, applied = run_rewrites("onnx", "onnx", proto, fuse=True)
    assert {"name": "onnx_depthwise_conv2d", "count": len(model.blocks) + 1} in applied
    _, unfused = run_rewrites("onnx", "onnx", proto, fuse=False)
    assert all(a["name"] != "onnx_depthwise_conv2d" for a in unfused)
    assert OnnxDepthwiseConv2d.targets == ("onnx",)
