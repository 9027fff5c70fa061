"""Motion compensation of temporal windows (ops/align.py) and its use by the Enhancer.

Real OpenCV DIS flow on real images; the shipped `denoise-temporal` model through onnxruntime.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from vdiff_ofx import metrics
from vdiff_ofx.ops.align import FlowAligner
from vdiff_ofx.train import data, sequences


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A held-out textured image, 160 x 224."""
    clean, _ = sequences.heldout_synthetic(frames=1, size=(224, 160), static_only=True)
    return clean[0]


def shifted(img: np.ndarray, dx: int, dy: int) -> np.ndarray:
    return np.roll(img, (dy, dx), axis=(0, 1))


def test_translation_is_compensated(photo):
    other = shifted(photo, 5, -3)
    out = FlowAligner().warp(photo, other, 0.0)
    inner = (slice(12, -12), slice(12, -12))
    assert metrics.psnr(photo[inner], out[inner]) > metrics.psnr(photo[inner], other[inner]) + 10
    assert metrics.psnr(photo[inner], out[inner]) > 32


def test_static_neighbour_is_kept_bit_exact(photo):
    rng = np.random.default_rng(1)
    a = np.clip(photo + rng.normal(0, 15 / 255, photo.shape), 0, 1).astype(np.float32)
    b = np.clip(photo + rng.normal(0, 15 / 255, photo.shape), 0, 1).astype(np.float32)
    out = FlowAligner().warp(a, b, 15.0)
    kept = np.all(out == b, axis=2)
    assert kept.mean() > 0.9, kept.mean()  # noise-only differences: the neighbour's own pixels, not resampled


