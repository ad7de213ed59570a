"""``export_model``: the target's lowering (to a temp dir) → parity gate → manifest → move into place.

The lowering is the ``lower`` function named in the target's ``TARGETS`` row
(``vmf_deploy/export/lowering.py`` has its contract); this module never names a target.

Nothing reaches the output directory until the artifact has passed its parity gate:
every file is written to a hidden temp dir inside the output directory and renamed
into place at the end. On any failure the temp dir is removed (and the output
directory too, if this export created it and it is still empty).
"""

from __future__ import annotations

import copy
import os
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vmf_deploy.checkpoint import CheckpointError, load_checkpoint
from vmf_deploy.export import parity_gate
from vmf_deploy.export.errors import ExportError
from vmf_deploy.export.lowering import Lowered, LoweringJob, Progress, QuantizationPlan, Steps
from vmf_deploy.export.manifest_builder import build_manifest, export_labels, export_preprocessing, ship_labels
from vmf_deploy.export.recipes import Recipe, load_recipe, recipe_record
from vmf_deploy.export.targets import TARGETS, Target, artifact_name, get_target
from vmf_deploy.manifest import manifest_path, write_json_atomic
from vmf_deploy.models import ConfigError, build_seeded_model

SEED = 0
"""Seed of the deterministic init exported when no checkpoint is given."""
QUANTIZED = ("int8", "palettize8")
"""Precisions made by quantization (the recipe's ``[quantization]`` table)."""


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
        others = [t.name for t in TARGETS.values() if chosen in t.precisions]
        raise ExportError(f"target {target.name!r} exports {', '.join(target.precisions)} only, not {chosen!r}: "
                          f"drop --precision {chosen} ({chosen} is available for {', '.join(others) or 'no target'})")
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


def plan_quantization(target: Target, recipe: Recipe, precision: str, model: torch.nn.Module,
                      shape: tuple[int, ...], checkpoint: str | Path | None, calibration: str | Path | None,
                      calibration_clips: int | None) -> QuantizationPlan | None:
    """The quantization of a ``precision`` export (``None`` for fp32/fp16); calibration clips are loaded here.

    Raises:
        ExportError: no ``[quantization]`` table, no ``--calibration`` where activations are
            quantized (int8 is never calibrated on noise), or an unusable calibration source.
    """
    if precision not in QUANTIZED:
        if calibration is not None:
            raise ExportError(f"--calibration is for --precision int8; this export is {precision}: drop it")
        return None
    if not recipe.quantization:
        raise ExportError(f"recipe {recipe.path} has no [quantization] table, so it cannot make a {precision} "
                          f"artifact; add one (see export/{target.recipe_file}) or pass another with --recipe")
    classes = {name: type(m).__name__ for name, m in model.named_modules()}
    if not target.calibrated:
        return QuantizationPlan(precision, recipe.quantization, None, classes)
    if calibration is None:
        raise ExportError(f"--precision {precision} quantizes activations, whose ranges come from calibration "
                          "clips: pass --calibration synthetic (the procedural dataset), a folder of videos, or a "
                          "labelled dataset folder; int8 is never calibrated on noise")
    from vmf_deploy.preprocess import PreprocessSpec
    from vmf_deploy.quantize.calibration import CalibrationError, load_calibration

    spec = PreprocessSpec.from_dict(export_preprocessing(model.cfg, shape, checkpoint))
    qat_steps = recipe.quantization.get("qat_steps", 0)
    try:
        count = recipe.quantization["calibration_clips"] if calibration_clips is None else calibration_clips
        clips = load_calibration(calibration, spec, count)
        qat = load_calibration(calibration, spec, recipe.quantization["qat_clips"]) if qat_steps else None
    except CalibrationError as e:
        raise ExportError(str(e)) from None
    return QuantizationPlan(precision, recipe.quantization, clips, classes, qat=qat)


