"""`vmf-train`: checkpoints with class names and preprocessing, resume, Ctrl-C, fine-tuning, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import video_factory as vf

from vmf_deploy import build_seeded_model, load_checkpoint, save_checkpoint
from vmf_deploy.checkpoint import read_checkpoint_metadata
from vmf_deploy.cli.train import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from vmf_deploy.cli.train import main as train_main
from vmf_deploy.datasets import CLASSES
from vmf_deploy.train import TrainConfig, TrainError, train
from vmf_deploy.train.augment import augment
from vmf_deploy.train.schedule import warmup_cosine

TINY = ["--variant", "560m", "--frames", "4", "--size", "32", "--batch-size", "4", "--train-clips", "24",
        "--val-clips", "12"]
"""A run of 6 steps per epoch at 4 frames of 32²: seconds, not minutes."""


def tiny_config(out: Path, **overrides) -> TrainConfig:
    """The library form of TINY on the synthetic dataset."""
    return TrainConfig(**{"variant": "560m", "data": "synthetic", "out": str(out), "frames": 4, "size": 32,
                          "batch_size": 4, "train_clips": 24, "val_clips": 12, "epochs": 1, **overrides})


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-epoch run of TINY on synthetic."""
    out = tmp_path_factory.mktemp("train") / "run"
    assert train_main([*TINY, "--data", "synthetic", "--epochs", "2", "--out", str(out)]) == EXIT_OK
    return out


def test_a_run_writes_checkpoints_that_carry_classes_and_preprocessing(run: Path) -> None:
    names = sorted(p.name for p in run.iterdir())
    assert names == ["best.safetensors", "epoch-001.safetensors", "epoch-002.safetensors", "history.json",
                     "last.safetensors", "state.pt"]
    meta = read_checkpoint_metadata(run / "last.safetensors")
    assert meta["classes"] == list(CLASSES) and meta["variant"] == "560m"
    assert (meta["preprocessing"]["frames"], meta["preprocessing"]["crop"]) == (4, 32)
    assert meta["training"]["epoch"] == 2 and meta["training"]["config"]["data"] == "synthetic"
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    assert all(0 <= h["val_top1"] <= 1 and h["clips_per_second"] > 0 for h in history)
    model = load_checkpoint(run / "last.safetensors")
    assert model.cfg.num_classes == len(CLASSES) and model.cfg.frames == 4


