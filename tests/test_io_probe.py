"""probe(): fields that the pipeline relies on, and one-line InputErrors for unusable inputs."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from clip_kit import make_clip
from vdiff_ofx.errors import InputError
from vdiff_ofx.io.probe import probe


def test_probe_10bit_mkv(tmp_path):
    p = tmp_path / "a.mkv"
    make_clip(p, "ffv1", "yuv420p10le", n=6, timecode="01:00:00:00", audio="aac")
    info = probe(str(p))
    assert (info.codec, info.pix_fmt, info.bit_depth, info.chroma, info.has_alpha) == \
        ("ffv1", "yuv420p10le", 10, "420", False)
    assert (info.width, info.height, info.frame_count) == (64, 48, 6)
    assert info.frame_rate == Fraction(24000, 1001)
    assert not info.vfr
    assert info.start_timecode == "01:00:00:00"
    assert (info.color_primaries, info.color_trc, info.colorspace, info.color_range) == \
        ("bt709", "bt709", "bt709", "tv")
    assert info.other_streams == ("audio:aac",)
    assert info.container.startswith("matroska")
    assert info.duration == pytest.approx(6 * 1001 / 24000, abs=0.01)


def test_probe_mov_header_count_rotation_timecode(tmp_path):
    p = tmp_path / "a.mov"
    make_clip(p, "prores_ks", "yuv422p10le", n=5, timecode="00:59:59;29", rotation=90,
              rate=Fraction(30000, 1001), colour=("smpte170m", "smpte170m", "smpte170m", "tv"))
    info = probe(str(p))
    assert (info.codec, info.chroma, info.frame_count, info.rotation) == ("prores", "422", 5, 90)
    assert info.frame_rate == Fraction(30000, 1001)
    assert info.start_timecode == "00:59:59;29"
    assert info.colorspace == "smpte170m"
    assert "data:tmcd" in info.other_streams


def test_probe_vfr(tmp_path):
    p = tmp_path / "v.mkv"
    make_clip(p, "ffv1", "yuv420p", n=6, pts=[0, 40, 80, 200, 240, 400], time_base=Fraction(1, 1000))
    info = probe(str(p))
    assert info.vfr and info.frame_count == 6
    assert info.frame_pts == (0, 40, 80, 200, 240, 400)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        probe(str(tmp_path / "nope.mov"))


def test_garbage_file(tmp_path):
    p = tmp_path / "junk.mov"
    p.write_bytes(np.random.default_rng(1).integers(0, 255, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(InputError) as e:
        probe(str(p))
    assert "\n" not in str(e.value)


def test_audio_only(tmp_path):
    p = tmp_path / "a.m4a"
    with av.open(str(p), "w", format="mp4") as c:
        s = c.add_stream("aac", rate=48000)
        for k in range(5):
            f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            f.sample_rate, f.pts = 48000, k * 1024
            for pk in s.encode(f):
                c.mux(pk)
        for pk in s.encode(None):
            c.mux(pk)
    with pytest.raises(InputError, match="no video stream"):
        probe(str(p))


def test_zero_frames(tmp_path):
    p = tmp_path / "z.mkv"
    with av.open(str(p), "w") as c:
        s = c.add_stream("ffv1", rate=24)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        c.start_encoding()
    with pytest.raises(InputError):
        probe(str(p))


def test_truncated_before_index(tmp_path):
    p = tmp_path / "t.mov"
    make_clip(p, "prores_ks", "yuv422p10le", n=5)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])  # moov is at the end: nothing usable left
    with pytest.raises(InputError):
        probe(str(p))


def test_matroska_cut_short_warns_with_the_counts(tmp_path, caplog):
    """A Matroska copy cut mid-way keeps its header's duration: the probe reads what is there and says so."""
    full = tmp_path / "full.mkv"
    make_clip(full, "ffv1", "yuv420p", n=40, size=(64, 48), rate=Fraction(25))
    cut = tmp_path / "cut.mkv"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with caplog.at_level("WARNING", logger="vdiff_ofx.io.probe"):
        assert probe(str(full)).frame_count == 40
        assert not caplog.records
        n = probe(str(cut)).frame_count
    assert 5 < n < 35
    assert f"only {n} of the 40 frames its header states are readable" in caplog.text


@pytest.mark.parametrize("codec,ext", [("libx264", "h264"), ("libx265", "hevc")])
def test_raw_elementary_stream_counts_and_decodes_every_frame(tmp_path, codec, ext):
    """A raw .h264 / .hevc stream (drone and capture tools write them) has no timestamps and cannot seek back."""
    from vdiff_ofx.io.decode import decode_frames

    path = tmp_path / f"raw.{ext}"
    src = make_clip(path, codec=codec, pix_fmt="yuv420p", n=10, size=(64, 48), rate=Fraction(25),
                    options={"x265-params": "log-level=none"} if codec == "libx265" else {})
    info = probe(str(path))
    assert info.frame_count == 10 and info.frame_rate == 25
    frames = [f.rgb for f in decode_frames(info, start=3)]
    assert len(frames) == 7
    assert np.abs(frames[0][..., :3] - src[3][..., :3]).mean() < np.abs(frames[0][..., :3] - src[4][..., :3]).mean()


def _write(path, fmt: str, codec: str, pts: list[int], audio_first: bool = False, pix_fmt: str = "yuv420p"):
    """Frames of a moving bar at the given pts (1/25 s each); optionally an AAC stream ahead of the video."""
    with av.open(str(path), "w", format=fmt) as out:
        a = None
        if audio_first:
            a = out.add_stream("aac", rate=48000)
            a.layout = "mono"
        vs = out.add_stream(codec, rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, pix_fmt
        for p in pts:
            rgb = np.zeros((48, 64, 3), np.uint8)
            rgb[:, 2 * p:2 * p + 6] = 255
            f = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)
            f.pts, f.time_base = p, Fraction(1, 25)
            for pkt in vs.encode(f):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
        if a is not None:
            af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            af.sample_rate, af.pts = 48000, 0
            for pkt in [*a.encode(af), *a.encode()]:
                out.mux(pkt)


def test_video_that_is_not_the_first_stream(tmp_path):
    """A container whose frames are counted from its packets (Matroska, FLV, TS) with audio ahead of the video:
    the video stream's own packets are counted (the count indexed the video list by the container index)."""
    from vdiff_ofx.io.decode import decode_frames

    p = tmp_path / "audio_first.mkv"
    _write(p, "matroska", "libx264", list(range(9)), audio_first=True)
    info = probe(str(p))
    assert info.stream_index == 1 and info.frame_count == 9
    assert len(list(decode_frames(info))) == 9


def test_avi_dropped_frame_is_no_truncation(tmp_path):
    """AVI writes a dropped frame as an empty chunk its header counts; the frames there are keep their times."""
    from vdiff_ofx.io.decode import decode_frames

    p = tmp_path / "dropped.avi"
    _write(p, "avi", "mjpeg", [0, 1, 3, 4, 5], pix_fmt="yuvj420p")
    with av.open(str(p)) as c:
        assert c.streams.video[0].frames == 6  # the header counts the gap
    info = probe(str(p))
    assert info.frame_count == 5
    frames = list(decode_frames(info))
    assert [f.pts for f in frames] == [0, 1, 3, 4, 5]