def _layer_diff_explainer(quant: QuantizationPlan, recipe_path: Path) -> Callable[[], str] | None:
    """What a failing int8 gate prints after its verdict: the layers that add the most error, by module, how
    to keep layers fp32, and, where the recipe can but does not fine-tune (``qat_steps = 0``), that it can."""
    if quant.layer_diff_method is None:
        return None
    fine_tune = (" Or, at no latency cost, fine-tune the int8 weights towards the fp32 logits: add --set "
                 "quantization.qat_steps=2048 (5-8 minutes of export at 48x48 frames on 2 cores; docs/int8.md)."
                 if quant.options.get("qat_steps") == 0 else "")
    return lambda: _explain_layer_diff(quant, recipe_path) + fine_tune


def _explain_layer_diff(quant: QuantizationPlan, recipe_path: Path) -> str:
    """The worst layers, and a ``--set`` that keeps the worst one's module fp32 on top of the recipe's list."""
    from vmf_deploy.export.recipes import toml_literal
    from vmf_deploy.quantize.layer_diff import format_worst, worst_layers

    layers = quant.layer_errors()
    kept = list(quant.options.get("fp32_modules", []))
    worst = next((layer.module for layer, _ in worst_layers(layers) if layer.module and layer.module not in kept), None)
    if worst is None:
        keep = (f"add module paths (or a block's whole Mobile path such as \"blocks.0.mobile\") to [quantization] "
                f"fp32_modules of {recipe_path} with --set")
    else:
        setting = shlex.quote("quantization.fp32_modules=" + toml_literal([*kept, worst]))
        keep = (f"add --set {setting} (the list of {recipe_path} and the worst layer's module; any module above, or "
                f"a block's whole Mobile path such as \"blocks.0.mobile\", works the same way)")
    return (f"Layers adding the most error ({quant.layer_diff_method}):\n" + format_worst(layers)
            + f"\nTo trade latency for precision, keep modules fp32: {keep}.")


def _record_quantization(quant: QuantizationPlan) -> None:
    """Add the calibration set, the recipe and the per-layer error summary to ``quant.summary``."""
    summary = {"precision": quant.precision, **quant.summary, "recipe": dict(quant.options),
               "calibration": quant.calibration.describe() if quant.calibration is not None else
               {"source": None, "note": "weight-only compression: no calibration clips"}}
    if quant.equalization is not None:
        summary["channel_equalization"] = quant.equalization
    if quant.layer_diff_method is not None:
        from vmf_deploy.quantize.layer_diff import summarize

        summary["layer_errors"] = {"method": quant.layer_diff_method, **summarize(quant.layer_errors())}
    quant.summary = summary


