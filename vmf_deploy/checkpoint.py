"""Checkpoints: safetensors weights plus the variant name and its config as metadata.

Optional metadata, each a JSON string: ``classes`` (the class names in index order),
``preprocessing`` (the ``PreprocessSpec`` the model was trained with) and ``training``
(a JSON object: epoch, metrics, ...). Loading is all-or-nothing: the file is fully
validated (format, variant, metadata, keys, shapes) before any weight is copied into a model.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .atomic import atomic_output
from .labels import kinetics400_labels
from .models import build_from_config, get_config, list_models
from .models.config import ConfigError
from .preprocess import PreprocessSpec

FORMAT_VERSION = "1"


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded as asked; the message says why and what to do."""


def save_checkpoint(model: nn.Module, path: str | os.PathLike, *, classes: Sequence[str] | None = None,
                    preprocessing: dict | None = None, training: dict | None = None) -> Path:
    """Save ``model`` (weights, BN statistics, variant and config) to ``path`` atomically.

    Args:
        model: a model built by ``build_model`` (it has a registry ``cfg``).
        path: the ``.safetensors`` file to write.
        classes: the name of each output class in index order: ``cfg.num_classes`` distinct,
            non-empty strings without line breaks or surrounding whitespace (they become the
            lines of the exported label file).
        preprocessing: ``PreprocessSpec.to_dict()`` of the clips the model was trained on; its
            ``frames`` and ``crop`` must be the config's ``frames`` and ``resolution``.
        training: a JSON-serialisable dict recording the training run (epoch, metrics, ...).

    Raises:
        CheckpointError: the model is not a registry model or a metadata argument is invalid.
    """
    cfg = getattr(model, "cfg", None)
    if cfg is None or not callable(getattr(cfg, "to_dict", None)) or getattr(cfg, "name", None) not in list_models():
        raise CheckpointError("save_checkpoint needs a model built by vmf_deploy.build_model (it has no .cfg)")
    meta = {"format": "vmf-deploy-checkpoint", "version": FORMAT_VERSION,
            "variant": cfg.name, "config": json.dumps(cfg.to_dict(), sort_keys=True)}
    meta.update(_extra_metadata(cfg, classes, preprocessing, training))
    path = Path(path)
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        save_file(state, str(tmp), metadata=meta)
    return path


def _extra_metadata(cfg: Any, classes: Sequence[str] | None, preprocessing: dict | None,
                    training: dict | None) -> dict[str, str]:
    """The optional metadata entries of :func:`save_checkpoint`, validated, as JSON strings."""
    extra: dict[str, str] = {}
    num_classes = int(cfg.num_classes)
    if classes is not None:
        try:
            extra["classes"] = json.dumps(_check_classes(classes, num_classes), ensure_ascii=False)
        except ValueError as e:
            raise CheckpointError(
                f"save_checkpoint got invalid classes: {e}. Pass the model's {num_classes} class names in index "
                "order, distinct, non-empty, without line breaks or surrounding whitespace (or classes=None)") from None
    if preprocessing is not None:
        try:
            spec = _check_preprocessing(preprocessing, int(cfg.frames), int(cfg.resolution))
        except ValueError as e:
            raise CheckpointError(
                f"save_checkpoint got an invalid preprocessing spec: {e}. Pass the PreprocessSpec.to_dict() of the "
                "clips the model was trained on (vmf_deploy.preprocess.spec_for(model.cfg) for the default)") from None
        extra["preprocessing"] = json.dumps(spec, sort_keys=True)
    if training is not None:
        try:
            extra["training"] = _check_training(training)
        except ValueError as e:
            raise CheckpointError(
                f"save_checkpoint got an invalid training record: {e}. Pass a dict of JSON values (numbers, "
                "strings, lists, dicts), e.g. {'epoch': 3, 'val_top1': 0.71}") from None
    return extra


