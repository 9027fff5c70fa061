"""The shipped `deblock` and `upscale2x` models: manifest + engine loading, shapes, a held-out quality floor;
plus a one-step training smoke test per model.

Fast (< 20 s) and torch-free except the training tests, which skip when torch is missing.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

pytest.importorskip("onnxruntime")

from vdiff_ofx.metrics import psnr
from vdiff_ofx.train import compress, data, quality

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("deblock", "deblock-fast", "upscale2x", "upscale4x")
SCALES = {"upscale2x": 2, "upscale4x": 4}


@pytest.fixture(autouse=True)
def project_manifest(monkeypatch, tmp_path):
    """The project's own manifest, and a private user folder (no user models mixed in)."""
    monkeypatch.setenv("VDIFF_MANIFEST", str(ROOT / "manifest.yaml"))
    monkeypatch.setenv("VDIFF_CONFIG_DIR", str(tmp_path / "config"))


def _entry(name: str) -> dict:
    models = yaml.safe_load((ROOT / "manifest.yaml").read_text())["models"] or []
    found = [m for m in models if m["name"] == name]
    assert found, f"manifest.yaml has no `{name}` entry"
    return found[0]


def enhancer(name: str, strength: float | None = None):
    from vdiff_ofx.engine.enhancer import Enhancer
    from vdiff_ofx.engine.providers import Backend

    return Enhancer(name, backend=Backend(providers=["cpu"], threads=2), strength=strength)


def held_out_crop(name: str) -> np.ndarray:
    """A 256x256 crop of a held-out scikit-image photo (never trained on)."""
    pytest.importorskip("skimage")
    return np.ascontiguousarray(data.skimage_images(data.HELDOUT_SKIMAGE)[name][32:288, 128:384])


@pytest.mark.parametrize("name", NAMES)
def test_manifest_entry(name):
    e = _entry(name)
    keys = {"name", "file", "sha256", "task", "scale", "channels", "temporal_window", "size_multiple",
            "input_range", "description", "params"}
    assert keys <= set(e)
    if name in SCALES:  # the detail knob: 0..100 %, fed to the graph's "detail" input as 0..1
        assert e["strength"]["input"] == "detail" and (e["strength"]["min"], e["strength"]["max"]) == (0, 100)
        assert e["strength"]["per_unit"] == 0.01
    else:  # the amount knob: 0..100 % of the correction, no graph input (the engine's blend)
        assert e["strength"]["input"] is None and e["strength"]["blend"] == [[0, 0.0], [100, 1.0]]
        assert e["strength"]["default"] == 100
    assert e["scale"] == SCALES.get(name, 1) and e["temporal_window"] == 1
    from vdiff_ofx.engine.models import get_model

    get_model(name).verify()  # file present, sha256 matches


@pytest.mark.parametrize("name", NAMES)
def test_shapes_through_engine(name):
    enh = enhancer(name)
    s = enh.scale
    frame = np.random.default_rng(1).random((37, 58, 3), dtype=np.float32)  # not a size multiple
    out = enh(frame)
    assert out.shape == (37 * s, 58 * s, 3) and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    rgba = np.concatenate([frame, np.full((37, 58, 1), 0.5, np.float32)], axis=-1)
    assert enh(rgba).shape == (37 * s, 58 * s, 4)


def test_deblock_beats_degraded():
    ref = compress.to_u8(held_out_crop("coffee"))
    degraded = compress.jpeg(ref, 15).astype(np.float32) / 255  # a heavily compressed delivery file
    out = enhancer("deblock")(degraded)
    gain = psnr(ref / 255.0, out) - psnr(ref / 255.0, degraded)
    assert gain > 1.0, gain


def test_deblock_smooths_banding():
    """6-bit banding of smooth content (the held-out condition on a crop): the guided `deblock` removes most of the
    steps; `deblock-fast`, without the guide inputs, far less."""
    ref = compress.to_u8(cv2.GaussianBlur(held_out_crop("chelsea"), (0, 0), 4.0)).astype(np.float32) / 255
    banded = compress.quantise(ref, 6).astype(np.float32)
    gain = {n: psnr(ref, enhancer(n)(banded)) - psnr(ref, banded) for n in ("deblock", "deblock-fast")}
    assert gain["deblock"] > 2.0 and gain["deblock"] > gain["deblock-fast"] + 1.0, gain


