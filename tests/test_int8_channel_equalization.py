"""The int8 recipes' ``equalize_channels``: the Mobile blocks' hidden channels scaled to the per-tensor int8 range."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vmf_deploy import build_seeded_model
from vmf_deploy.quantize.channel_equalization import (
    ChannelRange,
    channel_scales,
    equalizable_blocks,
    equalize_channels,
    hidden_channel_ranges,
)

SHAPE = (1, 3, 8, 48, 48)


def _skewed_model(seed: int = 0) -> torch.nn.Module:
    """A seeded 560m whose hidden channels span ranges 20x apart, as a trained model's do (a seeded init's are flat)."""
    model = build_seeded_model("560m", seed=seed, frames=SHAPE[2], resolution=SHAPE[3])
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, block in equalizable_blocks(model):
            spread = torch.exp(torch.empty(block.bn1.num_features).uniform_(-3.0, 0.0, generator=generator))
            block.bn1.weight.mul_(spread)
            block.bn1.bias.mul_(spread)
    return model.eval()


def _clips(count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(SHAPE).astype(np.float32) for _ in range(count)]


def _logits(model: torch.nn.Module, clips: list[np.ndarray]) -> torch.Tensor:
    with torch.inference_mode():
        return torch.cat([model(torch.from_numpy(c)) for c in clips])


def test_the_equalized_model_computes_the_same_logits() -> None:
    model = _skewed_model()
    clips = _clips(4, seed=1)
    before = _logits(model, clips)
    summary = equalize_channels(model, clips, strength=1.0)
    after = _logits(model, clips)
    assert summary["blocks"] == 8 and summary["strength"] == 1.0
    assert summary["scale_max"] > 4.0 and summary["scale_median"] > 1.0
    assert torch.allclose(after, before, rtol=1e-4, atol=1e-4 * before.abs().max().item())


def test_no_hidden_activation_gets_a_wider_range_and_the_narrow_channels_grow() -> None:
    model = _skewed_model()
    clips = _clips(4, seed=1)
    blocks = equalizable_blocks(model)
    before = hidden_channel_ranges(model, blocks, clips)
    equalize_channels(model, clips, strength=1.0)
    after = hidden_channel_ranges(model, blocks, clips)
    for key, old in before.items():
        new = after[key]
        assert new.low.min() >= old.low.min() * (1 + 1e-4) - 1e-6  # the tensor's int8 range is not widened
        assert new.high.max() <= old.high.max() * (1 + 1e-4) + 1e-6
        narrow = old.high.argmin()
        assert new.high[narrow] > 2.0 * old.high[narrow]  # the narrowest channel now uses more of it


def test_scales_stay_inside_the_tensor_range_and_the_cap() -> None:
    widest = ChannelRange(low=torch.tensor([-1.0, -4.0, 0.0, 0.0]), high=torch.tensor([8.0, 2.0, 0.1, 0.0]))
    scales = channel_scales([widest], strength=1.0, max_scale=16.0)
    # channel 0 is the widest above zero; channel 1 the widest below (-4: room 1), channel 2 capped, 3 silent
    assert scales.tolist() == pytest.approx([1.0, 1.0, 16.0, 16.0])
    second = ChannelRange(low=torch.tensor([-1.0, 0.0, -0.25, 0.0]), high=torch.tensor([4.0, 4.0, 1.0, 0.0]))
    assert channel_scales([widest, second], strength=1.0, max_scale=16.0)[2] == pytest.approx(4.0)  # the tighter
    assert channel_scales([widest, second], strength=0.5, max_scale=16.0)[2] == pytest.approx(2.0)  # headroom


def test_per_tensor_int8_of_the_hidden_activations_loses_less_after_equalization() -> None:
    """Fake-quantize each block's ``bn1`` and first activation outputs per tensor (uint8 over the calibration clips'
    range, as onnxruntime's QDQ and XNNPACK do): every block's residual branch (its ``bn3`` output) moves less from
    fp32 once equalized."""
    model = _skewed_model()
    calibration, held_out = _clips(4, seed=1), _clips(4, seed=2)

    def block_sqnrs(m: torch.nn.Module) -> list[float]:
        blocks = equalizable_blocks(m)
        ranges = hidden_channel_ranges(m, blocks, calibration)
        outputs: dict[str, list[torch.Tensor]] = {}

        def keep(path: str):
            return lambda _m, _i, out: outputs.setdefault(path, []).append(out)

        def fake_quant(key: tuple[str, str]):
            low, high = min(float(ranges[key].low.min()), 0.0), float(ranges[key].high.max())
            scale = max(high - low, 1e-8) / 255.0
            return lambda _m, _i, out: torch.fake_quantize_per_tensor_affine(out, scale, round(-low / scale), 0, 255)

        sqnrs = []
        for path, block in blocks:  # one block quantized at a time, so that each sees the same fp32 input
            exact = block.bn3.register_forward_hook(keep(path + ".fp32"))
            _logits(m, held_out)
            exact.remove()
            handles = [getattr(block, name).register_forward_hook(fake_quant((path, name))) for name in ("bn1", "act1")]
            handles.append(block.bn3.register_forward_hook(keep(path + ".int8")))
            _logits(m, held_out)
            for handle in handles:
                handle.remove()
            ref, noisy = torch.cat(outputs[path + ".fp32"]), torch.cat(outputs[path + ".int8"])
            signal = ref - ref.mean(dim=(0, 2, 3, 4), keepdim=True)  # centered: BN's per-channel offsets carry nothing
            sqnrs.append(10 * np.log10(float((signal ** 2).sum() / ((noisy - ref) ** 2).sum())))
        return sqnrs

    plain = block_sqnrs(model)
    equalize_channels(model, calibration, strength=0.5)
    equalized = block_sqnrs(model)
    assert all(e >= p + 1.0 for p, e in zip(plain, equalized))
    assert np.median(np.subtract(equalized, plain)) >= 3.0


def test_models_without_mobile_blocks_are_left_alone() -> None:
    model = build_seeded_model("x3d-xs", seed=0)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert equalize_channels(model, _clips(1, seed=1), strength=0.5)["blocks"] == 0
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