def read_checkpoint_metadata(path: str | os.PathLike) -> dict:
    """Return a checkpoint's metadata without loading weights, validated.

    Keys: ``variant``, ``config`` (dict), ``version``, and ``classes`` (list of names),
    ``preprocessing`` (``PreprocessSpec.to_dict()``) and ``training`` (dict), each None when the
    checkpoint has none (checkpoints saved before they existed).
    """
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
    if not isinstance(config, dict):
        raise CheckpointError(f"checkpoint {path} has a corrupt config in its metadata (not a JSON object)")
    num_classes = config.get("num_classes")
    try:
        classes = None if "classes" not in meta else _check_classes(_json(meta["classes"]), num_classes)
    except ValueError as e:
        raise CheckpointError(
            f"checkpoint {path} has corrupt class names in its metadata: {e}. Re-save it with "
            f"save_checkpoint(model, path, classes=[...]) naming the model's {num_classes} classes") from None
    try:
        preprocessing = None if "preprocessing" not in meta else _check_preprocessing(
            _json(meta["preprocessing"]), config.get("frames"), config.get("resolution"))
    except ValueError as e:
        raise CheckpointError(
            f"checkpoint {path} has a corrupt preprocessing spec in its metadata: {e}. Re-save it with "
            "save_checkpoint(model, path, preprocessing=spec.to_dict()) of the clips it was trained on") from None
    try:
        training = None if "training" not in meta else _json(meta["training"])
        if training is not None and not isinstance(training, dict):
            raise ValueError(f"it is a JSON {type(training).__name__}, not an object")
    except ValueError as e:
        raise CheckpointError(f"checkpoint {path} has a corrupt training record in its metadata: {e}. Re-save it "
                              "with save_checkpoint(model, path, training={...})") from None
    return {"variant": meta["variant"], "config": config, "version": meta.get("version"), "classes": classes,
            "preprocessing": preprocessing, "training": training}


def checkpoint_classes(path: str | os.PathLike) -> tuple[str, ...]:
    """The class names of a checkpoint: its saved ``classes``, else Kinetics-400's for a 400-class model.

    Raises:
        CheckpointError: the checkpoint is unreadable, or has no class names and not 400 classes.
    """
    meta = read_checkpoint_metadata(path)
    if meta["classes"] is not None:
        return tuple(meta["classes"])
    num_classes = meta["config"].get("num_classes")
    if num_classes == len(kinetics400_labels()):
        return kinetics400_labels()
    raise CheckpointError(
        f"checkpoint {path} has {num_classes} classes but no class names in its metadata, and only a "
        f"{len(kinetics400_labels())}-class model can fall back to the Kinetics-400 labels: re-save it with "
        f"save_checkpoint(model, path, classes=[...]) naming its {num_classes} classes in index order")


def load_checkpoint(path: str | os.PathLike, variant: str | None = None,
                    num_classes: int | None = None) -> nn.Module:
    """Build the checkpoint's model and load its weights (strict, all-or-nothing).

    ``variant``, when given, must match the checkpoint's variant. ``num_classes``, when given and
    different from the checkpoint's, builds the model for that many classes (fine-tuning): every
    weight is loaded except the final classifier's (the keys whose shape depends on num_classes),
    which keeps its fresh init. The checkpoint must still match its own saved config exactly.
    """
    meta = read_checkpoint_metadata(path)
    saved = meta["variant"]
    if variant is not None and variant != saved:
        raise CheckpointError(
            f"checkpoint {path} holds variant {saved!r}, not {variant!r}: pass --variant {saved} "
            f"(or a checkpoint of {variant!r})")
    if saved not in list_models():
        raise CheckpointError(f"checkpoint {path} holds unknown variant {saved!r}; valid: {', '.join(list_models())}")
    if num_classes is not None and (not isinstance(num_classes, int) or isinstance(num_classes, bool)
                                    or num_classes < 1):
        raise CheckpointError(f"num_classes must be a positive integer (the classes to fine-tune for), "
                              f"got {num_classes!r}")
    try:
        cfg = type(get_config(saved)).from_dict(meta["config"])
        target = cfg if num_classes in (None, cfg.num_classes) else cfg.replace(num_classes=num_classes)
    except (ConfigError, TypeError, KeyError) as e:
        raise CheckpointError(f"checkpoint {path} has an invalid config: {e}") from None
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} could not be read ({e}); it may be truncated: save it again") from None
    model = build_from_config(saved, target)
    shapes = _shapes(model) if target is cfg else _shapes(_meta_model(saved, cfg))
    missing = sorted(set(shapes) - set(state))
    unexpected = sorted(set(state) - set(shapes))
    problems = []
    if missing:
        problems.append(f"missing keys {_preview(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_preview(unexpected)}")
    wrong = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(shape)}"
             for k, shape in shapes.items() if k in state and state[k].shape != shape]
    if wrong:
        problems.append(f"shape mismatches {_preview(wrong)}")
    if problems:
        raise CheckpointError(
            f"checkpoint {path} does not match variant {saved!r} with its saved config: " + "; ".join(problems)
            + ". Nothing was loaded. The file was edited or saved from a different model: re-save it with "
            "save_checkpoint from the model it belongs to")
    fresh = {k for k, shape in _shapes(model).items() if shapes[k] != shape}
    model.load_state_dict({k: v if k in fresh else state[k].to(v.dtype) for k, v in model.state_dict().items()},
                          strict=True)
    return model.eval()


