"""Frame protocol: results equal the in-process Enhancer for every format/stride/scale/window, and one client's
garbage, wrong sizes or disconnects never disturb another's."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from multiprocessing import shared_memory
from pathlib import Path

import numpy as np
import pytest
from onnx_kit import standard_set

from vdiff_ofx.engine.enhancer import Enhancer
from vdiff_ofx.server.frames import start_frames_thread
from vdiff_ofx.server.frames_client import FrameClient, FrameError, connect
from vdiff_ofx.server.frames_wire import FORMAT_BY_NAME, HEADER, Code, Op, pack_message


def frame(h: int, w: int, c: int = 4, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([0.5 + 0.4 * np.sin(xx / 7 + k) * np.cos(yy / 5 - k) for k in range(c)], -1)
    return np.clip(img + rng.normal(0, 0.03, img.shape), 0, 1).astype(np.float32)


@pytest.fixture()
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("VDIFF_MANIFEST", str(standard_set(tmp_path / "kit")))
    monkeypatch.setenv("VDIFF_CONFIG_DIR", str(tmp_path / "config"))
    short = Path(tempfile.mkdtemp(prefix="vdf"))  # AF_UNIX paths are limited to ~104 bytes
    handle = start_frames_thread(str(short / "s.sock"))
    yield handle
    handle.stop()
    shutil.rmtree(short, ignore_errors=True)


def test_float_rgba_matches_enhancer_and_publishes_address(server):
    assert (Path(os.environ["VDIFF_CONFIG_DIR"]) / "frames.addr").read_text().strip() == server.address
    img = frame(40, 56)
    with FrameClient() as c:
        names = {m.name: m for m in c.list_models()}
        assert names["up2"].scale == 2 and names["temporal3"].window == 3 and names["sigma"].strength == (0, 50, 15)
        s = c.open("cnn")
        assert (s.scale, s.window) == (1, 1)
        out = c.enhance(s, [img])
    np.testing.assert_allclose(out, Enhancer("cnn")(img), atol=1e-6)


def test_u16_upscale_temporal_strength(server):
    with FrameClient() as c:
        img16 = (frame(24, 32, 3, 1) * 65535).round().astype(np.uint16)
        s = c.open("up2")
        out = c.enhance(s, [img16])
        ref = np.rint(Enhancer("up2")(img16.astype(np.float32) / 65535) * 65535).astype(np.uint16)
        assert out.shape == (48, 64, 3) and np.abs(out.astype(int) - ref).max() <= 1
        seq = [frame(20, 28, 4, k) for k in range(3)]
        t = c.open("temporal3")
        np.testing.assert_allclose(c.enhance(t, seq), Enhancer("temporal3").process(seq), atol=1e-6)
        for sigma in (5.0, 40.0):
            s = c.open("sigma", strength=sigma)
            np.testing.assert_allclose(c.enhance(s, [seq[0]]), Enhancer("sigma", strength=sigma)(seq[0]), atol=1e-6)
        with pytest.raises(FrameError) as e:
            c.open("sigma", strength=99)
        assert e.value.code == Code.BAD_REQUEST
        with pytest.raises(FrameError) as e:
            c.open("nope")
        assert e.value.code == Code.UNKNOWN_MODEL


def test_temporal_window_stops_at_a_hard_cut(server):
    """The host sends neighbours blind to cuts: the frame after a cut is not blended into the one before it."""
    from test_analysis import scene

    def rgba(img: np.ndarray) -> np.ndarray:
        return np.concatenate([img, np.ones(img.shape[:2] + (1,), np.float32)], -1)

    a, b = rgba(scene(0, 48, 64)), rgba(scene(1, 48, 64))
    a2 = np.clip(a + 0.02, 0, 1)
    enh = Enhancer("temporal3")
    with FrameClient() as c:
        t = c.open("temporal3")
        before_cut, after_cut = c.enhance(t, [a, a2, b]), c.enhance(t, [a2, b, b])
        same_shot = c.enhance(t, [a, a2, a])
    np.testing.assert_allclose(before_cut, enh.process([a, a2, a2]), atol=1e-6)
    np.testing.assert_allclose(after_cut, enh.process([b, b, b]), atol=1e-6)
    np.testing.assert_allclose(same_shot, enh.process([a, a2, a]), atol=1e-6)
    assert np.abs(enh.process([a, a2, b]) - before_cut).max() > 1e-3  # what the window would have blended


def test_bottom_up_padded_rows_and_in_place(server):
    """OFX layout: first row in memory is the picture's bottom; rows padded; output over the input."""
    h, w = 18, 22
    img = frame(h, w, 4, 3)
    fmt = FORMAT_BY_NAME["RGBA_F32"]
    pitch = w * 16 + 64
    seg = shared_memory.SharedMemory(create=True, size=pitch * h + 128)
    try:
        rows = np.ndarray((h, pitch // 4), np.float32, buffer=seg.buf, offset=128)
        rows[:] = -7.0  # padding sentinel
        for y in range(h):  # memory row k holds picture row h-1-k
            rows[h - 1 - y, : w * 4] = img[y].reshape(-1)
        top = 128 + (h - 1) * pitch
        with FrameClient() as c:
            s = c.open("cnn")
            ow, oh, us, infer_us = c.process(s, w, h, fmt, seg.name, [top], -pitch, seg.name, top, -pitch)
        assert (ow, oh) == (w, h) and 0 < infer_us <= us
        got = np.stack([rows[h - 1 - y, : w * 4].reshape(w, 4) for y in range(h)])
        np.testing.assert_allclose(got, Enhancer("cnn")(img), atol=1e-6)
        assert np.all(rows[:, w * 4:] == -7.0)  # padding untouched
    finally:
        del rows
        seg.close()
        seg.unlink()


def _raw(server) -> socket.socket:
    sock = connect(server.address)
    sock.settimeout(10)
    return sock


def _error(sock: socket.socket) -> tuple[int, str]:
    data = b""
    while len(data) < HEADER.size:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    _magic, _v, op, _id, length = HEADER.unpack(data[:HEADER.size])
    assert op == Op.ERROR
    body = data[HEADER.size:]
    while len(body) < length:
        body += sock.recv(4096)
    return int.from_bytes(body[:4], "little"), body[6:].decode()


def test_garbage_bad_token_truncation_and_disconnect_leave_others_served(server):
    good = FrameClient(name="steady")
    s = good.open("cnn")
    img = frame(16, 16)
    ref = Enhancer("cnn")(img)

    g = _raw(server)
    g.sendall(b"GET / HTTP/1.1\r\n\r\n")
    assert _error(g)[0] == Code.BAD_MAGIC
    try:  # closed after a framing error (a reset when our extra bytes were never read)
        assert g.recv(10) == b""
    except ConnectionResetError:
        pass
    g.close()

    with pytest.raises(FrameError) as e:
        FrameClient(token="wrong")
    assert e.value.code == Code.BAD_TOKEN

    early = _raw(server)
    early.sendall(pack_message(Op.LIST_MODELS, 1))
    assert _error(early)[0] == Code.NOT_AUTHENTICATED
    early.close()

    for cut in (5, HEADER.size + 3):  # disconnect inside the header, then inside a payload
        t = _raw(server)
        t.sendall(pack_message(Op.HELLO, 1, b"\x01\x00\x00\x00" + b"\x05\x00abcde")[:cut])
        t.close()

    bad = FrameClient()
    bs = bad.open("cnn")
    seg = bad.segment("in", 16 * 16 * 16)
    for kwargs, code in [(dict(width=64), Code.BAD_GEOMETRY),              # rows past the segment end
                         (dict(in_stride=8), Code.BAD_GEOMETRY),           # stride shorter than a row
                         (dict(fmt=9), Code.BAD_FORMAT),
                         (dict(in_shm="no-such-segment"), Code.SHM),
                         (dict(in_shm="../etc/passwd"), Code.SHM),
                         (dict(session=99), Code.BAD_SESSION)]:
        args = dict(session=bs, width=16, height=16, fmt=FORMAT_BY_NAME["RGBA_F32"], in_shm=seg.name,
                    in_offsets=[0], in_stride=256, out_shm=seg.name, out_offset=0, out_stride=256)
        args.update(kwargs)
        with pytest.raises(FrameError) as e:
            bad.process(**args)
        assert e.value.code == code, kwargs
    with pytest.raises(FrameError) as e:
        bad.call(0x0042)
    assert e.value.code == Code.UNKNOWN_OP
    np.testing.assert_allclose(bad.enhance(bs, [img]), ref, atol=1e-6)  # still usable after errors
    bad.sock.close()  # vanish without BYE, segments still mapped by the server
    for seg in bad._shm.values():
        seg.close()
        seg.unlink()

    np.testing.assert_allclose(good.enhance(s, [img]), ref, atol=1e-6)
    good.close()


def test_standalone_module_serves(tmp_path):
    env = dict(os.environ, VDIFF_MANIFEST=str(standard_set(tmp_path / "kit")),
               VDIFF_CONFIG_DIR=str(tmp_path / "config"), PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    p = subprocess.Popen([sys.executable, "-m", "vdiff_ofx.server.frames", "--port", "0"], env=env,
                         stderr=subprocess.PIPE, text=True)
    try:
        line = p.stderr.readline()
        assert "vdiff frame server on tcp:127.0.0.1:" in line, line
        address = line.split(" on ")[1].strip()
        addr_file = tmp_path / "config" / "frames.addr"
        token = (tmp_path / "config" / "token").read_text().strip()
        assert addr_file.read_text().strip() == address
        with FrameClient(address, token) as c:
            out = c.enhance(c.open("cnn"), [frame(8, 8)])
        assert out.shape == (8, 8, 4)
        p.terminate()
        assert p.wait(10) == 0
        deadline = time.time() + 5
        while addr_file.exists() and time.time() < deadline:
            time.sleep(0.05)
        assert not addr_file.exists()
    finally:
        p.kill()
