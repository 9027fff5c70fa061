"""Encoder + choose_settings: presets, defaults, and everything carried over from the source."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from clip_kit import make_clip, packets, pattern, video_times
from vdiff_ofx.errors import OutputError
from vdiff_ofx.io.codecs import PRESETS, choose_settings
from vdiff_ofx.io.decode import decode_frames
from vdiff_ofx.io.encode import Encoder
from vdiff_ofx.io.probe import probe


def _transcode(src, out, preset=None, bit_depth=None, **kw):
    info = probe(str(src))
    settings = choose_settings(str(out), info, preset, bit_depth)
    with Encoder(str(out), info, settings, info.width, info.height, **kw) as enc:
        for f in decode_frames(info):
            enc.write(f.rgb, f.pts)
    return info, settings, probe(str(out))


@pytest.fixture
def src10(tmp_path):
    p = tmp_path / "src10.mov"
    make_clip(p, "prores_ks", "yuv422p10le", n=5, size=(320, 240), timecode="10:00:00:00", audio="aac")
    return p


@pytest.mark.parametrize("preset,ext,max_mean", [
    ("prores_hq", ".mov", 0.004), ("prores_4444", ".mov", 0.004), ("dnxhr_hqx", ".mov", 0.006),
    ("h264", ".mp4", 0.01), ("h264_10bit", ".mp4", 0.01), ("h265", ".mp4", 0.01), ("h265_10bit", ".mkv", 0.01),
    ("ffv1", ".mkv", 1e-6)])
def test_each_preset_round_trips(tmp_path, src10, preset, ext, max_mean):
    out = tmp_path / f"out{ext}"
    info, settings, oinfo = _transcode(src10, out, preset)
    assert settings.preset in (preset, preset + "_10bit")
    assert oinfo.frame_count == 5 and (oinfo.width, oinfo.height) == (320, 240)
    a = [f.rgb for f in decode_frames(info)]
    b = [f.rgb for f in decode_frames(oinfo)]
    assert np.mean([np.abs(x - y).mean() for x, y in zip(a, b)]) < max_mean
    assert oinfo.start_timecode == "10:00:00:00"
    assert oinfo.colorspace == "bt709" and oinfo.color_primaries == "bt709" and oinfo.color_trc == "bt709"


def test_defaults_keep_depth_and_family(tmp_path):
    p10 = tmp_path / "s10.mp4"
    make_clip(p10, "libx264", "yuv420p10le", n=2, options={"preset": "ultrafast"})
    i10 = probe(str(p10))
    assert choose_settings("o.mov", i10).pix_fmt == "yuv422p10le"
    assert choose_settings("o.mov", i10).label == "ProRes 422 HQ"
    assert choose_settings("o.mp4", i10).pix_fmt == "yuv420p10le"
    assert choose_settings("o.mp4", i10).codec == "libx264"
    assert choose_settings("o.mkv", i10).codec == "ffv1"
    assert choose_settings("o.mkv", i10).pix_fmt == "yuv420p10le"
    assert choose_settings("o.mp4", i10, "h264").pix_fmt == "yuv420p10le"
    assert choose_settings("o.mp4", i10, "h264", bit_depth=8).pix_fmt == "yuv420p"
    p8 = tmp_path / "s8.mkv"
    make_clip(p8, "libx265", "yuv420p", n=2, options={"preset": "ultrafast", "x265-params": "log-level=error"})
    i8 = probe(str(p8))
    s = choose_settings("o.mp4", i8)
    assert (s.codec, s.pix_fmt) == ("libx265", "yuv420p")
    assert 10 <= int(s.options["crf"]) <= 16
    assert choose_settings("o.mkv", i8, bit_depth=10).pix_fmt == "yuv420p10le"


def test_alpha_source_gets_prores_4444_with_alpha(tmp_path):
    p = tmp_path / "a.mov"
    make_clip(p, "prores_ks", "yuva444p10le", n=2, alpha=True, options={"profile": "4"})
    info, settings, oinfo = _transcode(p, tmp_path / "o.mov")
    assert settings.preset == "prores_4444" and settings.pix_fmt == "yuva444p10le"
    assert oinfo.has_alpha
    f = next(decode_frames(oinfo))
    assert np.abs(f.rgb[..., 3] - pattern(0, alpha=True)[..., 3]).max() < 2 / 1023


@pytest.mark.parametrize("path,codec,match", [
    ("o.avi", None, "use one of .mov, .mp4, .mkv"), ("o.mp4", "prores_hq", "cannot be written to .mp4"),
    ("o.mp4", "ffv1", "cannot be written"), ("o.mov", "ffv1", "FFV1 \\(lossless\\) cannot be written to .mov: use .mkv or"), ("o.mov", "wmv", "unknown codec"),
    ("o.mov", "prores_hq", "cannot write 16-bit")])
def test_bad_choices_raise_output_error(tmp_path, path, codec, match):
    p = tmp_path / "s.mkv"
    make_clip(p, n=1)
    bit_depth = 16 if "16-bit" in match else None
    with pytest.raises(OutputError, match=match):
        choose_settings(path, probe(str(p)), codec, bit_depth)


def test_frame_rate_exact_from_ms_timestamps(tmp_path):
    src = tmp_path / "s.mkv"  # matroska stores 1 ms timestamps: 0, 42, 83, ...
    make_clip(src, n=12)
    for ext in (".mov", ".mp4", ".mkv"):
        preset = "h264" if ext == ".mp4" else None
        _, _, o = _transcode(src, tmp_path / f"o{ext}", preset)
        assert o.frame_rate == Fraction(24000, 1001), ext
        assert o.frame_count == 12 and not o.vfr


def test_vfr_timestamps_preserved(tmp_path):
    src = tmp_path / "v.mov"
    pts = [0, 1001, 2002, 5005, 6006, 9009, 10010, 11011]
    make_clip(src, "prores_ks", "yuv422p10le", n=8, pts=pts, time_base=Fraction(1, 24000))
    info, _, o = _transcode(src, tmp_path / "o.mkv", "ffv1")
    assert info.vfr and o.vfr
    assert video_times(tmp_path / "o.mkv") == pytest.approx(video_times(src), abs=1e-3)
    _, _, o2 = _transcode(src, tmp_path / "o.mov")
    assert video_times(tmp_path / "o.mov") == pytest.approx(video_times(src), abs=1e-6)


@pytest.mark.parametrize("ext,audio", [(".mov", "aac"), (".mkv", "aac"), (".mp4", "aac"), (".mov", "pcm_s16le")])
def test_audio_packets_identical(tmp_path, ext, audio):
    src = tmp_path / "s.mov"
    make_clip(src, "prores_ks", "yuv422p10le", n=10, audio=audio)
    out = tmp_path / f"o{ext}"
    info, _, o = _transcode(src, out, "h264" if ext == ".mp4" else None)
    assert any(s.startswith("audio:") for s in o.other_streams)
    a, b = packets(src), packets(out)
    assert len(a) > 5 and a == b
    assert len(list(decode_frames(o))) == 10


def test_copy_streams_off(tmp_path):
    src = tmp_path / "s.mov"
    make_clip(src, "prores_ks", "yuv422p10le", n=3, audio="aac")
    _, _, o = _transcode(src, tmp_path / "o.mkv", copy_streams=False)
    assert o.other_streams == ()


def test_colour_and_rotation_and_drop_frame_timecode(tmp_path):
    src = tmp_path / "s.mkv"
    make_clip(src, "ffv1", "yuv420p10le", n=3, colour=("bt2020", "smpte2084", "bt2020nc", "tv"),
              timecode="01:02:03;04", rotation=90, rate=Fraction(30000, 1001))
    for ext in (".mov", ".mkv"):
        _, _, o = _transcode(src, tmp_path / f"o{ext}")
        assert (o.color_primaries, o.color_trc, o.colorspace, o.color_range) == \
            ("bt2020", "smpte2084", "bt2020nc", "tv"), ext
        assert o.start_timecode == "01:02:03;04", ext
        assert o.rotation == 90, ext
        assert o.frame_rate == Fraction(30000, 1001)


def test_partial_name_keeps_container(tmp_path):
    src = tmp_path / "s.mkv"
    make_clip(src, n=2)
    info = probe(str(src))
    out = tmp_path / "clip.vdiff-partial-1234.mov"
    with Encoder(str(out), info, choose_settings("clip.mov", info), 64, 48) as enc:
        for f in decode_frames(info):
            enc.write(f.rgb)
    assert probe(str(out)).codec == "prores"


def test_errors_are_output_errors(tmp_path):
    src = tmp_path / "s.mkv"
    make_clip(src, n=1)
    info = probe(str(src))
    with pytest.raises(OutputError, match="cannot create"):
        Encoder(str(tmp_path / "no" / "such" / "o.mov"), info, choose_settings("o.mov", info), 64, 48)
    with pytest.raises(OutputError, match="256x120"):
        Encoder(str(tmp_path / "d.mov"), info, choose_settings("o.mov", info, "dnxhr_hqx"), 64, 48)


def test_abort_and_context_manager(tmp_path):
    src = tmp_path / "s.mkv"
    make_clip(src, n=2)
    info = probe(str(src))
    out = tmp_path / "o.mov"
    with pytest.raises(RuntimeError):
        with Encoder(str(out), info, choose_settings("o.mov", info), 64, 48) as enc:
            enc.write(pattern(0))
            raise RuntimeError("boom")
    enc.abort()  # idempotent
    assert set(PRESETS) >= {"prores_hq", "prores_4444", "dnxhr_hqx", "h264", "h264_10bit", "h265", "h265_10bit",
                            "ffv1"}


@pytest.mark.skipif(not __import__("os").path.exists("/dev/full"), reason="needs /dev/full")
def test_disk_full_is_one_line_output_error(tmp_path):
    src = tmp_path / "s.mkv"
    make_clip(src, n=1)
    info = probe(str(src))
    with pytest.raises(OutputError, match="disk full") as e:
        with Encoder("/dev/full", info, choose_settings("x.mkv", info), 64, 48, container_path_hint="x.mkv") as enc:
            for i in range(3):
                enc.write(pattern(i))
    assert "\n" not in str(e.value)


def test_retime_to_new_rate(tmp_path):
    src = tmp_path / "s.mkv"
    make_clip(src, n=6)
    _, _, o = _transcode(src, tmp_path / "o.mov", frame_rate=Fraction(25))
    assert o.frame_rate == Fraction(25) and o.frame_count == 6
    assert video_times(tmp_path / "o.mov") == pytest.approx([i / 25 for i in range(6)])


def test_prores_gets_tags_it_can_write(tmp_path):
    """FFmpeg's ProRes encoder writes a BT.470BG matrix as 0 (= RGB): the output must say SMPTE 170M instead."""
    src = tmp_path / "pal.mkv"
    make_clip(src, "ffv1", "yuv420p", n=3, size=(160, 120), colour=("bt470bg", "smpte170m", "bt470bg", "tv"))
    info, _, oinfo = _transcode(src, tmp_path / "out.mov", "prores_hq")
    assert info.colorspace == "bt470bg"
    assert (oinfo.colorspace, oinfo.color_primaries, oinfo.color_trc) == ("smpte170m", "bt470bg", "bt709")
    a = np.stack([f.rgb for f in decode_frames(info)])
    b = np.stack([f.rgb for f in decode_frames(oinfo)])
    assert np.abs(a - b).mean() < 0.004


