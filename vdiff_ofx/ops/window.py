"""Temporal windows: each frame with its neighbours, edge frames replicated at clip ends and at shot cuts,
so a temporal model never blends two different shots. Holds only 2*radius+1 frames at a time."""

from __future__ import annotations

from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def windows(items: Iterable[tuple[int, T]], size: int, cuts: frozenset[int] | set[int] = frozenset()
            ) -> Iterator[tuple[int, T, list[T]]]:
    """Yield (index, item, window) for each (index, item); ``cuts`` holds indices that start a new shot."""
    r = size // 2
    buf: list[tuple[int, T]] = []  # recent items of the current shot
    base = 0  # shot position of buf[0]
    nxt = 0  # shot position of the next item to emit

    def emit(final: bool) -> Iterator[tuple[int, T, list[T]]]:
        nonlocal base, nxt
        n = base + len(buf)
        while nxt < n and (final or nxt + r < n):
            win = [buf[min(max(nxt + k, 0), n - 1) - base][1] for k in range(-r, r + 1)]
            idx, item = buf[nxt - base]
            yield idx, item, win
            nxt += 1
        drop = max(0, nxt - r - base)
        del buf[:drop]
        base += drop

    for idx, item in items:
        if idx in cuts and buf:
            yield from emit(final=True)
            buf.clear()
            base = nxt = 0
        buf.append((idx, item))
        yield from emit(final=False)
    yield from emit(final=True)
