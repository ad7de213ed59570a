"""Artifacts for the harness: exported through vmf-export's pipeline (artifact + manifest + labels)."""

from __future__ import annotations

from pathlib import Path

from ..runners import RunnerError


def artifact_size(path: Path) -> int:
    """Size in bytes of an artifact: its file, its files (OpenVINO: those its manifest lists), or its directory's."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    from ..manifest import ManifestError, manifest_path, read_manifest

    try:
        names = list(read_manifest(manifest_path(path))["artifact"].get("files") or [path.name])
    except ManifestError:
        names = [path.name]
    return sum(path.with_name(name).stat().st_size for name in names)


def artifact_precision(path: Path) -> str:
    """The precision an artifact's manifest records (``fp32`` for one without a readable manifest)."""
    from ..manifest import ManifestError, manifest_path, read_manifest

    try:
        return str(read_manifest(manifest_path(path))["artifact"].get("precision", "fp32"))
    except ManifestError:
        return "fp32"


def export_artifact(target: str, variant: str, frames: int, out_dir: Path, precision: str = "fp32") -> Path:
    """Export the seeded ``variant`` at ``frames`` for ``target`` with ``export_model``; return the artifact.

    The pipeline applies its own parity gate and writes the manifest and label file beside
    the artifact. Its refusals are raised as :class:`RunnerError` (the harness reports them
    as that backend's ``failed: ...`` row). ``int8`` is calibrated on the synthetic dataset's
    calibration split (the seeded model has no data of its own) and exported with a recipe whose
    int8 gate accepts any output: int8 noise swamps the seeded init's nearly constant logits, so no
    int8 limit means anything for it; the row's parity column shows what was measured.
    """
    from ..export.errors import ExportError
    from ..export.pipeline import export_model
    from ..export.recipes import accept_any_parity
    from ..export.targets import get_target

    calibration = "synthetic" if precision == "int8" and get_target(target).calibrated else None
    recipe = accept_any_parity(get_target(target), precision, out_dir) if precision == "int8" else None
    try:
        return Path(export_model(variant, target, out_dir, frames=frames, force=True, precision=precision,
                                 calibration=calibration, recipe_path=recipe).artifact)
    except ExportError as e:
        raise RunnerError(f"export to {target} failed: {e}") from None
