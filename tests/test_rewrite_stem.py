"""Stem fusion: the (2+1)D stem's two convs → one 5×3×3 Conv3d (exact composition)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vmf_deploy import build_seeded_model
from vmf_deploy.models.layers import Stem
from vmf_deploy.rewrites.stem_fusion import FusedStem, StemConvFusion, merge_stem_convs

VARIANTS = ["560m", "1g", "2g", "5g"]


def rel_error(ref: torch.Tensor, out: torch.Tensor) -> float:
    return float((out - ref).abs().max() / ref.abs().max())


@pytest.mark.parametrize("temporal_stride", [1, 2, 4, 8])
@pytest.mark.parametrize("frames", [5, 13])
def test_fused_stem_module_matches(temporal_stride: int, frames: int) -> None:
    torch.manual_seed(temporal_stride * 100 + frames)
    stem = Stem(16, temporal_stride).eval()
    with torch.no_grad():
        stem.bn.running_mean.uniform_(-0.2, 0.2)
        stem.bn.running_var.uniform_(0.5, 1.5)
    fused = FusedStem(stem).eval()
    x = torch.randn(2, 3, frames, 33, 30)
    with torch.no_grad():
        ref, out = stem(x), fused(x)
    assert out.shape == ref.shape
    assert rel_error(ref, out) <= 1e-5


def test_merge_carries_a_folded_bias_of_the_temporal_conv() -> None:
    torch.manual_seed(0)
    conv_xy = nn.Conv3d(3, 8, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False)
    conv_t = nn.Conv3d(8, 8, (5, 1, 1), stride=(4, 1, 1), padding=(2, 0, 0), groups=8, bias=True)
    merged = merge_stem_convs(conv_xy, conv_t)
    x = torch.randn(1, 3, 16, 20, 20)
    with torch.no_grad():
        assert rel_error(conv_t(conv_xy(x)), merged(x)) <= 1e-5


def test_merge_refuses_a_pair_it_cannot_compose_exactly() -> None:
    conv_xy = nn.Conv3d(3, 8, (1, 3, 3), padding=(0, 1, 1), bias=True)  # a bias on the padded frames
    conv_t = nn.Conv3d(8, 8, (5, 1, 1), padding=(2, 0, 0), groups=8, bias=False)
    with pytest.raises(ValueError, match="merge_stem_convs"):
        merge_stem_convs(conv_xy, conv_t)


@pytest.mark.parametrize("variant", VARIANTS)
def test_whole_model_fused_matches_unfused(variant: str) -> None:
    model = build_seeded_model(variant, frames=16, resolution=32).eval()
    result = StemConvFusion().apply(model)
    assert result.count == 1 and isinstance(result.obj.stem, FusedStem)
    assert isinstance(model.stem, Stem)  # the input model is not modified
    x = torch.randn(model.cfg.input_shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert rel_error(model(x), result.obj(x)) <= 1e-5
