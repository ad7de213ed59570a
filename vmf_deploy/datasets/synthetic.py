"""A procedural, labelled video-action dataset whose classes can only be told apart over time.

Every clip is drawn from ``(seed, split, index)`` alone, so any sample can be rendered again
anywhere, at any ``frames × height × width``. A clip shows one or two asymmetric sprites on a
textured, cluttered background under camera jitter and sensor noise; colours, shapes, sizes,
speeds, start phases and clutter are random. The class is *how the sprites change*, and each
class has a twin that differs only in the direction or rate of that change (left/right,
clockwise/anticlockwise, grow/shrink, slow/fast flashing, meet/part), so that every single
frame is equally likely under both twins: a model has to look at time.

Time is continuous: frame ``k`` of ``n`` is rendered at ``t = (k + 0.5) / n`` of the clip, so a
64-frame file sampled down to 16 frames shows the same motion as a 16-frame render.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLASSES: tuple[str, ...] = (
    "move_left", "move_right", "move_up", "move_down",
    "rotate_clockwise", "rotate_anticlockwise",
    "grow", "shrink",
    "flash_slow", "flash_fast",
    "meet", "part",
)
"""Class names; index = label."""

SPLITS: dict[str, int] = {"train": 0, "val": 1, "test": 2, "gate": 3, "calibration": 4}
"""Split name → the stream id mixed into every sample's seed (distinct streams never share a sample)."""

HFLIP_LABELS: dict[str, str] = {"move_left": "move_right", "move_right": "move_left",
                                "rotate_clockwise": "rotate_anticlockwise",
                                "rotate_anticlockwise": "rotate_clockwise"}
"""How a left-right mirror of a clip changes its class (classes not named keep theirs)."""

SHAPES = ("knob_bar", "ell", "tee", "key")
"""Sprite shapes, each a union of rectangles and discs in sprite units; none has rotational symmetry."""

_SHAPE_PARTS: dict[str, tuple[tuple, ...]] = {
    # ("rect", cx, cy, half_w, half_h) | ("disc", cx, cy, r), in units of the sprite's radius.
    "knob_bar": (("rect", -0.15, 0.0, 0.85, 0.22), ("disc", 0.65, 0.0, 0.38)),
    "ell": (("rect", 0.0, 0.55, 0.85, 0.22), ("rect", -0.63, -0.15, 0.22, 0.7)),
    "tee": (("rect", 0.0, -0.6, 0.9, 0.2), ("rect", 0.0, 0.15, 0.2, 0.75)),
    "key": (("disc", -0.5, 0.0, 0.42), ("rect", 0.35, 0.0, 0.6, 0.14), ("rect", 0.78, 0.22, 0.12, 0.24)),
}


@dataclass(frozen=True)
class SyntheticClip:
    """One rendered sample: ``frames`` is ``(T, H, W, 3)`` uint8 RGB; ``label`` indexes :data:`CLASSES`."""

    frames: np.ndarray
    label: int
    split: str
    index: int

    @property
    def name(self) -> str:
        """The class name."""
        return CLASSES[self.label]


