"""ΔMOS bins from the candidate pool (issue 23, item 2): exact against brute-force enumeration of
every valid pair, and fixed when the sample is redrawn."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from benchmark.data.tables import CLIP_SCHEMA, from_rows
from benchmark.pairs.build import build_pairs
from benchmark.pairs.pools import NANO, PoolRanks, _Clips, _valid, pool_band_starts


def _clips(rng: np.random.Generator, n: int) -> _Clips:
    q = (rng.integers(2, 10, n) * NANO // 2).astype(np.int64)
    return _Clips(
        ids=np.array([f"c{i:03d}" for i in range(n)], dtype=object),
        mos=q / NANO,
        q=q,
        subset=rng.integers(0, 2, n),
        subset_names=np.array(["x", "y"], dtype=object),
        system=rng.integers(-1, 4, n),
        system_names=np.array([f"s{i}" for i in range(4)], dtype=object),
        content=rng.integers(-1, 5, n),
        content_names=np.array([f"t{i}" for i in range(5)], dtype=object),
        noise=None,
    )


def _pool(c: _Clips, relations: list[str], md: int) -> np.ndarray:
    """Every valid pair's ΔMOS, enumerated."""
    out = []
    n = c.q.size
    for rel in relations:
        for i, j in itertools.combinations(range(n), 2):
            if c.subset[i] != c.subset[j]:
                continue
            if rel == "same_content" and not (c.content[i] >= 0 and c.content[i] == c.content[j]):
                continue
            if rel == "same_system" and not (c.system[i] >= 0 and c.system[i] == c.system[j]):
                continue
            if _valid(c, rel, np.array([i]), np.array([j]), md)[0]:
                out.append(abs(int(c.q[i]) - int(c.q[j])))
    return np.sort(np.array(out, dtype=np.int64))


@pytest.mark.parametrize("seed", range(40))
def test_pool_ranks_and_band_starts_are_the_enumerated_pools(seed: int) -> None:
    rng = np.random.default_rng(seed)
    c = _clips(rng, int(rng.integers(5, 40)))
    names = ["same_content", "same_system", "cross"]
    relations = (
        ["any"]
        if seed % 2 == 0
        else [str(r) for r in rng.choice(names, int(rng.integers(1, 4)), replace=False)]
    )
    md = int(rng.choice([0, NANO // 2]))
    d = _pool(c, relations, md)
    ranks = PoolRanks(c, relations, md)
    assert ranks.total == d.size
    for t in (md, md + 1, NANO, 2 * NANO, 3 * NANO, 10 * NANO):
        assert ranks.at_most(t) == int((d <= t).sum())
    bins = int(rng.integers(1, 7))
    out = pool_band_starts(c, relations, md, bins)
    if d.size == 0:
        assert out is None
        return
    assert out is not None
    starts, smallest, largest = out
    values = np.unique(d)
    band = np.array([(d < v).sum() for v in values]) * bins // d.size  # the rank rule, by hand
    want = [int(values[i]) for i in range(1, values.size) if band[i] != band[i - 1]]
    assert starts == want and (smallest, largest) == (int(d.min()), int(d.max()))


def _listening_test(seed: int) -> object:
    rng = np.random.default_rng(seed)
    rows = []
    for s, c in itertools.product(range(6), range(10)):
        votes = np.clip(np.rint(3 + rng.normal(0, 0.8) + rng.normal(0, 0.8, 6)), 1, 5)
        rows.append(
            {
                "clip_id": f"s{s}c{c}", "corpus": "x", "split": "test", "audio_path": "a.wav",
                "mos": float(votes.mean()), "system_id": f"s{s}", "content_id": f"c{c}",
            }
        )  # fmt: skip
    return from_rows(rows, CLIP_SCHEMA)


def test_redrawing_the_sample_never_moves_an_edge() -> None:
    """Three seeds, three different samples of 150 pairs from the same listening test: the same
    bin edges (the pool's), recorded as such; the sampled pairs' bins follow them."""
    clips = _listening_test(1)
    rels = ["same_content", "same_system", "cross"]
    counts = {"test": dict.fromkeys(rels, 50)}
    metas, tables = [], []
    for seed in (1, 2, 3):
        table, meta = build_pairs(clips, task="t", relations=rels, counts=counts, seed=seed)["test"]
        metas.append(meta)
        tables.append(table)
    assert tables[0].column("pair_id") != tables[1].column("pair_id")
    assert metas[0]["bin_edges"] == metas[1]["bin_edges"] == metas[2]["bin_edges"]
    assert metas[0]["bin_edges_from"] == "candidate pool"
    edges = metas[0]["bin_edges"]
    for table, meta in zip(tables, metas, strict=True):
        dq = table.column("delta_mos").to_numpy()
        band = table.column("delta_bin").to_numpy()
        want = np.searchsorted(np.array(edges[1:-1]), dq + 1e-12, side="right")
        assert (band == want).all()
        assert sum(meta["bin_counts"]) == table.num_rows
        assert edges[0] <= dq.min() and dq.max() <= edges[-1]
