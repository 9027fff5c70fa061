"""Engine: manifest and checksums, provider chain, tiled == untiled, padding, scale, temporal, strength."""

from __future__ import annotations

import numpy as np
import pytest

from onnx_kit import build
from vdiff_ofx.engine import models, providers
from vdiff_ofx.engine.enhancer import Enhancer
from vdiff_ofx.engine.session import ModelSession
from vdiff_ofx.engine.tiling import plan
from vdiff_ofx.errors import ModelError, VdiffError


def natural_frame(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A frame with real structure (smooth gradients, edges, noise), not a constant."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([0.5 + 0.4 * np.sin(xx / 17 + c) * np.cos(yy / 23 - c) for c in range(3)], -1)
    base[(xx // 40 + yy // 40) % 2 == 0] *= 0.6
    return np.clip(base + rng.normal(0, 0.05, base.shape), 0, 1).astype(np.float32)


def test_registry_lists_models_and_rejects_unknown(kit):
    reg = models.registry()
    assert set(reg) == {"cnn", "sigma", "up2", "temporal3", "mult4"}
    assert reg["up2"].scale == 2 and reg["temporal3"].temporal_window == 3
    with pytest.raises(ModelError, match="unknown model 'nope'"):
        models.get_model("nope")


def test_checksum_mismatch_refuses_to_load(kit):
    spec = models.get_model("cnn")
    data = bytearray(spec.file.read_bytes())
    data[-10] ^= 0xFF
    spec.file.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum mismatch"):
        ModelSession(spec)


def test_unlisted_onnx_path_is_refused(kit, tmp_path):
    other = build(tmp_path / "stray.onnx", "cnn")
    with pytest.raises(ModelError, match="not a registered model"):
        models.get_model(str(other))


def test_chain_always_ends_with_cpu_and_session_runs_on_loaded_provider(kit):
    names = [n for n, _ in providers.chain(providers.Backend())]
    assert names[-1] == "CPUExecutionProvider"
    sess = ModelSession(models.get_model("cnn"), providers.Backend(providers=["cuda", "cpu"]))
    assert sess.provider in sess.providers and "CPUExecutionProvider" in sess.providers
    with pytest.raises(VdiffError, match="unknown provider"):
        providers.chain(providers.Backend(providers=["warp-drive"]))


@pytest.mark.parametrize("name,shape,tile,overlap", [
    ("cnn", (203, 317), 64, 24), ("mult4", (150, 222), 128, 60), ("up2", (97, 130), 64, 24),
    ("sigma", (181, 241), 64, 24)])
def test_tiled_matches_untiled(kit, name, shape, tile, overlap):
    frame = natural_frame(*shape)
    whole = Enhancer(name, tile=4096)(frame)
    tiled = Enhancer(name, tile=tile, overlap=overlap)(frame)
    assert len(plan(shape[0], shape[1], tile, overlap)) > 2
    assert whole.shape == tiled.shape
    assert np.abs(whole - tiled).max() <= 1 / 1023


def test_upscale_shape_and_alpha_carried(kit):
    frame = np.concatenate([natural_frame(40, 50), np.full((40, 50, 1), 0.25, np.float32)], -1)
    out = Enhancer("up2")(frame)
    assert out.shape == (80, 100, 4)
    assert np.allclose(out[..., 3], 0.25, atol=1e-3)


def test_size_multiple_pads_and_crops(kit):
    frame = natural_frame(37, 53)
    out = Enhancer("mult4")(frame)
    assert out.shape == (37, 53, 3)


def test_temporal_window_uses_neighbours(kit):
    a, b, c = natural_frame(32, 48, 1), natural_frame(32, 48, 2), natural_frame(32, 48, 3)
    enh = Enhancer("temporal3")
    assert enh.window == 3
    mixed = enh.process([a, b, c])
    same = enh.process([b, b, b])
    assert mixed.shape == (32, 48, 3)
    assert np.abs(mixed - same).max() > 1e-4  # neighbours change the result
    with pytest.raises(ModelError, match="needs 3 frames"):
        enh.process([b])


def test_strength_moves_output_and_is_range_checked(kit):
    frame = natural_frame(48, 48)
    low = Enhancer("sigma", strength=0)(frame)
    high = Enhancer("sigma", strength=50)(frame)
    assert np.abs(low - high).mean() > 1e-4
    with pytest.raises(VdiffError, match="outside"):
        Enhancer("sigma", strength=99)
    with pytest.raises(VdiffError, match="no strength control"):
        Enhancer("cnn", strength=10)


def test_add_user_model_checks_contract(kit, tmp_path):
    good = build(tmp_path / "mine" / "up.onnx", "up2")
    spec = models.add_user_model(good, "my-up", task="upscale")
    assert spec.scale == 2 and models.get_model("my-up").sha256 == models.sha256_file(good)
    assert Enhancer("my-up")(natural_frame(16, 16)).shape == (32, 32, 3)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        models.add_user_model(bad, "bad")
    with pytest.raises(ModelError, match="already exists"):
        models.add_user_model(good, "my-up")


def test_missing_gpu_library_falls_back_to_cpu_with_one_clear_line(kit, caplog, capfd):
    offered = providers.available()
    from vdiff_ofx.engine.memory import gpu_info
    if "CUDAExecutionProvider" not in offered or gpu_info() is not None:
        pytest.skip("needs a GPU build of onnxruntime on a machine without a usable GPU (CI has one)")
    caplog.set_level("WARNING")
    from vdiff_ofx.engine import session as session_mod
    session_mod._WARNED.clear()
    sess = ModelSession(models.get_model("cnn"), providers.Backend(providers=["cuda", "cpu"]))
    assert sess.provider == "CPUExecutionProvider"
    assert any("CUDA could not load" in r.getMessage() for r in caplog.records)
    assert "EP Error" not in capfd.readouterr().out  # nothing leaks onto stdout (pipes carry video there)


def test_real_model_tiled_matches_untiled_on_real_frame():
    """The shipped denoise model on a decoded frame of the bundled clip: seams below one 10-bit code."""
    from vdiff_ofx.demo import sample_clip
    from vdiff_ofx.io.decode import decode_frames
    from vdiff_ofx.io.probe import probe

    if "denoise" not in models.registry():
        pytest.skip("no denoise model in manifest.yaml")
    frame = next(iter(decode_frames(probe(str(sample_clip())), 10, 11))).rgb
    noisy = np.clip(frame + np.random.default_rng(0).normal(0, 20 / 255, frame.shape), 0, 1).astype(np.float32)
    whole = Enhancer("denoise", tile=4096, strength=20)(noisy)
    tiled = Enhancer("denoise", tile=296, strength=20)(noisy)
    assert len(plan(360, 640, 296, Enhancer("denoise").overlap)) >= 8
    assert np.abs(whole - tiled).max() <= 1 / 1023


def _views(frame: np.ndarray) -> list:
    """The 8 flips/transposes of an HxWxC frame, with their inverses."""
    out = []
    for t in range(8):
        def fwd(a, t=t):
            a = a[:, ::-1] if t & 1 else a
            a = a[::-1] if t & 2 else a
            return np.ascontiguousarray(np.swapaxes(a, 0, 1) if t & 4 else a)
        out.append(fwd)
    return out


@pytest.mark.parametrize("name,shape,tile", [("cnn", (45, 61), None), ("up2", (33, 50), None),
                                             ("mult4", (36, 52), None), ("cnn", (150, 190), 64)])
def test_tta8_output_is_equivariant_to_flips_and_transposes(kit, name, shape, tile):
    """Averaging all 8 views makes the result exactly flip/transpose-equivariant; a single view is not.

    (Sizes are multiples of the model's size_multiple: padding on the bottom/right is not symmetric.)
    """
    frame = natural_frame(*shape, seed=4)
    plain, tta = Enhancer(name, tile=tile), Enhancer(name, tile=tile, tta=8)
    base, base1 = tta(frame), plain(frame)
    assert base.shape == base1.shape
    worst1 = 0.0
    for view in _views(frame)[1:]:
        assert np.abs(tta(view(frame)) - view(base)).max() < 2e-5
        worst1 = max(worst1, float(np.abs(plain(view(frame)) - view(base1)).max()))
    assert worst1 > 1e-3  # the random test nets are not symmetric, so the check above has teeth


def test_a_gpu_session_keeps_a_session_per_input_shape_up_to_its_limit(kit):
    """The CUDA path runs each of the first SHAPES_PER_GPU_SESSION input shapes in a session of its own (shape
    changes are costly there); checked on the CPU provider, which loads the same way."""
    from vdiff_ofx.engine import session as session_mod
    from vdiff_ofx.engine.models import get_model

    s = session_mod.ModelSession(get_model("cnn"))
    x = np.stack([np.transpose(natural_frame(40, 56, seed=1), (2, 0, 1))])
    shapes = [x.shape, np.swapaxes(x, -1, -2).shape, (2, 3, 40, 56)]
    got = [s._for_shape(shape) for shape in shapes]
    assert got[0] is s._session and got[1] is not s._session
    assert got[2] is s._session  # beyond the limit: the first session again
    assert s._for_shape(shapes[1]) is got[1] and session_mod.SHAPES_PER_GPU_SESSION == 2
    feeds = s.feeds(x, None)
    assert np.array_equal(got[1].run([s.output], feeds)[0], s._session.run([s.output], feeds)[0])


def test_tta_modes_are_checked_and_2_4_views_run(kit):
    frame = natural_frame(40, 40)
    outs = [Enhancer("sigma", tta=n, strength=20)(frame) for n in (1, 2, 4)]
    assert all(o.shape == (40, 40, 3) for o in outs)
    assert np.abs(outs[0] - outs[1]).max() > 1e-4 and np.abs(outs[1] - outs[2]).max() > 1e-4
    with pytest.raises(VdiffError, match="--tta 3 must be one of 1, 2, 4, 8"):
        Enhancer("cnn", tta=3)


def test_tta8_does_not_lower_quality_of_shipped_denoiser():
    """The real `denoise` model on a held-out photo (scikit-image astronaut crop, sigma 25): 8 views >= 1 view."""
    skimage = pytest.importorskip("skimage.data")
    from vdiff_ofx.metrics import psnr

    if "denoise" not in models.registry():
        pytest.skip("no denoise model in manifest.yaml")
    clean = skimage.astronaut()[96:288, 128:320].astype(np.float32) / 255
    noisy = np.clip(clean + np.random.default_rng(1).normal(0, 25 / 255, clean.shape), 0, 1).astype(np.float32)
    one = psnr(Enhancer("denoise", strength=25)(noisy), clean)
    eight = psnr(Enhancer("denoise", strength=25, tta=8)(noisy), clean)
    assert one > psnr(noisy, clean) + 6
    assert eight > one + 0.02


def test_auto_tile_reads_free_memory_once_per_frame_size(kit, monkeypatch):
    from vdiff_ofx.engine import enhancer as enhancer_mod

    calls = []
    monkeypatch.setattr(enhancer_mod, "free_host_bytes", lambda: calls.append(1) or (1 << 30))
    enh = Enhancer("cnn", backend=providers.Backend(providers=["cpu"]))
    frame = np.zeros((40, 56, 3), np.float32)
    for _ in range(3):
        enh(frame)
    enh(np.zeros((48, 64, 3), np.float32))
    assert len(calls) == 2
    # 1 GiB / 3 / (2048 + 24) B per pixel: 172736 pixels, so a 1080p frame is tiled at 408 (a multiple of 8)
    assert enh.auto_tile(1080, 1920) == 408


def test_cuda_provider_grows_its_arena_by_what_is_asked():
    if "CUDAExecutionProvider" not in providers.available():
        pytest.skip("this onnxruntime build has no CUDA provider")
    opts = dict(providers.chain(providers.Backend(providers=["cuda"])))
    assert opts["CUDAExecutionProvider"]["arena_extend_strategy"] == "kSameAsRequested"
    custom = providers.Backend(providers=["cuda"], options={"CUDAExecutionProvider": {"arena_extend_strategy": "x"}})
    assert dict(providers.chain(custom))["CUDAExecutionProvider"]["arena_extend_strategy"] == "x"


def test_strength_blend_keeps_a_share_of_the_networks_change(kit, tmp_path, monkeypatch):
    """strength.blend: input + share x (network - input), the share interpolated; 0 is an exact identity."""
    import dataclasses

    from onnx_kit import write_manifest

    folder = tmp_path / "blend"
    build(folder / "models" / "sigma.onnx", "sigma")
    knob = {"input": "sigma", "default": 15, "min": 0, "max": 50, "blend": [[0, 0.0], [10, 0.5], [20, 1.0]]}
    monkeypatch.setenv("VDIFF_MANIFEST", str(write_manifest(folder, [
        {"name": "sigma", "file": "models/sigma.onnx", "task": "denoise", "strength": knob}])))
    spec = models.get_model("sigma")
    assert spec.strength.share(5) == pytest.approx(0.25) and spec.strength.share(40) == 1.0
    raw = ModelSession(dataclasses.replace(spec, strength=dataclasses.replace(spec.strength, blend=())))
    frame = natural_frame(32, 32)
    x = np.ascontiguousarray(frame.transpose(2, 0, 1)[None])
    assert np.array_equal(Enhancer("sigma", strength=0)(frame), frame)
    for s, share in ((5, 0.25), (15, 0.75), (30, 1.0)):
        want = (x + share * (raw.run(x, s) - x))[0].transpose(1, 2, 0)
        np.testing.assert_allclose(Enhancer("sigma", strength=s)(frame), want, atol=2e-6)
    for bad in ([[0, 0.0], [0, 1.0]], [[5, 0.2], [1, 0.5]], [[0, 0.0], [10, 1.5]], [[0, 0.0]], "half"):
        entry = {"name": "sigma", "file": "models/sigma.onnx", "task": "denoise", "strength": {**knob, "blend": bad}}
        monkeypatch.setenv("VDIFF_MANIFEST", str(write_manifest(folder, [entry])))
        with pytest.raises(ModelError, match="blend"):
            models.get_model("sigma")
    build(folder / "models" / "up2.onnx", "up2")
    monkeypatch.setenv("VDIFF_MANIFEST", str(write_manifest(folder, [
        {"name": "up2", "file": "models/up2.onnx", "scale": 2, "strength": knob}])))
    with pytest.raises(ModelError, match="needs a model at scale 1"):
        models.get_model("up2")


@pytest.mark.parametrize("name", ["denoise", "denoise-hq", "denoise-hq-int8"])
def test_shipped_denoisers_are_gentle_at_low_strength(name):
    """Strength 0 returns the frame untouched; light noise at its own strength comes back better, not smoothed away
    (before the blends, `denoise` at strength 2 lost 5 dB on held-out photos with sigma-2 noise)."""
    skimage = pytest.importorskip("skimage.data")
    from vdiff_ofx.metrics import psnr

    if name not in models.registry():
        pytest.skip(f"no {name} model in manifest.yaml")
    knob = models.get_model(name).strength
    shares = [w for _, w in knob.blend]
    assert shares[0] == 0.0 and shares == sorted(shares) and knob.share(30) == 1.0
    clean = skimage.coffee()[96:288, 160:352].astype(np.float32) / 255  # fine texture, held out
    assert np.array_equal(Enhancer(name, strength=0)(clean), clean)
    for sigma in (2, 5):
        noisy = np.clip(clean + np.random.default_rng(sigma).normal(0, sigma / 255, clean.shape), 0, 1)
        noisy = noisy.astype(np.float32)
        assert psnr(Enhancer(name, strength=sigma)(noisy), clean) > psnr(noisy, clean) + 0.05 * sigma


def test_a_strength_without_a_graph_input_is_the_blend_alone(kit, tmp_path, monkeypatch):
    """`strength.input: null` (deblock's amount %): nothing extra is fed to the graph, the knob scales the change."""
    from onnx_kit import write_manifest

    folder = tmp_path / "amount"
    build(folder / "models" / "cnn.onnx", "cnn")
    knob = {"input": None, "default": 100, "min": 0, "max": 100, "unit": "amount %", "blend": [[0, 0.0], [100, 1.0]]}
    monkeypatch.setenv("VDIFF_MANIFEST", str(write_manifest(folder, [
        {"name": "cnn", "file": "models/cnn.onnx", "task": "deblock", "strength": knob}])))
    frame = natural_frame(24, 24)
    full = Enhancer("cnn")(frame)
    assert np.abs(full - frame).mean() > 1e-3
    np.testing.assert_allclose(Enhancer("cnn", strength=25)(frame), frame + 0.25 * (full - frame), atol=2e-6)
    monkeypatch.setenv("VDIFF_MANIFEST", str(write_manifest(folder, [
        {"name": "cnn", "file": "models/cnn.onnx", "task": "deblock", "strength": {**knob, "blend": []}}])))
    with pytest.raises(ModelError, match="needs a blend"):
        models.get_model("cnn")


def test_a_temporal_models_blend_is_towards_its_middle_frame(kit, tmp_path, monkeypatch):
    """For a temporal model the change the blend scales is the one to the window's middle frame."""
    from onnx_kit import write_manifest

    folder = tmp_path / "tblend"
    build(folder / "models" / "t3.onnx", "temporal3")
    knob = {"input": None, "default": 100, "min": 0, "max": 100, "blend": [[0, 0.0], [100, 1.0]]}
    monkeypatch.setenv("VDIFF_MANIFEST", str(write_manifest(folder, [
        {"name": "t3", "file": "models/t3.onnx", "task": "denoise", "temporal_window": 3, "strength": knob}])))
    window = [natural_frame(24, 32, seed=k) for k in range(3)]
    full = Enhancer("t3").process(window)
    assert np.array_equal(Enhancer("t3", strength=0).process(window), window[1])
    np.testing.assert_allclose(Enhancer("t3", strength=40).process(window), window[1] + 0.4 * (full - window[1]),
                               atol=2e-6)


@pytest.mark.parametrize("name", ["denoise-temporal", "denoise-temporal-fast"])
def test_shipped_temporal_denoisers_return_the_middle_frame_at_strength_0(name):
    if name not in models.registry():
        pytest.skip(f"no {name} model in manifest.yaml")
    enh = Enhancer(name, strength=0)
    window = [np.roll(natural_frame(64, 96, seed=1), 2 * k, axis=1) for k in range(enh.window)]
    assert np.array_equal(enh.process(window), window[enh.window // 2])
