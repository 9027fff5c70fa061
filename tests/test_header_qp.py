"""H.265 slice QPs and AV1 frame quantisers read from real x265 / SVT-AV1 streams, checked against FFmpeg's own
header parsers (the trace_headers bitstream filter), and what `--model auto` does with them."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import av
import av.logging
import numpy as np
import pytest
from av.bitstream import BitStreamFilterContext

from test_codec_qp import textured
from vdiff_ofx.analysis.clip import HEAVY_QP, analyse, recommend
from vdiff_ofx.io.av1_qp import Av1Qp
from vdiff_ofx.io.decode import decode_frames
from vdiff_ofx.io.hevc_qp import HevcQp
from vdiff_ofx.io.probe import probe

ROOT = Path(__file__).resolve().parents[1]


def coded(path: Path, codec: str, options: dict, pix_fmt: str = "yuv420p", frames: int = 16, w: int = 192,
          h: int = 144) -> Path:
    """A fading, panning clip (weighted prediction and motion have work to do) through a real encoder."""
    with av.open(str(path), "w") as out:
        s = out.add_stream(codec, rate=Fraction(25))
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        s.options = options
        for i in range(frames):
            img = textured(i, h, w) * (1 - 0.04 * i)
            rgb = av.VideoFrame.from_ndarray((img * 255 + 0.5).astype(np.uint8), format="rgb24")
            out.mux(s.encode(rgb.reformat(format=pix_fmt)))
        out.mux(s.encode(None))
    return path


def x265(path: Path, params: str, pix_fmt: str = "yuv420p", frames: int = 16) -> Path:
    return coded(path, "libx265", {"x265-params": "log-level=none:pools=1:frame-threads=1:" + params}, pix_fmt, frames)


def svtav1(path: Path, params: str = "", pix_fmt: str = "yuv420p", w: int = 192, h: int = 144, crf: int = 40) -> Path:
    """SVT-AV1 hides alt-ref frames and shows them later by show_existing_frame."""
    options = {"crf": str(crf), "preset": "10", "svtav1-params": "lp=1:" + params}
    return coded(path, "libsvtav1", options, pix_fmt, 16, w, h)


def ours(path: Path) -> list[float | None]:
    with av.open(str(path)) as c:
        st = c.streams.video[0]
        kind = HevcQp if st.codec_context.name == "hevc" else Av1Qp
        reader = kind.from_extradata(st.codec_context.extradata)
        return [reader.packet_qp(bytes(p)) for p in c.demux(st) if p.size]


def traced(path: Path) -> list[list[tuple[str, int]]]:
    """Each packet's syntax elements (name, value), as FFmpeg's coded-bitstream parser logs them."""
    out = []
    av.logging.set_level(av.logging.TRACE)
    try:
        with av.logging.Capture(True) as log, av.open(str(path)) as c:
            st = c.streams.video[0]
            trace = BitStreamFilterContext("trace_headers", st)
            for packet in c.demux(st):
                if not packet.size:
                    continue
                seen = len(log)
                trace.filter(packet)
                fields = [re.match(r"\d+\s+(\w+)(?:\[\d+\])*\s+[01]+ = (-?\d+)", line) for _, _, line in log[seen:]]
                out.append([(m.group(1), int(m.group(2))) for m in fields if m])
    finally:
        av.logging.set_level(None)
    return out


def ffmpegs_hevc(path: Path) -> list[float | None]:
    """Each packet's mean 26 + init_qp_minus26 + slice_qp_delta."""
    out: list[float | None] = []
    init = 0
    for fields in traced(path):
        qps = []
        for name, value in fields:
            if name == "init_qp_minus26":
                init = value
            elif name == "slice_qp_delta":
                qps.append(26 + init + value)
        out.append(float(np.mean(qps)) if qps else None)
    return out


