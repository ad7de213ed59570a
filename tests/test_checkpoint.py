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