def _meta_model(variant: str, cfg: Any) -> nn.Module:
    """``variant`` built from ``cfg`` on the meta device: its state-dict shapes without allocating weights."""
    with torch.device("meta"):
        return build_from_config(variant, cfg)


def _shapes(model: nn.Module) -> dict[str, torch.Size]:
    """Shape of every state-dict entry of ``model``."""
    return {k: v.shape for k, v in model.state_dict().items()}


def _json(text: str) -> Any:
    """``json.loads`` whose failure is a ValueError naming the problem."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"not valid JSON ({e})") from None


def _check_classes(classes: Any, num_classes: Any) -> list[str]:
    """``classes`` as a list after checking it names ``num_classes`` classes; ValueError says what is wrong."""
    if isinstance(classes, (str, bytes)) or not isinstance(classes, Sequence):
        raise ValueError(f"expected a list of strings, got {type(classes).__name__}")
    names = list(classes)
    if len(names) != num_classes:
        raise ValueError(f"{len(names)} names for a model with num_classes={num_classes}")
    seen: set[str] = set()
    for i, name in enumerate(names):
        if not isinstance(name, str):
            raise ValueError(f"entry {i} is {name!r}, not a string")
        if not name.strip():
            raise ValueError(f"entry {i} is empty")
        if "\n" in name or "\r" in name:
            raise ValueError(f"entry {i} ({name!r}) contains a line break")
        if name != name.strip():
            raise ValueError(f"entry {i} ({name!r}) has leading or trailing whitespace")
        if name in seen:
            raise ValueError(f"{name!r} appears more than once")
        seen.add(name)
    return names


def _check_preprocessing(data: Any, frames: Any, resolution: Any) -> dict:
    """``data`` as a normalised PreprocessSpec dict of ``frames``-frame ``resolution``² clips; ValueError if not."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a dict (PreprocessSpec.to_dict()), got {type(data).__name__}")
    try:
        spec = PreprocessSpec.from_dict(data)
    except (TypeError, KeyError, ValueError) as e:
        raise ValueError(f"not a PreprocessSpec dict ({e})") from None
    for knob in ("frames", "crop", "short_side"):
        value = getattr(spec, knob)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{knob}={value!r}, expected a positive integer")
    if spec.short_side < spec.crop:
        raise ValueError(f"short_side={spec.short_side} is smaller than crop={spec.crop}")
    for knob in ("mean", "std"):
        values = getattr(spec, knob)
        if len(values) != 3 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise ValueError(f"{knob}={list(values)!r}, expected 3 numbers (R, G, B)")
    if min(spec.std) <= 0:
        raise ValueError(f"std={list(spec.std)!r} has a value <= 0")
    if (spec.frames, spec.crop) != (frames, resolution):
        raise ValueError(f"it describes {spec.frames}-frame {spec.crop}x{spec.crop} clips but the model's config "
                         f"takes {frames}-frame {resolution}x{resolution} clips (frames, resolution)")
    return spec.to_dict()


def _check_training(training: Any) -> str:
    """``training`` as a JSON object string; ValueError if it is not a dict of JSON values."""
    if not isinstance(training, dict):
        raise ValueError(f"expected a dict, got {type(training).__name__}")
    try:
        return json.dumps(training, sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"not JSON-serialisable ({e})") from None


def _preview(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return f"[{shown}{', ...' if len(items) > limit else ''}] ({len(items)} in all)"