def ffmpegs_av1(path: Path) -> list[float | None]:
    """Each temporal unit's shown frame's base_q_idx: its own, or the slot's that show_existing_frame names."""
    out: list[float | None] = []
    slots: list[int | None] = [None] * 8
    for fields in traced(path):
        shown = None
        header: dict[str, int] = {}
        for name, value in fields:
            if name == "show_existing_frame":
                header = {}
            elif name == "frame_to_show_map_idx":
                shown = slots[value]
            elif name == "base_q_idx":
                refresh = header.get("refresh_frame_flags", 0xFF)  # absent: a shown key frame refreshes all
                slots = [value if refresh >> i & 1 else q for i, q in enumerate(slots)]
                if header.get("show_frame"):
                    shown = value
            header[name] = value
        out.append(None if shown is None else float(shown))
    return out


@pytest.mark.parametrize("params,pix_fmt,ext", [
    ("crf=33:weightb=1:bframes=6:b-pyramid=1:ref=4", "yuv420p", "mkv"),  # weighted P and B, deep pyramids
    ("crf=40:slices=3:ctu=16:min-cu-size=8", "yuv420p10le", "mov"),  # several slices, small CTUs, 10-bit
    ("crf=25:sao=0:temporal-mvp=0:aq-mode=3:keyint=5:open-gop=1", "yuv444p", "mp4"),  # 4:4:4, CRA pictures
    ("crf=30:scaling-list=default:amp=1:constrained-intra=1:repeat-headers=1", "yuv422p10le", "hevc"),  # Annex B
])
def test_slice_qp_matches_ffmpegs_header_parser(tmp_path, params, pix_fmt, ext):
    clip = x265(tmp_path / f"c.{ext}", params, pix_fmt)
    got, want = ours(clip), ffmpegs_hevc(clip)
    assert len(got) == 16 and all(q is not None for q in want)
    assert got == want


def test_constant_qp_reads_exactly(tmp_path):
    clip = x265(tmp_path / "q.mp4", "qp=37:ipratio=1:pbratio=1:aq-mode=0:no-cutree=1", frames=8)
    assert ours(clip) == [37.0] * 8
    assert [f.qp for f in decode_frames(probe(str(clip)), qp=True)] == [37.0] * 8


def test_damaged_headers_give_none_not_a_guess(tmp_path):
    clip = x265(tmp_path / "d.mp4", "crf=30", frames=4)
    with av.open(str(clip)) as c:
        st = c.streams.video[0]
        packets = [bytes(p) for p in c.demux(st) if p.size]
        extradata = st.codec_context.extradata
    assert HevcQp().packet_qp(packets[0]) is None  # no parameter sets: which PPS the slice names is unknown
    reader = HevcQp.from_extradata(extradata)
    assert reader.packet_qp(packets[0][:4 + 2 + 1]) is None  # a slice cut off inside its header
    assert reader.packet_qp(b"\x00\x00\x00\x05\x02\x01\xff\xff\xff") is None  # a header that names a bad PPS
    assert reader.packet_qp(packets[1]) is not None


def test_frames_get_their_own_packets_qp_in_presentation_order(tmp_path):
    """B-frames are decoded out of order: each frame must carry its own packet's QP (matched by pts)."""
    clip = x265(tmp_path / "b.mp4", "qp=30:ipratio=1.4:pbratio=1.3:aq-mode=0:no-cutree=1:bframes=3:b-adapt=0",
                frames=12)
    with av.open(str(clip)) as c:
        st = c.streams.video[0]
        reader = HevcQp.from_extradata(st.codec_context.extradata)
        by_pts = {p.pts: reader.packet_qp(bytes(p)) for p in c.demux(st) if p.size}
    want = [by_pts[pts] for pts in sorted(by_pts)]
    assert len(set(want)) >= 3 and want != list(by_pts.values())  # I, P, B QPs; decode order is not display order
    assert [f.qp for f in decode_frames(probe(str(clip)), qp=True)] == want


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    monkeypatch.setenv("VDIFF_MANIFEST", str(ROOT / "manifest.yaml"))
    monkeypatch.setenv("VDIFF_CONFIG_DIR", str(tmp_path / "config"))


