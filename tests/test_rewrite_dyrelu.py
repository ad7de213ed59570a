"""DyReLU fusion: ``max(a1·x, a2·x)`` → ``relu(x) + a2·x`` with the concat-free coefficient MLP."""

from __future__ import annotations

import pytest
import torch

from vmf_deploy import build_seeded_model
from vmf_deploy.models.layers import FrameDyReLU, TokenDyReLU
from vmf_deploy.rewrites import run_rewrites
from vmf_deploy.rewrites.dyrelu_fusion import DyReLUFusion, FusedFrameDyReLU, FusedTokenDyReLU

VARIANTS = ["560m", "1g", "2g", "5g"]


def rel_error(ref: torch.Tensor, out: torch.Tensor) -> float:
    return float((out - ref).abs().max() / ref.abs().max())


def _randomise(module: torch.nn.Module, seed: int, scale: float) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g))


@pytest.mark.parametrize("token_shape", [(2, 32), (2, 4, 32)], ids=["clip-token", "per-frame-tokens"])
@pytest.mark.parametrize("scale", [0.05, 3.0], ids=["near-relu", "saturated-slopes"])
def test_frame_dyrelu_module_matches(token_shape: tuple[int, ...], scale: float) -> None:
    act = FrameDyReLU(24, 32).eval()
    _randomise(act, 0, scale)  # scale 3 drives hard-sigmoid into both saturations (a1 = 0 and a1 = 2)
    fused = FusedFrameDyReLU(act).eval()
    x = torch.randn(2, 24, 4, 7, 9)
    token0 = torch.randn(token_shape)
    with torch.no_grad():
        s = act.coefficients(x, token0)
        ref, out = act(x, token0), fused(x, token0)
        a2 = fused.slope(x, token0)
    assert torch.allclose(a2, 2.0 * s - 1.0, rtol=0, atol=1e-5)  # fc1's split only reorders its sums
    if scale > 1:
        assert (s == 0).any() and (s == 1).any()
    assert rel_error(ref, out) <= 1e-5


def test_token_dyrelu_module_matches() -> None:
    act = TokenDyReLU(24, 32).eval()
    _randomise(act, 1, 1.0)
    fused = FusedTokenDyReLU(act).eval()
    x = torch.randn(2, 24, 4, 5, 5)
    for token0 in (torch.randn(2, 32), torch.randn(2, 4, 32)):
        with torch.no_grad():
            assert rel_error(act(x, token0), fused(x, token0)) <= 1e-5


def test_rewrite_counts_and_keeps_the_input_model() -> None:
    model = build_seeded_model("560m", frames=16, resolution=64).eval()
    result = DyReLUFusion().apply(model)
    n_blocks = len(model.blocks)
    assert result.count == 2 * n_blocks
    assert any(isinstance(m, FrameDyReLU) for m in model.modules())  # original untouched
    assert not any(isinstance(m, (FrameDyReLU, TokenDyReLU)) for m in result.obj.modules())


def test_relu_model_is_left_alone() -> None:
    model = build_seeded_model("560m", frames=16, resolution=64, activation="relu").eval()
    assert DyReLUFusion().apply(model).count == 0


@pytest.mark.parametrize(("variant", "overrides"), [
    *[(v, {}) for v in VARIANTS],
    ("560m", {"activation": "dyrelu"}),
    ("1g", {"tokens_per_frame": True}),
    *[pytest.param(v, o, marks=pytest.mark.slow) for v in VARIANTS[1:]
      for o in ({"activation": "dyrelu"}, {"tokens_per_frame": True})],
], ids=str)
def test_whole_model_fused_matches_unfused(variant: str, overrides: dict) -> None:
    model = build_seeded_model(variant, frames=16, resolution=32, **overrides).eval()
    fused, applied = run_rewrites("coreml", "module", model, fuse=True)
    assert {"name": "dyrelu_fusion", "count": 2 * len(model.blocks)} in applied
    x = torch.randn(model.cfg.input_shape, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert rel_error(model(x), fused(x)) <= 1e-5
