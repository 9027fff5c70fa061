"""The OpenCV layout helpers give exactly numpy's result (bit for bit), on every path they take."""

from __future__ import annotations

import numpy as np
import pytest

from vdiff_ofx.engine import planes


def _numpy_view(x: np.ndarray, t: int) -> np.ndarray:
    if t & 1:
        x = x[..., ::-1]
    if t & 2:
        x = x[..., ::-1, :]
    if t & 4:
        x = np.swapaxes(x, -1, -2)
    return x


@pytest.mark.parametrize("t", range(8))
def test_flip_matches_numpy_and_unflip_inverts_it(t):
    x = np.random.default_rng(t).random((2, 3, 37, 53), dtype=np.float32)
    view = planes.flip(x, t)
    assert view.flags.c_contiguous and np.array_equal(view, _numpy_view(x, t))
    assert np.array_equal(planes.unflip(view, t), x)
    up = np.random.default_rng(9).random(view.shape[:2] + (view.shape[2] * 2, view.shape[3] * 2), dtype=np.float32)
    assert planes.unflip(up, t).shape == (2, 3, 74, 106)
    assert np.array_equal(planes.flip(planes.unflip(up, t), t), up)


def test_flip_of_float64_takes_the_numpy_path():
    x = np.random.default_rng(0).random((1, 2, 5, 7))
    assert np.array_equal(planes.flip(x, 7), _numpy_view(x, 7))


def test_to_planes_stacks_a_window_oldest_first_and_drops_alpha():
    rng = np.random.default_rng(1)
    frames = [rng.random((21, 34, 3), dtype=np.float32) for _ in range(5)]
    got = planes.to_planes(frames)
    assert got.shape == (15, 21, 34)
    assert np.array_equal(got, np.concatenate([np.transpose(f, (2, 0, 1)) for f in frames]))
    rgba = rng.random((21, 34, 4), dtype=np.float32)
    assert np.array_equal(planes.to_planes([rgba]), np.transpose(rgba[..., :3], (2, 0, 1)))
    strided = rng.random((21, 68, 3), dtype=np.float32)[:, ::2]
    assert np.array_equal(planes.to_planes([strided]), np.transpose(strided, (2, 0, 1)))


def test_to_pixels_of_a_cropped_output():
    y = np.random.default_rng(2).random((3, 24, 40), dtype=np.float32)[:, :21, :35]
    out = planes.to_pixels(y)
    assert out.flags.c_contiguous and np.array_equal(out, np.transpose(y, (1, 2, 0)))
