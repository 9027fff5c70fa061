"""vdiff_ofx.vapoursynth.enhance inside a real vspipe (.venv-vs, VapourSynth R81): RGBS frames equal the
Enhancer's, YUV 4:2:0 10-bit round-trips through core.resize within a measured tolerance, temporal models
see clamped neighbours, upscalers change the size."""

from __future__ import annotations

import io
import os
import subprocess
import textwrap
from pathlib import Path

import av
import numpy as np
import pytest
from clips import make_clip
from onnx_kit import standard_set

from vdiff_ofx.engine.enhancer import Enhancer
from vdiff_ofx.io.colour import frame_to_rgb, rgb_to_frame
from vdiff_ofx.y4m import read_frames, read_header

ROOT = Path(__file__).resolve().parents[1]
VSPIPE = ROOT / ".venv-vs" / "bin" / "vspipe"
pytestmark = pytest.mark.skipif(not VSPIPE.exists(), reason=".venv-vs with VapourSynth not set up (tests/setup.sh)")

W, H, N = 48, 32, 5

SCRIPT = """
import av
import numpy as np
import vapoursynth as vs
from vdiff_ofx.io.colour import frame_to_rgb
from vdiff_ofx.vapoursynth import enhance

core = vs.core
with av.open({src!r}) as c:
    decoded = list(c.decode(video=0))
if {mode!r} == "rgbs":
    data = [frame_to_rgb(f, "bt709", "tv") for f in decoded]
    fmt = vs.RGBS
else:  # the source's own 10-bit 4:2:0 planes
    data = [[np.frombuffer(p, "<u2").reshape(p.height, -1)[:, : p.width] for p in f.planes] for f in decoded]
    fmt = vs.YUV420P10
base = core.std.BlankClip(format=fmt, width={w}, height={h}, length=len(data), fpsnum=25, fpsden=1)


def fill(n, f):
    fout = f.copy()
    for p in range(3):
        np.asarray(fout[p])[...] = data[n][..., p] if {mode!r} == "rgbs" else data[n][p]
    return fout


clip = core.std.SetFrameProps(core.std.ModifyFrame(base, base, fill), _Matrix=1, _Range=0)
enhance(clip, model={model!r}, tta={tta}).set_output()
"""


@pytest.fixture()
def env(tmp_path, monkeypatch):
    manifest = standard_set(tmp_path / "kit")
    monkeypatch.setenv("VDIFF_MANIFEST", str(manifest))
    monkeypatch.setenv("VDIFF_CONFIG_DIR", str(tmp_path / "config"))
    return dict(os.environ)


@pytest.fixture()
def src(tmp_path):
    return make_clip(tmp_path / "src.mkv", n=N, width=W, height=H, codec="ffv1", pix_fmt="yuv420p10le")


