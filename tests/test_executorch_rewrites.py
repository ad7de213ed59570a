"""The ExecuTorch module rewrites: BN folding and the 5D → 4D frames-in-batch model, against the originals."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vmf_deploy import build_seeded_model, list_models
from vmf_deploy.models.layers import FormerToMobile, FrameDyReLU, MobileToFormer
from vmf_deploy.rewrites import run_rewrites
from vmf_deploy.rewrites.fold_batchnorm import FoldBatchNorm
from vmf_deploy.rewrites.frame_layers import (DelegableLayerNorm, FrameBatchNorm, FrameConv3d, FrameStackedConv3d,
                                              clip_to_frames, frames_to_clip, temporal_taps)
from vmf_deploy.rewrites.frames_to_batch import FramesToBatch, UnsupportedModule

torch.manual_seed(0)


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / a.abs().max())


def _random_bn(bn: nn.modules.batchnorm._BatchNorm) -> nn.modules.batchnorm._BatchNorm:
    with torch.no_grad():
        bn.running_mean.normal_(0, 0.3)
        bn.running_var.uniform_(0.3, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.normal_(0, 0.3)
    return bn.eval()


@pytest.mark.parametrize("kernel, stride, padding, groups, bias", [
    ((3, 3, 3), (1, 1, 1), (1, 1, 1), 8, False),   # Mobile-block depthwise 3×3×3
    ((3, 3, 3), (1, 2, 2), (1, 1, 1), 8, False),   # stage-entry depthwise, spatial stride
    ((3, 3, 3), (2, 2, 2), (1, 1, 1), 8, True),    # temporal_downsampling="stages"
    ((5, 1, 1), (4, 1, 1), (2, 0, 0), 8, False),   # stem temporal conv, stride 4
    ((5, 1, 1), (8, 1, 1), (2, 0, 0), 8, False),   # stem temporal conv, stride 8
    ((3, 1, 1), (2, 1, 1), (1, 0, 0), 8, False),   # 2plus1d temporal half, strided
    ((1, 3, 3), (1, 2, 2), (0, 1, 1), 1, False),   # stem spatial conv
    ((1, 3, 3), (2, 2, 2), (0, 1, 1), 8, False),   # dw_conv="2d" at a strided stage
    ((1, 1, 1), (2, 2, 2), (0, 0, 0), 1, False),   # strided 1×1×1 shortcut
    ((3, 3, 3), (1, 2, 2), (1, 1, 1), 1, True),    # dense 3×3×3 (X3D-like stems)
    ((3, 3, 3), (1, 1, 1), (0, 1, 1), 8, False),   # no temporal padding: every tap is a slice of the clip
    ((5, 3, 3), (1, 1, 1), (1, 1, 1), 8, False),   # padding below "same": some taps inside, some outside
])
@pytest.mark.parametrize("batch", [1, 2])  # batch 1 slices frames on dim 0; batch 2 goes through (B, T, ...) views
def test_frame_conv3d_matches_conv3d(kernel, stride, padding, groups, bias, batch) -> None:
    conv = nn.Conv3d(8, 16 if groups == 1 else 8, kernel, stride=stride, padding=padding, groups=groups, bias=bias)
    x = torch.randn(batch, 8, 17, 12, 12)  # odd frame count: exercises the tail padding of strided taps
    with torch.no_grad():
        ref = conv(x)
        out = frames_to_clip(FrameConv3d(conv)(clip_to_frames(x), batch), batch)
    assert out.shape == ref.shape
    assert (out - ref).abs().max() < 1e-5


@pytest.mark.parametrize("kernel, stride, padding, bias", [
    ((5, 3, 3), (8, 2, 2), (2, 1, 1), True),    # the fused stem of VMF-560M (BN folded into the bias)
    ((5, 3, 3), (4, 2, 2), (2, 1, 1), False),   # the fused stem of VMF-1G–5G: neighbouring outputs share a frame
    ((3, 3, 3), (1, 1, 1), (1, 1, 1), False),   # stride 1: every frame is read by three outputs
    ((3, 1, 1), (2, 1, 1), (0, 0, 0), True),    # no temporal padding
])
@pytest.mark.parametrize("batch", [1, 2])  # each output's stack is a slice of its own clip
def test_frame_stacked_conv3d_matches_conv3d(kernel, stride, padding, bias, batch) -> None:
    conv = nn.Conv3d(3, 16, kernel, stride=stride, padding=padding, bias=bias)
    x = torch.randn(batch, 3, 17, 12, 12)  # odd frame count: the last output's frames reach past the clip
    with torch.no_grad():
        ref = conv(x)
        out = frames_to_clip(FrameStackedConv3d(conv)(x), batch)
    assert out.shape == ref.shape
    assert (out - ref).abs().max() < 1e-5


def test_stacked_conv3d_is_one_conv_on_one_cat() -> None:
    """The point of stacking: one Conv2d and one cat of clip slices, where FrameConv3d has five convs and four adds.

    The stacks are sliced from the clip itself: no permute turns the clip into frames first."""
    conv = nn.Conv3d(3, 16, (5, 3, 3), stride=(4, 2, 2), padding=(2, 1, 1), bias=False)
    clip = torch.randn(1, 3, 17, 12, 12)

    def ops(module: nn.Module, *args: object) -> list[str]:
        program = torch.export.export(module, args, strict=False)
        return [str(n.target).split(".")[1] for n in program.graph.nodes if n.op == "call_function"]

    stacked, summed = ops(FrameStackedConv3d(conv), clip), ops(FrameConv3d(conv), clip_to_frames(clip), 1)
    assert stacked.count("conv2d") == 1 and stacked.count("cat") == 1 and "add" not in stacked
    assert "permute" not in stacked
    assert summed.count("conv2d") == 5 and summed.count("add") == 4


@pytest.mark.parametrize("conv", [
    nn.Conv3d(8, 8, (3, 3, 3), padding=1, groups=8),        # depthwise: FrameConv3d's per-tap convs keep the groups
    nn.Conv3d(3, 8, (3, 3, 3), padding=(3, 1, 1)),          # padding ≥ kernel: an output could read only zeros
    nn.Conv3d(3, 8, (3, 3, 3), padding=1, dilation=(2, 1, 1)),
])
def test_frame_stacked_conv3d_refuses_what_it_cannot_stack(conv: nn.Conv3d) -> None:
    with pytest.raises(ValueError, match="FrameStackedConv3d: unsupported Conv3d"):
        FrameStackedConv3d(conv)


def test_one_clip_taps_copy_only_what_reaches_past_the_clip() -> None:
    """XNNPACK copies every slice and pad: the centre tap is the input itself, a strided tap pads one frame."""
    x = torch.randn(17, 8, 6, 6)
    taps = temporal_taps(x, 1, kernel=3, stride=1, padding=1)
    assert taps[1] is x and [t.shape[0] for t in taps] == [17, 17, 17]
    program = torch.export.export(TapSum(kernel=5, stride=4, padding=2), (x,), strict=False)
    pads = [n.meta["val"].shape[0] for n in program.graph.nodes if "pad" in str(n.target)]
    assert pads == [2]  # one zero frame (padded from frame 0), not the 21-frame padded stack


class TapSum(nn.Module):
    """The sum of one clip's temporal taps (what FrameConv3d feeds its per-tap convs)."""

    def __init__(self, kernel: int, stride: int, padding: int) -> None:
        super().__init__()
        self.kernel, self.stride, self.padding = kernel, stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        taps = temporal_taps(x, 1, self.kernel, self.stride, self.padding)
        out = taps[0]
        for tap in taps[1:]:
            out = out + tap
        return out


