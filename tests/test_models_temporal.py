"""The shipped `denoise-temporal` model: manifest entry, loading through the engine with its 3/5-frame window,
quality and flicker on a held-out static sequence, strength control; plus a training smoke test.

Fast (< 20 s) and torch-free except the last test, which skips when torch is missing.
"""
from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("onnxruntime")

from vdiff_ofx import metrics
from vdiff_ofx.engine.enhancer import Enhancer
from vdiff_ofx.engine.models import get_model, project_manifest
from vdiff_ofx.engine.providers import Backend
from vdiff_ofx.errors import ModelError
from vdiff_ofx.ops.window import windows
from vdiff_ofx.train import sequences

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def entries() -> dict:
    models = yaml.safe_load(project_manifest().read_text())["models"] or []
    return {m["name"]: m for m in models}


@pytest.fixture(scope="module")
def enh() -> Enhancer:
    return Enhancer(get_model("denoise-temporal"), Backend(providers=["cpu"], threads=2))


@pytest.fixture(scope="module")
def static_seq() -> np.ndarray:
    """Held-out static sequence (astronaut photo, or unseen dead leaves without scikit-image), 7 frames."""
    clean, _ = sequences.heldout_synthetic(frames=7, size=(192, 128), static_only=True)
    return clean


def run(enh: Enhancer, frames: np.ndarray) -> np.ndarray:
    out = [None] * len(frames)
    for idx, _, win in windows(enumerate(frames), enh.window):
        out[idx] = enh.process(win)
    return np.asarray(out)


def test_manifest_entry(entries):
    assert "denoise-temporal" in entries, "manifest.yaml has no `denoise-temporal` entry"
    entry = entries["denoise-temporal"]
    assert entry["task"] == "denoise" and entry["temporal_window"] in (3, 5)
    assert entry["strength"]["input"] == "sigma"
    if "denoise" in entries:
        optional = {"align", "spatial", "temporal_share", "receptive_field"}
        assert set(entry) - optional == set(entries["denoise"]) - optional, "same keys as `denoise`"
    assert entry.get("align") == "flow", "trained on flow-aligned windows (python -m vdiff_ofx.train.temporal --align flow)"
    if "spatial" in entry:  # the single-frame partner it is blended with (engine/enhancer.py)
        assert entries[entry["spatial"]]["temporal_window"] == 1 and 0 < entry["temporal_share"] <= 1


def test_loads_with_window(enh):
    spec = enh.spec
    assert enh.window == spec.temporal_window in (3, 5)
    assert enh.session.strength_input == "sigma"
    with pytest.raises(ModelError):
        enh.process([np.zeros((16, 16, 3), np.float32)] * (enh.window - 2))
    # odd size: the engine pads to size_multiple and crops back
    y = enh.process([np.full((37, 29, 3), 0.5, np.float32)] * enh.window)
    assert y.shape == (37, 29, 3) and np.isfinite(y).all()


def test_static_sequence_quality_and_flicker(enh, static_seq):
    noisy = sequences.add_noise_np(static_seq, 25, seed=4242)
    enh.strength = 25.0
    out = run(enh, noisy)
    gain = np.mean([metrics.psnr(c, o) - metrics.psnr(c, n) for c, o, n in zip(static_seq, out, noisy)])
    assert gain > 5.0, gain
    still = metrics.static_mask(static_seq)
    assert still.mean() > 0.9
    assert metrics.flicker(list(out), still) < 0.5 * metrics.flicker(list(noisy), still)


def test_strength_controls_change(enh, static_seq):
    noisy = sequences.add_noise_np(static_seq[:enh.window, :64, :64], 25, seed=7)
    centre = noisy[enh.window // 2]
    change = []
    for s in (0.0, 10.0, 25.0, 50.0):
        enh.strength = s
        change.append(float(np.abs(enh.process(list(noisy)) - centre).mean()))
    assert all(a < b for a, b in pairwise(change)), change


def test_one_training_step():
    torch = pytest.importorskip("torch")
    from vdiff_ofx.train import data
    from vdiff_ofx.train.temporal import FastDVDLite, add_noise_frames, train_step

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    sampler = sequences.WindowSampler([], [data.dead_leaves(64, rng)], frames=3, patch=32, seed=0)
    clean = torch.from_numpy(sampler.batch(2))
    assert clean.shape == (2, 3, 3, 32, 32)
    gen = torch.Generator().manual_seed(0)
    noisy, sigma = add_noise_frames(clean, gen)
    assert noisy.shape == clean.shape and sigma.shape == (2, 1, 1, 1)
    net = FastDVDLite(frames=3, width=8, deep=8, blocks=1)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    assert np.isfinite(train_step(net, opt, clean, gen))
    assert net(clean.flatten(1, 2), sigma).shape == (2, 3, 32, 32)


def test_aligned_training_step():
    torch = pytest.importorskip("torch")
    from vdiff_ofx.ops.align import FlowAligner
    from vdiff_ofx.train import data
    from vdiff_ofx.train.temporal import FastDVDLite, align_windows, train_step

    torch.manual_seed(0)
    sampler = sequences.WindowSampler([], [data.dead_leaves(96, np.random.default_rng(1))], frames=3, patch=32, seed=0)
    clean = torch.from_numpy(sampler.batch(2))
    aligner = FlowAligner()
    same = align_windows(clean, torch.zeros(2, 1, 1, 1), aligner)
    assert same.shape == clean.shape and torch.equal(same[:, 1], clean[:, 1])  # the middle frame is never touched
    net = FastDVDLite(frames=3, width=8, deep=8, blocks=1)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    assert np.isfinite(train_step(net, opt, clean, torch.Generator().manual_seed(0), aligner=aligner))
