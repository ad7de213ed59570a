"""Top-k predictions on video files through any backend: the library behind ``vmf-predict``.

A :class:`Predictor` holds one loaded model (an exported artifact run by its backend
runner, or eager PyTorch) with the preprocessing spec and labels that belong to it,
and turns each video into a :class:`Prediction`. With an artifact, everything comes
from its manifest (``docs/manifest.md``) after the artifact's sha256 is verified.
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .manifest import ManifestError, manifest_path, read_manifest, verify_artifact
from .preprocess import PreprocessSpec, spec_for
from .runners import BACKENDS, BackendUnavailable, Runner, RunnerError, get_runner, runner_class
from .video import Clip, VideoError, read_clip

EAGER_SUFFIX = ".safetensors"
"""Runners with this artifact suffix run a PyTorch model in eager mode (torch-cpu, torch-cuda) and take ``model=``."""
SEEDED_INIT_NOTE = ("weights are the deterministic seeded init, not trained: the labels are meaningless "
                    "(pass --checkpoint with trained weights for real predictions)")
SEEDED_ARTIFACT_NOTE = ("this artifact was exported from the deterministic seeded init, not trained weights: the "
                        "labels are meaningless (export a trained checkpoint: vmf-export --checkpoint FILE)")


class ModelLoadError(RuntimeError):
    """The model, artifact, manifest, labels or backend could not be loaded; the message says the fix."""


class InferenceError(RuntimeError):
    """The backend failed on one clip (the batch goes on with the next video)."""


@dataclass
class Prediction:
    """The top-k classes of one video, its logits, and what it took to get them."""

    video: str
    top: list[tuple[int, str, float]]
    logits: np.ndarray
    clip: Clip
    inference_seconds: float
    notes: list[str] = field(default_factory=list)

    def to_record(self) -> dict:
        """JSON-serialisable record of this prediction."""
        info, stats = self.clip.info, self.clip.stats
        return {
            "video": self.video, "ok": True,
            "top": [{"rank": r + 1, "index": i, "label": label, "score": score}
                    for r, (i, label, score) in enumerate(self.top)],
            "logits": [float(x) for x in self.logits],
            "video_info": {"frames": self.clip.num_frames, "header_frames": info.header_frames,
                           "width": self.clip.frame_size[1], "height": self.clip.frame_size[0], "fps": info.fps,
                           "rotation": info.rotation, "codec": info.codec, "container": info.container},
            "sampled_frames": self.clip.indices.tolist(),
            "seconds": {"decode": stats.decode_seconds, "preprocess": stats.preprocess_seconds,
                        "inference": self.inference_seconds},
            "decoding": {"passes": stats.passes, "grabbed": stats.grabbed, "retrieved": stats.retrieved},
            "notes": self.notes,
        }


def error_record(video: str, error: Exception) -> dict:
    """JSON record of a video that could not be predicted."""
    kind = getattr(error, "kind", "inference" if isinstance(error, InferenceError) else "error")
    return {"video": video, "ok": False, "error": {"kind": kind, "message": getattr(error, "reason", str(error))}}


class Predictor:
    """One loaded model plus its preprocessing and labels; :meth:`predict` runs a video through it."""

    def __init__(self, runner: Runner, spec: PreprocessSpec, labels: tuple[str, ...], model_info: dict,
                 load_seconds: float = 0.0) -> None:
        self.runner, self.spec, self.labels = runner, spec, labels
        self.model_info, self.load_seconds = model_info, load_seconds

    @classmethod
    def from_artifact(cls, artifact: str | Path, backend: str | None = None, threads: int | None = None,
                      throughput: bool = False) -> "Predictor":
        """Load an exported artifact: verify it against its manifest, then open it in ``backend``.

        ``backend`` defaults to the first backend that runs the artifact's format. An eager backend
        (``torch-cpu``, ``torch-cuda``) runs the model the manifest says the artifact was exported
        from: the reference the artifact is compared with. ``throughput`` compiles for many clips
        in flight where the backend has such a mode (OpenVINO's THROUGHPUT hint and async queue;
        :attr:`Runner.in_flight <vmf_deploy.runners.base.Runner.in_flight>` then says how many).
        Clips are decoded in the layout the runner takes: the manifest's ``preprocessing.layout`` in the
        artifact's own runtime, ``NCTHW`` in an eager one.
        """
        t0 = time.perf_counter()
        artifact = Path(artifact)
        if not artifact.exists():
            raise ModelLoadError(f"artifact {artifact} not found; export one with vmf-export")
        try:
            manifest = read_manifest(manifest_path(artifact))
            verify_artifact(artifact, manifest)
            spec = _manifest_spec(manifest)
            labels = _manifest_labels(artifact, manifest)
        except ManifestError as e:
            raise ModelLoadError(str(e)) from None
        except (KeyError, TypeError, IndexError) as e:
            raise ModelLoadError(f"manifest of {artifact} is malformed (missing or wrong field {e}); "
                                 "re-export the artifact") from None
        backend = backend or default_backend(artifact)
        if is_eager(backend):
            runner = _eager_runner(backend, threads, model_from_manifest(manifest))
        else:
            runner = _load_runner(backend, artifact, threads, throughput)
        spec = replace(spec, layout=runner.input_layout)
        source = manifest["model"].get("source") or {}
        info = {"variant": manifest["model"].get("variant"), "source": source.get("kind"),
                "seed": source.get("seed"), "checkpoint": source.get("checkpoint"), "artifact": str(artifact),
                "sha256": manifest["artifact"]["sha256"], "precision": manifest["artifact"].get("precision"),
                "backend": backend, "threads": threads, "in_flight": runner.in_flight,
                "input_shape": list(spec.input_shape),
                "parity": (manifest.get("parity") or {}).get("status")}
        return cls(runner, spec, labels, info, time.perf_counter() - t0)

    @classmethod
    def from_variant(cls, variant: str, checkpoint: str | Path | None = None, frames: int | None = None,
                     threads: int | None = None, seed: int = 0, backend: str = "torch-cpu") -> "Predictor":
        """Eager PyTorch: a checkpoint of ``variant``, or its seeded init (optionally ``frames`` long).

        A checkpoint brings its own classes: its saved class names (or Kinetics-400's for a
        400-class checkpoint without them) and its saved preprocessing when it has one.
        """
        from .checkpoint import CheckpointError, checkpoint_classes, load_checkpoint, read_checkpoint_metadata
        from .labels import kinetics400_labels
        from .models import ConfigError, build_seeded_model

        t0 = time.perf_counter()
        try:
            if checkpoint is not None:
                if frames is not None:
                    raise ModelLoadError("--frames applies to the seeded init only: a checkpoint fixes its clip length")
                model = load_checkpoint(checkpoint, variant)
                labels = checkpoint_classes(checkpoint)
                saved_spec = read_checkpoint_metadata(checkpoint)["preprocessing"]
            else:
                model = build_seeded_model(variant, seed=seed, **({"frames": frames} if frames else {}))
                labels, saved_spec = kinetics400_labels(), None
        except (CheckpointError, ConfigError) as e:
            raise ModelLoadError(str(e)) from None
        spec = spec_for(model.cfg) if saved_spec is None else PreprocessSpec.from_dict(saved_spec)
        info = {"variant": variant, "source": "checkpoint" if checkpoint else "seeded-init",
                "seed": None if checkpoint else seed, "checkpoint": str(checkpoint) if checkpoint else None,
                "artifact": None, "sha256": None, "precision": "fp32", "backend": backend, "threads": threads,
                "in_flight": 1, "input_shape": list(spec.input_shape), "parity": None}
        return cls(_eager_runner(backend, threads, model), spec, labels, info, time.perf_counter() - t0)

    @property
    def notes(self) -> list[str]:
        """Warnings about the model itself (e.g. untrained weights)."""
        if self.model_info["source"] != "seeded-init":
            return []
        return [SEEDED_ARTIFACT_NOTE if self.model_info["artifact"] else SEEDED_INIT_NOTE]

    def predict(self, video: str | Path, topk: int = 5, allow_partial: bool = False) -> Prediction:
        """Decode, preprocess and classify one video. Raises :class:`VideoError` or :class:`InferenceError`."""
        return self.classify(self.read(video, allow_partial), video, topk)

    def read(self, video: str | Path, allow_partial: bool = False) -> Clip:
        """Decode and preprocess one video into this model's clip (thread-safe). Raises :class:`VideoError`."""
        return read_clip(video, self.spec, allow_partial=allow_partial)

    def classify(self, clip: Clip, video: str | Path, topk: int = 5) -> Prediction:
        """Run the model on a clip from :meth:`read` and rank its classes. Raises :class:`InferenceError`."""
        return self.submit(clip, video, topk).result()

    def submit(self, clip: Clip, video: str | Path, topk: int = 5) -> Future:
        """Start classifying a clip; the future holds its :class:`Prediction` or an :class:`InferenceError`.

        With a synchronous backend the future is already done when this returns; with an async
        queue (``runner.in_flight`` > 1) this returns as soon as the clip is queued.
        """
        t0 = time.perf_counter()
        result: Future = Future()

        def finish(logits: Future) -> None:
            try:
                result.set_result(self._prediction(logits, clip, video, topk, time.perf_counter() - t0))
            except Exception as e:  # noqa: BLE001 - whoever reads the future gets it, as classify would raise it
                result.set_exception(e)

        self.runner.submit(clip.input).add_done_callback(finish)
        return result

    def _prediction(self, logits: Future, clip: Clip, video: str | Path, topk: int, seconds: float) -> Prediction:
        """The :class:`Prediction` of a finished inference, or :class:`InferenceError` if it failed or looks broken."""
        try:
            values = np.asarray(logits.result(), dtype=np.float32)
        except (RunnerError, RuntimeError, ValueError) as e:
            raise InferenceError(f"the {self.model_info['backend']} backend failed on the clip: {e}") from None
        if values.shape != (1, len(self.labels)) or not np.all(np.isfinite(values)):
            raise InferenceError(f"the backend returned logits of shape {values.shape}"
                                 f"{'' if np.all(np.isfinite(values)) else ' with NaN/inf'}, expected (1, "
                                 f"{len(self.labels)}) finite values: the artifact is broken, re-export it")
        return Prediction(str(video), top_k(values[0], self.labels, topk), values[0], clip, seconds, list(clip.notes))

    def close(self) -> None:
        """Release the backend."""
        self.runner.close()


