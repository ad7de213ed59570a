"""Streamed video decoding into one preprocessed clip: OpenCV (FFmpeg) in, model input out.

The whole video is never held in memory. The clip's frame indices follow
:func:`vmf_deploy.preprocess.sample_indices` over the video's *true* frame count,
which container headers do not always give (truncated files, variable frame
rate, estimated counts). :func:`read_clip` therefore:

1. takes the header's frame count ``n`` as a guess and decodes the stream once to
   its end with ``grab()``, converting and preprocessing (``retrieve()`` +
   :func:`~vmf_deploy.preprocess.preprocess_frame`, which reads only the pixels of the
   centre crop, BGR as is) only the frames the clip needs for ``n``; every retained
   frame is already the small ``3 × crop × crop`` crop (``crop × crop × 3`` channels-last);
2. if the stream held a different number of frames ``m``, re-samples over ``m``:
   crops whose index is still needed are kept, and a second pass decodes only up
   to the last missing index (stopping early). A missing or zero header count
   makes the first pass a pure count.

So a video with a correct header is decoded once; a wrong header costs at most a
second, partial pass. Frames are converted BGR→RGB; grayscale streams become
three equal channels; rotation metadata is applied by OpenCV's FFmpeg backend
(``CAP_PROP_ORIENTATION_AUTO``, on by default in OpenCV 5) and reported.

FFmpeg's own log is silenced (set ``OPENCV_FFMPEG_LOGLEVEL`` before importing this
module to see it): every problem surfaces as a :class:`VideoError` instead.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .preprocess import PreprocessSpec, preprocess_frame, rgb_channels, sample_indices, stack_frames

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET; read by OpenCV at its first FFmpeg open

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
                    ".wmv", ".asf", ".flv", ".3gp", ".ogv", ".mjpeg", ".mjpg")
MAX_FRAME_PIXELS = 8192 * 8192
"""Frames larger than this are refused before decoding (one 16K frame alone is 768 MB as BGR)."""
MIN_DECODED_FRACTION = 0.9
"""A stream ending before this fraction of its header's frames *and* duration is truncated or corrupt."""
UPSCALE_WARNING = 2.0
"""Warn when frames must be enlarged more than this to reach the model's resolution."""
CROP_COVERAGE_WARNING = 0.4
"""Warn when the centre crop keeps less than this fraction of the frame's long side."""
REENCODE_HINT = "re-encode it, e.g. `ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p OUT.mp4`"


