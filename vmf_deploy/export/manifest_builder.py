"""Builds the artifact manifest (schema: ``docs/manifest.md``) and ships the label file beside the artifact."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

import vmf_deploy
from vmf_deploy.checkpoint import file_sha256
from vmf_deploy.counting import count_flops, count_params
from vmf_deploy.export.errors import ExportError
from vmf_deploy.export.targets import INPUT_NAME, OUTPUT_NAME, Target
from vmf_deploy.labels import LABELS_FILE, kinetics400_labels, labels_path
from vmf_deploy.manifest import SCHEMA, SCHEMA_VERSION, tree_sha256, validate_manifest
from vmf_deploy.preprocess import spec_for

OUTPUT_MEANING = ("unnormalised Kinetics-400 class scores; softmax for probabilities; "
                  "index = line of the label file")


def package_versions(packages: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of vmf-deploy and of ``packages`` (``None`` for one that is missing)."""
    out: dict[str, Any] = {"vmf_deploy": vmf_deploy.__version__}
    for dist in packages:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def artifact_digest(path: Path) -> tuple[str, int]:
    """sha256 (tree hash for a directory, per docs/manifest.md) and total size in bytes of an artifact."""
    if path.is_dir():
        return tree_sha256(path), sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return file_sha256(path), path.stat().st_size


def model_source(checkpoint: Path | None, seed: int = 0) -> dict[str, Any]:
    """The manifest's ``model.source``: the checkpoint and its hash, or the seeded init."""
    if checkpoint is None:
        return {"kind": "seeded-init", "seed": seed, "checkpoint": None, "checkpoint_sha256": None}
    return {"kind": "checkpoint", "seed": None, "checkpoint": str(checkpoint),
            "checkpoint_sha256": file_sha256(checkpoint)}


def ship_labels(out_dir: Path, num_classes: int) -> Path:
    """Copy the Kinetics-400 label file into ``out_dir`` (the manifest names it)."""
    if num_classes != len(kinetics400_labels()):
        raise ExportError(f"the model has {num_classes} classes but the shipped label file {LABELS_FILE} has "
                          f"{len(kinetics400_labels())}; export a model with num_classes=400")
    dest = out_dir / LABELS_FILE
    shutil.copyfile(labels_path(), dest)
    return dest


def build_manifest(*, artifact: Path, target: Target, precision: str, model: torch.nn.Module,
                   variant: str, input_shape: tuple[int, ...], checkpoint: Path | None,
                   recipe: dict[str, Any], rewrites: list[dict], delegation: dict | None,
                   graph: dict | None, parity: dict[str, Any], export_seconds: float) -> dict[str, Any]:
    """The manifest dict of one artifact, validated against the schema before it is returned.

    ``model`` is the unrewritten reference model (params and FLOPs are counted on it at
    ``input_shape``); ``graph`` is the exported graph's node/op summary (an addition to the schema
    used by fusion reports).
    """
    cfg = model.cfg
    sha, size = artifact_digest(artifact)
    num_classes = int(cfg.num_classes)
    manifest = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "artifact": {"file": artifact.name, "format": target.artifact_format, "target": target.name,
                     "sha256": sha, "size_bytes": size, "precision": precision},
        "model": {"variant": variant, "config": cfg.to_dict(), "params": count_params(model),
                  "flops": count_flops(model, input_shape), "source": model_source(checkpoint)},
        "input": {"name": INPUT_NAME, "shape": list(input_shape), "dtype": "float32", "layout": "NCTHW"},
        "output": {"name": OUTPUT_NAME, "shape": [input_shape[0], num_classes], "dtype": "float32",
                   "meaning": OUTPUT_MEANING},
        "labels": {"file": LABELS_FILE, "count": num_classes},
        "preprocessing": spec_for(cfg, input_shape[2]).to_dict(),
        "export": {"recipe": recipe, "rewrites": rewrites, "delegation": delegation, "graph": graph,
                   "versions": package_versions(target.packages),
                   "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   "export_seconds": round(export_seconds, 3)},
        "parity": parity,
    }
    return validate_manifest(manifest)