def test_deblock_leaves_clean_texture_alone():
    """A clean, detailed held-out crop (astronaut's suit and flag) through `deblock` comes back close to itself;
    v8, before the extra near-clean pairs, and `deblock-fast` move it to 37.7 dB; v9 40.6, v10 42.3 (models/deblock.md)."""
    kept, _ = quality.untouched(enhancer("deblock"), {"astronaut": held_out_crop("astronaut")})
    assert kept > 41.0, kept


def test_upscale_beats_bicubic():
    hr = held_out_crop("astronaut")
    lr = cv2.resize(hr, (hr.shape[1] // 2, hr.shape[0] // 2), interpolation=cv2.INTER_AREA)
    bic = cv2.resize(lr, (hr.shape[1], hr.shape[0]), interpolation=cv2.INTER_CUBIC)
    out = enhancer("upscale2x")(lr)
    assert out.shape == hr.shape
    gain = quality.sr_score(hr, out)[0] - quality.sr_score(hr, bic)[0]
    assert gain > 1.0, gain


def test_upscale_detail_knob_fits_the_source():
    """An aliased source (plain cubic downscale, as line-skipping cameras make) wants little detail restored: at
    detail 0 the model beats bicubic on it; the default, tuned for antialiased sources, restores more. The engine
    feeds --strength in % as detail/100."""
    hr = held_out_crop("astronaut")
    lr = cv2.resize(hr, (hr.shape[1] // 2, hr.shape[0] // 2), interpolation=cv2.INTER_CUBIC)
    bic = cv2.resize(lr, (hr.shape[1], hr.shape[0]), interpolation=cv2.INTER_CUBIC)
    gain = {d: quality.sr_score(hr, enhancer("upscale2x", d)(lr))[0] - quality.sr_score(hr, bic)[0] for d in (0, 100)}
    assert gain[0] > 0.5 and gain[0] > gain[100] + 0.5, gain
    enh = enhancer("upscale2x", 40)
    feeds = enh.session.feeds(np.zeros((2, 3, 8, 8), np.float32), 40)
    assert feeds["detail"].shape == (2, 1, 1, 1) and np.allclose(feeds["detail"], 0.4)
    from vdiff_ofx.errors import VdiffError

    with pytest.raises(VdiffError, match="outside 0"):
        enhancer("upscale2x", 150)


def test_upscale4x_beats_bicubic_and_lanczos():
    """4x from a MATLAB-style (the SR literature's) 4x downscale of a held-out crop, at the default detail."""
    hr = held_out_crop("astronaut")
    lr = quality.downscale(hr, "matlab", 4)
    out = enhancer("upscale4x")(lr)
    assert out.shape == hr.shape
    size = (hr.shape[1], hr.shape[0])
    ours = quality.sr_score(hr, out)[0]
    for interp in (cv2.INTER_CUBIC, cv2.INTER_LANCZOS4):
        gain = ours - quality.sr_score(hr, cv2.resize(lr, size, interpolation=interp))[0]
        assert gain > 0.8, (interp, gain)


def test_matlab_downscale_by_4_is_imresize_quarter():
    """imresize(x, 0.25): 16 taps of the widened cubic, output i centred on input 4i + 1.5, linear ramps kept."""
    taps, offsets = quality._matlab_taps(4)
    assert len(taps) == 16 and np.isclose(taps.sum(), 1) and np.allclose(taps, taps[::-1])
    ramp = np.tile((np.arange(64, dtype=np.float32) * 0.01 + 0.1)[None, :, None], (8, 1, 3))
    quarter = quality.downscale(ramp, "matlab", 4)
    assert quarter.shape == (2, 16, 3)
    centres = (4 * np.arange(16) + 1.5) * 0.01 + 0.1
    assert np.abs(quarter[0, 2:-2, 0] - centres[2:-2]).max() < 1e-6
    assert np.array_equal(quality.downscale(ramp, "area", 4), cv2.resize(ramp, (16, 2), interpolation=cv2.INTER_AREA))


def test_matlab_downscale_is_imresize_half():
    """The SR literature's LR: MATLAB imresize(x, 0.5) -- its published 8 taps, symmetric borders, linear ramps kept."""
    taps = [-0.01171875, -0.03515625, 0.11328125, 0.43359375]
    assert np.allclose(quality._MATLAB_TAPS, taps + taps[::-1])
    ramp = np.tile((np.arange(40, dtype=np.float32) * 0.01 + 0.1)[None, :, None], (6, 1, 3))
    half = quality.downscale2x(ramp, "matlab")
    assert half.shape == (3, 20, 3) and half.dtype == np.float32
    centres = (2 * np.arange(20) + 0.5) * 0.01 + 0.1  # output i sits on input 2i + 0.5
    assert np.abs(half[0, 2:-2, 0] - centres[2:-2]).max() < 1e-6
    # a bright column at the left edge: mirrored (its own copy weighs in), not zero-padded
    img = np.zeros((4, 8, 1), np.float32)
    img[:, 0] = 1.0
    assert np.isclose(quality.downscale2x(img, "matlab")[0, 0, 0], taps[3] + taps[2])
    for how in ("area", "cubic"):  # the cv2 ones are cv2.resize
        flag = cv2.INTER_AREA if how == "area" else cv2.INTER_CUBIC
        assert np.array_equal(quality.downscale2x(ramp, how), cv2.resize(ramp, (20, 3), interpolation=flag))


def test_upscale_pairs_mix_downscales_and_check_the_shares():
    pytest.importorskip("torch")
    from vdiff_ofx.train.upscale import SRPairs

    rng = np.random.default_rng(1)
    src = {"leaves": [data.dead_leaves(64, rng, n_disks=800)]}
    lr, hr = SRPairs(src, 12, seed=1, p_area=0.0, p_matlab=1.0).batch(10)

    def made_by(how: str) -> int:
        u8 = [np.round(np.clip(quality.downscale2x(b.transpose(1, 2, 0), how), 0, 1) * 255) / 255 for b in hr]
        return sum(np.allclose(a.transpose(1, 2, 0), r, atol=1e-6) for a, r in zip(lr, u8))

    assert made_by("matlab") >= 7 and made_by("area") == 0  # all but the few blurred first (P_BLUR)
    with pytest.raises(ValueError, match="p-matlab"):
        SRPairs(src, 12, seed=1, p_area=0.8, p_matlab=0.3)


def test_codec_round_trip_keeps_the_mean_level():
    """The training/held-out codec round trip converts RGB<->YUV like the engine: lossless x264 (crf 0) gives back
    the same mean level. swscale's default rgb24<->yuv420p path darkened by ~1.2/255, and deblock v3 learned to
    brighten every frame to undo it."""
    img = compress.to_u8(held_out_crop("astronaut"))[:128, :128]
    frames = [np.ascontiguousarray(np.roll(img, 2 * i, axis=1)) for i in range(3)]
    out = compress.video_roundtrip(frames, "libx264", 0, "ultrafast")
    bias = np.mean([o.astype(np.float64).mean() - f.astype(np.float64).mean() for o, f in zip(out, frames)])
    assert abs(bias) < 0.1, bias
    assert psnr(frames[1] / 255.0, out[1] / 255.0) > 38  # only 4:2:0 chroma and 8-bit rounding are lost


def test_deblock_training_step():
    torch = pytest.importorskip("torch")
    from vdiff_ofx.train.fit import train_step
    from vdiff_ofx.train.restore_nets import DeblockNet

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    leaves = data.dead_leaves(96, rng, n_disks=1500)
    cfg = compress.PoolConfig(size=32, n_jpeg=2, n_h264=4, n_h265=4, n_band=2, n_light=2, seq_len=3)
    deg, cln, kind = compress.build_pool(lambda side: cv2.resize(leaves, (side, side)), cfg, 0, log=lambda *a, **k: None)
    assert deg.shape == cln.shape == (14, 32, 32, 3) and sorted(set(kind.tolist())) == [0, 1, 2, 3, 4]
    x, y = compress.PairSampler(deg, cln, 16, seed=0).batch(2)
    net = DeblockNet(down=4, width=8, blocks=1)
    loss = train_step(net, torch.optim.Adam(net.parameters(), 1e-3), torch.from_numpy(x), torch.from_numpy(y))
    assert np.isfinite(loss)


def test_upscale_training_step():
    torch = pytest.importorskip("torch")
    from vdiff_ofx.train.fit import train_step
    from vdiff_ofx.train.quality import DETAIL_OF_DOWNSCALE
    from vdiff_ofx.train.restore_nets import SR2xNet
    from vdiff_ofx.train.upscale import SRPairs

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    pairs = SRPairs({k: [data.dead_leaves(64, rng, n_disks=800)] for k in ("photos", "frames", "leaves")}, 12, seed=0)
    lr, hr = pairs.batch(2)
    assert lr.shape == (2, 3, 12, 12) and hr.shape == (2, 3, 24, 24)
    net = SR2xNet(width=8, blocks=1)
    with torch.no_grad():  # the built-in bicubic path is cv2's INTER_CUBIC
        bic = net.shuffle(net.upsample_phases(torch.from_numpy(lr)))[0].numpy().transpose(1, 2, 0)
    ref = cv2.resize(lr[0].transpose(1, 2, 0), (24, 24), interpolation=cv2.INTER_CUBIC)
    assert np.abs(bic - ref).max() < 1e-5
    loss = train_step(net, torch.optim.Adam(net.parameters(), 1e-3), torch.from_numpy(lr), torch.from_numpy(hr))
    assert np.isfinite(loss)
    # --detail-gate: each pair comes with the detail value its downscale was trained as
    pairs = SRPairs({"leaves": [data.dead_leaves(64, rng, n_disks=800)]}, 12, seed=0, p_area=0.4, p_matlab=0.3)
    (lr, detail), hr = pairs.detail_batch(6)
    assert detail.shape == (6, 1, 1, 1) and [DETAIL_OF_DOWNSCALE[k] for k in pairs.kinds] == detail.ravel().tolist()
    gated = SR2xNet(width=8, blocks=1, detail=True)
    with torch.no_grad():  # the gate starts as a no-op: the same output as the plain net with the same weights
        gated.load_state_dict({**gated.state_dict(), **net.state_dict()})
        assert torch.allclose(gated(torch.from_numpy(lr), torch.from_numpy(detail)), net(torch.from_numpy(lr)))
    x = (torch.from_numpy(lr), torch.from_numpy(detail))
    assert np.isfinite(train_step(gated, torch.optim.Adam(gated.parameters(), 1e-3), x, torch.from_numpy(hr)))


def test_4x_net_starts_both_stages_from_a_2x_file(tmp_path):
    """`--scale 4 --init upscale2x.onnx`: both stages take the 2x file's weights, so training starts from running the
    shipped 2x twice (without the clamp between); its pairs are 4x downscales; the export takes the detail input and
    gives 4H x 4W."""
    torch = pytest.importorskip("torch")
    import onnxruntime as ort

    from vdiff_ofx.train.restore_nets import SR4xNet, export_onnx
    from vdiff_ofx.train.upscale import SRPairs, init_net

    shipped = ROOT / "models" / "upscale2x.onnx"
    net = SR4xNet(32, 4)
    init_net(net, shipped)
    x = np.random.default_rng(5).random((1, 3, 12, 16), dtype=np.float32)
    d = np.full((1, 1, 1, 1), 0.4, np.float32)
    two = ort.InferenceSession(str(shipped), providers=["CPUExecutionProvider"])
    once = two.run(None, {"input": x, "detail": d})[0]
    net.eval()
    with torch.no_grad():  # each stage is the shipped 2x (which clamps its output to 0..1)
        for stage, inp in ((net.first, x), (net.second, once)):
            ref = two.run(None, {"input": inp, "detail": d})[0]
            got = stage(torch.from_numpy(inp), torch.from_numpy(d)).clamp(0, 1).numpy()
            assert np.abs(got - ref).max() < 1e-5
    rng = np.random.default_rng(0)
    (lr, detail), hr = SRPairs({"leaves": [data.dead_leaves(96, rng, n_disks=800)]}, 8, 0, factor=4).detail_batch(3)
    assert lr.shape == (3, 3, 8, 8) and hr.shape == (3, 3, 32, 32) and detail.shape == (3, 1, 1, 1)
    export_onnx(net, tmp_path / "x4.onnx")
    out = ort.InferenceSession(str(tmp_path / "x4.onnx"), providers=["CPUExecutionProvider"]).run(None, {"input": x, "detail": d})[0]
    assert out.shape == (1, 3, 48, 64)


def test_upscaler_grown_from_a_file_starts_at_its_output(tmp_path):
    """--grow N --init: the deeper net's new blocks start as identities, so it reproduces the file it grew from."""
    torch = pytest.importorskip("torch")
    import onnxruntime as ort

    from vdiff_ofx.train.export import load_onnx_weights
    from vdiff_ofx.train.restore_nets import SR2xNet, export_onnx, grow

    torch.manual_seed(4)
    small = SR2xNet(16, 2)
    torch.nn.init.normal_(small.tail.weight, std=0.05)  # a visible residual over bicubic
    path = tmp_path / "small.onnx"
    export_onnx(small, path)
    deep = SR2xNet(16, 4)
    grow(deep, 2)
    assert load_onnx_weights(deep, path) == len(small.state_dict())
    x = np.random.default_rng(3).random((1, 3, 20, 28), dtype=np.float32)
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    deep.eval().clamp = True
    with torch.no_grad():
        assert np.abs(deep(torch.from_numpy(x)).numpy() - ref).max() < 1e-5
    with pytest.raises(ValueError, match="same architecture"):
        load_onnx_weights(SR2xNet(16, 4), path)  # without grow the missing blocks are an error
    with pytest.raises(ValueError, match="--grow"):
        grow(SR2xNet(32, 4), 4)
    with pytest.raises(ValueError, match="detail"):
        grow(SR2xNet(32, 6, detail=True), 2)  # the gate's last layer is sized by the block count


def test_shipped_upscaler_loads_for_a_fine_tune():
    """`--init models/upscale2x.onnx --detail-gate`: every tensor of the shipped file lands in the net, gate included,
    and the net then gives the file's output at any detail."""
    torch = pytest.importorskip("torch")
    import onnxruntime as ort

    from vdiff_ofx.train.export import load_onnx_weights
    from vdiff_ofx.train.restore_nets import SR2xNet

    shipped = ROOT / "models" / "upscale2x.onnx"
    net = SR2xNet(32, 4, detail=True)
    assert load_onnx_weights(net, shipped) == len(net.state_dict())
    x = np.random.default_rng(3).random((2, 3, 20, 28), dtype=np.float32)
    detail = np.array([0.0, 0.7], np.float32).reshape(2, 1, 1, 1)
    ref = ort.InferenceSession(str(shipped), providers=["CPUExecutionProvider"]).run(None, {"input": x, "detail": detail})[0]
    net.eval().clamp = True
    with torch.no_grad():
        assert np.abs(net(torch.from_numpy(x), torch.from_numpy(detail)).numpy() - ref).max() < 1e-5


def test_deblock_amount_keeps_that_share_of_the_correction():
    """--strength on a deblocker: 0 % is the input untouched, 50 % half the network's correction, 100 % all of it."""
    clean = compress.to_u8(held_out_crop("coffee"))
    jpg = compress.jpeg(clean, 15).astype(np.float32) / 255
    full = enhancer("deblock")(jpg)
    half = enhancer("deblock", strength=50)(jpg)
    assert np.array_equal(enhancer("deblock", strength=0)(jpg), jpg)
    np.testing.assert_allclose(half, jpg + 0.5 * (full - jpg), atol=1e-5)
    np.testing.assert_array_equal(enhancer("deblock", strength=100)(jpg), full)
    assert psnr(clean / 255.0, full) > psnr(clean / 255.0, half) > psnr(clean / 255.0, jpg)
