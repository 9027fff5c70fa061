"""Python side of the headless OFX host (ofxhost.c), for tests and benchmarks.

The C library does everything a host does; this wrapper only turns numpy pictures (top row first, the way
PyAV and the engine hold them) into OFX-layout buffers and back:

* ``layout="bottom_up"``: the usual OFX memory order, first row in memory is the bottom of the picture,
  positive rowBytes;
* ``layout="top_down"``: first row in memory is the top, so the data pointer (bottom-left pixel) is the
  last row in memory and rowBytes is negative;
* ``pad``: extra bytes after each row (rowBytes larger than width * pixel size).
"""

from __future__ import annotations

import ctypes as C
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEPTH = {np.dtype(np.float32): 4, np.dtype(np.uint16): 2, np.dtype(np.uint8): 1}
STATUS = {0: "OK", 1: "Failed", 2: "ErrFatal", 3: "ErrUnknown", 4: "ErrMissingHostFeature", 5: "ErrUnsupported",
          8: "ErrMemory", 9: "ErrBadHandle", 11: "ErrValue", 14: "ReplyDefault"}
kOfxStatOK, kOfxStatFailed, kOfxStatReplyDefault = 0, 1, 14


@dataclass
class OfxBuffer:
    """A picture held in OFX layout: ``raw`` owns the bytes, ``ptr`` is pixel (x1, y1)."""

    raw: np.ndarray
    ptr: int
    row_bytes: int
    bounds: tuple[int, int, int, int]
    dtype: np.dtype
    channels: int

    def picture(self) -> np.ndarray:
        """Back to a top-row-first HxWxC array (a copy)."""
        x1, y1, x2, y2 = self.bounds
        w, h = x2 - x1, y2 - y1
        row = w * self.channels * self.dtype.itemsize
        out = np.empty((h, w, self.channels), self.dtype)
        base = self.raw.ctypes.data
        for y in range(h):  # y = 0 is the bottom row in OFX terms
            src = self.ptr + y * self.row_bytes
            off = src - base
            line = self.raw.view(np.uint8)[off:off + row]
            out[h - 1 - y] = line.view(self.dtype).reshape(w, self.channels)
        return out


def to_ofx(picture: np.ndarray, x1: int = 0, y1: int = 0, layout: str = "bottom_up", pad: int = 0) -> OfxBuffer:
    h, w, c = picture.shape
    dt = picture.dtype
    row = w * c * dt.itemsize
    pitch = row + pad
    raw = np.zeros(pitch * h + 16, np.uint8)
    base = raw.ctypes.data
    rows = np.ascontiguousarray(picture).view(np.uint8).reshape(h, row)
    for r in range(h):  # r = picture row, 0 = top
        mem = (h - 1 - r) if layout == "bottom_up" else r
        raw[mem * pitch: mem * pitch + row] = rows[r]
    if layout == "bottom_up":
        ptr, rb = base, pitch
    elif layout == "top_down":
        ptr, rb = base + (h - 1) * pitch, -pitch
    else:
        raise ValueError(layout)
    return OfxBuffer(raw, ptr, rb, (x1, y1, x1 + w, y1 + h), dt, c)


def blank(width: int, height: int, channels: int, dtype, x1: int = 0, y1: int = 0, layout: str = "bottom_up",
          pad: int = 0, fill: float = 0) -> OfxBuffer:
    pic = np.full((height, width, channels), fill, dtype)
    return to_ofx(pic, x1, y1, layout, pad)


