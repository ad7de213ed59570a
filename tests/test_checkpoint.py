"""Checkpoint round-trip is bit-exact; every bad checkpoint fails with a useful message."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from vmf_deploy import CheckpointError, build_seeded_model, load_checkpoint, save_checkpoint


@pytest.fixture
def saved(tmp_path):
    model = build_seeded_model("560m", seed=1, frames=8)
    path = save_checkpoint(model, tmp_path / "m.safetensors")
    return model, path


def _rewrite(path, state=None, meta_update=None):
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
    state = load_file(str(path)) if state is None else state
    meta.update(meta_update or {})
    save_file(state, str(path), metadata=meta)


def test_round_trip_is_bit_exact(saved):
    model, path = saved
    loaded = load_checkpoint(path)
    assert loaded.cfg == model.cfg
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k
    x = torch.randn(model.cfg.input_shape)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_no_temp_file_left(saved):
    _, path = saved
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.safetensors"]


def test_wrong_variant(saved):
    _, path = saved
    with pytest.raises(CheckpointError, match=r"holds variant '560m', not '1g': pass --variant 560m"):
        load_checkpoint(path, variant="1g")


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.safetensors")


def test_truncated_file(saved):
    _, path = saved
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(path)


def test_not_a_vmf_checkpoint(tmp_path):
    path = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointError, match="no vmf-deploy metadata"):
        load_checkpoint(path)


def test_missing_and_unexpected_keys(saved):
    _, path = saved
    state = load_file(str(path))
    state.pop("stem.bn.running_mean")
    state["extra.weight"] = torch.zeros(3)
    _rewrite(path, state)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path)
    msg = str(e.value)
    assert "missing keys [stem.bn.running_mean]" in msg and "unexpected keys [extra.weight]" in msg
    assert "Nothing was loaded" in msg


def test_wrong_shape(saved):
    _, path = saved
    state = load_file(str(path))
    state["head.classifier.weight"] = torch.zeros(10, 1920)
    _rewrite(path, state)
    with pytest.raises(CheckpointError, match=r"head.classifier.weight: checkpoint \(10, 1920\) vs model \(400, 1920\)"):
        load_checkpoint(path)


def test_config_of_other_architecture(saved):
    _, path = saved
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        cfg = json.loads(f.metadata()["config"])
    cfg["num_tokens"] = 12  # tokens table no longer matches
    _rewrite(path, meta_update={"config": json.dumps(cfg)})
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_checkpoint(path)


def test_save_needs_registry_model(tmp_path):
    with pytest.raises(CheckpointError, match="build_model"):
        save_checkpoint(torch.nn.Linear(2, 2), tmp_path / "x.safetensors")


def test_x3d_peer_round_trip(tmp_path):
    from vmf_deploy import build_model
    model = build_model("x3d-xs", frames=4, resolution=64)
    loaded = load_checkpoint(save_checkpoint(model, tmp_path / "x3d.safetensors"), variant="x3d-xs")
    assert loaded.cfg == model.cfg
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k


def test_saved_files_get_normal_permissions(saved):
    import os
    import stat
    _, path = saved
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


# ----- class names, preprocessing and training record --------------------------------------------

CLASSES = [f"class {i}" for i in range(12)]


@pytest.fixture
def tiny():
    """A 12-class 560m at 8 frames of 32² (fast to build and save)."""
    from vmf_deploy import build_model
    return build_model("560m", frames=8, resolution=32, num_classes=12)


def test_metadata_round_trip(tiny, tmp_path):
    from vmf_deploy.checkpoint import read_checkpoint_metadata
    from vmf_deploy.preprocess import PreprocessSpec, spec_for

    spec = PreprocessSpec(frames=8, crop=32, short_side=36, mean=(0.4, 0.45, 0.5))
    training = {"epoch": 7, "metrics": {"val_top1": 0.625, "loss": [1.5, 0.75]}, "note": "café"}
    path = save_checkpoint(tiny, tmp_path / "t.safetensors", classes=CLASSES, preprocessing=spec.to_dict(),
                           training=training)
    meta = read_checkpoint_metadata(path)
    assert meta["classes"] == CLASSES and meta["training"] == training
    assert PreprocessSpec.from_dict(meta["preprocessing"]) == spec
    plain = read_checkpoint_metadata(save_checkpoint(tiny, tmp_path / "plain.safetensors"))
    assert plain["classes"] is plain["preprocessing"] is plain["training"] is None
    assert spec_for(tiny.cfg) != spec  # the saved spec is the one given, not the default


def test_old_checkpoint_without_new_metadata_still_loads(saved):
    from safetensors import safe_open

    from vmf_deploy.checkpoint import read_checkpoint_metadata
    _, path = saved
    with safe_open(str(path), framework="pt") as f:
        assert set(f.metadata()) == {"format", "version", "variant", "config"}
    meta = read_checkpoint_metadata(path)
    assert (meta["classes"], meta["preprocessing"], meta["training"]) == (None, None, None)
    assert load_checkpoint(path).cfg.num_classes == 400


def test_checkpoint_classes_or_kinetics(tiny, saved, tmp_path):
    from vmf_deploy.checkpoint import checkpoint_classes
    from vmf_deploy.labels import kinetics400_labels

    assert checkpoint_classes(save_checkpoint(tiny, tmp_path / "t.safetensors", classes=CLASSES)) == tuple(CLASSES)
    assert checkpoint_classes(saved[1]) == kinetics400_labels()  # 400 classes, no names: Kinetics-400
    with pytest.raises(CheckpointError, match=r"has 12 classes but no class names in its metadata, and only a "
                                              r"400-class model can fall back to the Kinetics-400 labels: "
                                              r"re-save it with save_checkpoint\(model, path, classes=\[...\]\)"):
        checkpoint_classes(save_checkpoint(tiny, tmp_path / "none.safetensors"))


@pytest.mark.parametrize("classes, problem", [
    (CLASSES[:11], "11 names for a model with num_classes=12"),
    ("abcdefghijkl", "expected a list of strings, got str"),
    ([*CLASSES[:11], 3], "entry 11 is 3, not a string"),
    ([*CLASSES[:11], "  "], "entry 11 is empty"),
    ([*CLASSES[:11], "a\nb"], r"entry 11 \('a\\nb'\) contains a line break"),
    ([*CLASSES[:11], " padded"], r"entry 11 \(' padded'\) has leading or trailing whitespace"),
    ([*CLASSES[:11], "class 0"], "'class 0' appears more than once"),
])
def test_save_refuses_bad_classes(tiny, tmp_path, classes, problem):
    with pytest.raises(CheckpointError, match=rf"save_checkpoint got invalid classes: {problem}\. Pass the "
                                              r"model's 12 class names in index order"):
        save_checkpoint(tiny, tmp_path / "bad.safetensors", classes=classes)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("spec, problem", [
    ("not a dict", "expected a dict \\(PreprocessSpec.to_dict\\(\\)\\), got str"),
    ({"frames": 8, "crop": 32}, "not a PreprocessSpec dict"),
    ({"frames": 8, "crop": 32, "short_side": 32, "colour": "RGB"}, "not a PreprocessSpec dict"),
    ({"frames": 16, "crop": 32, "short_side": 32}, "it describes 16-frame 32x32 clips but the model's config takes "
                                                   "8-frame 32x32 clips"),
    ({"frames": 8, "crop": 32, "short_side": 30}, "short_side=30 is smaller than crop=32"),
    ({"frames": 8, "crop": 32, "short_side": 32, "std": [0.2, 0.0, 0.2]}, r"std=\[0.2, 0.0, 0.2\] has a value <= 0"),
])
def test_save_refuses_bad_preprocessing(tiny, tmp_path, spec, problem):
    from vmf_deploy.preprocess import KINETICS_MEAN, KINETICS_STD

    if isinstance(spec, dict) and "short_side" in spec:
        spec = {"mean": list(KINETICS_MEAN), "std": list(KINETICS_STD), **spec}
    with pytest.raises(CheckpointError, match=rf"save_checkpoint got an invalid preprocessing spec: {problem}"):
        save_checkpoint(tiny, tmp_path / "bad.safetensors", preprocessing=spec)


@pytest.mark.parametrize("training, problem", [
    ([1, 2], "expected a dict, got list"),
    ({"epoch": 1, "when": object()}, "not JSON-serialisable"),
])
def test_save_refuses_bad_training_record(tiny, tmp_path, training, problem):
    with pytest.raises(CheckpointError, match=rf"save_checkpoint got an invalid training record: {problem}"):
        save_checkpoint(tiny, tmp_path / "bad.safetensors", training=training)


@pytest.mark.parametrize("key, value, message", [
    ("classes", "[not json", r"corrupt class names in its metadata: not valid JSON"),
    ("classes", json.dumps(CLASSES[:5]), r"corrupt class names in its metadata: 5 names for a model with "
                                         r"num_classes=12\. Re-save it with save_checkpoint\(model, path, classes="),
    ("classes", json.dumps({"0": "a"}), r"corrupt class names in its metadata: expected a list of strings, got dict"),
    ("preprocessing", "{", r"corrupt preprocessing spec in its metadata: not valid JSON"),
    ("preprocessing", json.dumps({"frames": 8}), r"corrupt preprocessing spec in its metadata: not a PreprocessSpec"),
    ("training", "[1]", r"corrupt training record in its metadata: it is a JSON list, not an object"),
    ("training", "{oops", r"corrupt training record in its metadata: not valid JSON"),
])
def test_corrupt_metadata_is_refused(tiny, tmp_path, key, value, message):
    from vmf_deploy.checkpoint import checkpoint_classes

    path = save_checkpoint(tiny, tmp_path / "t.safetensors", classes=CLASSES)
    _rewrite(path, meta_update={key: value})
    for read in (load_checkpoint, checkpoint_classes):
        with pytest.raises(CheckpointError, match=message):
            read(path)


# ----- fine-tuning: load for another number of classes -------------------------------------------

@pytest.mark.parametrize("variant, knobs", [
    ("560m", {"frames": 8, "resolution": 32}),
    ("mobile3d-560m", {"frames": 8, "resolution": 32}),
    ("x3d-xs", {"frames": 4, "resolution": 64}),
])
def test_num_classes_override_keeps_all_but_the_classifier(tmp_path, variant, knobs):
    from vmf_deploy import build_seeded_model

    model = build_seeded_model(variant, seed=2, num_classes=12, **knobs)
    path = save_checkpoint(model, tmp_path / "m.safetensors")
    tuned = load_checkpoint(path, variant=variant, num_classes=5)
    assert tuned.cfg == model.cfg.replace(num_classes=5) and not tuned.training
    before, after = model.state_dict(), tuned.state_dict()
    assert before.keys() == after.keys()
    replaced = {k for k in before if before[k].shape != after[k].shape}
    assert replaced == {"head.classifier.weight", "head.classifier.bias"}
    for k in before.keys() - replaced:
        assert torch.equal(before[k], after[k]), k
    assert after["head.classifier.weight"].shape == (5, before["head.classifier.weight"].shape[1])
    assert torch.equal(after["head.classifier.bias"], torch.zeros(5))  # fresh init: zero bias
    assert 0.005 < after["head.classifier.weight"].std() < 0.02  # fresh init: N(0, 0.01)
    x = torch.randn(tuned.cfg.input_shape)
    with torch.no_grad():
        assert tuned(x).shape == (1, 5)


def test_num_classes_equal_to_the_checkpoints_is_a_plain_load(saved):
    model, path = saved
    loaded = load_checkpoint(path, num_classes=400)
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k


def test_num_classes_override_still_refuses_other_mismatches(saved):
    _, path = saved
    state = load_file(str(path))
    state["stem.bn.running_mean"] = torch.zeros(3)
    _rewrite(path, state)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path, num_classes=10)
    msg = str(e.value)
    assert "shape mismatches [stem.bn.running_mean: checkpoint (3,) vs model (16,)] (1 in all)" in msg
    assert "Nothing was loaded" in msg and "classifier" not in msg


def test_num_classes_override_does_not_excuse_a_classifier_unlike_its_config(saved):
    _, path = saved
    state = load_file(str(path))
    state["head.classifier.weight"] = torch.zeros(10, 1920)  # a 10-class classifier in a 400-class checkpoint
    _rewrite(path, state)
    with pytest.raises(CheckpointError, match=r"head.classifier.weight: checkpoint \(10, 1920\) vs model "
                                              r"\(400, 1920\).*Nothing was loaded"):
        load_checkpoint(path, num_classes=10)


@pytest.mark.parametrize("num_classes", [0, -3, True, 2.5, "12"])
def test_num_classes_override_must_be_a_positive_integer(saved, num_classes):
    with pytest.raises(CheckpointError, match=rf"num_classes must be a positive integer \(the classes to fine-tune "
                                              rf"for\), got {num_classes!r}"):
        load_checkpoint(saved[1], num_classes=num_classes)
