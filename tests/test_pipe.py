"""`vdiff pipe`: y4m parsing for every layout ffmpeg writes, streaming windows, clean errors, and a real
ffmpeg | vdiff pipe | ffmpeg chain whose frames equal `vdiff enhance` on the same source."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys

import av
import numpy as np
import pytest
from onnx_kit import standard_set

from vdiff_ofx.errors import InputError
from vdiff_ofx.pipe import run_pipe
from vdiff_ofx.y4m import Y4MHeader, read_frames, read_header, write_frame

FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg binary not installed (tests/setup.sh)")


@pytest.fixture()
def env(tmp_path):
    e = dict(os.environ)
    e["VDIFF_MANIFEST"] = str(standard_set(tmp_path / "kit"))
    e["VDIFF_CONFIG_DIR"] = str(tmp_path / "config")
    e["VDIFF_DATA_DIR"] = str(tmp_path / "data")
    return e


def y4m_bytes(tag: str, w: int, h: int, n: int, extra: str = "", seed: int = 0) -> tuple[bytes, Y4MHeader]:
    """A smooth random y4m stream (smooth so 4:2:0 chroma survives the RGB round trip)."""
    header = read_header(io.BytesIO(f"YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 C{tag}{extra}\n".encode()))
    rng = np.random.default_rng(seed)
    top = (1 << header.bits) - 1
    buf = io.BytesIO()
    buf.write(header.encode())
    for _ in range(n):
        planes = []
        for i, (ph, pw) in enumerate(header.plane_shapes()):
            yy, xx = np.mgrid[0:ph, 0:pw]
            mid = 0.5 + 0.2 * np.sin(xx / 5 + i + rng.random()) * np.cos(yy / 4)
            lo, hi = (0.1, 0.85) if i == 0 else (0.3, 0.7)
            planes.append(np.rint((lo + (hi - lo) * mid) * top).astype(header.dtype))
        write_frame(buf, planes, header)
    return buf.getvalue(), header


@pytest.mark.parametrize("tag", ["420jpeg", "420mpeg2", "420paldv", "422", "444", "mono", "420p10", "422p10",
                                 "444p10", "420p16", "444p16", "444p12"])
def test_identity_round_trip_every_layout(tag):
    """With a model that returns its input, output planes equal input within the chroma round trip."""
    data, header = y4m_bytes(tag, 22, 14, 3, " XCOLORRANGE=LIMITED")
    out = io.BytesIO()
    n = run_pipe(io.BytesIO(data), out, lambda win: win[len(win) // 2], window=3, scale=1)
    assert n == 3
    out.seek(0)
    assert read_header(out) == header
    top = (1 << header.bits) - 1
    for a, b in zip(read_frames(io.BytesIO(data[len(header.encode()):]), header), read_frames(out, header)):
        for pa, pb in zip(a, b):
            err = np.abs(pa.astype(np.int64) - pb) / top
            assert err.max() <= 2.5 / 255 and err.mean() <= 0.5 / 255, (tag, err.max() * top)


def test_upscale_rewrites_size_and_keeps_other_fields():
    data, _ = y4m_bytes("420p10", 8, 6, 2, " XCOLORRANGE=FULL")
    out = io.BytesIO()

    def up(win):
        return np.repeat(np.repeat(win[0], 2, 0), 2, 1)

    run_pipe(io.BytesIO(data), out, up, window=1, scale=2)
    out.seek(0)
    h2 = read_header(out)
    assert (h2.width, h2.height) == (16, 12)
    assert h2.params == ("W16", "H12", "F25:1", "Ip", "A1:1", "C420p10", "XCOLORRANGE=FULL")
    assert len(list(read_frames(out, h2))) == 2


def test_temporal_windows_stop_at_a_hard_cut_in_the_stream():
    """A stream arrives without its cuts: each window repeats its own shot's edge frame rather than reaching across."""
    header = read_header(io.BytesIO(b"YUV4MPEG2 W64 H48 F25:1 Ip A1:1 C444\n"))
    yy, xx = np.mgrid[0:48, 0:64]
    shots = [((40 + 140 * (xx > 32 + k)), 128, 128) for k in range(3)]  # a bright half, moving right
    shots += [((200 - 150 * (yy > 20 + k)), 60, 200) for k in range(3)]  # a cut: another picture, another colour
    buf = io.BytesIO()
    buf.write(header.encode())
    for y, u, v in shots:
        write_frame(buf, [np.asarray(y, np.uint8), np.full((48, 64), u, np.uint8), np.full((48, 64), v, np.uint8)],
                    header)
    seen = []

    def which(win):  # which source frame each window position holds (by its mean, distinct per frame)
        seen.append([round(float(f.mean()), 4) for f in win])
        return win[1]

    run_pipe(io.BytesIO(buf.getvalue()), io.BytesIO(), which, window=3, scale=1)
    ids = {m: i for i, m in enumerate(dict.fromkeys(m for win in seen for m in win))}
    assert [[ids[m] for m in win] for win in seen] == [[0, 0, 1], [0, 1, 2], [1, 2, 2], [3, 3, 4], [3, 4, 5],
                                                       [4, 5, 5]]