def test_resume_continues_to_the_new_epoch_count(run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    copy.mkdir()
    for f in run.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    before = load_checkpoint(copy / "last.safetensors").state_dict()
    assert train_main([*TINY, "--data", "synthetic", "--epochs", "3", "--out", str(copy), "--resume"]) == EXIT_OK
    assert [h["epoch"] for h in json.loads((copy / "history.json").read_text())] == [1, 2, 3]
    after = load_checkpoint(copy / "last.safetensors").state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert sorted(p.name for p in copy.glob("epoch-*")) == ["epoch-002.safetensors", "epoch-003.safetensors"]


def test_the_same_config_trains_the_same_model_whatever_ran_before(tmp_path: Path) -> None:
    torch.manual_seed(1)
    first = train(tiny_config(tmp_path / "a"))
    torch.manual_seed(2)
    torch.rand(1000)
    caller_state = torch.random.get_rng_state()
    second = train(tiny_config(tmp_path / "b"))
    assert torch.equal(torch.random.get_rng_state(), caller_state), "train() moved the caller's random state"
    a, b = load_checkpoint(first.last).state_dict(), load_checkpoint(second.last).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    other = load_checkpoint(train(tiny_config(tmp_path / "c", seed=1)).last).state_dict()
    assert not all(torch.equal(a[k], other[k]) for k in a), "the seed does not reach the init"


def test_ctrl_c_leaves_the_last_complete_epoch_intact(tmp_path: Path) -> None:
    out = tmp_path / "run"
    epochs_done = []

    def progress(event: str, info: dict) -> None:
        if event == "epoch":
            epochs_done.append(info["record"].epoch)
        if event == "step" and info["epoch"] == 1 and info["step"] == 3:
            raise KeyboardInterrupt

    result = train(tiny_config(out, epochs=3), progress=progress)
    assert result.interrupted and epochs_done == [1]
    assert read_checkpoint_metadata(out / "last.safetensors")["training"]["epoch"] == 1
    load_checkpoint(out / "last.safetensors")
    assert not list(out.glob("*.tmp*")) and not list(out.glob(".*"))
    resumed = train(tiny_config(out, epochs=2), resume=True)
    assert not resumed.interrupted and [r.epoch for r in resumed.history] == [1, 2]


def test_the_cli_exits_130_on_ctrl_c(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vmf_deploy.train import loop

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "augment", interrupted)
    assert train_main([*TINY, "--data", "synthetic", "--epochs", "1", "--out", str(tmp_path / "r")]) == EXIT_INTERRUPTED


def test_fine_tuning_onto_another_class_count_replaces_the_classifier(tmp_path: Path) -> None:
    kinetics = build_seeded_model("560m", seed=1, frames=4, resolution=32)
    source = save_checkpoint(kinetics, tmp_path / "k400.safetensors")
    result = train(tiny_config(tmp_path / "ft", checkpoint=str(source), augment=False))
    tuned = load_checkpoint(result.last)
    assert tuned.cfg.num_classes == len(CLASSES)
    assert read_checkpoint_metadata(result.last)["classes"] == list(CLASSES)


def _folder(root: Path, classes: dict[str, int]) -> Path:
    for name, count in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            vf.write_video(root / name / f"{i}.avi", 12, (48, 48))
    return root


def test_training_on_a_folder_dataset_holds_out_validation_videos(tmp_path: Path) -> None:
    data = _folder(tmp_path / "data", {"a": 3, "b": 3})
    (tmp_path / "data" / "b" / "broken.avi").write_bytes(b"\x00" * 100)
    result = train(tiny_config(tmp_path / "run", data=str(data), batch_size=2, val_fraction=0.34))
    assert result.classes == ("a", "b") and not result.interrupted
    assert [path for path, _ in result.skipped] == [str(data / "b" / "broken.avi")]
    assert read_checkpoint_metadata(result.last)["classes"] == ["a", "b"]


@pytest.mark.parametrize("case, message", [
    ("no_videos", "holds no videos"),
    ("one_class", r"has one class \(a\); a classifier needs at least two"),
    ("corrupt_checkpoint", "it may be truncated or corrupt"),
    ("wrong_variant_checkpoint", "holds variant '1g', not '560m'"),
    ("resume_nothing", "--resume found no finished epoch"),
    ("existing_run", "already holds a run; pass --resume"),
    ("damaged_state", "state.pt is damaged or not a vmf-train state .* fine-tune from .*last.safetensors with"),
])
def test_bad_input_gives_one_clear_message(tmp_path: Path, case: str, message: str) -> None:
    out = tmp_path / "run"
    cfg, resume = tiny_config(out), False
    if case == "no_videos":
        (tmp_path / "data" / "a").mkdir(parents=True)
        cfg = tiny_config(out, data=str(tmp_path / "data"))
    elif case == "one_class":
        cfg = tiny_config(out, data=str(_folder(tmp_path / "data", {"a": 2})))
    elif case == "corrupt_checkpoint":
        good = save_checkpoint(build_seeded_model("560m", frames=4, resolution=32), tmp_path / "ck.safetensors")
        good.write_bytes(good.read_bytes()[:-5000])
        cfg = tiny_config(out, checkpoint=str(good))
    elif case == "wrong_variant_checkpoint":
        ck = save_checkpoint(build_seeded_model("1g", frames=4, resolution=32), tmp_path / "ck.safetensors")
        cfg = tiny_config(out, checkpoint=str(ck))
    elif case == "resume_nothing":
        resume = True
    elif case == "existing_run":
        out.mkdir()
        (out / "state.pt").write_bytes(b"")
    elif case == "damaged_state":
        save_checkpoint(build_seeded_model("560m", frames=4, resolution=32), out / "last.safetensors")
        (out / "state.pt").write_bytes(b"not a torch file")
        resume = True
    with pytest.raises(TrainError, match=message):
        train(cfg, resume=resume)


def test_resume_on_other_data_is_refused(run: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainError, match="is a run of --variant 560m on --data synthetic, not 560m on"):
        train(tiny_config(run, data=str(tmp_path)), resume=True)


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "1"], "--batch-size must be at least 2"),
    (["--size", "16"], "--size must be at least 32"),
    (["--lr", "0"], "--lr must be > 0"),
    (["--resume", "--checkpoint", "x.safetensors"], "pass one of them"),
    (["--variant", "560"], "unknown"),
])
def test_cli_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        train_main([*TINY, "--data", "synthetic", "--out", str(tmp_path / "r"), *args])
    assert exit_info.value.code == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_warmup_then_cosine_to_the_floor() -> None:
    values = [warmup_cosine(s, 100, 10) for s in range(100)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert values[10] == pytest.approx(1.0) and all(a >= b for a, b in zip(values[10:], values[11:]))
    assert warmup_cosine(100, 100, 10) == pytest.approx(0.01)


def test_mirroring_swaps_the_labels_of_direction_classes() -> None:
    clips = torch.arange(2 * 3 * 4 * 8 * 8, dtype=torch.float32).reshape(2, 3, 4, 8, 8)
    labels = torch.tensor([CLASSES.index("move_left"), CLASSES.index("grow")])
    hflip = [CLASSES.index({"move_left": "move_right"}.get(c, c)) for c in CLASSES]
    seen = set()
    for seed in range(16):
        out, new = augment(clips, labels, torch.Generator().manual_seed(seed), hflip=hflip, max_shift=0, jitter=0,
                           temporal_shift=0)
        mirrored = torch.equal(out[0], clips[0].flip(-1))
        assert mirrored or torch.equal(out[0], clips[0])
        assert int(new[0]) == CLASSES.index("move_right" if mirrored else "move_left")
        assert int(new[1]) == CLASSES.index("grow")
        seen.add(mirrored)
    assert seen == {True, False}


@pytest.mark.parametrize("workers", [0, 1])
def test_batch_loader_keeps_order_and_counts_unreadable_videos_in_the_parent(tmp_path: Path, workers: int) -> None:
    from vmf_deploy.datasets import VideoFolder
    from vmf_deploy.preprocess import PreprocessSpec
    from vmf_deploy.train.loader import BatchLoader

    data = _folder(tmp_path / "data", {"a": 2, "b": 2})
    (data / "b" / "broken.avi").write_bytes(b"\x00" * 100)
    source = VideoFolder(data, PreprocessSpec(frames=4, crop=32, short_side=32))
    with BatchLoader(source, workers=workers) as loader:
        batches = list(loader.batches(list(range(len(source))), batch_size=2))
    indices = [i for _, _, batch in batches for i in batch]
    assert indices == [i for i in range(len(source)) if not source.sample(i).source.endswith("broken.avi")]
    assert [clips.shape[1:] for clips, _, _ in batches] == [(3, 4, 32, 32)] * len(batches)
    assert [path for path, _ in source.skipped.items] == [str(data / "b" / "broken.avi")]


def test_resume_after_the_class_list_changed_is_refused(tmp_path: Path) -> None:
    data = _folder(tmp_path / "data", {"a": 3, "b": 3})
    cfg = tiny_config(tmp_path / "run", data=str(data), batch_size=2, val_fraction=0.34)
    train(cfg)
    _folder(data, {"c": 3})
    with pytest.raises(TrainError, match="was trained on 2 classes, the data now has 3"):
        train(tiny_config(tmp_path / "run", data=str(data), batch_size=2, epochs=2), resume=True)
