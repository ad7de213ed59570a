"""Shared fixtures: small seeded models and realistic normalised clips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

torch.set_num_threads(2)


def normalised_clip(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """A random-but-realistic clip: smooth-ish pixels in [0, 1], Kinetics-normalised."""
    g = torch.Generator().manual_seed(seed)
    b, c, t, h, w = shape
    coarse = torch.rand(b, c, t, max(h // 8, 1), max(w // 8, 1), generator=g)
    pixels = torch.nn.functional.interpolate(coarse, size=(t, h, w), mode="trilinear", align_corners=False)
    pixels = (pixels + 0.1 * torch.rand(shape, generator=g)).clamp(0, 1)
    return (pixels - 0.45) / 0.225


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
