"""Numbered image sequences (DPX, TIFF, PNG, EXR) as clips: the names editors and Resolve use, frame numbers kept
through vdiff, missing frames refused, outputs written whole or not at all, and the server taking them."""

from __future__ import annotations

import struct
import threading
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from onnx_kit import standard_set
from test_server_kit import Server, use_env, vdiff_client
from vdiff_ofx.engine.providers import Backend
from vdiff_ofx.errors import Cancelled, InputError, OutputError
from vdiff_ofx.io.codecs import choose_settings
from vdiff_ofx.io.decode import decode_frames
from vdiff_ofx.io.encode import Encoder
from vdiff_ofx.io.dpx import read_times
from vdiff_ofx.io.probe import probe
from vdiff_ofx.io.sequence import find_sequence, parse_rate
from vdiff_ofx.pipeline import Job, run

CPU = Backend(providers=["cpu"], threads=1)


def pictures(n: int, w: int = 80, h: int = 48, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), 2)  # smooth: 4:2:2 keeps it
    base = (base - base.min()) / (base.max() - base.min())
    return [np.roll(base, 3 * i, axis=1) for i in range(n)]


def write_dpx(folder, first: int, pics: list[np.ndarray], name: str = "shot") -> str:
    """10-bit DPX files name.NNNN.dpx from ``first``; returns the printf pattern."""
    folder.mkdir(exist_ok=True)
    pattern = str(folder / f"{name}.%04d.dpx")
    for i, rgb in enumerate(pics):
        with av.open(pattern % (first + i), "w", format="image2") as c:
            s = c.add_stream("dpx", rate=24)
            s.width, s.height, s.pix_fmt = rgb.shape[1], rgb.shape[0], "gbrp10le"
            ten = (np.rint(rgb * 1023) * 64).astype(np.uint16)  # 10-bit codes, MSB-aligned in 16 bits
            f = av.VideoFrame.from_ndarray(ten, format="rgb48le")
            c.mux(s.encode(f.reformat(format="gbrp10le")))
            c.mux(s.encode(None))
    return pattern


def stamp_dpx(path, rate: float, timecode: int) -> None:
    """Give an FFmpeg-written DPX (generic headers only) a film and a TV header, as scanners write them: the frame
    rate in both, the timecode (BCD) in the TV header; the picture moves behind them."""
    raw = bytearray(open(path, "rb").read())
    order = ">" if raw[:4] == b"SDPX" else "<"
    offset = struct.unpack(order + "I", raw[4:8])[0]
    film = bytearray(b"\xff" * 256)
    tv = bytearray(b"\xff" * 128)
    struct.pack_into(order + "f", film, 1724 - 1664, rate)
    struct.pack_into(order + "I", tv, 0, timecode)
    struct.pack_into(order + "f", tv, 20, rate)
    out = raw[:1664] + film + tv + raw[offset:]
    struct.pack_into(order + "I", out, 4, 2048)       # image data offset
    struct.pack_into(order + "I", out, 16, len(out))  # file size
    struct.pack_into(order + "I", out, 28, 384)       # industry header size
    open(path, "wb").write(out)


@pytest.fixture()
def dpx(tmp_path):
    pics = pictures(8)
    return write_dpx(tmp_path / "scan", 1001, pics), pics


def test_three_ways_to_name_a_sequence(dpx, tmp_path):
    pattern, pics = dpx
    folder = str(tmp_path / "scan")
    names = [pattern, folder + "/shot.[1001-1008].dpx", folder + "/shot.####.dpx"]
    infos = [probe(n) for n in names]
    for info in infos:
        assert (info.sequence.first, info.sequence.last, info.frame_count) == (1001, 1008, 8)
        assert (info.width, info.height, info.bit_depth, info.frame_rate) == (80, 48, 10, Fraction(24))
    frames = [f.rgb for f in decode_frames(infos[1])]
    assert len(frames) == 8
    assert max(float(np.abs(f - np.rint(p * 1023) / 1023).max()) for f, p in zip(frames, pics)) < 1e-6  # 10-bit exact
    # a range from the middle decodes those files
    assert [f.index for f in decode_frames(infos[0], 3, 6)] == [3, 4, 5]
    mid = [f.rgb for f in decode_frames(infos[0], 3, 6)]
    assert all(np.array_equal(a, b) for a, b in zip(mid, frames[3:6]))
    assert probe(pattern, parse_rate("23.976")).frame_rate == Fraction(24000, 1001)


