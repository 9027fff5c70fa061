"""Clean frame windows for the temporal denoiser: real clip windows and synthetic moving sequences.

Why: a temporal model must learn when to average across frames (static areas: flicker-free) and when
not to (moving areas: no ghosting). Real clips (bikes, carphone) give natural motion but little
volume; synthetic sequences give volume with *known* motion: a textured background that is either
static or moves (translation + small rotation/zoom), with 0-3 textured sprites moving on their own,
so every window mixes static and moving regions. No torch here (tests and benchmarks import it).

Windows are T frames, oldest first, the frame to restore in the middle (the manifest's contract).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vdiff_ofx.train import data

# Training clips are located like the single-frame model's ($VDIFF_TRAIN_DATA, not VDIFF_DATA_DIR).
TRAIN_DATA_ENV = data.TRAIN_DATA_ENV
TRAIN_DATA_HELP = data.DATA_DIR_HELP
find_train_data = data.find_data_dir


def clip_uint8(path: Path, start: int = 0, count: int | None = None, size: tuple[int, int] | None = None) -> np.ndarray:
    """Consecutive frames [start, start+count) of a clip as F x H x W x 3 uint8 RGB (optionally resized to size=(w, h))."""
    import av

    out = []
    with av.open(str(path)) as c:
        for i, fr in enumerate(c.decode(video=0)):
            if i < start:
                continue
            if count is not None and i >= start + count:
                break
            rgb = fr.to_ndarray(format="rgb24")
            if size is not None:
                rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            out.append(rgb)
    return np.stack(out)


# ----------------------------------------------------------------------------------------------- synthetic motion


def _affine(cx: float, cy: float, angle_deg: float, zoom: float, tx: float, ty: float) -> np.ndarray:
    """2x3 map output->source: rotate/zoom about (cx, cy) then shift by (tx, ty) (source coordinates)."""
    m = cv2.getRotationMatrix2D((cx, cy), angle_deg, zoom)
    m[:, 2] += (tx, ty)
    return m


def _sprite_mask(rng: np.random.Generator, size: int) -> np.ndarray:
    """Soft-edged random blob (ellipse or polygon) on a size x size canvas, float32 0..1."""
    m = np.zeros((size * 2, size * 2), np.uint8)
    c = size
    if rng.random() < 0.5:
        axes = (int(size * rng.uniform(0.4, 0.95)), int(size * rng.uniform(0.4, 0.95)))
        cv2.ellipse(m, (c, c), axes, float(rng.uniform(0, 180)), 0, 360, 255, -1, cv2.LINE_AA)
    else:
        k = int(rng.integers(3, 8))
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        rad = size * rng.uniform(0.5, 0.95, k)
        pts = np.stack([c + rad * np.cos(ang), c + rad * np.sin(ang)], 1).astype(np.int32)
        cv2.fillPoly(m, [pts], 255, cv2.LINE_AA)
    return cv2.resize(m, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def synthetic_window(rng: np.random.Generator, textures: list[np.ndarray], frames: int, patch: int,
                     max_speed: float = 6.0, p_static_bg: float = 0.5, max_sprites: int = 3) -> np.ndarray:
    """frames x patch x patch x 3 float32: background static (p_static_bg) or in global motion, plus sprites.

    Motion is per frame, linear in time and centred on the middle frame (which is the un-warped view).
    """
    def pick() -> np.ndarray:
        return textures[int(rng.integers(len(textures)))]

    bg = pick()
    h, w = bg.shape[:2]
    ox, oy = rng.uniform(0, max(w - patch, 1)), rng.uniform(0, max(h - patch, 1))
    static = rng.random() < p_static_bg
    vx, vy = (0.0, 0.0) if static else tuple(rng.uniform(-max_speed, max_speed, 2) * rng.random())
    rot = 0.0 if static else rng.uniform(-1.5, 1.5) * (rng.random() < 0.4)
    zoom = 0.0 if static else rng.uniform(-0.02, 0.02) * (rng.random() < 0.3)
    sprites = []
    for _ in range(int(rng.integers(0 if not static else 1, max_sprites + 1))):
        size = int(rng.integers(patch // 6, patch // 2 + 1))
        tex = pick()
        th, tw = tex.shape[:2]
        sprites.append({
            "mask": _sprite_mask(rng, size), "tex": tex, "size": size,
            "tox": rng.uniform(0, max(tw - size, 1)), "toy": rng.uniform(0, max(th - size, 1)),
            "x": rng.uniform(-size / 2, patch - size / 2), "y": rng.uniform(-size / 2, patch - size / 2),
            "vx": rng.uniform(-max_speed, max_speed) * 1.5, "vy": rng.uniform(-max_speed, max_speed) * 1.5,
            "rot": rng.uniform(-4, 4) * (rng.random() < 0.5),
        })
    out = np.empty((frames, patch, patch, 3), np.float32)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    for i in range(frames):
        t = i - frames // 2
        m = _affine(patch / 2, patch / 2, rot * t, 1.0 + zoom * t, ox + vx * t, oy + vy * t)
        img = cv2.warpAffine(bg, m, (patch, patch), flags=flags, borderMode=cv2.BORDER_REFLECT)
        for s in sprites:
            sz = s["size"]
            # sprite pixel (u, v) -> texture (tox + u, toy + v); placed at (x + vx t, y + vy t) in the frame, rotating
            ms = _affine(s["x"] + s["vx"] * t + sz / 2, s["y"] + s["vy"] * t + sz / 2, s["rot"] * t, 1.0,
                         -(s["x"] + s["vx"] * t), -(s["y"] + s["vy"] * t))
            tex_m = ms.copy()
            tex_m[:, 2] += (s["tox"], s["toy"])
            col = cv2.warpAffine(s["tex"], tex_m, (patch, patch), flags=flags, borderMode=cv2.BORDER_REFLECT)
            alpha = cv2.warpAffine(s["mask"], ms, (patch, patch), flags=flags, borderMode=cv2.BORDER_CONSTANT)
            img = img + alpha[..., None] * (col - img)
        out[i] = img
    return np.clip(out, 0.0, 1.0)


def clip_window(rng: np.random.Generator, clip: np.ndarray, frames: int, patch: int) -> np.ndarray:
    """frames x patch x patch x 3 float32 from consecutive clip frames (temporal stride 1-2, maybe reversed),
    one crop for the whole window, rescaled 0.5-1x."""
    n, h, w = clip.shape[:3]
    stride = 1 if rng.random() < 0.7 else 2
    span = (frames - 1) * stride + 1
    t0 = int(rng.integers(0, n - span + 1))
    idx = list(range(t0, t0 + span, stride))
    if rng.random() < 0.5:
        idx = idx[::-1]
    scale = rng.uniform(0.5, 1.0)
    crop = min(round(patch / scale), h, w)
    y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
    out = np.empty((frames, patch, patch, 3), np.float32)
    for i, k in enumerate(idx):
        tile = clip[k, y:y + crop, x:x + crop]
        if crop != patch:
            tile = cv2.resize(tile, (patch, patch), interpolation=cv2.INTER_AREA if crop > patch else cv2.INTER_CUBIC)
        out[i] = tile.astype(np.float32) / 255.0
    return out


def augment(win: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Same rot90/flip for every frame of the window."""
    win = np.rot90(win, int(rng.integers(4)), axes=(1, 2))
    if rng.random() < 0.5:
        win = win[:, :, ::-1]
    return win


