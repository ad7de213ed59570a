"""Parity metrics between an artifact's logits and PyTorch fp32, and the gate that judges them.

Two kinds of metric. The *absolute* ones (max relative error to max |ref|, top-1/top-5
agreement, cosine) compare each clip's logits on their own. The *spread* ones compare the
error with how much the reference's logits differ *between clips*: a model that barely looks
at its input (a seeded init moves its logits by a few percent of their max from clip to clip)
gives every clip nearly the same logits, so an artifact that misreads its input (channels
swapped, time reversed) still matches each clip to a few percent, but not to a fraction of the
clip-to-clip spread. ``mu`` below is the per-class mean of the reference logits over all clips:

- ``sqnr_db`` = 10·log10(Σ ref² / Σ (cand − ref)²)
- ``centered_sqnr_db`` = 10·log10(Σ (ref − mu)² / Σ (cand − ref)²): a shared constant offset
  cannot satisfy it, only logits that move with the input as the reference's do
- ``max_spread_rel_error`` = max |cand − ref| / max |ref − mu|

Decibel values are clamped to ±:data:`SQNR_CAP_DB` so that they stay finite numbers in JSON:
an exact match (zero error) reports ``+SQNR_CAP_DB``; non-finite candidate output, or error
against a zero signal, reports ``-SQNR_CAP_DB``. The spread metrics need at least two clips
and are ``None`` with one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

SQNR_CAP_DB = 200.0
"""Bound of every reported SQNR (dB); +cap means exact. float32 rounding alone stays below ~150 dB."""


@dataclass(frozen=True)
class ParityTolerance:
    """Limits an artifact must meet; a ``None`` limit is not checked.

    Attributes:
        max_rel_error: max |cand − ref| / max |ref|, worst clip.
        min_top1_agreement: fraction of clips with the reference's top-1 class.
        min_cosine: lowest cosine similarity of a clip's logit vectors.
        min_centered_sqnr_db: lowest ``centered_sqnr_db`` (error against the clip-to-clip spread).
        max_spread_rel_error: highest ``max_spread_rel_error``.
        max_accuracy_drop: highest drop of top-1 accuracy against the reference's, as a fraction
            (0.01 = one point); checked only on clips with known labels.
    """

    max_rel_error: float = 1e-4
    min_top1_agreement: float = 1.0
    min_cosine: float = 0.0
    min_centered_sqnr_db: float | None = None
    max_spread_rel_error: float | None = None
    max_accuracy_drop: float | None = None


@dataclass(frozen=True)
class ParityReport:
    """How far an artifact's logits are from the reference over several clips (see the module docstring)."""

    clips: int
    max_abs_error: float
    max_rel_error: float
    min_cosine: float
    top1_agreement: float
    top5_agreement: float
    sqnr_db: float
    centered_sqnr_db: float | None
    max_spread_rel_error: float | None
    reference_accuracy: float | None = None
    accuracy: float | None = None

    @property
    def accuracy_drop(self) -> float | None:
        """Reference top-1 accuracy minus the candidate's (``None`` without labels)."""
        if self.reference_accuracy is None or self.accuracy is None:
            return None
        return self.reference_accuracy - self.accuracy

    def to_dict(self) -> dict:
        """JSON-serialisable form (the manifest's ``parity`` metrics)."""
        return asdict(self)

    def failures(self, tol: ParityTolerance) -> list[str]:
        """Human-readable reasons this report fails ``tol`` (empty if it passes)."""
        out = []
        if not np.isfinite(self.max_abs_error) or self.max_rel_error > tol.max_rel_error:
            out.append(f"max relative error {self.max_rel_error:.3g} > tolerance {tol.max_rel_error:.3g}")
        if self.top1_agreement < tol.min_top1_agreement:
            out.append(f"top-1 agreement {self.top1_agreement:.1%} < {tol.min_top1_agreement:.1%}")
        if self.min_cosine < tol.min_cosine:
            out.append(f"cosine {self.min_cosine:.6f} < {tol.min_cosine:.6f}")
        spread_checked = tol.min_centered_sqnr_db is not None or tol.max_spread_rel_error is not None
        if spread_checked and self.centered_sqnr_db is None:
            out.append(f"the spread metrics need at least 2 clips, got {self.clips}")
            return out
        if tol.min_centered_sqnr_db is not None and self.centered_sqnr_db < tol.min_centered_sqnr_db:
            out.append(f"centered SQNR {self.centered_sqnr_db:.1f} dB < {tol.min_centered_sqnr_db:.1f} dB (error "
                       "against how much the reference's logits vary between clips)")
        if tol.max_spread_rel_error is not None and not self.max_spread_rel_error <= tol.max_spread_rel_error:
            out.append(f"max error {self.max_spread_rel_error:.3g} of the clip-to-clip logit spread > "
                       f"{tol.max_spread_rel_error:.3g}")
        drop = self.accuracy_drop
        if tol.max_accuracy_drop is not None and drop is not None and drop > tol.max_accuracy_drop + 1e-12:
            out.append(f"top-1 accuracy {self.accuracy:.1%} is {drop * 100:.1f} points below the reference's "
                       f"{self.reference_accuracy:.1%} (> {tol.max_accuracy_drop * 100:.1f})")
        return out


def _topk(x: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-x, axis=-1, kind="stable")[..., :k]


