"""The gate's clips are rendered when read and held only up to a memory budget."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vmf_deploy.datasets.synthetic import gate_clip, gate_clips
from vmf_deploy.export.parity_gate import GateClips, gate_inputs
from vmf_deploy.export.reference_cache import reference_key
from vmf_deploy.parity import parity_clips

SHAPE = (2, 3, 4, 16, 16)
SEEDS = [0, 1, 2]


def _rendered_at_once(count: int) -> list[np.ndarray]:
    return parity_clips(SHAPE, SEEDS) + [np.asarray(c, np.float32) for c in gate_clips(SHAPE, count)]


def test_the_clips_are_the_noise_clips_then_the_action_clips() -> None:
    expected = _rendered_at_once(4)
    clips = gate_inputs(SHAPE, SEEDS, 4)
    assert len(clips) == 7
    for got, want in zip(clips, expected, strict=True):
        assert got.dtype == np.float32 and got.shape == SHAPE
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(clips[-1], expected[-1])
    np.testing.assert_array_equal(gate_clip(SHAPE, 2), gate_clips(SHAPE, 3)[2])
    with pytest.raises(IndexError):
        clips[7]


def test_only_the_budget_is_held_and_the_rest_rendered_again() -> None:
    one = int(np.prod(SHAPE)) * 4
    clips = GateClips(SHAPE, SEEDS, 4, keep_bytes=2 * one)
    first = [c.copy() for c in clips]
    assert clips.kept_bytes == 2 * one  # the first two; the other five were rendered and let go
    for again, before in zip(clips, first, strict=True):
        np.testing.assert_array_equal(again, before)
    assert clips.kept_bytes == 2 * one
    everything = GateClips(SHAPE, SEEDS, 4)
    assert [c.tobytes() for c in everything] == [c.tobytes() for c in first] and everything.kept_bytes == 7 * one


def test_the_reference_cache_key_is_the_rendered_lists() -> None:
    model = torch.nn.Linear(2, 2)
    assert reference_key(model, GateClips(SHAPE, SEEDS, 4, keep_bytes=0)) == reference_key(model, _rendered_at_once(4))
