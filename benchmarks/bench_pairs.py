"""Pair-builder speed and memory on a TMHINT-QI-sized clip table (P3 of `make bench`).

13k clips, 94 content groups and 94 systems: ~0.9M same-content and same-system candidates and
~84M cross candidates (~75M valid after equal-MOS pairs). Three sizes: the task's 12k pairs per
relation (in memory, never materialising the cross pool); a 20 M-pair sample of that pool and a
whole pool of ~10^8 pairs (15.1k clips), each built and written to a pair file in a fresh process
so its peak RSS is the job's alone. Goals (issue 12): 20 M in < 10 s and < 1.5 GiB; 10^8 streamed
in < 2 GiB.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pyarrow as pa

from benchmark.data.tables import CLIP_SCHEMA, conform
from benchmark.pairs.build import build_pairs

RELS = ("same_content", "same_system", "cross")
TARGET = 12_000


def tmhint_sized(n: int = 13_000, groups: int = 94, seed: int = 0) -> pa.Table:
    """MOS = mean of three 1-5 ratings, so ties are as common as on a real listening test; the
    ratings are in the table, so every pair gets its label reliability as on a real corpus."""
    rng = np.random.default_rng(seed)
    ids = [f"tmhint_{i:05d}" for i in range(n)]
    ratings = np.clip(np.rint(rng.normal(rng.uniform(1.5, 4.5, n)[:, None], 0.7, (n, 3))), 1, 5)
    return conform(
        pa.table(
            {
                "clip_id": ids,
                "corpus": ["tmhint"] * n,
                "split": ["train"] * n,
                "audio_path": ids,
                "mos": ratings.mean(axis=1),
                "n_ratings": pa.array(np.full(n, 3), pa.int32()),
                "rating_std": ratings.std(axis=1, ddof=1),
                "ratings": pa.array(list(ratings), pa.list_(pa.float64())),
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


_CHILD = """
import json, resource, sys, time
sys.path.insert(0, {here!r})
from bench_pairs import tmhint_sized
from benchmark.pairs.build import build_pair_sets
clips = tmhint_sized({clips})
start = time.perf_counter()
built = build_pair_sets(clips, task="p3", relations=("cross",),
                        counts={{"train": {{"cross": {target!r}}}}}, seed=0, workdir={work!r})
rows, meta = built["train"]
drawn = time.perf_counter()
sha = rows.write({out!r}, meta)
rows.close()
done = time.perf_counter()
print(json.dumps({{"pairs": rows.n, "draw_s": drawn - start, "write_s": done - drawn,
                  "seconds": done - start, "method": meta["relations"]["cross"]["method"],
                  "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}}))
"""


def _build_in_child(tmp: Path, clips: int, target: int | str) -> dict:
    code = _CHILD.format(
        here=str(Path(__file__).parent),
        clips=clips,
        target=target,
        work=str(tmp),
        out=str(tmp / "pairs.parquet"),
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=900
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _p3(benchmark, tmp: Path, clips: int, target: int | str, seconds: float | None, gib: float):
    got = benchmark.pedantic(_build_in_child, args=(tmp, clips, target), rounds=1, iterations=1)
    benchmark.extra_info.update(
        {k: round(v, 2) if isinstance(v, float) else v for k, v in got.items()}
    )
    print(
        f"\nP3 {got['pairs']:,} pairs ({got['method']}): {got['seconds']:.1f} s "
        f"(draw {got['draw_s']:.1f}, write {got['write_s']:.1f}), peak RSS {got['peak_rss_gib']:.2f} GiB"
    )
    assert got["peak_rss_gib"] < gib
    if seconds is not None:
        assert got["seconds"] < seconds


def test_p3_sample_20m(benchmark, tmp_path: Path) -> None:
    _p3(benchmark, tmp_path, 13_000, 20_000_000, seconds=10.0, gib=1.5)


def test_p3_whole_pool_100m(benchmark, tmp_path: Path) -> None:
    _p3(benchmark, tmp_path, 15_100, "all", seconds=None, gib=2.0)
