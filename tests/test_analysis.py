"""Feature extraction on real decoded clips: cuts, noise level, blockiness, banding, and the auto settings they drive."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from onnx_kit import standard_set
from vdiff_ofx.analysis.clip import analyse, auto_strength, recommend
from vdiff_ofx.analysis.features import banding, blockiness, noise_sigma
from vdiff_ofx.analysis.auto import resolve_auto
from vdiff_ofx.pipeline import Job
from vdiff_ofx.train.compress import quantise


def scene(kind: int, h: int = 120, w: int = 160) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == 0:
        img = np.stack([xx / w, yy / h, 0.5 + 0 * xx], -1)
        img[30:90, 40:100] = (0.9, 0.2, 0.1)
    else:
        img = np.stack([0.2 + 0 * xx, 0.5 + 0.3 * np.sin(xx / 5), 0.8 - yy / h * 0.6], -1)
        img[10:50, 100:150] = (0.1, 0.9, 0.9)
    return img.astype(np.float32)


def write_clip(path, frames):
    with av.open(str(path), "w") as out:
        s = out.add_stream("ffv1", rate=Fraction(25))
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv444p"
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray((np.clip(f, 0, 1) * 255 + 0.5).astype(np.uint8), format="rgb24")
            vf = vf.reformat(format="yuv444p")
            vf.pts = i
            for p in s.encode(vf):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


def test_noise_estimate_tracks_added_noise():
    rng = np.random.default_rng(1)
    clean = scene(0, 240, 320)
    for sigma in (5, 15, 30):
        noisy = np.clip(clean + rng.normal(0, sigma / 255, clean.shape), 0, 1).astype(np.float32)
        est = noise_sigma(noisy) / 0.74
        assert abs(est - sigma) < 0.25 * sigma, (sigma, est)


def test_blockiness_rises_with_jpeg_compression():
    img = cv2.GaussianBlur(scene(1, 240, 320), (0, 0), 2) + np.random.default_rng(0).normal(0, 0.02, (240, 320, 3))
    bgr = (np.clip(img, 0, 1)[..., ::-1] * 255).astype(np.uint8)
    scores = []
    for q in (95, 40, 10):
        _, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, q])
        scores.append(blockiness(cv2.imdecode(buf, 1)[..., ::-1].astype(np.float32) / 255))
    assert scores[0] < scores[1] < scores[2] and scores[2] > 1.3


def test_banding_separates_quantised_gradients_from_clean_and_noisy_ones():
    smooth = cv2.GaussianBlur(scene(0, 240, 320), (0, 0), 3)
    clean = quantise(smooth, 8)
    noisy = np.clip(clean + np.random.default_rng(4).normal(0, 2 / 255, clean.shape), 0, 1).astype(np.float32)
    scores = {name: banding(img) for name, img in (("clean", clean), ("noisy", noisy), ("7bit", quantise(smooth, 7)),
                                                   ("6bit", quantise(smooth, 6)), ("5bit", quantise(smooth, 5)))}
    assert scores["clean"] < 0.1 and scores["noisy"] < 0.1, scores
    assert 0.4 < scores["7bit"] <= scores["6bit"] <= scores["5bit"], scores
    assert banding(np.zeros((64, 64, 3), np.float32)) == 0.0  # nothing smooth to judge away from clipping


def test_banded_clip_is_sent_to_deblock(tmp_path, monkeypatch):
    """A clean clip gets nothing (every model would cost it detail); the same clip after a 6-bit stage gets
    `deblock`, for its banding (not blocks)."""
    monkeypatch.setenv("VDIFF_MANIFEST", str(Path(__file__).resolve().parents[1] / "manifest.yaml"))
    monkeypatch.setenv("VDIFF_CONFIG_DIR", str(tmp_path / "config"))
    smooth = cv2.GaussianBlur(scene(0, 240, 320), (0, 0), 3)
    for bits, model in ((8, None), (6, "deblock")):
        clip = write_clip(tmp_path / f"grad{bits}.mkv", [quantise(np.roll(smooth, k, axis=1), bits) for k in range(6)])
        rec = analyse(str(clip)).to_dict()["recommendation"]
        assert rec["model"] == model, rec
        assert rec["blockiness"] < 1.3
    assert rec["banding"] > 0.4 and rec["reason"].startswith("banding")


def test_auto_model_is_the_quality_denoiser_on_a_gpu_only(tmp_path, monkeypatch):
    """`--model auto` on a noisy clip: `denoise` on a CPU, `denoise-hq` where the job runs on a GPU (as fast there);
    de-blocking is chosen the same way on both."""
    from vdiff_ofx.analysis.auto import runs_on_gpu
    from vdiff_ofx.engine.providers import Backend

    monkeypatch.setenv("VDIFF_MANIFEST", str(Path(__file__).resolve().parents[1] / "manifest.yaml"))
    monkeypatch.setenv("VDIFF_CONFIG_DIR", str(tmp_path / "config"))
    rng = np.random.default_rng(4)
    clip = write_clip(tmp_path / "noisy.mkv",
                      [np.clip(scene(0) + rng.normal(0, 12 / 255, (120, 160, 3)), 0, 1) for _ in range(4)])
    result = analyse(str(clip))
    cpu, gpu = recommend(result), recommend(result, gpu=True)
    assert (cpu["model"], gpu["model"]) == ("denoise", "denoise-hq")
    assert cpu["strength"] == gpu["strength"] and 8 < gpu["strength"] < 16 and gpu["reason"].endswith("on a GPU")
    assert not runs_on_gpu(Backend(providers=["cpu"]))
    job = resolve_auto(Job(str(clip), str(tmp_path / "o.mov"), model="auto", strength="auto",
                           backend=Backend(providers=["cpu"])))
    assert job.model == "denoise" and job.strength == cpu["strength"]


def test_clip_analysis_finds_cut_and_noise(tmp_path):
    rng = np.random.default_rng(2)
    frames = [np.clip(scene(0) + rng.normal(0, 12 / 255, (120, 160, 3)), 0, 1) for _ in range(10)]
    frames += [np.clip(scene(1) + rng.normal(0, 12 / 255, (120, 160, 3)), 0, 1) for _ in range(8)]
    clip = write_clip(tmp_path / "two_shots.mkv", frames)
    result = analyse(str(clip))
    assert result.cuts == [10] and result.frames == 18
    assert [(s.start, s.end) for s in result.shots] == [(0, 10), (10, 18)]
    for s in result.shots:
        assert 8 < s.features["noise_sigma_rgb"] < 16
    d = result.to_dict()
    assert d["recommendation"]["model"] == "denoise"
    part = analyse(str(clip), first=4, last=15)  # a job's range (and its context): frame numbers stay the clip's
    assert part.frames == 11 and [(s.start, s.end) for s in part.shots] == [(4, 10), (10, 15)]


def test_flashes_are_not_cuts_and_a_cut_at_the_very_end_still_is(tmp_path):
    """A one- and a two-frame white-out jump as far as a cut does, then the picture comes back."""
    flash = lambda img: np.clip(img * 0.3 + 0.8, 0, 1)  # noqa: E731
    frames = [scene(0)] * 8 + [flash(scene(0))] + [scene(0)] * 8 + [flash(scene(0))] * 2 + [scene(0)] * 6
    frames += [scene(1)] * 5 + [scene(0)] * 5 + [scene(1)]  # cuts at 25 and 30, and one on the last frame
    result = analyse(str(write_clip(tmp_path / "flash.mkv", frames)))
    assert result.cuts == [25, 30, 35] and result.frames == 36
    assert all(s.features for s in result.shots)  # every shot sampled, the one-frame last one too


def test_auto_job_fills_strength_and_cuts(tmp_path, monkeypatch):
    monkeypatch.setenv("VDIFF_MANIFEST", str(standard_set(tmp_path / "kit")))
    monkeypatch.setenv("VDIFF_CONFIG_DIR", str(tmp_path / "config"))
    rng = np.random.default_rng(3)
    frames = [np.clip(scene(k) + rng.normal(0, 20 / 255, (120, 160, 3)), 0, 1) for k in [0] * 6 + [1] * 6]
    clip = write_clip(tmp_path / "c.mkv", frames)
    job = resolve_auto(Job(str(clip), str(tmp_path / "o.mov"), model="sigma", strength="auto"))
    assert 15 < job.strength < 26 and job.cuts == frozenset({6})
    tjob = resolve_auto(Job(str(clip), str(tmp_path / "o.mov"), model="temporal3"))
    assert tjob.cuts == frozenset({6})
    # the analysis measures noise: an upscaler's strength (detail %) is left at the model's default, not set to a sigma
    monkeypatch.setenv("VDIFF_MANIFEST", str(Path(__file__).resolve().parents[1] / "manifest.yaml"))
    ujob = resolve_auto(Job(str(clip), str(tmp_path / "u.mov"), model="upscale2x", strength="auto"))
    assert ujob.strength is None and ujob.cuts == frozenset({6})


def _panning(img: np.ndarray, n: int = 7) -> list[np.ndarray]:
    """``img`` panning 1.3 px right and 0.4 px down a frame (subpixel: no integer shift aligns it)."""
    h, w = img.shape[:2]
    warps = [np.float32([[1, 0, -1.3 * t], [0, 1, -0.4 * t]]) for t in range(n)]
    return [cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)[8:-8, 8:-8]
            for m in warps]


def _grainy(frames: list[np.ndarray], sigma: float, blur: float, seed: int = 3) -> list[np.ndarray]:
    """Each frame's own noise of std ``sigma`` (0-255), spatially correlated by a Gaussian of ``blur`` px."""
    rng = np.random.default_rng(seed)
    out = []
    for f in frames:
        n = rng.standard_normal(f.shape).astype(np.float32)
        n = cv2.GaussianBlur(n, (0, 0), blur) if blur else n
        out.append(np.clip(f + sigma / 255 * n / n.std(), 0, 1))
    return out


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    skimage = pytest.importorskip("skimage.data")
    return cv2.resize(skimage.astronaut(), (320, 320), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


def test_correlated_noise_is_measured_over_time_not_read_low(tmp_path, photo):
    """Camera-like noise (blurred, sigma 0.6) reads ~0.45x its std in one frame; three frames tell the truth."""
    from vdiff_ofx.analysis.features import noise_sigma as fine

    frames = _grainy(_panning(photo), 12, 0.6)
    one_frame = fine(frames[3]) / 0.74
    result = analyse(str(write_clip(tmp_path / "grain.mkv", frames)))
    shot = result.shots[0].features
    assert one_frame < 7 and shot["grain"] > 1.7
    assert 9.5 < shot["noise_sigma_rgb"] < 15, shot["noise_sigma_rgb"]
    # the denoisers learnt finer noise: coarse grain is asked for at a higher strength (clip.GRAIN_BOOST)
    rec = recommend(result)
    assert rec["strength"] == pytest.approx(auto_strength(shot["noise_sigma_rgb"], shot["grain"]), abs=0.06)
    assert rec["strength"] > 1.25 * shot["noise_sigma_rgb"] and auto_strength(10.0, 1.0) == 10.0


def test_white_noise_keeps_its_estimate_and_clean_texture_stays_clean(tmp_path, photo):
    white = analyse(str(write_clip(tmp_path / "white.mkv", _grainy(_panning(photo), 12, 0)))).shots[0].features
    assert white.get("grain", 1.0) < 1.15 and 9.5 < white["noise_sigma_rgb"] < 15, white
    clean = analyse(str(write_clip(tmp_path / "clean.mkv", _panning(photo))))
    assert clean.shots[0].features["noise_sigma_rgb"] < 3, clean.shots[0].features
    assert recommend(clean)["model"] is None  # nothing to fix, panning texture or not


def test_grain_ratio_needs_three_frames_that_agree(photo):
    from vdiff_ofx.analysis.grain import central_luma, grain_ratio

    still = central_luma(photo)
    assert grain_ratio(still, still, still) is None  # no noise: no usable blocks
    noisy = [central_luma(f) for f in _grainy([photo] * 3, 12, 0.6)]
    assert 3.5 < grain_ratio(*noisy) < 7  # ~5 for this blur, static frames
    assert grain_ratio(noisy[0], noisy[1], noisy[2][:100]) is None  # a frame of another size


def test_zoom_is_aligned_along_flow_where_the_global_shift_fails(photo, monkeypatch):
    """A zooming, turning shot: no global shift lines the neighbours up, so the blocks disagree and the measure gave
    no figure; aligned along optical flow they agree. A clean zoom still gives none (no texture read as grain)."""
    from vdiff_ofx.analysis import grain

    h, w = photo.shape[:2]
    warps = [cv2.getRotationMatrix2D((w / 2, h / 2), 0.5 * t, 1 + 0.03 * t) for t in range(3)]
    clean = [cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)[8:-8, 8:-8]
             for m in warps]
    noisy = [grain.central_luma(f) for f in _grainy(clean, 12, 0.6)]
    assert 3.5 < grain.grain_ratio(*noisy) < 7
    assert grain.grain_ratio(*[grain.central_luma(f) for f in clean]) is None
    monkeypatch.setattr(grain, "_flow_aligned", lambda ref, y: (ref, 0))  # the global shift alone,
    monkeypatch.setattr(grain, "_pooled_ratio", lambda *a: None)  # without the coarse-grain check
    assert grain.grain_ratio(*noisy) is None


