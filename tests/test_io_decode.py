"""decode_frames(): full precision, correct matrices/ranges, frame-exact ranges, truncation errors."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from clip_kit import make_clip, pattern
from vdiff_ofx.errors import InputError
from vdiff_ofx.io.codecs import choose_settings
from vdiff_ofx.io.colour import frame_to_rgb, rgb_to_frame
from vdiff_ofx.io.decode import decode_frames
from vdiff_ofx.io.encode import Encoder
from vdiff_ofx.io.probe import probe


@pytest.mark.parametrize("pix_fmt,depth", [("yuv420p", 8), ("yuv420p10le", 10), ("yuv422p10le", 10),
                                           ("yuv444p12le", 12), ("gbrp10le", 10)])
def test_ffv1_round_trip_is_exact(tmp_path, pix_fmt, depth):
    src = tmp_path / "src.mkv"
    make_clip(src, "ffv1", pix_fmt, n=4)
    info = probe(str(src))
    frames = list(decode_frames(info))
    assert frames[0].rgb.dtype == np.float32 and frames[0].rgb.shape == (48, 64, 3)
    out = tmp_path / "out.mkv"
    settings = choose_settings(str(out), info)
    assert settings.pix_fmt == pix_fmt  # same depth/chroma by default
    with Encoder(str(out), info, settings, 64, 48) as enc:
        for f in frames:
            enc.write(f.rgb, f.pts)
    back = list(decode_frames(probe(str(out))))
    err = max(float(np.abs(a.rgb - b.rgb).max()) for a, b in zip(frames, back))
    assert len(back) == len(frames)
    assert err <= 1.0 / ((1 << depth) - 1)  # measured: 0.0 (bit-exact codes)


def test_ten_bit_is_not_quantised_to_8_bit(tmp_path):
    src = tmp_path / "g.mkv"
    make_clip(src, "ffv1", "yuv444p10le", n=1, size=(1024, 4), colour=("bt709", "bt709", "bt709", "pc"))
    rgb = next(decode_frames(probe(str(src)))).rgb
    # R spans 0.1..0.9: an 8-bit path leaves <= 205 levels; 10-bit YUV gives ~500
    assert len(np.unique(np.round(rgb[0, :, 0] * 1023))) > 400


@pytest.mark.parametrize("space", ["bt709", "smpte170m", "bt470bg"])
@pytest.mark.parametrize("rng", ["tv", "pc"])
def test_matrix_and_range_match_ffmpeg(space, rng):
    """Our float conversion agrees with swscale (an independent implementation) for 601/709, tv/pc."""
    img = pattern(0, 64, 48)
    frame = rgb_to_frame(img, "yuv444p", space, rng)
    frame.colorspace = {"bt709": 1, "smpte170m": 6, "bt470bg": 5}[space]
    frame.color_range = 1 if rng == "tv" else 2
    ours = frame_to_rgb(frame)
    ref = frame.to_ndarray(format="rgb24", src_colorspace="ITU709" if space == "bt709" else "ITU601",
                           src_color_range="MPEG" if rng == "tv" else "JPEG", dst_color_range="JPEG")
    assert np.abs(ours - ref / 255.0).max() < 2.5 / 255
    assert np.abs(ours - img).max() < 2.5 / 255


def test_limited_range_codes():
    """Reference white/black land on 235/16 (940/64 at 10 bits) and pure red on the BT.709 luma value."""
    img = np.zeros((2, 4, 3), np.float32)
    img[0, 1] = 1.0
    img[1, 0] = (1.0, 0.0, 0.0)
    f = rgb_to_frame(img, "yuv444p10le", "bt709", "tv")
    y = np.frombuffer(f.planes[0], np.uint16).reshape(2, -1)
    assert (y[0, 0], y[0, 1]) == (64, 940)
    assert y[1, 0] == round(64 + 876 * 0.2126)


@pytest.fixture
def gop_clip(tmp_path):
    p = tmp_path / "gop.mp4"
    make_clip(p, "libx264", "yuv420p", n=24, options={"g": "5", "bf": "2", "crf": "30", "preset": "ultrafast"})
    return probe(str(p))


def test_frame_range_exact_after_seek(gop_clip):
    full = list(decode_frames(gop_clip))
    assert [f.index for f in full] == list(range(24))
    for s, e in [(0, 3), (7, 12), (11, 24), (23, 30)]:
        part = list(decode_frames(gop_clip, s, e))
        assert [f.index for f in part] == list(range(s, min(e, 24)))
        for a in part:
            assert np.array_equal(a.rgb, full[a.index].rgb)
            assert a.pts == full[a.index].pts


def test_frame_range_mkv_and_vfr(tmp_path):
    p = tmp_path / "v.mkv"
    make_clip(p, "ffv1", "yuv420p", n=8, pts=[0, 40, 80, 200, 240, 400, 440, 600], time_base=Fraction(1, 1000),
              options={"g": "3"})
    info = probe(str(p))
    full = list(decode_frames(info))
    part = list(decode_frames(info, 4, 7))
    assert [f.index for f in part] == [4, 5, 6]
    assert [f.pts for f in part] == [240, 400, 440]
    assert all(np.array_equal(a.rgb, full[a.index].rgb) for a in part)


def test_truncated_mid_stream_names_frame(tmp_path):
    p = tmp_path / "t.mp4"
    make_clip(p, "libx264", "yuv420p", n=20, size=(128, 96), container_options={"movflags": "faststart"},
              options={"preset": "ultrafast", "g": "4", "crf": "10"})
    data = p.read_bytes()
    p.write_bytes(data[: int(len(data) * 0.6)])
    info = probe(str(p))  # the index is at the front, so the header still says 20 frames
    assert info.frame_count == 20
    with pytest.raises(InputError, match=r"frame \d+"):
        for _ in decode_frames(info):
            pass


def test_alpha_decodes_to_rgba(tmp_path):
    p = tmp_path / "a.mov"
    make_clip(p, "prores_ks", "yuva444p10le", n=2, alpha=True, options={"profile": "4"})
    info = probe(str(p))
    assert info.has_alpha
    f = next(decode_frames(info))
    assert f.rgb.shape == (48, 64, 4)
    assert np.abs(f.rgb[..., 3] - pattern(0, alpha=True)[..., 3]).max() < 2 / 1023


def test_webm_vp9_alpha_survives(tmp_path):
    """FFmpeg's native VP9 decoder drops WebM alpha; decoding must go through libvpx and keep it."""
    import av

    p = tmp_path / "overlay.webm"
    w, h = 128, 96
    with av.open(str(p), "w") as c:
        s = c.add_stream("libvpx-vp9", rate=25, options={"crf": "20", "b": "0"})
        s.width, s.height, s.pix_fmt = w, h, "yuva420p"
        for i in range(6):
            img = np.zeros((h, w, 4), np.uint8)
            img[..., 0], img[..., 1] = 200, np.linspace(0, 255, w, dtype=np.uint8)[None]
            img[20:70, 10 + 5 * i:70 + 5 * i, 3] = 255  # an opaque box moving over transparency
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgba").reformat(format="yuva420p")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    info = probe(str(p))
    assert info.has_alpha and info.frame_count == 6
    frames = list(decode_frames(info, 3, 6))
    assert [f.index for f in frames] == [3, 4, 5] and frames[0].rgb.shape == (h, w, 4)
    a = frames[0].rgb[..., 3]
    assert a[45, 10 + 15 + 20] > 0.98 and a[5, 5] < 0.02 and a[45, 120] < 0.02


