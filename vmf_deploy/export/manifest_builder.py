"""Builds the artifact manifest (schema: ``docs/manifest.md``) and ships the label file beside the artifact.

Labels and preprocessing come from the checkpoint when it records them (``save_checkpoint(...,
classes=, preprocessing=)``); the seeded init and a 400-class checkpoint without class names
get the Kinetics-400 labels, and a checkpoint without a spec gets ``spec_for(cfg)``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

import vmf_deploy
from vmf_deploy.checkpoint import CheckpointError, checkpoint_classes, read_checkpoint_metadata
from vmf_deploy.counting import count_flops, count_params
from vmf_deploy.export.errors import ExportError
from vmf_deploy.export.targets import INPUT_NAME, OUTPUT_NAME, Target
from vmf_deploy.labels import LABELS_FILE, kinetics400_labels, labels_path
from vmf_deploy.manifest import SCHEMA, SCHEMA_VERSION, file_sha256, files_sha256, tree_sha256, validate_manifest
from vmf_deploy.preprocess import PreprocessSpec, spec_for

KINETICS_MEANING = ("unnormalised Kinetics-400 class scores; softmax for probabilities; "
                    "index = line of the label file")
CLASSES_MEANING = ("unnormalised scores of the checkpoint's {count} classes; softmax for probabilities; "
                   "index = line of the label file")
LABELS_SUFFIX = ".labels.txt"
"""A checkpoint's own class names ship as ``<artifact file>.labels.txt`` (Kinetics-400: ``kinetics400_labels.txt``)."""


