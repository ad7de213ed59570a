"""X3D-XS / X3D-S peers: architecture, published params/FLOPs, config interface, export-readiness."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from vmf_deploy import build_model, build_seeded_model, count_flops, count_params, get_config, list_models
from vmf_deploy.models import ConfigError
from vmf_deploy.models.x3d import X3DConfig, round_width


def test_registered_with_the_bench_default_input():
    assert {"x3d-xs", "x3d-s"} <= set(list_models())
    for name in ("x3d-xs", "x3d-s"):
        assert get_config(name).input_shape == (1, 3, 64, 160, 160)


def test_architecture_matches_pytorchvideo_create_x3d():
    cfg = get_config("x3d-s")
    assert cfg.stem_width == 24
    assert cfg.stage_widths == (24, 48, 96, 192)
    assert cfg.stage_depths == (3, 5, 11, 7)  # base 1/2/5/3 × depth factor 2.2, rounded up
    assert [cfg.inner_width(w) for w in cfg.stage_widths] == [54, 108, 216, 432]
    # SE reduced widths as pytorchvideo's round_width(inner, 1/16) gives them
    assert [round_width(c, 1 / 16) for c in (54, 108, 216, 432)] == [8, 8, 16, 32]
    model = build_model("x3d-s")
    blocks = list(model.blocks)
    assert len(blocks) == 26
    se_flags = [b.se is not None for b in blocks[:3]]
    assert se_flags == [True, False, True]  # SE on every other block, from the first
    assert blocks[0].conv_b.stride == (1, 2, 2) and blocks[1].conv_b.stride == (1, 1, 1)
    # stage 1's first block keeps 24 channels: conv shortcut without BN (pytorchvideo)
    assert isinstance(blocks[0].shortcut, torch.nn.Conv3d)
    assert isinstance(blocks[3].shortcut, torch.nn.Sequential)
    assert blocks[1].shortcut is None
    assert model.stem.conv_t.groups == 24 and model.stem.conv_t.kernel_size == (5, 1, 1)
    assert model.head.fc.in_features == 432 and model.head.fc.out_features == 2048 and model.head.fc.bias is None


def conv_linear_macs(model: torch.nn.Module, shape: tuple[int, ...]) -> float:
    """Conv + linear multiply-adds (torch's counter gives 2 FLOPs per MAC), on the meta device: no compute."""
    import copy

    meta = copy.deepcopy(model).to("meta")
    with FlopCounterMode(display=False) as counter:
        meta(torch.zeros(shape, device="meta"))
    return counter.get_total_flops() / 2


@pytest.mark.parametrize("name,frames,paper_gflops", [("x3d-xs", 4, 0.60), ("x3d-s", 13, 1.96)])
def test_params_and_flops_match_the_published_values(name, frames, paper_gflops):
    model = build_model(name)
    cfg = model.cfg
    assert cfg.published_frames == frames
    params = count_params(model)
    assert params == 3_794_274  # pytorchvideo model zoo: 3.79M; paper Table 3: 3.76M
    assert abs(params / cfg.paper_params - 1) < 0.015
    # The published GFLOPs count conv + linear multiply-adds only (SlowFast/fvcore-style counter
    # without BatchNorm): reproduced within 1.5 %.
    shape = cfg.replace(frames=frames).input_shape
    assert abs(conv_linear_macs(model, shape) / (paper_gflops * 1e9) - 1) < 0.015


def test_vmf_deploy_counter_adds_batchnorm_to_the_published_convention():
    model = build_model("x3d-xs", frames=4)
    ours = count_flops(model, model.cfg.input_shape)
    # vmf_deploy's convention adds eval BatchNorm at 2 FLOPs/element: ~4 % above the paper.
    assert 0.02 < ours / 0.60e9 - 1 < 0.06
    assert ours > conv_linear_macs(model, model.cfg.input_shape)


def test_paper_flops_scale_exactly_with_frames():
    model = build_model("x3d-xs", frames=64)
    assert model.cfg.paper_flops == pytest.approx(0.60e9 * 64 / 4)
    assert conv_linear_macs(model, model.cfg.input_shape) / model.cfg.paper_flops == pytest.approx(1.0, abs=0.015)
    assert get_config("x3d-s", resolution=192).paper_flops is None


def test_config_interface_round_trips_and_validates():
    cfg = get_config("x3d-s", frames=16)
    assert cfg.frames == 16 and cfg.name == "x3d-s"
    again = X3DConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    with pytest.raises(ConfigError, match="unknown override"):
        cfg.replace(num_tokens=3)
    with pytest.raises(ConfigError, match="temporal_stride"):
        cfg.replace(temporal_stride=3)
    with pytest.raises(ConfigError, match="frames"):
        cfg.replace(frames=0)
    with pytest.raises(ConfigError, match="not an X3D config"):
        X3DConfig.from_dict({**cfg.to_dict(), "family": "vmf"})


def test_forward_shapes_and_seeded_determinism():
    a = build_seeded_model("x3d-s", seed=0, frames=4, resolution=64)
    b = build_seeded_model("x3d-s", seed=0, frames=4, resolution=64)
    x = torch.randn(2, 3, 4, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ya, yb = a(x), b(x)
    assert ya.shape == (2, 400)
    assert torch.equal(ya, yb)
    assert torch.isfinite(ya).all() and ya.std() > 0


def test_torch_export_traces_without_graph_breaks():
    model = build_seeded_model("x3d-xs", seed=0, frames=4, resolution=64)
    x = torch.randn(1, 3, 4, 64, 64)
    ep = torch.export.export(model, (x,))
    with torch.no_grad():
        assert torch.allclose(ep.module()(x), model(x), atol=1e-5)