def test_heavily_compressed_h265_is_deblocked_and_a_fine_one_left_alone(tmp_path, shipped):
    heavy = recommend(analyse(str(x265(tmp_path / "heavy.mp4", "crf=42", frames=8))))
    assert heavy["model"] == "deblock" and heavy["qp"] >= HEAVY_QP["hevc"], heavy
    assert heavy["blockiness"] < 1.3 and heavy["reason"].startswith("H.265 slice QP")
    light = analyse(str(x265(tmp_path / "light.mp4", "crf=16", frames=8)))
    assert light.codec == "hevc" and light.shots[0].features["qp"] < HEAVY_QP["hevc"]
    assert recommend(light)["model"] != "deblock"


@pytest.mark.parametrize("params,kw", [
    ("", {}),
    ("tile-columns=1:tile-rows=1", {"w": 640, "h": 360}),  # tiles: tile_info's bits before base_q_idx
    ("superres-mode=1:superres-denom=12:enable-overlays=1:keyint=8", {}),  # superres, overlay frames
    ("scm=1:film-grain=8:hierarchical-levels=5:irefresh-type=1:keyint=10", {"pix_fmt": "yuv420p10le"}),
    ("lookahead=0:pred-struct=1", {"w": 130, "h": 98}),  # low delay, odd size
])
def test_av1_base_q_idx_matches_ffmpegs_header_parser(tmp_path, params, kw):
    clip = svtav1(tmp_path / "a.mp4", params, **kw)
    got, want = ours(clip), ffmpegs_av1(clip)
    assert len(got) == 16 and all(q is not None for q in want) and len(set(want)) > 2
    assert got == want


def test_av1_frames_carry_their_shown_frames_index_and_damage_gives_none(tmp_path, shipped):
    clip = svtav1(tmp_path / "a.mkv", crf=60)
    assert [f.qp for f in decode_frames(probe(str(clip)), qp=True)] == ours(clip)
    with av.open(str(clip)) as c:
        st = c.streams.video[0]
        packets = [bytes(p) for p in c.demux(st) if p.size]
        extradata = st.codec_context.extradata
    assert Av1Qp().packet_qp(packets[0]) is not None  # the key frame's unit carries its own sequence header
    assert Av1Qp().packet_qp(packets[1]) is None  # an inter unit without one: nothing read
    shows_earlier = next(i for i, p in enumerate(packets) if len(p) < 8)  # show_existing_frame alone
    reader = Av1Qp.from_extradata(extradata)
    for p in packets[:shows_earlier]:
        reader.packet_qp(p)
    assert reader.packet_qp(packets[shows_earlier]) == ours(clip)[shows_earlier]
    reader.packet_qp(packets[0][:12])  # cut off inside the header: what it refreshed is unknown ...
    assert reader.packet_qp(packets[shows_earlier]) is None  # ... so no slot is trusted until the next key frame
    heavy = recommend(analyse(str(clip)))  # measured: `deblock` does not gain on AV1 (analysis.clip.HEAVY_QP)
    assert heavy["qp"] > 200 and heavy["model"] != "deblock" and "AV1 q index" in heavy["reason"], heavy


@pytest.mark.parametrize("kind", ["hevc", "av1"])
def test_flipped_and_cut_bytes_never_raise(tmp_path, kind):
    """A damaged stream costs its QP figures (None), never the analysis: 60 seeded passes of random byte flips
    and truncations over every packet, and over the parameter sets."""
    clip = x265(tmp_path / "c.mp4", "crf=30:bframes=3") if kind == "hevc" else svtav1(tmp_path / "c.mkv")
    reader_of = HevcQp if kind == "hevc" else Av1Qp
    with av.open(str(clip)) as c:
        st = c.streams.video[0]
        extradata, packets = bytes(st.codec_context.extradata), [bytes(p) for p in c.demux(st) if p.size]
    rng = np.random.default_rng(7)
    results = []
    for trial in range(60):
        reader = reader_of.from_extradata(extradata if trial % 3 else rng.bytes(len(extradata)))
        for p in packets:
            b = bytearray(p)
            for i in rng.integers(0, len(b), rng.integers(0, 4)):
                b[i] = rng.integers(0, 256)
            results.append(reader.packet_qp(bytes(b[:rng.integers(1, len(b) + 1)] if rng.random() < 0.2 else b)))
    assert any(q is None for q in results) and any(q is not None for q in results)
