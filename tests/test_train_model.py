"""The shipped `denoise` / `denoise-hq` / `denoise-hq-int8` ONNX models: contract, strength behaviour, quality floor; data
helpers; the int8 quantizer; a training smoke test.

Fast (< 20 s) and torch-free except the last test, which skips when torch is missing.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import yaml

ort = pytest.importorskip("onnxruntime")

from vdiff_ofx.train import data, evaluate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _entry(name: str) -> dict:
    models = yaml.safe_load((ROOT / "manifest.yaml").read_text())["models"] or []
    found = [m for m in models if m["name"] == name]
    assert found, f"manifest.yaml has no `{name}` entry"
    return found[0]


@pytest.fixture(scope="module", params=["denoise", "denoise-hq", "denoise-hq-int8"])
def entry(request) -> dict:
    """The fast single-frame denoiser, its quality variant and that variant's int8 form share one contract."""
    return _entry(request.param)


@pytest.fixture(scope="module")
def sess(entry):
    path = ROOT / entry["file"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], "manifest sha256 out of date"
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    """A held-out photo (astronaut), or an unseen dead-leaves image if scikit-image is absent."""
    try:
        return data.skimage_images(("astronaut",))["astronaut"]
    except ImportError:
        return data.dead_leaves(256, np.random.default_rng(987654))


def _run(sess, x: np.ndarray, sigma255: float) -> np.ndarray:
    s = np.full((x.shape[0], 1, 1, 1), sigma255 / 255.0, np.float32)
    return sess.run(["output"], {"input": x.astype(np.float32), "sigma": s})[0]


def test_contract(sess, entry):
    names = {i.name: i for i in sess.get_inputs()}
    assert set(names) == {"input", "sigma"} and [o.name for o in sess.get_outputs()] == ["output"]
    assert entry["size_multiple"] in (2, 4, 8) and entry["strength"]["input"] == "sigma"
    m = entry["size_multiple"]
    for n, h, w in ((1, 13 * m, 23 * m), (2, 7 * m, 5 * m)):
        y = _run(sess, np.random.default_rng(0).random((n, 3, h, w)), 20)
        assert y.shape == (n, 3, h, w) and y.dtype == np.float32
        assert np.isfinite(y).all() and y.min() >= 0.0 and y.max() <= 1.0


def test_strength_monotonic(sess, clean):
    crop = clean[:128, :128]
    noisy = evaluate.add_gaussian_noise(crop, 25, "strength")
    x = noisy.transpose(2, 0, 1)[None]
    change = [float(np.abs(_run(sess, x, s) - x).mean()) for s in (0, 10, 25, 50)]
    assert all(a < b for a, b in zip(change, change[1:])), change


def test_quality_sigma25(sess, entry, clean):
    den = evaluate.OnnxDenoiser(ROOT / entry["file"], entry["size_multiple"])
    noisy = evaluate.add_gaussian_noise(clean, 25, "test")
    gain = evaluate.psnr(clean, den(noisy, 25)) - evaluate.psnr(clean, noisy)
    assert gain > 5.0, gain


def test_quality_variant_beats_fast_model(clean):
    noisy = evaluate.add_gaussian_noise(clean, 25, "variants")
    fast, hq = (_entry(n) for n in ("denoise", "denoise-hq"))
    scores = [evaluate.psnr(clean, evaluate.OnnxDenoiser(ROOT / e["file"], e["size_multiple"])(noisy, 25))
              for e in (fast, hq)]
    assert scores[1] > scores[0] + 0.3, scores


def test_int8_variant_keeps_the_quality_variants_lead(clean):
    noisy = evaluate.add_gaussian_noise(clean, 25, "int8")
    fast, hq, q8 = (_entry(n) for n in ("denoise", "denoise-hq", "denoise-hq-int8"))
    scores = [evaluate.psnr(clean, evaluate.OnnxDenoiser(ROOT / e["file"], e["size_multiple"])(noisy, 25))
              for e in (fast, hq, q8)]
    assert scores[2] > scores[0] + 0.3 and scores[2] > scores[1] - 0.3, scores


