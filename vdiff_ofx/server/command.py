"""`vdiff serve`: start the warm job server, or --status / --stop the running one."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import logging.handlers
import os
import signal
import socket
import time
import urllib.error
import urllib.request
from typing import Any

from ..errors import VdiffError
from ..paths import user_dir
from .auth import load_or_create_token
from .discovery import DEFAULT_PORT, pid_alive, read_info, remove_info, server_file, write_info

log = logging.getLogger("vdiff_ofx.server")


def register(subparsers: argparse._SubParsersAction, add_backend_args) -> None:
    p = subparsers.add_parser("serve", help="run the local job server (used by the Resolve scripts)")
    p.add_argument("--port", type=int, default=int(os.environ.get("VDIFF_PORT") or DEFAULT_PORT),
                   help=f"port on 127.0.0.1 (default {DEFAULT_PORT} or VDIFF_PORT; 0: any free port)")
    p.add_argument("--workers", type=int, default=1, help="jobs run at the same time (default 1)")
    p.add_argument("--segment-frames", type=int, default=240,
                   help="frames per closed segment: a crash redoes at most this many (default 240)")
    p.add_argument("--no-frames", action="store_true",
                   help="do not also serve the frame protocol (OFX plugin, docs/frame-protocol.md)")
    p.add_argument("--frames-socket", help="frame protocol socket path (default: see docs/frame-protocol.md)")
    p.add_argument("--status", action="store_true", help="say whether the server runs (exit 0) or not (exit 1)")
    p.add_argument("--stop", action="store_true", help="stop it; a running job resumes on the next start")
    add_backend_args(p)
    p.set_defaults(fn=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    if args.status:
        return _status()
    if args.stop:
        return _stop()
    return _serve(args)


def _request(info: dict[str, Any], method: str, path: str, timeout: float = 5.0) -> Any:
    token = load_or_create_token()
    req = urllib.request.Request(info["url"] + path, method=method, data=b"" if method == "POST" else None,
                                 headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


def _status() -> int:
    info = read_info()
    if info is None:
        print("vdiff server is not running")
        return 1
    try:
        health = _request(info, "GET", "/health")
    except (OSError, ValueError) as exc:
        print(f"vdiff server pid {info['pid']} on port {info['port']} is not answering ({exc})")
        return 1
    up = int(time.time() - float(info.get("started", time.time())))
    jobs = health.get("jobs", {})
    print(f"vdiff server running: pid {info['pid']}, port {info['port']} ({info['url']}), uptime "
          f"{up // 3600}:{up // 60 % 60:02d}:{up % 60:02d}, jobs {health['jobs_running']} running, "
          f"{health['jobs_queued']} queued, {jobs.get('done', 0)} done, {jobs.get('failed', 0)} failed")
    return 0


def _stop(timeout: float = 60.0) -> int:
    info = read_info()
    if info is None:
        print("vdiff server is not running")
        return 1
    pid = int(info["pid"])
    try:
        _request(info, "POST", "/shutdown")
    except (OSError, ValueError):
        if hasattr(signal, "SIGTERM"):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and _published(pid) and time.monotonic() < deadline:
        time.sleep(0.1)  # server.json goes once jobs are saved; the process exits right after
    grace = time.monotonic() + 5.0
    while pid_alive(pid) and time.monotonic() < grace:
        time.sleep(0.1)
    if pid_alive(pid):
        raise VdiffError(f"server pid {pid} did not stop within {timeout:.0f}s")
    print(f"vdiff server pid {pid} stopped")
    return 0


def _published(pid: int) -> bool:
    """Whether server.json still names ``pid`` (without the stale-file cleanup read_info does)."""
    try:
        return int(json.loads(server_file().read_text(encoding="utf-8"))["pid"]) == pid
    except (OSError, ValueError, KeyError, TypeError):
        return False


def setup_logging(verbose: bool = False) -> str:
    """Log to the user's log folder, rotated so a server left running for months stays small."""
    path = user_dir("log") / "server.log"
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=5 << 20, backupCount=3, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("vdiff_ofx", "uvicorn"):  # uvicorn.error/.access propagate to uvicorn
        lg = logging.getLogger(name)
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG if verbose else logging.INFO)
    return str(path)


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if os.name != "nt":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1)):
            raise VdiffError(f"port {port} on 127.0.0.1 is in use; pick another with --port") from None
        raise VdiffError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ..cli import _backend
    from .app import create_app
    from .runner import Runner
    from .store import JobStore

    running = read_info()
    if running is not None:
        try:
            _request(running, "GET", "/health", timeout=2.0)
        except (OSError, ValueError):
            log.warning("server.json names pid %s, which does not answer; replacing it", running["pid"])
        else:
            raise VdiffError(f"a vdiff server is already running (pid {running['pid']}, {running['url']}); "
                             "`vdiff serve --stop` stops it")
    if args.workers < 1:
        raise VdiffError("--workers must be at least 1")
    logfile = setup_logging(getattr(args, "verbose", False))
    token = load_or_create_token()
    sock = _bind(args.port)
    port = sock.getsockname()[1]
    store = JobStore()
    runner = Runner(store, _backend(args), workers=args.workers, segment_frames=args.segment_frames)
    holder: dict[str, uvicorn.Server] = {}
    started = time.time()
    app = create_app(store, runner, token, shutdown=lambda: setattr(holder["server"], "should_exit", True),
                     started=started)
    config = uvicorn.Config(app, log_config=None, access_log=getattr(args, "verbose", False), lifespan="off",
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    holder["server"] = server

    def on_term(signum, frame):  # noqa: ARG001 - uvicorn re-raises the signal after its own graceful stop
        server.should_exit = True

    signal.signal(signal.SIGTERM, on_term)
    runner.start()
    frames = None
    if not getattr(args, "no_frames", False):
        from .frames import start_frames_thread

        try:  # one warm process for both protocols; a frame server already running elsewhere is fine
            frames = start_frames_thread(args.frames_socket, _backend(args))
            log.info("frame protocol on %s", frames.address)
        except (OSError, VdiffError) as exc:
            log.warning("frame protocol not started here: %s", exc)
    write_info(port)
    log.info("serving on http://127.0.0.1:%d (pid %d, %d worker(s), log %s)", port, os.getpid(), args.workers,
             logfile)
    print(f"vdiff server on http://127.0.0.1:{port} (pid {os.getpid()}); log {logfile}", flush=True)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        log.info("stopping: interrupting running jobs (they resume on the next start)")
        runner.stop()
        if frames is not None:
            frames.stop()
        store.close()
        remove_info()
        sock.close()
        log.info("stopped")
    return 0
