"""Preprocessing of decoded video frames, as data plus one numpy implementation.

The spec is what a manifest carries and what the native runtime reimplements:

* sampling: one clip of ``frames`` frames covering the whole video, frame ``i``
  taken at index ``floor((i + 0.5) · n / frames)`` of the ``n`` decoded frames
  (short videos repeat frames in order);
* resize: the short side to ``short_side`` pixels (long side rounded to nearest),
  bilinear with half-pixel centres, no antialiasing (OpenCV's INTER_LINEAR rule);
  only the centre crop is computed;
* crop: a centred ``crop × crop`` window, offset ``(resized − crop) // 2``;
* pixels: RGB, scaled by 1/255, then ``(x − mean) / std`` per channel;
* layout: ``NCTHW`` float32 (batch of 1).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)


@dataclass(frozen=True)
class PreprocessSpec:
    """How raw RGB frames become the model input (see the module docstring)."""

    frames: int
    crop: int
    short_side: int
    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD
    sampling: str = "uniform_whole_video"
    short_video: str = "repeat_frames_in_order"
    interpolation: str = "bilinear_half_pixel"
    scale: float = 1.0 / 255.0
    color: str = "RGB"
    layout: str = "NCTHW"

    def to_dict(self) -> dict:
        """JSON-serialisable form (the manifest's ``preprocessing`` object)."""
        d = dataclasses.asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "PreprocessSpec":
        """Inverse of :meth:`to_dict`."""
        d = dict(data)
        d["mean"], d["std"] = tuple(d["mean"]), tuple(d["std"])
        return cls(**d)

    @property
    def input_shape(self) -> tuple[int, int, int, int, int]:
        """Shape of the model input this spec produces."""
        return (1, 3, self.frames, self.crop, self.crop)


def spec_for(cfg: object, frames: int | None = None) -> PreprocessSpec:
    """The preprocessing spec of a model config (its resolution and clip length)."""
    res = int(getattr(cfg, "resolution"))
    return PreprocessSpec(frames=int(frames or getattr(cfg, "frames")), crop=res, short_side=res)


def sample_indices(num_frames: int, frames: int) -> np.ndarray:
    """Indices of the ``frames`` frames of one clip covering a video of ``num_frames`` frames."""
    if num_frames < 1:
        raise ValueError("the video has no decodable frames")
    i = np.arange(frames, dtype=np.int64)
    return np.minimum(((2 * i + 1) * num_frames) // (2 * frames), num_frames - 1)


def resized_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(height, width) after scaling the short side to ``short_side``."""
    if height <= width:
        return short_side, max(short_side, int(round(width * short_side / height)))
    return max(short_side, int(round(height * short_side / width))), short_side


def _axis_weights(in_size: int, out_size: int, start: int, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices (lo, hi) and weights of hi for output pixels ``start .. start+count``."""
    scale = in_size / out_size
    dst = np.arange(start, start + count, dtype=np.float64)
    src = np.clip((dst + 0.5) * scale - 0.5, 0.0, in_size - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, in_size - 1)
    return lo, hi, src - lo


def resize_center_crop(frame: np.ndarray, short_side: int, crop: int) -> np.ndarray:
    """Bilinear short-side resize + centre crop of one ``(H, W, 3)`` frame, as float64 in [0, 255]."""
    h, w = frame.shape[:2]
    rh, rw = resized_size(h, w, short_side)
    if rh < crop or rw < crop:
        raise ValueError(f"short_side {short_side} is smaller than the crop {crop}")
    y_lo, y_hi, wy = _axis_weights(h, rh, (rh - crop) // 2, crop)
    x_lo, x_hi, wx = _axis_weights(w, rw, (rw - crop) // 2, crop)
    # Pick the needed rows before converting: a 1080p frame is never copied whole as float64.
    rows = frame[y_lo].astype(np.float64) * (1.0 - wy)[:, None, None] + frame[y_hi].astype(np.float64) * wy[:, None, None]
    return rows[:, x_lo] * (1.0 - wx)[None, :, None] + rows[:, x_hi] * wx[None, :, None]


def as_rgb(frame: np.ndarray) -> np.ndarray:
    """A ``(H, W, 3)`` uint8 view of an RGB, RGBA or grayscale frame."""
    if frame.ndim == 2:
        frame = frame[:, :, None]
    if frame.ndim != 3 or frame.shape[2] not in (1, 3, 4):
        raise ValueError(f"a frame must be HxW, HxWx1, HxWx3 or HxWx4; got shape {frame.shape}")
    if frame.shape[2] == 1:
        return np.repeat(frame, 3, axis=2)
    return frame[:, :, :3]


def preprocess_clip(frames: list[np.ndarray] | np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Turn the already-sampled RGB frames of one clip into the model input ``(1, 3, T, S, S)`` float32."""
    if len(frames) != spec.frames:
        raise ValueError(f"expected {spec.frames} sampled frames, got {len(frames)}; use sample_indices first")
    mean = np.asarray(spec.mean, dtype=np.float64)
    std = np.asarray(spec.std, dtype=np.float64)
    out = np.empty((spec.frames, spec.crop, spec.crop, 3), dtype=np.float32)
    for t, frame in enumerate(frames):
        pixels = resize_center_crop(as_rgb(np.asarray(frame)), spec.short_side, spec.crop)
        out[t] = (pixels * spec.scale - mean) / std
    return np.ascontiguousarray(out.transpose(3, 0, 1, 2)[None])


def preprocess_video(frames: list[np.ndarray] | np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Sample one clip from all decoded frames of a video and preprocess it."""
    idx = sample_indices(len(frames), spec.frames)
    return preprocess_clip([frames[i] for i in idx], spec)