def test_quantizer_rebuilds_the_shipped_int8_model(tmp_path):
    """The recipe's command gives the shipped file's outputs (byte equality is checked in its recipe; across
    onnxruntime releases the quantizer's bytes may move, its results should not)."""
    pytest.importorskip("onnx")
    pytest.importorskip("skimage")
    from vdiff_ofx.train.quantize import main as quantize_main

    out = tmp_path / "q8.onnx"
    assert quantize_main(["--model", str(ROOT / "models" / "denoise-hq.onnx"), "--out", str(out)]) == 0
    x = np.random.default_rng(3).random((1, 3, 64, 96)).astype(np.float32)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    shipped, rebuilt = (ort.InferenceSession(str(p), so, providers=["CPUExecutionProvider"])
                        for p in (ROOT / "models" / "denoise-hq-int8.onnx", out))
    a, b = _run(shipped, x, 25), _run(rebuilt, x, 25)
    assert float(np.abs(a - b).max()) < 2 / 255


def test_quantizer_keeps_every_pixel_touching_convolution_fp32():
    pytest.importorskip("onnx")
    from vdiff_ofx.train.quantize import fp32_nodes, pixel_convs

    assert pixel_convs(ROOT / "models" / "denoise-hq.onnx") == ["/head/Conv", "/tail/Conv"]
    # + the long skip into the tail and the Concat (pixels, noise-level map) into the head
    assert fp32_nodes(ROOT / "models" / "denoise-hq.onnx") == ["/head/Conv", "/tail/Conv", "/Add_1", "/Concat_1"]
    # the temporal network also writes pixels through its learned temporal-mean path
    assert pixel_convs(ROOT / "models" / "denoise-temporal.onnx") == ["/head/Conv", "/skip/Conv", "/tail/Conv"]


def test_one_training_step():
    torch = pytest.importorskip("torch")
    from vdiff_ofx.train.degrade import add_noise
    from vdiff_ofx.train.denoise import train_step
    from vdiff_ofx.train.nets import FFDNetLite

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    sampler = data.PatchSampler({"leaves": [data.dead_leaves(64, rng)]}, {"leaves": 1.0}, 32, seed=0)
    net = FFDNetLite(down=2, width=8, blocks=1)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    gen = torch.Generator().manual_seed(0)
    clean = torch.from_numpy(sampler.batch(2))
    noisy, sigma = add_noise(clean, gen)
    assert noisy.shape == clean.shape and sigma.shape == (2, 1, 1, 1)
    loss = train_step(net, opt, clean, gen)
    assert np.isfinite(loss)


def test_unet_shapes_and_export(tmp_path):
    torch = pytest.importorskip("torch")
    from vdiff_ofx.train.export import export_onnx, parity_check
    from vdiff_ofx.train.nets import DenoiseUNet

    torch.manual_seed(0)
    net = DenoiseUNet(width=8, blocks=1, levels=3).eval()
    assert net.down == 8
    x, s = torch.rand(2, 3, 32, 48), torch.full((2, 1, 1, 1), 0.1)
    assert net(x, s).shape == x.shape
    export_onnx(net, tmp_path / "u.onnx")
    assert parity_check(net, tmp_path / "u.onnx") < 1e-4


def test_init_loads_shipped_weights_including_shared_tensors(tmp_path):
    """--init: an exported file's weights come back exactly, also where the exporter shared equal (zero) tensors."""
    torch = pytest.importorskip("torch")
    from vdiff_ofx.train.export import export_onnx, load_onnx_weights
    from vdiff_ofx.train.nets import FFDNetLite

    torch.manual_seed(1)
    net = FFDNetLite(2, 8, 1).eval()
    with torch.no_grad():
        net.body[0].a.bias.zero_()
        net.body[0].b.bias.zero_()  # two equal tensors: the exporter may keep one and make the other an Identity
    export_onnx(net, tmp_path / "a.onnx")
    fresh = FFDNetLite(2, 8, 1)
    assert load_onnx_weights(fresh, tmp_path / "a.onnx") == len(net.state_dict())
    for k, v in net.state_dict().items():
        assert torch.equal(v, fresh.state_dict()[k]), k
    with pytest.raises(ValueError, match="same architecture"):
        load_onnx_weights(FFDNetLite(2, 16, 1), tmp_path / "a.onnx")


