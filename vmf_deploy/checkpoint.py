"""Checkpoints: safetensors weights plus the variant name and its config as metadata.

Loading is all-or-nothing: the file is fully validated (format, variant, keys,
shapes) before any weight is copied into a model.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .atomic import atomic_output
from .models import build_from_config, get_config, list_models
from .models.config import ConfigError

FORMAT_VERSION = "1"


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded as asked; the message says why and what to do."""


def save_checkpoint(model: nn.Module, path: str | os.PathLike) -> Path:
    """Save ``model`` (weights, BN statistics, variant and config) to ``path`` atomically."""
    cfg = getattr(model, "cfg", None)
    if cfg is None or not callable(getattr(cfg, "to_dict", None)) or getattr(cfg, "name", None) not in list_models():
        raise CheckpointError("save_checkpoint needs a model built by vmf_deploy.build_model (it has no .cfg)")
    path = Path(path)
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    meta = {"format": "vmf-deploy-checkpoint", "version": FORMAT_VERSION,
            "variant": cfg.name, "config": json.dumps(cfg.to_dict(), sort_keys=True)}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        save_file(state, str(tmp), metadata=meta)
    return path


def read_checkpoint_metadata(path: str | os.PathLike) -> dict:
    """Return the metadata of a checkpoint (``variant``, ``config`` dict, ``version``) without loading weights."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; pass the path of a file saved by save_checkpoint")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(
            f"checkpoint {path} is not a readable safetensors file ({e}); it may be truncated or corrupt: "
            "save it again with vmf_deploy.save_checkpoint") from None
    if meta.get("format") != "vmf-deploy-checkpoint" or "variant" not in meta or "config" not in meta:
        raise CheckpointError(
            f"checkpoint {path} has no vmf-deploy metadata (variant/config); it was not written by "
            "vmf_deploy.save_checkpoint. Rebuild the model with build_model(...), load its weights "
            "with load_state_dict and save it with save_checkpoint")
    try:
        config = json.loads(meta["config"])
    except json.JSONDecodeError as e:
        raise CheckpointError(f"checkpoint {path} has a corrupt config in its metadata ({e})") from None
    return {"variant": meta["variant"], "config": config, "version": meta.get("version")}


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes (streamed)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_checkpoint(path: str | os.PathLike, variant: str | None = None) -> nn.Module:
    """Build the checkpoint's model and load its weights (strict, all-or-nothing).

    ``variant``, when given, must match the checkpoint's variant.
    """
    meta = read_checkpoint_metadata(path)
    saved = meta["variant"]
    if variant is not None and variant != saved:
        raise CheckpointError(
            f"checkpoint {path} holds variant {saved!r}, not {variant!r}: pass --variant {saved} "
            f"(or a checkpoint of {variant!r})")
    if saved not in list_models():
        raise CheckpointError(f"checkpoint {path} holds unknown variant {saved!r}; valid: {', '.join(list_models())}")
    try:
        cfg = type(get_config(saved)).from_dict(meta["config"])
    except (ConfigError, TypeError, KeyError) as e:
        raise CheckpointError(f"checkpoint {path} has an invalid config: {e}") from None
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} could not be read ({e}); it may be truncated: save it again") from None
    model = build_from_config(saved, cfg)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    problems = []
    if missing:
        problems.append(f"missing keys {_preview(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_preview(unexpected)}")
    wrong = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
             for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if wrong:
        problems.append(f"shape mismatches {_preview(wrong)}")
    if problems:
        raise CheckpointError(
            f"checkpoint {path} does not match variant {saved!r} with its saved config: " + "; ".join(problems)
            + ". Nothing was loaded. The file was edited or saved from a different model: re-save it with "
            "save_checkpoint from the model it belongs to")
    model.load_state_dict({k: state[k].to(v.dtype) for k, v in expected.items()}, strict=True)
    return model.eval()


def _preview(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return f"[{shown}{', ...' if len(items) > limit else ''}] ({len(items)} in all)"

