"""The pair-row helpers against brute force: the ΔMOS histogram counts exactly what
`collections.Counter` counts, on its per-cell grid (few distinct MOS) and by value (many), and a
pair's band is the band of its ΔMOS value in `bin_values`; pair ids are the hex a format string
writes; a chosen subset keeps the chosen valid pairs in chunk order."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from benchmark.pairs.draw import Chosen, kept
from benchmark.pairs.rows import SplitRows, _Histogram, bin_values, hex_ids


@pytest.mark.parametrize("levels", [1, 7, 256, 257, 5000])
def test_histogram_counts_what_a_counter_counts(levels: int) -> None:
    rng = np.random.default_rng(levels)
    q = rng.choice(rng.integers(0, 4 * 10**9, levels), size=3000).astype(np.int64)
    hist = _Histogram(q)
    assert (hist._grid is not None) == (np.unique(q).size <= _Histogram.GRID_LEVELS)
    want: Counter[int] = Counter()
    for _ in range(5):
        a = rng.integers(0, q.size, 4000)
        b = rng.integers(0, q.size, 4000)
        hist.add_pairs(a, b)
        want.update(np.abs(q[a] - q[b]).tolist())
    values, counts = hist.counts()
    assert values.tolist() == sorted(want)
    assert counts.tolist() == [want[v] for v in sorted(want)]
    merged = _Histogram()  # as a split merges its relations' histograms
    merged.extend(hist)
    merged.extend(hist)
    values2, counts2 = merged.counts()
    assert values2.tolist() == values.tolist() and counts2.tolist() == (2 * counts).tolist()


def test_an_empty_histogram_has_no_values() -> None:
    values, counts = _Histogram(np.array([5, 5, 9])).counts()
    assert values.size == 0 and counts.size == 0


@pytest.mark.parametrize("seed", range(40))
def test_bands_are_the_bands_of_the_values(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = np.unique(rng.integers(0, 4 * 10**9, int(rng.integers(1, 80))))
    counts = rng.integers(1, 1000, values.size)
    edges, band = bin_values(values, counts, int(rng.integers(1, 40)))
    rows = SplitRows.__new__(SplitRows)  # only the band lookup's state
    rows._values, rows._band = values, band
    rows._band_starts = values[np.flatnonzero(np.diff(band)) + 1]
    dq = rng.choice(values, 5000)
    got = rows._bands(dq)
    assert got.dtype == np.int16
    assert got.tolist() == [int(band[values.tolist().index(v)]) for v in dq.tolist()]


def test_pair_ids_are_lowercase_hex() -> None:
    pid = np.array([0, 1, 0xDEADBEEF, 2**64 - 1, 0x0123456789ABCDEF], dtype=np.uint64)
    assert hex_ids(pid).to_pylist() == [f"{int(p):016x}" for p in pid.tolist()]
    assert hex_ids(np.empty(0, dtype=np.uint64)).to_pylist() == []


def test_chosen_keeps_the_chosen_valid_pairs_in_chunk_order() -> None:
    a, b = np.arange(10), np.arange(10, 20)
    valid = np.array([1, 0, 1, 1, 0, 1, 1, 0, 0, 1], dtype=bool)  # valid: 0 2 3 5 6 9
    got_a, got_b = kept(a, b, Chosen(valid, np.array([4, 0, 2])))  # picks in draw order
    assert got_a.tolist() == [0, 3, 6] and got_b.tolist() == [10, 13, 16]
    assert kept(a, b, valid)[0].tolist() == [0, 2, 3, 5, 6, 9]
    assert kept(a, b, None)[0] is a