def test_context_branch_fine_tune_starts_from_the_flat_net(tmp_path):
    """--context with --init: the flat file's weights load, the new branch starts at zero (same output), and the
    exported graph with the branch matches torch at its size multiple."""
    torch = pytest.importorskip("torch")
    from vdiff_ofx.train.export import export_onnx, load_onnx_weights, parity_check
    from vdiff_ofx.train.nets import FFDNetLite

    torch.manual_seed(2)
    flat = FFDNetLite(2, 8, 2).eval()
    export_onnx(flat, tmp_path / "flat.onnx")
    ctx = FFDNetLite(2, 8, 2, context=1).eval()
    assert ctx.size_multiple == 8
    assert load_onnx_weights(ctx, tmp_path / "flat.onnx") == len(flat.state_dict())
    x, s = torch.rand(1, 3, 48, 40), torch.full((1, 1, 1, 1), 0.1)
    with torch.no_grad():
        assert torch.equal(ctx(x, s), flat(x, s))
        ctx.ctx_up.bias.fill_(0.01)  # a trained branch changes the output
        assert not torch.equal(ctx(x, s), flat(x, s))
    export_onnx(ctx, tmp_path / "ctx.onnx")
    assert parity_check(ctx, tmp_path / "ctx.onnx") < 1e-4
    with pytest.raises(ValueError, match="same architecture"):  # only the declared branch may be missing
        load_onnx_weights(FFDNetLite(2, 8, 3), tmp_path / "flat.onnx")


def test_deblock_context_branch_starts_from_the_flat_deblocker(tmp_path):
    """The same branch on the strength-less deblocker (`train.deblock --context`), exported at its size multiple;
    with --grow as well, both the branch and the new blocks are the fresh modules."""
    torch = pytest.importorskip("torch")
    from vdiff_ofx.train.export import load_onnx_weights
    from vdiff_ofx.train.restore_nets import DeblockNet, export_onnx, grow, parity_check

    torch.manual_seed(3)
    flat = DeblockNet(2, 8, 2).eval()
    with torch.no_grad():
        flat.tail.weight.normal_(0, 0.05)  # a trained tail (a fresh one is zero: the identity)
    export_onnx(flat, tmp_path / "flat.onnx")
    ctx = DeblockNet(2, 8, 2, context=1).eval()
    assert ctx.size_multiple == 8 and flat.size_multiple == 2
    assert load_onnx_weights(ctx, tmp_path / "flat.onnx") == len(flat.state_dict())
    x = torch.rand(1, 3, 40, 56)
    with torch.no_grad():
        assert torch.equal(ctx(x), flat(x)) and not torch.equal(flat(x), x)
        ctx.ctx_up.bias.fill_(0.01)
        assert not torch.equal(ctx(x), flat(x))
    export_onnx(ctx, tmp_path / "ctx.onnx")
    assert parity_check(ctx, tmp_path / "ctx.onnx") < 1e-4
    deeper = DeblockNet(2, 8, 4, context=1)
    grow(deeper, 2)
    assert deeper.fresh_modules == ("ctx_down.", "ctx.", "ctx_up.", "body.2.", "body.3.")


def test_range_smooth_stops_at_edges_and_smooths_small_steps():
    """The deblocker's fixed guide features: zero on flat areas, a 6-bit step (4 code values) smoothed by the
    wider thresholds and barely by the 2-code one, a 0.5 edge left alone by all three; the widest equals a
    Gaussian-weighted 3x3 mean away from edges."""
    torch = pytest.importorskip("torch")
    from vdiff_ofx.train.restore_nets import RangeSmooth

    rs = RangeSmooth()
    assert rs.channels == 9
    flat = torch.full((1, 3, 8, 8), 0.3)
    assert float(rs(flat).abs().max()) < 1e-6
    step = torch.zeros(1, 3, 8, 8)
    step[..., 4:] = 4 / 255
    f = rs(step)[0, :, 3, 3]  # left of the step: the three thresholds' corrections, 3 channels each
    assert float(f[0]) < 0.25 / 255 and float(f[3]) > 0.8 / 255 and float(f[6]) > float(f[3])
    edge = torch.zeros(1, 3, 8, 8)
    edge[..., 4:] = 0.5
    assert float(rs(edge).abs().max()) < 1e-4
    x = torch.rand(1, 3, 6, 6) * 0.01
    g = torch.tensor([[np.exp(-1), np.exp(-0.5), np.exp(-1)], [np.exp(-0.5), 1.0, np.exp(-0.5)],
                      [np.exp(-1), np.exp(-0.5), np.exp(-1)]], dtype=torch.float32)
    mean = torch.nn.functional.conv2d(x, (g / g.sum()).expand(3, 1, 3, 3), groups=3)
    wide = RangeSmooth(thresholds=(10.0,))(x)[:, :, 1:-1, 1:-1] + x[:, :, 1:-1, 1:-1]
    assert torch.allclose(wide, mean, atol=1e-6)


