"""Streamed decoding: the clip equals the naive whole-video reference, only sampled frames are kept,
unusual videos are handled, and every bad input is a VideoError whose message names the fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import video_factory as vf

from vmf_deploy.preprocess import PreprocessSpec, preprocess_video, sample_indices
from vmf_deploy.video import VideoError, list_videos, read_clip, sniff_container

SPEC = PreprocessSpec(frames=8, crop=32, short_side=32)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of small generated videos, good and bad (see video_factory)."""
    d = tmp_path_factory.mktemp("videos")
    vf.write_video(d / "long.avi", 200, (64, 48))
    vf.write_video(d / "clip.mp4", 60, (64, 48))
    vf.write_video(d / "short.avi", 5, (64, 48))
    vf.write_video(d / "gray.avi", 12, (64, 48), color=False)
    vf.write_video(d / "tiny.avi", 12, (8, 8))
    vf.write_video(d / "wide.mp4", 12, (1000, 8))
    vf.write_video(d / "tall.avi", 12, (16, 400))
    vf.write_video(d / "portrait.mp4", 12, (48, 96))
    vf.write_video(d / "landscape.mp4", 12, (96, 48))
    vf.write_video(d / "uhd.avi", 2, (3840, 2160))
    vf.set_mp4_rotation(d / "landscape.mp4", d / "rotated90.mp4", 90)
    vf.set_mp4_rotation(d / "landscape.mp4", d / "rotated270.mp4", 270)
    vf.write_video(d / "zero.avi", 0)
    vf.write_video(d / "zero.mp4", 0)
    vf.truncate(d / "long.avi", d / "truncated.avi", 0.5)
    vf.truncate(d / "clip.mp4", d / "truncated.mp4", 0.5)
    vf.corrupt(d / "long.avi", d / "corrupt.avi", 0.3, 0.8)
    vf.scramble_avi_frames(d / "long.avi", d / "scrambled.avi")
    vf.replace_avi_codec(d / "long.avi", d / "codec.avi")
    vf.set_avi_frame_count(d / "long.avi", d / "undercount.avi", 80)
    (d / "notes.mp4").write_text("this is a text file renamed .mp4\n" * 20)
    (d / "empty.mp4").write_bytes(b"")
    return d


def reference(path: Path, spec: PreprocessSpec = SPEC) -> np.ndarray:
    """The clip computed the naive way: every frame decoded into memory, then sampled."""
    return preprocess_video(vf.decode_all(path), spec)


@pytest.mark.parametrize("name", ["long.avi", "clip.mp4", "short.avi", "portrait.mp4"])
def test_streamed_clip_equals_whole_video_reference(videos, name):
    clip = read_clip(videos / name, SPEC)
    assert clip.input.shape == SPEC.input_shape and clip.input.dtype == np.float32
    np.testing.assert_array_equal(clip.input, reference(videos / name))


def test_decoder_keeps_only_sampled_frames(videos):
    clip = read_clip(videos / "long.avi", SPEC)
    s = clip.stats
    assert (clip.num_frames, clip.info.header_frames, s.passes, s.grabbed) == (200, 200, 1, 200)
    assert s.retrieved_indices == sample_indices(200, SPEC.frames).tolist()
    assert s.retrieved == SPEC.frames and s.max_retained == SPEC.frames


def test_short_video_retrieves_each_frame_once_and_repeats_in_order(videos):
    clip = read_clip(videos / "short.avi", SPEC)
    assert clip.indices.tolist() == sample_indices(5, SPEC.frames).tolist()
    assert clip.stats.retrieved == 5 and clip.stats.max_retained == 5
    assert any("short video: 5 frames for a 8-frame clip" in n for n in clip.notes)


def test_wrong_header_count_resamples_over_true_count_in_a_partial_second_pass(videos):
    clip = read_clip(videos / "undercount.avi", SPEC)
    s = clip.stats
    assert clip.info.header_frames == 80 and clip.num_frames == 200 and s.passes == 2
    assert clip.indices.tolist() == sample_indices(200, SPEC.frames).tolist()
    assert s.max_retained <= SPEC.frames
    assert s.grabbed == 200 + max(clip.indices) + 1  # second pass stops after the last missing frame
    np.testing.assert_array_equal(clip.input, reference(videos / "long.avi"))


def test_rotation_metadata_is_applied(videos):
    upright = [np.rot90(f, k=-1) for f in vf.decode_all(videos / "landscape.mp4")]  # 90° clockwise
    clip = read_clip(videos / "rotated90.mp4", SPEC)
    assert clip.info.rotation == 90 and clip.frame_size == (96, 48)
    np.testing.assert_array_equal(clip.input, preprocess_video(upright, SPEC))
    assert "rotated 90° for display, as its container metadata asks" in clip.notes
    assert read_clip(videos / "rotated270.mp4", SPEC).info.rotation == 270


