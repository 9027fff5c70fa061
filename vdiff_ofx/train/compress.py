"""Real-codec degradations for the `deblock` model: JPEG, H.264, H.265, banding, plus mild noise.

Why real encoders: blocking, ringing, mosquito noise, chroma smear and banding from libjpeg,
libx264 and libx265 are what delivery files actually contain; synthetic approximations (blur +
block offsets) teach the net the wrong artefacts. Encoding is slow compared with a training step,
so a pool of degraded/clean pairs is built once (seeded) and kept in memory as uint8; training
samples crops from it with the same flip/rot90 on both sides.

No torch here: the held-out evaluation, benchmark and tests use these functions too.
"""
from __future__ import annotations

import fractions
import zlib
from dataclasses import dataclass

import cv2
import numpy as np

from vdiff_ofx.io.colour import frame_to_rgb, rgb_to_frame

BT709_TV = ("bt709", "tv")  # the YUV matrix and range of the codec round trips (HD delivery files)
JPEG_Q = (10, 60)          # training range of cv2 JPEG qualities
CRF = (30, 45)             # training range of x264 / x265 CRF
X264_PRESETS = ("veryfast", "medium")
X265_PRESETS = ("ultrafast", "veryfast")


def to_u8(img: np.ndarray) -> np.ndarray:
    """float 0..1 -> uint8 (rounded)."""
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def jpeg(rgb_u8: np.ndarray, quality: int) -> np.ndarray:
    """Round-trip through OpenCV's libjpeg (4:2:0 chroma, the library default)."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb_u8, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    assert ok
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def video_roundtrip(frames_u8: list[np.ndarray], codec: str, crf: int, preset: str = "veryfast") -> list[np.ndarray]:
    """Encode RGB uint8 frames (even H, W) with libx264/libx265 at `crf` (yuv420p) and decode them back.

    Works on codec contexts directly (no container, no files). Returns the decoded frames in order.
    RGB <-> YUV goes through the engine's own exact conversion (vdiff_ofx.io.colour), as real footage does:
    swscale's default rgb24 <-> yuv420p path darkens by ~1.2/255, which a net trained on it learns to undo
    everywhere (v3 deblock added +0.23/255 to every frame).
    """
    import av

    h, w = frames_u8[0].shape[:2]
    enc = av.CodecContext.create(codec, "w")
    enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
    enc.time_base = fractions.Fraction(1, 25)
    enc.framerate = fractions.Fraction(25, 1)
    opts = {"crf": str(int(crf)), "preset": preset}
    if codec == "libx265":
        opts["x265-params"] = "log-level=none"
    enc.options = opts
    packets = []
    for i, f in enumerate(frames_u8):
        vf = rgb_to_frame(f.astype(np.float32) / np.float32(255), "yuv420p", *BT709_TV)
        vf.pts = i
        packets += enc.encode(vf)
    packets += enc.encode(None)
    dec = av.CodecContext.create("h264" if codec == "libx264" else "hevc", "r")
    frames = [fr for p in packets for fr in dec.decode(p)] + list(dec.decode(None))
    out = [to_u8(frame_to_rgb(fr, *BT709_TV)) for fr in frames]
    assert len(out) == len(frames_u8), (len(out), len(frames_u8))
    return out


def quantise(img: np.ndarray, bits: int) -> np.ndarray:
    """Uniform quantisation of 0..1 floats to 2**bits levels (the banding of 6-7 bit pipelines)."""
    levels = float(2**bits - 1)
    return np.round(np.clip(img, 0.0, 1.0) * levels) / levels


def smooth_gradient(size: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth content that bands: linear/radial colour ramps with a faint low-frequency wobble."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    a, b = rng.uniform(0.05, 0.95, 3), rng.uniform(0.05, 0.95, 3)
    if rng.random() < 0.5:
        th = rng.uniform(0, 2 * np.pi)
        t = (np.cos(th) * xx + np.sin(th) * yy)
    else:
        cx, cy = rng.uniform(-0.2, 1.2, 2)
        t = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    t = t * rng.uniform(0.2, 1.0)  # narrow ramps band hardest
    img = a + (b - a) * t[..., None]
    wob = cv2.GaussianBlur(rng.standard_normal((size, size, 3)).astype(np.float32), (0, 0), size / 6)
    img = img + wob * (0.03 / max(float(wob.std()), 1e-6))
    return np.clip(img, 0, 1).astype(np.float32)


def smooth_version(img: np.ndarray, rng: np.random.Generator, sigma: tuple[float, float] = (3.0, 10.0)) -> np.ndarray:
    """A strongly blurred copy of natural content (sky-like areas that band)."""
    return cv2.GaussianBlur(img, (0, 0), float(rng.uniform(*sigma)))


@dataclass
class PoolConfig:
    size: int = 128            # pool patch side; training crops are taken from these
    n_jpeg: int = 1400
    n_h264: int = 1000
    n_h265: int = 600
    n_band: int = 800
    n_light: int = 300         # near-clean pairs (untouched 8-bit or JPEG q85-95): teach the net to leave good content alone
    seq_len: int = 6           # frames per encoded sequence (a panning crop: I + P/B frames)
    p_noise: float = 0.15      # share of sources given mild noise before encoding (target stays clean)
    noise_max: float = 4.0     # its sigma on 0-255
    q_skew: float = 1.3        # JPEG quality = lo + (hi - lo) * u**q_skew: more samples at the heavy end
    p_smooth_src: float = 0.15  # share of codec sources that are smooth (banding through the codec)
    band_blur: tuple[float, float] = (3.0, 10.0)  # blur sigma range of the natural content that is banded
    p_band_ramp: float = 0.5   # share of banding pairs that are synthetic colour ramps (the rest: blurred content)
    p_light_smooth: float = 0.0  # share of near-clean pairs that are blurred content (not sharpened when clean)


def _maybe_noise(img: np.ndarray, rng: np.random.Generator, cfg: PoolConfig) -> np.ndarray:
    if rng.random() < cfg.p_noise:
        s = rng.uniform(1.0, cfg.noise_max) / 255.0
        return np.clip(img + rng.standard_normal(img.shape).astype(np.float32) * s, 0, 1)
    return img


def build_pool(sample_clean, cfg: PoolConfig, seed: int, log=print) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Degraded/clean uint8 pairs (M x S x S x 3 each) plus a kind code per pair (0 jpeg, 1 h264, 2 h265, 3 band, 4 light).

    `sample_clean(side)` returns a clean float HxWx3 patch of the given side (seeded by the caller).
    Video pairs: a `seq_len`-frame sequence panning over a 2S x 2S clean region (random sub-pixel-free
    integer motion), encoded with one codec/CRF/preset, and 4 S x S tiles of two of its frames
    (the I-frame and one inter frame) kept.
    """
    rng = np.random.default_rng(seed)
    s = cfg.size
    total = cfg.n_jpeg + cfg.n_h264 + cfg.n_h265 + cfg.n_band + cfg.n_light
    deg = np.empty((total, s, s, 3), np.uint8)
    cln = np.empty((total, s, s, 3), np.uint8)
    kind = np.empty(total, np.uint8)
    i = 0

    def put(d, c, k):
        nonlocal i
        deg[i], cln[i], kind[i] = d, c, k
        i += 1

    for _ in range(cfg.n_jpeg):
        c = sample_clean(s)
        if rng.random() < 0.1:
            c = smooth_version(c, rng)
        q = round(JPEG_Q[0] + (JPEG_Q[1] - JPEG_Q[0]) * rng.random() ** cfg.q_skew)
        put(jpeg(to_u8(_maybe_noise(c, rng, cfg)), q), to_u8(c), 0)
    for code, n, presets in ((1, cfg.n_h264, X264_PRESETS), (2, cfg.n_h265, X265_PRESETS)):
        codec = "libx264" if code == 1 else "libx265"
        done = 0
        while done < n:
            big = sample_clean(2 * s + 16)
            if rng.random() < cfg.p_smooth_src:
                big = smooth_version(big, rng) if rng.random() < 0.5 else smooth_gradient(2 * s + 16, rng)
            vy, vx = rng.integers(-2, 3, 2)  # integer pan, px/frame
            seq_clean = []
            for t in range(cfg.seq_len):
                y = int(np.clip(8 + vy * (t - cfg.seq_len // 2), 0, 16))
                x = int(np.clip(8 + vx * (t - cfg.seq_len // 2), 0, 16))
                seq_clean.append(big[y : y + 2 * s, x : x + 2 * s])
            seq_in = [to_u8(_maybe_noise(f, rng, cfg)) for f in seq_clean]
            crf = int(rng.integers(CRF[0], CRF[1] + 1))
            dec = video_roundtrip(seq_in, codec, crf, presets[int(rng.integers(len(presets)))])
            for t in (0, int(rng.integers(1, cfg.seq_len))):
                cu = to_u8(seq_clean[t])
                for ty in (0, s):
                    for tx in (0, s):
                        if done < n:
                            put(dec[t][ty : ty + s, tx : tx + s], cu[ty : ty + s, tx : tx + s], code)
                            done += 1
        log(f"pool: {codec} {n} pairs", flush=True)
    for _ in range(cfg.n_band):
        c = smooth_gradient(s, rng) if rng.random() < cfg.p_band_ramp else smooth_version(sample_clean(s), rng, cfg.band_blur)
        c = to_u8(c).astype(np.float32) / 255.0
        d = quantise(c, int(rng.integers(5, 8)))
        if rng.random() < 0.3:
            d = jpeg(to_u8(d), int(rng.integers(30, 80))).astype(np.float32) / 255.0
        put(to_u8(_maybe_noise(d, rng, cfg)) if rng.random() < 0.5 else to_u8(d), to_u8(c), 3)
    for _ in range(cfg.n_light):
        c = sample_clean(s) if rng.random() < 0.7 else smooth_gradient(s, rng)
        if cfg.p_light_smooth and rng.random() < cfg.p_light_smooth:
            c = smooth_version(c, rng, (1.0, 4.0))
        c = to_u8(c)
        put(c if rng.random() < 0.5 else jpeg(c, int(rng.integers(85, 96))), c, 4)
    assert i == total
    return deg, cln, kind


class PairSampler:
    """Random crops of the pool with the same rot90/flip on both sides; offsets mostly on the 8-px grid."""

    def __init__(self, deg: np.ndarray, cln: np.ndarray, patch: int, seed: int, p_grid: float = 0.75):
        self.deg, self.cln, self.patch, self.p_grid = deg, cln, patch, p_grid
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(degraded, clean) N x 3 x P x P float32 in 0..1."""
        rng, p, s = self.rng, self.patch, self.deg.shape[1]
        idx = rng.integers(0, len(self.deg), n)
        d_out = np.empty((n, p, p, 3), np.uint8)
        c_out = np.empty((n, p, p, 3), np.uint8)
        for j, k in enumerate(idx):
            if rng.random() < self.p_grid:
                y, x = 8 * rng.integers(0, (s - p) // 8 + 1, 2)
            else:
                y, x = 2 * rng.integers(0, (s - p) // 2 + 1, 2)
            d, c = self.deg[k, y : y + p, x : x + p], self.cln[k, y : y + p, x : x + p]
            r = int(rng.integers(4))
            d, c = np.rot90(d, r), np.rot90(c, r)
            if rng.random() < 0.5:
                d, c = d[:, ::-1], c[:, ::-1]
            d_out[j], c_out[j] = d, c
        f = lambda a: np.ascontiguousarray(a.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255.0)
        return f(d_out), f(c_out)


# ---- held-out conditions (fixed, seeded by name) -------------------------------------------------

HELDOUT_CONDITIONS: tuple[str, ...] = ("jpeg q10", "jpeg q25", "jpeg q50", "h264 crf35", "h264 crf42",
                                       "h265 crf40", "band 6bit")


def _pad_even(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    return img[: h - h % 2, : w - w % 2]


def degrade_heldout(clean: dict[str, np.ndarray], condition: str, clips: dict[str, list[np.ndarray]] | None = None
                    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(clean refs, degraded) float32 for one condition over the held-out images.

    `clips` maps an image name to the real consecutive frames around it (the demo clip's frames
    with the held-out frame in the middle): video conditions encode that real sequence and score
    the middle (an inter-coded) frame. Stills are encoded as single intra frames.
    Banding: the reference is a blurred copy (sigma 4) of the image, degraded by 6-bit quantisation.
    """
    refs, outs = {}, {}
    kind, val = condition.split()
    for name, img in clean.items():
        img = _pad_even(img)
        if kind == "jpeg":
            refs[name] = to_u8(img).astype(np.float32) / 255
            outs[name] = jpeg(to_u8(img), int(val[1:])).astype(np.float32) / 255
        elif kind in ("h264", "h265"):
            codec = "libx264" if kind == "h264" else "libx265"
            seq = [_pad_even(f) for f in clips[name]] if clips and name in clips else [img]
            mid = len(seq) // 2
            dec = video_roundtrip([to_u8(f) for f in seq], codec, int(val[3:]), "medium" if kind == "h264" else "veryfast")
            refs[name] = to_u8(seq[mid]).astype(np.float32) / 255
            outs[name] = dec[mid].astype(np.float32) / 255
        elif kind == "band":
            ref = to_u8(cv2.GaussianBlur(img, (0, 0), 4.0)).astype(np.float32) / 255
            refs[name], outs[name] = ref, quantise(ref, int(val[0])).astype(np.float32)
        else:
            raise ValueError(condition)
    return refs, outs


def bilateral(img: np.ndarray, d: int, sigma_color: float, sigma_space: float) -> np.ndarray:
    """cv2.bilateralFilter on 8-bit RGB (sigma_color on 0-255)."""
    return cv2.bilateralFilter(to_u8(img), d, sigma_color, sigma_space).astype(np.float32) / 255


def nlm(img: np.ndarray, h: float) -> np.ndarray:
    """Light cv2.fastNlMeansDenoisingColored (5x5 template, 15x15 search), h = hColor."""
    u8 = cv2.cvtColor(to_u8(img), cv2.COLOR_RGB2BGR)
    out = cv2.fastNlMeansDenoisingColored(u8, None, float(h), float(h), 5, 15)
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB).astype(np.float32) / 255


BILATERAL_GRID: tuple[tuple[int, float, float], ...] = ((5, 10, 3), (5, 20, 3), (9, 20, 5), (9, 40, 5))
NLM_GRID: tuple[float, ...] = (3.0, 6.0, 10.0)


def seeded_rng(key: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(key.encode()))
