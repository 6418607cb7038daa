"""Run an iterator a few items ahead of its consumer, in one background thread.

The scoring loop uses it so that the next batches are read and padded while the model runs the
current one. A thread, not DataLoader worker processes: workers cost 0.2–0.4 s to start and, on a
2-core machine, made scoring twice as slow; reading the packed store (a memcpy), libsndfile and
soxr release the GIL, and so does the model's forward pass, so one thread overlaps them with no
process to start.

Guarantees the loop relies on:
- items come out in the order the iterator makes them, each once;
- at most `depth` finished items wait (plus the one being made), so memory stays bounded;
- an exception raised by the iterator is re-raised in the consumer, the same object (same type,
  same one-line message), once the items before it have been consumed;
- when the consumer stops early (the model raised, or it was interrupted), the producer is told to
  stop and joined before the consumer's exception propagates, so no thread outlives the loop.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterable
from typing import TypeVar

T = TypeVar("T")

_POLL_S = 0.05
"""How often a producer blocked on a full queue checks whether the consumer has gone."""


class _Done:
    """The iterator is exhausted."""


class _Failed:
    """The iterator raised `exc`."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetched(
    items: Iterable[T], depth: int, *, name: str = "mosrm-prefetch"
) -> Generator[T, None, None]:
    """Yield the items of `items`, made up to `depth` ahead in a background thread (0: inline)."""
    if depth < 0:
        raise ValueError(f"prefetch depth must be >= 0, got {depth}")
    if depth == 0:
        yield from items
        return
    slots: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            offer(_Failed(exc))
            return
        offer(_Done())

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if isinstance(item, _Done):
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