def test_grayscale_becomes_three_equal_channels(videos):
    clip = read_clip(videos / "gray.avi", SPEC)
    pixels = clip.input[0] * 0.225 + 0.45  # undo the (equal) per-channel normalisation
    np.testing.assert_array_equal(pixels[0], pixels[1])
    np.testing.assert_array_equal(pixels[1], pixels[2])
    assert "grayscale video: the model sees three equal colour channels" in clip.notes
    assert not any("grayscale" in n for n in read_clip(videos / "long.avi", SPEC).notes)


def test_tiny_frames_are_enlarged_with_a_warning(videos):
    spec = PreprocessSpec(frames=4, crop=172, short_side=172)
    clip = read_clip(videos / "tiny.avi", spec)
    assert clip.input.shape == (1, 3, 4, 172, 172) and np.all(np.isfinite(clip.input))
    np.testing.assert_array_equal(clip.input, reference(videos / "tiny.avi", spec))
    assert any("tiny frames (8×8): enlarged 21.5× to 172 px" in n for n in clip.notes)


@pytest.mark.parametrize("name, side, size", [("wide.mp4", "width", (8, 1000)), ("tall.avi", "height", (400, 16))])
def test_extreme_aspect_ratio_is_centre_cropped_with_a_warning(videos, name, side, size):
    clip = read_clip(videos / name, SPEC)
    assert clip.frame_size == size
    np.testing.assert_array_equal(clip.input, reference(videos / name))
    assert any(f"the centre crop keeps only" in n and f"of the frame's {side}" in n for n in clip.notes)


def test_huge_frames_are_decoded_and_oversized_ones_refused(videos):
    clip = read_clip(videos / "uhd.avi", SPEC)
    assert clip.frame_size == (2160, 3840) and clip.stats.max_retained == 2
    np.testing.assert_array_equal(clip.input, reference(videos / "uhd.avi"))
    with pytest.raises(VideoError, match=r"frames are 3840×2160 \(8 Mpx\), above the 4 Mpx this tool decodes; "
                                         r"downscale first, e\.g\. `ffmpeg -i IN -vf scale=-2:1080") as e:
        read_clip(videos / "uhd.avi", SPEC, max_pixels=2048 * 2048)
    assert e.value.kind == "too-large"


BAD = [
    ("missing.mp4", "missing", "no such file; check the path"),
    ("notes.mp4", "not-a-video", "not a video: its content (starting b'this is a te') is no container FFmpeg "
                                 "recognises; pass a video file"),
    ("empty.mp4", "empty-file", "the file is empty (0 bytes): the copy or download failed"),
    ("zero.avi", "no-frames", "the AVI file contains no video frames (its header announces 0); record or export"),
    ("zero.mp4", "no-frames", "the MP4/MOV file holds no media data ('mdat' is empty): it contains no video frames"),
    ("truncated.avi", "truncated", "frames its header announces could be decoded (decoding stopped at"),
    ("truncated.mp4", "truncated", "has no 'moov' index box: it is truncated"),
    ("corrupt.avi", "truncated", "the file is truncated or corrupt. Re-download or re-encode it, or pass "
                                 "--allow-partial"),
    ("scrambled.avi", "undecodable", "none of the 200 frames (codec 'MJPG') could be decoded: the stream is corrupt "
                                     "or its codec unsupported by this FFmpeg build; re-encode it, e.g. `ffmpeg"),
    ("codec.avi", "unsupported-codec", "OpenCV's FFmpeg cannot open this AVI file's video stream (codec 'ZZZZ'): "
                                       "the codec is unsupported or the header damaged; re-encode it"),
]


@pytest.mark.parametrize("name, kind, message", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_a_clear_video_error(videos, name, kind, message):
    with pytest.raises(VideoError) as e:
        read_clip(videos / name, SPEC)
    assert e.value.kind == kind
    assert message in str(e.value) and str(e.value).startswith(str(videos / name))


def test_directory_is_not_a_video(videos):
    with pytest.raises(VideoError, match="not a regular file; pass a video file or a directory of videos"):
        read_clip(videos, SPEC)


def test_truncated_video_with_allow_partial_samples_the_decodable_frames(videos):
    clip = read_clip(videos / "truncated.avi", SPEC, allow_partial=True)
    assert 0 < clip.num_frames < 200 and clip.stats.passes == 2 and clip.stats.max_retained <= SPEC.frames
    assert clip.indices.tolist() == sample_indices(clip.num_frames, SPEC.frames).tolist()
    assert any(f"partial video: {clip.num_frames} of 200 frames decodable" in n for n in clip.notes)


def test_sniff_and_list_videos(videos):
    assert sniff_container(videos / "long.avi") == "AVI"
    assert sniff_container(videos / "clip.mp4") == "MP4/MOV"
    assert sniff_container(videos / "notes.mp4") is None
    names = [p.name for p in list_videos(videos)]
    assert names == sorted(names) and "long.avi" in names and "clip.mp4" in names
