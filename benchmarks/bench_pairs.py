"""Pair-builder speed and memory on a TMHINT-QI-sized clip table.

13k clips, 94 content groups and 94 systems: ~0.9M same-content and same-system candidates and
~84M cross candidates (~75M valid after equal-MOS pairs), sampling 12k pairs per relation. The
builder must never materialise the cross pool, so the run takes seconds and well under 1 GB.
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pyarrow as pa

from benchmark.pairs import build_pairs
from benchmark.tables import CLIP_SCHEMA, conform

RELS = ("same_content", "same_system", "cross")
TARGET = 12_000


def tmhint_sized(n: int = 13_000, groups: int = 94, seed: int = 0) -> pa.Table:
    """MOS = mean of three 1-5 ratings, so ties are as common as on a real listening test."""
    rng = np.random.default_rng(seed)
    ids = [f"tmhint_{i:05d}" for i in range(n)]
    ratings = np.rint(rng.normal(rng.uniform(1.5, 4.5, n)[:, None], 0.7, (n, 3)))
    return conform(
        pa.table(
            {
                "clip_id": ids,
                "corpus": ["tmhint"] * n,
                "split": ["train"] * n,
                "audio_path": ids,
                "mos": np.clip(ratings, 1, 5).mean(axis=1),
                "system_id": [f"s{x}" for x in rng.integers(0, groups, n)],
                "content_id": [f"t{x}" for x in rng.integers(0, groups, n)],
            }
        ),
        CLIP_SCHEMA,
    )


def _build(clips: pa.Table) -> dict:
    return build_pairs(
        clips,
        task="tmhint-sized",
        relations=RELS,
        counts={"train": dict.fromkeys(RELS, TARGET)},
        seed=0,
    )


def _check(built: dict) -> None:
    table, meta = built["train"]
    assert table.num_rows == 3 * TARGET
    for rel in RELS:
        assert meta["relations"][rel]["sampled"] == TARGET
    assert meta["relations"]["cross"]["candidates"] > 80_000_000


def test_build_pairs_tmhint_sized(benchmark) -> None:
    clips = tmhint_sized()
    built = benchmark.pedantic(_build, args=(clips,), rounds=3, iterations=1)
    _check(built)
    _, meta = built["train"]
    benchmark.extra_info.update(
        {
            rel: {k: meta["relations"][rel][k] for k in ("candidates", "available", "method")}
            for rel in RELS
        }
    )


def test_build_pairs_peak_memory(benchmark) -> None:
    clips = tmhint_sized()
    pool = pa.default_memory_pool()

    def run() -> tuple[dict, int, float]:
        tracemalloc.start()
        start = time.perf_counter()
        built = _build(clips)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return built, peak, elapsed

    built, peak, elapsed = benchmark.pedantic(run, rounds=1, iterations=1)
    _check(built)
    benchmark.extra_info.update(
        {
            "tracemalloc_peak_mb": round(peak / 2**20, 1),
            "arrow_pool_max_mb": round(pool.max_memory() / 2**20, 1),
            "seconds_with_tracemalloc": round(elapsed, 2),
        }
    )
    print(
        f"\npeak traced (numpy/python) {peak / 2**20:.1f} MiB, "
        f"arrow pool max {pool.max_memory() / 2**20:.1f} MiB, {elapsed:.2f} s under tracemalloc"
    )
    assert peak < 512 * 2**20
    assert pool.max_memory() < 512 * 2**20