def test_guided_deblocker_starts_from_the_plain_one(tmp_path):
    """`train.deblock --guide --init FILE`: the guide head is the fresh module and starts at zero, so the guided
    net reproduces the plain file's output; exported, onnxruntime matches torch."""
    torch = pytest.importorskip("torch")
    from vdiff_ofx.train.export import load_onnx_weights
    from vdiff_ofx.train.restore_nets import DeblockNet, export_onnx, parity_check

    torch.manual_seed(4)
    plain = DeblockNet(2, 8, 2).eval()
    with torch.no_grad():
        plain.tail.weight.normal_(0, 0.05)
    export_onnx(plain, tmp_path / "plain.onnx")
    guided = DeblockNet(2, 8, 2, guide=True).eval()
    assert guided.fresh_modules == ("guide_head.",) and guided.size_multiple == 2
    assert load_onnx_weights(guided, tmp_path / "plain.onnx") == len(plain.state_dict())
    x = torch.rand(1, 3, 30, 42)
    with torch.no_grad():
        assert torch.equal(guided(x), plain(x))
        guided.guide_head.weight.normal_(0, 0.05)
        assert not torch.equal(guided(x), plain(x))
    export_onnx(guided, tmp_path / "guided.onnx")
    assert parity_check(guided, tmp_path / "guided.onnx") < 1e-4


def _fake_wallpapers(root: Path) -> None:
    """The plasma-workspace-wallpapers layout with two real JPEG sizes per name (the larger one must be used)."""
    import cv2

    rng = np.random.default_rng(5)
    for name in data.TRAIN_WALLPAPERS + data.HELDOUT_WALLPAPERS:
        folder = root / "wallpapers" / name / "contents" / "images"
        folder.mkdir(parents=True)
        img = (data.dead_leaves(400, rng) * 255).astype(np.uint8)
        cv2.imwrite(str(folder / "1920x1200.jpg"), cv2.resize(img, (1920, 1200)))
        cv2.imwrite(str(folder / "640x400.jpg"), cv2.resize(img, (640, 400)))


def test_wallpaper_photos_are_optional_and_downscaled(tmp_path, monkeypatch):
    monkeypatch.delenv(data.PHOTOS_ENV, raising=False)
    assert data.find_photos_root(tmp_path) is None or Path("/usr/share/wallpapers").is_dir()
    _fake_wallpapers(tmp_path)
    root = data.find_photos_root(tmp_path)
    assert root == tmp_path
    photos = data.wallpaper_photos(root, data.TRAIN_WALLPAPERS)
    assert list(photos) == list(data.TRAIN_WALLPAPERS)
    assert all(p.shape == (600, 960, 3) and p.dtype == np.float32 for p in photos.values())  # from the 1920 file
    held = data.heldout_photos(root)
    assert set(held) == {f"wp_{n}" for n in data.HELDOUT_WALLPAPERS}
    assert not set(data.TRAIN_WALLPAPERS) & set(data.HELDOUT_WALLPAPERS)
    assert "not used" in data.photos_note(None) and data.TRAIN_WALLPAPERS[0] in data.photos_note(root)