def test_dpx_headers_give_rate_and_timecode(kit, dpx, tmp_path):
    """A scan's DPX headers say 25 fps from 01:00:10:00: the sequence plays at that rate and its enhanced movie starts
    at that timecode (moved by the range's start), where FFmpeg alone gives 24 fps and no timecode."""
    pattern, pics = dpx
    for n in range(1001, 1009):
        stamp_dpx(pattern % n, 25.0, 0x01001000 + (n - 1001))
    info = probe(pattern)
    assert info.frame_rate == 25 and info.start_timecode == "01:00:10:00" and info.frame_count == 8
    frames = [f.rgb for f in decode_frames(info)]  # the picture behind the longer header is the same
    assert max(float(np.abs(f - np.rint(p * 1023) / 1023).max()) for f, p in zip(frames, pics)) < 1e-6
    out = tmp_path / "scan.mov"
    run(Job(pattern, str(out), model="cnn", backend=CPU, start=2))
    made = probe(str(out))
    assert made.frame_rate == 25 and made.start_timecode == "01:00:10:02" and made.frame_count == 6
    assert probe(pattern, Fraction(24)).frame_rate == 24  # a rate the user gives wins
    # DPX out: FFmpeg writes no film/TV header; vdiff adds them, so the files keep rate and (moved) timecode
    (tmp_path / "dpx_out").mkdir()
    run(Job(pattern, str(tmp_path / "dpx_out" / "o.%04d.dpx"), model="cnn", backend=CPU, start=3))
    again = probe(str(tmp_path / "dpx_out" / "o.%04d.dpx"))
    assert (again.frame_rate, again.start_timecode, again.sequence.first) == (25, "01:00:10:03", 1004)
    assert read_times(str(tmp_path / "dpx_out" / "o.1008.dpx")).timecode == "01:00:10:07"
    got = [f.rgb for f in decode_frames(again)]  # the picture behind the added headers is what was encoded
    mov = [f.rgb for f in decode_frames(probe(str(out)))][1:]
    assert len(got) == 5 and max(float(np.abs(a - b).mean()) for a, b in zip(got, mov)) < 0.01


def test_bad_sequences_are_one_clear_line(dpx, tmp_path):
    pattern, _ = dpx
    (tmp_path / "scan" / "shot.1005.dpx").unlink()
    with pytest.raises(InputError, match=r"missing frame\(s\) 1005: a gap"):
        probe(pattern)
    with pytest.raises(InputError, match="missing frame"):
        probe(str(tmp_path / "scan" / "shot.[1001-1010].dpx"))
    with pytest.raises(InputError, match="no files of the sequence"):
        probe(str(tmp_path / "scan" / "other.%04d.dpx"))
    (tmp_path / "scan" / "shot.1005.dpx").write_bytes(b"not a dpx at all")
    with pytest.raises(InputError):
        list(decode_frames(probe(pattern)))
    with pytest.raises(InputError, match="frame rate"):
        parse_rate("fast")


def test_sequence_to_movie_and_movie_to_sequence_keep_numbers(kit, dpx, tmp_path):
    pattern, _ = dpx
    movie = tmp_path / "clip.mov"
    result = run(Job(pattern, str(movie), model="cnn", backend=CPU, frame_rate=Fraction(25), start=2, end=7))
    info = probe(str(movie))
    assert result.frames == info.frame_count == 5 and info.frame_rate == 25
    # sequence -> sequence: the files keep the source's numbers
    out = tmp_path / "out" / "clean.%04d.png"
    out.parent.mkdir()
    run(Job(pattern, str(out), model="cnn", backend=CPU, start=2, end=7))
    assert sorted(p.name for p in out.parent.iterdir()) == [f"clean.{n}.png" for n in range(1003, 1008)]
    png = probe(str(out))
    assert png.codec == "png" and png.bit_depth == 16 and png.sequence.first == 1003  # 10-bit source: 16-bit PNG
    # the same frames as the movie, in the same order (ProRes 4:2:2 differs a little from 16-bit RGB)
    a = [f.rgb for f in decode_frames(png)]
    b = [f.rgb for f in decode_frames(info)]
    same = max(float(np.abs(x - y).mean()) for x, y in zip(a, b))
    shifted = min(float(np.abs(x - y).mean()) for x, y in zip(a[1:], b))
    assert same < 0.01 and same < shifted / 3
    with pytest.raises(OutputError, match="already exist"):
        run(Job(pattern, str(out), model="cnn", backend=CPU))
    with pytest.raises(OutputError, match="over the source sequence"):  # the same files, named another way
        run(Job(str(tmp_path / "scan" / "shot.[1001-1008].dpx"), pattern, model="cnn", backend=CPU, overwrite=True))
    with pytest.raises(OutputError, match="%04d or ####"):
        run(Job(pattern, str(tmp_path / "single.dpx"), model="cnn", backend=CPU))


