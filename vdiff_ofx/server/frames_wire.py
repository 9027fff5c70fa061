"""Byte layouts of the frame protocol (docs/frame-protocol.md), shared by the server and the Python client so
the two can never disagree about a field."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from enum import IntEnum

MAGIC = b"VDFP"
VERSION = 1
MAX_PAYLOAD = 65536
MAX_SIDE = 16384
MAX_SESSIONS = 16

HEADER = struct.Struct("<4sHHII")
HELLO_REQ = struct.Struct("<HH")
HELLO_RESP = struct.Struct("<HHI")
MODEL_REC = struct.Struct("<HHHBBfff")
OPEN_REQ = struct.Struct("<fII")
OPEN_RESP = struct.Struct("<IHHI")
PROCESS_REQ = struct.Struct("<IIIHHqqQ")
PROCESS_RESP = struct.Struct("<IIII")
U32 = struct.Struct("<I")


class Op(IntEnum):
    HELLO = 0x0001
    LIST_MODELS = 0x0002
    OPEN = 0x0003
    PROCESS = 0x0004
    CLOSE = 0x0005
    BYE = 0x0006
    ERROR = 0xFFFF


REPLY = 0x8000


class Code(IntEnum):
    BAD_MAGIC = 1
    BAD_VERSION = 2
    NOT_AUTHENTICATED = 3
    BAD_TOKEN = 4
    TOO_LARGE = 5
    UNKNOWN_OP = 6
    BAD_REQUEST = 7
    UNKNOWN_MODEL = 8
    BAD_SESSION = 9
    BAD_FORMAT = 10
    BAD_GEOMETRY = 11
    SHM = 12
    MODEL_ERROR = 13
    INTERNAL = 14


FATAL = {Code.BAD_MAGIC, Code.BAD_VERSION, Code.NOT_AUTHENTICATED, Code.BAD_TOKEN, Code.TOO_LARGE}


@dataclass(frozen=True)
class PixelFormat:
    code: int
    name: str
    channels: int
    dtype: str  # numpy dtype string, little-endian

    @property
    def sample_bytes(self) -> int:
        return 4 if self.dtype == "<f4" else 2

    @property
    def pixel_bytes(self) -> int:
        return self.channels * self.sample_bytes


FORMATS = {f.code: f for f in (PixelFormat(1, "RGBA_F32", 4, "<f4"), PixelFormat(2, "RGB_F32", 3, "<f4"),
                               PixelFormat(3, "RGBA_U16", 4, "<u2"), PixelFormat(4, "RGB_U16", 3, "<u2"))}
FORMAT_BY_NAME = {f.name: f for f in FORMATS.values()}


class ProtocolError(Exception):
    """A request that breaks the protocol; ``code`` goes back to the client in an ERROR response."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = Code(code)


class Reader:
    """Sequential little-endian reads from a payload; a short payload is a BAD_REQUEST, not an IndexError."""

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def take(self, fmt: struct.Struct) -> tuple:
        if self.pos + fmt.size > len(self.data):
            raise ProtocolError(Code.BAD_REQUEST, f"payload too short ({len(self.data)} bytes)")
        values = fmt.unpack_from(self.data, self.pos)
        self.pos += fmt.size
        return values

    def string(self) -> str:
        (n,) = self.take(struct.Struct("<H"))
        if self.pos + n > len(self.data):
            raise ProtocolError(Code.BAD_REQUEST, "string runs past the end of the payload")
        raw = bytes(self.data[self.pos:self.pos + n])
        self.pos += n
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(Code.BAD_REQUEST, "string is not valid UTF-8") from None

    def u64s(self, n: int) -> list[int]:
        return list(self.take(struct.Struct(f"<{n}Q"))) if n else []

    def end(self) -> None:
        if self.pos != len(self.data):
            raise ProtocolError(Code.BAD_REQUEST, f"{len(self.data) - self.pos} unexpected bytes after the payload")


def pack_str(text: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise ValueError("string longer than 65535 bytes")
    return struct.pack("<H", len(raw)) + raw


def one_line(message: str, limit: int = 1000) -> str:
    """Error text as the doc promises: one line, at most ``limit`` bytes of UTF-8."""
    line = " ".join(str(message).split()) or "error"
    raw = line.encode("utf-8")[:limit]
    return raw.decode("utf-8", errors="ignore")


def pack_message(op: int, request_id: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(MAGIC, VERSION, op, request_id & 0xFFFFFFFF, len(payload)) + payload


def pack_error(request_id: int, code: Code, message: str) -> bytes:
    return pack_message(Op.ERROR, request_id, U32.pack(int(code)) + pack_str(one_line(message)))


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Read exactly ``n`` bytes; ConnectionError if the peer closes first (a truncated message)."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise ConnectionError(f"connection closed after {got} of {n} bytes")
        got += k
    return bytes(buf)
