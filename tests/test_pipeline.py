"""The whole path on real files: decode -> ops -> engine -> encode, atomic output, cancel, bad input."""

from __future__ import annotations

import errno
import threading

import av
import numpy as np
import pytest

from clips import make_clip
from vdiff_ofx import pipeline
from vdiff_ofx.errors import Cancelled, InputError, ModelError, OutputError
from vdiff_ofx.io.decode import decode_frames
from vdiff_ofx.io.probe import probe
from vdiff_ofx.ops.geometry import Crop, Rotate
from vdiff_ofx.pipeline import Job, run


@pytest.fixture()
def clip(tmp_path):
    return make_clip(tmp_path / "src.mp4", n=12, audio=True, timecode="01:00:00:00")


def leftovers(folder):
    return [p.name for p in folder.iterdir() if "vdiff-partial" in p.name]


def packets(path, kind):
    with av.open(str(path)) as c:
        streams = [s for s in c.streams if s.type == kind]
        return [bytes(p) for p in c.demux(streams) if p.size]


def test_enhance_whole_clip_keeps_frames_audio_timecode(kit, clip, tmp_path):
    out = tmp_path / "out.mov"
    seen = []
    result = run(Job(str(clip), str(out), model="cnn"), progress=seen.append)
    info = probe(str(out))
    assert result.frames == 12 and info.frame_count == 12
    assert (info.width, info.height) == (96, 64) and info.codec == "prores"
    assert info.start_timecode == "01:00:00:00"
    assert packets(out, "audio") == packets(clip, "audio")
    assert seen[-1].done == 12 and seen[-1].total == 12 and seen[-1].fps > 0
    assert not leftovers(tmp_path)
    src = [f.rgb for f in decode_frames(probe(str(clip)))]
    got = [f.rgb for f in decode_frames(info)]
    assert np.abs(got[5] - src[5]).mean() < 0.1  # residual model: close to the source, not garbage


def test_frame_range_by_timecode_moves_timecode(kit, clip, tmp_path):
    out = tmp_path / "part.mov"
    result = run(Job(str(clip), str(out), model="cnn", start="01:00:00:03", end=9))
    info = probe(str(out))
    assert (result.start, result.end) == (3, 9) and info.frame_count == 6
    assert info.start_timecode == "01:00:00:03"


def test_upscale_temporal_and_ops(kit, clip, tmp_path):
    up = run(Job(str(clip), str(tmp_path / "up.mkv"), model="up2"))
    assert (probe(up.output).width, probe(up.output).height) == (192, 128)
    tmp = run(Job(str(clip), str(tmp_path / "t.mkv"), model="temporal3"))
    assert probe(tmp.output).frame_count == 12
    ops = run(Job(str(clip), str(tmp_path / "o.mkv"), model="cnn", ops=[Crop(64, 48, 8, 8), Rotate(90)]))
    assert (probe(ops.output).width, probe(ops.output).height) == (48, 64)


def test_refuses_source_and_existing_output(kit, clip, tmp_path):
    with pytest.raises(OutputError, match="over the source"):
        run(Job(str(clip), str(clip), model="cnn", overwrite=True))
    existing = tmp_path / "exists.mov"
    existing.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="--overwrite"):
        run(Job(str(clip), str(existing), model="cnn"))
    assert existing.read_bytes() == b"keep me"
    with pytest.raises(OutputError, match="does not exist"):
        run(Job(str(clip), str(tmp_path / "nope" / "x.mov"), model="cnn"))
    with pytest.raises(OutputError):
        run(Job(str(clip), str(tmp_path / "x.avi"), model="cnn"))


def test_cancel_removes_partial_output(kit, tmp_path):
    clip = make_clip(tmp_path / "long.mp4", n=40)
    cancel = threading.Event()

    def progress(p):
        if p.done >= 3:
            cancel.set()

    with pytest.raises(Cancelled):
        run(Job(str(clip), str(tmp_path / "c.mov"), model="cnn"), progress=progress, cancel=cancel)
    assert not (tmp_path / "c.mov").exists() and not leftovers(tmp_path)


def test_bad_inputs_leave_nothing(kit, clip, tmp_path):
    garbage = tmp_path / "garbage.mov"
    garbage.write_bytes(b"\x00\x01 definitely not video" * 100)
    with pytest.raises(InputError):
        run(Job(str(garbage), str(tmp_path / "g.mov"), model="cnn"))
    data = clip.read_bytes()
    truncated = tmp_path / "trunc.mp4"
    truncated.write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError):
        run(Job(str(truncated), str(tmp_path / "t.mov"), model="cnn"))
    spec_file = kit.parent / "models" / "cnn.onnx"
    spec_file.write_bytes(spec_file.read_bytes()[:-20] + b"\0" * 20)
    from vdiff_ofx.engine import session
    session._CACHE.clear()
    with pytest.raises(ModelError, match="checksum"):
        run(Job(str(clip), str(tmp_path / "m.mov"), model="cnn"))
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".mov") == ["garbage.mov"]
    assert not leftovers(tmp_path)


def test_disk_full_is_one_clear_error(kit, clip, tmp_path, monkeypatch):
    real_write = pipeline.Encoder.write_frame
    calls = {"n": 0}

    def full(self, frame, pts=None):
        calls["n"] += 1
        if calls["n"] > 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, frame, pts)

    monkeypatch.setattr(pipeline.Encoder, "write_frame", full)
    with pytest.raises(OutputError, match="disk full"):
        run(Job(str(clip), str(tmp_path / "full.mov"), model="cnn"))
    assert not (tmp_path / "full.mov").exists() and not leftovers(tmp_path)



def test_auto_strength_reports_the_analysis_then_the_frames(kit, clip, tmp_path):
    """`--strength auto` analyses first: the progress callback hears stage "analyse" up to its total, then the
    frames; a cancel during the analysis stops it there and leaves nothing."""
    seen = []
    run(Job(str(clip), str(tmp_path / "out.mov"), model="sigma", strength="auto"), seen.append)
    stages = [p.stage for p in seen]
    assert stages[0] == "analyse" and stages[-1] == "enhance" and stages == sorted(stages)  # analyse < enhance
    last = [p for p in seen if p.stage == "analyse"][-1]
    assert last.done == last.total == probe(str(clip)).frame_count
    cancel = threading.Event()

    def stop(p):
        if p.stage == "analyse" and p.done >= 2:
            cancel.set()

    with pytest.raises(Cancelled):
        run(Job(str(clip), str(tmp_path / "cancelled.mov"), model="sigma", strength="auto"), stop, cancel)
    assert not leftovers(tmp_path) and not (tmp_path / "cancelled.mov").exists()