class VideoError(ValueError):
    """A video that cannot be turned into a clip; ``kind`` names the problem, the message says the fix.

    Kinds: ``missing``, ``unreadable``, ``empty-file``, ``not-a-video``, ``truncated``,
    ``unsupported-codec``, ``no-frames``, ``undecodable``, ``too-large``.
    """

    def __init__(self, kind: str, path: str | os.PathLike, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.kind = kind
        self.path = str(path)
        self.reason = message

    def __reduce__(self) -> tuple:
        """Pickle by the constructor's arguments, so errors cross process boundaries (worker pools, Ray)."""
        return VideoError, (self.kind, self.path, self.reason)


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about the video stream (after OpenCV's auto-rotation)."""

    width: int
    height: int
    fps: float
    header_frames: int
    codec: str
    rotation: int
    container: str

    @property
    def header_seconds(self) -> float | None:
        """Duration implied by the header (frame count / fps), if both are known."""
        return self.header_frames / self.fps if self.fps > 0 and self.header_frames > 0 else None


@dataclass
class DecodeStats:
    """Bookkeeping of one :func:`read_clip`: what was decoded, converted and retained."""

    passes: int = 0
    grabbed: int = 0
    retrieved: int = 0
    max_retained: int = 0
    retrieved_indices: list[int] = field(default_factory=list)
    decode_seconds: float = 0.0
    preprocess_seconds: float = 0.0


@dataclass
class Clip:
    """One preprocessed clip of a video, with how it was obtained.

    ``input`` is the model input ``(1, 3, T, crop, crop)`` float32 (``(1, T, crop, crop, 3)`` for a
    channels-last spec: ``spec.tensor_shape``); ``indices`` the decoded-frame
    index of each clip frame; ``num_frames`` the frames the stream really held; ``frame_size``
    ``(height, width)`` as displayed (after rotation); ``notes`` warnings worth showing the user.
    """

    input: np.ndarray
    indices: np.ndarray
    num_frames: int
    info: VideoInfo
    stats: DecodeStats
    notes: list[str]
    frame_size: tuple[int, int]


def list_videos(directory: str | os.PathLike) -> list[Path]:
    """Files with a video extension directly inside ``directory``, sorted by name."""
    return sorted(p for p in Path(directory).iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)


def read_clip(path: str | os.PathLike, spec: PreprocessSpec, allow_partial: bool = False,
              max_pixels: int = MAX_FRAME_PIXELS) -> Clip:
    """Decode ``path`` (streamed) and return the one clip ``spec`` samples from it, preprocessed.

    ``allow_partial`` accepts a truncated or corrupt stream and samples over its
    decodable frames (with a note) instead of raising. Raises :class:`VideoError`.
    """
    path = Path(path)
    info = probe(path, max_pixels)
    collector = _CropCollector(path, spec, max_pixels)
    wanted = set(sample_indices(info.header_frames, spec.frames).tolist()) if info.header_frames > 0 else set()
    t_start = time.perf_counter()
    with _capture(path) as cap:
        count, last_ms = _decode_pass(cap, wanted, collector, stop_after=None)
    if count == 0:
        raise _no_frames(path, info)
    notes: list[str] = []
    if info.header_frames > 0 and count != info.header_frames:
        _check_complete(path, info, count, last_ms, allow_partial, notes)
    indices = sample_indices(count, spec.frames)
    missing = collector.retain_only(set(indices.tolist()))
    if missing:
        with _capture(path) as cap:
            _decode_pass(cap, missing, collector, stop_after=max(missing))
        if collector.retain_only(set(indices.tolist())):
            raise VideoError("undecodable", path, "the stream decoded differently on a second pass (frames "
                             f"vanished): it is corrupt; {REENCODE_HINT}")
    stats = collector.stats
    stats.decode_seconds = time.perf_counter() - t_start - stats.preprocess_seconds
    clip = stack_frames([collector.crops[i] for i in indices], spec)
    notes += _content_notes(info, count, collector.frame_size, collector.gray, spec)
    return Clip(input=np.ascontiguousarray(clip), indices=indices, num_frames=count, info=info, stats=stats,
                notes=notes, frame_size=collector.frame_size)


class _CropCollector:
    """Keeps the preprocessed ``3 × crop × crop`` crop of each retrieved frame, keyed by frame index."""

    def __init__(self, path: Path, spec: PreprocessSpec, max_pixels: int) -> None:
        self.path, self.max_pixels = path, max_pixels
        self.spec = spec
        self.crops: dict[int, np.ndarray] = {}
        self.stats = DecodeStats()
        self.frame_size = (0, 0)
        self.gray = True

    def add(self, index: int, frame: np.ndarray) -> None:
        """Preprocess one retrieved BGR (or gray) frame, reading only its crop's pixels, and keep the crop."""
        height, width = frame.shape[:2]
        if height * width > self.max_pixels:
            raise _too_large(self.path, width, height, self.max_pixels)
        if self.stats.retrieved == 0:
            self.frame_size = (height, width)
        self.gray = self.gray and _is_gray(frame)
        t0 = time.perf_counter()
        pixels, channels = rgb_channels(frame, order="BGR")
        self.crops[index] = preprocess_frame(pixels, self.spec, channels)
        self.stats.preprocess_seconds += time.perf_counter() - t0
        self.stats.retrieved += 1
        self.stats.retrieved_indices.append(index)
        self.stats.max_retained = max(self.stats.max_retained, len(self.crops))

    def retain_only(self, needed: set[int]) -> set[int]:
        """Drop crops not in ``needed``; return the needed indices not yet collected."""
        for stale in set(self.crops) - needed:
            del self.crops[stale]
        return needed - set(self.crops)


def probe(path: str | os.PathLike, max_pixels: int = MAX_FRAME_PIXELS) -> VideoInfo:
    """Open ``path`` and read its header; raise :class:`VideoError` naming the problem and the fix."""
    import cv2

    path = Path(path)
    _check_file(path)
    container = sniff_container(path)
    with _capture(path) as cap:
        info = VideoInfo(
            width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            fps=max(float(cap.get(cv2.CAP_PROP_FPS)), 0.0), header_frames=max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0),
            codec=_fourcc(cap.get(cv2.CAP_PROP_FOURCC)), rotation=int(cap.get(cv2.CAP_PROP_ORIENTATION_META)) % 360,
            container=container or "unknown")
    if info.width * info.height > max_pixels:
        raise _too_large(path, info.width, info.height, max_pixels)
    return info


def bgr_to_rgb(frame: np.ndarray) -> np.ndarray:
    """An RGB view of an OpenCV frame (BGR, BGRA or single-channel; no copy)."""
    if frame.ndim == 2 or frame.shape[2] == 1:
        return frame
    return frame[:, :, 2::-1]


def sniff_container(path: str | os.PathLike) -> str | None:
    """The container format named by the file's first bytes (``"MP4/MOV"``, ``"AVI"``, ...), or None."""
    with open(path, "rb") as f:
        head = f.read(189)
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "AVI"
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        return "MP4/MOV"
    for magic, name in ((b"\x1a\x45\xdf\xa3", "Matroska/WebM"), (b"\x00\x00\x01\xba", "MPEG-PS"),
                        (b"FLV", "FLV"), (b"\x30\x26\xb2\x75", "ASF/WMV"), (b"OggS", "Ogg")):
        if head.startswith(magic):
            return name
    if len(head) == 189 and head[0] == head[188] == 0x47:
        return "MPEG-TS"
    return None


@contextmanager
def _capture(path: Path) -> Iterator[object]:
    """An opened FFmpeg ``VideoCapture`` of ``path`` (released on exit), or the VideoError saying why not."""
    import cv2

    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # open failures are reported by us
    try:
        cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    finally:
        cv2.utils.logging.setLogLevel(level)
    if not cap.isOpened():
        raise _open_error(path)
    try:
        yield cap
    finally:
        cap.release()


def _decode_pass(cap: object, wanted: set[int], collector: _CropCollector,
                 stop_after: int | None) -> tuple[int, float]:
    """grab() frames in order, retrieve() those in ``wanted`` into ``collector``; return (frames, last time ms)."""
    import cv2

    stats = collector.stats
    stats.passes += 1
    index, last_ms = 0, 0.0
    while stop_after is None or index <= stop_after:
        if not cap.grab():
            break
        stats.grabbed += 1
        last_ms = cap.get(cv2.CAP_PROP_POS_MSEC)
        if index in wanted:
            ok, frame = cap.retrieve()
            if ok and frame is not None and frame.size:
                collector.add(index, frame)
        index += 1
    return index, last_ms


def _check_complete(path: Path, info: VideoInfo, count: int, last_ms: float, allow_partial: bool,
                    notes: list[str]) -> None:
    """Raise (or note, with ``allow_partial``) when the stream ended well before its header says."""
    short_count = count < MIN_DECODED_FRACTION * info.header_frames
    duration = info.header_seconds
    short_time = duration is None or last_ms / 1000.0 < MIN_DECODED_FRACTION * duration
    if not (short_count and short_time):
        return  # an estimated or variable-rate frame count, not a truncation
    where = f" (decoding stopped at {last_ms / 1000:.2f} s of {duration:.2f} s)" if duration else ""
    if not allow_partial:
        raise VideoError("truncated", path, f"only {count} of the {info.header_frames} frames its header announces "
                         f"could be decoded{where}: the file is truncated or corrupt. Re-download or re-encode it, "
                         f"or pass --allow-partial to predict on the {count} decodable frames")
    notes.append(f"partial video: {count} of {info.header_frames} frames decodable{where}; "
                 "the clip covers only those")


def _content_notes(info: VideoInfo, count: int, size: tuple[int, int], gray: bool, spec: PreprocessSpec) -> list[str]:
    """Warnings about inputs that decode fine but deserve the user's attention."""
    notes = []
    height, width = size
    if info.rotation:
        notes.append(f"rotated {info.rotation}° for display, as its container metadata asks")
    if gray:
        notes.append("grayscale video: the model sees three equal colour channels")
    if count < spec.frames:
        notes.append(f"short video: {count} frames for a {spec.frames}-frame clip; frames repeat in order")
    upscale = spec.short_side / min(height, width)
    if upscale > UPSCALE_WARNING:
        notes.append(f"tiny frames ({width}×{height}): enlarged {upscale:.1f}× to {spec.short_side} px, "
                     "predictions on so little detail are unreliable")
    coverage = spec.crop / (max(height, width) * spec.short_side / min(height, width))
    if coverage < CROP_COVERAGE_WARNING:
        notes.append(f"aspect ratio {max(height, width) / min(height, width):.1f}:1: the centre crop keeps only "
                     f"{coverage:.0%} of the frame's {'width' if width > height else 'height'}")
    return notes


def _is_gray(frame: np.ndarray) -> bool:
    """True if the B, G and R planes of a frame are equal (checked on a subsample of rows)."""
    rows = frame[:: max(1, frame.shape[0] // 16)]
    return bool(np.array_equal(rows[..., 0], rows[..., 1]) and np.array_equal(rows[..., 1], rows[..., 2]))


def _fourcc(value: float) -> str:
    """Printable FourCC of a ``CAP_PROP_FOURCC`` value."""
    raw = int(value).to_bytes(4, "little", signed=False) if value > 0 else b""
    return raw.decode("ascii", "replace").strip("\x00 ") or "unknown"


def _check_file(path: Path) -> None:
    """Raise for a path that is not a readable, non-empty regular file."""
    if not path.exists():
        raise VideoError("missing", path, "no such file; check the path (a directory argument lists its videos)")
    if not path.is_file():
        raise VideoError("unreadable", path, "not a regular file; pass a video file or a directory of videos")
    if not os.access(path, os.R_OK):
        raise VideoError("unreadable", path, "permission denied; make the file readable (chmod +r)")
    if path.stat().st_size == 0:
        raise VideoError("empty-file", path, "the file is empty (0 bytes): the copy or download failed; fetch it again")


def _open_error(path: Path) -> VideoError:
    """Why FFmpeg could not open ``path``, from what its bytes say."""
    container = sniff_container(path)
    if container is None:
        with open(path, "rb") as f:
            head = f.read(12)
        return VideoError("not-a-video", path, f"not a video: its content (starting {head!r}) is no container "
                          "FFmpeg recognises; pass a video file (mp4, mov, avi, mkv, webm, ...)")
    boxes = _mp4_top_boxes(path) if container == "MP4/MOV" else {}
    if container == "MP4/MOV" and b"moov" not in boxes:
        return VideoError("truncated", path, "the MP4/MOV file has no 'moov' index box: it is truncated (an "
                          "interrupted download or recording that never wrote its index); download or record "
                          "it again")
    if container == "MP4/MOV" and not boxes.get(b"mdat"):
        return VideoError("no-frames", path, "the MP4/MOV file holds no media data ('mdat' is empty): it contains "
                          "no video frames; record or export the video again")
    codec = _avi_codec(path) if container == "AVI" else None
    if codec:
        return VideoError("unsupported-codec", path, f"OpenCV's FFmpeg cannot open this {container} file's video "
                          f"stream (codec '{codec}'): the codec is unsupported or the header damaged; "
                          + REENCODE_HINT)
    return VideoError("unsupported-codec", path, f"OpenCV's FFmpeg recognised a {container} file but could not "
                      "open a video stream in it: the header is damaged, the codec unsupported or there is no "
                      "video track; " + REENCODE_HINT)


def _no_frames(path: Path, info: VideoInfo) -> VideoError:
    """The error for a stream that yielded no frame at all."""
    if info.header_frames == 0:
        return VideoError("no-frames", path, f"the {info.container} file contains no video frames (its header "
                          "announces 0); record or export the video again")
    return VideoError("undecodable", path, f"none of the {info.header_frames} frames (codec '{info.codec}') could be "
                      "decoded: the stream is corrupt or its codec unsupported by this FFmpeg build; " + REENCODE_HINT)


def _too_large(path: Path, width: int, height: int, max_pixels: int) -> VideoError:
    return VideoError("too-large", path, f"frames are {width}×{height} ({width * height / 1e6:.0f} Mpx), above the "
                      f"{max_pixels / 1e6:.0f} Mpx this tool decodes; downscale first, e.g. "
                      "`ffmpeg -i IN -vf scale=-2:1080 OUT.mp4`")


def _mp4_top_boxes(path: Path) -> dict[bytes, int]:
    """Payload bytes per top-level ISO-BMFF box type (summed), walking box headers only."""
    size = path.stat().st_size
    boxes: dict[bytes, int] = {}
    with open(path, "rb") as f:
        pos = 0
        while pos + 8 <= size:
            f.seek(pos)
            header = f.read(16)
            box_size, box_type, header_size = int.from_bytes(header[:4], "big"), header[4:8], 8
            if box_size == 1 and len(header) == 16:
                box_size, header_size = int.from_bytes(header[8:16], "big"), 16
            elif box_size == 0:
                box_size = size - pos
            if box_size < header_size:
                break
            boxes[box_type] = boxes.get(box_type, 0) + min(box_size, size - pos) - header_size
            pos += box_size
    return boxes


def _avi_codec(path: Path) -> str | None:
    """The video FourCC of an AVI (``strf`` BITMAPINFOHEADER compression, else ``strh`` handler)."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    strh = head.find(b"strh")
    while strh >= 0 and head[strh + 8:strh + 12] != b"vids":
        strh = head.find(b"strh", strh + 4)
    if strh < 0:
        return None
    strf = head.find(b"strf", strh)
    raw = head[strf + 24:strf + 28] if strf >= 0 else head[strh + 12:strh + 16]
    return raw.decode("ascii", "replace").strip("\x00 ") or None
