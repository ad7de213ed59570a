"""``export_model``: capture → rewrites → lower → save (to a temp dir) → parity gate → manifest → move into place.

Nothing reaches the output directory until the artifact has passed its parity gate:
every file is written to a hidden temp dir inside the output directory and renamed
into place at the end. On any failure the temp dir is removed (and the output
directory too, if this export created it and it is still empty).
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vmf_deploy.checkpoint import CheckpointError, load_checkpoint
from vmf_deploy.export import coreml_export, executorch_export, onnx_export, parity_gate
from vmf_deploy.export.errors import ExportError
from vmf_deploy.export.manifest_builder import build_manifest, ship_labels
from vmf_deploy.export.recipes import Recipe, load_recipe
from vmf_deploy.export.targets import Target, artifact_name, get_target
from vmf_deploy.manifest import manifest_path, write_json_atomic
from vmf_deploy.models import ConfigError, build_seeded_model
from vmf_deploy.rewrites import run_rewrites

Progress = Callable[[str, float | None], None]
"""Step callback: ``(step, None)`` when a step starts, ``(step, seconds)`` when it ends."""

SEED = 0
"""Seed of the deterministic init exported when no checkpoint is given."""


@dataclass
class ExportResult:
    """One finished export.

    Attributes:
        artifact: the artifact in the output directory (file, or ``.mlpackage`` directory).
        manifest_path: ``<artifact>.manifest.json``.
        manifest: the manifest written.
        steps: ``(step, seconds)`` in the order they ran.
    """

    artifact: Path
    manifest_path: Path
    manifest: dict[str, Any]
    steps: list[tuple[str, float]] = field(default_factory=list)


class _Steps:
    """Times named steps and reports them to the progress callback."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.done: list[tuple[str, float]] = []

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if self.progress:
            self.progress(name, None)
        start = time.perf_counter()
        yield
        self.record(name, time.perf_counter() - start)

    def record(self, name: str, seconds: float) -> None:
        """Record a step timed elsewhere (the ExecuTorch lowering times its own sub-steps)."""
        self.done.append((name, seconds))
        if self.progress:
            self.progress(name, seconds)


def load_model(variant: str, checkpoint: str | Path | None, frames: int | None) -> torch.nn.Module:
    """The model to export: ``load_checkpoint(checkpoint, variant)`` or the seeded init of ``variant``.

    ``frames`` sets the clip length of the export (the config's ``frames`` is updated so the
    manifest describes the exported input).
    """
    if frames is not None and (not isinstance(frames, int) or frames < 1):
        raise ExportError(f"--frames must be a positive integer, got {frames!r}")
    try:
        if checkpoint is None:
            return build_seeded_model(variant, seed=SEED, **({"frames": frames} if frames else {}))
        model = load_checkpoint(checkpoint, variant)
    except (ConfigError, CheckpointError) as e:
        raise ExportError(str(e)) from None
    cfg = model.cfg
    if frames and frames != cfg.frames:
        if getattr(cfg, "tokens_per_frame", False):
            raise ExportError(f"checkpoint {checkpoint} is a tokens_per_frame model built for {cfg.frames} frames; "
                              f"it cannot be exported at --frames {frames}: drop --frames")
        model.cfg = cfg.replace(frames=frames)
    return model


def _resolve_precision(target: Target, recipe: Recipe, precision: str | None) -> str:
    """``--precision`` if given, else the recipe's default (``[coreml].compute_precision``) or fp32."""
    chosen = precision or recipe.options.get("compute_precision", "fp32")
    if chosen not in target.precisions:
        raise ExportError(f"target {target.name!r} exports {', '.join(target.precisions)} only, not {chosen!r}: "
                          f"drop --precision {chosen} (fp16 is available for coreml)")
    recipe.tolerance(precision=chosen)  # fail now, not after the export, if the recipe cannot judge it
    return chosen


@contextmanager
def _staging_dir(out_dir: Path) -> Iterator[Path]:
    """A hidden temp dir inside ``out_dir`` (same filesystem: the final moves are renames), always removed."""
    created = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".vmf-export-", dir=out_dir))
    except OSError as e:
        raise ExportError(f"output directory {out_dir} is not writable ({e.strerror or e}); pass a writable "
                          "directory with --out") from None
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if created and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()


def _move_into_place(staged: Path, final: Path) -> None:
    """Rename ``staged`` to ``final``, replacing a file or a directory (``.mlpackage``) already there."""
    if final.is_dir() and not final.is_symlink():
        trash = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, trash)
        os.replace(staged, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staged, final)


def _lower_onnx(model: torch.nn.Module, shape: tuple[int, ...], recipe: Recipe, fuse: bool, staged: Path,
                steps: _Steps) -> tuple[list[dict], dict | None, dict]:
    options = recipe.options
    with steps("rewrite"):
        rewritten, applied = run_rewrites("onnx", "module", model, fuse=fuse)
    with steps("trace"):
        proto = onnx_export.trace_to_onnx(rewritten, shape, options["opset"], recipe.path)
    if options["simplify"]:
        with steps("simplify"):
            proto = onnx_export.simplify_onnx(proto, recipe.path)
    with steps("rewrite"):
        proto, applied_onnx = run_rewrites("onnx", "onnx", proto, fuse=fuse,
                                           choices={"bridges": options["bridges"]})
        proto = onnx_export.prune_unused(proto)
    if options["check"]:
        with steps("check"):
            onnx_export.check_onnx(proto)
    with steps("save"):
        onnx_export.save_onnx(proto, staged)
    graph = {"nodes": len(proto.graph.node), "op_types": onnx_export.op_counts(proto)}
    return applied + applied_onnx, None, graph


