"""The ordered parallel map the pipeline converts frames with, and the pipeline with several conversion threads."""

from __future__ import annotations

import threading
import time

import av
import pytest

from clips import make_clip
from vdiff_ofx.errors import InputError
from vdiff_ofx.parallel import io_workers, ordered_map
from vdiff_ofx.pipeline import Job, run


def test_results_keep_input_order_while_calls_overlap():
    running, peak, lock = [0], [0], threading.Lock()

    def slow(x: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02 if x % 3 == 0 else 0.001)  # out-of-order finishes
        with lock:
            running[0] -= 1
        return x * x

    assert list(ordered_map(slow, range(30), 4)) == [x * x for x in range(30)]
    assert 2 <= peak[0] <= 4


def test_at_most_twice_the_workers_are_taken_ahead():
    taken = []

    def source():
        for i in range(100):
            taken.append(i)
            yield i

    it = ordered_map(lambda x: x, source(), 3)
    assert next(it) == 0
    assert len(taken) <= 7
    it.close()


def test_errors_surface_at_their_turn_and_in_the_callers_thread():
    def source():
        yield from range(5)
        raise InputError("truncated at frame 5")

    got = []
    with pytest.raises(InputError, match="frame 5"):
        for x in ordered_map(lambda v: v + 1, source(), 3):
            got.append(x)
    assert got == [1, 2, 3, 4, 5]

    def fails_on_3(v: int) -> int:
        if v == 3:
            raise ValueError("bad frame 3")
        return v

    got = []
    with pytest.raises(ValueError, match="bad frame 3"):
        for x in ordered_map(fails_on_3, range(10), 2):
            got.append(x)
    assert got == [0, 1, 2]


def test_one_worker_is_the_plain_loop_and_auto_follows_the_cores(monkeypatch):
    assert list(ordered_map(str, range(3), 1)) == ["0", "1", "2"]
    assert io_workers(3) == 3
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert io_workers() == 2
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert io_workers() == 4


def _decoded_planes(path):
    with av.open(str(path)) as c:
        return [bytes(p) for f in c.decode(video=0) for p in f.planes]


@pytest.mark.parametrize("codec,ext", [("prores", ".mov"), ("h264", ".mp4")])
def test_pipeline_output_is_the_same_with_several_conversion_threads(kit, tmp_path, codec, ext):
    src = make_clip(tmp_path / "src.mp4", n=14, width=128, height=72)
    one, four = tmp_path / f"one{ext}", tmp_path / f"four{ext}"
    run(Job(str(src), str(one), model="cnn", codec=codec, io_threads=1))
    run(Job(str(src), str(four), model="cnn", codec=codec, io_threads=4))
    a, b = _decoded_planes(one), _decoded_planes(four)
    assert len(a) == len(b) and len(a) >= 14
    assert a == b