def split_id(split: str) -> int:
    """The stream id of ``split`` (ValueError naming the valid splits)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    return SPLITS[split]


def label_of(index: int) -> int:
    """The class of sample ``index`` in every split: classes take turns, so any ``N · len(CLASSES)`` is balanced."""
    return index % len(CLASSES)


def render_clip(index: int, split: str = "train", seed: int = 0, frames: int = 16,
                size: int | tuple[int, int] = 64) -> SyntheticClip:
    """Render sample ``index`` of ``split``: deterministic from ``(seed, split, index)``.

    ``size`` is the side of a square frame or ``(height, width)``.
    """
    if index < 0:
        raise ValueError(f"sample index must be >= 0, got {index}")
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    height, width = (size, size) if isinstance(size, int) else size
    if min(height, width) < 16:
        raise ValueError(f"frames must be at least 16×16 pixels, got {height}×{width}")
    rng = np.random.default_rng([seed, split_id(split), index])
    label = label_of(index)
    scene = _Scene(rng, CLASSES[label], height, width)
    t = (np.arange(frames) + 0.5) / frames
    out = np.empty((frames, height, width, 3), np.uint8)
    for k in range(frames):
        out[k] = scene.frame(float(t[k]))
    return SyntheticClip(out, label, split, index)


def normalise(frames: np.ndarray, mean: tuple[float, ...] = (0.45, 0.45, 0.45),
              std: tuple[float, ...] = (0.225, 0.225, 0.225)) -> np.ndarray:
    """``(T, H, W, 3)`` uint8 RGB → the model input ``(1, 3, T, H, W)`` float32 (scaled by 1/255, then normalised)."""
    x = frames.astype(np.float32) * np.float32(1 / 255)
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(3, 0, 1, 2)[None])


def gate_clips(input_shape: tuple[int, ...], count: int, seed: int = 0) -> list[np.ndarray]:
    """``count`` normalised clips of the ``gate`` split rendered at ``input_shape`` = ``(B, 3, T, H, W)``.

    Consecutive indices, so any six clips cover six different classes.
    """
    return [gate_clip(input_shape, i, seed) for i in range(count)]


def gate_clip(input_shape: tuple[int, ...], index: int, seed: int = 0) -> np.ndarray:
    """Clip ``index`` of :func:`gate_clips`, rendered alone (its batch rows are samples ``index·B`` onwards)."""
    b, c, t, h, w = input_shape
    if c != 3:
        raise ValueError(f"synthetic clips are RGB; the input shape {tuple(input_shape)} has {c} channels")
    return np.concatenate([normalise(render_clip(index * b + j, "gate", seed, t, (h, w)).frames) for j in range(b)],
                          axis=0)


# ----- rendering -------------------------------------------------------------------------------

def _bilinear_noise(rng: np.random.Generator, cells: tuple[int, int], height: int, width: int,
                    channels: int) -> np.ndarray:
    """Smooth random field ``(H, W, channels)`` in [0, 1]: a coarse grid upsampled bilinearly."""
    coarse = rng.random((cells[0] + 1, cells[1] + 1, channels))
    ys = np.linspace(0, cells[0], height)
    xs = np.linspace(0, cells[1], width)
    y0 = np.minimum(np.floor(ys).astype(int), cells[0] - 1)
    x0 = np.minimum(np.floor(xs).astype(int), cells[1] - 1)
    wy, wx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    top = coarse[y0][:, x0] * (1 - wx) + coarse[y0][:, x0 + 1] * wx
    bottom = coarse[y0 + 1][:, x0] * (1 - wx) + coarse[y0 + 1][:, x0 + 1] * wx
    return top * (1 - wy) + bottom * wy


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    """A saturated RGB colour in [0, 255]."""
    hue = rng.random()
    rgb = np.clip(np.abs(((hue * 6 + np.array([0.0, 4.0, 2.0])) % 6) - 3) - 1, 0, 1)
    value, sat = rng.uniform(0.55, 1.0), rng.uniform(0.5, 1.0)
    return 255 * value * (1 - sat + sat * rgb)


def _far_colour(rng: np.random.Generator, other: np.ndarray) -> np.ndarray:
    """A random colour at least 120 (RGB distance) away from ``other``."""
    for _ in range(32):
        colour = _random_colour(rng)
        if np.linalg.norm(colour - other) > 120:
            return colour
    return 255 - other


def _sdf(parts: tuple[tuple, ...], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Signed distance to a union of rectangles and discs (negative inside)."""
    dist = None
    for part in parts:
        if part[0] == "rect":
            _, cx, cy, hw, hh = part
            qx, qy = np.abs(x - cx) - hw, np.abs(y - cy) - hh
            d = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0)
        else:
            _, cx, cy, r = part
            d = np.hypot(x - cx, y - cy) - r
        dist = d if dist is None else np.minimum(dist, d)
    return dist


