"""The parity gate: an artifact must compute what PyTorch fp32 computes, or the export fails.

The artifact runs in its own runtime (the recipe's ``[parity].runtime`` runner) on
smooth-noise clips (``vmf_deploy.parity.parity_clips``, one per recipe seed) plus
``[parity].synthetic_clips`` clips of real content (``vmf_deploy.datasets.synthetic.gate_clips``,
a procedural labelled action dataset); the reference is the *unrewritten* PyTorch fp32
model in eager mode, whose logits are kept on disk for the next target of the same model and
clips (``vmf_deploy.export.reference_cache``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vmf_deploy.export.errors import ExportError
from vmf_deploy.export.recipes import DEFAULT_SYNTHETIC_CLIPS
from vmf_deploy.export.reference_cache import cached_reference
from vmf_deploy.parity import ParityReport, ParityTolerance, compare_logits, parity_clips

REFERENCE = "PyTorch fp32 eager"
NOISE_SOURCE = "vmf_deploy.parity.parity_clips"
SYNTHETIC_SOURCE = "vmf_deploy.datasets.synthetic.gate_clips"
SYNTHETIC_SEED = 0


RUNTIME_DESCRIPTIONS: dict[str, tuple[str, str]] = {
    "onnxruntime-cpu": ("onnxruntime", "onnxruntime {version} CPU"),
    "executorch-xnnpack": ("executorch", "ExecuTorch {version} Python runtime, XNNPACK delegate"),
    "executorch-native-arm64": ("executorch", "ExecuTorch {version} C++ runtime for aarch64 under qemu, XNNPACK"),
    "coreml": ("coremltools", "Core ML (coremltools {version})"),
    "openvino-cpu": ("openvino", "OpenVINO {version} CPU"),
    "onnxruntime-arm64": ("onnxruntime", "onnxruntime {version} aarch64 CPU under qemu-aarch64-static ({qemu_cpu})"),
}
"""Gate runtime → (distribution whose version is named, description)."""


def runtime_description(backend: str) -> str:
    """Human-readable runtime and version of a runner backend, e.g. ``onnxruntime 1.32.0 CPU``."""
    if backend not in RUNTIME_DESCRIPTIONS:
        return backend
    dist, text = RUNTIME_DESCRIPTIONS[backend]
    try:
        version = metadata.version(dist)
    except metadata.PackageNotFoundError:
        version = "(not installed)"
    if "{qemu_cpu}" in text:
        from vmf_deploy.arm64.qemu import qemu_cpu

        return text.format(version=version, qemu_cpu=qemu_cpu())
    return text.format(version=version)


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


def clip_sources(seeds: Sequence[int], synthetic_clips: int, labelled: bool = False) -> list[dict[str, Any]]:
    """Where the gate's clips come from: the manifest's ``parity.clip_sources``."""
    sources: list[dict[str, Any]] = [{"source": NOISE_SOURCE, "seeds": list(seeds), "count": len(seeds)}]
    if synthetic_clips:
        sources.append({"source": SYNTHETIC_SOURCE, "seed": SYNTHETIC_SEED, "count": synthetic_clips,
                        "split": "gate", "labels_used": labelled})
    return sources


def synthetic_labels(classes: Sequence[str] | None, count: int) -> list[int | None] | None:
    """Labels of the first ``count`` gate-split clips, when the model's classes are the synthetic dataset's."""
    from vmf_deploy.datasets import synthetic

    if classes is None or tuple(classes) != synthetic.CLASSES:
        return None
    return [synthetic.label_of(i) for i in range(count)]


KEEP_BYTES = 1 << 30
""":class:`GateClips` keeps rendered clips up to this many bytes and renders the rest again on each use."""


class GateClips(Sequence[np.ndarray]):
    """The gate's clips, rendered when read: one smooth-noise clip per seed, then ``synthetic_clips`` action clips.

    The gate reads them up to three times (the reference cache's key, the reference, the
    artifact). The int8 gate's 243 clips of 5g at 64 × 224² are 9.4 GB, which an export held all
    at once (23 GB peak with the rest); here the first clips up to ``keep_bytes`` stay rendered and
    the others are rendered again when read, so the gate holds about ``keep_bytes`` whatever its clip count.
    """

    def __init__(self, input_shape: tuple[int, ...], seeds: Sequence[int], synthetic_clips: int,
                 keep_bytes: int = KEEP_BYTES) -> None:
        self.input_shape, self.seeds, self.synthetic_clips = tuple(input_shape), list(seeds), synthetic_clips
        self.keep_bytes = keep_bytes
        self._kept: dict[int, np.ndarray] = {}
        self._kept_bytes = 0
        if synthetic_clips:
            try:
                from vmf_deploy.datasets.synthetic import gate_clip  # noqa: F401  (fails early, with the fix)
            except ImportError as e:
                raise ExportError(f"the parity gate's synthetic clips are not available ({e}); set "
                                  "[parity].synthetic_clips = 0 in the recipe to gate on noise clips only") from None

    def __len__(self) -> int:
        return len(self.seeds) + self.synthetic_clips

    @property
    def kept_bytes(self) -> int:
        """Bytes of the clips held rendered (at most ``keep_bytes``)."""
        return self._kept_bytes

    def __getitem__(self, index: int) -> np.ndarray:  # type: ignore[override]  # no slices
        if not -len(self) <= index < len(self):
            raise IndexError(f"gate clip {index} of {len(self)}")
        index %= len(self)
        if index in self._kept:
            return self._kept[index]
        clip = self._render(index)
        if self._kept_bytes + clip.nbytes <= self.keep_bytes:
            self._kept[index] = clip
            self._kept_bytes += clip.nbytes
        return clip

    def _render(self, index: int) -> np.ndarray:
        if index < len(self.seeds):
            return parity_clips(self.input_shape, [self.seeds[index]])[0]
        from vmf_deploy.datasets.synthetic import gate_clip

        return np.asarray(gate_clip(self.input_shape, index - len(self.seeds), seed=SYNTHETIC_SEED), dtype=np.float32)


def gate_inputs(input_shape: tuple[int, ...], seeds: Sequence[int], synthetic_clips: int) -> GateClips:
    """The gate's clips (:class:`GateClips`): one smooth-noise clip per seed, then ``synthetic_clips`` action clips."""
    return GateClips(input_shape, seeds, synthetic_clips)