@pytest.mark.parametrize("ext, depth, tol", [(".dpx", 10, 0.5 / 1023), (".tif", 16, 0.5 / 65535),
                                             (".png", 8, 0.5 / 255), (".exr", 16, 1e-3)])
def test_image_formats_round_trip(dpx, tmp_path, ext, depth, tol):
    pattern, pics = dpx
    info = probe(pattern)
    out = str(tmp_path / f"rt.%04d{ext}")
    settings = choose_settings(out, info, bit_depth=depth if ext == ".png" else None)
    with Encoder(out, info, settings, 80, 48, copy_streams=False, first_number=7) as enc:
        for p in pics[:3]:
            enc.write(p)
    back = probe(out)
    assert back.sequence.first == 7 and back.frame_count == 3
    got = [f.rgb for f in decode_frames(back)]
    assert max(float(np.abs(g - p).max()) for g, p in zip(got, pics)) <= tol + 1e-6


def test_cancelled_sequence_output_leaves_nothing(kit, dpx, tmp_path):
    pattern, _ = dpx
    out = tmp_path / "out" / "c.%04d.dpx"
    out.parent.mkdir()
    cancel = threading.Event()

    def progress(p):
        if p.done >= 2:
            cancel.set()

    with pytest.raises(Cancelled):
        run(Job(pattern, str(out), model="cnn", backend=CPU), progress, cancel)
    assert list(out.parent.iterdir()) == []


def test_server_takes_a_sequence_with_its_rate(dpx, tmp_path, monkeypatch):
    """What Resolve sends for an image-sequence clip: its File Path in Resolve's own form and the clip's rate."""
    pattern, _ = dpx
    srv = Server(tmp_path / "srv", standard_set(tmp_path / "kit"))
    (tmp_path / "srv").mkdir()
    use_env(monkeypatch, srv.env)
    out = tmp_path / "from_server.mov"
    try:
        srv.start()
        client = srv.client()
        resolve_name = str(tmp_path / "scan" / "shot.[1001-1008].dpx")
        job = client.submit(resolve_name, str(out), model="cnn", frame_rate="23.976", start=1)
        assert client.wait(job["id"], timeout=60, poll=0.05)["frames"] == 7
        with pytest.raises(vdiff_client.VdiffClientError, match=r"missing frame\(s\) 1009, 1010"):
            client.submit(str(tmp_path / "scan" / "shot.[1001-1020].dpx"), str(tmp_path / "x.mov"), model="cnn")
    finally:
        srv.close()
    info = probe(str(out))
    assert info.frame_count == 7 and info.frame_rate == Fraction(24000, 1001)
    assert find_sequence(pattern).count == 8  # the source is untouched


def test_cli_sequence_in_and_out(kit, dpx, tmp_path):
    """`vdiff enhance` with Resolve's name for the input and a #### output: the files it names are the ones written."""
    import subprocess
    import sys

    _, _ = dpx
    out = tmp_path / "tif"
    out.mkdir()
    proc = subprocess.run([sys.executable, "-m", "vdiff_ofx.cli", "enhance", str(tmp_path / "scan" / "shot.[1001-1008].dpx"),
                           "-o", str(out / "t.####.tif"), "-m", "cnn", "--start", "2", "--fps", "25", "-q",
                           "--provider", "cpu"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}/t.[1003-1008].tif: 6 frames" in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == [f"t.{n}.tif" for n in range(1003, 1009)]
    bad = subprocess.run([sys.executable, "-m", "vdiff_ofx.cli", "enhance", str(tmp_path / "scan" / "shot.%04d.dpx"),
                          "--fps", "fast"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "frame rate 'fast'" in bad.stderr and "Traceback" not in bad.stderr


def test_a_real_full_disk_names_the_output_and_leaves_nothing(kit, tmp_path):
    """On a 600 kB tmpfs (where this machine lets us mount one): the sequence fills it, the error names the output
    the editor asked for (not the temporary files) and every written file is removed."""
    import subprocess

    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(small)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        write_dpx(tmp_path / "bigscan", 1, pictures(6, 320, 240), "big")  # 6 x 320x240 16-bit TIFF > 600 kB
        with pytest.raises(OutputError, match=r"small/out\.%04d\.tif: disk full; partial output removed"):
            run(Job(str(tmp_path / "bigscan" / "big.%04d.dpx"), str(small / "out.%04d.tif"), model="cnn",
                    backend=CPU, bit_depth=16))
        assert list(small.iterdir()) == []
    finally:
        subprocess.run(["umount", str(small)], capture_output=True)