def test_nature_photos_are_opt_in_downscaled_and_pooled_by_name(tmp_path, monkeypatch):
    import cv2

    monkeypatch.delenv(data.PHOTOS_ENV, raising=False)
    (mate, _), (lomiri, names) = [(tmp_path / sub, names) for _, sub, names in data.NATURE_SETS]
    mate.mkdir(parents=True)
    rng = np.random.default_rng(6)
    write = lambda f, w, h: cv2.imwrite(str(f), cv2.resize((data.dead_leaves(300, rng) * 255).astype(np.uint8), (w, h)))
    for name, (w, h) in {"Leaf": (2560, 1600), "Dune": (1680, 1050)}.items():
        write(mate / f"{name}.jpg", w, h)
    assert data.nature_dir(tmp_path) == tmp_path and data.nature_dir(None) is None
    with pytest.raises(SystemExit, match="no nature photos"):
        data.nature_dir(tmp_path / "elsewhere")
    photos = data.nature_photos(tmp_path)
    assert list(photos) == ["Dune", "Leaf"] and photos["Leaf"].shape == (600, 960, 3) and photos["Dune"].shape == (600, 960, 3)
    assert "mate-backgrounds nature photos Dune, Leaf" in data.nature_note(tmp_path) and "not used" in data.nature_note(None)
    assert data.nature_photos(None) == {}
    # A second package unpacked into the same root: only its listed photos join, sorted in by file name.
    write(lomiri / f"{names[0]}.jpg", 1000, 3000)
    write(lomiri / "warty-final-ubuntu.jpg", 800, 600)  # an abstract of that package, not listed
    photos = data.nature_photos(tmp_path)
    assert list(photos) == sorted(["Dune", "Leaf", names[0]]) and photos[names[0]].shape == (960, 320, 3)
    assert "lomiri-wallpapers-16.04" in data.nature_note(tmp_path) and "warty" not in data.nature_note(tmp_path)
    (mate / "Broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(FileNotFoundError, match="Broken.jpg"):
        data.nature_photos(tmp_path)


def test_luma_loss_ignores_chroma_only_at_full_weight():
    torch = pytest.importorskip("torch")
    from vdiff_ofx.train.fit import charbonnier, luma_charbonnier
    from vdiff_ofx.train.quality import Y_WEIGHTS

    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 8, 8, generator=g)
    assert torch.allclose(luma_charbonnier(0.0)(a, a.flip(-1)), charbonnier(a, a.flip(-1)))
    # a change that keeps BT.601 luma: +d on R, and the G shift that cancels it
    d = torch.zeros_like(a)
    d[:, 0] = 0.1
    d[:, 1] = -0.1 * Y_WEIGHTS[0] / Y_WEIGHTS[1]
    eps_only = luma_charbonnier(1.0)(a, a)
    assert torch.allclose(luma_charbonnier(1.0)(a + d, a), eps_only, atol=1e-6)
    assert luma_charbonnier(0.5)(a + d, a) > eps_only + 0.02


def test_sampler_drops_absent_groups():
    rng = np.random.default_rng(0)
    leaves = [data.dead_leaves(64, rng)]
    a = data.PatchSampler({"leaves": leaves, "wallpapers": []}, {"leaves": 1.0, "wallpapers": 0.5}, 32, seed=3)
    b = data.PatchSampler({"leaves": leaves}, {"leaves": 1.0}, 32, seed=3)
    assert np.array_equal(a.batch(3), b.batch(3))


def test_table_has_cbm3d_columns_only_when_run():
    rows = [evaluate.Row(25, (20.5, 0.29), (27.4, 0.71), 16.25, 1700.0, (30.5, 0.81), 400.0)]
    assert "CBM3D" not in evaluate.format_table(rows)
    rows[0].cbm3d, rows[0].cbm3d_ms_per_mp = (32.3, 0.87), 9000.0
    table = evaluate.format_table(rows)
    assert "CBM3D" in table.splitlines()[0] and "32.30 / 0.8700" in table and "| 9000 |" in table
    assert len({line.count("|") for line in table.splitlines()}) == 1


def test_cbm3d_baseline_denoises():
    pytest.importorskip("bm3d")
    clean = data.dead_leaves(128, np.random.default_rng(11))  # 64 px gave only +2.75 dB: too little to group
    noisy = evaluate.add_gaussian_noise(clean, 25, "cbm3d")
    assert evaluate.psnr(clean, evaluate.cbm3d_denoise(noisy, 25)) > evaluate.psnr(clean, noisy) + 3


def test_group_weights_and_pair_factors_parse_as_kind_equals_number(capsys):
    pytest.importorskip("torch")
    from vdiff_ofx.train import deblock, upscale

    args = upscale.parse_args(["--mix", "nature=1", "frames=0.15"])
    assert upscale.mix(args) == {**upscale.SOURCE_WEIGHTS, "nature": 1.0, "frames": 0.15}
    assert upscale.mix(upscale.parse_args([])) == upscale.SOURCE_WEIGHTS
    assert deblock.parse_args(["--pair-scale", "band=3", "light=4"]).pair_scale == [("band", 3.0), ("light", 4.0)]
    for argv, parse in ((["--mix", "sky=1"], upscale.parse_args), (["--pair-scale", "band=x"], deblock.parse_args)):
        with pytest.raises(SystemExit):
            parse(argv)
    assert "expected KIND=F" in capsys.readouterr().err


