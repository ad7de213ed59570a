"""Bridges → scaled_dot_product_attention (CoreML) and the fused modules in ExecuTorch's frames layout."""

from __future__ import annotations

import pytest
import torch

from vmf_deploy import build_seeded_model
from vmf_deploy.models.layers import FormerToMobile, MobileToFormer
from vmf_deploy.rewrites import run_rewrites
from vmf_deploy.rewrites.bridge_sdpa import BridgeSDPA, FormerToMobileSDPA, MobileToFormerSDPA, bridges_to_sdpa

VARIANTS = ["560m", "1g", "2g", "5g"]


def rel_error(ref: torch.Tensor, out: torch.Tensor) -> float:
    return float((out - ref).abs().max() / ref.abs().max())


@pytest.mark.parametrize("per_frame", [False, True], ids=["clip-tokens", "per-frame-tokens"])
@pytest.mark.parametrize("kind", [MobileToFormer, FormerToMobile], ids=lambda k: k.__name__)
def test_single_bridge_sdpa_matches(kind: type, per_frame: bool) -> None:
    torch.manual_seed(0)
    frames = 4
    bridge = kind(32, 48, heads=2, per_frame=per_frame).eval()
    with torch.no_grad():
        for p in bridge.parameters():
            p.normal_(0.0, 0.3)  # sharp attention, so a wrong scale or head split would show
    x = torch.randn(2, 32, frames, 6, 5)
    tokens = torch.randn(2, 6 * (frames if per_frame else 1), 48)
    with torch.no_grad():
        ref = bridge(x, tokens)
        assert bridges_to_sdpa(bridge) == 1
        out = bridge(x, tokens)
    assert isinstance(bridge, (MobileToFormerSDPA, FormerToMobileSDPA))
    assert rel_error(ref, out) <= 1e-5


@pytest.mark.parametrize("variant", VARIANTS)
def test_whole_model_sdpa_matches(variant: str) -> None:
    model = build_seeded_model(variant, frames=16, resolution=32).eval()
    result = BridgeSDPA().apply(model)
    assert result.count == 2 * len(model.blocks) + 1
    assert not any(type(m) in (MobileToFormer, FormerToMobile) for m in result.obj.modules())
    assert any(type(m) is MobileToFormer for m in model.modules())  # input untouched
    x = torch.randn(model.cfg.input_shape, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert rel_error(model(x), result.obj(x)) <= 1e-5


def test_sdpa_survives_torch_export_for_coreml() -> None:
    """The CoreML path converts from ``torch.export(...).run_decompositions({})``: SDPA must still be one op."""
    model = build_seeded_model("560m", frames=16, resolution=32).eval()
    fused = BridgeSDPA().apply(model).obj
    program = torch.export.export(fused, (torch.zeros(model.cfg.input_shape),)).run_decompositions({})
    targets = [str(n.target) for n in program.graph.nodes if n.op == "call_function"]
    n_sdpa = sum("scaled_dot_product_attention" in t for t in targets)
    assert n_sdpa == 2 * len(model.blocks) + 1
    assert sum("softmax" in t for t in targets) == len(model.blocks)  # the Formers' own softmaxes only


@pytest.mark.parametrize(("variant", "overrides"), [
    ("560m", {}),
    pytest.param("1g", {"tokens_per_frame": True}, marks=pytest.mark.slow),
    pytest.param("560m", {"activation": "dyrelu"}, marks=pytest.mark.slow),
    *[pytest.param(v, {}, marks=pytest.mark.slow) for v in VARIANTS[1:]],
], ids=str)
def test_executorch_fusions_compose_with_the_frames_layout(variant: str, overrides: dict) -> None:
    """ExecuTorch module stage, fuse on vs off: fusions run before fold_batchnorm / frames_to_batch."""
    pytest.importorskip("vmf_deploy.rewrites.frames_to_batch")
    model = build_seeded_model(variant, frames=16, resolution=32, **overrides).eval()
    x = torch.randn(model.cfg.input_shape, generator=torch.Generator().manual_seed(5))
    outputs, applied = {}, {}
    for fuse in (False, True):
        frames_model, steps = run_rewrites("executorch", "module", model, fuse=fuse)
        applied[fuse] = {s["name"]: s["count"] for s in steps}
        assert not any(isinstance(m, (torch.nn.Conv3d, torch.nn.BatchNorm3d)) for m in frames_model.modules())
        with torch.no_grad():
            outputs[fuse] = frames_model(x)
    assert applied[True]["stem_conv_fusion"] == 1 and applied[True]["dyrelu_fusion"] == 2 * len(model.blocks)
    assert "stem_conv_fusion" not in applied[False]
    with torch.no_grad():
        assert rel_error(model(x), outputs[True]) <= 1e-5
    assert rel_error(outputs[False], outputs[True]) <= 1e-5


def test_coreml_lowers_each_bridge_to_its_fused_sdpa_op_on_ios18() -> None:
    ct = pytest.importorskip("coremltools")

    class TwoBridges(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m2f, self.f2m = MobileToFormer(32, 48), FormerToMobile(32, 48)
            self.tokens = torch.nn.Parameter(torch.randn(1, 6, 48))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.f2m(x, self.m2f(x, self.tokens))

    module = TwoBridges().eval()
    assert bridges_to_sdpa(module) == 2
    program = torch.export.export(module, (torch.randn(1, 32, 4, 8, 8),)).run_decompositions({})
    mlmodel = ct.convert(program, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS18,
                         compute_precision=ct.precision.FLOAT32)
    op_types = [op.op_type for op in mlmodel._mil_program.functions["main"].operations]
    assert op_types.count("scaled_dot_product_attention") == 2
    assert "softmax" not in op_types