@dataclass
class _Sprite:
    """A sprite's path through the clip: every attribute is a function of ``t`` in [0, 1]."""

    shape: str
    position: object
    angle: object
    radius: object
    colour: object

    def draw(self, canvas: np.ndarray, t: float, yy: np.ndarray, xx: np.ndarray, pixels: float) -> None:
        """Composite the sprite at time ``t`` onto ``canvas`` (float ``(H, W, 3)``), anti-aliased."""
        (px, py), angle, radius = self.position(t), self.angle(t), self.radius(t)
        reach = 1.3 * radius
        rows = slice(max(int((py - reach) * pixels), 0), max(int((py + reach) * pixels) + 2, 0))
        cols = slice(max(int((px - reach) * pixels), 0), max(int((px + reach) * pixels) + 2, 0))
        y, x = yy[rows, cols], xx[rows, cols]
        if y.size == 0:
            return
        c, s = np.float32(np.cos(angle) / radius), np.float32(np.sin(angle) / radius)
        x, y = x - np.float32(px), y - np.float32(py)
        lx, ly = x * c + y * s, y * c - x * s
        alpha = np.clip(0.5 - _sdf(_SHAPE_PARTS[self.shape], lx, ly) * np.float32(radius * pixels), 0, 1)
        alpha = alpha[..., None].astype(np.float32)
        patch = canvas[rows, cols]
        patch *= 1 - alpha
        patch += alpha * np.asarray(self.colour(t), np.float32)


def _constant(value):
    return lambda t: value


def _linear(start, stop):
    start, stop = np.asarray(start, float), np.asarray(stop, float)
    return lambda t: start + (stop - start) * t


