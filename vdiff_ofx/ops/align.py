"""Motion compensation for temporal windows: warp each neighbour onto the frame being restored.

Why: a temporal denoiser averages what lies at the same pixel in neighbouring frames. Where things move,
that is a different part of the scene and the average ghosts (models/denoise-temporal.md, moving disc).
Warping the neighbours along optical flow first puts the same scene point under the same pixel, so the
model can average across motion too. Where the flow is wrong (occlusions, new content, flow failure on
noise) the warped neighbour disagrees with the centre by more than the noise explains; there the
neighbour is replaced by the centre frame itself, the same input the model sees at clip ends and cuts,
so it falls back to spatial denoising instead of blending two objects.

Flow: OpenCV's DIS (medium preset) on 8-bit grey at full resolution up to a 540-px short side, area-downscaled
above that and upsampled (on the held-out moving disc full resolution warped with 10 vs 17/255 error against
half resolution); frames are float RGB, any bit depth.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import cv2
import numpy as np

MODES = ("none", "flow")
MIN_FLOW_SIDE = 16


def _grey(rgb: np.ndarray, scale: float, blur: float = 0.0) -> np.ndarray:
    g = cv2.cvtColor(np.clip(rgb[..., :3], 0.0, 1.0).astype(np.float32, copy=False), cv2.COLOR_RGB2GRAY)
    if scale != 1.0:
        g = cv2.resize(g, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    if blur > 0:
        g = cv2.GaussianBlur(g, (0, 0), blur)
    return (g * 255.0 + 0.5).astype(np.uint8)


class FlowAligner:
    """``align(frames, sigma255)`` -> the window with every neighbour warped onto the middle frame.

    ``scale``: resolution the flow is computed at (1 = full), lowered so the flow image's short side stays
    <= ``max_side`` (1080p: half; cost and noise both fall, big frames have big motion anyway). ``lo``/``hi``:
    where a warped neighbour's local mean absolute difference from the centre, in units of the noise it should
    have, starts / ends being distrusted (1.13 sigma is what two aligned noisy copies differ by). ``blur``: Gaussian
    sigma (px) on the grey images the flow is computed from; 0.8 cut the warp error of the held-out moving disc
    from 14.3 to 13.0/255 at noise sigma 50 (11.6 to 10.9 at 15), and larger blurs lost detail.
    """

    def __init__(self, scale: float = 1.0, max_side: int = 540, lo: float = 1.6, hi: float = 2.6,
                 floor: float = 2.0 / 255, box: int = 9, preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
                 blur: float = 0.8) -> None:
        self.scale, self.max_side, self.lo, self.hi, self.floor, self.box = scale, max_side, lo, hi, floor, box
        self.blur = blur
        self.preset = preset
        self._dis = threading.local()  # a DIS object per thread: the neighbours are warped in parallel
        self._pool: ThreadPoolExecutor | None = None
        self._grid_cache: tuple[np.ndarray, np.ndarray] | None = None
        self._mean = {3: np.full((1, 3), 1 / 3, np.float32), 4: np.array([[1 / 3, 1 / 3, 1 / 3, 0]], np.float32)}

    @property
    def dis(self) -> cv2.DISOpticalFlow:
        if getattr(self._dis, "obj", None) is None:
            self._dis.obj = cv2.DISOpticalFlow_create(self.preset)
        return self._dis.obj

    def flow(self, centre: np.ndarray, other: np.ndarray) -> np.ndarray:
        """Full-resolution H x W x 2 flow: centre pixel (x, y) is at (x, y) + flow in ``other``."""
        h, w = centre.shape[:2]
        scale = min(self.scale, self.max_side / min(h, w))
        a, b = _grey(centre, scale, self.blur), _grey(other, scale, self.blur)
        gh, gw = a.shape
        if max(gh, gw) < MIN_FLOW_SIDE:  # DIS refuses tiny images: edge-pad, then crop the flow back
            pad = dict(top=0, bottom=max(0, MIN_FLOW_SIDE - gh), left=0, right=max(0, MIN_FLOW_SIDE - gw),
                       borderType=cv2.BORDER_REPLICATE)
            a, b = cv2.copyMakeBorder(a, **pad), cv2.copyMakeBorder(b, **pad)
        f = self.dis.calc(a, b, None)[:gh, :gw]
        if scale != 1.0:
            f = cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR) * np.float32(1.0 / scale)
        return f

    def _grid(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        if self._grid_cache is None or self._grid_cache[0].shape != (h, w):
            self._grid_cache = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        return self._grid_cache

    def _distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Local mean absolute RGB difference (box-filtered), single channel."""
        d = cv2.absdiff(a, b)
        d = cv2.transform(d, self._mean[d.shape[2]])
        return cv2.blur(d, (self.box, self.box))

    def warp(self, centre: np.ndarray, other: np.ndarray, sigma255: float) -> np.ndarray:
        """``other`` resampled onto ``centre`` along the flow, with distrusted pixels replaced by ``centre``'s.

        Where ``other`` already matches the centre unwarped (static areas) it is kept as it is: the flow there is
        mostly noise, and resampling would blur the neighbour's noise and mislead the model about its level.
        """
        return self.warp_with_doubt(centre, other, sigma255)[0]

    def warp_with_doubt(self, centre: np.ndarray, other: np.ndarray, sigma255: float) -> tuple[np.ndarray, np.ndarray]:
        """``warp``, and the H x W doubt map it used: 0 where the neighbour is trusted, 1 where it became the centre."""
        centre = np.ascontiguousarray(centre, dtype=np.float32)
        other = np.ascontiguousarray(other, dtype=np.float32)
        h, w = centre.shape[:2]
        f = self.flow(centre, other)
        gx, gy = self._grid(h, w)
        warped = cv2.remap(other, gx + f[..., 0], gy + f[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        d_still, d_warp = self._distance(other, centre), self._distance(warped, centre)
        s = max(sigma255, 0.0) / 255.0
        # resampling averages noise, so a warped noisy neighbour always looks a little closer: demand a margin
        use = d_warp < d_still - (0.35 * s + 0.5 * self.floor)
        best = other.copy()
        cv2.copyTo(warped, use.astype(np.uint8), best)
        diff = np.where(use, d_warp, d_still)
        lo, hi = self.lo * s + self.floor, self.hi * s + 3 * self.floor
        doubt = np.clip((diff - lo) * (1.0 / (hi - lo)), 0.0, 1.0).astype(np.float32)
        # best - doubt * (best - centre): exactly ``best`` where trusted, exactly the centre where not
        return best - doubt[..., None] * (best - centre), doubt

    def __call__(self, frames: Sequence[np.ndarray], sigma255: float) -> list[np.ndarray]:
        return self.align(frames, sigma255)[0]

    def align(self, frames: Sequence[np.ndarray], sigma255: float) -> tuple[list[np.ndarray], np.ndarray]:
        """The aligned window, and per pixel how many neighbours it really has (0..len-1, float32 H x W).

        Why the count: where it is low the window holds little besides the centre frame (new content, occlusions,
        clip ends), so a temporal model there is only as good as its spatial part; the engine's spatial partner
        (Enhancer ``spatial``) takes a larger share there.
        """
        mid = len(frames) // 2
        centre = frames[mid]
        # a neighbour that is the centre (or a frame already listed: edge-replicated windows) adds nothing
        first: dict[int, int] = {id(centre): mid}
        for i, f in enumerate(frames):
            first.setdefault(id(f), i)
        todo = [i for i in first.values() if i != mid]
        out = list(frames)
        support = np.zeros(centre.shape[:2], np.float32)
        if len(todo) > 1 and centre.size >= 1 << 16:  # big frames: OpenCV releases the GIL, so threads overlap
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="vdiff-align")
            done = self._pool.map(lambda i: self.warp_with_doubt(centre, frames[i], sigma255), todo)
        else:
            done = (self.warp_with_doubt(centre, frames[i], sigma255) for i in todo)
        for i, (warped, doubt) in zip(todo, done):
            out[i] = warped
            support += 1.0 - doubt
        for i, f in enumerate(frames):  # the copies of a replicated frame get its warp (the centre's stay the centre)
            out[i] = out[first[id(f)]]
        return out, support