def test_odd_width_gets_prores_4444_and_a_clear_refusal_where_a_codec_cannot(tmp_path):
    """FFmpeg's ProRes 4:2:2 encoders refuse or garble an odd width's last column; x264 refuses odd 4:2:0 sizes."""
    src = tmp_path / "odd.mkv"
    make_clip(src, "ffv1", "yuv444p", n=3, size=(161, 91))
    info, settings, oinfo = _transcode(src, tmp_path / "out.mov")
    assert settings.preset == "prores_4444"
    assert (oinfo.width, oinfo.height, oinfo.frame_count, oinfo.codec) == (161, 91, 3, "prores")
    a = np.stack([f.rgb for f in decode_frames(info)])
    b = np.stack([f.rgb for f in decode_frames(oinfo)])
    assert np.abs(a - b).max(axis=(0, 1, 3))[-2:].max() < 0.02  # the last columns too
    assert choose_settings(str(tmp_path / "o.mov"), info, width=162).preset == "prores_hq"
    assert choose_settings(str(tmp_path / "o.mov"), info, "prores_hq", width=161).preset == "prores_4444"
    with pytest.raises(OutputError, match=r"4:2:2 needs an even width, got 161x91: crop to even \(--crop 160:91\)"):
        Encoder(str(tmp_path / "o.mov"), info, choose_settings("o.mov", info, "prores_hq", width=160), 161, 91)
    h264 = choose_settings(str(tmp_path / "o.mp4"), info, "h264")
    h264 = type(h264)(h264.codec, "yuv420p", h264.options, h264.label)
    with pytest.raises(OutputError, match=r"4:2:0 needs an even width and height, got 161x91: crop to even"):
        Encoder(str(tmp_path / "o.mp4"), info, h264, 161, 91)


