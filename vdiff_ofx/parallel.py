"""An ordered, bounded parallel map: the pipeline's colour conversions on several cores, frames kept in order.

Why: on a GPU a 1080p frame is enhanced in ~20 ms, while turning it from YUV into float RGB and back costs
50-80 ms of numpy per frame, one frame at a time in the decode and encode threads. numpy releases the GIL in
those conversions, so a few worker threads run them side by side.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

A = TypeVar("A")
B = TypeVar("B")


def io_workers(requested: int = 0) -> int:
    """Conversion threads per stage: ``requested`` if > 0, else a quarter of the cores, at least 2 and at most 8.
    Two measured level or better than one even on 2 cores busy with CPU inference (benchmarks/bench_pipeline.py)."""
    if requested > 0:
        return requested
    return max(2, min(8, (os.cpu_count() or 2) // 4))


def ordered_map(fn: Callable[[A], B], items: Iterable[A], workers: int, name: str = "vdiff-io") -> Iterator[B]:
    """``map(fn, items)`` with up to ``workers`` calls in flight, results in input order.

    ``items`` is iterated in the caller's thread, so its exceptions (a corrupt frame, a truncated file) surface
    exactly where the plain loop would raise them; an exception in ``fn`` is raised at that item's turn.
    At most 2 x ``workers`` results wait at a time, so memory stays bounded.
    """
    if workers <= 1:
        yield from map(fn, items)
        return
    pending: deque[Future[B]] = deque()
    pool = ThreadPoolExecutor(workers, thread_name_prefix=name)
    try:
        source = iter(items)
        while True:
            try:
                item = next(source)
            except StopIteration:
                break
            except Exception:  # the items before it first, as the plain loop would have given them
                while pending:
                    yield pending.popleft().result()
                raise
            pending.append(pool.submit(fn, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for f in pending:
            f.cancel()
        pool.shutdown(wait=True)