@pytest.mark.parametrize("data, message", [
    (b"", "no input"),
    (b"RIFF....", "not YUV4MPEG2"),
    (b"YUV4MPEG2 W8 F25:1\n", r"lacks a valid W \(width\) or H"),
    (b"YUV4MPEG2 W8 H8 Cfancy\n", "not supported"),
    (b"YUV4MPEG2 W8 H8 C444\nFRAME\n" + b"\0" * 100, "truncated: frame 0 has 100 of 192 bytes"),
    (b"YUV4MPEG2 W8 H8 C444\nFRAME\n" + b"\0" * 192 + b"FRAM", "frame 1 header is cut short"),
    (b"YUV4MPEG2 W8 H8 C444\nJUNK\n", "expected a FRAME marker"),
])
def test_malformed_input_is_one_clear_error(data, message):
    with pytest.raises(InputError, match=message):
        run_pipe(io.BytesIO(data), io.BytesIO(), lambda w: w[0], window=1, scale=1)


def vdiff(args, env, stdin=None):
    return subprocess.run([sys.executable, "-m", "vdiff_ofx.cli", *args], env=env, input=stdin,
                          capture_output=True, timeout=180)


def test_cli_errors_keep_stdout_clean(env):
    r = vdiff(["pipe", "-m", "cnn"], env, stdin=b"YUV4MPEG2 W8 H8 C444\nFRAME\n" + b"\0" * 50)
    assert r.returncode == 2
    err = r.stderr.decode().strip().splitlines()
    assert err[-1] == "vdiff: y4m input is truncated: frame 0 has 50 of 192 bytes", err
    assert r.stdout == b"YUV4MPEG2 W8 H8 C444\n"  # only y4m: the header, no partial frame
    r = vdiff(["pipe", "-m", "nope"], env, stdin=b"")
    assert r.returncode == 4 and r.stdout == b"" and b"unknown model 'nope'" in r.stderr


def ffmpeg(*args: str, stdin=None, stdout=None) -> subprocess.Popen:
    return subprocess.Popen([FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", *args], stdin=stdin,
                            stdout=stdout, stderr=subprocess.PIPE)


def source(path, pix_fmt: str, size: str = "64x48", frames: int = 5) -> None:
    """A tagged (BT.709, limited) lossless clip from ffmpeg's own test pattern, with added noise."""
    p = ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25,noise=alls=12:allf=t", "-frames:v", str(frames),
               "-pix_fmt", pix_fmt, "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
               "-color_range", "tv", "-c:v", "ffv1", "-y", str(path))
    assert p.wait(60) == 0, p.stderr.read().decode()


def planes(path) -> list[list[np.ndarray]]:
    with av.open(str(path)) as c:
        out = []
        for f in c.decode(video=0):
            dt = np.uint8 if "10" not in f.format.name else np.dtype("<u2")
            out.append([np.frombuffer(p, dt).reshape(p.height, -1)[:, : p.width].astype(np.int64) for p in f.planes])
        return out