def _lower_executorch(model: torch.nn.Module, shape: tuple[int, ...], recipe: Recipe, fuse: bool, staged: Path,
                      steps: _Steps) -> tuple[list[dict], dict | None, dict | None]:
    if steps.progress:
        steps.progress("lower", None)
    program = executorch_export.lower_to_executorch(model, torch.zeros(shape), recipe, fuse=fuse)
    for name, seconds in program.seconds.items():
        steps.record({"export": "trace", "serialize": "serialize"}.get(name, name), seconds)
    with steps("save"):
        program.save(staged)
    return program.rewrites, program.delegation, None


def _lower_coreml(model: torch.nn.Module, shape: tuple[int, ...], recipe: Recipe, fuse: bool, staged: Path,
                  steps: _Steps, precision: str) -> tuple[list[dict], dict | None, dict]:
    with steps("rewrite"):
        rewritten, applied = run_rewrites("coreml", "module", model, fuse=fuse)
    with steps("trace"):
        program = coreml_export.capture(rewritten, shape, recipe.path)
    with steps("lower"):
        mlmodel, kept_fp32 = coreml_export.convert(program, shape, recipe.options, precision, recipe.path)
    with steps("save"):
        coreml_export.save_mlpackage(mlmodel, staged)
    with steps("validate"):
        graph = coreml_export.validate_mlpackage(staged, shape, int(model.cfg.num_classes))
    graph["ops_kept_fp32"] = kept_fp32
    return applied, None, graph


def export_model(variant: str, target: str, out_dir: str | Path, checkpoint: str | Path | None = None,
                 frames: int | None = None, precision: str | None = None, recipe_path: str | Path | None = None,
                 fuse: bool = True, force: bool = False, progress: Progress | None = None) -> ExportResult:
    """Export one variant to one target, gate it on parity, and write artifact + manifest + labels to ``out_dir``.

    Args:
        variant: a registry name (``560m``, ``1g``, ...).
        target: ``onnx``, ``executorch`` or ``coreml``.
        out_dir: output directory (created if missing).
        checkpoint: a ``save_checkpoint`` file of ``variant``; None exports the seeded init (seed 0).
        frames: clip length of the exported input (default: the variant's).
        precision: ``fp32`` or ``fp16`` (coreml only); None takes the recipe's default.
        recipe_path: a recipe file instead of ``export/<target>.toml``.
        fuse: False applies only the rewrites the target requires (``--no-fuse``).
        force: overwrite an existing artifact of the same name.
        progress: step callback (see :data:`Progress`).

    Raises:
        ExportError: any failure, with a one-paragraph message; nothing is left in ``out_dir``.
    """
    started = time.perf_counter()
    tgt = get_target(target)
    recipe = load_recipe(tgt, recipe_path)
    chosen = _resolve_precision(tgt, recipe, precision)
    reference = load_model(variant, checkpoint, frames)
    shape = tuple(reference.cfg.input_shape)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"output directory {out_dir} is a file, not a directory; pass a directory with --out")
    final = out_dir / artifact_name(variant, shape[2], tgt, chosen)
    if (final.exists() or manifest_path(final).exists()) and not force:
        raise ExportError(f"{final} already exists; pass --force to overwrite it or choose another --out directory")

    steps = _Steps(progress)
    with _staging_dir(out_dir) as tmp:
        staged = tmp / final.name
        model = copy.deepcopy(reference)  # rewrites may change modules in place; the reference stays untouched
        if tgt.name == "onnx":
            rewrites, delegation, graph = _lower_onnx(model, shape, recipe, fuse, staged, steps)
        elif tgt.name == "executorch":
            rewrites, delegation, graph = _lower_executorch(model, shape, recipe, fuse, staged, steps)
        else:
            rewrites, delegation, graph = _lower_coreml(model, shape, recipe, fuse, staged, steps, chosen)

        tolerance = recipe.tolerance(chosen)
        if tgt.name == "coreml" and not coreml_export.coreml_runs_here():
            gate = parity_gate.not_run(recipe.runtime, recipe.seeds, tolerance, parity_gate.NOT_RUN_COREML)
        else:
            with steps("parity"):
                gate = parity_gate.run_gate(reference, staged, recipe.runtime, recipe.seeds, tolerance,
                                            recipe.tolerance_key(chosen), shape)

        applied_recipe = {"file": str(recipe.path), **recipe.data}
        if tgt.name == "coreml":
            applied_recipe["coreml"] = {**recipe.options, "compute_precision": chosen}
        manifest = build_manifest(
            artifact=staged, target=tgt, precision=chosen, model=reference, variant=variant, input_shape=shape,
            checkpoint=Path(checkpoint) if checkpoint is not None else None, recipe=applied_recipe,
            rewrites=rewrites, delegation=delegation, graph=graph, parity=gate.record,
            export_seconds=time.perf_counter() - started)
        staged_manifest = write_json_atomic(manifest_path(staged), manifest)
        labels = ship_labels(tmp, manifest, checkpoint)
        os.replace(labels, out_dir / labels.name)
        _move_into_place(staged, final)
        os.replace(staged_manifest, manifest_path(final))
    return ExportResult(artifact=final, manifest_path=manifest_path(final), manifest=manifest, steps=steps.done)
