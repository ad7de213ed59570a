"""Preprocessing: sampling covers the video, resize/crop/normalise as specified."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from preprocess_reference import reference_video

from vmf_deploy import get_config
from vmf_deploy.labels import kinetics400_labels
from vmf_deploy.preprocess import (PreprocessSpec, crop_plan, preprocess_clip, preprocess_frame, preprocess_video,
                                   resized_size, rgb_channels, sample_indices, spec_for, stack_frames, to_layout)


def test_sampling_covers_whole_video():
    idx = sample_indices(640, 64)
    assert idx[0] == 5 and idx[-1] == 635 and np.all(np.diff(idx) == 10)


def test_short_video_repeats_frames_in_order():
    idx = sample_indices(10, 64)
    assert len(idx) == 64 and np.all(np.diff(idx) >= 0) and set(idx) == set(range(10))


def test_empty_video_is_an_error():
    with pytest.raises(ValueError, match="no decodable frames"):
        sample_indices(0, 64)


def test_resized_size_keeps_aspect():
    assert resized_size(480, 640, 224) == (224, 299)
    assert resized_size(1920, 1080, 172) == (306, 172)


def test_constant_frame_normalises_exactly():
    spec = PreprocessSpec(frames=2, crop=8, short_side=8)
    frames = [np.full((12, 20, 3), 114.75, dtype=np.float64)] * 2
    out = preprocess_clip(frames, spec)
    assert out.shape == (1, 3, 2, 8, 8) and out.dtype == np.float32
    np.testing.assert_allclose(out, (114.75 / 255 - 0.45) / 0.225, atol=1e-6)


def test_identity_resize_is_a_center_crop(rng):
    spec = PreprocessSpec(frames=1, crop=4, short_side=8, mean=(0, 0, 0), std=(1, 1, 1), scale=1.0)
    frame = rng.integers(0, 255, (8, 10, 3), dtype=np.uint8)
    out = preprocess_clip([frame], spec)[0, :, 0]
    np.testing.assert_allclose(out, frame[2:6, 3:7].transpose(2, 0, 1).astype(np.float32))


def test_downscale_by_two_averages_pixel_pairs(rng):
    spec = PreprocessSpec(frames=1, crop=4, short_side=4, mean=(0, 0, 0), std=(1, 1, 1), scale=1.0)
    frame = rng.integers(0, 255, (8, 8, 3)).astype(np.uint8)
    out = preprocess_clip([frame], spec)[0, :, 0].transpose(1, 2, 0)
    f = frame.astype(np.float64)
    expect = (f[0::2, 0::2] + f[1::2, 0::2] + f[0::2, 1::2] + f[1::2, 1::2]) / 4
    np.testing.assert_allclose(out, expect, atol=1e-4)


def test_grayscale_and_rgba_frames():
    spec = PreprocessSpec(frames=1, crop=4, short_side=4)
    gray = np.full((6, 6), 100, dtype=np.uint8)
    rgba = np.full((6, 6, 4), 100, dtype=np.uint8)
    np.testing.assert_allclose(preprocess_clip([gray], spec), preprocess_clip([rgba], spec))


def test_video_spec_matches_variant():
    spec = spec_for(get_config("560m"))
    assert spec.input_shape == (1, 3, 64, 172, 172)
    frames = [np.zeros((90, 160, 3), np.uint8)] * 100
    assert preprocess_video(frames, spec).shape == spec.input_shape
    assert PreprocessSpec.from_dict(spec.to_dict()) == spec


def test_labels():
    labels = kinetics400_labels()
    assert len(labels) == 400 and labels[0] == "abseiling"


@pytest.mark.parametrize("height, width, short_side, crop", [
    (720, 1280, 172, 172),  # 720p down to the 560m input
    (272, 640, 172, 172),   # wide 640×272
    (1280, 720, 224, 200),  # portrait, crop < short side
    (90, 120, 172, 160),    # upscale
    (33, 47, 32, 32),       # odd sizes
])
def test_clip_equals_the_float64_reference_formula(height: int, width: int, short_side: int, crop: int) -> None:
    spec = PreprocessSpec(frames=3, crop=crop, short_side=short_side, mean=(0.43, 0.45, 0.47), std=(0.22, 0.225, 0.23))
    frames = [np.random.default_rng(s).integers(0, 256, (height, width, 3), dtype=np.uint8) for s in range(5)]
    got = preprocess_video(frames, spec)
    assert got.dtype == np.float32 and got.shape == spec.input_shape
    assert np.abs(got - reference_video(frames, spec)).max() <= 2e-6  # float32 arithmetic, measured ≤ 1e-6


def test_bgr_and_gray_frames_equal_their_rgb_form(rng):
    spec = PreprocessSpec(frames=1, crop=16, short_side=20)
    rgb = rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)
    pixels, channels = rgb_channels(np.ascontiguousarray(rgb[:, :, ::-1]), order="BGR")
    np.testing.assert_array_equal(preprocess_frame(pixels, spec, channels), preprocess_clip([rgb], spec)[0, :, 0])
    gray = rgb[:, :, 1]
    pixels, channels = rgb_channels(gray, order="BGR")
    np.testing.assert_array_equal(preprocess_frame(pixels, spec, channels),
                                  preprocess_clip([np.repeat(gray[:, :, None], 3, axis=2)], spec)[0, :, 0])


def test_crop_plan_reads_only_the_crops_source_pixels():
    plan = crop_plan(720, 1280, 172, 172)
    assert len(plan.rows) <= 2 * 172 and len(plan.cols) <= 2 * 172
    assert plan.cols.min() > 0 and plan.cols.max() < 1279  # the centre crop leaves the sides unread
    with pytest.raises(ValueError, match="smaller than the crop"):
        crop_plan(720, 1280, 100, 172)


def test_strided_frame_equals_its_contiguous_copy(rng):
    spec = PreprocessSpec(frames=1, crop=16, short_side=20)
    wide = rng.integers(0, 256, (30, 100, 4), dtype=np.uint8)
    view = wide[:, ::2, 1:]  # a strided H × W × 3 view, as a sliced decoder buffer can be
    np.testing.assert_array_equal(preprocess_frame(view, spec), preprocess_frame(np.ascontiguousarray(view), spec))


@pytest.mark.parametrize("gray", [False, True])
def test_channels_last_clip_is_the_planar_clip_transposed(rng, gray: bool) -> None:
    """An NTHWC artifact's clips (export/openvino.toml's input_layout) hold the same values, channels last."""
    planar = PreprocessSpec(frames=3, crop=24, short_side=30, mean=(0.4, 0.45, 0.5), std=(0.2, 0.225, 0.25))
    last = dataclasses.replace(planar, layout="NTHWC")
    shape = (40, 64) if gray else (40, 64, 3)
    frames = [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(5)]
    got = preprocess_video(frames, last)
    assert got.shape == last.tensor_shape == (1, 3, 24, 24, 3) and got.flags.c_contiguous
    assert last.input_shape == planar.input_shape == (1, 3, 3, 24, 24)
    np.testing.assert_array_equal(got, to_layout(preprocess_video(frames, planar), "NTHWC"))
    crops = [preprocess_frame(*rgb_channels(f)[:1], last, rgb_channels(f)[1]) for f in frames[:3]]
    assert crops[0].shape == last.frame_shape == (24, 24, 3)
    np.testing.assert_array_equal(stack_frames(crops, last), preprocess_clip(frames[:3], last))


def test_an_unknown_layout_is_refused() -> None:
    with pytest.raises(ValueError, match="layout 'NHWC' is not one of NCTHW, NTHWC"):
        PreprocessSpec(frames=1, crop=8, short_side=8, layout="NHWC")
    with pytest.raises(ValueError, match="layout 'NCHW' is not one of"):
        to_layout(np.zeros((1, 3, 1, 2, 2), np.float32), "NCHW")


def test_a_channels_last_crop_needs_a_contiguous_out(rng) -> None:
    spec = PreprocessSpec(frames=1, crop=8, short_side=10, layout="NTHWC")
    frame = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    planar = np.empty((3, 8, 8), np.float32)
    with pytest.raises(ValueError, match="out must be C-contiguous"):
        preprocess_frame(frame, spec, out=planar.transpose(1, 2, 0))
