"""The procedural action dataset, `vmf-dataset synth`, and folder / CSV datasets of video files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import video_factory as vf

from vmf_deploy.cli.dataset import main as dataset_main
from vmf_deploy.datasets import (CLASSES, SYNTHETIC, DatasetError, SyntheticSource, VideoFolder, gate_clips,
                                 open_source, render_clip)
from vmf_deploy.datasets.synthetic import HFLIP_LABELS, SPLITS, label_of, normalise
from vmf_deploy.preprocess import PreprocessSpec
from vmf_deploy.video import read_clip

SPEC = PreprocessSpec(frames=8, crop=32, short_side=32)


def test_a_sample_is_a_function_of_seed_split_and_index() -> None:
    a, b = render_clip(5, "train", seed=3, frames=6, size=32), render_clip(5, "train", seed=3, frames=6, size=32)
    assert np.array_equal(a.frames, b.frames) and a.label == b.label == label_of(5)
    assert not np.array_equal(a.frames, render_clip(5, "train", seed=4, frames=6, size=32).frames)
    assert not np.array_equal(a.frames, render_clip(5 + len(CLASSES), "train", seed=3, frames=6, size=32).frames)


def test_splits_never_share_a_sample() -> None:
    assert len(set(SPLITS.values())) == len(SPLITS)
    firsts = {split: render_clip(0, split, frames=4, size=32).frames for split in SPLITS}
    for split, frames in firsts.items():
        for other, other_frames in firsts.items():
            if split < other:
                assert not np.array_equal(frames, other_frames), (split, other)


def test_renders_at_any_frames_and_resolution() -> None:
    clip = render_clip(11, "val", frames=5, size=(36, 60))
    assert clip.frames.shape == (5, 36, 60, 3) and clip.frames.dtype == np.uint8
    assert clip.name == CLASSES[11]


def test_time_is_continuous_across_frame_counts() -> None:
    """Frame k of n is drawn at t = (k + 0.5) / n: frame k of an 8-frame render is frame 3k + 1 of a 24-frame one."""
    short = render_clip(7, "train", frames=8, size=32).frames
    long = render_clip(7, "train", frames=24, size=32).frames
    assert np.array_equal(short, long[1::3])


def test_at_least_ten_classes_in_twins_that_differ_only_over_time() -> None:
    assert len(CLASSES) >= 10 and len(set(CLASSES)) == len(CLASSES)
    for name, twin in (("move_left", "move_right"), ("rotate_clockwise", "rotate_anticlockwise"),
                       ("grow", "shrink"), ("flash_slow", "flash_fast"), ("meet", "part")):
        assert name in CLASSES and twin in CLASSES
    assert all(HFLIP_LABELS[HFLIP_LABELS[c]] == c for c in HFLIP_LABELS)
    counts = np.bincount([label_of(i) for i in range(5 * len(CLASSES))])
    assert counts.tolist() == [5] * len(CLASSES)


def test_normalise_and_gate_clips_give_model_inputs() -> None:
    clip = render_clip(0, "gate", frames=4, size=32)
    x = normalise(clip.frames)
    assert x.shape == (1, 3, 4, 32, 32) and x.dtype == np.float32
    assert np.allclose(x[0, :, 0, 0, 0], (clip.frames[0, 0, 0] / 255 - 0.45) / 0.225, atol=1e-6)
    clips = gate_clips((2, 3, 4, 32, 32), 3)
    assert [c.shape for c in clips] == [(2, 3, 4, 32, 32)] * 3
    with pytest.raises(ValueError, match="RGB"):
        gate_clips((1, 1, 4, 32, 32), 1)


def test_bad_render_arguments_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="unknown split 'tran'; valid splits: train"):
        render_clip(0, "tran")
    with pytest.raises(ValueError, match="at least 16×16"):
        render_clip(0, size=8)
    with pytest.raises(ValueError, match="index must be >= 0"):
        render_clip(-1)


def test_synthetic_source_draws_fresh_training_clips_each_epoch() -> None:
    source = SyntheticSource("train", len(CLASSES), SPEC, fresh_per_epoch=True)
    assert source.sample(0, epoch=0).source != source.sample(0, epoch=1).source
    clip, label = source.load(3, epoch=1)
    assert clip.shape == (3, 8, 32, 32) and label == label_of(3 + len(CLASSES))
    with pytest.raises(DatasetError, match="at least 12 clips"):
        SyntheticSource("val", 5, SPEC)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "data"
    assert dataset_main(["synth", "--out", str(root), "--per-class", "1", "--frames", "12", "--size", "32"]) == 0
    return root


def test_vmf_dataset_synth_writes_class_folders_of_decodable_videos(written: Path) -> None:
    assert (written / "classes.txt").read_text().split("\n")[:-1] == list(CLASSES)
    meta = json.loads((written / "dataset.json").read_text())
    assert meta["split"] == "test" and meta["frames"] == 12 and meta["classes"] == list(CLASSES)
    videos = sorted(written.glob("*/*.*"))
    assert len(videos) == len(CLASSES) and {v.parent.name for v in videos} == set(CLASSES)
    assert not list(written.rglob("*.tmp*"))
    first = written / CLASSES[0] / f"test-000000{meta['suffix']}"
    decoded = np.stack(vf.decode_all(first)).astype(np.float32)
    rendered = render_clip(0, "test", frames=12, size=32).frames.astype(np.float32)
    assert decoded.shape == rendered.shape
    error = np.abs(decoded - rendered).mean()  # lossy codec (measured 6.6 of 255), same pictures, RGB order
    assert error < 10
    assert error < 0.5 * np.abs(decoded - rendered[..., ::-1]).mean()


def test_folder_dataset_decodes_with_vmf_predicts_code(written: Path) -> None:
    source = open_source(str(written), SPEC)
    assert isinstance(source, VideoFolder) and source.classes == CLASSES and len(source) == len(CLASSES)
    clip, label = source.load(4)
    sample = source.sample(4)
    assert label == sample.label == CLASSES.index(Path(sample.source).parent.name)
    assert np.array_equal(clip, read_clip(sample.source, SPEC).input[0])


def test_csv_dataset_with_header_and_relative_paths(written: Path, tmp_path: Path) -> None:
    rows = ["path,label"] + [f"{v.relative_to(written)},{v.parent.name}" for v in sorted(written.glob("*/*.*"))[:3]]
    (written / "ann.csv").write_text("\n".join(rows) + "\n")
    try:
        source = open_source(str(written / "ann.csv"), SPEC, classes=CLASSES)
        assert len(source) == 3 and source.describe()["kind"] == "csv"
        assert source.load(0) is not None
    finally:
        (written / "ann.csv").unlink()


def test_unreadable_videos_are_skipped_and_listed(written: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    for name in CLASSES[:2]:
        (root / name).mkdir(parents=True)
        for video in (written / name).iterdir():
            (root / name / video.name).write_bytes(video.read_bytes())
    (root / CLASSES[1] / "broken.mp4").write_bytes(b"not a video at all")
    source = VideoFolder(root, SPEC)
    loaded = [source.load(i) for i in range(len(source))]
    assert sum(item is None for item in loaded) == 1
    assert len(source.skipped) == 1 and source.skipped.items[0][0].endswith("broken.mp4")


def test_empty_class_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    vf.write_video(tmp_path / "a" / "x.avi", 8)
    (tmp_path / "b").mkdir()
    with pytest.raises(DatasetError, match=r"class folder .*b holds no videos .* add videos or remove the folder"):
        VideoFolder(tmp_path, SPEC)


def test_label_missing_from_the_class_list_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "jumping").mkdir()
    vf.write_video(tmp_path / "jumping" / "x.avi", 8)
    with pytest.raises(DatasetError, match=r"labels \['jumping'\] that are not in the class list"):
        VideoFolder(tmp_path, SPEC, classes=("a", "b"))
    (tmp_path / "classes.txt").write_text("running\nswimming\n")
    with pytest.raises(DatasetError, match="not in the class list"):
        VideoFolder(tmp_path, SPEC)


@pytest.mark.parametrize("layout, message", [
    ("missing", "does not exist; pass a folder of class folders"),
    ("no_folders", "has no class folders; lay it out as"),
    ("bad_csv", "row 1 is .*every row must be path,label"),
])
def test_unusable_dataset_paths_say_how_to_fix_them(tmp_path: Path, layout: str, message: str) -> None:
    path = tmp_path / "data"
    if layout == "no_folders":
        path.mkdir()
    elif layout == "bad_csv":
        path = tmp_path / "ann.csv"
        path.write_text("only-a-path.mp4\n")
    with pytest.raises(DatasetError, match=message):
        open_source(str(path), SPEC)


def test_synthetic_refuses_a_model_of_other_classes() -> None:
    with pytest.raises(DatasetError, match="not the synthetic dataset's"):
        open_source(SYNTHETIC, SPEC, classes=("a", "b"))


@pytest.mark.parametrize("args, message", [
    (["--per-class", "0"], "--per-class must be at least 1"),
    (["--per-class", "1", "--size", "33"], "--size must be an even number"),
    (["--per-class", "1", "--fps", "0"], "--fps must be positive"),
])
def test_vmf_dataset_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str],
                                   message: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        dataset_main(["synth", "--out", str(tmp_path / "d"), *args])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