def snr_db(signal: float, noise: float) -> float:
    """10·log10(signal / noise) in dB, clamped to ±SQNR_CAP_DB (zero noise: +cap; non-finite noise: −cap)."""
    if not math.isfinite(noise):
        return -SQNR_CAP_DB
    if noise == 0.0:
        return SQNR_CAP_DB
    if signal <= 0.0:
        return -SQNR_CAP_DB
    return float(min(max(10.0 * math.log10(signal / noise), -SQNR_CAP_DB), SQNR_CAP_DB))


def compare_logits(reference: list[np.ndarray], candidate: list[np.ndarray],
                   labels: list[int | None] | None = None) -> ParityReport:
    """Compare per-clip logits ``(B, classes)`` of a candidate against the reference.

    Relative error is ``max|cand − ref| / max|ref|`` per clip (the worst clip is reported);
    top-5 agreement is the fraction of clips whose top-5 sets are equal. The SQNR and spread
    metrics pool every row of every clip (module docstring). ``labels`` (one per row, ``None``
    for an unlabelled row) adds both top-1 accuracies over the labelled rows.
    """
    if len(reference) != len(candidate) or not reference:
        raise ValueError("compare_logits needs the same, non-zero number of reference and candidate clips")
    abs_err, rel_err, cos, top1, top5, n = 0.0, 0.0, 1.0, 0, 0, 0
    refs, cands = [], []
    for ref, cand in zip(reference, candidate):
        ref = np.asarray(ref, dtype=np.float64)
        cand = np.asarray(cand, dtype=np.float64)
        if ref.shape != cand.shape:
            raise ValueError(f"logit shapes differ: reference {ref.shape} vs candidate {cand.shape}")
        diff = np.abs(cand - ref)
        a = float(diff.max()) if np.all(np.isfinite(cand)) else float("inf")
        abs_err = max(abs_err, a)
        rel_err = max(rel_err, a / max(float(np.abs(ref).max()), 1e-12))
        for r, c in zip(ref.reshape(-1, ref.shape[-1]), cand.reshape(-1, cand.shape[-1])):
            denom = np.linalg.norm(r) * np.linalg.norm(c)
            cos = min(cos, float(r @ c / denom) if denom > 0 else 0.0)
            top1 += int(_topk(r, 1)[0] == _topk(c, 1)[0])
            top5 += int(set(_topk(r, 5)) == set(_topk(c, 5)))
            n += 1
        refs.append(ref.reshape(-1, ref.shape[-1]))
        cands.append(cand.reshape(-1, cand.shape[-1]))
    ref_rows, cand_rows = np.concatenate(refs), np.concatenate(cands)
    finite = bool(np.all(np.isfinite(cand_rows)))
    noise = float(np.sum((cand_rows - ref_rows) ** 2)) if finite else math.inf
    centered, spread_rel = None, None
    if n >= 2:
        spread = ref_rows - ref_rows.mean(axis=0)
        centered = snr_db(float(np.sum(spread ** 2)), noise)
        max_spread = float(np.abs(spread).max())
        spread_rel = abs_err / max_spread if max_spread > 0 else (0.0 if abs_err == 0 else math.inf)
    ref_acc, cand_acc = _accuracies(ref_rows, cand_rows, labels)
    return ParityReport(clips=n, max_abs_error=abs_err, max_rel_error=rel_err, min_cosine=cos,
                        top1_agreement=top1 / n, top5_agreement=top5 / n,
                        sqnr_db=snr_db(float(np.sum(ref_rows ** 2)), noise), centered_sqnr_db=centered,
                        max_spread_rel_error=spread_rel, reference_accuracy=ref_acc, accuracy=cand_acc)


def _accuracies(ref_rows: np.ndarray, cand_rows: np.ndarray,
                labels: list[int | None] | None) -> tuple[float | None, float | None]:
    """Top-1 accuracy of reference and candidate over the rows with a label (``None`` if there are none)."""
    if labels is None:
        return None, None
    if len(labels) != len(ref_rows):
        raise ValueError(f"compare_logits got {len(labels)} labels for {len(ref_rows)} rows of logits")
    known = [i for i, label in enumerate(labels) if label is not None]
    if not known:
        return None, None
    truth = np.asarray([labels[i] for i in known])
    return (float(np.mean(ref_rows[known].argmax(axis=1) == truth)),
            float(np.mean(cand_rows[known].argmax(axis=1) == truth)))


def parity_clips(input_shape: tuple[int, ...], seeds: list[int]) -> list[np.ndarray]:
    """Realistic normalised clips, one per seed: smooth random video in [0, 1], Kinetics-normalised."""
    clips = []
    b, c, t, h, w = input_shape
    for seed in seeds:
        rng = np.random.default_rng(seed)
        coarse = rng.random((b, c, t, max(h // 16, 2), max(w // 16, 2)))
        ys = np.linspace(0, coarse.shape[3] - 1, h)
        xs = np.linspace(0, coarse.shape[4] - 1, w)
        y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
        y1, x1 = np.minimum(y0 + 1, coarse.shape[3] - 1), np.minimum(x0 + 1, coarse.shape[4] - 1)
        wy, wx = (ys - y0)[:, None], (xs - x0)[None, :]
        smooth = (coarse[..., y0, :][..., x0] * (1 - wy) * (1 - wx) + coarse[..., y1, :][..., x0] * wy * (1 - wx)
                  + coarse[..., y0, :][..., x1] * (1 - wy) * wx + coarse[..., y1, :][..., x1] * wy * wx)
        pixels = np.clip(smooth + 0.05 * rng.standard_normal(smooth.shape), 0.0, 1.0)
        clips.append(((pixels - 0.45) / 0.225).astype(np.float32))
    return clips
