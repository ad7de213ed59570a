"""Accuracy of a checkpoint and of its exported artifacts on a labelled dataset: the library behind ``vmf-val``.

Every clip is decoded and preprocessed once (by the code ``vmf-predict`` uses) and run through
PyTorch fp32 and every artifact, so each artifact's row carries both its accuracy and its
agreement with PyTorch on the very same inputs: top-1 agreement, top-5 overlap, logit cosine
and SQNR (``vmf_deploy.parity``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .parity import compare_logits


class ValidationError(ValueError):
    """The validation cannot run as asked; the message names the problem and the fix."""


@dataclass
class ValRow:
    """One model's results: PyTorch fp32 (the reference) or one artifact in one backend."""

    name: str
    backend: str
    precision: str
    artifact: str | None
    logits: np.ndarray
    notes: list[str] = field(default_factory=list)


@dataclass
class ValReport:
    """Every row's logits over the same clips, with the labels and what was skipped."""

    checkpoint: str
    data: dict
    classes: tuple[str, ...]
    labels: np.ndarray
    sources: list[str]
    rows: list[ValRow]
    skipped: list[tuple[str, str]]

    def confusion(self, row: ValRow) -> np.ndarray:
        """``(classes, classes)`` counts: true class down, predicted class across."""
        k = len(self.classes)
        out = np.zeros((k, k), np.int64)
        np.add.at(out, (self.labels, row.logits.argmax(1)), 1)
        return out

    def summary(self, row: ValRow) -> dict[str, Any]:
        """Accuracy of ``row`` and, for an artifact, its agreement with the PyTorch row."""
        from .train import topk_accuracy

        out: dict[str, Any] = {"name": row.name, "backend": row.backend, "precision": row.precision,
                               "artifact": row.artifact, "clips": int(len(self.labels)),
                               "top1": topk_accuracy(row.logits, self.labels, 1),
                               "top5": topk_accuracy(row.logits, self.labels, min(5, len(self.classes))),
                               "notes": row.notes}
        reference = self.rows[0]
        if row is not reference and len(self.labels):
            out.update(agreement(reference.logits, row.logits))
        return out

    def per_class(self, row: ValRow) -> dict[str, float]:
        """Top-1 accuracy of ``row`` per class (NaN for a class with no clips)."""
        pred = row.logits.argmax(1)
        return {c: float(np.mean(pred[self.labels == i] == i)) if np.any(self.labels == i) else float("nan")
                for i, c in enumerate(self.classes)}

    def to_json(self) -> dict[str, Any]:
        """The JSON document ``vmf-val --json`` writes (a class with no clips has ``null`` top-1)."""
        rows = []
        for row in self.rows:
            per_class = {c: None if np.isnan(v) else v for c, v in self.per_class(row).items()}
            rows.append({**self.summary(row), "per_class_top1": per_class,
                         "confusion": self.confusion(row).tolist()})
        return {"schema": "vmf-deploy/val", "schema_version": 1, "checkpoint": self.checkpoint, "data": self.data,
                "classes": list(self.classes), "clips": int(len(self.labels)),
                "skipped": [{"video": v, "reason": r} for v, r in self.skipped], "rows": rows}


def agreement(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float | None]:
    """How far ``candidate`` logits ``(N, classes)`` are from ``reference``: the parity metrics per clip set."""
    report = compare_logits(list(reference[:, None]), list(candidate[:, None]))
    k = min(5, reference.shape[1])
    top_r = np.argsort(-reference, axis=1, kind="stable")[:, :k]
    top_c = np.argsort(-candidate, axis=1, kind="stable")[:, :k]
    overlap = float(np.mean([len(set(a) & set(b)) / k for a, b in zip(top_r, top_c)]))
    num = np.sum(reference * candidate, axis=1)
    den = np.linalg.norm(reference, axis=1) * np.linalg.norm(candidate, axis=1)
    cosine = np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)
    return {"top1_agreement": report.top1_agreement, "top5_overlap": overlap,
            "cosine_mean": float(np.mean(cosine)), "cosine_min": report.min_cosine, "sqnr_db": report.sqnr_db,
            "centered_sqnr_db": report.centered_sqnr_db, "max_rel_error": report.max_rel_error}


def parse_artifact(arg: str) -> tuple[Path, str | None]:
    """``PATH`` or ``PATH@BACKEND``; raises :class:`ValidationError` for an ``@`` suffix that names no backend.

    A file whose name holds ``@`` (``model@v2.onnx``) is a path when it exists or when the part after
    the ``@`` has a ``.`` or ``/``, as a backend name never does.
    """
    from .runners import BACKENDS

    path, sep, backend = arg.rpartition("@")
    if sep and backend in BACKENDS:
        return Path(path), backend
    if sep and not Path(arg).exists() and not {".", "/"} & set(backend):
        raise ValidationError(f"--artifact {arg}: unknown backend {backend!r} after '@'; valid backends: "
                              f"{', '.join(BACKENDS)}")
    return Path(arg), None


