"""The export targets as data (Ultralytics-style): one row per ``--target`` value.

Adding a target means one row here, one ``lower`` module under ``vmf_deploy/export/``,
one recipe file under ``export/`` and one runner under ``vmf_deploy/runners/``.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    """

    name: str
    suffix: str
    artifact_format: str
    recipe_file: str
    runtime: str
    precisions: tuple[str, ...]
    packages: tuple[str, ...]


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("onnx", ".onnx", "onnx", "onnx.toml", "onnxruntime-cpu", ("fp32", "int8"),
               ("torch", "onnx", "onnxscript", "onnx-ir", "onnxsim", "onnxruntime")),
        Target("executorch", ".pte", "pte", "executorch.toml", "executorch-xnnpack", ("fp32", "int8"),
               ("torch", "executorch", "torchao")),
        Target("coreml", ".mlpackage", "mlpackage", "coreml.toml", "coreml", ("fp32", "fp16", "int8", "palettize8"),
               ("torch", "coremltools")),
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
