"""The pair builder against an independent brute-force reading of the relation definitions."""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmark.data.tables import CLIP_SCHEMA, PAIR_SCHEMA, RELATIONS, from_rows, read_meta
from benchmark.errors import DataError
from benchmark.pairs import build as pairs_mod
from benchmark.pairs import draw as draw_mod
from benchmark.pairs import pools as pools_mod
from benchmark.pairs.build import RELATION_DEFINITIONS, build_pairs, write_pairs

GROUPED = ("same_content", "same_system", "cross", "any")


def make_rows(seed: int, n: int = 40, splits=("train", "test"), subsets=(None, "t1")) -> list[dict]:
    """Small clip rows with ties, noisy float MOS, null keys and subsets."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        sys = rng.integers(0, 5)
        con = rng.integers(0, 6)
        rows.append(
            {
                "clip_id": f"c{i:03d}",
                "corpus": "synth",
                "split": splits[int(rng.integers(0, len(splits)))],
                "subset": subsets[int(rng.integers(0, len(subsets)))],
                "audio_path": f"{i}.wav",
                # 1 + k * 0.2 carries float noise (e.g. 1.2000000000000002), with many ties
                "mos": 1 + int(rng.integers(0, 21)) * 0.2,
                "system_id": None if sys == 4 else f"s{sys}",
                "content_id": None if con == 5 else f"t{con}",
            }
        )
    return rows


def table(rows: list[dict]) -> pa.Table:
    return from_rows(rows, CLIP_SCHEMA)


def brute_pool(rows: list[dict], relation: str, split: str, min_delta: float = 0.0) -> set:
    """Valid pool by direct reading of the definitions, as frozensets of clip ids."""
    pool = set()
    mine = [r for r in rows if r["split"] == split]
    for x, y in itertools.combinations(mine, 2):
        if x["subset"] != y["subset"]:
            continue
        if not round(abs(x["mos"] - y["mos"]), 9) > min_delta:
            continue

        def eq(key: str, x: dict = x, y: dict = y) -> bool:
            return x[key] is not None and x[key] == y[key]

        ok = {
            "same_content": eq("content_id") and not eq("system_id"),
            "same_system": eq("system_id") and not eq("content_id"),
            "cross": not eq("system_id") and not eq("content_id"),
            "any": True,
        }[relation]
        if ok:
            pool.add(frozenset((x["clip_id"], y["clip_id"])))
    return pool


def as_pairs(t: pa.Table, relation: str) -> list[frozenset]:
    sub = t.filter(pa.compute.equal(t.column("relation"), relation))
    return [
        frozenset(p)
        for p in zip(
            sub.column("clip_a").to_pylist(), sub.column("clip_b").to_pylist(), strict=True
        )
    ]


def build(rows: list[dict], counts: dict, seed: int = 0, **kw) -> dict:
    return build_pairs(table(rows), task="t", relations=RELATIONS, counts=counts, seed=seed, **kw)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("min_delta", [0.0, 0.2, 0.5])
def test_all_equals_brute_force_pool(seed: int, min_delta: float) -> None:
    rows = make_rows(seed)
    counts = {s: dict.fromkeys(RELATIONS, "all") for s in ("train", "test")}
    built = build(rows, counts, seed=seed, min_delta=min_delta)
    for split, (t, meta) in built.items():
        assert t.schema.equals(PAIR_SCHEMA)
        for rel in RELATIONS:
            pool = brute_pool(rows, rel, split, min_delta)
            got = as_pairs(t, rel)
            assert meta["relations"][rel]["available"] == len(pool)
            assert meta["relations"][rel]["sampled"] == len(pool)
            assert len(got) == len(set(got))
            assert set(got) == pool


def test_sampled_pairs_satisfy_definitions() -> None:
    rows = make_rows(7, n=60, subsets=(None, "t1", "t2"))
    by_id = {r["clip_id"]: r for r in rows}
    built = build(
        rows, {"train": dict.fromkeys(RELATIONS, 12), "test": dict.fromkeys(RELATIONS, 5)}
    )
    for split, (t, meta) in built.items():
        for rel in RELATIONS:
            pool = brute_pool(rows, rel, split)
            got = as_pairs(t, rel)
            assert len(got) == min(meta["relations"][rel]["target"], len(pool))
            assert len(set(got)) == len(got)
            assert set(got) <= pool
        for row in t.to_pylist():
            a, b = by_id[row["clip_a"]], by_id[row["clip_b"]]
            assert a["split"] == b["split"] == row["split"] == split
            assert a["subset"] == b["subset"] == row["subset"]
            assert row["mos_a"] == a["mos"] and row["mos_b"] == b["mos"]
            assert row["chosen"] == ("a" if a["mos"] > b["mos"] else "b")
            assert row["delta_mos"] == round(abs(a["mos"] - b["mos"]), 9)
            if row["relation"] == "same_content":
                assert row["group_key"] == a["content_id"] == b["content_id"]
            elif row["relation"] == "same_system":
                assert row["group_key"] == a["system_id"] == b["system_id"]
            else:
                assert row["group_key"] is None


def test_shortfall_is_recorded_and_whole_pool_taken() -> None:
    rows = make_rows(3, n=20)
    built = build(rows, {"train": {"same_content": 10_000, "cross": 1}})
    t, meta = built["train"]
    info = meta["relations"]["same_content"]
    assert info["sampled"] == info["available"] == len(brute_pool(rows, "same_content", "train"))
    assert "shortfall" in info and "same_content" in meta["shortfall"]
    assert "shortfall" not in meta["relations"]["cross"]
    # relations listed but not requested for the split: target 0, pool still reported
    assert meta["relations"]["any"]["target"] == 0
    assert meta["relations"]["any"]["sampled"] == 0
    assert meta["relations"]["any"]["available"] == len(brute_pool(rows, "any", "train"))


def test_metadata_contents_and_json() -> None:
    rows = make_rows(4)
    _, meta = build(rows, {"test": {"cross": "all", "same_system": 3}}, seed=5, bins=4)["test"]
    assert json.loads(json.dumps(meta)) == meta
    for key in ("task", "split", "seed", "min_delta", "bins", "pair_schema_version"):
        assert key in meta
    assert meta["seed"] == 5 and meta["bins"] == 4 and len(meta["bin_edges"]) == 5
    assert meta["relations"]["cross"]["target"] == "all"
    assert len(meta["relation_definitions_sha256"]) == 64
    assert set(RELATION_DEFINITIONS) == set(RELATIONS)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_byte_identical_files_and_seed_sensitivity(tmp_path: Path) -> None:
    rows = make_rows(5, n=80)
    counts = {"train": dict.fromkeys(RELATIONS, 20)}
    digests, metas = [], []
    for i, (seed, rs) in enumerate([(0, rows), (0, rows[::-1]), (1, rows)]):
        t, meta = build(rs, counts, seed=seed)["train"]
        metas.append(meta)
        path = tmp_path / f"p{i}.parquet"
        digests.append(write_pairs(t, meta, path))
        assert digests[-1] == sha(path)
    assert digests[0] == digests[1]  # input row order does not matter
    assert digests[0] != digests[2]
    back = pq.read_table(tmp_path / "p0.parquet")
    assert back.schema.remove_metadata().equals(PAIR_SCHEMA.remove_metadata())
    assert read_meta(tmp_path / "p0.parquet") == metas[0]
    keys = list(
        zip(back.column("relation").to_pylist(), back.column("pair_id").to_pylist(), strict=True)
    )
    assert keys == sorted(keys) and len(set(keys)) == len(keys)


def test_ab_order_balanced_and_chosen_higher() -> None:
    rows = make_rows(6, n=120, splits=("train",), subsets=(None,))
    t, _ = build(rows, {"train": {"any": 501, "cross": 300}})["train"]
    for rel in ("any", "cross"):
        sub = t.filter(pa.compute.equal(t.column("relation"), rel)).to_pylist()
        swapped = sum(r["clip_a"] > r["clip_b"] for r in sub)
        assert abs(swapped - len(sub) / 2) <= 0.5
        chosen_a = sum(r["chosen"] == "a" for r in sub)
        assert 0.3 < chosen_a / len(sub) < 0.7
        for r in sub:
            hi = r["mos_a"] if r["chosen"] == "a" else r["mos_b"]
            lo = r["mos_b"] if r["chosen"] == "a" else r["mos_a"]
            assert hi > lo


def test_bins_within_edges_and_equal_with_distinct_deltas() -> None:
    # MOS values 2^k / 1000 make every pairwise difference distinct
    rows = [
        {
            "clip_id": f"c{i}",
            "corpus": "x",
            "split": "test",
            "audio_path": "a.wav",
            "mos": 1 + (2**i) / 1000,
            "system_id": f"s{i}",
        }
        for i in range(11)
    ]
    t, meta = build(rows, {"test": {"any": "all"}}, bins=5)["test"]
    delta = np.array(t.column("delta_mos").to_pylist())
    assert len(np.unique(delta)) == len(delta) == 55
    edges = meta["bin_edges"]
    counts = np.bincount(t.column("delta_bin").to_numpy(), minlength=5)
    assert counts.max() - counts.min() <= 1
    assert counts.tolist() == meta["bin_counts"]
    for d, b in zip(delta, t.column("delta_bin").to_pylist(), strict=True):
        assert edges[b] <= d and (d < edges[b + 1] or (b == 4 and d == edges[5]))


def test_bins_with_ties_and_empty_split() -> None:
    rows = [
        {"clip_id": f"c{i}", "corpus": "x", "split": "test", "audio_path": "a", "mos": m}
        for i, m in enumerate([1.0, 1.0, 1.0, 1.0, 2.0, 2.0])
    ]
    rows.append({"clip_id": "z", "corpus": "x", "split": "dev", "audio_path": "a", "mos": 3.0})
    built = build(rows, {"test": {"any": "all"}, "dev": {"any": "all"}}, bins=5)
    t, meta = built["test"]
    assert t.num_rows == 8 and sum(meta["bin_counts"]) == 8
    # every ΔMOS is 1.0: the five percentile bins collapse into one, [1.0, 1.0]
    assert meta["bin_edges"] == [1.0, 1.0] and meta["bin_counts"] == [8]
    assert (meta["bins"], meta["bins_requested"]) == (1, 5)
    assert set(t.column("delta_bin").to_pylist()) == {0}
    t0, meta0 = built["dev"]
    assert t0.num_rows == 0 and meta0["bin_edges"] is None and meta0["bin_counts"] == [0] * 5
    assert t0.schema.equals(PAIR_SCHEMA)


def test_tied_percentiles_merge_into_fewer_nonempty_bins() -> None:
    """TMHINT-QI-like ΔMOS (1–2 ratings per clip): a tie at 1.0 spans two percentile edges.

    Edges must come out strictly increasing (the empty bands merged), no bin empty, every tied
    ΔMOS in one bin, and the bins equal to the rule applied by brute force.
    """
    mos = [1.0, 1.5, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 4.5, 5.0]
    rows = [
        {"clip_id": f"c{i:02d}", "corpus": "x", "split": "test", "audio_path": "a", "mos": m}
        for i, m in enumerate(mos)
    ]
    t, meta = build(rows, {"test": {"any": "all"}}, bins=5)["test"]
    delta = np.array(t.column("delta_mos").to_pylist())
    n = delta.size
    # the rule by brute force: band = floor(#smaller * 5 / n), empty bands dropped
    band = [sum(e < d for e in delta) * 5 // n for d in delta]
    assert len(set(band)) < 5  # the input really has a tie covering a whole band
    renumber = {b: i for i, b in enumerate(sorted(set(band)))}
    assert t.column("delta_bin").to_pylist() == [renumber[b] for b in band]
    edges = meta["bin_edges"]
    assert edges[:-1] == [
        min(d for d, b in zip(delta, band, strict=True) if b == k) for k in sorted(renumber)
    ]
    assert edges[-1] == delta.max()
    assert all(lo < hi for lo, hi in itertools.pairwise(edges))
    assert meta["bins"] == len(edges) - 1 < meta["bins_requested"] == 5
    counts = meta["bin_counts"]
    assert len(counts) == meta["bins"] and min(counts) > 0 and sum(counts) == t.num_rows
    bins = t.column("delta_bin").to_numpy()
    assert np.bincount(bins).tolist() == counts
    for d in np.unique(delta):
        assert len(set(bins[delta == d].tolist())) == 1  # a tie never straddles two bins
    for d, b in zip(delta, bins, strict=True):
        last = b == meta["bins"] - 1
        assert edges[b] <= d and (d < edges[b + 1] or (last and d == edges[-1]))


def test_fixed_subset_flags_use_rounded_delta() -> None:
    mos = [3.2, 3.4, 3.7, 1.0, 4.9, 3.9]  # 3.4 - 3.2 is 0.19999999999999973 in floats
    rows = [
        {"clip_id": f"c{i}", "corpus": "x", "split": "test", "audio_path": "a", "mos": m}
        for i, m in enumerate(mos)
    ]
    t, _ = build(rows, {"test": {"any": "all"}})["test"]
    assert t.num_rows == 15
    for r in t.to_pylist():
        d = round(abs(r["mos_a"] - r["mos_b"]), 9)
        assert r["delta_mos"] == d
        assert r["dmos_lt_0_2"] == (d < 0.2)
        assert r["dmos_le_0_5"] == (d <= 0.5)
        assert r["dmos_gt_1_5"] == (d > 1.5)
    pair = [r for r in t.to_pylist() if {r["mos_a"], r["mos_b"]} == {3.2, 3.4}][0]
    assert pair["delta_mos"] == 0.2 and not pair["dmos_lt_0_2"]
    # min_delta 0.2 drops the noisy 0.2 pair (and 3.7 - 3.9)
    t2, _ = build(rows, {"test": {"any": "all"}}, min_delta=0.2)["test"]
    assert t2.num_rows == 13
    assert min(t2.column("delta_mos").to_pylist()) > 0.2


def test_null_keys() -> None:
    base = {"corpus": "x", "split": "train", "audio_path": "a"}
    rows = [
        {**base, "clip_id": "k1", "mos": 1.0, "system_id": "A", "content_id": "t1"},
        {**base, "clip_id": "k2", "mos": 2.0, "system_id": "B", "content_id": "t1"},
        {**base, "clip_id": "k3", "mos": 3.0, "system_id": "A", "content_id": "t2"},
        {**base, "clip_id": "nocontent", "mos": 4.0, "system_id": "A", "content_id": None},
        {**base, "clip_id": "nosystem", "mos": 4.5, "system_id": None, "content_id": "t1"},
    ]
    t, meta = build(rows, {"train": dict.fromkeys(RELATIONS, "all")})["train"]

    def members(rel: str) -> set:
        return set().union(*as_pairs(t, rel))

    assert "nocontent" in members("same_system") and "nocontent" in members("cross")
    assert "nocontent" not in members("same_content")
    assert "nosystem" in members("same_content") and "nosystem" in members("cross")
    assert "nosystem" not in members("same_system")
    assert set(as_pairs(t, "same_system")) == {
        frozenset(p) for p in [("k1", "k3"), ("k1", "nocontent"), ("k3", "nocontent")]
    }
    assert set(as_pairs(t, "same_content")) == {
        frozenset(p) for p in [("k1", "k2"), ("k1", "nosystem"), ("k2", "nosystem")]
    }
    assert frozenset(("nocontent", "nosystem")) in as_pairs(t, "cross")
    assert meta["relations"]["any"]["available"] == 10


def test_errors() -> None:
    rows = make_rows(0)
    with pytest.raises(DataError, match="unknown pair relation"):
        build_pairs(table(rows), task="t", relations=["bogus"], counts={}, seed=0)
    with pytest.raises(DataError, match="no clips in split 'dev'"):
        build(rows, {"dev": {"any": 3}})
    with pytest.raises(DataError, match=">= 0"):
        build(rows, {"train": {"any": -1}})
    with pytest.raises(DataError, match="not listed"):
        build_pairs(
            table(rows), task="t", relations=["cross"], counts={"train": {"any": 1}}, seed=0
        )
    with pytest.raises(DataError, match="min_delta"):
        build(rows, {"train": {"any": 1}}, min_delta=-0.1)
    with pytest.raises(DataError, match="bins"):
        build(rows, {"train": {"any": 1}}, bins=0)


def test_chunk_boundaries_and_overflow_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(draw_mod, "CHUNK", 7)
    monkeypatch.setattr(pools_mod, "_SPAN_LIMIT", 0)  # force the per-group counting path
    rows = make_rows(11, n=50)
    for min_delta in (0.0, 0.4):
        built = build(rows, {"train": dict.fromkeys(RELATIONS, "all")}, min_delta=min_delta)
        t, meta = built["train"]
        for rel in RELATIONS:
            pool = brute_pool(rows, rel, "train", min_delta)
            assert meta["relations"][rel]["available"] == len(pool)
            assert set(as_pairs(t, rel)) == pool


@pytest.mark.parametrize("path", ["rejection", "enumerate", "ranks"])
def test_subsampling_is_uniform_and_valid(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    method = "rejection" if path == "rejection" else "enumerate"
    if path == "ranks":  # the pre-drawn-ranks branch used for pools of >= 1e9 pairs
        monkeypatch.setattr(draw_mod, "_HYPERGEOMETRIC_MAX", 0)
        monkeypatch.setattr(draw_mod, "CHUNK", 5)
    elif path == "rejection":
        monkeypatch.setattr(draw_mod, "ENUMERATE_BELOW", 0)
        monkeypatch.setattr(draw_mod, "_rejection_pays", lambda c, v, t: t < v)
    else:
        monkeypatch.setattr(draw_mod, "CHUNK", 5)  # several hypergeometric chunk draws
    rows = make_rows(2, n=16, splits=("train",))
    rel = "cross"
    pool = brute_pool(rows, rel, "train")
    target = len(pool) // 3
    freq: Counter = Counter()
    runs = 200
    for seed in range(runs):
        t, meta = build(rows, {"train": {rel: target}}, seed=seed)["train"]
        assert meta["relations"][rel]["method"] == method
        got = as_pairs(t, rel)
        assert len(got) == len(set(got)) == target and set(got) <= pool
        freq.update(got)
    expected = runs * target / len(pool)
    assert set(freq) == pool
    assert all(abs(f - expected) < 5 * np.sqrt(expected) for f in freq.values())


def test_rejection_path_on_a_large_table() -> None:
    n = 13_000
    rng = np.random.default_rng(0)
    clip_ids = [f"u{i:05d}" for i in range(n)]
    system = rng.integers(0, 10, n)
    content = rng.integers(0, 1300, n)
    mos = np.round(rng.uniform(1, 5, n) * 5) / 5
    clips = pa.table(
        {
            "clip_id": clip_ids,
            "corpus": ["big"] * n,
            "split": ["train"] * n,
            "subset": pa.nulls(n, pa.string()),
            "audio_path": clip_ids,
            "mos": mos,
            "system_id": [f"s{s}" for s in system],
            "content_id": [f"t{c}" for c in content],
        }
    )
    from benchmark.data.tables import conform

    clips = conform(clips, CLIP_SCHEMA)
    target = 5000
    start = time.perf_counter()
    built = build_pairs(
        clips,
        task="big",
        relations=("same_content", "same_system", "cross"),
        counts={"train": dict.fromkeys(("same_content", "same_system", "cross"), target)},
        seed=3,
    )
    elapsed = time.perf_counter() - start
    assert elapsed < 10
    t, meta = built["train"]
    assert meta["relations"]["same_system"]["method"] == "rejection"
    assert meta["relations"]["cross"]["method"] == "rejection"
    index = {c: i for i, c in enumerate(clip_ids)}
    for rel in ("same_content", "same_system", "cross"):
        sub = t.filter(pa.compute.equal(t.column("relation"), rel))
        assert sub.num_rows == target
        a = np.array([index[c] for c in sub.column("clip_a").to_pylist()])
        b = np.array([index[c] for c in sub.column("clip_b").to_pylist()])
        assert len({frozenset(p) for p in zip(a.tolist(), b.tolist(), strict=True)}) == target
        assert (np.abs(mos[a] - mos[b]) > 1e-9).all()
        if rel == "same_content":
            assert ((content[a] == content[b]) & (system[a] != system[b])).all()
        elif rel == "same_system":
            assert ((system[a] == system[b]) & (content[a] != content[b])).all()
        else:
            assert ((system[a] != system[b]) & (content[a] != content[b])).all()


def test_balance_subsets_splits_each_count_evenly() -> None:
    rows = make_rows(7, n=90, splits=("test",), subsets=("1a", "1b", "2"))
    by_subset = {
        s: {r: brute_pool([x for x in rows if x["subset"] == s], r, "test") for r in GROUPED}
        for s in ("1a", "1b", "2")
    }
    counts = {"test": {"same_content": 7, "same_system": 6, "cross": 8, "any": "all"}}
    t, meta = build(rows, counts, balance_subsets=True)["test"]
    assert meta["balance_subsets"] is True
    subset_of = {r["clip_id"]: r["subset"] for r in rows}
    for rel, target in counts["test"].items():
        got = as_pairs(t, rel)
        assert len(got) == len(set(got))
        per = Counter()
        for p in got:
            (s,) = {subset_of[c] for c in p}  # never crosses subsets
            assert p in by_subset[s][rel]
            per[s] += 1
        info = meta["relations"][rel]
        assert info["method"] == "per-subset"
        if target == "all":
            assert dict(per) == {s: len(by_subset[s][rel]) for s in by_subset if by_subset[s][rel]}
            continue
        # remainder to the first subsets in name order, unless a subset's pool is short
        shares = [target // 3 + (1 if i < target % 3 else 0) for i in range(3)]
        for s, share in zip(("1a", "1b", "2"), shares, strict=True):
            expect = min(share, len(by_subset[s][rel]))
            assert per[s] == expect
            assert info["subsets"][s]["target"] == share
            assert info["subsets"][s]["available"] == len(by_subset[s][rel])
        assert info["sampled"] == sum(per.values())


def test_balance_subsets_records_a_short_subset() -> None:
    rows = make_rows(3, n=60, splits=("test",), subsets=("big", "tiny"))
    tiny = [r for r in rows if r["subset"] == "tiny"][:3]
    rows = [r for r in rows if r["subset"] == "big"] + tiny
    pool = len(brute_pool(tiny, "any", "test"))
    _, meta = build(rows, {"test": {"any": 40}}, balance_subsets=True)["test"]
    info = meta["relations"]["any"]
    assert info["subsets"]["tiny"]["sampled"] == pool < 20
    assert info["subsets"]["big"]["sampled"] == 20
    assert "subset 'tiny'" in meta["shortfall"]["any"]


def test_without_balance_one_subset_set_gives_the_same_pairs() -> None:
    rows = make_rows(5, n=50, splits=("test",), subsets=("only",))
    counts = {"test": {"cross": 30, "same_system": 10}}
    plain, _ = build(rows, counts)["test"]
    balanced, _ = build(rows, counts, balance_subsets=True)["test"]
    assert plain.equals(balanced)  # a single subset takes the ordinary path


def test_whole_pools_stream_past_the_memory_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    """MOSRM_MAX_PAIRS guards memory, not size: whole pools are spilled to bucket files and built
    whatever their size; only a sample drawn in memory (rejection) above the guard is refused."""
    rows = make_rows(11, n=40, splits=("test",))
    pool = brute_pool(rows, "any", "test")
    monkeypatch.setenv(pairs_mod.MAX_PAIRS_ENV, str(len(pool) // 10))
    monkeypatch.setattr(pairs_mod, "SPILL_ABOVE", 0)
    t, meta = build(rows, {"test": {"any": "all"}})["test"]
    assert set(as_pairs(t, "any")) == pool and meta["relations"]["any"]["method"] == "all"
    monkeypatch.setattr(draw_mod, "ENUMERATE_BELOW", 0)
    monkeypatch.setattr(draw_mod, "_rejection_pays", lambda c, v, t: t < v)
    target = len(pool) // 2
    with pytest.raises(DataError, match=rf"pairs\.test\.any: a sample of {target:,} pairs"):
        build(rows, {"test": {"any": target}})
    monkeypatch.setenv(pairs_mod.MAX_PAIRS_ENV, "lots")
    with pytest.raises(DataError, match="MOSRM_MAX_PAIRS='lots'"):
        build(rows, {"test": {"any": target}})


def _files_of(rows: list[dict], counts: dict, folder: Path, **kw) -> dict[str, str]:
    built = pairs_mod.build_pair_sets(
        table(rows), task="t", relations=RELATIONS, counts=counts, seed=4, workdir=folder, **kw
    )
    out = {}
    for split, (split_rows, meta) in built.items():
        out[split] = split_rows.write(folder / f"pairs-{split}.parquet", meta)
        split_rows.close()
    return out


def test_spilled_and_in_memory_pair_files_are_byte_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bucket files (whole pools) and memory (samples) give the same bytes, row groups included;
    the streamed writer gives what `write_pairs` (one table, one `write_table`) gives."""
    from benchmark.pairs import rows as pair_rows

    rows = make_rows(8, n=60)
    counts = {"train": {"cross": "all", "same_content": 40, "any": "all"}, "test": {"cross": 50}}
    memory = _files_of(rows, counts, tmp_path / "memory")
    table_built = build(rows, counts, seed=4)
    for split, (t, meta) in table_built.items():
        assert write_pairs(t, meta, tmp_path / f"table-{split}.parquet") == memory[split]
    monkeypatch.setattr(pairs_mod, "SPILL_ABOVE", 0)
    assert _files_of(rows, counts, tmp_path / "spilled") == memory
    monkeypatch.setattr(pair_rows, "ROW_GROUP", 7)  # row groups cut across buckets and relations
    small = _files_of(rows, counts, tmp_path / "small-groups")
    monkeypatch.setattr(pairs_mod, "SPILL_ABOVE", 10**9)
    assert _files_of(rows, counts, tmp_path / "small-memory") == small
    f = pq.ParquetFile(tmp_path / "small-memory" / "pairs-train.parquet")
    assert f.metadata.num_row_groups > 3 and f.metadata.row_group(0).num_rows == 7
    assert pq.read_table(tmp_path / "small-memory" / "pairs-train.parquet").equals(
        table_built["train"][0]
    )
    for folder in ("memory", "spilled", "small-groups", "small-memory"):  # bucket files removed
        assert sorted(p.name for p in (tmp_path / folder).iterdir()) == [
            "pairs-test.parquet",
            "pairs-train.parquet",
        ]