class _Scene:
    """The background, camera path, noise and sprites of one clip of class ``name``."""

    JITTER = 0.012      # camera shake, standard deviation as a fraction of the frame
    MARGIN = 0.05       # background rendered this much larger on each side, for the shake

    def __init__(self, rng: np.random.Generator, name: str, height: int, width: int) -> None:
        self.rng, self.height, self.width = rng, height, width
        self.pixels = float(min(height, width))  # pixels per scene unit (the short side is 1)
        self.extent = (height / self.pixels, width / self.pixels)
        margin = int(np.ceil(self.MARGIN * self.pixels))
        self.margin = margin
        self.background = self._background(height + 2 * margin, width + 2 * margin)
        self.noise = rng.uniform(2.0, 7.0)
        self.flicker = rng.uniform(0.0, 0.03)
        self.sprites = self._sprites(name)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        self.yy, self.xx = (yy + 0.5) / np.float32(self.pixels), (xx + 0.5) / np.float32(self.pixels)
        self.frame_seed = int(rng.integers(2**31))

    def _background(self, height: int, width: int) -> np.ndarray:
        rng = self.rng
        base = _bilinear_noise(rng, (int(rng.integers(2, 6)), int(rng.integers(2, 6))), height, width, 3)
        tint = _random_colour(rng)
        bg = (0.35 + 0.45 * base) * (0.5 * tint + 0.5 * 160)
        yy, xx = np.mgrid[0:height, 0:width] / self.pixels
        theta, freq = rng.uniform(0, np.pi), rng.uniform(6, 20)
        stripes = np.sin(2 * np.pi * freq * (xx * np.cos(theta) + yy * np.sin(theta)) + rng.uniform(0, 2 * np.pi))
        bg += rng.uniform(5, 25) * stripes[..., None]
        canvas = bg.astype(np.float64)
        for _ in range(int(rng.integers(3, 8))):  # clutter: static blobs and bars, part of the scene
            cx, cy = rng.uniform(0, width / self.pixels), rng.uniform(0, height / self.pixels)
            r = rng.uniform(0.03, 0.12)
            if rng.random() < 0.5:
                d = np.hypot(xx - cx, yy - cy) - r
            else:
                d = np.maximum(np.abs(xx - cx) - r, np.abs(yy - cy) - rng.uniform(0.2, 1.0) * r)
            alpha = np.clip(0.5 - d * self.pixels, 0, 1)[..., None] * rng.uniform(0.4, 0.9)
            canvas = canvas * (1 - alpha) + alpha * _random_colour(rng)
        return canvas.astype(np.float32)

    def _inside(self, r: float) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of a sprite centre that keep a sprite of radius ``r`` inside the frame."""
        h, w = self.extent
        lo = np.array([r + 0.05, r + 0.05])
        return lo, np.maximum(np.array([w, h]) - lo, lo + 1e-3)

    def _sprite(self, name: str, radius: float | None = None) -> _Sprite:
        """One sprite moving as class ``name`` prescribes (any other name: a slowly drifting sprite)."""
        rng = self.rng
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        colour = _random_colour(rng)
        angle0 = rng.uniform(0, 2 * np.pi)
        r = radius if radius is not None else rng.uniform(0.13, 0.2)
        angle = _linear(angle0, angle0 + rng.uniform(-0.3, 0.3))
        size = _constant(r)
        if name in ("grow", "shrink"):
            small, ratio = rng.uniform(0.09, 0.13), rng.uniform(1.7, 2.2)
            size = (lambda t, s=small, q=ratio: s * q**t) if name == "grow" else (lambda t, s=small, q=ratio: s * q**(1 - t))
            r = small * ratio
        lo, hi = self._inside(r)
        if name.startswith("move_"):
            direction = {"move_left": (-1, 0), "move_right": (1, 0), "move_up": (0, -1), "move_down": (0, 1)}[name]
            direction = np.asarray(direction, float)
            span = np.minimum(hi - lo, rng.uniform(0.3, 0.5))
            along = np.abs(direction) * span
            side = (1 - np.abs(direction)) * rng.uniform(-0.06, 0.06)
            start = lo + np.abs(direction) * rng.uniform(0, 1) * (hi - lo - along) + (1 - np.abs(direction)) * rng.uniform(lo, hi)
            start = np.where(direction < 0, start + along, start)
            stop = start + direction * span + side
            position = _linear(start, np.clip(stop, lo, hi))
        else:
            start = rng.uniform(lo, hi)
            drift = rng.uniform(-0.06, 0.06, 2)
            position = _linear(start, np.clip(start + drift, lo, hi))
        if name in ("rotate_clockwise", "rotate_anticlockwise"):
            turn = rng.uniform(0.5, 0.9) * np.pi * (1 if name == "rotate_clockwise" else -1)
            angle = _linear(angle0, angle0 + turn)  # image y points down: a growing angle turns clockwise
        if name in ("flash_slow", "flash_fast"):
            other = _far_colour(rng, colour)
            cycles = rng.uniform(0.4, 0.7) if name == "flash_slow" else rng.uniform(3.5, 4.5)
            phase = rng.uniform(0, 1)
            colour_at = lambda t, a=colour, b=other, n=cycles, p=phase: a if ((t * n + p) % 1.0) < 0.5 else b
        else:
            colour_at = _constant(colour)
        return _Sprite(shape, position, angle, size, colour_at)

    def _pair(self, name: str) -> list[_Sprite]:
        """Two sprites approaching (``meet``) or leaving (``part``) each other along a random axis."""
        rng = self.rng
        r = rng.uniform(0.1, 0.14)
        axis_angle = rng.uniform(0, np.pi)
        axis = np.array([np.cos(axis_angle), np.sin(axis_angle)])
        h, w = self.extent
        near, far = rng.uniform(2.4, 3.0) * r, rng.uniform(0.55, 0.7) * min(h, w)
        lo, hi = self._inside(r)
        low, high = lo + far / 2 * np.abs(axis), hi - far / 2 * np.abs(axis)
        centre = rng.uniform(np.minimum(low, high), np.maximum(low, high))
        gap = _linear(far, near) if name == "meet" else _linear(near, far)
        sprites = []
        for sign in (-1.0, 1.0):
            s = self._sprite("pair", radius=r)
            s.position = lambda t, sg=sign, g=gap: centre + sg * axis * g(t) / 2
            sprites.append(s)
        return sprites

    def _sprites(self, name: str) -> list[_Sprite]:
        if name in ("meet", "part"):
            return self._pair(name)
        sprites = [self._sprite(name)]
        if self.rng.random() < 0.5:  # a second, idle sprite: two objects alone do not mean meet/part
            sprites.insert(int(self.rng.integers(2)), self._sprite("idle"))
        return sprites

    def frame(self, t: float) -> np.ndarray:
        """The frame at time ``t`` in [0, 1] as ``(H, W, 3)`` uint8."""
        rng = np.random.default_rng([self.frame_seed, int(round(t * 1e6))])
        dy, dx = np.clip(rng.normal(0, self.JITTER * self.pixels, 2), -self.margin, self.margin).astype(int)
        m = self.margin
        canvas = self.background[m + dy:m + dy + self.height, m + dx:m + dx + self.width].copy()
        shift_y, shift_x = dy / self.pixels, dx / self.pixels
        for sprite in self.sprites:
            sprite.draw(canvas, t, self.yy + shift_y, self.xx + shift_x, self.pixels)
        canvas *= np.float32(1 + self.flicker * rng.standard_normal())
        canvas += np.float32(self.noise) * rng.standard_normal(canvas.shape, dtype=np.float32)
        return np.clip(canvas, 0, 255).astype(np.uint8)
