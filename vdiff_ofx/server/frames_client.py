"""Reference client for the frame protocol (stdlib + numpy): what a C host does, written out in Python.

    with FrameClient() as c:                       # reads frames.addr and the token from the config folder
        s = c.open("denoise", strength=15)
        out = c.enhance(s, [frame])                # HxWx3/4 float32 or uint16 in, same dtype out

``process`` is the low-level call that takes segment names, offsets and strides exactly as on the wire.
"""

from __future__ import annotations

import math
import os
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing import shared_memory

import numpy as np

from .frames_auth import load_or_create_token, read_address
from .frames_wire import (
    FORMAT_BY_NAME,
    HEADER,
    HELLO_REQ,
    HELLO_RESP,
    MAGIC,
    MODEL_REC,
    OPEN_REQ,
    OPEN_RESP,
    PROCESS_REQ,
    PROCESS_RESP,
    REPLY,
    U32,
    VERSION,
    Code,
    Op,
    PixelFormat,
    Reader,
    pack_message,
    pack_str,
    recv_exact,
)


class FrameError(Exception):
    """An ERROR response: ``code`` (frames_wire.Code) and the server's one-line message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{message} (code {code})")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ModelInfo:
    name: str
    task: str
    scale: int
    window: int
    size_multiple: int
    strength: tuple[float, float, float] | None  # (min, max, default)
    description: str


@dataclass(frozen=True)
class Session:
    id: int
    scale: int
    window: int
    provider: str


def connect(address: str) -> socket.socket:
    """``unix:/path`` or ``tcp:127.0.0.1:port`` -> a connected stream socket."""
    kind, _, rest = address.partition(":")
    if kind == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(rest)
    elif kind == "tcp":
        host, _, port = rest.rpartition(":")
        sock = socket.create_connection((host, int(port)))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    else:
        raise ValueError(f"bad frame server address '{address}'")
    return sock


def format_for(pixels: np.ndarray) -> PixelFormat:
    """The wire format for an HxWxC float32 / uint16 array."""
    kind = {np.dtype(np.float32): "F32", np.dtype(np.uint16): "U16"}.get(pixels.dtype)
    if kind is None or pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        raise ValueError(f"need HxWx3 or HxWx4 float32/uint16, got {pixels.dtype} {pixels.shape}")
    return FORMAT_BY_NAME[("RGBA_" if pixels.shape[2] == 4 else "RGB_") + kind]


class FrameClient:
    """One connection (HELLO on open). Not thread-safe: use one client per thread."""

    def __init__(self, address: str | None = None, token: str | None = None, name: str = "vdiff-python") -> None:
        address = address or read_address()
        if not address:
            raise ConnectionError("no frame server running (no frames.addr in the vdiff config folder)")
        self.address = address
        self.sock = connect(address)
        self._id = 0
        self._shm: dict[str, shared_memory.SharedMemory] = {}
        r = self.call(Op.HELLO, HELLO_REQ.pack(VERSION, 0) + pack_str(token or load_or_create_token())
                      + pack_str(name))
        self.server_version, _, self.max_payload = r.take(HELLO_RESP)
        self.vdiff_version = r.string()

    def call(self, op: int, payload: bytes = b"") -> Reader:
        """Send one request and return a Reader over the response payload; FrameError on ERROR."""
        self._id += 1
        self.sock.sendall(pack_message(op, self._id, payload))
        magic, _version, rop, rid, length = HEADER.unpack(recv_exact(self.sock, HEADER.size))
        body = recv_exact(self.sock, length) if length else b""
        if magic != MAGIC:
            raise ConnectionError("server answered with a bad magic")
        r = Reader(body)
        if rop == Op.ERROR:
            (code,) = r.take(U32)
            raise FrameError(code, r.string())
        if rop != op | REPLY or rid != self._id:
            raise ConnectionError(f"unexpected response op 0x{rop:04x} id {rid} to request {self._id}")
        return r

    def list_models(self) -> list[ModelInfo]:
        r = self.call(Op.LIST_MODELS)
        (n,) = r.take(U32)
        out = []
        for _ in range(n):
            scale, window, mult, has, _res, lo, hi, default = r.take(MODEL_REC)
            name, task, desc = r.string(), r.string(), r.string()
            out.append(ModelInfo(name, task, scale, window, mult, (lo, hi, default) if has else None, desc))
        return out

    def open(self, model: str, strength: float | None = None, tile: int = 0) -> Session:
        r = self.call(Op.OPEN, OPEN_REQ.pack(math.nan if strength is None else strength, tile, 0) + pack_str(model))
        sid, scale, window, _ = r.take(OPEN_RESP)
        return Session(sid, scale, window, r.string())

    def close_session(self, session: Session | int) -> None:
        self.call(Op.CLOSE, U32.pack(session.id if isinstance(session, Session) else session))

    def process(self, session: Session | int, width: int, height: int, fmt: PixelFormat | int,
                in_shm: str, in_offsets: Sequence[int], in_stride: int, out_shm: str, out_offset: int,
                out_stride: int) -> tuple[int, int, int, int]:
        """The wire-level PROCESS: (out_width, out_height, server microseconds, of which in the model)."""
        sid = session.id if isinstance(session, Session) else session
        code = fmt.code if isinstance(fmt, PixelFormat) else fmt
        payload = (PROCESS_REQ.pack(sid, width, height, code, len(in_offsets), in_stride, out_stride, out_offset)
                   + struct.pack(f"<{len(in_offsets)}Q", *in_offsets) + pack_str(in_shm) + pack_str(out_shm))
        ow, oh, us, infer_us = self.call(Op.PROCESS, payload).take(PROCESS_RESP)
        return ow, oh, us, infer_us

    def segment(self, role: str, size: int) -> shared_memory.SharedMemory:
        """A reusable segment of at least ``size`` bytes owned by this client (re-created when too small)."""
        seg = self._shm.get(role)
        if seg is None or seg.size < size:
            if seg is not None:
                seg.close()
                seg.unlink()
            seg = shared_memory.SharedMemory(name=f"vdiff-{os.getpid()}-{id(self):x}-{role}", create=True,
                                             size=size)
            self._shm[role] = seg
        return seg

    def enhance(self, session: Session, frames: Sequence[np.ndarray]) -> np.ndarray:
        """Copy ``frames`` (len == window, same shape/dtype) into shared memory, PROCESS, return the result."""
        fmt = format_for(frames[0])
        h, w, c = frames[0].shape
        frame_bytes = h * w * fmt.pixel_bytes
        seg_in = self.segment("in", frame_bytes * len(frames))
        for i, f in enumerate(frames):
            np.ndarray((h, w, c), f.dtype, buffer=seg_in.buf, offset=i * frame_bytes)[...] = f
        oh, ow = h * session.scale, w * session.scale
        seg_out = self.segment("out", oh * ow * fmt.pixel_bytes)
        self.process(session, w, h, fmt, seg_in.name, [i * frame_bytes for i in range(len(frames))],
                     w * fmt.pixel_bytes, seg_out.name, 0, ow * fmt.pixel_bytes)
        return np.ndarray((oh, ow, c), frames[0].dtype, buffer=seg_out.buf).copy()

    def close(self) -> None:
        try:
            self.call(Op.BYE)
        except (OSError, FrameError):
            pass
        self.sock.close()
        for seg in self._shm.values():
            seg.close()
            seg.unlink()
        self._shm.clear()

    def __enter__(self) -> FrameClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["Code", "FrameClient", "FrameError", "ModelInfo", "Session", "connect", "format_for"]
