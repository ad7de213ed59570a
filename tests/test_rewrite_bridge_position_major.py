"""Bridges reading the map position-major with block-diagonal token operands (OpenVINO's module rewrite)."""

from __future__ import annotations

import pytest
import torch

from vmf_deploy import build_seeded_model
from vmf_deploy.models.layers import FormerToMobile, MobileToFormer
from vmf_deploy.rewrites import bridge_position_major, run_rewrites
from vmf_deploy.rewrites.bridge_position_major import (
    BridgePositionMajor,
    FormerToMobilePositionMajor,
    MobileToFormerPositionMajor,
    bridges_position_major,
    head_mask,
)


def rel_error(ref: torch.Tensor, out: torch.Tensor) -> float:
    return float((out - ref).abs().max() / ref.abs().max())


def test_head_mask_gives_each_channel_to_one_head() -> None:
    mask = head_mask(12, 3, torch.float32)
    assert mask.shape == (3, 1, 12)
    assert torch.equal(mask.sum(dim=0), torch.ones(1, 12))
    assert torch.equal(mask[1, 0], torch.tensor([0.0] * 4 + [1.0] * 4 + [0.0] * 4))


@pytest.fixture
def every_map_position_major(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mobile→Former takes the position-major form at any map size (the tests' maps are small)."""
    monkeypatch.setattr(bridge_position_major, "MIN_POSITIONS", 1)


@pytest.mark.parametrize("heads", [1, 2, 4])
@pytest.mark.parametrize("kind", [MobileToFormer, FormerToMobile], ids=lambda k: k.__name__)
def test_single_bridge_matches(kind: type, heads: int, every_map_position_major: None) -> None:
    torch.manual_seed(0)
    bridge = kind(32, 48, heads=heads).eval()
    with torch.no_grad():
        for p in bridge.parameters():
            p.normal_(0.0, 0.3)  # sharp attention, so a wrong head split or softmax axis would show
    x = torch.randn(2, 32, 3, 6, 5)
    tokens = torch.randn(2, 6, 48)
    with torch.no_grad():
        ref = bridge(x, tokens)
        assert bridges_position_major(bridge) == 1
        out = bridge(x, tokens)
    assert isinstance(bridge, (MobileToFormerPositionMajor, FormerToMobilePositionMajor))
    assert out.shape == ref.shape and rel_error(ref, out) <= 1e-5


def test_a_small_map_keeps_the_original_mobile_to_former(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(1)
    bridge = MobileToFormer(32, 48).eval()
    x, tokens = torch.randn(1, 32, 2, 4, 4), torch.randn(1, 6, 48)
    with torch.no_grad():
        ref = bridge(x, tokens)
        bridges_position_major(bridge)
        monkeypatch.setattr(bridge_position_major, "MIN_POSITIONS", 2 * 4 * 4 + 1)
        assert torch.equal(bridge(x, tokens), ref)  # below the threshold: the same ops, bit for bit
        monkeypatch.setattr(bridge_position_major, "MIN_POSITIONS", 2 * 4 * 4)
        out = bridge(x, tokens)
    assert not torch.equal(out, ref) and rel_error(ref, out) <= 1e-5  # at it: the position-major form


def test_per_frame_token_bridges_are_left_alone() -> None:
    model = build_seeded_model("1g", frames=16, resolution=32, tokens_per_frame=True)
    assert bridges_position_major(model) == 0
    assert any(type(m) is MobileToFormer for m in model.modules())


@pytest.mark.parametrize("variant", ["560m", "2g"])
def test_whole_model_matches_and_is_the_openvino_module_stage(variant: str, every_map_position_major: None) -> None:
    model = build_seeded_model(variant, frames=16, resolution=32).eval()
    result = BridgePositionMajor().apply(model)
    assert result.count == 2 * len(model.blocks) + 1  # the head's Mobile→Former too
    assert not any(type(m) in (MobileToFormer, FormerToMobile) for m in result.obj.modules())
    assert any(type(m) is MobileToFormer for m in model.modules())  # input untouched
    x = torch.randn(model.cfg.input_shape, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert rel_error(model(x), result.obj(x)) <= 1e-5
    _, applied = run_rewrites("openvino", "module", model)
    assert {a["name"]: a["count"] for a in applied}["bridge_position_major"] == result.count
    _, onnx_applied = run_rewrites("onnx", "module", model)
    assert "bridge_position_major" not in {a["name"] for a in onnx_applied}
