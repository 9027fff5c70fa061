"""Client-owned shared memory, seen from the server: map segments by name and view rows with signed strides.

Pixels never cross the socket; a 4K float frame is 130 MB, so the server maps the client's segment once per
connection and reads/writes it in place through numpy views.
"""

from __future__ import annotations

import mmap
import os
import re
import sys

import cv2
import numpy as np

from .frames_wire import Code, PixelFormat, ProtocolError

_NAME = re.compile(r"^/?[A-Za-z0-9._-]{1,200}$")


def _open_posix(name: str) -> mmap.mmap:
    import _posixshmem  # the module behind multiprocessing.shared_memory, without its resource tracker

    fd = _posixshmem.shm_open("/" + name.lstrip("/"), os.O_RDWR, mode=0o600)
    try:
        size = os.fstat(fd).st_size
        if size <= 0:
            raise ProtocolError(Code.SHM, f"shared memory '{name}' is empty")
        return mmap.mmap(fd, size)
    finally:
        os.close(fd)


class Segments:
    """The segments one connection uses, mapped on first use and kept until ``close``."""

    def __init__(self) -> None:
        self._maps: dict[str, mmap.mmap] = {}

    def get(self, name: str, need: int) -> mmap.mmap:
        """The mapping of ``name``, at least ``need`` bytes long (re-mapped if the client resized it)."""
        if not _NAME.match(name):
            raise ProtocolError(Code.SHM, f"bad shared memory name '{name[:60]}' (allowed: A-Z a-z 0-9 . _ -)")
        key = name.lstrip("/")
        mm = self._maps.get(key)
        if mm is not None and len(mm) < need and sys.platform != "win32":
            self._drop(key)
            mm = None
        if mm is None:
            try:
                if sys.platform == "win32":
                    mm = mmap.mmap(-1, need, tagname=key)
                else:
                    mm = _open_posix(key)
            except FileNotFoundError:
                raise ProtocolError(Code.SHM, f"shared memory '{name}' does not exist") from None
            except PermissionError:
                raise ProtocolError(Code.SHM, f"shared memory '{name}': permission denied") from None
            except (OSError, ValueError) as exc:
                raise ProtocolError(Code.SHM, f"shared memory '{name}' cannot be mapped: {exc}") from None
            self._maps[key] = mm
        if len(mm) < need:
            raise ProtocolError(Code.BAD_GEOMETRY, f"a row lies outside shared memory '{name}' "
                                                    f"({need} bytes needed, segment has {len(mm)})")
        return mm

    def _drop(self, key: str) -> None:
        mm = self._maps.pop(key, None)
        if mm is not None:
            try:
                mm.close()
            except BufferError:  # a view is still alive somewhere; the GC will unmap it
                pass

    def close(self) -> None:
        for key in list(self._maps):
            self._drop(key)


def extent(offset: int, stride: int, width: int, height: int, fmt: PixelFormat) -> tuple[int, int]:
    """(lowest byte, one past the highest byte) a frame touches; BAD_GEOMETRY when the layout is invalid."""
    row = width * fmt.pixel_bytes
    if abs(stride) < row:
        raise ProtocolError(Code.BAD_GEOMETRY, f"|stride| {abs(stride)} is less than a row ({row} bytes)")
    if offset % fmt.sample_bytes or stride % fmt.sample_bytes:
        raise ProtocolError(Code.BAD_GEOMETRY, f"offset and stride must be multiples of {fmt.sample_bytes}")
    last = offset + (height - 1) * stride
    lo, hi = min(offset, last), max(offset, last) + row
    if lo < 0:
        raise ProtocolError(Code.BAD_GEOMETRY, f"rows start before the segment (offset {offset}, stride {stride})")
    return lo, hi


def view(mm: mmap.mmap, offset: int, stride: int, width: int, height: int, fmt: PixelFormat) -> np.ndarray:
    """HxWxC numpy view of a frame in picture order (row 0 = top), whatever the sign of the stride."""
    lo, _ = extent(offset, stride, width, height, fmt)
    itemsize = fmt.sample_bytes
    arr = np.ndarray((height, width, fmt.channels), dtype=np.dtype(fmt.dtype), buffer=mm, offset=lo,
                     strides=(abs(stride), fmt.pixel_bytes, itemsize))
    return arr[::-1] if stride < 0 else arr


def to_float(pixels: np.ndarray) -> np.ndarray:
    """Engine input: float32 views pass through untouched (the engine copies once anyway); u16 is scaled."""
    if pixels.dtype == np.float32:
        return pixels
    return np.multiply(pixels, np.float32(1.0 / 65535.0), dtype=np.float32)


def _interleaved(rgb: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """HxWxC C-contiguous float32. The engine's result is usually planar in memory (a CHW buffer seen as HWC);
    cv2.merge interleaves it several times faster than a numpy strided copy."""
    if rgb.flags.c_contiguous:
        if out is None:
            return rgb
        out[...] = rgb
        return out
    planes = [rgb[..., c] for c in range(rgb.shape[2])]
    if not all(p.flags.c_contiguous for p in planes):
        planes = [np.ascontiguousarray(p) for p in planes]
    return cv2.merge(planes, dst=out) if out is not None else cv2.merge(planes)


def store(dst: np.ndarray, rgb: np.ndarray) -> None:
    """Write engine output (float32 0..1) into the client's view, rounding to nearest for u16."""
    if dst.dtype == np.float32:
        if dst.flags.c_contiguous:
            written = _interleaved(rgb, dst)
            if np.shares_memory(written, dst):
                return
            dst[...] = written
        else:  # padded or bottom-up rows: interleave, then one strided copy
            dst[...] = _interleaved(rgb)
        return
    merged = _interleaved(rgb)
    merged = np.multiply(merged, np.float32(65535.0), out=merged if merged is not rgb else None)
    np.rint(merged, out=merged)
    dst[...] = merged