def top_k(logits: np.ndarray, labels: tuple[str, ...], k: int) -> list[tuple[int, str, float]]:
    """``k`` (index, label, softmax probability) triples, highest first (ties keep index order)."""
    z = np.asarray(logits, dtype=np.float64)
    p = np.exp(z - z.max())
    p /= p.sum()
    order = np.argsort(-p, kind="stable")[:k]
    return [(int(i), labels[i], float(p[i])) for i in order]


def is_eager(backend: str) -> bool:
    """True for backends that run a PyTorch model in eager mode (they take ``model=``, not an artifact)."""
    try:
        return runner_class(backend).artifact_suffix == EAGER_SUFFIX
    except (ImportError, AttributeError, ValueError):
        return False


def default_backend(artifact: str | Path) -> str:
    """The first registered backend that runs files with the artifact's suffix."""
    suffix = Path(artifact).suffix
    for name in BACKENDS:
        try:
            cls = runner_class(name)
        except (ImportError, AttributeError):
            continue  # a backend whose module is not part of this install
        if cls.artifact_suffix == suffix and suffix != EAGER_SUFFIX:
            return name
    from .export.targets import TARGETS

    raise ModelLoadError(f"no backend runs {suffix or 'suffix-less'} artifacts ({artifact}); pass an artifact "
                         f"written by vmf-export ({', '.join(t.suffix for t in TARGETS.values())})")


