"""Parity metrics between an artifact's logits and PyTorch fp32, and the gate that judges them."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class ParityTolerance:
    """Limits an artifact must meet: relative error (to the reference's max |logit|) and top-1 agreement."""

    max_rel_error: float = 1e-4
    min_top1_agreement: float = 1.0
    min_cosine: float = 0.0


@dataclass(frozen=True)
class ParityReport:
    """How far an artifact's logits are from the reference over several clips."""

    clips: int
    max_abs_error: float
    max_rel_error: float
    min_cosine: float
    top1_agreement: float
    top5_agreement: float

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
        return out


def _topk(x: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-x, axis=-1, kind="stable")[..., :k]


def compare_logits(reference: list[np.ndarray], candidate: list[np.ndarray]) -> ParityReport:
    """Compare per-clip logits ``(B, classes)`` of a candidate against the reference.

    Relative error is ``max|cand − ref| / max|ref|`` per clip (the worst clip is reported);
    top-5 agreement is the fraction of clips whose top-5 sets are equal.
    """
    if len(reference) != len(candidate) or not reference:
        raise ValueError("compare_logits needs the same, non-zero number of reference and candidate clips")
    abs_err, rel_err, cos, top1, top5, n = 0.0, 0.0, 1.0, 0, 0, 0
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
    return ParityReport(clips=n, max_abs_error=abs_err, max_rel_error=rel_err, min_cosine=cos,
                        top1_agreement=top1 / n, top5_agreement=top5 / n)


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