class OfxHost:
    """One plugin binary, one instance. ``close()`` (or the context manager) unloads it."""

    def __init__(self, host_lib: str | Path, plugin: str | Path) -> None:
        self.lib = C.CDLL(str(host_lib))
        L = self.lib
        L.host_load.argtypes = [C.c_char_p, C.c_char_p, C.c_int]
        L.host_add_frame.argtypes = [C.c_double, C.c_void_p, C.c_int, C.c_int, C.c_int, C.c_int, C.c_int, C.c_int,
                                     C.c_int, C.c_int]
        L.host_set_clip_format.argtypes = [C.c_int, C.c_int, C.c_int, C.c_double, C.c_double, C.c_double]
        L.host_set_param_int.argtypes = [C.c_char_p, C.c_int]
        L.host_set_param_double.argtypes = [C.c_char_p, C.c_double]
        L.host_param_options.argtypes = [C.c_char_p, C.c_char_p, C.c_int]
        L.host_param_info.argtypes = [C.c_int, C.c_char_p, C.c_char_p, C.c_int]
        L.host_descriptor_string.argtypes = [C.c_char_p, C.c_int, C.c_char_p, C.c_int]
        L.host_clip_descriptor_string.argtypes = [C.c_char_p, C.c_char_p, C.c_int, C.c_char_p, C.c_int]
        L.host_descriptor_int.argtypes = [C.c_char_p, C.c_int, C.POINTER(C.c_int)]
        L.host_render.argtypes = [C.c_double, C.POINTER(C.c_int), C.c_void_p, C.c_int, C.POINTER(C.c_int), C.c_int,
                                  C.c_int, C.c_int, C.c_int]
        L.host_region_of_definition.argtypes = [C.c_double, C.POINTER(C.c_double)]
        L.host_frames_needed.argtypes = [C.c_double, C.POINTER(C.c_double)]
        L.host_is_identity.argtypes = [C.c_double, C.POINTER(C.c_int), C.c_char_p, C.c_int, C.POINTER(C.c_double)]
        L.host_clip_preferences.argtypes = [C.c_char_p, C.c_int]
        L.host_set_render_scale.argtypes = [C.c_double, C.c_double]
        L.host_messages.restype = C.c_char_p
        err = C.create_string_buffer(1024)
        if L.host_load(str(plugin).encode(), err, len(err)) != 0:
            raise RuntimeError(err.value.decode())
        self._keep: list = []
        self.loaded = True

    # ---- descriptor ----
    def descriptor(self, name: str, index: int = 0) -> str | None:
        buf = C.create_string_buffer(4096)
        return buf.value.decode() if self.lib.host_descriptor_string(name.encode(), index, buf, len(buf)) == 0 else None

    def descriptor_strings(self, name: str) -> list[str]:
        out, i = [], 0
        while (v := self.descriptor(name, i)) is not None:
            out.append(v)
            i += 1
        return out

    def descriptor_int(self, name: str) -> int | None:
        v = C.c_int()
        return v.value if self.lib.host_descriptor_int(name.encode(), 0, C.byref(v)) == 0 else None

    def clip_descriptor(self, clip: str, name: str, index: int = 0) -> str | None:
        buf = C.create_string_buffer(1024)
        ok = self.lib.host_clip_descriptor_string(clip.encode(), name.encode(), index, buf, len(buf)) == 0
        return buf.value.decode() if ok else None

    def params(self) -> dict[str, str]:
        out = {}
        for i in range(self.lib.host_param_count()):
            n, t = C.create_string_buffer(256), C.create_string_buffer(256)
            self.lib.host_param_info(i, n, t, 256)
            out[n.value.decode()] = t.value.decode()
        return out

    def options(self, param: str) -> list[str]:
        buf = C.create_string_buffer(65536)
        n = self.lib.host_param_options(param.encode(), buf, len(buf))
        return buf.value.decode().split("\n") if n > 0 else []

    # ---- instance ----
    def create_instance(self) -> int:
        return self.lib.host_create_instance()

    def set_param(self, name: str, value) -> None:
        if isinstance(value, float):
            rc = self.lib.host_set_param_double(name.encode(), value)
        else:
            rc = self.lib.host_set_param_int(name.encode(), int(value))
        if rc != 0:
            raise KeyError(f"param {name} ({rc})")

    def set_clip(self, dtype, channels: int, premult: bool = False, par: float = 1.0, first: float = 0,
                 last: float = 0) -> None:
        self.lib.host_set_clip_format(DEPTH[np.dtype(dtype)], channels, int(premult), par, first, last)

    def add_frame(self, time: float, buf: OfxBuffer, premult: bool = False) -> None:
        self._keep.append(buf)
        x1, y1, x2, y2 = buf.bounds
        self.lib.host_add_frame(float(time), buf.ptr, buf.row_bytes, x1, y1, x2, y2, DEPTH[buf.dtype], buf.channels,
                                int(premult))

    def clear_frames(self) -> None:
        self.lib.host_clear_frames()
        self._keep.clear()

    def set_render_scale(self, sx: float, sy: float) -> None:
        self.lib.host_set_render_scale(sx, sy)

    def set_abort(self, flag: bool) -> None:
        self.lib.host_set_abort(int(flag))

    def set_interactive(self, flag: bool) -> None:
        self.lib.host_set_interactive(int(flag))

    def render(self, time: float, window: tuple[int, int, int, int], out: OfxBuffer, premult: bool = False,
               draft: bool = False, interactive: bool = False, sequential: bool = False) -> int:
        win = (C.c_int * 4)(*window)
        ob = (C.c_int * 4)(*out.bounds)
        flags = int(draft) | int(interactive) << 1 | int(sequential) << 2
        return self.lib.host_render(float(time), win, out.ptr, out.row_bytes, ob, DEPTH[out.dtype], out.channels,
                                    int(premult), flags)

    def region_of_definition(self, time: float = 0) -> tuple[int, tuple[float, ...]]:
        r = (C.c_double * 4)()
        st = self.lib.host_region_of_definition(float(time), r)
        return st, tuple(r)

    def frames_needed(self, time: float) -> tuple[int, tuple[float, float]]:
        r = (C.c_double * 2)()
        st = self.lib.host_frames_needed(float(time), r)
        return st, (r[0], r[1])

    def is_identity(self, time: float, window) -> tuple[int, str, float]:
        clip = C.create_string_buffer(64)
        t = C.c_double()
        st = self.lib.host_is_identity(float(time), (C.c_int * 4)(*window), clip, 64, C.byref(t))
        return st, clip.value.decode(), t.value

    def clip_preferences(self) -> tuple[int, str]:
        buf = C.create_string_buffer(128)
        st = self.lib.host_clip_preferences(buf, 128)
        return st, buf.value.decode()

    # ---- inspection ----
    def messages(self) -> list[str]:
        return [m for m in self.lib.host_messages().decode(errors="replace").split("\n") if m]

    def clear_messages(self) -> None:
        self.lib.host_clear_messages()

    @property
    def open_images(self) -> int:
        return self.lib.host_open_images()

    @property
    def bad_prop_calls(self) -> int:
        return self.lib.host_bad_prop_calls()

    def close(self) -> None:
        if self.loaded:
            self.lib.host_unload()
            self.loaded = False

    def __enter__(self) -> "OfxHost":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