def model_from_manifest(manifest: dict) -> object:
    """The PyTorch model an artifact was exported from (seeded init or checkpoint), as its manifest records."""
    from .checkpoint import CheckpointError, load_checkpoint
    from .manifest import file_sha256
    from .models import ConfigError, build_seeded_model, get_config

    model_meta = manifest["model"]
    variant, config, source = model_meta.get("variant"), model_meta.get("config"), model_meta.get("source") or {}
    try:
        if source.get("kind") == "checkpoint":
            path = source.get("checkpoint")
            if not path or not Path(path).is_file():
                raise ModelLoadError(f"torch-cpu needs the checkpoint the artifact was exported from ({path}), "
                                     "which is not on this machine; pass --variant with --checkpoint instead")
            expected = source.get("checkpoint_sha256")
            if expected and file_sha256(path) != expected:
                raise ModelLoadError(f"checkpoint {path} changed since the artifact was exported (sha256 differs); "
                                     "re-export the artifact or restore the checkpoint")
            model = load_checkpoint(path, variant)
        elif source.get("kind") == "seeded-init":
            default = get_config(variant).to_dict()
            overrides = {k: v for k, v in (config or {}).items() if default.get(k) != v}
            overrides.pop("name", None)
            if "blocks" in overrides:
                overrides["blocks"] = tuple(overrides["blocks"])
            model = build_seeded_model(variant, seed=int(source.get("seed") or 0), **overrides)
        else:
            raise ModelLoadError(f"the manifest's model.source.kind is {source.get('kind')!r}; torch-cpu can rebuild "
                                 "only 'seeded-init' or 'checkpoint' models")
    except (CheckpointError, ConfigError, TypeError) as e:
        raise ModelLoadError(f"could not rebuild the PyTorch model of this artifact: {e}") from None
    if config is not None and model.cfg.to_dict() != config:
        raise ModelLoadError("the rebuilt PyTorch model's config differs from the manifest's model.config: the "
                             "manifest was written by another vmf-deploy version; re-export the artifact")
    return model


