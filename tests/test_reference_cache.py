"""The parity gate's reference logits are reused only for the same model, clips and torch, and recomputed otherwise."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from vmf_deploy.export import reference_cache
from vmf_deploy.export.parity_gate import reference_logits


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VMF_CACHE", str(tmp_path))
    monkeypatch.delenv(reference_cache.SWITCH_ENV, raising=False)
    return tmp_path


class _Counting:
    """``reference_logits`` that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, model: nn.Module, clips: Sequence[np.ndarray]) -> list[np.ndarray]:
        self.calls += 1
        return reference_logits(model, clips)


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv3d(3, 4, 3), nn.BatchNorm3d(4), nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(4, 5))
    return model.eval()


def _clips(count: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal((1, 3, 4, 8, 8)).astype(np.float32) for _ in range(count)]


def test_the_second_call_reads_what_the_first_computed() -> None:
    compute, model, clips = _Counting(), _model(), _clips()
    first, cached_first = reference_cache.cached_reference(model, clips, compute)
    second, cached_second = reference_cache.cached_reference(_model(), _clips(), compute)
    assert (cached_first, cached_second, compute.calls) == (False, True, 1)
    for a, b, c in zip(first, second, reference_logits(model, clips), strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


def test_another_weight_buffer_or_clip_is_computed_again() -> None:
    compute, clips = _Counting(), _clips()
    reference_cache.cached_reference(_model(), clips, compute)
    heavier = _model()
    with torch.no_grad():
        heavier[4].weight[0, 0] += 1e-6
    moved = _model()
    moved[1].running_mean[0] += 1e-6
    touched = [clip.copy() for clip in clips]
    touched[2][0, 0, 0, 0, 0] += 1e-6
    for model, inputs in ((heavier, clips), (moved, clips), (_model(), touched), (_model(), clips[:2])):
        _, cached = reference_cache.cached_reference(model, inputs, compute)
        assert not cached
    assert compute.calls == 5


def test_a_corrupt_or_mismatched_file_is_recomputed(_own_cache: Path) -> None:
    compute, model, clips = _Counting(), _model(), _clips()
    expected, _ = reference_cache.cached_reference(model, clips, compute)
    path = reference_cache.cache_folder() / f"{reference_cache.reference_key(model, clips)}.npz"
    assert path.is_file() and path.parent == _own_cache / "reference-logits"
    path.write_bytes(b"not an npz")
    again, cached = reference_cache.cached_reference(model, clips, compute)
    assert not cached and compute.calls == 2
    np.testing.assert_array_equal(again[0], expected[0])
    np.savez(path, clip0=expected[0])  # one array for three clips
    assert reference_cache.cached_reference(model, clips, compute)[1] is False
    assert reference_cache.cached_reference(model, clips, compute)[1] is True  # rewritten whole


def test_off_computes_every_time_and_writes_nothing(_own_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(reference_cache.SWITCH_ENV, "off")
    compute = _Counting()
    for _ in range(2):
        assert reference_cache.cached_reference(_model(), _clips(), compute)[1] is False
    assert compute.calls == 2 and not (_own_cache / "reference-logits").exists()


def test_an_unwritable_cache_still_returns_the_logits(_own_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = _own_cache / "file"
    blocker.write_text("")
    monkeypatch.setenv("VMF_CACHE", str(blocker))  # the folder would be under a file
    logits, cached = reference_cache.cached_reference(_model(), _clips(), _Counting())
    assert not cached and len(logits) == 3