HDR10 = ("log-level=error:master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)"
         ":max-cll=1000,400")


def test_hdr10_metadata_survives_into_h265_and_is_named_where_it_cannot(tmp_path, caplog):
    """Mastering display and MaxCLL/MaxFALL of an HDR10 source come back exactly in H.265 output; a ProRes output,
    which this writer cannot give them, says so."""
    import av

    from vdiff_ofx.io.hdr import read_hdr

    src = tmp_path / "hdr10.mp4"
    make_clip(src, "libx265", "yuv420p10le", n=4, size=(128, 72), colour=("bt2020", "smpte2084", "bt2020nc", "tv"),
              options={"crf": "20", "x265-params": HDR10})
    info = probe(str(src))
    assert info.hdr is not None and info.hdr.max_cll == 1000 and info.hdr.max_fall == 400
    assert info.hdr.luminance == (0.005, 1000.0) and info.hdr.primaries[1] == (0.265, 0.69)  # green
    _, _, out = _transcode(src, tmp_path / "out.mp4", "h265_10bit")
    assert out.hdr == info.hdr and out.color_trc == "smpte2084"
    with av.open(str(tmp_path / "out.mp4")) as c:  # every frame a player might start at carries it
        assert all(read_hdr(f) == info.hdr for f in c.decode(video=0))
    with caplog.at_level("WARNING", logger="vdiff_ofx.io.encode"):
        _, _, mov = _transcode(src, tmp_path / "out.mov", "prores_hq")
    assert mov.hdr is None and any("HDR10 metadata (mastering 0.005-1000 cd/m2, MaxCLL 1000 MaxFALL 400)"
                                   in r.getMessage() for r in caplog.records)
    plain = tmp_path / "sdr.mp4"
    make_clip(plain, "libx265", "yuv420p10le", n=4, size=(128, 72), options={"x265-params": "log-level=error"})
    assert probe(str(plain)).hdr is None