def test_frame_batchnorm_and_layernorm_match() -> None:
    bn = _random_bn(nn.BatchNorm3d(6))
    x = torch.randn(2, 6, 5, 4, 4)
    with torch.no_grad():
        assert (frames_to_clip(FrameBatchNorm(bn)(clip_to_frames(x), 2), 2) - bn(x)).abs().max() < 1e-6
    ln = nn.LayerNorm(32)
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5)
        ln.bias.normal_()
        t = torch.randn(3, 7, 32) * 4 + 2
        assert (DelegableLayerNorm(ln)(t) - ln(t)).abs().max() < 1e-5


class _ConvBN(nn.Module):
    """Conv3d → BN (foldable), a conv used twice (not foldable), Linear → BN1d (foldable)."""

    example_input_shape = (2, 4, 3, 6, 6)

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv3d(4, 8, 3, padding=1, bias=False), _random_bn(nn.BatchNorm3d(8))
        self.shared, self.bn_shared = nn.Conv3d(8, 8, 1, bias=True), _random_bn(nn.BatchNorm3d(8))
        self.fc, self.bn_fc = nn.Linear(8, 5), _random_bn(nn.BatchNorm1d(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.conv(x))
        z = self.shared(y)
        y = self.bn_shared(z) + z  # z has two users: folding would change the residual
        return self.bn_fc(self.fc(y.mean(dim=(2, 3, 4))))


def test_fold_batchnorm_folds_only_sole_consumers() -> None:
    model = _ConvBN().eval()
    result = FoldBatchNorm().apply(model)
    assert result.count == 2
    assert isinstance(result.obj.bn, nn.Identity) and isinstance(result.obj.bn_fc, nn.Identity)
    assert isinstance(result.obj.bn_shared, nn.BatchNorm3d)
    assert isinstance(model.bn, nn.BatchNorm3d)  # the original is untouched
    x = torch.randn(model.example_input_shape)
    with torch.no_grad():
        assert _rel_err(model(x), result.obj(x)) < 1e-5


def test_fold_batchnorm_refuses_training_mode() -> None:
    with pytest.raises(ValueError, match="eval"):
        FoldBatchNorm().apply(_ConvBN().train())


def _bridge_inputs(per_frame: bool, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(batch, 16, 4, 6, 6)
    tokens = torch.randn(batch, 6 * (4 if per_frame else 1), 32)
    return x, tokens


@pytest.mark.parametrize("batch", [1, 2], ids=["one-clip", "two-clips"])
@pytest.mark.parametrize("per_frame", [False, True])
def test_bridges_and_dyrelu_on_frames(per_frame: bool, batch: int) -> None:
    from vmf_deploy.rewrites import frame_vmf as FV

    x, tokens = _bridge_inputs(per_frame, batch)
    m2f, f2m = MobileToFormer(16, 32, 2, per_frame).eval(), FormerToMobile(16, 32, 2, per_frame).eval()
    frames, flat = clip_to_frames(x), tokens.reshape(-1, tokens.shape[-1])  # the frames model's 2D tokens
    with torch.no_grad():
        ref_tokens = m2f(x, tokens)
        out_tokens = FV.FrameMobileToFormer(m2f, DelegableLayerNorm(m2f.norm), frames=4)(frames, flat, batch)
        assert out_tokens.shape == flat.shape
        assert (out_tokens.reshape(ref_tokens.shape) - ref_tokens).abs().max() < 1e-5
        out = frames_to_clip(FV.FrameFormerToMobile(f2m, frames=4)(frames, flat, batch), batch)
        assert (out - f2m(x, tokens)).abs().max() < 1e-5
        act = FrameDyReLU(16, 32).eval()
        nn.init.normal_(act.fc2.weight, 0, 0.5)  # slopes away from the init's plain ReLU
        token0 = tokens[:, ::6] if per_frame else tokens[:, 0]
        out = frames_to_clip(FV.FrameDyReLU4D(act)(frames, token0, batch), batch)
        assert (out - act(x, token0)).abs().max() < 1e-5


def _model_parity(name: str, fuse: bool, **overrides: object) -> None:
    model = build_seeded_model(name, **overrides)
    rewritten, applied = run_rewrites("executorch", "module", model, fuse=fuse)
    assert {a["name"] for a in applied} >= {"fold_batchnorm", "frames_to_batch"}
    assert not any(isinstance(m, (nn.Conv3d, nn.BatchNorm3d)) for m in rewritten.modules())
    x = torch.randn(model.cfg.input_shape)
    with torch.no_grad():
        ref, out = model(x), rewritten(x)
    assert out.shape == ref.shape
    assert _rel_err(ref, out) < 1e-5


VMF_MODELS = [m for m in list_models() if not m.startswith("x3d")]


@pytest.mark.parametrize("name", VMF_MODELS)
def test_every_variant_rewrites_exactly(name: str) -> None:
    """Unfused (the rewrites ExecuTorch requires only): 4D model == 5D model."""
    _model_parity(name, fuse=False, frames=16, resolution=64)


@pytest.mark.parametrize("name", ["560m", "1g"])
def test_fused_variant_rewrites_exactly(name: str) -> None:
    """With the fusion rewrites (what vmf-export runs by default) composed with the frames layout."""
    _model_parity(name, fuse=True, frames=16, resolution=64)


@pytest.mark.parametrize("overrides", [
    {"dw_conv": "2d"},
    {"dw_conv": "2plus1d", "activation": "dyrelu"},
    {"activation": "relu", "temporal_downsampling": "stages"},
    {"tokens_per_frame": True},
    {"tokens_per_frame": True, "activation": "dyrelu"},
], ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_ablation_knobs_rewrite_exactly(overrides: dict) -> None:
    _model_parity("1g", fuse=False, frames=16, resolution=64, **overrides)


def test_fused_per_frame_tokens_rewrite_exactly() -> None:
    """Per-frame tokens through the fused DyReLU and the 2D token path."""
    _model_parity("1g", fuse=True, frames=16, resolution=64, tokens_per_frame=True)


def test_x3d_peer_rewrites_exactly() -> None:
    """X3D (dense stem, 3×3×3 depthwise, Squeeze-Excitation, swish) through the same rewrite."""
    _model_parity("x3d-s", fuse=True, frames=8, resolution=64)


@pytest.mark.parametrize("fuse", [False, True], ids=["unfused", "fused"])
def test_batch_of_two_clips(fuse: bool) -> None:
    model = build_seeded_model("560m", frames=16, resolution=64)
    model.example_input_shape = (2, 3, 16, 64, 64)
    rewritten, _ = run_rewrites("executorch", "module", model, fuse=fuse)
    x = torch.randn(2, 3, 16, 64, 64)
    with torch.no_grad():
        assert _rel_err(model(x), rewritten(x)) < 1e-5


def test_mobile_to_former_reads_the_map_per_frame() -> None:
    """The clip-token bridge never re-lays out the map: no permute of a map-sized tensor in its graph."""
    from vmf_deploy.rewrites import frame_vmf as FV

    x, tokens = _bridge_inputs(per_frame=False, batch=1)
    m2f = MobileToFormer(16, 32, 2).eval()
    bridge = FV.FrameMobileToFormer(m2f, DelegableLayerNorm(m2f.norm), frames=4).eval()
    frames, flat = clip_to_frames(x), tokens.reshape(-1, tokens.shape[-1])
    graph = torch.export.export(bridge, (frames, flat, 1)).graph
    permuted = [n.meta["val"].numel() for n in graph.nodes if n.target == torch.ops.aten.permute.default]
    assert permuted and max(permuted) < frames.numel()  # only the scores (M/ch of the map) and token tensors
    with pytest.raises(ValueError, match="converted for 4 frames, got 2"):
        bridge(frames[:2], flat, 1)


def test_unknown_module_type_is_a_clear_error() -> None:
    class Custom(nn.Module):
        example_input_shape = (1, 3, 4, 8, 8)

        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv3d(3, 4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x).mean(dim=(2, 3, 4))

    with pytest.raises(UnsupportedModule, match="no converter for .*Custom.*register_frame_converter"):
        FramesToBatch().apply(Custom().eval())
