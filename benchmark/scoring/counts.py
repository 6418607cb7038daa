"""How many units of a scoring run came from the cache and how many the model computed, told to
whoever opened a `count_cache_use()` block (the pipeline, for the run record): a cached rerun's
throughput measures the cache, not the model.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class CacheCounts:
    """Units found in the score cache vs computed by the model, summed over a `count_cache_use`
    block: clips (scalar and implicit models) and unordered pairs (pairwise judges)."""

    clips_from_cache: int = 0
    clips_computed: int = 0
    pairs_from_cache: int = 0
    pairs_computed: int = 0


_COUNTS: ContextVar[CacheCounts | None] = ContextVar("mosrm_cache_counts", default=None)


@contextmanager
def count_cache_use() -> Iterator[CacheCounts]:
    """Count every `score_clips`/`judge_pairs` call inside the block (nested blocks: the inner)."""
    counts = CacheCounts()
    token = _COUNTS.set(counts)
    try:
        yield counts
    finally:
        _COUNTS.reset(token)


def _count(unit: str, total: int, computed: int) -> None:
    counts = _COUNTS.get()
    if counts is None:
        return
    if unit == "clip":
        counts.clips_from_cache += total - computed
        counts.clips_computed += computed
    else:
        counts.pairs_from_cache += total - computed
        counts.pairs_computed += computed


# ---------------------------------------------------------------------------------------------
# decoding in a DataLoader
