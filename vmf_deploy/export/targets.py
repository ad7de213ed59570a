"""The export targets as data (Ultralytics-style): one row per ``--target`` value.

Adding a target means one row here, one exporter module under ``vmf_deploy/export/`` with a
``lower(job: LoweringJob) -> Lowered`` function (``vmf_deploy/export/lowering.py``), one recipe
file under ``export/`` and one runner under ``vmf_deploy/runners/``. The pipeline reads the
row and never names a target.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vmf_deploy.export.errors import ExportError

INPUT_NAME = "video"
"""Name of every artifact's input: ``(1, 3, T, H, W)`` float32, normalised, NCTHW."""
OUTPUT_NAME = "logits"
"""Name of every artifact's output: ``(1, num_classes)`` float32 class scores."""


@dataclass(frozen=True)
class Target:
    """One export target.

    Attributes:
        name: the ``--target`` value and the recipe's ``target`` key.
        suffix: file suffix of the artifact (``.mlpackage`` is a directory).
        artifact_format: the manifest's ``artifact.format``.
        recipe_file: default recipe, relative to the repository's ``export/`` folder.
        runtime: the runner backend (``vmf_deploy.runners.BACKENDS`` key) that runs the artifact.
        precisions: the ``--precision`` values this target can produce.
        packages: distributions whose versions go into the manifest (exporter, simplifier, runtime).
        lower: the lowering function, ``"module:function"`` under ``vmf_deploy.export`` (imported on first use).
        calibrated: its int8 quantizes activations too, so needs ``--calibration`` clips.
        companions: suffixes of files written beside the artifact that belong to it (OpenVINO's ``.bin``).
        slow: its lowering takes several times the others' (started first when exports run side by side).
    """

    name: str
    suffix: str
    artifact_format: str
    recipe_file: str
    runtime: str
    precisions: tuple[str, ...]
    packages: tuple[str, ...]
    lower: str
    calibrated: bool = False
    companions: tuple[str, ...] = ()
    slow: bool = False

    def lowering(self) -> Callable:
        """The lowering function of this target (its module is imported now)."""
        module, function = self.lower.split(":")
        return getattr(importlib.import_module(f"vmf_deploy.export.{module}"), function)

    def files(self, artifact: Path) -> list[Path]:
        """The artifact and its companion files."""
        return [artifact] + [artifact.with_suffix(suffix) for suffix in self.companions]


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("onnx", ".onnx", "onnx", "onnx.toml", "onnxruntime-cpu", ("fp32", "int8"),
               ("torch", "onnx", "onnxscript", "onnx-ir", "onnxsim", "onnxruntime"), "onnx_export:lower",
               calibrated=True),
        Target("executorch", ".pte", "pte", "executorch.toml", "executorch-xnnpack", ("fp32", "int8"),
               ("torch", "executorch", "torchao"), "executorch_export:lower", calibrated=True, slow=True),
        Target("coreml", ".mlpackage", "mlpackage", "coreml.toml", "coreml", ("fp32", "fp16", "int8", "palettize8"),
               ("torch", "coremltools"), "coreml_export:lower"),
        Target("openvino", ".xml", "openvino-ir", "openvino.toml", "openvino-cpu", ("fp32", "fp16", "int8"),
               ("torch", "onnx", "onnxscript", "onnxsim", "openvino", "nncf"), "openvino_export:lower",
               calibrated=True, companions=(".bin",)),
    )
}


def get_target(name: str) -> Target:
    """The target called ``name`` (ExportError listing the valid ones if unknown)."""
    if name not in TARGETS:
        raise ExportError(f"unknown target {name!r}; valid targets: {', '.join(TARGETS)} (or 'all')")
    return TARGETS[name]


def resolve_targets(name: str) -> list[Target]:
    """``all`` → every target; otherwise the one named target."""
    return list(TARGETS.values()) if name == "all" else [get_target(name)]


def artifact_name(variant: str, frames: int, target: Target, precision: str) -> str:
    """File name of an artifact, e.g. ``560m-16f.onnx``, ``1g-64f-fp16.mlpackage`` or ``560m-16f-int8.pte``."""
    tag = "" if precision == "fp32" else f"-{precision}"
    return f"{variant}-{frames}f{tag}{target.suffix}"
