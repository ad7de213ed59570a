"""The preprocessing formula of ``vmf_deploy/preprocess.py``'s docstring, written out directly in float64.

Independent of the library's implementation (no crop plan, no separable passes): every output
pixel blends its four source pixels at once. Tests compare Python and C++ against it.
"""

from __future__ import annotations

import numpy as np

from vmf_deploy.preprocess import PreprocessSpec


def _source_positions(in_size: int, short_side: int, other: int, crop: int, is_short: bool) -> tuple:
    """(lo, hi, weight of hi) along one axis for the crop's output pixels."""
    out_size = short_side if is_short else max(short_side, round(in_size * short_side / other))
    offset = (out_size - crop) // 2
    src = (np.arange(offset, offset + crop) + 0.5) * in_size / out_size - 0.5
    src = np.clip(src, 0.0, in_size - 1)
    lo = np.floor(src).astype(int)
    return lo, np.minimum(lo + 1, in_size - 1), src - lo


def reference_frame(frame: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """One RGB (or gray) uint8 frame to its ``(3, crop, crop)`` model input, in float64."""
    rgb = np.repeat(frame[:, :, None], 3, axis=2) if frame.ndim == 2 else frame[:, :, :3]
    f = rgb.astype(np.float64)
    h, w = f.shape[:2]
    y0, y1, wy = _source_positions(h, spec.short_side, w, spec.crop, h <= w)
    x0, x1, wx = _source_positions(w, spec.short_side, h, spec.crop, w < h)
    wy, wx = wy[:, None, None], wx[None, :, None]
    pixels = ((1 - wy) * (1 - wx) * f[np.ix_(y0, x0)] + (1 - wy) * wx * f[np.ix_(y0, x1)]
              + wy * (1 - wx) * f[np.ix_(y1, x0)] + wy * wx * f[np.ix_(y1, x1)])
    out = (pixels * spec.scale - np.asarray(spec.mean)) / np.asarray(spec.std)
    return out.transpose(2, 0, 1)


def reference_video(frames: list[np.ndarray], spec: PreprocessSpec) -> np.ndarray:
    """All decoded frames of a video to the model input ``(1, 3, T, crop, crop)``, in float64."""
    n = len(frames)
    idx = [min((2 * i + 1) * n // (2 * spec.frames), n - 1) for i in range(spec.frames)]
    return np.stack([reference_frame(frames[i], spec) for i in idx], axis=1)[None]