def test_flow_prefilter_helps_on_noisy_frames(photo):
    """Flow from heavily noisy frames is better on slightly blurred grey: the clean neighbour lands closer."""
    rng = np.random.default_rng(3)
    other = shifted(photo, 4, 2)
    noisy = [np.clip(f + rng.normal(0, 50 / 255, f.shape), 0, 1).astype(np.float32) for f in (photo, other)]
    inner = (slice(12, -12), slice(12, -12))
    gy, gx = np.mgrid[0:photo.shape[0], 0:photo.shape[1]].astype(np.float32)
    errs = []
    for blur in (0.0, 0.8):
        f = FlowAligner(blur=blur).flow(*noisy)
        back = cv2.remap(other, gx + f[..., 0], gy + f[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        errs.append(float(np.abs(back - photo)[inner].mean()))
    assert errs[1] < 0.97 * errs[0], errs


def test_unrelated_content_falls_back_to_the_centre(photo):
    rng = np.random.default_rng(2)
    other = data.dead_leaves(max(photo.shape[:2]), rng)[: photo.shape[0], : photo.shape[1]]
    out = FlowAligner().warp(photo, other, 10.0)
    assert np.abs(out - photo).mean() < 0.25 * np.abs(other - photo).mean()


@pytest.mark.parametrize("h, w", [(1, 1), (5, 7), (9, 33)])
def test_tiny_frames(h, w):
    rng = np.random.default_rng(h * w)
    win = [rng.random((h, w, 3), dtype=np.float32) for _ in range(3)]
    out = FlowAligner()(win, 10.0)
    assert [o.shape for o in out] == [(h, w, 3)] * 3 and all(np.isfinite(o).all() for o in out)


def test_window_keeps_the_centre_and_alpha(photo):
    rgba = np.concatenate([photo, np.full(photo.shape[:2] + (1,), 0.5, np.float32)], axis=2)
    win = [shifted(rgba, k, 0) for k in (-2, -1, 0, 1, 2)]
    out = FlowAligner()(win, 5.0)
    assert len(out) == 5 and out[2] is win[2]
    assert all(o.shape == rgba.shape and o.dtype == np.float32 for o in out)


def test_enhancer_aligns_only_when_asked(photo):
    pytest.importorskip("onnxruntime")
    from dataclasses import replace

    from vdiff_ofx.engine.enhancer import Enhancer
    from vdiff_ofx.engine.models import get_model
    from vdiff_ofx.engine.providers import Backend
    from vdiff_ofx.errors import VdiffError

    spec = get_model("denoise-temporal")
    backend = Backend(providers=["cpu"], threads=2)
    plain = Enhancer(replace(spec, extra={**spec.extra, "align": "none"}), backend, strength=15)
    flow = Enhancer(replace(spec, extra={**spec.extra, "align": "flow"}), backend, strength=15, session=plain.session,
                    spatial="none")
    assert plain.aligner is None and flow.aligner is not None
    rng = np.random.default_rng(3)
    noisy = [np.clip(photo + rng.normal(0, 15 / 255, photo.shape), 0, 1).astype(np.float32)] * spec.temporal_window
    assert np.array_equal(plain.process(noisy), flow.process(noisy))  # identical frames: nothing to align
    moving = [shifted(photo, 4 * k, 0) for k in range(-(spec.temporal_window // 2), spec.temporal_window // 2 + 1)]
    inner = (slice(16, -16), slice(24, -24))
    centre = moving[len(moving) // 2]
    assert (metrics.psnr(centre[inner], flow.process(moving)[inner])
            > metrics.psnr(centre[inner], plain.process(moving)[inner]))
    with pytest.raises(VdiffError):
        Enhancer(spec, backend, align="sideways", session=plain.session)


def test_aligner_follows_a_strength_changed_on_a_live_enhancer(photo):
    """Benchmarks and `--strength auto` set `strength` after the Enhancer is built; the flow prefilter must use the
    new noise level (a level frozen at construction made denoise-temporal ghost at sigma 50: 24 dB instead of 28)."""
    pytest.importorskip("onnxruntime")
    from vdiff_ofx.engine.enhancer import Enhancer
    from vdiff_ofx.engine.providers import Backend

    backend = Backend(providers=["cpu"], threads=2)
    live = Enhancer("denoise-temporal", backend)
    fresh = Enhancer("denoise-temporal", backend, strength=50, session=live.session)
    live.strength = 50.0
    assert live.noise_sigma == fresh.noise_sigma == 50.0
    rng = np.random.default_rng(4)
    frames = [np.clip(shifted(photo, 3 * k, 0) + rng.normal(0, 50 / 255, photo.shape), 0, 1).astype(np.float32)
              for k in range(-2, 3)]
    assert np.array_equal(live.process(frames), fresh.process(frames))


def test_align_counts_the_distinct_neighbours_it_trusts(photo):
    """The support map: every distinct, matching neighbour counts 1; the centre itself, repeats and misfits nothing."""
    rng = np.random.default_rng(5)
    noisy = [np.clip(photo + rng.normal(0, 10 / 255, photo.shape), 0, 1).astype(np.float32) for _ in range(5)]
    al = FlowAligner()
    _, full = al.align(noisy, 10.0)
    assert full.shape == photo.shape[:2] and full.dtype == np.float32
    assert full.mean() > 3.8 and full.max() <= 4.0 + 1e-6, full.mean()  # static: all four neighbours line up
    edge = [noisy[0], noisy[0], noisy[0], noisy[1], noisy[2]]  # a clip's first frame: replicated
    out, two = al.align(edge, 10.0)
    assert two.max() <= 2.0 + 1e-6 and two.mean() > 1.8
    assert out[2] is noisy[0] and out[0] is out[1]
    assert np.array_equal(al.align([noisy[0]] * 5, 10.0)[1], np.zeros(photo.shape[:2], np.float32))
    other = data.dead_leaves(max(photo.shape[:2]), rng)[: photo.shape[0], : photo.shape[1]]
    _, misfit = al.align([other, noisy[1], noisy[0], noisy[2], other], 10.0)
    assert misfit.mean() < 2.3, misfit.mean()  # the unrelated frames add (almost) nothing


def _spatial_blend_parts():
    from dataclasses import replace

    from vdiff_ofx.engine.enhancer import Enhancer
    from vdiff_ofx.engine.models import get_model
    from vdiff_ofx.engine.providers import Backend

    spec = get_model("denoise-temporal")
    backend = Backend(providers=["cpu"], threads=2)
    return replace, Enhancer, spec, backend


def test_temporal_model_blends_with_its_spatial_partner(photo):
    """out = S + w (T - S), w = temporal_share * support / 4, S computed only around the pixels where it counts."""
    pytest.importorskip("onnxruntime")
    replace, Enhancer, spec, backend = _spatial_blend_parts()
    assert spec.extra.get("spatial") and 0 < float(spec.extra["temporal_share"]) <= 1
    rng = np.random.default_rng(6)
    h, w = 320, 448
    big = cv2.resize(photo, (w, h), interpolation=cv2.INTER_CUBIC)
    frames = []
    for k in range(-2, 3):  # static background, one small square moving in the top-left corner
        f = big.copy()
        f[20:60, 24 + 6 * k + 12: 64 + 6 * k + 12] = [0.9, 0.2, 0.1]
        frames.append(np.clip(f + rng.normal(0, 20 / 255, f.shape), 0, 1).astype(np.float32))
    share1 = replace(spec, extra={**spec.extra, "temporal_share": 1.0})
    blend = Enhancer(share1, backend, strength=20)
    alone = Enhancer(share1, backend, strength=20, session=blend.session, spatial="none")
    single = Enhancer(spec.extra["spatial"], backend, strength=20)
    t, s = alone.process(frames), single.process([frames[2]])
    support = blend.aligner.align(frames, 20.0)[1]
    weight = np.clip(support / 4, 0, 1)[..., None]
    assert (weight < 0.999).mean() < 0.2  # the spatial model runs on a crop, not the whole frame
    got = blend.process(frames)
    assert np.abs(got - (s + weight * (t - s))).max() < 2e-3
    assert not np.array_equal(got, t)
    half = Enhancer(spec, backend, strength=20, session=blend.session)  # the manifest's share
    k = float(spec.extra["temporal_share"])
    expect = s + np.clip(support * k / 4, 0, 1)[..., None] * (t - s)
    assert np.abs(half.process(frames) - expect).max() < 2e-3


def test_spatial_partner_follows_strength_and_is_checked(photo):
    pytest.importorskip("onnxruntime")
    from vdiff_ofx.errors import ModelError, VdiffError

    replace, Enhancer, spec, backend = _spatial_blend_parts()
    live = Enhancer(spec, backend)
    live.strength = 35.0
    assert live._spatial_enhancer().strength == 35.0
    assert Enhancer(spec, backend, session=live.session, spatial="none").spatial_spec is None
    assert Enhancer(spec, backend, session=live.session, align="none").spatial_spec is None  # nothing to weigh by
    with pytest.raises(VdiffError, match="single-frame denoise"):
        Enhancer(spec, backend, session=live.session, spatial="upscale2x")
    with pytest.raises(ModelError, match="temporal_share"):
        Enhancer(replace(spec, extra={**spec.extra, "temporal_share": 1.5}), backend, session=live.session)
