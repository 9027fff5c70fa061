"""The H.264 quantiser read from real x264 streams, and what `--model auto` does with it and with clean clips."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from vdiff_ofx.analysis.auto import resolve_auto
from vdiff_ofx.analysis.clip import HEAVY_QP, analyse, recommend
from vdiff_ofx.errors import NothingToEnhance
from vdiff_ofx.io.codec_qp import _Params, parse_qp
from vdiff_ofx.io.decode import decode_frames
from vdiff_ofx.io.probe import probe
from vdiff_ofx.pipeline import Job, run

ROOT = Path(__file__).resolve().parents[1]


def textured(i: int, h: int = 144, w: int = 192) -> np.ndarray:
    """Detailed, noise-free content panning 2 px a frame (what a codec has to spend bits on)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    xx = xx + 2 * i
    img = np.stack([0.5 + 0.35 * np.sin(xx / 3.1) * np.cos(yy / 4.3), 0.5 + 0.3 * np.sin((xx + yy) / 2.2),
                    0.4 + 0.3 * np.cos(xx / 7.0 - yy / 5.0)], -1)
    img[40:100, 60:130] = (0.85, 0.25, 0.15)
    return np.clip(img, 0, 1)


def encode(path: Path, codec: str, crf: int, frames: int = 8, pix_fmt: str = "yuv420p") -> Path:
    with av.open(str(path), "w") as out:
        s = out.add_stream(codec, rate=Fraction(25))
        s.width, s.height, s.pix_fmt = 192, 144, pix_fmt
        s.options = {"crf": str(crf), "threads": "1",  # one thread: the same decisions on every machine
                     **({"x265-params": "log-level=none"} if codec == "libx265" else {})}
        for i in range(frames):
            rgb = av.VideoFrame.from_ndarray((textured(i) * 255 + 0.5).astype(np.uint8), format="rgb24")
            out.mux(s.encode(rgb.reformat(format=pix_fmt)))
        out.mux(s.encode(None))
    return path


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    monkeypatch.setenv("VDIFF_MANIFEST", str(ROOT / "manifest.yaml"))
    monkeypatch.setenv("VDIFF_CONFIG_DIR", str(tmp_path / "config"))


def test_qp_of_every_h264_frame_follows_the_crf(tmp_path):
    means = {}
    for crf in (18, 42):
        info = probe(str(encode(tmp_path / f"c{crf}.mp4", "libx264", crf)))
        qps = [f.qp for f in decode_frames(info, qp=True)]
        assert len(qps) == 8 and all(q is not None and 0 <= q <= 51 for q in qps), qps
        means[crf] = float(np.mean(qps))
        assert all(f.qp is None for f in decode_frames(info))  # only read when asked for
    assert means[18] + 15 < means[42], means


def test_ten_bit_h264_reads_on_the_eight_bit_scale(tmp_path):
    """High-bit-depth H.264 counts QP + 12 at 10 bits: a high-quality 10-bit camera file must not read as heavy."""
    means = {}
    for fmt in ("yuv420p", "yuv420p10le"):
        info = probe(str(encode(tmp_path / f"{fmt}.mp4", "libx264", 18, pix_fmt=fmt)))
        assert info.bit_depth == (10 if "10" in fmt else 8)
        means[fmt] = float(np.mean([f.qp for f in decode_frames(info, qp=True)]))
    # without the offset taken off the 10-bit file read ~12 higher (37), above the threshold
    assert abs(means["yuv420p10le"] - means["yuv420p"]) < 8 and means["yuv420p10le"] < HEAVY_QP["h264"], means