def test_long_gop_h264_in_mxf_keeps_order_and_rising_timestamps(tmp_path):
    """FFmpeg's MXF muxer labels B-frames with their decode time, so the decoder's frames come out labelled
    ..., 9, 11, 10: frames must keep the decoder's (display) order and get rising times, and the job must run."""
    from vdiff_ofx.pipeline import Job, run

    src = make_clip(tmp_path / "xavc.mxf", codec="libx264", pix_fmt="yuv420p", n=12, size=(96, 64), rate=Fraction(25),
                    options={"bf": "2", "g": "12"})
    with av.open(str(tmp_path / "xavc.mxf")) as c:
        labels = [f.pts for f in c.decode(c.streams.video[0])]
    assert labels != sorted(labels)  # the muxer's mislabelling this test is about
    info = probe(str(tmp_path / "xavc.mxf"))
    frames = list(decode_frames(info))
    assert [f.pts for f in frames] == sorted(labels) == list(range(12))
    for f in frames:  # each decoded frame is nearest its own source frame
        errs = [np.abs(f.rgb[..., :3] - s[..., :3]).mean() for s in src]
        assert int(np.argmin(errs)) == f.index
    out = tmp_path / "out.mov"
    run(Job(str(tmp_path / "xavc.mxf"), str(out), model="deblock-fast"))
    assert probe(str(out)).frame_count == 12


@pytest.mark.parametrize("fmt", ["rgb24", "bgr24", "rgba", "bgra", "argb", "abgr", "rgb0", "bgr0", "gbrp",
                                 "rgb48le", "rgb48be", "rgba64le", "gbrpf32le", "gbrpf16le"])
def test_rgb_layouts_read_exactly_and_write_to_half_a_code(fmt):
    """Image files and RGB codecs (PNG, TIFF, DPX, QuickTime Animation, FFV1 RGB, EXR) hand over these layouts:
    each reads back exactly what it stores (an 8-bit one went through 16-bit planar and came back up to 1.5 codes
    off; half floats were read as integer codes), and writing rounds once."""
    rng = np.random.default_rng(3)
    if fmt.startswith("gbrpf"):
        codes = rng.integers(0, 1025, (6, 10, 3)).astype(np.float32) / 1024  # exact in half floats
        frame = av.VideoFrame.from_ndarray(codes, format="gbrpf32le")
        if fmt == "gbrpf16le":  # swscale makes no half floats: the planes (G, B, R) written directly
            frame = av.VideoFrame(10, 6, fmt)
            for plane, ch in zip(frame.planes, (1, 2, 0)):
                rows = np.frombuffer(plane, np.uint8).reshape(6, plane.line_size)
                rows[:, :20] = codes[..., ch].astype("<f2").view(np.uint8).reshape(6, 20)
        want, top = codes, None
    elif "48" in fmt or "64" in fmt:
        codes = rng.integers(0, 65536, (6, 10, 4 if "64" in fmt else 3)).astype(np.uint16)
        frame, want, top = av.VideoFrame.from_ndarray(codes, format=fmt), codes, 65535
    else:
        codes = rng.integers(0, 256, (6, 10, 4)).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(codes, format="rgba").reformat(format=fmt)  # byte shuffles: exact
        want, top = codes, 255
    got = frame_to_rgb(frame)
    n = 3 if got.shape[2] == 3 else 4
    expect = want[..., :n].astype(np.float32) / (top or 1)
    assert got.shape[:2] == (6, 10) and np.array_equal(got, expect)
    if fmt != "gbrpf16le":  # (read only: the EXR encoder takes 32-bit floats and stores halves itself)
        again = frame_to_rgb(rgb_to_frame(got, fmt))
        assert np.abs(again[..., :3] - got[..., :3]).max() <= (0.5 / top if top else 1e-6)
