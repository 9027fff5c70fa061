"""Interlaced sources on real files: field modes (separate, woven, progressive, auto), field order read and
written, fallbacks, and the modes through the CLI and the server."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from clip_kit import make_clip as make_progressive
from onnx_kit import write_manifest
from vdiff_ofx.cli import build_parser
from vdiff_ofx.engine.providers import Backend
from vdiff_ofx.errors import VdiffError
from vdiff_ofx.io.codecs import choose_settings
from vdiff_ofx.io.colour import rgb_to_frame
from vdiff_ofx.io.decode import decode_frames
from vdiff_ofx.io.encode import Encoder
from vdiff_ofx.io.probe import probe
from vdiff_ofx.ops.fields import FIELD_MODES, FIELD_ORDERS, by_field, top_first
from vdiff_ofx.ops.geometry import Crop
from vdiff_ofx.pipeline import Job, run
from vdiff_ofx.server import jobspec
from vdiff_ofx.server.runner import Runner
from vdiff_ofx.server.store import JobStore

TOP, BOTTOM = (0.2, 0.3, 0.4), (0.8, 0.7, 0.6)  # the two fields' flat colours


def two_colour_frames(n: int = 4, w: int = 64, h: int = 48) -> list[np.ndarray]:
    """Frames whose top-field rows are one flat colour and bottom-field rows another (pure combing)."""
    f = np.empty((h, w, 3), np.float32)
    f[0::2], f[1::2] = TOP, BOTTOM
    return [f.copy() for _ in range(n)]


def write_interlaced(path, frames: list[np.ndarray], order: str | None = "tt", pix_fmt: str = "gbrp10le",
                     codec: str = "ffv1") -> None:
    """Write ``frames`` with PyAV alone (not vdiff's encoder), the stream tagged with ``order``
    (None: no tag; "progressive": tagged progressive)."""
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=Fraction(25))
        vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
        if order == "progressive":
            vs.codec_context.field_order = 1
        elif order:
            vs.codec_context.field_order = next(k for k, v in FIELD_ORDERS.items() if v == order)
        for i, img in enumerate(frames):
            frame = rgb_to_frame(img, pix_fmt, "bt709", "tv")
            frame.pts = i
            for pkt in vs.encode(frame):
                out.mux(pkt)
        for pkt in vs.encode(None):
            out.mux(pkt)


def encode_with_vdiff(path, order: str, codec: str, n: int = 3, w: int = 64, h: int = 48) -> None:
    """Write a clip through vdiff's Encoder as the pipeline does for an interlaced source of ``order``."""
    src = path.parent / f"_src_{path.stem}.mkv"
    make_progressive(src, "ffv1", "yuv422p10le", n=1, size=(w, h))
    info = dataclasses.replace(probe(str(src)), field_order=order)
    settings = choose_settings(str(path), info, codec, None, w)
    with Encoder(str(path), info, settings, w, h, copy_streams=False) as enc:
        for i in range(n):
            enc.write(np.random.default_rng(i).random((h, w, 3), dtype=np.float32))


def prores_field_mode(path) -> int:
    """The interlace mode in the first ProRes frame header: 0 progressive, 1 top field first, 2 bottom first."""
    with av.open(str(path)) as c:
        data = next(bytes(p) for p in c.demux(c.streams.video[0]) if p.size)
    assert data[4:8] == b"icpf"
    return (data[20] >> 2) & 3  # frame size, 'icpf', header size, version, vendor, width, height, flags


def fields_of(path) -> list[np.ndarray]:
    return [f.rgb[..., :3] for f in decode_frames(probe(str(path)))]


@pytest.fixture()
def blur(kit, tmp_path, monkeypatch):
    """A real 3x3 box-blur ONNX model ("blur", edge padded) registered beside the kit: it smooths across
    rows, so a woven frame's two fields run into each other while a flat field stays exactly flat."""
    folder = tmp_path / "blurkit"
    pads = numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads")
    weight = numpy_helper.from_array(np.full((3, 1, 3, 3), 1 / 9, np.float32), "w")
    nodes = [helper.make_node("Pad", ["input", "pads"], ["padded"], mode="edge"),
             helper.make_node("Conv", ["padded", "w"], ["output"], group=3)]
    graph = helper.make_graph(nodes, "blur", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                            ["N", 3, "H", "W"])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                              [pads, weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    (folder / "models").mkdir(parents=True)
    onnx.save(model, str(folder / "models" / "blur.onnx"))
    manifest = write_manifest(folder, [{"name": "blur", "file": "models/blur.onnx", "task": "denoise",
                                        "receptive_field": 2}])
    monkeypatch.setenv("VDIFF_MANIFEST", str(manifest))
    return manifest


# -- ops.fields.by_field ------------------------------------------------------------------------------------

def test_identity_process_weaves_back_exactly():
    rng = np.random.default_rng(0)
    frames = [rng.random((6, 5, 3), dtype=np.float32) for _ in range(3)]
    out = by_field(lambda win: win[len(win) // 2], frames)
    assert out.dtype == np.float32 and np.array_equal(out, frames[1])


def test_process_sees_one_field_of_every_frame():
    rows = np.arange(8, dtype=np.float32)[:, None, None] * np.ones((1, 4, 3), np.float32)
    frames = [rows + 100 * k for k in range(3)]  # value = row + 100 * frame
    seen = []

    def process(win):
        seen.append([np.unique(f[:, 0, 0] % 100).tolist() for f in win])
        return win[1]

    by_field(process, frames)
    assert seen == [[[0, 2, 4, 6]] * 3, [[1, 3, 5, 7]] * 3]  # top fields, then bottom fields, same parity


def test_odd_height_is_refused():
    with pytest.raises(ValueError, match="even frame height"):
        by_field(lambda win: win[0], [np.zeros((7, 4, 3), np.float32)])


def test_2x_process_weaves_to_twice_the_height():
    frame = np.random.default_rng(1).random((6, 4, 3), dtype=np.float32)

    def up2(win):
        return np.repeat(np.repeat(win[0], 2, 0), 2, 1)

    out = by_field(up2, [frame])
    assert out.shape == (12, 8, 3)
    assert np.array_equal(out[0::2], up2([frame[0::2]])) and np.array_equal(out[1::2], up2([frame[1::2]]))


# -- field order read (probe) and written (encoder) ----------------------------------------------------------

@pytest.mark.parametrize("order", ["tt", "bb", "tb", "bt"])
def test_probe_reads_the_field_order_tag(tmp_path, order):
    p = tmp_path / "i.mkv"
    write_interlaced(p, two_colour_frames(2), order)
    assert probe(str(p)).field_order == order


@pytest.mark.parametrize("order", [None, "progressive"])
def test_probe_progressive_is_none(tmp_path, order):
    p = tmp_path / "p.mkv"
    write_interlaced(p, two_colour_frames(2), order)
    assert probe(str(p)).field_order is None
    q = tmp_path / "p.mov"
    make_progressive(q, "prores_ks", "yuv422p10le", n=2)
    assert probe(str(q)).field_order is None


@pytest.mark.parametrize("order,mode", [("tt", 1), ("tb", 1), ("bb", 2), ("bt", 2)])
def test_prores_codes_the_fields_the_tag_says(tmp_path, order, mode):
    p = tmp_path / "i.mov"
    encode_with_vdiff(p, order, "prores")
    assert prores_field_mode(p) == mode  # the bitstream agrees with the tag (unflagged frames code as tff)
    assert probe(str(p)).field_order == order


@pytest.mark.parametrize("order", ["tt", "bb", "tb", "bt"])
def test_h264_field_order_survives_mp4(tmp_path, order):
    p = tmp_path / "i.mp4"
    encode_with_vdiff(p, order, "libx264")
    got = probe(str(p)).field_order
    # mp4 keeps no tag and FFmpeg's H.264 parser says "tt" for any MBAFF stream: the frames' flags decide
    assert got in ("tt", "bb") and top_first(got) == top_first(order)


# -- the pipeline: field modes ------------------------------------------------------------------------------

def interlaced_source(tmp_path, order: str = "bb", n: int = 6, h: int = 48) -> str:
    src = tmp_path / f"src_{order}_{h}.mkv"
    write_interlaced(src, two_colour_frames(n, h=h), order)
    return str(src)


@pytest.mark.parametrize("mode,order,coded", [("auto", "bb", 2), ("separate", "bb", 2), ("woven", "bb", 2),
                                              ("progressive", None, 0)])
def test_each_mode_tags_the_output(kit, tmp_path, mode, order, coded):
    out = run(Job(interlaced_source(tmp_path), str(tmp_path / "o.mov"), model="cnn", fields=mode)).output
    assert probe(out).field_order == order and prores_field_mode(out) == coded  # tag and bitstream agree


def test_temporal_and_2x_models_keep_the_field_order(kit, tmp_path):
    src = interlaced_source(tmp_path)
    assert probe(run(Job(src, str(tmp_path / "t.mkv"), model="temporal3", fields="separate")).output
                 ).field_order == "bb"
    up = run(Job(src, str(tmp_path / "up.mkv"), model="up2"))
    assert (up.width, up.height) == (128, 96) and probe(up.output).field_order == "bb"


def test_separate_keeps_fields_apart_woven_mixes_them(blur, tmp_path):
    src = interlaced_source(tmp_path, "tt", n=3)
    separate = fields_of(run(Job(src, str(tmp_path / "f.mkv"), model="blur", fields="separate")).output)[1]
    woven = fields_of(run(Job(src, str(tmp_path / "w.mkv"), model="blur", fields="woven")).output)[1]
    tol = 3 / 1023  # 10-bit FFV1 4:4:4 both ways
    assert np.abs(separate[0::2] - TOP).max() < tol and np.abs(separate[1::2] - BOTTOM).max() < tol
    top, bottom = np.array(TOP), np.array(BOTTOM)
    # woven, each row inside is blurred with its two neighbours of the other field: 2/3 of it is the other colour
    assert np.abs(woven[2:-2:2] - (top + 2 * bottom) / 3).max() < tol
    assert np.abs(woven[3:-2:2] - (2 * top + bottom) / 3).max() < tol


def test_auto_is_woven_at_1x(blur, tmp_path):
    src = interlaced_source(tmp_path, "tt", n=3)
    auto = run(Job(src, str(tmp_path / "a.mkv"), model="blur"))
    woven = run(Job(src, str(tmp_path / "w.mkv"), model="blur", fields="woven"))
    assert probe(auto.output).field_order == "tt"
    assert all(np.array_equal(a, w) for a, w in zip(fields_of(auto.output), fields_of(woven.output)))


def test_auto_is_separate_at_2x(kit, tmp_path):
    src = tmp_path / "noisy.mkv"
    rng = np.random.default_rng(3)
    write_interlaced(src, [rng.random((48, 64, 3), dtype=np.float32) for _ in range(3)], "tt")
    auto, separate, progressive = (fields_of(run(Job(str(src), str(tmp_path / f"{m}.mkv"), model="up2",
                                                     fields=m)).output) for m in ("auto", "separate", "progressive"))
    assert all(np.array_equal(a, b) for a, b in zip(auto, separate))
    assert not np.array_equal(auto[1], progressive[1])  # so the comparison can tell the two apart


def test_woven_upscale_is_refused_before_any_frame(kit, tmp_path):
    src = interlaced_source(tmp_path)
    seen = []
    with pytest.raises(VdiffError, match="fields 'woven' cannot be used with model 'up2' \\(scale 2\\)"):
        run(Job(src, str(tmp_path / "w.mov"), model="up2", fields="woven"), seen.append)
    assert seen == [] and sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [Path(src).name]


def test_unknown_mode_is_refused_first(tmp_path):
    with pytest.raises(VdiffError, match="fields 'interlaced' must be one of auto, separate, woven, progressive"):
        run(Job(str(tmp_path / "missing.mkv"), str(tmp_path / "o.mkv"), fields="interlaced"))


def test_progressive_source_ignores_the_mode(kit, tmp_path):
    src = tmp_path / "p.mkv"
    write_interlaced(src, two_colour_frames(3), None)
    for mode in FIELD_MODES:
        out = run(Job(str(src), str(tmp_path / f"{mode}.mkv"), model="up2", fields=mode))  # woven 2x too
        assert probe(out.output).field_order is None


@pytest.mark.parametrize("mode,h,ops,warned,order", [
    ("auto", 48, [Crop(32, 32, 8, 8)], True, None),
    ("separate", 48, [Crop(32, 32, 8, 8)], True, None),
    ("woven", 48, [Crop(32, 32, 8, 8)], True, None),
    ("progressive", 48, [Crop(32, 32, 8, 8)], False, None),
    ("separate", 45, [], True, None),   # odd height: two fields of unequal height cannot be enhanced apart
    ("auto", 45, [], False, "tt"),      # ... whole woven frames keep them as they are
])
def test_ops_or_odd_height_fall_back_to_progressive(kit, tmp_path, caplog, mode, h, ops, warned, order):
    src = interlaced_source(tmp_path, "tt", n=3, h=h)
    with caplog.at_level(logging.WARNING, logger="vdiff_ofx.pipeline"):
        out = run(Job(src, str(tmp_path / "o.mkv"), model="cnn", fields=mode, ops=ops))
    assert ("whole frames are enhanced and the output is progressive" in caplog.text) == warned
    assert caplog.text.count("is interlaced") == int(warned)
    assert probe(out.output).field_order == order and out.height == (32 if ops else h)


# -- the server ---------------------------------------------------------------------------------------------

def test_jobspec_takes_the_fields_key(kit, tmp_path):
    src = interlaced_source(tmp_path)
    out = str(tmp_path / "o.mov")
    assert jobspec.build(src, out, "cnn", {})[0].fields == "auto"
    assert jobspec.build(src, out, "up2", {"fields": "separate"})[0].fields == "separate"
    with pytest.raises(VdiffError, match="fields 'both' must be one of auto, separate"):
        jobspec.build(src, out, "cnn", {"fields": "both"})
    with pytest.raises(VdiffError, match="'woven' cannot be used with model 'up2'"):
        jobspec.build(src, out, "up2", {"fields": "woven"})


def test_runner_passes_the_mode_to_every_segment(blur, tmp_path):
    src = interlaced_source(tmp_path, "tt", n=5)
    store = JobStore(tmp_path / "jobs.sqlite")
    runner = Runner(store, Backend(providers=["cpu"], threads=1), segment_frames=2)
    out = tmp_path / "served.mkv"
    job = store.add(src, str(out), "blur", {"fields": "separate", "copy_streams": False}, 5)
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while store.get(job["id"])["state"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.05)
        final = store.get(job["id"])
    finally:
        runner.stop()
        store.close()
    assert final["state"] == "done", final["error"]
    assert probe(str(out)).field_order == "tt"
    frames = fields_of(out)
    tol = 3 / 1023
    assert len(frames) == 5 and all(np.abs(f[0::2] - TOP).max() < tol and np.abs(f[1::2] - BOTTOM).max() < tol
                                    for f in frames)  # every segment separate (the default here would mix)


# -- the CLI ------------------------------------------------------------------------------------------------

def test_cli_fields_flag_reaches_the_job(kit_env, tmp_path):
    src = interlaced_source(tmp_path, "tt", n=2)

    def enhance(*flags: str) -> subprocess.CompletedProcess:
        out = tmp_path / f"out{'_'.join(flags)}.mkv"
        return subprocess.run([sys.executable, "-m", "vdiff_ofx.cli", "enhance", src, "-o", str(out), "-q",
                               *flags], env=kit_env, capture_output=True, text=True, timeout=120)

    for flags, expect in ((["-m", "cnn"], "tt"), (["-m", "cnn", "--fields", "progressive"], None)):
        r = enhance(*flags)
        assert r.returncode == 0, r.stderr
        assert probe(str(tmp_path / f"out{'_'.join(flags)}.mkv")).field_order == expect
    r = enhance("-m", "up2", "--fields", "woven")
    assert r.returncode == 1 and "'woven' cannot be used with model 'up2'" in r.stderr and "Traceback" not in r.stderr
    r = enhance("-m", "cnn", "--fields", "both")
    assert r.returncode == 2 and "invalid choice: 'both'" in r.stderr
    assert build_parser().parse_args(["enhance", src]).fields == "auto"


# -- 4:2:0 chroma of interlaced frames ------------------------------------------------------------------------

def _row_error(frames: list[np.ndarray]) -> float:
    """Largest distance of any row from its field's colour, in 10-bit code values."""
    want = np.empty_like(frames[0])
    want[0::2], want[1::2] = TOP, BOTTOM
    return max(float(np.abs(f - want).max()) for f in frames) * 1023


@pytest.mark.parametrize("pix_fmt", ["yuv420p10le", "yuv420p"])
def test_420_chroma_is_resampled_within_each_field(pix_fmt):
    from vdiff_ofx.io.colour import frame_to_rgb

    frame = two_colour_frames(1)[0]
    tol = 3 if pix_fmt.endswith("10le") else 12
    woven = frame_to_rgb(rgb_to_frame(frame, pix_fmt, "bt709", "tv", interlaced=True), "bt709", "tv", interlaced=True)
    assert _row_error([woven]) < tol
    mixed = frame_to_rgb(rgb_to_frame(frame, pix_fmt, "bt709", "tv"), "bt709", "tv")
    assert _row_error([mixed]) > 50  # progressive chroma averages the two fields' colours


def test_interlaced_420_source_keeps_each_fields_colour_through_the_pipeline(blur, tmp_path):
    src, out = tmp_path / "i420.mkv", tmp_path / "out.mkv"
    # written with field-aware chroma, as an interlaced camera or encoder does
    h, w = 48, 64
    with av.open(str(src), "w") as container:
        vs = container.add_stream("ffv1", rate=Fraction(25))
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p10le"
        vs.codec_context.field_order = 2  # tt
        vs.codec_context.colorspace, vs.codec_context.color_range = 1, 1  # BT.709, limited
        for i, img in enumerate(two_colour_frames(4, w, h)):
            frame = rgb_to_frame(img, "yuv420p10le", "bt709", "tv", interlaced=True)
            frame.pts = i
            for pkt in vs.encode(frame):
                container.mux(pkt)
        for pkt in vs.encode(None):
            container.mux(pkt)
    assert _row_error(fields_of(src)) < 3
    run(Job(str(src), str(out), model="blur", fields="separate"))
    info = probe(str(out))
    assert info.field_order == "tt" and info.pix_fmt == "yuv420p10le"
    assert _row_error(fields_of(out)) < 3


def test_analyze_reports_the_scan(tmp_path, kit_env):
    from vdiff_ofx.analysis.clip import analyse

    src = tmp_path / "i.mkv"
    write_interlaced(src, two_colour_frames(4), order="bb")
    result = analyse(str(src))
    assert result.field_order == "bb" and result.to_dict()["field_order"] == "bb"
    out = subprocess.run([sys.executable, "-m", "vdiff_ofx.cli", "analyze", str(src)], env=kit_env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "interlaced (bb)" in out.stdout.splitlines()[0], out.stdout + out.stderr
    progressive = tmp_path / "p.mkv"
    write_interlaced(progressive, two_colour_frames(4), order=None)
    assert analyse(str(progressive)).field_order is None
