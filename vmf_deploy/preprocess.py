"""Preprocessing of decoded video frames, as data plus one numpy implementation.

The spec is what a manifest carries and what the native runtime reimplements:

* sampling: one clip of ``frames`` frames covering the whole video, frame ``i``
  taken at index ``floor((i + 0.5) · n / frames)`` of the ``n`` decoded frames
  (short videos repeat frames in order);
* resize: the short side to ``short_side`` pixels (long side rounded to nearest),
  bilinear with half-pixel centres, no antialiasing (OpenCV's INTER_LINEAR rule);
  only the centre crop is computed, from the at most ``2 × crop`` rows and columns it reads
  (:class:`CropPlan`), gathered in one ``np.take`` (:class:`GatherPlan`) and blended in float32
  (within 1e-6 of the same formula in float64);
* crop: a centred ``crop × crop`` window, offset ``(resized − crop) // 2``;
* pixels: RGB, scaled by 1/255, then ``(x − mean) / std`` per channel;
* layout: ``NCTHW`` float32 (batch of 1), or ``NTHWC`` (channels last: each frame's crop
  ``(crop, crop, 3)``, as decoders write frames) for an artifact exported to take it
  (``export/openvino.toml``'s ``input_layout``). ``input_shape`` is always given in ``NCTHW``
  order; ``tensor_shape`` is the array the layout makes.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np

KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)
LAYOUTS = ("NCTHW", "NTHWC")
"""Input layouts: planar (the PyTorch model's) and channels-last."""


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

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"preprocessing layout {self.layout!r} is not one of {', '.join(LAYOUTS)}")

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
        """Shape of the model input this spec produces, in ``NCTHW`` order whatever the layout."""
        return (1, 3, self.frames, self.crop, self.crop)

    @property
    def tensor_shape(self) -> tuple[int, ...]:
        """Shape of the array this spec produces: ``input_shape`` in the spec's layout."""
        return layout_shape(self.input_shape, self.layout)

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        """Shape of one frame's crop: ``(3, crop, crop)``, or ``(crop, crop, 3)`` channels-last."""
        return (self.crop, self.crop, 3) if self.channels_last else (3, self.crop, self.crop)

    @property
    def channels_last(self) -> bool:
        """Whether each frame's crop is ``(crop, crop, 3)`` rather than ``(3, crop, crop)``."""
        return self.layout == "NTHWC"


def layout_shape(shape: tuple[int, ...], layout: str) -> tuple[int, ...]:
    """An ``NCTHW`` shape in ``layout``'s order."""
    return tuple(shape) if layout == "NCTHW" else (shape[0], *shape[2:], shape[1])


def to_layout(clip: np.ndarray, layout: str) -> np.ndarray:
    """An ``NCTHW`` clip in ``layout`` (contiguous; the clip itself for ``NCTHW``)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r} is not one of {', '.join(LAYOUTS)}")
    return clip if layout == "NCTHW" else np.ascontiguousarray(np.moveaxis(clip, 1, -1))


def stack_frames(crops: list[np.ndarray], spec: PreprocessSpec) -> np.ndarray:
    """Per-frame crops (from :func:`preprocess_frame`) stacked into the batch-of-one clip of ``spec``'s layout."""
    return np.stack(crops, axis=0 if spec.channels_last else 1)[None]


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


@dataclass(frozen=True)
class CropPlan:
    """Which rows and columns of a frame the resized centre crop reads, and how it blends them.

    ``rows``/``cols`` are the sorted source rows and columns the crop needs (at most two per
    output pixel, so a 720p frame cut to 172 px reads 344 × 344 of its pixels); ``y_lo``/``y_hi``
    and ``x_lo``/``x_hi`` index into them, ``wy``/``wx`` are the float32 weights of ``hi``.
    """

    rows: np.ndarray
    cols: np.ndarray
    y_lo: np.ndarray
    y_hi: np.ndarray
    wy: np.ndarray
    x_lo: np.ndarray
    x_hi: np.ndarray
    wx: np.ndarray


