"""The OpenFX plugin, driven by the headless C host in ofx/host against a real frame server process.

Frames are real: the bundled sample clip decoded by vdiff's own decoder. Every render is compared with
`Enhancer` run in-process on the same pixels."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "ofx" / "host"))

if not shutil.which("cmake") or not (shutil.which("cc") or shutil.which("gcc")):
    pytest.skip("cmake and a C compiler are needed to build the OFX plugin", allow_module_level=True)

from ofxhost import OfxHost, blank, kOfxStatFailed, kOfxStatOK, kOfxStatReplyDefault, to_ofx  # noqa: E402
from server_proc import FrameServerProcess, processes_with_env  # noqa: E402

import onnx_kit  # noqa: E402
from vdiff_ofx import ofx_install  # noqa: E402

W, H = 96, 64  # a crop of the sample clip: small enough for 2 shared CPU cores


@pytest.fixture(scope="module")
def bundle() -> Path:
    return ofx_install.locate_or_build()


@pytest.fixture(scope="module")
def host_lib(bundle) -> Path:
    lib = bundle.parent / "libvdiff_ofxhost.so"
    assert lib.is_file()
    return lib


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Throwaway models + config folder, in this process's environment (the plugin inherits it)."""
    base = tmp_path_factory.mktemp("ofx")
    manifest = onnx_kit.standard_set(base / "models")
    sock_dir = Path("/tmp") / f"vdiff-ofx-test-{os.getpid()}"  # AF_UNIX paths must stay short
    sock_dir.mkdir(exist_ok=True)
    values = {"VDIFF_MANIFEST": str(manifest), "VDIFF_CONFIG_DIR": str(base / "config"),
              "VDIFF_FRAMES_SOCKET": str(sock_dir / "frames.sock")}
    (base / "config").mkdir()
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    yield {"base": base, **values}
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    shutil.rmtree(sock_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def server(env):
    srv = FrameServerProcess(Path(env["VDIFF_CONFIG_DIR"]), dict(os.environ), threads=1).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def clip_frames() -> list[np.ndarray]:
    """Four real frames (float RGBA, straight alpha with a gradient) from the sample clip."""
    from vdiff_ofx.io.decode import decode_frames
    from vdiff_ofx.io.probe import probe

    info = probe(str(ROOT / "vdiff_ofx" / "data" / "sample.mov"))
    out = []
    for f in decode_frames(info, 0, 4):
        rgb = f.rgb[120:120 + H, 260:260 + W, :3].astype(np.float32)
        alpha = np.linspace(0.25, 1.0, W, dtype=np.float32)[None, :, None].repeat(H, 0)
        out.append(np.ascontiguousarray(np.concatenate([rgb, alpha], -1)))
    return out


def enhancer(name: str, strength: float | None = None):
    from vdiff_ofx.engine.enhancer import Enhancer
    from vdiff_ofx.engine.providers import Backend

    return Enhancer(name, Backend(providers=["cpu"], threads=1), strength=strength)


@pytest.fixture
def host(bundle, host_lib, server):
    h = OfxHost(host_lib, ofx_install.bundle_binary(bundle))
    assert h.create_instance() == kOfxStatOK
    yield h
    assert h.open_images == 0, "the plugin leaked host images"
    assert h.bad_prop_calls == 0, "the plugin used a property with the wrong type"
    h.close()


def choose(h: OfxHost, param: str, name: str) -> None:
    opts = h.options(param)
    idx = next(i for i, o in enumerate(opts) if o == name or o.startswith(name + " ("))
    h.set_param(param, idx)


def errors(h: OfxHost) -> list[str]:
    return [m for m in h.messages() if m.startswith("OfxMessageError")]


# ---------------------------------------------------------------- describe


def test_bundle_layout_and_exports(bundle):
    binary = bundle / "Contents" / "Linux-x86-64" / "vdiff.ofx"
    assert binary.is_file()
    if shutil.which("nm"):
        import subprocess

        syms = subprocess.run(["nm", "-D", "--defined-only", str(binary)], capture_output=True, text=True).stdout
        exported = sorted(line.split()[-1] for line in syms.splitlines() if " T " in line)
        assert exported == ["OfxGetNumberOfPlugins", "OfxGetPlugin"]


def test_describe_lists_server_models_and_params(host):
    assert host.descriptor("OfxPropLabel") == "vdiff Enhance"
    assert host.descriptor_strings("OfxImageEffectPropSupportedContexts") == [
        "OfxImageEffectContextFilter", "OfxImageEffectContextGeneral"]
    assert set(host.descriptor_strings("OfxImageEffectPropSupportedPixelDepths")) == {
        "OfxBitDepthFloat", "OfxBitDepthShort", "OfxBitDepthByte"}
    assert host.descriptor_int("OfxImageEffectPropTemporalClipAccess") == 1
    assert host.descriptor("OfxImageEffectPluginRenderThreadSafety") == "OfxImageEffectRenderInstanceSafe"
    assert host.params() == {"model": "OfxParamTypeChoice", "previewModel": "OfxParamTypeChoice",
                             "defaultStrength": "OfxParamTypeBoolean", "strength": "OfxParamTypeDouble",
                             "tile": "OfxParamTypeInteger", "mix": "OfxParamTypeDouble"}
    assert host.options("model") == ["cnn", "sigma", "up2 (2x)", "temporal3", "mult4"]
    assert host.options("previewModel")[:3] == ["Same as Model", "Source (no processing)", "cnn"]
    assert host.clip_descriptor("Source", "OfxImageEffectPropSupportedComponents", 1) == "OfxImageComponentRGB"


# ---------------------------------------------------------------- renders


def test_float_rgba_matches_enhancer(host, clip_frames):
    frame = clip_frames[0]
    host.set_clip(np.float32, 4)
    host.add_frame(0, to_ofx(frame))
    out = blank(W, H, 4, np.float32)
    assert host.render(0, (0, 0, W, H), out) == kOfxStatOK, host.messages()
    got = out.picture()
    want = enhancer("cnn").process([frame])
    assert np.abs(got - want).max() <= 1e-6
    assert not errors(host)


def test_negative_stride_padding_and_small_render_window(host, clip_frames):
    """Source in top-down memory (negative rowBytes) with row padding; output bottom-up with padding; a
    render window inside the frame: only the window is written, and it equals the full-frame result."""
    frame = clip_frames[1]
    host.set_clip(np.float32, 4)
    host.add_frame(0, to_ofx(frame, layout="top_down", pad=40))
    out = blank(W, H, 4, np.float32, pad=24, fill=-7.0)
    win = (13, 9, 71, 50)  # x1, y1, x2, y2 in OFX pixels (y up)
    assert host.render(0, win, out) == kOfxStatOK, host.messages()
    got = out.picture()
    want = enhancer("cnn").process([frame])
    rows = slice(H - win[3], H - win[1])  # OFX y -> picture rows
    cols = slice(win[0], win[2])
    assert np.abs(got[rows, cols] - want[rows, cols]).max() <= 1e-6
    outside = np.ones((H, W), bool)
    outside[rows, cols] = False
    assert (got[outside] == -7.0).all(), "pixels outside the render window were written"


def test_output_image_tight_to_window_with_offset_bounds(host, clip_frames):
    """Hosts may hand out an output image that covers only the render window (tiles)."""
    frame = clip_frames[0]
    host.set_clip(np.float32, 4)
    host.add_frame(0, to_ofx(frame))
    win = (40, 20, 90, 60)
    out = blank(win[2] - win[0], win[3] - win[1], 4, np.float32, x1=win[0], y1=win[1], layout="top_down")
    assert host.render(0, win, out) == kOfxStatOK, host.messages()
    want = enhancer("cnn").process([frame])[H - win[3]:H - win[1], win[0]:win[2]]
    assert np.abs(out.picture() - want).max() <= 1e-6


def test_tiles_reuse_the_frame_but_never_stale_content(host, clip_frames):
    """Tiled hosts render one frame in several windows: every tile must equal the full-frame result, and
    new content at the same time (the host's image id changes) must be processed again."""
    host.set_clip(np.float32, 4)
    out = blank(W, H, 4, np.float32)
    for frame in (clip_frames[0], clip_frames[3]):
        host.add_frame(0, to_ofx(frame))
        for tile in ((0, 0, W, H // 2), (0, H // 2, W, H)):
            assert host.render(0, tile, out) == kOfxStatOK, host.messages()
        assert np.abs(out.picture() - enhancer("cnn").process([frame])).max() <= 1e-6


def test_16bit_rgb_within_one_code(host, clip_frames):
    rgb16 = np.round(clip_frames[2][..., :3] * 65535).astype(np.uint16)
    host.set_clip(np.uint16, 3)
    host.add_frame(0, to_ofx(rgb16))
    out = blank(W, H, 3, np.uint16)
    assert host.render(0, (0, 0, W, H), out) == kOfxStatOK, host.messages()
    want = np.round(enhancer("cnn").process([rgb16.astype(np.float32) / 65535]) * 65535)
    diff = np.abs(out.picture().astype(np.int64) - want.astype(np.int64))
    assert diff.max() <= 1
    assert host.clip_preferences() == (kOfxStatOK, "OfxImageComponentRGB")


def test_8bit_rgba_within_one_code(host, clip_frames):
    rgba8 = np.round(clip_frames[0] * 255).astype(np.uint8)
    host.set_clip(np.uint8, 4)
    host.add_frame(0, to_ofx(rgba8))
    out = blank(W, H, 4, np.uint8)
    assert host.render(0, (0, 0, W, H), out) == kOfxStatOK, host.messages()
    src = rgba8.astype(np.float32) * 257 / 65535  # what the plugin sends: 8-bit widened to 16-bit
    want = np.round(enhancer("cnn").process([src]) * 255)
    assert np.abs(out.picture().astype(np.int64) - want.astype(np.int64)).max() <= 1


def test_premultiplied_alpha_is_unpremultiplied_for_the_model(host, clip_frames):
    straight = clip_frames[0]
    premult = straight.copy()
    premult[..., :3] *= premult[..., 3:]
    host.set_clip(np.float32, 4, premult=True)
    host.add_frame(0, to_ofx(premult), premult=True)
    out = blank(W, H, 4, np.float32)
    assert host.render(0, (0, 0, W, H), out, premult=True) == kOfxStatOK, host.messages()
    want = enhancer("cnn").process([straight])
    want[..., :3] *= want[..., 3:]
    assert np.abs(out.picture() - want).max() <= 1e-5


def test_upscale_declares_rod_and_renders_at_pixel_aspect_two(host, clip_frames):
    frame = clip_frames[0]
    choose(host, "model", "up2")
    host.set_clip(np.float32, 4, par=2.0)  # anamorphic: canonical x = pixel x * 2
    host.add_frame(0, to_ofx(frame))
    st, rod = host.region_of_definition(0)
    assert st == kOfxStatOK and rod == (0.0, 0.0, 2.0 * W * 2, 2.0 * H)
    out = blank(2 * W, 2 * H, 4, np.float32, layout="top_down")
    win = (0, 0, 2 * W, 2 * H)
    assert host.render(0, win, out) == kOfxStatOK, host.messages()
    want = enhancer("up2").process([frame])
    assert want.shape == (2 * H, 2 * W, 4)
    assert np.abs(out.picture() - want).max() <= 1e-6


def test_filter_rod_is_host_default(host, clip_frames):
    host.set_clip(np.float32, 4)
    host.add_frame(0, to_ofx(clip_frames[0]))
    assert host.region_of_definition(0)[0] == kOfxStatReplyDefault


def test_temporal_model_fetches_neighbours_and_repeats_at_clip_ends(host, clip_frames):
    choose(host, "model", "temporal3")
    host.set_clip(np.float32, 4, first=0, last=3)
    for t, f in enumerate(clip_frames):
        host.add_frame(t, to_ofx(f))
    assert host.frames_needed(2) == (kOfxStatOK, (1.0, 3.0))
    enh = enhancer("temporal3")
    for t, window in ((2, [1, 2, 3]), (0, [0, 0, 1]), (3, [2, 3, 3])):
        out = blank(W, H, 4, np.float32)
        assert host.render(t, (0, 0, W, H), out) == kOfxStatOK, host.messages()
        want = enh.process([clip_frames[i] for i in window])
        assert np.abs(out.picture() - want).max() <= 1e-6, f"t={t}"


def test_mix_blends_with_source_and_zero_is_identity(host, clip_frames):
    frame = clip_frames[0]
    host.set_clip(np.float32, 4)
    host.add_frame(0, to_ofx(frame))
    host.set_param("mix", 0.25)
    out = blank(W, H, 4, np.float32)
    assert host.render(0, (0, 0, W, H), out) == kOfxStatOK, host.messages()
    enh = enhancer("cnn").process([frame])
    assert np.abs(out.picture() - (frame + 0.25 * (enh - frame))).max() <= 1e-6
    assert host.is_identity(0, (0, 0, W, H))[0] == kOfxStatReplyDefault
    host.set_param("mix", 0.0)
    assert host.is_identity(0, (0, 0, W, H)) == (kOfxStatOK, "Source", 0.0)


def test_strength_maps_onto_the_model_range(host, clip_frames):
    frame = clip_frames[0]
    choose(host, "model", "sigma")
    host.set_param("defaultStrength", 0)
    host.set_param("strength", 0.4)  # sigma's range is 0..50
    host.set_clip(np.float32, 4)
    host.add_frame(0, to_ofx(frame))
    out = blank(W, H, 4, np.float32)
    assert host.render(0, (0, 0, W, H), out) == kOfxStatOK, host.messages()
    assert np.abs(out.picture() - enhancer("sigma", strength=20.0).process([frame])).max() <= 1e-6
    host.set_param("defaultStrength", 1)
    assert host.render(0, (0, 0, W, H), out) == kOfxStatOK
    assert np.abs(out.picture() - enhancer("sigma").process([frame])).max() <= 1e-6


def test_preview_uses_the_preview_choice_only_for_draft_or_interactive(host, clip_frames):
    frame = clip_frames[0]
    host.set_clip(np.float32, 4)
    host.add_frame(0, to_ofx(frame))
    choose(host, "previewModel", "mult4")
    out = blank(W, H, 4, np.float32)
    assert host.render(0, (0, 0, W, H), out, draft=True) == kOfxStatOK
    assert np.abs(out.picture() - enhancer("mult4").process([frame])).max() <= 1e-6
    assert host.render(0, (0, 0, W, H), out, interactive=True) == kOfxStatOK
    assert np.abs(out.picture() - enhancer("mult4").process([frame])).max() <= 1e-6
    assert host.render(0, (0, 0, W, H), out) == kOfxStatOK  # final render: the quality model
    assert np.abs(out.picture() - enhancer("cnn").process([frame])).max() <= 1e-6
    host.set_param("previewModel", 1)  # Source
    assert host.render(0, (0, 0, W, H), out, draft=True) == kOfxStatOK
    assert np.array_equal(out.picture(), frame)


def test_missing_source_frame_is_black_not_an_error(host, clip_frames):
    host.set_clip(np.float32, 4)
    host.add_frame(0, to_ofx(clip_frames[0]))
    out = blank(W, H, 4, np.float32, fill=0.5)
    assert host.render(7, (0, 0, W, H), out) == kOfxStatOK  # no frame 7: the spec says black/transparent
    assert (out.picture() == 0).all()


def test_server_error_is_reported_and_fails_the_frame(host, clip_frames):
    host.set_clip(np.float32, 4)
    host.add_frame(0, to_ofx(clip_frames[0]))
    host.set_param("tile", 8)  # smaller than twice the overlap: the server refuses the session
    out = blank(W, H, 4, np.float32, fill=-3.0)
    assert host.render(0, (0, 0, W, H), out) == kOfxStatFailed
    msgs = errors(host)
    assert msgs and "tile" in msgs[-1] and "BAD_REQUEST" in msgs[-1]
    assert (out.picture() == -3.0).all(), "a failed frame must not write garbage"
    host.set_param("tile", 0)  # recovers on the same connection
    assert host.render(0, (0, 0, W, H), out) == kOfxStatOK
    assert host.messages()[-1].startswith("clear")


def test_host_abort_stops_the_render(host, clip_frames):
    host.set_clip(np.float32, 4)
    host.add_frame(0, to_ofx(clip_frames[0]))
    host.set_abort(True)
    out = blank(W, H, 4, np.float32)
    assert host.render(0, (0, 0, W, H), out) == kOfxStatFailed
    assert not errors(host), "an abort is the host's choice, not an error to show"
    host.set_abort(False)
    assert host.render(0, (0, 0, W, H), out) == kOfxStatOK


# ---------------------------------------------------------------- server missing / started on demand


def _installed_bundle(tmp_path: Path, argv: list[str] | None = None) -> Path:
    target = ofx_install.install(prefix=tmp_path / "plugins")
    if argv is not None:
        import json

        rec = target / "Contents" / "Resources" / "vdiff.json"
        data = json.loads(rec.read_text())
        data["server_argv"] = argv
        rec.write_text(json.dumps(data))
    return ofx_install.bundle_binary(target)


def test_server_missing_fails_with_message_and_no_crash(tmp_path, host_lib, env, clip_frames, monkeypatch):
    binary = _installed_bundle(tmp_path, ["/nonexistent/vdiff-python", "-m", "vdiff_ofx.server.frames"])
    monkeypatch.setenv("VDIFF_CONFIG_DIR", str(tmp_path / "empty-config"))
    monkeypatch.setenv("VDIFF_OFX_START_TIMEOUT", "1")
    h = OfxHost(host_lib, binary)
    try:
        # describe could not reach a server: the install-time model list fills the menu
        assert h.options("model") == ["cnn", "sigma", "up2 (2x)", "temporal3", "mult4"]
        assert h.create_instance() == kOfxStatOK
        h.set_clip(np.float32, 4)
        h.add_frame(0, to_ofx(clip_frames[0]))
        out = blank(W, H, 4, np.float32, fill=-1.0)
        t0 = time.monotonic()
        assert h.render(0, (0, 0, W, H), out) == kOfxStatFailed
        assert time.monotonic() - t0 < 10
        msgs = errors(h)
        assert msgs and "vdiff frame server" in msgs[-1], h.messages()
        assert (out.picture() == -1.0).all()
        t0 = time.monotonic()  # the next frame fails fast instead of waiting again
        assert h.render(0, (0, 0, W, H), out) == kOfxStatFailed
        assert time.monotonic() - t0 < 1
        assert h.open_images == 0
    finally:
        h.close()


def test_server_started_on_demand_from_install_record(tmp_path, host_lib, env, clip_frames, monkeypatch):
    cfg = tmp_path / "cfg"
    monkeypatch.setenv("VDIFF_CONFIG_DIR", str(cfg))
    monkeypatch.setenv("VDIFF_FRAMES_SOCKET", str(Path(env["VDIFF_FRAMES_SOCKET"]).with_name("ondemand.sock")))
    binary = _installed_bundle(tmp_path)
    h = OfxHost(host_lib, binary)
    try:
        assert h.create_instance() == kOfxStatOK
        h.set_clip(np.float32, 4)
        h.add_frame(0, to_ofx(clip_frames[0]))
        out = blank(W, H, 4, np.float32)
        assert h.render(0, (0, 0, W, H), out) == kOfxStatOK, h.messages()
        assert np.abs(out.picture() - enhancer("cnn").process([clip_frames[0]])).max() <= 1e-6
        assert (cfg / "frames.addr").is_file()
    finally:
        h.close()
        for pid in processes_with_env("VDIFF_CONFIG_DIR", str(cfg)):
            os.kill(pid, signal.SIGTERM)


def test_server_dying_mid_session_fails_the_frame_then_recovers(tmp_path, bundle, host_lib, env, clip_frames,
                                                                monkeypatch):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    monkeypatch.setenv("VDIFF_CONFIG_DIR", str(cfg))
    monkeypatch.setenv("VDIFF_FRAMES_SOCKET", str(Path(env["VDIFF_FRAMES_SOCKET"]).with_name("dying.sock")))
    srv = FrameServerProcess(cfg, dict(os.environ), threads=1).start()
    h = OfxHost(host_lib, ofx_install.bundle_binary(bundle))
    try:
        assert h.create_instance() == kOfxStatOK
        h.set_clip(np.float32, 4)
        h.add_frame(0, to_ofx(clip_frames[0]))
        out = blank(W, H, 4, np.float32)
        assert h.render(0, (0, 0, W, H), out) == kOfxStatOK
        srv.proc.kill()  # no clean stop: the address file stays behind, pointing at a dead socket
        srv.proc.wait()
        h.add_frame(0, to_ofx(clip_frames[1]))
        assert h.render(0, (0, 0, W, H), out) == kOfxStatFailed
        assert errors(h)
        srv.start()
        assert h.render(0, (0, 0, W, H), out) == kOfxStatOK, h.messages()
        assert np.abs(out.picture() - enhancer("cnn").process([clip_frames[1]])).max() <= 1e-6
    finally:
        h.close()
        srv.stop()


# ---------------------------------------------------------------- install-ofx


def test_install_ofx_cli(tmp_path, monkeypatch, bundle, capsys):
    from vdiff_ofx.cli import main

    prefix = tmp_path / "ofx"
    assert main(["install-ofx", "--prefix", str(prefix), "--dry-run"]) == 0
    assert not prefix.exists() and "would install" in capsys.readouterr().out
    monkeypatch.setenv("OFX_PLUGIN_PATH", os.pathsep.join([str(prefix), "/elsewhere"]))
    assert main(["install-ofx"]) == 0
    target = prefix / "vdiff.ofx.bundle"
    assert ofx_install.bundle_binary(target).is_file()
    import json

    rec = json.loads((target / "Contents" / "Resources" / "vdiff.json").read_text())
    assert rec["server_argv"] == [sys.executable, "-m", "vdiff_ofx.server.frames"]
    assert rec["models"][0].startswith("cnn|denoise|1|1|")
    other = prefix / "Other.ofx.bundle"
    other.mkdir()
    assert main(["install-ofx", "--uninstall"]) == 0
    assert not target.exists() and other.is_dir()
    foreign = prefix / "vdiff.ofx.bundle"
    foreign.mkdir()
    assert main(["install-ofx", "--uninstall"]) == 1  # not ours: left alone
    assert foreign.is_dir()


def test_plugin_folders_per_os():
    assert ofx_install.plugin_root("linux", {}) == Path("/usr/OFX/Plugins")
    assert ofx_install.plugin_root("darwin", {}) == Path("/Library/OFX/Plugins")
    assert str(ofx_install.plugin_root("win32", {})).replace("/", "\\").endswith(r"Common Files\OFX\Plugins")
    assert ofx_install.plugin_root("linux", {"OFX_PLUGIN_PATH": "/a:/b"}) == Path("/a")
    assert ofx_install.arch_folder("linux", "aarch64") == "Linux-aarch64"
    assert ofx_install.arch_folder("darwin") == "MacOS"