def test_vp9_reads_its_quantiser_index(tmp_path, shipped):
    means = {}
    for crf in (10, 60):
        info = probe(str(encode(tmp_path / f"v{crf}.webm", "libvpx-vp9", crf, frames=4)))
        qps = [f.qp for f in decode_frames(info, qp=True)]
        assert all(q is not None and 0 <= q <= 255 for q in qps), qps
        means[crf] = float(np.mean(qps))
    assert means[10] + 100 < means[60], means  # the 0-255 index, not H.264's 0-51
    heavy = recommend(analyse(str(tmp_path / "v60.webm")))
    assert heavy["model"] == "deblock" and heavy["reason"].startswith("VP9 q index"), heavy
    light = recommend(analyse(str(tmp_path / "v10.webm")))
    assert light["qp"] < HEAVY_QP["vp9"] and light["model"] != "deblock", light


def test_no_qp_where_the_codec_gives_none_on_a_known_scale(tmp_path):
    """MPEG-4 Part 2 exports a qscale table (type MPEG2): not read as an H.264 QP."""
    info = probe(str(encode(tmp_path / "m.mp4", "mpeg4", 0, frames=4)))
    assert [f.qp for f in decode_frames(info, qp=True)] == [None] * 4
    assert "qp" not in analyse(str(tmp_path / "m.mp4")).shots[0].features


def test_parse_qp_refuses_what_it_cannot_read():
    p = _Params(nb_blocks=2, blocks_offset=ctypes.sizeof(_Params), block_size=20, type=1, qp=30)
    blocks = np.array([[0, 0, 16, 16, 4], [16, 0, 16, 16, -2]], np.int32)
    buf = bytes(p) + blocks.tobytes()
    assert parse_qp(buf) == pytest.approx(31.0)
    assert parse_qp(buf[:-4]) is None  # truncated block table
    assert parse_qp(buf[:8]) is None
    p.type = 2  # AV_VIDEO_ENC_PARAMS_MPEG2: MPEG-2/4's qscale is not on H.264's scale
    assert parse_qp(bytes(p) + blocks.tobytes()) is None


def test_heavily_compressed_h264_is_deblocked_though_its_blocks_are_filtered_away(tmp_path, shipped):
    heavy = recommend(analyse(str(encode(tmp_path / "heavy.mp4", "libx264", 42))))
    assert heavy["model"] == "deblock" and heavy["qp"] >= HEAVY_QP["h264"], heavy
    assert heavy["blockiness"] < 1.3 and heavy["reason"].startswith("H.264 QP")
    light = recommend(analyse(str(encode(tmp_path / "light.mp4", "libx264", 16))))
    assert light["qp"] < HEAVY_QP["h264"] and light["model"] is None, light  # clean: nothing to fix


def test_auto_on_a_clean_clip_writes_nothing_and_says_why(tmp_path, shipped):
    clip = encode(tmp_path / "clean.mp4", "libx264", 16)
    with pytest.raises(NothingToEnhance, match="needs no enhancing"):
        resolve_auto(Job(str(clip), str(tmp_path / "o.mov"), model="auto"))
    with pytest.raises(NothingToEnhance):
        run(Job(str(clip), str(tmp_path / "o.mov"), model="auto"))
    env = {**os.environ, "VDIFF_MANIFEST": str(ROOT / "manifest.yaml"), "VDIFF_CONFIG_DIR": str(tmp_path / "config")}
    cli = subprocess.run([sys.executable, "-m", "vdiff_ofx.cli", "enhance", str(clip), "-o", str(tmp_path / "o.mov"),
                          "-m", "auto", "-q"], env=env, capture_output=True, text=True, timeout=120)
    assert cli.returncode == NothingToEnhance.exit_code == 5, cli.stderr
    last = cli.stderr.strip().splitlines()[-1]  # (a line before it may say the GPU providers did not load)
    assert last.startswith("vdiff: --model auto:") and "needs no enhancing" in last and "nothing to fix" in last
    assert {p.name for p in tmp_path.iterdir()} <= {"clean.mp4", "config"}  # no output, no partial file
    job = resolve_auto(Job(str(clip), str(tmp_path / "o.mov"), model="denoise", strength="auto"))
    assert job.model == "denoise" and job.strength is not None  # a named model still runs, at the measured sigma
