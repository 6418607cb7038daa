"""Simultaneous rank intervals (`stats.ranks`, issue 23 item 6): the rule applied by hand to
statsmodels' Holm over every pair of models, and what the intervals promise, by simulation with
known truth (the full calibration, with listening tests, is `benchmarks/calibrate.py`)."""

from __future__ import annotations

import itertools

import numpy as np
from statsmodels.stats.multitest import multipletests

from benchmark.stats.ranks import rank_intervals
from benchmark.stats.uncertainty import ClipDesign, difference_test


def _disjoint(n: int) -> ClipDesign:
    return ClipDesign.of(np.arange(n), np.arange(n, 2 * n))


def test_the_rule_by_hand() -> None:
    rng = np.random.default_rng(0)
    n = 600
    truth = {"a": 0.85, "b": 0.84, "c": 0.70, "d": 0.55}
    correct = {k: rng.random(n) < p for k, p in truth.items()}
    design = _disjoint(n)
    got = rank_intervals(correct, design)
    pairs = list(itertools.combinations(sorted(correct), 2))
    tests = [
        difference_test(correct[x].astype(int) - correct[y].astype(int), design) for x, y in pairs
    ]
    reject = multipletests([t.p for t in tests], method="holm")[0]
    better = dict.fromkeys(correct, 0)
    worse = dict.fromkeys(correct, 0)
    for (x, y), t, r in zip(pairs, tests, reject, strict=True):
        if r:
            win, lose = (x, y) if t.mean > 0 else (y, x)
            better[lose] += 1
            worse[win] += 1
    assert {k: (v.low, v.high) for k, v in got.items()} == {
        k: (1 + better[k], 4 - worse[k]) for k in correct
    }
    # a and b are a point apart: not told apart; c and d are
    assert got["a"].label == got["b"].label == "1–2"
    assert (got["c"].label, got["d"].label) == ("3", "4")


def test_identical_models_share_every_rank_and_order_is_irrelevant() -> None:
    rng = np.random.default_rng(1)
    v = rng.random(300) < 0.7
    got = rank_intervals({"x": v, "y": v.copy(), "z": v.copy()}, _disjoint(300))
    assert {k: r.label for k, r in got.items()} == {"x": "1–3", "y": "1–3", "z": "1–3"}
    rev = rank_intervals({"z": v, "x": v.copy(), "y": v.copy()}, _disjoint(300))
    assert rev == got


def test_simultaneous_coverage_by_simulation() -> None:
    """Five models with known accuracies on independent pairs: in ≥ 95% of 300 replicates every
    model's interval holds its true rank (Holm makes it conservative)."""
    truth = [0.80, 0.78, 0.74, 0.70, 0.60]
    n = 500
    design = _disjoint(n)
    held = 0
    for seed in range(300):
        rng = np.random.default_rng(seed)
        correct = {f"m{i}": rng.random(n) < p for i, p in enumerate(truth)}
        got = rank_intervals(correct, design)
        held += all(got[f"m{i}"].low <= i + 1 <= got[f"m{i}"].high for i in range(5))
    assert held / 300 >= 0.95