def validate(checkpoint: str | Path, artifacts: list[tuple[Path, str | None]], data: str, clips: int | None = None,
             seed: int = 0, threads: int | None = None, progress=None) -> ValReport:
    """Run the checkpoint (PyTorch fp32) and every artifact on each clip of ``data``; see :class:`ValReport`.

    ``data`` is ``synthetic`` (its ``test`` split, ``clips`` long) or a folder / CSV of labelled
    videos (``clips`` limits it to the first N). Raises :class:`ValidationError`.
    """
    import torch

    from .checkpoint import CheckpointError, checkpoint_classes, load_checkpoint
    from .datasets import DatasetError, open_source
    from .predict import ModelLoadError, Predictor
    from .preprocess import spec_for

    try:
        model = load_checkpoint(checkpoint)
        classes = tuple(checkpoint_classes(checkpoint))
    except CheckpointError as e:
        raise ValidationError(str(e)) from None
    spec = spec_for(model.cfg)
    try:
        source = open_source(data, spec, "test", clips, seed, classes=classes)
    except DatasetError as e:
        raise ValidationError(str(e)) from None
    if len(source.classes) != len(classes):
        raise ValidationError(f"the dataset has {len(source.classes)} classes but checkpoint {checkpoint} was trained "
                              f"on {len(classes)}; validate on the classes the model knows")
    indices = list(range(len(source) if clips is None else min(clips, len(source))))
    predictors: list[tuple[Path, Any]] = []
    try:
        for path, backend in artifacts:
            try:
                predictor = Predictor.from_artifact(path, backend, threads)
            except ModelLoadError as e:
                raise ValidationError(str(e) if str(path) in str(e) else f"artifact {path}: {e}") from None
            if tuple(predictor.spec.input_shape) != tuple(spec.input_shape):
                predictor.close()
                raise ValidationError(f"artifact {path} takes {list(predictor.spec.input_shape)} but checkpoint "
                                      f"{checkpoint} was trained at {list(spec.input_shape)}: export that checkpoint "
                                      "(vmf-export --checkpoint) and validate its artifact")
            predictors.append((path, predictor))
        from .manifest import file_sha256, manifest_path, read_manifest

        digest = file_sha256(checkpoint)
        rows = [ValRow("pytorch", "torch-cpu", "fp32", None, np.zeros((0, len(classes)), np.float32))]
        for path, predictor in predictors:
            info = predictor.model_info
            notes = []
            source_of = (read_manifest(manifest_path(path))["model"].get("source") or {}).get("checkpoint_sha256")
            if source_of != digest:
                notes.append("exported from another checkpoint: agreement is not parity")
            rows.append(ValRow(path.name, info["backend"], info.get("precision") or "fp32", str(path),
                               np.zeros((0, len(classes)), np.float32), notes))
        logits: list[list[np.ndarray]] = [[] for _ in rows]
        labels, sources = [], []
        with torch.inference_mode():
            for n, i in enumerate(indices):
                item = source.load(i)
                if item is None:
                    continue
                clip, label = item
                x = clip[None]
                logits[0].append(model(torch.from_numpy(x)).numpy()[0])
                for r, (path, predictor) in enumerate(predictors, 1):
                    logits[r].append(np.asarray(predictor.runner.run(x), np.float32)[0])
                labels.append(label)
                sources.append(source.sample(i).source)
                if progress:
                    progress(n + 1, len(indices))
    finally:
        for _, predictor in predictors:
            predictor.close()
    if not labels:
        raise ValidationError(f"no clip of {data} could be read ({len(source.skipped)} skipped); check the videos")
    for row, values in zip(rows, logits):
        row.logits = np.stack(values).astype(np.float32)
    return ValReport(str(checkpoint), source.describe(), classes, np.asarray(labels), sources, rows,
                     list(source.skipped.items))


def plot_confusion(report: ValReport, path: str | Path) -> Path:
    """One confusion-matrix panel per row, row-normalised, written as a PNG atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .atomic import atomic_output

    n, k = len(report.rows), len(report.classes)
    fig, axes = plt.subplots(1, n, figsize=(1.2 + 0.45 * k * n, 0.45 * k + 1.8), squeeze=False)
    for ax, row in zip(axes[0], report.rows):
        counts = report.confusion(row)
        rates = counts / np.maximum(counts.sum(1, keepdims=True), 1)
        ax.imshow(rates, vmin=0, vmax=1, cmap="Blues")
        ax.set_xticks(range(k), report.classes, rotation=90, fontsize=7)
        ax.set_yticks(range(k), report.classes, fontsize=7)
        for (i, j), c in np.ndenumerate(counts):
            if c:
                ax.text(j, i, str(c), ha="center", va="center", fontsize=6,
                        color="white" if rates[i, j] > 0.5 else "black")
        ax.set_title(f"{row.name} ({row.backend})\ntop-1 {report.summary(row)['top1']:.1%}", fontsize=8)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("true", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    with atomic_output(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