def test_coarse_grain_is_measured_by_its_own_std(tmp_path, photo):
    """Grain correlated over a pixel (blur 1.0, as in film scans and upscaled footage) hides from the fine-scale
    estimate (it reads near the clean-texture floor) and scatters the per-block ratios: over 32-px blocks its
    variance agrees, and the shot's sigma is the noise's own std over time; clean frames still read clean."""
    frames = _grainy(_panning(photo), 15, 1.0)
    shot = analyse(str(write_clip(tmp_path / "coarse.mkv", frames))).shots[0].features
    assert 12 < shot["noise_sigma_rgb"] < 19 and shot["grain"] > 3, shot
    clean = analyse(str(write_clip(tmp_path / "clean.mkv", _panning(photo)))).shots[0].features
    assert clean.get("grain", 1.0) < 1.5 and clean["noise_sigma_rgb"] < 3, clean


def test_auto_strength_follows_each_shot(tmp_path, monkeypatch):
    """A near-clean shot cut against a noisy one: each gets the strength measured on it, and both come out closer to
    the clean frames than at one strength for the whole clip."""
    from vdiff_ofx.io.decode import decode_frames
    from vdiff_ofx.io.probe import probe
    from vdiff_ofx.metrics import psnr
    from vdiff_ofx.pipeline import run

    skimage = pytest.importorskip("skimage.data")
    monkeypatch.setenv("VDIFF_MANIFEST", str(Path(__file__).resolve().parents[1] / "manifest.yaml"))
    monkeypatch.setenv("VDIFF_CONFIG_DIR", str(tmp_path / "config"))
    a = cv2.resize(skimage.astronaut(), (192, 192), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    b = cv2.resize(skimage.chelsea()[:, 50:350], (192, 192), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    clean = [a] * 8 + [b] * 8
    noisy = _grainy(clean[:8], 2, 0, seed=4) + _grainy(clean[8:], 25, 0, seed=5)
    clip = write_clip(tmp_path / "two.mkv", noisy)
    job = resolve_auto(Job(str(clip), str(tmp_path / "shots.mov"), model="denoise", strength="auto"))
    (s0, low), (s1, high) = job.shot_strengths
    assert (s0, s1) == (0, 8) and low < 5 and 20 < high < 30 and low < job.strength < high, job.shot_strengths
    run(job)
    run(dataclasses.replace(job, output=str(tmp_path / "one.mov"), shot_strengths=()))

    def shot_psnr(path, shot):
        out = [f.rgb[..., :3] for f in decode_frames(probe(str(path)))]
        return np.mean([psnr(clean[i], out[i]) for i in range(8 * shot, 8 * shot + 8)])

    for shot in (0, 1):
        assert shot_psnr(tmp_path / "shots.mov", shot) > shot_psnr(tmp_path / "one.mov", shot) + 0.2, shot


def test_auto_reads_only_the_jobs_range_and_a_little_context(tmp_path, monkeypatch):
    """A Resolve clip is often seconds of a long source: the analysis covers the job's frames (and 8 either side),
    so a noisy stretch elsewhere in the file neither costs time nor sets the strength."""
    monkeypatch.setenv("VDIFF_MANIFEST", str(Path(__file__).resolve().parents[1] / "manifest.yaml"))
    monkeypatch.setenv("VDIFF_CONFIG_DIR", str(tmp_path / "config"))
    rng = np.random.default_rng(9)
    shots = [(0, 25)] * 20 + [(1, 8)] * 20  # (scene, noise sigma) per frame: a cut at 20
    frames = [np.clip(scene(k) + rng.normal(0, s / 255, (120, 160, 3)), 0, 1) for k, s in shots]
    clip = write_clip(tmp_path / "long.mkv", frames)
    whole = resolve_auto(Job(str(clip), str(tmp_path / "a.mov"), model="denoise", strength="auto"))
    part = resolve_auto(Job(str(clip), str(tmp_path / "b.mov"), model="denoise", strength="auto", start=30, end=38))
    assert whole.cuts == frozenset({20}) and part.cuts == frozenset()
    assert whole.strength > 14 and 6 < part.strength < 11, (whole.strength, part.strength)