def piped(src, dst, env, model: str, extra_in=(), extra_out=()) -> None:
    """ffmpeg -i src -f yuv4mpegpipe - | vdiff pipe -m model | ffmpeg -i - dst"""
    dec = ffmpeg("-i", str(src), *extra_in, "-f", "yuv4mpegpipe", "-strict", "-1", "-", stdout=subprocess.PIPE)
    vd = subprocess.Popen([sys.executable, "-m", "vdiff_ofx.cli", "pipe", "-m", model, "-q"], env=env,
                          stdin=dec.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dec.stdout.close()
    enc = ffmpeg("-f", "yuv4mpegpipe", "-i", "-", *extra_out, "-y", str(dst), stdin=vd.stdout)
    vd.stdout.close()
    assert enc.wait(180) == 0, enc.stderr.read().decode()
    assert vd.wait(10) == 0, vd.stderr.read().decode()
    assert dec.wait(10) == 0
    assert b"frames," not in vd.stderr.read()  # -q: no progress lines


@needs_ffmpeg
@pytest.mark.parametrize("pix_fmt, model", [("yuv420p10le", "cnn"), ("yuv420p", "temporal3"),
                                            ("yuv444p10le", "up2")])
def test_ffmpeg_chain_matches_enhance(tmp_path, env, pix_fmt, model):
    """Same decode/encode float code on both paths, so the lossless outputs agree exactly (measured: 0
    codes); the bound allows 1 code of rounding noise from onnxruntime thread scheduling."""
    src = tmp_path / "src.mkv"
    source(src, pix_fmt)
    piped(src, tmp_path / "piped.mkv", env, model, extra_out=("-c:v", "ffv1"))
    r = vdiff(["enhance", str(src), "-o", str(tmp_path / "ref.mkv"), "-m", model, "-c", "ffv1", "-q"], env)
    assert r.returncode == 0, r.stderr.decode()
    got, ref = planes(tmp_path / "piped.mkv"), planes(tmp_path / "ref.mkv")
    assert len(got) == len(ref) == 5
    scale = 2 if model == "up2" else 1
    assert got[0][0].shape == (48 * scale, 64 * scale)
    for g, f in zip(got, ref):
        for pg, pf in zip(g, f):
            assert pg.shape == pf.shape
            d = np.abs(pg - pf)
            assert d.max() <= 1 and d.mean() <= 0.01, (d.max(), d.mean())


@needs_ffmpeg
def test_ffmpeg_chain_into_mov(tmp_path, env):
    """The documented command line, 10-bit in and a 10-bit ProRes .mov out."""
    src = tmp_path / "src.mkv"
    source(src, "yuv422p10le", frames=3)
    piped(src, tmp_path / "out.mov", env, "cnn", extra_out=("-c:v", "prores_ks"))
    with av.open(str(tmp_path / "out.mov")) as c:
        s = c.streams.video[0]
        assert (s.codec_context.name, s.width, s.height) == ("prores", 64, 48)
        assert s.format.name.startswith("yuv422p10") and len(list(c.decode(s))) == 3


def interlaced_y4m(order: str, w: int = 16, h: int = 8, n: int = 2) -> tuple[bytes, np.ndarray]:
    """A 10-bit 4:2:0 stream tagged ``order`` (t, b or p) whose top-field rows are one colour and bottom-field rows
    another, with its chroma made field by field (as an interlaced camera writes it)."""
    from vdiff_ofx.pipe import rgb_to_planes

    header = read_header(io.BytesIO(f"YUV4MPEG2 W{w} H{h} F25:1 I{order} A1:1 C420p10\n".encode()))
    rgb = np.empty((h, w, 3), np.float32)
    rgb[0::2], rgb[1::2] = (0.2, 0.3, 0.6), (0.7, 0.6, 0.3)
    buf = io.BytesIO()
    buf.write(header.encode())
    for _ in range(n):
        write_frame(buf, rgb_to_planes(rgb, header, "bt709", "tv", fields=True), header)
    return buf.getvalue(), rgb


def pipe_rgb(data: bytes) -> list[np.ndarray]:
    from vdiff_ofx.pipe import interlaced, planes_to_rgb

    stream = io.BytesIO(data)
    header = read_header(stream)
    return [planes_to_rgb(p, header, "bt709", "tv", interlaced(header)) for p in read_frames(stream, header)]


def test_interlaced_stream_keeps_its_fields_and_tag():
    data, rgb = interlaced_y4m("t")
    out = io.BytesIO()
    assert run_pipe(io.BytesIO(data), out, lambda win: win[0], window=1, scale=1) == 2
    assert out.getvalue().split(b"\n")[0] == data.split(b"\n")[0]  # It kept
    for f in pipe_rgb(out.getvalue()):
        assert np.abs(f - rgb).max() < 3 / 1023
    # read as progressive, the same planes blend the two fields' colours
    progressive = data.replace(b" It ", b" Ip ", 1)
    assert max(np.abs(f - rgb).max() for f in pipe_rgb(progressive)) > 50 / 1023


def test_interlaced_stream_is_upscaled_field_by_field():
    data, _ = interlaced_y4m("b", h=8)
    seen = []

    def up(win):
        seen.append(win[0].shape)
        return np.repeat(np.repeat(win[0], 2, 0), 2, 1)

    out = io.BytesIO()
    run_pipe(io.BytesIO(data), out, up, window=1, scale=2)
    out.seek(0)
    h2 = read_header(out)
    assert (h2.width, h2.height, h2.tag("I")) == (32, 16, "b")
    assert seen and all(s[:2] == (4, 16) for s in seen)  # one field (half height) at a time


def test_interlaced_stream_modes_woven_refused_for_upscalers_and_progressive_rewrites_the_tag():
    from vdiff_ofx.errors import VdiffError

    data, _ = interlaced_y4m("t")
    out = io.BytesIO()
    with pytest.raises(VdiffError, match="woven"):
        run_pipe(io.BytesIO(data), out, lambda w: w[0], window=1, scale=2, fields="woven", model="up2")
    assert out.getvalue() == b""
    run_pipe(io.BytesIO(data), out, lambda w: w[0], window=1, scale=1, fields="progressive")
    assert read_header(io.BytesIO(out.getvalue())).tag("I") == "p"