def _compact_axis(in_size: int, out_size: int, crop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The needed source indices of one axis, the (lo, hi) positions in them and the float32 weights."""
    lo, hi, w = _axis_weights(in_size, out_size, (out_size - crop) // 2, crop)
    needed, position = np.unique(np.concatenate([lo, hi]), return_inverse=True)
    return needed, position[:crop], position[crop:], w.astype(np.float32)


@functools.lru_cache(maxsize=64)
def crop_plan(height: int, width: int, short_side: int, crop: int) -> CropPlan:
    """The :class:`CropPlan` of a ``height × width`` frame (cached: every frame of a video shares it)."""
    rh, rw = resized_size(height, width, short_side)
    if rh < crop or rw < crop:
        raise ValueError(f"short_side {short_side} is smaller than the crop {crop}")
    rows, y_lo, y_hi, wy = _compact_axis(height, rh, crop)
    cols, x_lo, x_hi, wx = _compact_axis(width, rw, crop)
    plan = CropPlan(rows, cols, y_lo, y_hi, wy[:, None, None], x_lo, x_hi, wx[None, :, None])
    for array in dataclasses.astuple(plan):
        array.flags.writeable = False
    return plan


@dataclass(frozen=True)
class GatherPlan:
    """Flat offsets of the four bilinear corners of every output value, and the float32 constants.

    ``index`` is ``(4, 3, crop, crop)``: the offsets, in the C-contiguous ``(H, W, depth)`` frame,
    of the top-left, top-right, bottom-left and bottom-right source pixels of each output pixel,
    channel axis already in R, G, B order, so one ``np.take`` gathers the crop's sources in the
    output's ``CHW`` layout. For a channels-last spec it is ``(4, crop, crop · 3)``, the ``HWC``
    crop's rows, and the weights and constants are spread along those rows (``wx`` and ``scale``
    repeated per channel), so each blend runs over whole contiguous rows as in ``CHW``. ``wy``/``wx``
    are the float32 weights of the bottom and right corners; ``scale``/``shift`` fold 1/255, the mean
    and the std.
    """

    index: np.ndarray
    wy: np.ndarray
    wx: np.ndarray
    scale: np.ndarray
    shift: np.ndarray


@functools.lru_cache(maxsize=8)
def gather_plan(height: int, width: int, depth: int, channels: tuple[int, int, int],
                spec: PreprocessSpec) -> GatherPlan:
    """The :class:`GatherPlan` of ``height × width × depth`` frames (cached: every frame of a video shares it)."""
    crop = crop_plan(height, width, spec.short_side, spec.crop)
    source = np.asarray(channels, dtype=np.intp)[:, None, None]

    def offsets(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return (rows[None, :, None] * width + cols[None, None, :]) * depth + source

    y_lo, y_hi = crop.rows[crop.y_lo], crop.rows[crop.y_hi]
    x_lo, x_hi = crop.cols[crop.x_lo], crop.cols[crop.x_hi]
    index = np.stack([offsets(y_lo, x_lo), offsets(y_lo, x_hi), offsets(y_hi, x_lo), offsets(y_hi, x_hi)])
    scale = np.array([spec.scale / s for s in spec.std], dtype=np.float32)
    shift = np.array([m / s for m, s in zip(spec.mean, spec.std)], dtype=np.float32)
    if spec.channels_last:  # rows of crop · 3 interleaved values: every blend runs over long contiguous rows
        size = spec.crop
        plan = GatherPlan(index=np.ascontiguousarray(index.transpose(0, 2, 3, 1), dtype=np.intp).reshape(4, size, -1),
                          wy=crop.wy.reshape(-1, 1), wx=np.repeat(crop.wx.reshape(-1), 3)[None],
                          scale=np.tile(scale, size)[None], shift=np.tile(shift, size)[None])
    else:
        plan = GatherPlan(index=index.astype(np.intp), wy=crop.wy.reshape(1, -1, 1), wx=crop.wx.reshape(1, 1, -1),
                          scale=scale[:, None, None], shift=shift[:, None, None])
    for array in dataclasses.astuple(plan):
        array.flags.writeable = False
    return plan


def preprocess_frame(frame: np.ndarray, spec: PreprocessSpec, channels: tuple[int, int, int] = (0, 1, 2),
                     out: np.ndarray | None = None) -> np.ndarray:
    """One ``(H, W, C)`` frame to its normalised ``(3, crop, crop)`` float32 crop (written into ``out`` if given;
    ``(crop, crop, 3)`` for a channels-last ``spec``).

    ``channels`` names the frame's channel holding R, G and B: ``(2, 1, 0)`` for OpenCV's BGR,
    ``(0, 0, 0)`` for a single gray channel. One gather (:class:`GatherPlan`) reads the four
    corners of every output value, already in ``CHW`` order; the blend is rows, then columns,
    in float32: within 1e-6 of the float64 formula of the module docstring
    (``tests/test_preprocess.py`` checks it).
    """
    plan = gather_plan(frame.shape[0], frame.shape[1], frame.shape[2], tuple(channels), spec)
    corners = np.take(np.ascontiguousarray(frame).reshape(-1), plan.index).astype(np.float32)
    top_left, top_right, bottom_left, bottom_right = corners
    left = np.subtract(bottom_left, top_left, out=bottom_left)
    left *= plan.wy
    left += top_left
    right = np.subtract(bottom_right, top_right, out=bottom_right)
    right *= plan.wy
    right += top_right
    right -= left
    right *= plan.wx
    right += left
    if out is None:
        out = np.empty(spec.frame_shape, dtype=np.float32)
    rows = out.reshape(right.shape)  # a view: (crop, crop · 3) for a channels-last crop
    if not np.may_share_memory(rows, out):
        raise ValueError("out must be C-contiguous for a channels-last spec (a view of the clip's frame t)")
    np.multiply(right, plan.scale, out=rows)
    rows -= plan.shift
    return out


def rgb_channels(frame: np.ndarray, order: str = "RGB") -> tuple[np.ndarray, tuple[int, int, int]]:
    """``(frame as H × W × C, the channels holding R, G, B)`` of a gray, 3- or 4-channel frame (no copy).

    ``order`` is the byte order of colour frames: ``"RGB"`` (RGB, RGBA) or ``"BGR"`` (OpenCV's BGR, BGRA).
    """
    if frame.ndim == 2:
        frame = frame[:, :, None]
    if frame.ndim != 3 or frame.shape[2] not in (1, 3, 4):
        raise ValueError(f"a frame must be HxW, HxWx1, HxWx3 or HxWx4; got shape {frame.shape}")
    if frame.shape[2] == 1:
        return frame, (0, 0, 0)
    return frame, (2, 1, 0) if order == "BGR" else (0, 1, 2)


def as_rgb(frame: np.ndarray) -> np.ndarray:
    """A ``(H, W, 3)`` uint8 view of an RGB, RGBA or grayscale frame."""
    pixels, channels = rgb_channels(frame)
    return np.repeat(pixels, 3, axis=2) if channels == (0, 0, 0) else pixels[:, :, :3]


def preprocess_clip(frames: list[np.ndarray] | np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Turn the already-sampled RGB frames of one clip into the model input ``spec.tensor_shape`` float32
    (``(1, 3, T, S, S)``; ``(1, T, S, S, 3)`` channels-last)."""
    if len(frames) != spec.frames:
        raise ValueError(f"expected {spec.frames} sampled frames, got {len(frames)}; use sample_indices first")
    out = np.empty(spec.tensor_shape, dtype=np.float32)
    for t, frame in enumerate(frames):
        pixels, channels = rgb_channels(np.asarray(frame))
        preprocess_frame(pixels, spec, channels, out=out[0, t] if spec.channels_last else out[0, :, t])
    return out


def preprocess_video(frames: list[np.ndarray] | np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Sample one clip from all decoded frames of a video and preprocess it."""
    idx = sample_indices(len(frames), spec.frames)
    return preprocess_clip([frames[i] for i in idx], spec)
