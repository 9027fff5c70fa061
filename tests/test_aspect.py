"""Anamorphic sources (HDV 1440x1080 at 4:3, DV, DVCPRO HD): the pixel aspect ratio survives enhancement, follows
crops, rotations and resizes, and a resize with a -1 side keeps the picture's shape as it is seen."""

from __future__ import annotations

import logging
from fractions import Fraction

import av
import pytest

from clips import make_clip
from onnx_kit import standard_set
from test_server_kit import Server, use_env
from vdiff_ofx.engine.providers import Backend
from vdiff_ofx.io.probe import probe
from vdiff_ofx.ops.geometry import Crop, Flip, Resize, Rotate, output_aspect, parse_resize
from vdiff_ofx.pipeline import Job, run

HDV = Fraction(4, 3)


def stored_aspect(path) -> Fraction | None:
    """The pixel aspect ratio a reader finds in the written file (FFmpeg's guess: container, then bitstream)."""
    with av.open(str(path)) as c:
        return c.streams.video[0].sample_aspect_ratio


def test_aspect_follows_the_geometry_ops():
    assert output_aspect([Crop(60, 40, 4, 4), Flip("h")], 96, 64, HDV) == HDV
    assert output_aspect([Rotate(90)], 96, 64, HDV) == Fraction(3, 4)
    assert output_aspect([Rotate(180)], 96, 64, HDV) == HDV
    # 1440x1080 at 4:3 shown as 1920x1080: resized to 1920x1080 its pixels are square
    assert output_aspect([Resize(1920, 1080)], 1440, 1080, HDV) is None
    # halving only the width doubles each pixel's width
    assert output_aspect([Resize(720, 1080)], 1440, 1080, HDV) == Fraction(8, 3)
    assert output_aspect([Resize(50, 50)], 96, 64, None) is None  # square sources stay square


def test_resize_minus_one_keeps_the_displayed_shape():
    assert (parse_resize("1920x-1", "lanczos", 1440, 1080, HDV).height, ) == (1080, )
    assert parse_resize("-1x720", "lanczos", 1440, 1080, HDV).width == 1280
    assert parse_resize("1920x-1", "lanczos", 1440, 1080).height == 1440  # square pixels: the stored shape
    # PAL DV (720x576 at 16:15, shown 768x576): 640x-1 gives 480, within rounding of square
    r = parse_resize("640x-1", "lanczos", 720, 576, Fraction(16, 15))
    assert (r.width, r.height) == (640, 480) and output_aspect([r], 720, 576, Fraction(16, 15)) is None


@pytest.fixture()
def hdv(tmp_path):
    return make_clip(tmp_path / "hdv.mov", n=8, width=96, height=64, sar=HDV)


def test_probe_reads_the_pixel_aspect(hdv, tmp_path):
    assert probe(str(hdv)).sample_aspect == HDV
    assert probe(str(make_clip(tmp_path / "square.mov", n=3))).sample_aspect is None


@pytest.mark.parametrize("name, model, ops, size, aspect", [
    ("denoise.mov", "cnn", [], (96, 64), HDV),                          # ProRes: the pasp atom
    ("up.mp4", "up2", [], (192, 128), HDV),                             # H.264: both sides scale alike
    ("temporal.mov", "temporal3", [Rotate(90)], (64, 96), Fraction(3, 4)),
    ("conform.mov", "cnn", [Resize(128, 64)], (128, 64), None),         # to square pixels
    ("crop.mp4", "cnn", [Crop(48, 32, 8, 8)], (48, 32), HDV),
])
def test_enhanced_output_keeps_the_pixel_aspect(kit, hdv, tmp_path, name, model, ops, size, aspect):
    out = tmp_path / name
    run(Job(str(hdv), str(out), model=model, ops=ops, backend=Backend(providers=["cpu"], threads=1)))
    info = probe(str(out))
    assert (info.width, info.height) == size
    assert info.sample_aspect == aspect and stored_aspect(out) == aspect


def test_mkv_that_cannot_store_it_says_so(kit, hdv, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="vdiff_ofx.io.encode"):
        run(Job(str(hdv), str(tmp_path / "lossless.mkv"), model="cnn", backend=Backend(providers=["cpu"], threads=1)))
    assert any("pixel aspect ratio 4/3" in r.getMessage() and ".mov" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="vdiff_ofx.io.encode"):
        run(Job(str(hdv), str(tmp_path / "h264.mkv"), model="cnn", codec="h264",
                backend=Backend(providers=["cpu"], threads=1)))
    assert not [r for r in caplog.records if "pixel aspect" in r.getMessage()]
    assert stored_aspect(tmp_path / "h264.mkv") == HDV  # H.264 carries it in its VUI


def test_server_segment_job_keeps_the_pixel_aspect(tmp_path, monkeypatch):
    """A server job (what Resolve sends) is cut into segments and remuxed: the joined file keeps it too, and a
    resize with a -1 side conforms the clip to square pixels."""
    srv = Server(tmp_path / "srv", standard_set(tmp_path / "kit"), "--segment-frames", "4")
    (tmp_path / "srv").mkdir()
    use_env(monkeypatch, srv.env)
    clip = make_clip(tmp_path / "src.mov", n=14, width=96, height=64, sar=HDV)
    try:
        srv.start()
        client = srv.client()
        out, conformed = tmp_path / "seg.mov", tmp_path / "conformed.mov"
        client.wait(client.submit(str(clip), str(out), model="temporal3")["id"], timeout=60, poll=0.05)
        client.wait(client.submit(str(clip), str(conformed), model="cnn", ops={"resize": "-1x64"})["id"],
                    timeout=60, poll=0.05)
    finally:
        srv.close()
    assert probe(str(out)).frame_count == 14 and stored_aspect(out) == HDV
    info = probe(str(conformed))
    assert (info.width, info.height) == (128, 64) and stored_aspect(conformed) in (None, Fraction(1))