def _manifest_spec(manifest: dict) -> PreprocessSpec:
    """The preprocessing spec of a manifest, checked against its input shape."""
    try:
        spec = PreprocessSpec.from_dict(manifest["preprocessing"])
    except (TypeError, KeyError) as e:
        raise ManifestError(f"the manifest's preprocessing object is invalid ({e}); re-export the artifact") from None
    shape = tuple(manifest["input"]["shape"])
    if shape != spec.input_shape:
        raise ManifestError(f"the manifest's input.shape {list(shape)} disagrees with its preprocessing "
                            f"({list(spec.input_shape)}); re-export the artifact")
    return spec


def _manifest_labels(artifact: Path, manifest: dict) -> tuple[str, ...]:
    """The label file the manifest names, beside the artifact, checked against the output shape."""
    meta = manifest["labels"]
    path = artifact.parent / meta["file"]
    if not path.is_file():
        raise ModelLoadError(f"label file {path} named by the manifest is missing: copy it beside the artifact "
                             "(vmf-export writes it there)")
    labels = tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
    classes = manifest["output"]["shape"][-1]
    if len(labels) != meta.get("count") or len(labels) != classes:
        raise ModelLoadError(f"label file {path} has {len(labels)} labels, the manifest says {meta.get('count')} "
                             f"and the model outputs {classes}: restore the label file written by vmf-export")
    return labels


def _eager_runner(backend: str, threads: int | None, model: object) -> Runner:
    """An eager PyTorch runner holding ``model``, or :class:`ModelLoadError` if it cannot run here."""
    reason = runner_class(backend).availability()
    if reason:
        raise ModelLoadError(f"backend {backend} cannot run here: {reason}")
    try:
        return get_runner(backend, threads, model=model)
    except (RunnerError, BackendUnavailable) as e:
        raise ModelLoadError(str(e)) from None


def _load_runner(backend: str, artifact: Path, threads: int | None, throughput: bool = False) -> Runner:
    """Open ``artifact`` in ``backend``'s runner (for ``throughput`` if asked), or raise :class:`ModelLoadError`."""
    try:
        cls = runner_class(backend)
    except ValueError as e:
        raise ModelLoadError(str(e)) from None
    except ImportError as e:
        raise ModelLoadError(f"backend {backend} is not available in this install ({e})") from None
    suffix = artifact.suffix
    if cls.artifact_suffix and suffix != cls.artifact_suffix:
        raise ModelLoadError(f"backend {backend} runs {cls.artifact_suffix} artifacts, not {suffix}: omit --backend "
                             f"to use {default_backend(artifact)}, or export for {backend}")
    reason = cls.availability()
    if reason:
        raise ModelLoadError(f"backend {backend} cannot run here: {reason}")
    runner = get_runner(backend, threads)
    runner.throughput = throughput
    try:
        runner.load(artifact)
    except (RunnerError, BackendUnavailable) as e:
        raise ModelLoadError(str(e)) from None
    return runner


__all__ = ["InferenceError", "ModelLoadError", "Prediction", "Predictor", "VideoError", "default_backend",
           "error_record", "is_eager", "model_from_manifest", "top_k"]