def vspipe(tmp_path, env, src, mode: str, model: str, y4m: bool, tta: int = 1) -> bytes:
    script = tmp_path / f"{mode}_{model}.vpy"
    script.write_text(textwrap.dedent(SCRIPT.format(src=str(src), mode=mode, model=model, w=W, h=H, tta=tta)))
    args = [str(VSPIPE), *(["-c", "y4m"] if y4m else []), str(script), "-"]
    r = subprocess.run(args, env=env, capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    return r.stdout


def reference(src, model: str, tta: int = 1) -> list[np.ndarray]:
    """Enhancer in-process on the same decoded frames, neighbours clamped at the clip's ends."""
    with av.open(str(src)) as c:
        frames = [frame_to_rgb(f, "bt709", "tv") for f in c.decode(video=0)]
    enh = Enhancer(model, tta=tta)
    half = enh.window // 2
    return [enh.process([frames[min(max(i + k, 0), len(frames) - 1)] for k in range(-half, half + 1)])
            for i in range(len(frames))]


@pytest.mark.parametrize("model,tta", [("cnn", 1), ("temporal3", 1), ("up2", 1), ("up2", 8)])
def test_rgbs_equals_enhancer(tmp_path, env, src, model, tta):
    raw = vspipe(tmp_path, env, src, "rgbs", model, y4m=False, tta=tta)
    ref = reference(src, model, tta)
    s = 2 if model == "up2" else 1
    gbr = np.frombuffer(raw, np.float32).reshape(N, 3, H * s, W * s)  # vspipe writes RGB planes as G, B, R
    got = gbr[:, [2, 0, 1]].transpose(0, 2, 3, 1)
    assert len(ref) == N and got.shape[1:] == ref[0].shape
    np.testing.assert_allclose(got, np.stack(ref), atol=2e-5)  # fp32 rounding (onnxruntime threading)


def test_yuv420p10_through_resize_matches_enhance(tmp_path, env, src):
    """Same frames as `vdiff enhance` would write, except for the 4:2:0 chroma filters: zimg's (bilinear up,
    Spline36 down) vs vdiff's own (bilinear up, box + inverse blur down, which round-trips losslessly).
    Measured on this clip (per-pixel RGB noise, so chroma is worst-case busy): luma identical (0 codes),
    chroma mean 4.2-5.4 / max 77-98 codes of 1023 per frame, the same as zimg's own YUV->RGB->YUV round trip
    of the untouched source (4.66 / 97 over the clip): all of it is the resampler, none is vdiff.
    Bounds: ~20% margin."""
    out = vspipe(tmp_path, env, src, "yuv", "cnn", y4m=True)
    stream = io.BytesIO(out)
    header = read_header(stream)
    assert (header.width, header.height, header.colourspace) == (W, H, "420p10")
    got = list(read_frames(stream, header))
    ref = reference(src, "cnn")
    assert len(got) == N
    for g, r in zip(got, ref):
        frame = rgb_to_frame(r, "yuv420p10le", "bt709", "tv")
        want = [np.frombuffer(p, "<u2").reshape(p.height, -1)[:, : p.width] for p in frame.planes]
        dy = np.abs(g[0].astype(int) - want[0])
        dc = np.concatenate([np.abs(g[i].astype(int) - want[i]).ravel() for i in (1, 2)])
        assert dy.max() <= 1 and dy.mean() <= 0.01, (dy.mean(), dy.max())
        assert dc.mean() <= 6.5 and dc.max() <= 118, (dc.mean(), dc.max())


def test_every_input_family_comes_back_in_its_own_format(tmp_path, env):
    """RGBH direct; integer RGB, GRAY and YUV (4:4:4 16-bit, 4:2:2 8-bit) through core.resize and back."""
    script = tmp_path / "formats.py"
    script.write_text(textwrap.dedent("""
        import vapoursynth as vs
        from vdiff_ofx.vapoursynth import enhance
        core = vs.core
        for fmt in (vs.RGBH, vs.RGB24, vs.RGB48, vs.GRAY8, vs.YUV444P16, vs.YUV422P8):
            c = core.std.BlankClip(format=fmt, width=24, height=16, length=3)
            for model, s in (("cnn", 1), ("up2", 2), ("temporal3", 1)):
                e = enhance(c, model=model, matrix_in="709")
                e.get_frame(2)
                assert (e.format.id, e.width, e.height, e.num_frames) == (fmt, 24 * s, 16 * s, 3), (fmt, model)
        print("all formats ok")
    """))
    r = subprocess.run([str(VSPIPE.parent / "python"), str(script)], env=env, capture_output=True, timeout=300)
    assert r.returncode == 0 and b"all formats ok" in r.stdout, r.stderr.decode()[-2000:]


def test_interlaced_frames_are_upscaled_field_by_field(tmp_path, env):
    """A clip flagged top field first (_FieldBased=2) goes through an upscaler one field at a time (the Enhancer's
    own output of each field, woven); a progressive clip, or fields="progressive", goes through whole; "woven"
    is refused for an upscaler."""
    script = tmp_path / "fields.py"
    script.write_text(textwrap.dedent("""
        import numpy as np
        import vapoursynth as vs
        from vdiff_ofx.engine.enhancer import Enhancer
        from vdiff_ofx.ops.fields import by_field
        from vdiff_ofx.vapoursynth import enhance
        core = vs.core
        rgb = np.random.default_rng(0).random((16, 24, 3), dtype=np.float32)
        base = core.std.BlankClip(format=vs.RGBS, width=24, height=16, length=2)

        def fill(n, f):
            fout = f.copy()
            for p in range(3):
                np.asarray(fout[p])[...] = rgb[..., p]
            return fout

        clip = core.std.ModifyFrame(base, base, fill)
        enh = Enhancer("up2")
        want = {"separate": by_field(enh.process, [rgb]), "whole": enh.process([rgb])}
        assert np.abs(want["separate"] - want["whole"]).max() > 1e-3
        for c, fields, expect in ((core.std.SetFrameProps(clip, _FieldBased=2), "auto", "separate"),
                                  (clip, "auto", "whole"),
                                  (core.std.SetFrameProps(clip, _FieldBased=1), "progressive", "whole")):
            out = enhance(c, model="up2", fields=fields).get_frame(1)
            got = np.stack([np.asarray(out[p]) for p in range(3)], -1)
            assert np.abs(got - want[expect]).max() < 2e-5, (fields, expect)
        try:
            enhance(core.std.SetFrameProps(clip, _FieldBased=2), model="up2", fields="woven").get_frame(0)
        except vs.Error as exc:
            assert "woven" in str(exc), exc
        else:
            raise AssertionError("woven upscale was not refused")
        print("fields ok")
    """))
    r = subprocess.run([str(VSPIPE.parent / "python"), str(script)], env=env, capture_output=True, timeout=300)
    assert r.returncode == 0 and b"fields ok" in r.stdout, (r.stdout.decode()[-1000:], r.stderr.decode()[-2000:])


def test_temporal_windows_stop_at_scene_change_props_and_cuts(tmp_path, env):
    """A cut at frame 2, told by the _SceneChangePrev/_SceneChangeNext props or by ``cuts``: each frame's window
    repeats its own shot's edge frame instead of reaching across, as `vdiff enhance`'s windows do."""
    script = tmp_path / "cuts.py"
    script.write_text(textwrap.dedent("""
        import numpy as np
        import vapoursynth as vs
        from vdiff_ofx.engine.enhancer import Enhancer
        from vdiff_ofx.ops.window import windows
        from vdiff_ofx.vapoursynth import enhance
        core = vs.core
        rng = np.random.default_rng(0)
        data = [rng.random((16, 24, 3), dtype=np.float32) for _ in range(5)]
        base = core.std.BlankClip(format=vs.RGBS, width=24, height=16, length=5)

        def fill(n, f):
            fout = f.copy()
            for p in range(3):
                np.asarray(fout[p])[...] = data[n][..., p]
            return fout

        clip = core.std.ModifyFrame(base, base, fill)
        flagged = (clip[0] + core.std.SetFrameProps(clip[1], _SceneChangeNext=1)
                   + core.std.SetFrameProps(clip[2], _SceneChangePrev=1) + clip[3:])
        enh = Enhancer("temporal3")
        want = {i: enh.process(win) for i, _, win in windows(enumerate(data), 3, {2})}
        across = {i: enh.process(win) for i, _, win in windows(enumerate(data), 3)}
        runs = (("props", enhance(flagged, model="temporal3")), ("cuts", enhance(clip, model="temporal3", cuts=[2])),
                ("none", enhance(clip, model="temporal3")))
        for name, out in runs:
            got = [np.stack([np.asarray(out.get_frame(i)[p]) for p in range(3)], -1) for i in range(5)]
            ref = across if name == "none" else want
            print(name, max(float(np.abs(g - ref[i]).max()) for i, g in enumerate(got)))
        print("differ at the cut", max(float(np.abs(want[i] - across[i]).max()) for i in (1, 2)))
    """))
    r = subprocess.run([str(ROOT / ".venv-vs" / "bin" / "python"), str(script)], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = dict(line.rsplit(" ", 1) for line in r.stdout.strip().splitlines())
    assert all(float(lines[k]) <= 2e-5 for k in ("props", "cuts", "none")), r.stdout
    assert float(lines["differ at the cut"]) > 0.01, r.stdout
