"""The artifact manifest: one JSON file beside every exported artifact.

Read by the Python harness (vmf-bench, vmf-predict), the native runtime and the
demo apps. Schema: ``docs/manifest.md``. Version ``SCHEMA_VERSION``; readers
refuse a manifest whose major version they do not know.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .atomic import atomic_output
from .preprocess import LAYOUTS

SCHEMA = "vmf-deploy/manifest"
SCHEMA_VERSION = 1
MANIFEST_SUFFIX = ".manifest.json"
REQUIRED = ("schema", "schema_version", "artifact", "model", "input", "output", "labels", "preprocessing",
            "export", "parity")


class ManifestError(ValueError):
    """A manifest that is missing, unreadable, of an unknown version, or inconsistent with its artifact."""


def manifest_path(artifact: str | os.PathLike) -> Path:
    """The manifest path of an artifact: ``<artifact>.manifest.json``."""
    return Path(str(artifact) + MANIFEST_SUFFIX)


def write_json_atomic(path: str | os.PathLike, data: Any) -> Path:
    """Write JSON to ``path`` through a temp file + rename (never a half-written file)."""
    path = Path(path)
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def validate_manifest(data: Any, source: str = "manifest") -> dict:
    """Check the top-level structure and version of a manifest dict; return it."""
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ManifestError(f"{source} is not a vmf-deploy manifest (schema != {SCHEMA!r})")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ManifestError(f"{source} has schema_version {version!r}; this vmf-deploy reads {SCHEMA_VERSION}: "
                            "re-export the artifact with this version of vmf-export")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise ManifestError(f"{source} lacks {missing}; re-export the artifact")
    shape = data["input"].get("shape")
    if not (isinstance(shape, list) and len(shape) == 5 and all(isinstance(s, int) and s > 0 for s in shape)):
        raise ManifestError(f"{source}: input.shape must be 5 positive ints (B, C, T, H, W), got {shape!r}")
    layout = data["input"].get("layout", "NCTHW")
    if layout not in LAYOUTS or data["preprocessing"].get("layout", "NCTHW") != layout:
        raise ManifestError(f"{source}: input.layout {layout!r} must be one of {', '.join(LAYOUTS)} and equal "
                            f"preprocessing.layout {data['preprocessing'].get('layout')!r}; re-export the artifact")
    return data


def read_manifest(path: str | os.PathLike) -> dict:
    """Load and validate a manifest JSON file."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest {path} not found; it is written beside the artifact by vmf-export")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ManifestError(f"manifest {path} is not valid JSON ({e})") from None
    return validate_manifest(data, str(path))


def verify_artifact(artifact: str | os.PathLike, manifest: dict) -> None:
    """Refuse an artifact whose sha256 differs from the manifest's (tampered or mismatched).

    An artifact of several files (OpenVINO's ``.xml`` + ``.bin``) lists them in ``artifact.files``;
    each is checked and the error names the one that differs.
    """
    artifact = Path(artifact)
    if not artifact.exists():
        raise ManifestError(f"artifact {artifact} not found")
    files = manifest["artifact"].get("files")
    if files:
        for name, expected in files.items():
            path = artifact.with_name(name)
            if not path.is_file():
                raise ManifestError(f"{path} not found: it belongs to {artifact.name} (its manifest lists it); "
                                    "copy it beside the artifact or re-export")
            actual = file_sha256(path)
            if actual != expected:
                raise ManifestError(f"{path} does not match its manifest (sha256 {actual[:12]}… != {expected[:12]}…): "
                                    f"it was modified or belongs to another export; re-export {artifact.name}")
        actual = files_sha256(files)
    else:
        actual = file_sha256(artifact) if artifact.is_file() else tree_sha256(artifact)
    expected = manifest["artifact"]["sha256"]
    if actual != expected:
        raise ManifestError(f"artifact {artifact} does not match its manifest (sha256 {actual[:12]}… != "
                            f"{expected[:12]}…): it was modified or belongs to another export; re-export it")


def files_sha256(files: dict[str, str]) -> str:
    """sha256 over an artifact of several files, from ``{name: sha256 of the file}``: as :func:`tree_sha256`."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode())
        h.update(bytes.fromhex(files[name]))
    return h.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes (streamed; importing this module does not import torch)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_sha256(path: str | os.PathLike) -> str:
    """sha256 over a directory artifact (``.mlpackage``): relative paths and file bytes, sorted."""
    root = Path(path)
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(f.relative_to(root).as_posix().encode())
        h.update(bytes.fromhex(file_sha256(f)))
    return h.hexdigest()