def test_pair_ids_match_the_reference_definition() -> None:
    from benchmark.pairs.ids import pair_id

    rows = make_rows(3, n=40)
    t, meta = build(rows, {"train": dict.fromkeys(RELATIONS, "all")})["train"]
    assert meta["pair_id_version"] == 2
    for r in t.to_pylist():
        assert r["pair_id"] == pair_id("t", "train", r["relation"], r["clip_a"], r["clip_b"])
        assert r["pair_id"] == pair_id("t", "train", r["relation"], r["clip_b"], r["clip_a"])
    assert pair_id("t", "train", "cross", "x", "y") != pair_id("t", "test", "cross", "x", "y")
    assert pair_id("t", "train", "cross", "é", "z") == pair_id("t", "train", "cross", "z", "é")


def test_spilled_ab_order_is_balanced_and_uniform(monkeypatch: pytest.MonkeyPatch) -> None:
    """Across buckets, exactly half of a relation is swapped and every pair equally often."""
    monkeypatch.setattr(pairs_mod, "SPILL_ABOVE", 0)
    rows = make_rows(6, n=40, splits=("train",), subsets=(None,))
    freq: Counter = Counter()
    runs = 120
    for seed in range(runs):
        t, _ = build(rows, {"train": {"any": "all"}}, seed=seed)["train"]
        swapped = [r["clip_a"] > r["clip_b"] for r in t.to_pylist()]
        assert abs(sum(swapped) - len(swapped) / 2) <= 0.5
        freq.update(r["pair_id"] for r, s in zip(t.to_pylist(), swapped, strict=True) if s)
    n_pairs = t.num_rows
    assert len(freq) == n_pairs  # every pair swapped in some run
    sd = np.sqrt(runs / 4)
    assert all(abs(f - runs / 2) < 5 * sd for f in freq.values())