def package_versions(packages: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of vmf-deploy and of ``packages`` (``None`` for one that is missing)."""
    out: dict[str, Any] = {"vmf_deploy": vmf_deploy.__version__}
    for dist in packages:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def artifact_digest(path: Path, companions: Sequence[Path] = ()) -> tuple[str, int, dict[str, str] | None]:
    """sha256, total size in bytes and per-file sha256s (``None`` for one file) of an artifact.

    A directory gets the tree hash (docs/manifest.md); an artifact with ``companions`` (OpenVINO's
    ``.bin``) gets :func:`vmf_deploy.manifest.files_sha256` over all its files.
    """
    if path.is_dir():
        return tree_sha256(path), sum(f.stat().st_size for f in path.rglob("*") if f.is_file()), None
    if companions:
        files = {f.name: file_sha256(f) for f in (path, *companions)}
        return files_sha256(files), sum(f.stat().st_size for f in (path, *companions)), files
    return file_sha256(path), path.stat().st_size, None


def model_source(checkpoint: Path | None, seed: int = 0) -> dict[str, Any]:
    """The manifest's ``model.source``: the checkpoint and its hash, or the seeded init."""
    if checkpoint is None:
        return {"kind": "seeded-init", "seed": seed, "checkpoint": None, "checkpoint_sha256": None}
    return {"kind": "checkpoint", "seed": None, "checkpoint": str(checkpoint),
            "checkpoint_sha256": file_sha256(checkpoint)}


def export_labels(checkpoint: str | os.PathLike | None) -> tuple[str, ...]:
    """The class names an export ships: the checkpoint's (see ``checkpoint_classes``), or Kinetics-400's."""
    if checkpoint is None:
        return kinetics400_labels()
    try:
        return checkpoint_classes(checkpoint)
    except CheckpointError as e:
        raise ExportError(str(e)) from None


def labels_file_name(artifact_file: str, labels: Sequence[str]) -> str:
    """The label file of an artifact: the shared ``kinetics400_labels.txt``, or ``<artifact_file>.labels.txt``.

    A checkpoint's own classes get a file per artifact, so that artifacts of different checkpoints
    in one output directory never overwrite each other's labels.
    """
    return LABELS_FILE if tuple(labels) == kinetics400_labels() else artifact_file + LABELS_SUFFIX


def export_preprocessing(cfg: object, input_shape: tuple[int, ...], checkpoint: str | os.PathLike | None) -> dict:
    """The manifest's preprocessing: the checkpoint's saved spec, else ``spec_for(cfg)`` at the export's frames.

    Raises:
        ExportError: the checkpoint's spec is for clips of another shape than ``input_shape``.
    """
    default = spec_for(cfg, input_shape[2])
    if checkpoint is None:
        return default.to_dict()
    try:
        saved = read_checkpoint_metadata(checkpoint)["preprocessing"]
    except CheckpointError as e:
        raise ExportError(str(e)) from None
    if saved is None:
        return default.to_dict()
    spec = PreprocessSpec.from_dict(saved)
    if spec.input_shape[1:] != tuple(input_shape[1:]):
        raise ExportError(
            f"checkpoint {checkpoint} was trained on {spec.frames}-frame {spec.crop}x{spec.crop} clips (its "
            f"preprocessing metadata) but this export's input is {input_shape[2]} frames of "
            f"{input_shape[3]}x{input_shape[4]}: drop --frames (or pass --frames {spec.frames}) so that the "
            "artifact is fed the clips the model was trained on")
    return spec.to_dict()


def ship_labels(out_dir: Path, manifest: dict[str, Any], checkpoint: str | os.PathLike | None) -> Path:
    """Write the label file the manifest names into ``out_dir``: the checkpoint's class names, or Kinetics-400's."""
    dest = out_dir / manifest["labels"]["file"]
    if dest.name == LABELS_FILE:
        shutil.copyfile(labels_path(), dest)
    else:
        dest.write_text("".join(f"{name}\n" for name in export_labels(checkpoint)), encoding="utf-8")
    return dest


def build_manifest(*, artifact: Path, target: Target, precision: str, model: torch.nn.Module,
                   variant: str, input_shape: tuple[int, ...], checkpoint: Path | None,
                   recipe: dict[str, Any], rewrites: list[dict], delegation: dict | None,
                   graph: dict | None, parity: dict[str, Any], export_seconds: float,
                   quantization: dict | None = None, input_layout: str = "NCTHW") -> dict[str, Any]:
    """The manifest dict of one artifact, validated against the schema before it is returned.

    ``model`` is the unrewritten reference model (params and FLOPs are counted on it at
    ``input_shape``); ``graph`` is the exported graph's node/op summary (an addition to the schema
    used by fusion reports); ``quantization`` what an int8 / palettize8 export quantized with
    (``export.quantization``, ``None`` otherwise); ``input_layout`` the layout the artifact's input takes
    (``input.shape`` stays in ``NCTHW`` order; ``preprocessing.layout`` follows it).
    """
    cfg = model.cfg
    sha, size, files = artifact_digest(artifact, target.files(artifact)[1:])
    num_classes = int(cfg.num_classes)
    labels = export_labels(checkpoint)
    kinetics = tuple(labels) == kinetics400_labels()
    manifest = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "artifact": {"file": artifact.name, "format": target.artifact_format, "target": target.name,
                     "sha256": sha, "size_bytes": size, "precision": precision, **({"files": files} if files else {})},
        "model": {"variant": variant, "config": cfg.to_dict(), "params": count_params(model),
                  "flops": count_flops(model, input_shape), "source": model_source(checkpoint)},
        "input": {"name": INPUT_NAME, "shape": list(input_shape), "dtype": "float32", "layout": input_layout},
        "output": {"name": OUTPUT_NAME, "shape": [input_shape[0], num_classes], "dtype": "float32",
                   "meaning": KINETICS_MEANING if kinetics else CLASSES_MEANING.format(count=num_classes)},
        "labels": {"file": labels_file_name(artifact.name, labels), "count": num_classes},
        "preprocessing": {**export_preprocessing(cfg, input_shape, checkpoint), "layout": input_layout},
        "export": {"recipe": recipe, "rewrites": rewrites, "delegation": delegation, "graph": graph,
                   "quantization": quantization,
                   "versions": package_versions(target.packages),
                   "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   "export_seconds": round(export_seconds, 3)},
        "parity": parity,
    }
    return validate_manifest(manifest)