class WindowSampler:
    """Seeded batches of clean windows: N x T x 3 x P x P float32, mixing clip and synthetic windows."""

    def __init__(self, clips: list[np.ndarray], textures: list[np.ndarray], frames: int, patch: int, seed: int,
                 p_clip: float = 0.35):
        self.clips, self.textures = clips, textures
        self.frames, self.patch, self.p_clip = frames, patch, p_clip
        self.rng = np.random.default_rng(seed)

    def one(self) -> np.ndarray:
        rng = self.rng
        if self.clips and rng.random() < self.p_clip:
            clip = self.clips[int(rng.integers(len(self.clips)))]
            win = clip_window(rng, clip, self.frames, self.patch)
        else:
            win = synthetic_window(rng, self.textures, self.frames, self.patch)
        return np.ascontiguousarray(augment(win, rng).transpose(0, 3, 1, 2))

    def batch(self, n: int) -> np.ndarray:
        return np.ascontiguousarray(np.stack([self.one() for _ in range(n)]), dtype=np.float32)


def training_content(data_dir: Path, seed: int, n_leaves: int = 60, leaves_size: int = 320,
                     photos_root: Path | None = None, nature_root: Path | None = None
                     ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(training clips as uint8 frame stacks, textures for synthetic sequences). Never the held-out clip/photos.
    The wallpaper and nature photos join the textures only with their roots (data.find_photos_root, data.nature_dir)."""
    clips = [clip_uint8(data_dir / name) for name in data.TRAIN_CLIPS]
    rng = np.random.default_rng(seed + 11)
    textures = [data.dead_leaves(leaves_size, rng) for _ in range(n_leaves)]
    try:
        textures += list(data.skimage_images(data.TRAIN_SKIMAGE).values())
    except ImportError:
        pass
    textures += [c[i].astype(np.float32) / 255.0 for c in clips for i in range(0, len(c), 25)]
    textures += list(data.wallpaper_photos(photos_root, data.TRAIN_WALLPAPERS).values())
    textures += list(data.nature_photos(nature_root).values())
    return clips, textures


# ---------------------------------------------------------------------------------------- held-out eval sequences


def heldout_synthetic(frames: int = 24, size: tuple[int, int] = (384, 256), seed: int = 20240,
                      static_only: bool = False, background: np.ndarray | None = None,
                      texture: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Held-out evaluation sequence: a static background (held-out astronaut photo, else unseen dead leaves)
    with a textured disc (held-out coffee photo) moving across it (6 px/frame, bobbing, spinning); no object when static_only.
    ``background`` / ``texture``: other images for the same motion (tuning on training content).

    Returns (F x H x W x 3 float32 clean frames, F x H x W bool mask of the moving object, dilated by 4 px).
    """
    w, h = size
    rng = np.random.default_rng(seed)
    if background is not None and texture is not None:
        bg_src, obj_src = background, texture
    else:
        try:
            imgs = data.skimage_images(data.HELDOUT_SKIMAGE)
            bg_src, obj_src = imgs["astronaut"], imgs["coffee"]
        except ImportError:
            bg_src, obj_src = data.dead_leaves(512, rng), data.dead_leaves(256, rng)
    bg = cv2.resize(bg_src, (w, h), interpolation=cv2.INTER_AREA)
    r = min(w, h) // 5
    tex = cv2.resize(obj_src, (2 * r, 2 * r), interpolation=cv2.INTER_AREA)
    disc = np.zeros((8 * r, 8 * r), np.uint8)
    cv2.circle(disc, (4 * r, 4 * r), 4 * r - 2, 255, -1, cv2.LINE_AA)
    disc = cv2.resize(disc, (2 * r, 2 * r), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    out = np.empty((frames, h, w, 3), np.float32)
    moving = np.zeros((frames, h, w), bool)
    for i in range(frames):
        img = bg.copy()
        if not static_only:
            # sub-pixel path: left to right with a vertical bob, and a slow spin of the texture
            cx = r + 8 + 6.0 * i
            cy = h / 2 + 0.2 * h * np.sin(i / 4.0)
            m = cv2.getRotationMatrix2D((r, r), 3.0 * i, 1.0)
            m[:, 2] += (cx - r, cy - r)
            col = cv2.warpAffine(tex, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            a = cv2.warpAffine(disc, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            img = img + a[..., None] * (col - img)
            moving[i] = cv2.dilate((a > 0).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        out[i] = np.clip(img, 0, 1)
    return out, moving


def heldout_clip(data_dir: Path, start: int = 30, frames: int = 24, size: tuple[int, int] = (640, 360)) -> np.ndarray:
    """A stretch of the held-out demo clip (bigbuckbunny.mp4) at reduced size, F x H x W x 3 float32."""
    return clip_uint8(data_dir / data.HELDOUT_CLIP, start, frames, size).astype(np.float32) / 255.0


def add_noise_np(frames: np.ndarray, sigma255: float, seed: int) -> np.ndarray:
    """Seeded AWGN, independent per frame, clipped to 0..1 (what evaluation feeds every method)."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(frames.shape, dtype=np.float32) * np.float32(sigma255 / 255.0)
    return np.clip(frames + noise, 0.0, 1.0).astype(np.float32)