@dataclass(frozen=True)
class GateResult:
    """Outcome of the gate: the manifest's ``parity`` record and the report it came from."""

    record: dict[str, Any]
    report: ParityReport | None


def parity_record(status: str, backend: str, seeds: Sequence[int], tolerance: ParityTolerance,
                  report: ParityReport | None, synthetic_clips: int = DEFAULT_SYNTHETIC_CLIPS,
                  labelled: bool = False) -> dict[str, Any]:
    """The manifest's ``parity`` object (metrics ``None`` when the artifact was not run).

    Every tolerance key is recorded; an unset (unchecked) limit is ``None``.
    """
    return {
        "status": status,
        "reference": REFERENCE,
        "runtime": runtime_description(backend),
        "seeds": list(seeds),
        "clip_sources": clip_sources(seeds, synthetic_clips, labelled),
        "tolerance": asdict(tolerance),
        "metrics": report.to_dict() if report is not None else None,
    }


def run_gate(reference: torch.nn.Module, artifact: Path, backend: str, seeds: Sequence[int],
             tolerance: ParityTolerance, tolerance_key: str, input_shape: tuple[int, ...],
             synthetic_clips: int = DEFAULT_SYNTHETIC_CLIPS, classes: Sequence[str] | None = None,
             explain: Callable[[], str] | None = None) -> GateResult:
    """Run ``artifact`` against ``reference`` on the gate's clips; raise ExportError beyond ``tolerance``.

    The clips are one smooth-noise clip per seed plus ``synthetic_clips`` clips of the
    procedural action dataset (:func:`gate_inputs`). When the model's ``classes`` are that
    dataset's, its clips are labelled and both top-1 accuracies are measured (and judged by
    ``max_accuracy_drop``). ``tolerance_key`` names where the tolerance lives (recipe file and
    table) for the error message; ``explain`` adds a diagnosis (the per-layer diff) to it.
    """
    clips = gate_inputs(input_shape, seeds, synthetic_clips)
    batch = int(input_shape[0])
    labels = synthetic_labels(classes, synthetic_clips * batch)  # gate clip i, row j is sample i·batch + j
    expected, _ = cached_reference(reference, clips, reference_logits)
    actual = run_artifact(backend, artifact, clips)
    report = compare_logits(expected, actual, None if labels is None else [None] * (len(seeds) * batch) + labels)
    failures = report.failures(tolerance)
    if failures:
        detail = f"\n{explain()}" if explain is not None else ""
        centered = "n/a" if report.centered_sqnr_db is None else f"{report.centered_sqnr_db:.1f} dB"
        raise ExportError(
            f"parity gate refused {artifact.name}: on {report.clips} clips ({len(seeds)} noise clips, seeds "
            f"{list(seeds)}, + {synthetic_clips} synthetic action clips) run in {runtime_description(backend)} "
            f"against {REFERENCE}, {'; '.join(failures)} (max abs error {report.max_abs_error:.3g}, min cosine "
            f"{report.min_cosine:.6f}, centered SQNR {centered}, top-5 agreement {report.top5_agreement:.0%}). "
            "Nothing was written to the output directory. The artifact does not compute what the model "
            f"computes: try --no-fuse to rule out a rewrite; loosen {tolerance_key} only if this error is "
            f"expected at this precision.{detail}")
    return GateResult(parity_record("passed", backend, seeds, tolerance, report, synthetic_clips, labels is not None),
                      report)


def not_run(backend: str, seeds: Sequence[int], tolerance: ParityTolerance, reason: str,
            synthetic_clips: int = DEFAULT_SYNTHETIC_CLIPS) -> GateResult:
    """The gate's record when the runtime cannot run here (CoreML on Linux): no metrics, ever."""
    return GateResult(parity_record(reason, backend, seeds, tolerance, None, synthetic_clips), None)
