"""Artifacts for the harness: export one through the export pipeline, or read a given one's manifest."""

from __future__ import annotations

from pathlib import Path

from ..runners import RunnerError


def artifact_size(path: Path) -> int:
    """Size in bytes of a file artifact, or the total of a directory artifact (``.mlpackage``)."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def export_artifact(target: str, variant: str, frames: int, seed: int, out_dir: Path) -> Path:
    """Export the seeded ``variant`` at ``frames`` for ``target``; return the artifact path.

    Export failures are raised as :class:`RunnerError` (the harness reports them as the
    backend's ``failed: ...`` row).
    """
    from ..export.errors import ExportError

    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _export(target, variant, frames, seed, out_dir)
    except ExportError as e:
        raise RunnerError(f"export to {target} failed: {e}") from None


def _export(target: str, variant: str, frames: int, seed: int, out_dir: Path) -> Path:
    # TEMPORARY until vmf_deploy.export.pipeline.export_model lands: lower with the default recipe.
    import torch

    from .. import build_seeded_model
    from ..export.recipes import load_recipe
    from ..export.targets import artifact_name, get_target

    t = get_target(target)
    recipe = load_recipe(t)
    model = build_seeded_model(variant, seed=seed, frames=frames)
    path = out_dir / artifact_name(variant, frames, t, "fp32")
    if target == "onnx":
        from ..export.onnx_export import save_onnx, simplify_onnx, trace_to_onnx

        proto = trace_to_onnx(model, model.cfg.input_shape, recipe.options["opset"], recipe.path)
        if recipe.options.get("simplify"):
            proto = simplify_onnx(proto, recipe.path)
        save_onnx(proto, path)
        return path
    if target == "executorch":
        from ..export.executorch_export import lower_to_executorch

        return lower_to_executorch(model, torch.zeros(model.cfg.input_shape), recipe).save(path)
    raise RunnerError(f"no exporter for target {target}")
