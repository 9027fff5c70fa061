"""Frame protocol server: hosts (an OFX plugin in C, scripts) send frames through shared memory, the server
runs them through the warm Enhancer and writes the result back. Protocol: docs/frame-protocol.md.

Start it standalone::

    python -m vdiff_ofx.server.frames [--socket PATH | --port N] [--provider cuda,cpu]

or from another server (meant for ``vdiff serve``) in a background thread::

    from vdiff_ofx.server.frames import start_frames_thread
    handle = start_frames_thread(None, backend)   # None: the default Unix socket (TCP where AF_UNIX is missing)
    print(handle.address)                         # 'unix:/run/user/1000/vdiff/frames.sock'
    ...
    handle.stop()                                 # closes the listener and every connection, joins the threads

``serve_frames(path_or_port, stop_event)`` is the blocking form. One thread per connection; a client that sends
garbage or disconnects mid-frame only loses its own connection.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..analysis.cuts import within_shot
from ..engine.enhancer import Enhancer
from ..engine.models import ModelSpec, registry
from ..engine.providers import Backend
from ..errors import VdiffError
from . import frames_shm as shm
from .frames_auth import load_or_create_token, remove_address, token_matches, write_address
from .frames_wire import (
    FATAL,
    FORMATS,
    HEADER,
    HELLO_REQ,
    HELLO_RESP,
    MAGIC,
    MAX_PAYLOAD,
    MAX_SESSIONS,
    MAX_SIDE,
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
    ProtocolError,
    Reader,
    pack_error,
    pack_message,
    pack_str,
    recv_exact,
)

log = logging.getLogger(__name__)

IDLE_POLL_S = 0.5      # how often a waiting connection checks the stop flag
MESSAGE_TIMEOUT_S = 30  # a message whose header arrived must complete within this


def default_socket_path() -> Path:
    """$VDIFF_FRAMES_SOCKET, else $XDG_RUNTIME_DIR/vdiff/frames.sock, else /tmp/vdiff-<uid>/frames.sock."""
    if os.environ.get("VDIFF_FRAMES_SOCKET"):
        return Path(os.environ["VDIFF_FRAMES_SOCKET"])
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / "vdiff" / "frames.sock"
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"vdiff-{uid}" / "frames.sock"


def _bind(path_or_port: str | os.PathLike | int | None) -> tuple[socket.socket, str, Path | None]:
    """Listening socket, its address string for frames.addr, and the socket file to remove at the end."""
    if isinstance(path_or_port, int) or not hasattr(socket, "AF_UNIX"):
        port = path_or_port if isinstance(path_or_port, int) else 0
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(16)
        return sock, f"tcp:127.0.0.1:{sock.getsockname()[1]}", None
    path = Path(path_or_port) if path_or_port is not None else default_socket_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.exists():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except OSError:  # stale socket file from a crashed server
            path.unlink()
        else:
            raise VdiffError(f"a frame server is already listening on {path}")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # the socket file is created 0600
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    sock.listen(16)
    return sock, f"unix:{path}", path


@dataclass
class _Session:
    enhancer: Enhancer


@dataclass
class _Connection:
    sock: socket.socket
    token: str
    backend: Backend | None
    stop: threading.Event
    authed: bool = False
    sessions: dict[int, _Session] = field(default_factory=dict)
    next_session: int = 1
    segments: shm.Segments = field(default_factory=shm.Segments)


class FrameServer:
    """Listens on one address and serves each connection in its own thread until ``stop`` is set."""

    def __init__(self, path_or_port: str | os.PathLike | int | None = None, backend: Backend | None = None,
                 token: str | None = None, publish: bool = True) -> None:
        self.backend = backend
        self.token = token or load_or_create_token()
        self._sock, self.address, self._path = _bind(path_or_port)
        self._sock.settimeout(IDLE_POLL_S)
        self._publish = publish
        self._threads: list[threading.Thread] = []
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        if publish:
            write_address(self.address)

    def serve(self, stop: threading.Event) -> None:
        """Accept until ``stop`` is set, then close every connection and clean up the socket file."""
        log.info("frame server listening on %s", self.address)
        try:
            while not stop.is_set():
                try:
                    conn, _ = self._sock.accept()
                except TimeoutError:
                    continue
                except OSError:
                    if stop.is_set():
                        break
                    raise
                t = threading.Thread(target=self._handle, args=(conn, stop), daemon=True, name="vdiff-frames")
                with self._lock:
                    self._conns.add(conn)
                    self._threads = [x for x in self._threads if x.is_alive()] + [t]
                t.start()
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        self._sock.close()
        with self._lock:
            conns, threads = list(self._conns), list(self._threads)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in threads:
            t.join(timeout=5)
        if self._path is not None:
            try:
                self._path.unlink()
            except OSError:
                pass
        if self._publish:
            remove_address(self.address)

    def _handle(self, sock: socket.socket, stop: threading.Event) -> None:
        conn = _Connection(sock, self.token, self.backend, stop)
        try:
            _serve_connection(conn)
        except (ConnectionError, OSError) as exc:
            log.info("frame client went away: %s", exc)
        except Exception:  # never let one client's problem take the server down
            log.exception("frame connection failed")
        finally:
            conn.sessions.clear()
            conn.segments.close()
            try:
                sock.close()
            except OSError:
                pass
            with self._lock:
                self._conns.discard(sock)


def _read_message(conn: _Connection) -> tuple[int, int, bytes] | None:
    """(op, id, payload), or None when the peer closed cleanly between messages or the server stops."""
    sock = conn.sock
    sock.settimeout(IDLE_POLL_S)
    first = b""
    while not first:
        if conn.stop.is_set():
            return None
        try:
            first = sock.recv(HEADER.size)
        except TimeoutError:
            continue
        if not first:
            return None
    sock.settimeout(MESSAGE_TIMEOUT_S)
    raw = first + (recv_exact(sock, HEADER.size - len(first)) if len(first) < HEADER.size else b"")
    magic, version, op, request_id, length = HEADER.unpack(raw)
    if magic != MAGIC:
        raise ProtocolError(Code.BAD_MAGIC, "not a vdiff frame protocol message (bad magic)")
    if version != VERSION:
        raise ProtocolError(Code.BAD_VERSION, f"protocol version {version} is not supported (server speaks {VERSION})")
    if length > MAX_PAYLOAD:
        raise ProtocolError(Code.TOO_LARGE, f"payload of {length} bytes exceeds {MAX_PAYLOAD}")
    return op, request_id, recv_exact(sock, length) if length else b""


def _serve_connection(conn: _Connection) -> None:
    while True:
        request_id = 0
        try:
            msg = _read_message(conn)
            if msg is None:
                return
            op, request_id, payload = msg
            if not conn.authed and op != Op.HELLO:
                raise ProtocolError(Code.NOT_AUTHENTICATED, "the first request must be HELLO")
            handler = _HANDLERS.get(op)
            if handler is None:
                raise ProtocolError(Code.UNKNOWN_OP, f"unknown opcode 0x{op:04x}")
            reply = handler(conn, Reader(payload))
            conn.sock.sendall(pack_message(op | REPLY, request_id, reply))
            if op == Op.BYE:
                return
        except ProtocolError as exc:
            conn.sock.sendall(pack_error(request_id, exc.code, str(exc)))
            if exc.code in FATAL:
                return


def _hello(conn: _Connection, r: Reader) -> bytes:
    _client_version, _flags = r.take(HELLO_REQ)
    token = r.string()
    client = r.string()
    r.end()
    if not token_matches(token, conn.token):
        raise ProtocolError(Code.BAD_TOKEN, "wrong token (read it from the vdiff config folder's 'token' file)")
    conn.authed = True
    log.info("frame client connected: %s", client or "unnamed")
    return HELLO_RESP.pack(VERSION, 0, MAX_PAYLOAD) + pack_str(__version__)


def _model_record(spec: ModelSpec) -> bytes:
    s = spec.strength
    rec = MODEL_REC.pack(spec.scale, spec.temporal_window, spec.size_multiple, 1 if s else 0, 0,
                         s.min if s else 0.0, s.max if s else 0.0, s.default if s else 0.0)
    return rec + pack_str(spec.name) + pack_str(spec.task) + pack_str(spec.description[:2000])


def _list_models(conn: _Connection, r: Reader) -> bytes:
    r.end()
    specs = list(registry().values())
    body = b"".join(_model_record(s) for s in specs)
    if len(body) + 4 > MAX_PAYLOAD:
        raise ProtocolError(Code.INTERNAL, "too many models to list in one response")
    return U32.pack(len(specs)) + body


def _open(conn: _Connection, r: Reader) -> bytes:
    strength, tile, _flags = r.take(OPEN_REQ)
    name = r.string()
    r.end()
    if len(conn.sessions) >= MAX_SESSIONS:
        raise ProtocolError(Code.BAD_REQUEST, f"at most {MAX_SESSIONS} sessions per connection; CLOSE one first")
    spec = registry().get(name)
    if spec is None:
        raise ProtocolError(Code.UNKNOWN_MODEL, f"unknown model '{name}'")
    try:
        spec.verify()
        enhancer = Enhancer(spec, conn.backend, tile=tile or None,
                            strength=None if math.isnan(strength) else float(strength))
    except VdiffError as exc:
        code = Code.BAD_REQUEST if "strength" in str(exc) or "tile" in str(exc) else Code.MODEL_ERROR
        raise ProtocolError(code, str(exc)) from None
    sid = conn.next_session
    conn.next_session += 1
    conn.sessions[sid] = _Session(enhancer)
    return OPEN_RESP.pack(sid, spec.scale, spec.temporal_window, 0) + pack_str(enhancer.session.provider)


def _process(conn: _Connection, r: Reader) -> bytes:
    t0 = time.perf_counter()
    sid, width, height, fcode, count, in_stride, out_stride, out_offset = r.take(PROCESS_REQ)
    if not 1 <= count <= 64:
        raise ProtocolError(Code.BAD_GEOMETRY, f"frame count {count} outside 1..64")
    offsets = r.u64s(count)
    in_name, out_name = r.string(), r.string()
    r.end()
    session = conn.sessions.get(sid)
    if session is None:
        raise ProtocolError(Code.BAD_SESSION, f"session {sid} is not open on this connection")
    fmt = FORMATS.get(fcode)
    if fmt is None:
        raise ProtocolError(Code.BAD_FORMAT, f"unknown pixel format {fcode} (1-4: RGBA_F32 RGB_F32 RGBA_U16 RGB_U16)")
    enh = session.enhancer
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise ProtocolError(Code.BAD_GEOMETRY, f"frame size {width}x{height} outside 1..{MAX_SIDE}")
    if count != enh.window:
        raise ProtocolError(Code.BAD_GEOMETRY, f"model '{enh.spec.name}' needs {enh.window} frames, got {count}")
    ow, oh = width * enh.scale, height * enh.scale
    in_need = max(shm.extent(o, in_stride, width, height, fmt)[1] for o in offsets)
    out_need = shm.extent(out_offset, out_stride, ow, oh, fmt)[1]
    if out_name.lstrip("/") == in_name.lstrip("/"):
        src = dst = conn.segments.get(in_name, max(in_need, out_need))
    else:
        src, dst = conn.segments.get(in_name, in_need), conn.segments.get(out_name, out_need)
    frames = [shm.to_float(shm.view(src, o, in_stride, width, height, fmt)) for o in offsets]
    if len(frames) > 1:  # the host hands over neighbours blind to shot cuts: a window stops at one (analysis.cuts)
        frames = [frames[i] for i in within_shot([f[..., :3] for f in frames])]
    t_infer = time.perf_counter()
    try:
        result = enh.process(frames)
    except MemoryError:
        raise ProtocolError(Code.MODEL_ERROR, "out of memory; OPEN the model with a smaller tile") from None
    except VdiffError as exc:
        raise ProtocolError(Code.MODEL_ERROR, str(exc)) from None
    except Exception as exc:  # onnxruntime raises its own types for device failures
        log.exception("inference failed")
        raise ProtocolError(Code.MODEL_ERROR, f"inference failed: {str(exc).splitlines()[0] if str(exc) else exc}") \
            from None
    infer_us = min(int((time.perf_counter() - t_infer) * 1e6), 0xFFFFFFFF)
    del frames
    out = shm.view(dst, out_offset, out_stride, ow, oh, fmt)
    shm.store(out, result[..., :fmt.channels])
    del out
    us = min(int((time.perf_counter() - t0) * 1e6), 0xFFFFFFFF)
    return PROCESS_RESP.pack(ow, oh, us, infer_us)


def _close(conn: _Connection, r: Reader) -> bytes:
    (sid,) = r.take(U32)
    r.end()
    if conn.sessions.pop(sid, None) is None:
        raise ProtocolError(Code.BAD_SESSION, f"session {sid} is not open on this connection")
    return b""


def _bye(conn: _Connection, r: Reader) -> bytes:
    r.end()
    return b""


_HANDLERS: dict[int, Callable[[_Connection, Reader], bytes]] = {
    Op.HELLO: _hello, Op.LIST_MODELS: _list_models, Op.OPEN: _open, Op.PROCESS: _process,
    Op.CLOSE: _close, Op.BYE: _bye,
}


def serve_frames(path_or_port: str | os.PathLike | int | None = None, stop_event: threading.Event | None = None,
                 backend: Backend | None = None, ready: Callable[[str], None] | None = None) -> None:
    """Serve until ``stop_event`` is set (forever when None). ``ready(address)`` is called once listening."""
    stop = stop_event or threading.Event()
    server = FrameServer(path_or_port, backend)
    if ready:
        ready(server.address)
    server.serve(stop)


@dataclass
class FramesHandle:
    """A frame server running in a background thread."""

    address: str
    thread: threading.Thread
    stop_event: threading.Event

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout)


def start_frames_thread(path_or_port: str | os.PathLike | int | None = None,
                        backend: Backend | None = None) -> FramesHandle:
    """Start the frame server in a daemon thread and return once it listens (errors are raised here)."""
    stop = threading.Event()
    server = FrameServer(path_or_port, backend)
    thread = threading.Thread(target=server.serve, args=(stop,), daemon=True, name="vdiff-frames-accept")
    thread.start()
    return FramesHandle(server.address, thread, stop)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vdiff_ofx.server.frames", description=__doc__.splitlines()[0])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--socket", help="Unix socket path (default: see docs/frame-protocol.md)")
    g.add_argument("--port", type=int, help="listen on TCP 127.0.0.1:PORT instead (0: any free port)")
    p.add_argument("--provider", help="comma list: trt,cuda,coreml,dml,cpu")
    p.add_argument("--device", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="vdiff-frames: %(message)s")
    backend = Backend(providers=args.provider.split(",") if args.provider else None, device_id=args.device,
                      threads=args.threads)
    stop = threading.Event()
    import signal

    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda *_: stop.set())
    try:
        serve_frames(args.port if args.port is not None else args.socket, stop, backend,
                     ready=lambda a: print(f"vdiff frame server on {a}", file=sys.stderr, flush=True))
    except VdiffError as exc:
        print(f"vdiff: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
