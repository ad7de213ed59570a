"""The parity gate: an artifact must compute what PyTorch fp32 computes, or the export fails.

The artifact runs in its own runtime (the recipe's ``[parity].runtime`` runner) on
realistic clips (``vmf_deploy.parity.parity_clips``, one per recipe seed); the
reference is the *unrewritten* PyTorch fp32 model in eager mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vmf_deploy.export.errors import ExportError
from vmf_deploy.parity import ParityReport, ParityTolerance, compare_logits, parity_clips

REFERENCE = "PyTorch fp32 eager"
NOT_RUN_COREML = "not run: CoreML runtime needs macOS"


def runtime_description(backend: str) -> str:
    """Human-readable runtime and version of a runner backend, e.g. ``onnxruntime 1.32.0 CPU``."""
    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "(not installed)"

    if backend == "onnxruntime-cpu":
        return f"onnxruntime {version('onnxruntime')} CPU"
    if backend == "executorch-xnnpack":
        return f"ExecuTorch {version('executorch')} Python runtime, XNNPACK delegate"
    if backend == "coreml":
        return f"Core ML (coremltools {version('coremltools')})"
    return backend


def reference_logits(model: torch.nn.Module, clips: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Logits of the PyTorch fp32 reference on each clip."""
    model = model.eval()
    with torch.inference_mode():
        return [model(torch.from_numpy(clip)).numpy() for clip in clips]


def run_artifact(backend: str, artifact: Path, clips: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Logits of ``artifact`` run by the ``backend`` runner on each clip (ExportError if it cannot run)."""
    from vmf_deploy.runners import BackendUnavailable, RunnerError, get_runner

    try:
        runner = get_runner(backend)
        runner.load(artifact)
        try:
            return [np.asarray(runner.run(clip)) for clip in clips]
        finally:
            runner.close()
    except (BackendUnavailable, RunnerError) as e:
        raise ExportError(f"the parity gate could not run {artifact.name} in {backend}: {e}") from None
    except ImportError as e:
        raise ExportError(f"the parity gate's runner {backend!r} is not available ({e}); install "
                          "'vmf-deploy[export]' or set [parity].runtime in the recipe") from None


@dataclass(frozen=True)
class GateResult:
    """Outcome of the gate: the manifest's ``parity`` record and the report it came from."""

    record: dict[str, Any]
    report: ParityReport | None


def parity_record(status: str, backend: str, seeds: Sequence[int], tolerance: ParityTolerance,
                  report: ParityReport | None) -> dict[str, Any]:
    """The manifest's ``parity`` object (metrics ``None`` when the artifact was not run)."""
    return {
        "status": status,
        "reference": REFERENCE,
        "runtime": runtime_description(backend),
        "seeds": list(seeds),
        "tolerance": {"max_rel_error": tolerance.max_rel_error, "min_top1_agreement": tolerance.min_top1_agreement,
                      "min_cosine": tolerance.min_cosine},
        "metrics": report.to_dict() if report is not None else None,
    }


def run_gate(reference: torch.nn.Module, artifact: Path, backend: str, seeds: Sequence[int],
             tolerance: ParityTolerance, tolerance_key: str, input_shape: tuple[int, ...]) -> GateResult:
    """Run ``artifact`` against ``reference`` on one clip per seed; raise ExportError beyond ``tolerance``.

    ``tolerance_key`` names where the tolerance lives (recipe file and table) for the error message.
    """
    clips = parity_clips(tuple(input_shape), list(seeds))
    expected = reference_logits(reference, clips)
    actual = run_artifact(backend, artifact, clips)
    report = compare_logits(expected, actual)
    failures = report.failures(tolerance)
    if failures:
        raise ExportError(
            f"parity gate refused {artifact.name}: on {report.clips} clips (seeds {list(seeds)}) run in "
            f"{runtime_description(backend)} against {REFERENCE}, {'; '.join(failures)} (max abs error "
            f"{report.max_abs_error:.3g}, min cosine {report.min_cosine:.6f}, top-5 agreement "
            f"{report.top5_agreement:.0%}). Nothing was written to the output directory. The artifact does not "
            f"compute what the model computes: try --no-fuse to rule out a rewrite; loosen {tolerance_key} only "
            "if this error is expected at this precision.")
    return GateResult(parity_record("passed", backend, seeds, tolerance, report), report)


def not_run(backend: str, seeds: Sequence[int], tolerance: ParityTolerance, reason: str) -> GateResult:
    """The gate's record when the runtime cannot run here (CoreML on Linux): no metrics, ever."""
    return GateResult(parity_record(reason, backend, seeds, tolerance, None), None)
