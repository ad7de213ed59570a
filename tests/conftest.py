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


@pytest.fixture(scope="session")
def shared_export(tmp_path_factory: pytest.TempPathFactory):
    """``shared_export(variant, target, frames=16)``: an ``ExportResult`` exported once per test session.

    Exports dominate the suite's time; the parity tests and vmf-predict's backend tests read the
    same artifacts. Tests that damage an artifact must copy it first.
    """
    from vmf_deploy.export.pipeline import export_model

    out_dir = tmp_path_factory.mktemp("shared-exports")
    done: dict[tuple[str, str, int], object] = {}

    def get(variant: str, target: str, frames: int = 16):
        key = (variant, target, frames)
        if key not in done:
            done[key] = export_model(variant, target, out_dir, frames=frames)
        return done[key]

    return get


@pytest.fixture(scope="session")
def seeded_onnx():
    """``seeded_onnx(variant, **knobs)``: ``(model, proto)`` of a seeded 16-frame 32² model and its plain ONNX export.

    The export (dynamo exporter + onnxsim, no ONNX-stage rewrite) is made once per test session;
    the ONNX rewrite tests read the same graphs. Never modify the returned proto in place.
    """
    from onnx_helpers import export

    from vmf_deploy import build_seeded_model

    done: dict[tuple, tuple] = {}

    def get(variant: str, **knobs):
        key = (variant, tuple(sorted(knobs.items())))
        if key not in done:
            model = build_seeded_model(variant, frames=16, resolution=32, **knobs).eval()
            done[key] = (model, export(model, model.cfg.input_shape))
        return done[key]

    return get