def export_model(variant: str, target: str, out_dir: str | Path, checkpoint: str | Path | None = None,
                 frames: int | None = None, precision: str | None = None, recipe_path: str | Path | None = None,
                 fuse: bool = True, force: bool = False, progress: Progress | None = None,
                 calibration: str | Path | None = None, calibration_clips: int | None = None,
                 recipe_overrides: Sequence[str] = ()) -> ExportResult:
    """Export one variant to one target, gate it on parity, and write artifact + manifest + labels to ``out_dir``.

    Args:
        variant: a registry name (``560m``, ``1g``, ...).
        target: a ``vmf_deploy.export.targets.TARGETS`` name (``onnx``, ``executorch``, ``coreml``, ...).
        out_dir: output directory (created if missing).
        checkpoint: a ``save_checkpoint`` file of ``variant``; None exports the seeded init (seed 0).
        frames: clip length of the exported input (default: the variant's).
        precision: ``fp32``, ``fp16`` (coreml), ``int8`` or ``palettize8`` (coreml); None takes the recipe's default.
        recipe_path: a recipe file instead of ``export/<target>.toml``.
        fuse: False applies only the rewrites the target requires (``--no-fuse``).
        force: overwrite an existing artifact of the same name.
        progress: step callback (see :data:`Progress`).
        calibration: int8 on onnx / executorch: ``synthetic`` or a folder / CSV of videos (``--calibration``).
        calibration_clips: how many calibration clips (default: the recipe's ``calibration_clips``).
        recipe_overrides: ``TABLE.KEY=VALUE`` changes to the recipe for this export (``--set``), recorded in the
            manifest.

    Raises:
        ExportError: any failure, with a one-paragraph message; nothing is left in ``out_dir``.
    """
    started = time.perf_counter()
    tgt = get_target(target)
    recipe = load_recipe(tgt, recipe_path, recipe_overrides)
    chosen = _resolve_precision(tgt, recipe, precision)
    reference = load_model(variant, checkpoint, frames)
    shape = tuple(reference.cfg.input_shape)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"output directory {out_dir} is a file, not a directory; pass a directory with --out")
    final = out_dir / artifact_name(variant, shape[2], tgt, chosen)
    if any(f.exists() for f in [*tgt.files(final), manifest_path(final)]) and not force:
        raise ExportError(f"{final} already exists; pass --force to overwrite it or choose another --out directory")
    export_labels(checkpoint)  # a checkpoint without class names, or trained on other clips, is refused
    export_preprocessing(reference.cfg, shape, checkpoint)  # before minutes of lowering, not after

    steps = Steps(progress)
    quant = plan_quantization(tgt, recipe, chosen, reference, shape, checkpoint, calibration, calibration_clips)
    synthetic_clips = recipe.heldout_clips if quant and quant.calibration is not None else recipe.synthetic_clips
    with _staging_dir(out_dir) as tmp:
        staged = tmp / final.name
        model = copy.deepcopy(reference)  # rewrites may change modules in place; the reference stays untouched
        if quant and quant.calibration is not None and quant.options.get("equalize_channels"):
            from vmf_deploy.quantize.channel_equalization import equalize_channels

            with steps("equalize channels"):
                quant.equalization = equalize_channels(model, quant.calibration.clips,
                                                       quant.options["equalize_channels"])
        lowered: Lowered = tgt.lowering()(LoweringJob(model, shape, recipe, chosen, fuse, staged, steps, quant))

        tolerance = recipe.tolerance(chosen)
        if lowered.parity_not_run:
            gate = parity_gate.not_run(recipe.runtime, recipe.seeds, tolerance, lowered.parity_not_run)
        else:
            explain = _layer_diff_explainer(quant, recipe.path) if quant else None
            with steps("parity"):
                gate = parity_gate.run_gate(reference, staged, recipe.runtime, recipe.seeds, tolerance,
                                            recipe.tolerance_key(chosen), shape, synthetic_clips,
                                            classes=export_labels(checkpoint), explain=explain)
        if quant:
            _record_quantization(quant)

        applied_recipe = recipe_record(recipe)
        if lowered.options is not None:
            applied_recipe[tgt.name] = lowered.options
        manifest = build_manifest(
            artifact=staged, target=tgt, precision=chosen, model=reference, variant=variant, input_shape=shape,
            checkpoint=Path(checkpoint) if checkpoint is not None else None, recipe=applied_recipe,
            rewrites=lowered.rewrites, delegation=lowered.delegation, graph=lowered.graph, parity=gate.record,
            export_seconds=time.perf_counter() - started, quantization=quant.summary if quant else None,
            input_layout=lowered.input_layout)
        staged_manifest = write_json_atomic(manifest_path(staged), manifest)
        labels = ship_labels(tmp, manifest, checkpoint)
        os.replace(labels, out_dir / labels.name)
        for staged_file, final_file in zip(tgt.files(staged), tgt.files(final), strict=True):
            _move_into_place(staged_file, final_file)
        os.replace(staged_manifest, manifest_path(final))
    return ExportResult(artifact=final, manifest_path=manifest_path(final), manifest=manifest, steps=steps.done)
