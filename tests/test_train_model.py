"""The shipped `denoise` ONNX model: contract, strength behaviour, quality floor; plus a training smoke test.

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


@pytest.fixture(scope="module")
def entry() -> dict:
    models = yaml.safe_load((ROOT / "manifest.yaml").read_text())["models"] or []
    found = [m for m in models if m["name"] == "denoise"]
    assert found, "manifest.yaml has no `denoise` entry"
    return found[0]


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
    assert entry["size_multiple"] in (2, 4) and entry["strength"]["input"] == "sigma"
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
