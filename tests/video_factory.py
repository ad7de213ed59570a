"""Generate test videos with OpenCV's VideoWriter, and damage them on purpose: nothing is downloaded.

Writers that work in opencv-python-headless 5.0 (measured): ``MJPG`` in ``.avi`` and
``mp4v`` in ``.mp4`` (also XVID, FFV1, HFYU); there is no H.264 encoder. Both writers
round odd sizes down to even, and MJPG aborts the process on some odd widths, so
the factory only writes even sizes.
"""

from __future__ import annotations

import shutil
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

FOURCC = {".avi": "MJPG", ".mp4": "mp4v"}


def moving_pattern(index: int, height: int, width: int) -> np.ndarray:
    """Frame ``index`` of a deterministic test pattern (BGR uint8): gradients, a moving square, colour bars."""
    y, x = np.mgrid[0:height, 0:width]
    frame = np.empty((height, width, 3), np.uint8)
    frame[..., 0] = (255 * x / max(width - 1, 1)).astype(np.uint8)
    frame[..., 1] = (255 * y / max(height - 1, 1)).astype(np.uint8)
    frame[..., 2] = (index * 9) % 256
    side = max(2, min(height, width) // 4)
    top = (index * 3) % max(height - side, 1)
    left = (index * 5) % max(width - side, 1)
    frame[top:top + side, left:left + side] = (255, 255, 255)
    return frame


def write_video(path: str | Path, frames: int, size: tuple[int, int] = (96, 64), fps: float = 30.0,
                color: bool = True, pattern: Callable[[int, int, int], np.ndarray] = moving_pattern) -> Path:
    """Write ``frames`` frames of ``pattern`` at ``size`` = (width, height); the codec follows the suffix."""
    path = Path(path)
    width, height = size
    if width % 2 or height % 2:
        raise ValueError(f"write even sizes only (OpenCV's writers round odd ones down), got {size}")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*FOURCC[path.suffix]), fps, (width, height), color)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV could not open a {FOURCC[path.suffix]} writer for {path}")
    try:
        for i in range(frames):
            frame = pattern(i, height, width)
            writer.write(frame if color else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    finally:
        writer.release()
    return path


def decode_all(path: str | Path) -> list[np.ndarray]:
    """Every frame of a (small) video as RGB, the naive whole-video reference."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame[:, :, ::-1].copy())
    cap.release()
    return frames


def truncate(src: str | Path, dst: str | Path, fraction: float) -> Path:
    """Copy the first ``fraction`` of ``src``'s bytes to ``dst`` (an interrupted download)."""
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[:int(len(data) * fraction)])
    return Path(dst)


def corrupt(src: str | Path, dst: str | Path, start: float = 0.25, stop: float = 0.75, seed: int = 0) -> Path:
    """Copy ``src`` to ``dst`` with the bytes between the two fractions replaced by noise."""
    data = bytearray(Path(src).read_bytes())
    a, b = int(len(data) * start), int(len(data) * stop)
    data[a:b] = np.random.default_rng(seed).integers(0, 256, b - a, dtype=np.uint8).tobytes()
    Path(dst).write_bytes(bytes(data))
    return Path(dst)


def scramble_avi_frames(src: str | Path, dst: str | Path, seed: int = 0) -> Path:
    """Copy an AVI with every video chunk's payload replaced by noise: intact structure, no decodable frame."""
    data = bytearray(Path(src).read_bytes())
    rng = np.random.default_rng(seed)
    pos, chunks = data.find(b"movi"), 0
    while (pos := data.find(b"00dc", pos + 4)) >= 0:
        size = struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if size == 0 or pos + 8 + size > len(data):
            continue
        data[pos + 8:pos + 8 + size] = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        pos += 8 + size
        chunks += 1
    if chunks == 0:
        raise ValueError(f"{src} has no video chunks")
    Path(dst).write_bytes(bytes(data))
    return Path(dst)


def replace_avi_codec(src: str | Path, dst: str | Path, fourcc: bytes = b"ZZZZ") -> Path:
    """Copy an MJPG AVI with its codec FourCC (strh handler and strf compression) replaced."""
    data = Path(src).read_bytes()
    if data.count(b"MJPG") != 2:
        raise ValueError(f"{src} is not a single-stream MJPG AVI written by write_video")
    Path(dst).write_bytes(data.replace(b"MJPG", fourcc))
    return Path(dst)


def set_avi_frame_count(src: str | Path, dst: str | Path, frames: int) -> Path:
    """Copy an AVI with its stream header's frame count (strh dwLength) set to ``frames``: a wrong header."""
    data = bytearray(Path(src).read_bytes())
    strh = data.find(b"strh")
    if strh < 0 or data[strh + 8:strh + 12] != b"vids":
        raise ValueError(f"{src} has no video stream header")
    data[strh + 40:strh + 44] = struct.pack("<I", frames)
    Path(dst).write_bytes(bytes(data))
    return Path(dst)


def _boxes(data: bytes | bytearray, start: int, end: int) -> Iterator[tuple[bytes, int, int, int]]:
    """(type, offset, header size, size) of the ISO-BMFF boxes between two offsets."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[pos + 8:pos + 16])[0], 16
        elif size == 0:
            size = end - pos
        yield kind, pos, header, size
        pos += size


def set_mp4_rotation(src: str | Path, dst: str | Path, degrees: int) -> Path:
    """Copy an MP4 with its video track's display matrix (tkhd) set to rotate by ``degrees`` clockwise.

    This is how phones store portrait video: landscape pixels plus a rotation in the header.
    """
    one, w = 1 << 16, 1 << 30
    cos, sin = {0: (1, 0), 90: (0, 1), 180: (-1, 0), 270: (0, -1)}[degrees]
    matrix = struct.pack(">9i", cos * one, sin * one, 0, -sin * one, cos * one, 0, 0, 0, w)
    data = bytearray(Path(src).read_bytes())
    patched = 0
    for kind, pos, hdr, size in _boxes(data, 0, len(data)):
        if kind != b"moov":
            continue
        for kind2, pos2, hdr2, size2 in _boxes(data, pos + hdr, pos + size):
            if kind2 != b"trak":
                continue
            for kind3, pos3, hdr3, _ in _boxes(data, pos2 + hdr2, pos2 + size2):
                if kind3 == b"tkhd":
                    version = data[pos3 + hdr3]
                    offset = pos3 + hdr3 + 4 + (32 if version == 1 else 20) + 16
                    data[offset:offset + 36] = matrix
                    patched += 1
    if patched != 1:
        raise ValueError(f"{src}: expected one track header, found {patched}")
    Path(dst).write_bytes(bytes(data))
    return Path(dst)


def copy(src: str | Path, dst: str | Path) -> Path:
    """Copy a file (e.g. to give a video another name or suffix)."""
    return Path(shutil.copyfile(src, dst))
