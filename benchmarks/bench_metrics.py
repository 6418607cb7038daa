"""Cost of clip-aware uncertainty: `aggregate` and `compare` on TMHINT-QI-train-sized predictions.

36k pairs over 13k clips, ~40 cells (overall, relations, bins, subsets, relation × bin). The goal,
measured side by side: every cell's clip-clustered interval may cost at most 3× the same
aggregation with pair-level Wilson intervals only, so uncertainty never becomes the slow step.
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa

from benchmark.data.tables import conform
from benchmark.stats import metrics
from benchmark.stats.metrics import PREDICTION_SCHEMA, aggregate, compare
from benchmarks.bench_pairs import RELS, TARGET, _build, tmhint_sized


def _predictions(seed: int) -> pa.Table:
    pairs, _ = _build(tmhint_sized())["train"]
    rng = np.random.default_rng(seed)
    n = pairs.num_rows
    pairs = pairs.append_column("score_a", pa.array(rng.random(n))).append_column(
        "score_b", pa.array(rng.random(n))
    )
    return conform(pairs, PREDICTION_SCHEMA)


def _iid_only(pred: pa.Table) -> dict:
    """The same aggregation with pair-level Wilson cells and no clip design (the old cost)."""

    def of(self, mask, by_label=False):
        c, t = self.correct[mask], self.ties[mask]
        n, k = int(c.size), int(c.sum())
        if n == 0:
            return metrics._empty_cell()
        low, high = metrics.wilson_interval(k, n)
        return {
            "accuracy": k / n,
            "ci_low": low,
            "ci_high": high,
            "n": n,
            "correct": k,
            "ties": int(t.sum()),
            "design_effect": 1.0,
            "df": max(1, n - 1),
        }

    saved = metrics._Cells.of, metrics._Preds.design
    metrics._Cells.of, metrics._Preds.design = of, lambda self: None
    try:
        return aggregate(pred, bins=5)
    finally:
        metrics._Cells.of, metrics._Preds.design = saved


def test_aggregate_cost_against_pair_level(benchmark) -> None:
    pred = _predictions(0)
    assert pred.num_rows == len(RELS) * TARGET
    result = benchmark.pedantic(aggregate, args=(pred,), kwargs={"bins": 5}, rounds=3)
    assert result["overall"]["n_clips"] > 10_000
    start = time.perf_counter()
    for _ in range(3):
        _iid_only(pred)
    baseline = (time.perf_counter() - start) / 3
    ratio = benchmark.stats.stats.mean / baseline
    benchmark.extra_info.update(
        {"pair_level_seconds": round(baseline, 3), "ratio": round(ratio, 2)}
    )
    print(
        f"\naggregate {benchmark.stats.stats.mean:.3f} s vs pair-level {baseline:.3f} s: {ratio:.2f}x"
    )
    assert ratio < 3.0


def test_compare_tmhint_sized(benchmark) -> None:
    a, b = _predictions(1), _predictions(2)
    out = benchmark.pedantic(compare, args=(a, b), rounds=3)
    assert out["overall"]["n"] == a.num_rows and out["family_size"] >= 9