def test_qat_forward_rounds_what_the_int8_build_rounds(tmp_path):
    """--qat: the training forward pass reads the quantizer's own scales, knows every rounding of the int8 graph and
    gives the int8 file's output far more closely than the fp32 forward pass does; a training step runs with it."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    pytest.importorskip("skimage")
    from vdiff_ofx.train import qat
    from vdiff_ofx.train.denoise import train_step
    from vdiff_ofx.train.export import export_onnx
    from vdiff_ofx.train.nets import FFDNetLite
    from vdiff_ofx.train.quantize import quantize

    torch.manual_seed(3)
    net = FFDNetLite(2, 8, 2, context=1).eval()
    with torch.no_grad():
        net.ctx_up.weight.normal_(0, 0.05)  # a trained branch, not the zero start
    export_onnx(net, tmp_path / "f.onnx")
    quantize(tmp_path / "f.onnx", tmp_path / "q.onnx", crops=4, size=64)
    fq = qat.FakeQuant.from_int8(tmp_path / "q.onnx")
    assert len(fq.weights) == 2 * 2 + 2 + 2 * 1  # body and context convs; head and tail stay fp32
    assert "/head/Conv_output_0" in fq.act and "/Add_1_output_0" not in fq.act  # the long skip stays fp32
    fq.check(net)
    rounded, plain = qat.parity(net, fq, tmp_path / "q.onnx"), qat.parity(net, qat.FakeQuant({}, set()), tmp_path / "q.onnx")
    assert rounded < 0.25 * plain, (rounded, plain)
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    clean = torch.rand(2, 3, 32, 32)
    assert np.isfinite(train_step(net.train(), opt, clean, torch.Generator().manual_seed(0), fq))


def test_blend_fit_keeps_what_the_network_gets_right():
    """train.blend on dead-leaves patches through the shipped `denoise` (its blend off): strength 0 keeps none of
    the change, shares never fall as noise rises, and the blend is never below the input or the network."""
    torch = pytest.importorskip("torch")
    import dataclasses

    from vdiff_ofx.engine.models import get_model
    from vdiff_ofx.engine.session import ModelSession
    from vdiff_ofx.train.blend import fit_shares, single_frame_outputs
    from vdiff_ofx.train.degrade import add_noise

    spec = get_model("denoise")
    raw = ModelSession(dataclasses.replace(spec, strength=dataclasses.replace(spec.strength, blend=())))
    rng = np.random.default_rng(0)
    clean = np.stack([data.dead_leaves(64, rng).transpose(2, 0, 1) for _ in range(6)]).astype(np.float32)
    rows = fit_shares(single_frame_outputs(raw, clean, seed=0), (0.0, 2.0, 5.0, 25.0))
    shares = [r["share"] for r in rows]
    assert shares[0] == 0.0 and shares == sorted(shares) and shares[-1] > shares[1], shares
    for r in rows[1:]:
        assert r["blend"] >= max(r["input"], r["network"]) - 1e-6, r
    noisy, sigma = add_noise(torch.from_numpy(clean), torch.Generator().manual_seed(1), sigma=torch.tensor(0.1))
    assert torch.all(sigma == 0.1) and abs(float((noisy - torch.from_numpy(clean)).std()) - 0.1) < 0.02


def test_deblocker_from_a_denoiser_starts_from_its_output_at_the_level(tmp_path):
    """`--from-denoiser`: the denoiser's weights behind a fixed level give exactly what the shipped file gives at that
    strength, so the fine-tune starts from the denoiser, and it exports as an image-only net."""
    torch = pytest.importorskip("torch")
    from vdiff_ofx.train.export import load_onnx_weights
    from vdiff_ofx.train.nets import FFDNetLite
    from vdiff_ofx.train.restore_nets import FixedLevel, export_onnx

    e = next(m for m in yaml.safe_load((ROOT / "manifest.yaml").read_text())["models"] if m["name"] == "denoise-hq")
    net = FixedLevel(FFDNetLite(2, 64, 6, context=2), 8 / 255)
    assert load_onnx_weights(net.inner, ROOT / e["file"]) > 0
    x = np.random.default_rng(0).random((1, 3, 32, 48), dtype=np.float32)
    ref = ort.InferenceSession(str(ROOT / e["file"]), providers=["CPUExecutionProvider"])
    want = ref.run(["output"], {"input": x, "sigma": np.full((1, 1, 1, 1), 8 / 255, np.float32)})[0]
    with torch.no_grad():
        net.clamp = True
        got = net.eval()(torch.from_numpy(x)).numpy()
    assert np.abs(got - want).max() < 1e-4
    export_onnx(net, tmp_path / "d.onnx")
    sess = ort.InferenceSession(str(tmp_path / "d.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["input"] and net.size_multiple == 8
    assert np.abs(sess.run(["output"], {"input": x})[0] - want).max() < 1e-4
