"""The contract between the export pipeline and a target's lowering function.

Every target's exporter module has one function ``lower(job: LoweringJob) -> Lowered``,
named in its ``vmf_deploy.export.targets.TARGETS`` row. The pipeline builds the job,
calls the function and reads the result; it never names a target.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from vmf_deploy.export.recipes import Recipe

Progress = Callable[[str, float | None], None]
"""Step callback: ``(step, None)`` when a step starts, ``(step, seconds)`` when it ends."""


class Steps:
    """Times named steps and reports them to the progress callback."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.done: list[tuple[str, float]] = []

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        """Time the ``with`` block as step ``name``."""
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


@dataclass
class QuantizationPlan:
    """What an int8 / palettize8 export quantizes with: the recipe table, the calibration clips, the model's modules.

    Attributes:
        precision: ``int8`` or ``palettize8``.
        options: the recipe's ``[quantization]`` table.
        calibration: the calibration clips (``None`` for a weight-only compression).
        classes: the reference model's module path → class name (to keep ``fp32_modules`` in fp32).
        summary: filled by the lowering: what was quantized (the manifest's ``export.quantization``).
        layers: the per-layer diff (``vmf_deploy.quantize.layer_diff.LayerError`` rows), once computed.
        layer_diff: set by a lowering that can compute the per-layer diff on demand (called at most once).
        layer_diff_method: how the lowering's per-layer diff is measured (``None``: the target has none).
        equalization: what ``equalize_channels`` scaled (``None``: the recipe does not equalize).
        qat: the clips quantization-aware fine-tuning trains on (``None``: the recipe's ``qat_steps`` is 0 or absent).
    """

    precision: str
    options: dict
    calibration: Any
    classes: dict[str, str]
    summary: dict = field(default_factory=dict)
    layers: list | None = None
    layer_diff: Callable[[], list] | None = None
    layer_diff_method: str | None = None
    equalization: dict | None = None
    qat: Any = None

    def layer_errors(self) -> list:
        """The per-layer diff: computed by ``layer_diff`` on first use, or what the quantization recorded."""
        if self.layers is None and self.layer_diff is not None:
            self.layers = self.layer_diff()
        return self.layers or []


@dataclass
class LoweringJob:
    """What a lowering function gets.

    Attributes:
        model: a copy of the reference model (rewrites may change it in place).
        shape: the exported input shape ``(B, 3, T, H, W)``.
        recipe: the validated recipe.
        precision: the resolved precision (``fp32``, ``fp16``, ``int8``, ``palettize8``).
        fuse: False applies only the rewrites the target requires.
        staged: where to write the artifact (in the export's temp dir); companions go beside it.
        steps: the step timer.
        quant: the quantization plan of an int8 / palettize8 export, else ``None``.
    """

    model: torch.nn.Module
    shape: tuple[int, ...]
    recipe: Recipe
    precision: str
    fuse: bool
    staged: Path
    steps: Steps
    quant: QuantizationPlan | None = None


@dataclass
class Lowered:
    """What a lowering function returns for the manifest and the parity gate.

    Attributes:
        rewrites: ``[{"name", "count"}]`` of the rewrites applied.
        delegation: the delegation summary (ExecuTorch), else ``None``.
        graph: the exported graph's node/op summary, else ``None``.
        options: the target's recipe table as applied, when the lowering resolved some of it.
        parity_not_run: why the artifact cannot run here, so the gate is recorded as not run (else ``None``).
        input_layout: the layout the artifact's input takes (``vmf_deploy.preprocess.LAYOUTS``); the manifest's
            ``input.layout`` and ``preprocessing.layout``.
    """

    rewrites: list[dict]
    delegation: dict | None = None
    graph: dict | None = None
    options: dict | None = None
    parity_not_run: str | None = None
    input_layout: str = "NCTHW"
