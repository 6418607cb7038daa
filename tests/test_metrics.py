"""Every metric against an independent computation: scipy, statsmodels, or numbers worked by hand."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from benchmark.data.tables import FIXED_SUBSETS, from_rows
from benchmark.stats.metrics import (
    CELL_KEYS,
    PREDICTION_SCHEMA,
    PredictionError,
    aggregate,
    cell,
    compare,
    correctness,
    wilson_interval,
)
from benchmark.stats.uncertainty import ClipDesign
from tests.crossed_reference import dense_crossed, incidence

_OPS = {"<": float.__lt__, "<=": float.__le__, ">": float.__gt__}


def row(
    pid: str,
    chosen: str,
    sa: float,
    sb: float,
    *,
    task: str = "t",
    relation: str = "cross",
    delta_bin: int = 0,
    dmos: float = 1.0,
    split: str = "test",
    subset: str | None = None,
) -> dict:
    """A predictions row; MOS and the fixed-subset flags follow from `chosen` and `dmos`."""
    lo = 2.0
    mos_a, mos_b = (lo + dmos, lo) if chosen == "a" else (lo, lo + dmos)
    flags = {name: _OPS[op](float(dmos), thr) for name, (op, thr) in FIXED_SUBSETS.items()}
    return {
        "pair_id": pid,
        "task": task,
        "split": split,
        "subset": subset,
        "relation": relation,
        "group_key": None,
        "clip_a": f"{pid}-a",
        "clip_b": f"{pid}-b",
        "mos_a": mos_a,
        "mos_b": mos_b,
        "delta_mos": dmos,
        "chosen": chosen,
        "delta_bin": delta_bin,
        **flags,
        "score_a": sa,
        "score_b": sb,
    }


def table(rows: list[dict]) -> pa.Table:
    return from_rows(rows, PREDICTION_SCHEMA)


def all_pairs_table(mos: np.ndarray, scores: np.ndarray, rng: np.random.Generator) -> pa.Table:
    """Every unordered pair of items, A/B order randomised, chosen = the higher MOS."""
    rows = []
    for i, j in itertools.combinations(range(len(mos)), 2):
        a, b = (i, j) if rng.random() < 0.5 else (j, i)
        chosen = "a" if mos[a] > mos[b] else "b"
        r = row(f"p{i}-{j}", chosen, float(scores[a]), float(scores[b]))
        r.update(mos_a=float(mos[a]), mos_b=float(mos[b]), delta_mos=abs(mos[a] - mos[b]))
        rows.append(r)
    return table(rows)


# 1. acceptance: strict accuracy on all pairs is Kendall's tau rescaled ---------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_all_pairs_accuracy_is_kendall_tau(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 30
    mos = rng.permutation(n) * 0.1 + 1.0  # distinct
    scores = rng.normal(size=n) + 0.5 * mos  # distinct (continuous), correlated with MOS
    assert len(set(scores.tolist())) == n
    pred = all_pairs_table(mos, scores, rng)
    assert pred.num_rows == n * (n - 1) // 2
    # Both A/B orders appear, so the test would catch a rule that looks at A/B instead of chosen.
    chosen = pred.column("chosen").to_pylist()
    assert 0 < chosen.count("a") < len(chosen)

    tau = stats.kendalltau(mos, scores).statistic
    correct, ties = correctness(pred)
    assert not ties.any()
    assert abs(correct.mean() - (1 + tau) / 2) <= 1e-12
    overall = aggregate(pred)["overall"]
    assert abs(overall["accuracy"] - (1 + tau) / 2) <= 5e-7  # rounded to 6 decimals
    assert overall["n"] == pred.num_rows


# 2. ties -----------------------------------------------------------------------------------------


def test_ties_hand_example() -> None:
    """Six pairs: 3 correct, 2 tied, 1 wrong.

    strict = 3/6 = 0.5; tie-half = (3 + 0.5 * 2)/6 = 4/6 = 0.666667; tie rate = 2/6 = 0.333333.
    """
    rows = [
        row("p1", "a", 0.9, 0.1),  # correct
        row("p2", "b", 0.2, 0.8),  # correct (chosen is B and B scores higher)
        row("p3", "a", 3.0, 1.0),  # correct
        row("p4", "a", 0.5, 0.5),  # tie: a judge saying P(A better) = 0.5
        row("p5", "b", 0.7, 0.7),  # tie
        row("p6", "b", 0.6, 0.4),  # wrong
    ]
    correct, ties = correctness(table(rows))
    assert correct.tolist() == [True, True, True, False, False, False]
    assert ties.tolist() == [False, False, False, True, True, False]
    c = aggregate(table(rows))["overall"]
    assert (c["n"], c["correct"], c["ties"]) == (6, 3, 2)
    assert c["accuracy"] == 0.5
    assert c["tie_half_accuracy"] == 0.666667
    assert c["tie_rate"] == 0.333333
    lo, hi = proportion_confint(3, 6, alpha=0.05, method="wilson")
    assert c["iid_pairs_ci_low"] == round(lo, 6) and c["iid_pairs_ci_high"] == round(hi, 6)
    # six disjoint pairs (12 clips): the variance is the iid one, p(1-p)/(N-1), so the design
    # effect is 6/5 and the interval Wilson's at n* = (6 / 1.2) (z / t_5)^2 (Korn & Graubard)
    lo, hi = _disjoint_interval(3, 6)
    assert c["ci_low"] == round(lo, 6) and c["ci_high"] == round(hi, 6)
    assert c["n_clips"] == 12 and c["design_effect"] == round(6 / 5, 6) and c["df"] == 5
    assert c["generalises_over"] == "clips" and c["n_systems"] == 0


def _disjoint_interval(k: int, n: int) -> tuple[float, float]:
    """The interval of k correct of n pairs sharing no clip, written out: deff = n / (n - 1) and
    df = n - 1 inside (0, n); deff = 1 and df = n - 1 at the boundary."""
    df = max(1, n - 1)
    deff = n / (n - 1) if 0 < k < n else 1.0
    n_star = n / deff * (stats.norm.ppf(0.975) / stats.t.ppf(0.975, df)) ** 2
    return proportion_confint(k / n * n_star, n_star, alpha=0.05, method="wilson")


def test_nan_score_raises_naming_pair() -> None:
    rows = [row("ok1", "a", 1.0, 0.0), row("bad-pair-7", "b", float("nan"), 0.3)]
    with pytest.raises(ValueError, match="bad-pair-7"):
        aggregate(table(rows))
    with pytest.raises(PredictionError, match="bad-pair-7"):
        correctness(table(rows))
    # A missing (null) score is the same failure, not a silent error.
    rows[1]["score_a"] = None
    with pytest.raises(ValueError, match="bad-pair-7"):
        aggregate(table(rows))


def test_bad_input_rejected() -> None:
    with pytest.raises(ValueError, match="score_b"):
        aggregate(table([row("p", "a", 1.0, 0.0)]).drop_columns(["score_b"]))
    with pytest.raises(ValueError, match="duplicate pair_id.*p"):
        aggregate(table([row("p", "a", 1.0, 0.0), row("p", "a", 1.0, 0.0)]))
    with pytest.raises(ValueError, match="'a' or 'b'"):
        aggregate(table([row("p", "x", 1.0, 0.0)]))
    with pytest.raises(TypeError):
        aggregate([row("p", "a", 1.0, 0.0)])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="both correct and tied"):
        cell(np.array([True]), np.array([True]), ClipDesign.of(np.array([0]), np.array([1])))
    same = table([row("p", "a", 1.0, 0.0)]).to_pandas()
    same.loc[0, "clip_b"] = same.loc[0, "clip_a"]
    with pytest.raises(ValueError, match="same clip on both sides.*p"):
        aggregate(same)


# 3. Wilson ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "n"), [(0, 1), (1, 1), (0, 10), (10, 10), (8, 10), (3, 6), (1, 3), (50, 100), (997, 1248)]
)
@pytest.mark.parametrize("confidence", [0.95, 0.9])
def test_wilson_matches_statsmodels(k: int, n: int, confidence: float) -> None:
    lo, hi = wilson_interval(k, n, confidence)
    ref_lo, ref_hi = proportion_confint(k, n, alpha=1 - confidence, method="wilson")
    assert lo == pytest.approx(ref_lo, abs=1e-12)
    assert hi == pytest.approx(ref_hi, abs=1e-12)
    assert 0.0 <= lo <= k / n <= hi <= 1.0


def test_wilson_hand_worked() -> None:
    # z = 1.959964, z^2 = 3.841459, z^2/n = 0.384146. For 8/10:
    # centre = (0.8 + 0.192073)/1.384146 = 0.716740,
    # half = 1.959964 * sqrt(0.016 + 0.009604)/1.384146 = 0.226578 -> (0.490162, 0.943318).
    lo, hi = wilson_interval(8, 10)
    assert (round(lo, 6), round(hi, 6)) == (0.490162, 0.943318)
    # For 0/10 the lower bound is exactly 0 and the upper z^2/(n + z^2) = 0.277533.
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and round(hi, 6) == 0.277533
    z2 = stats.norm.ppf(0.975) ** 2
    assert hi == pytest.approx(z2 / (10 + z2), abs=1e-12)
    lo, hi = wilson_interval(10, 10)
    assert hi == 1.0 and lo == pytest.approx(10 / (10 + z2), abs=1e-12)


def test_wilson_and_cell_edge_cases() -> None:
    with pytest.raises(ValueError):
        wilson_interval(0, 0)
    with pytest.raises(ValueError):
        wilson_interval(5, 4)
    none = np.array([], dtype=int)
    empty = cell(np.array([], dtype=bool), np.array([], dtype=bool), ClipDesign.of(none, none))
    assert empty == {
        **dict.fromkeys(CELL_KEYS),
        "n": 0,
        "n_clips": 0,
        "n_systems": 0,
        "n_contents": 0,
        "correct": 0,
        "ties": 0,
    }
    full = cell(np.ones(7, bool), np.zeros(7, bool), ClipDesign.of(np.arange(7), np.arange(7) + 1))
    assert set(full) == set(CELL_KEYS)
    assert full["accuracy"] == 1.0 and full["ci_high"] == 1.0
    ints = ("n", "n_clips", "n_systems", "n_contents", "correct", "ties")
    texts = ("generalises_over", "interval_note")
    assert all(type(full[k]) is int for k in ints)
    assert full["generalises_over"] == "clips" and full["interval_note"] == (
        "systems unknown: held fixed; contents unknown: held fixed"
    )
    assert all(type(full[k]) is float for k in CELL_KEYS if k not in ints + texts)


# 4. paired comparison ----------------------------------------------------------------------------


def _two_models(
    n: int, seed: int, n_clips: int = 0
) -> tuple[pa.Table, pa.Table, np.ndarray, np.ndarray]:
    """Two models on the same n pairs with known per-pair correctness.

    With `n_clips`, pairs are drawn among that many clips (so they share clips); else disjoint.
    """
    rng = np.random.default_rng(seed)
    ca = rng.random(n) < 0.75
    cb = rng.random(n) < 0.65
    rels = ("cross", "same_content", "same_system")
    clips = (
        rng.choice(list(itertools.combinations(range(n_clips), 2)), n, replace=False)
        if n_clips
        else None
    )
    rows_a, rows_b = [], []
    for i in range(n):
        chosen = "a" if rng.random() < 0.5 else "b"
        bin_ = int(rng.integers(0, 3))
        rel = rels[int(rng.integers(0, 3))]
        for rows, c in ((rows_a, ca[i]), (rows_b, cb[i])):
            hi_side_a = (chosen == "a") == bool(c)
            sa, sb = (0.8, 0.2) if hi_side_a else (0.2, 0.8)
            r = row(f"q{i:04d}", chosen, sa, sb, delta_bin=bin_, relation=rel)
            if clips is not None:
                r.update(clip_a=f"c{clips[i][0]}", clip_b=f"c{clips[i][1]}")
            rows.append(r)
    return table(rows_a), table(rows_b), ca, cb


def _reference_se(
    ca: np.ndarray, cb: np.ndarray, a: np.ndarray, b: np.ndarray
) -> tuple[float, float]:
    """(SE, df) from the definition: the dense crossed variance over clips, floored at Agresti &
    Min's pair-level variance (half a pair added to each discordant count)."""
    d = ca.astype(float) - cb.astype(float)
    n = d.size
    var, df = dense_crossed(d, [incidence(a, b)])
    if (d == d[0]).all():
        var, df = 0.0, max(1, n - 1)
    k_plus, k_minus = (d > 0).sum() + 0.5, (d < 0).sum() + 0.5
    floor = ((k_plus + k_minus) - (k_plus - k_minus) ** 2 / (n + 2)) / (n + 2) ** 2
    return math.sqrt(max(var, floor)), df


def _dominated(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether one clip holds more than half of the pairs (then no test: `DOMINANT_SHARE`)."""
    counts = np.unique(np.concatenate([a, b]), return_counts=True)[1]
    return bool(counts.max() > 0.5 * a.size)


def _expect_test(sub: dict, ca: np.ndarray, cb: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    if _dominated(a, b):
        assert sub["p_value"] is None and sub["ci_low"] is None
    else:
        assert sub["p_value"] == pytest.approx(_reference(ca, cb, a, b)[1], rel=1e-5)


def _reference(ca: np.ndarray, cb: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(difference, p) from the definition: t on the reference SE and df."""
    d = ca.astype(float) - cb.astype(float)
    se, df = _reference_se(ca, cb, a, b)
    return float(d.mean()), min(1.0, float(2 * stats.t.sf(abs(d.mean()) / se, df)))


def test_compare_against_the_definition_and_holm() -> None:
    for seed, n, n_clips in [(0, 40, 0), (1, 120, 30), (2, 15, 8), (3, 300, 60)]:
        ta, tb, ca, cb = _two_models(n, seed, n_clips)
        res = compare(ta, tb)
        a = np.array(ta.column("clip_a").to_pylist())
        b = np.array(ta.column("clip_b").to_pylist())
        b_ = int((ca & ~cb).sum())
        c_ = int((~ca & cb).sum())
        o = res["overall"]
        assert (o["a_only"], o["b_only"]) == (b_, c_)
        assert o["accuracy_a"] == round(ca.mean(), 6)
        assert o["accuracy_b"] == round(cb.mean(), 6)
        diff, p = _reference(ca, cb, a, b)
        assert o["difference"] == round(diff, 6)
        assert o["p_value"] == pytest.approx(p, rel=1e-5)
        assert o["ci_low"] <= o["difference"] <= o["ci_high"]
        tested = [o]
        bins = ta.column("delta_bin").to_numpy()
        for bin_, sub in res["by_bin"].items():
            m = bins == int(bin_)
            assert sub["n"] == int(m.sum())
            _expect_test(sub, ca[m], cb[m], a[m], b[m])
        rels = np.array(ta.column("relation").to_pylist())
        for rel, sub in res["by_relation"].items():
            m = rels == rel
            _expect_test(sub, ca[m], cb[m], a[m], b[m])
        tested += [
            *res["by_relation"].values(),
            *res["by_bin"].values(),
            *res["by_subset"].values(),
        ]
        tested = [c for c in tested if c["n"] and c["p_value"] is not None]
        # gatekeeping: overall is the primary test at α; the other cells are Holm-adjusted among
        # themselves and no adjusted p is below the primary's (nothing is claimable without it)
        assert o["p_holm"] == o["p_value"] and res["primary"] == "overall"
        secondary = tested[1:]
        assert res["family_size"] == len(secondary)
        ref = multipletests([c["p_value"] for c in secondary], method="holm")[1]
        want = [max(o["p_value"], r) for r in ref]
        assert [c["p_holm"] for c in secondary] == pytest.approx(want, rel=1e-5)


def test_compare_states_the_minimum_detectable_difference() -> None:
    """(t(0.975) + t(0.8)) × SE on g − 1 df, from scipy.stats and the definition's variance; and
    by simulation, a true difference of that size is detected about 80% of the time."""
    for seed, n, n_clips in [(1, 120, 30), (3, 300, 60)]:
        ta, tb, ca, cb = _two_models(n, seed, n_clips)
        res = compare(ta, tb)
        a = np.array(ta.column("clip_a").to_pylist())
        b = np.array(ta.column("clip_b").to_pylist())
        se, df = _reference_se(ca, cb, a, b)
        want = (stats.t.ppf(0.975, df) + stats.t.ppf(0.8, df)) * se
        mdd = res["minimum_detectable_difference"]
        assert (mdd["power"], mdd["alpha"]) == (0.8, 0.05)
        assert mdd["value"] == pytest.approx(want, abs=1e-6)
    # what the number means, by simulation with known truth: on n independent pairs where A is
    # right with probability 0.7 + δ/2 and B with 0.7 − δ/2, δ solving δ = (t + t) × SE(δ), the
    # two-sided test at 0.05 detects the difference in ~80% of replicates
    n, reps = 400, 2000
    t_sum = stats.t.ppf(0.975, n - 1) + stats.t.ppf(0.8, n - 1)
    delta = 0.1
    for _ in range(50):  # fixed point: SE depends on δ through the two accuracies
        pa_, pb_ = 0.7 + delta / 2, 0.7 - delta / 2
        delta = t_sum * math.sqrt((pa_ * (1 - pa_) + pb_ * (1 - pb_)) / n)
    rng = np.random.default_rng(5)
    ca = rng.random((reps, n)) < 0.7 + delta / 2
    cb = rng.random((reps, n)) < 0.7 - delta / 2
    d = ca.astype(float) - cb.astype(float)
    t = d.mean(axis=1) / np.sqrt(d.var(axis=1) / n)
    power = float((np.abs(t) > stats.t.ppf(0.975, n - 1)).mean())
    assert abs(power - 0.8) < 3 * math.sqrt(0.8 * 0.2 / reps) + 0.02, power


def test_compare_deterministic_and_order_free() -> None:
    ta, tb, _, _ = _two_models(300, seed=5, n_clips=50)
    r1 = compare(ta, tb)
    assert json.dumps(r1, sort_keys=True) == json.dumps(compare(ta, tb), sort_keys=True)
    perm = np.random.default_rng(1).permutation(ta.num_rows)
    assert json.dumps(r1, sort_keys=True) == json.dumps(compare(ta.take(perm), tb), sort_keys=True)


def test_compare_relation_filter() -> None:
    ta, tb, ca, cb = _two_models(200, seed=4, n_clips=40)
    res = compare(ta, tb, relation="same_system")
    rels = np.array(ta.column("relation").to_pylist())
    m = rels == "same_system"
    assert res["relation"] == "same_system"
    assert res["overall"]["n"] == int(m.sum())
    assert list(res["by_relation"]) == ["same_system"]
    assert res["by_relation"]["same_system"]["p_holm"] == res["overall"]["p_holm"]
    assert sum(c["n"] for c in res["by_bin"].values()) == int(m.sum())
    with pytest.raises(ValueError, match="no 'any' pairs.*cross, same_content, same_system"):
        compare(ta, tb, relation="any")


def test_identical_models() -> None:
    ta, _, _, _ = _two_models(120, seed=2)
    res = compare(ta, ta)["overall"]
    assert res["difference"] == 0.0
    assert (res["a_only"], res["b_only"], res["p_value"], res["p_holm"]) == (0, 0, 1.0, 1.0)
    # no pair differs: an interval around 0 of Agresti & Min's width, never a point
    half = stats.t.ppf(0.975, 119) * math.sqrt(1 / 122**2)
    assert res["ci_low"] == round(-half, 6) and res["ci_high"] == round(half, 6)


def test_compare_rejects_different_pairs() -> None:
    ta, tb, _, _ = _two_models(20, seed=0)
    with pytest.raises(ValueError, match="different pairs.*q0019"):
        compare(ta, tb.slice(0, 19))
    flipped = tb.to_pandas()
    flipped.loc[3, "chosen"] = "b" if flipped.loc[3, "chosen"] == "a" else "a"
    with pytest.raises(ValueError, match="chosen.*q0003"):
        compare(ta, flipped)


# 5. aggregate ------------------------------------------------------------------------------------

# Two tasks of different sizes. Outcome letters: c = correct, w = wrong, t = tie.
# (pid, task, relation, bin, dmos, outcome)
_SMALL = [
    ("x1", "x", "same_content", 0, 0.1, "c"),
    ("x2", "x", "same_content", 1, 0.4, "w"),
    ("x3", "x", "same_system", 1, 0.6, "c"),
    ("x4", "x", "cross", 2, 2.0, "c"),
    ("y01", "y", "same_content", 0, 0.15, "c"),
    ("y02", "y", "same_content", 0, 0.1, "w"),
    ("y03", "y", "same_content", 0, 0.3, "t"),
    ("y04", "y", "same_system", 1, 0.5, "c"),
    ("y05", "y", "same_system", 1, 0.8, "w"),
    ("y06", "y", "same_system", 1, 1.0, "c"),
    ("y07", "y", "cross", 2, 1.6, "c"),
    ("y08", "y", "cross", 2, 1.7, "w"),
    ("y09", "y", "cross", 2, 2.5, "c"),
    ("y10", "y", "cross", 2, 3.0, "w"),
]


def _small_table() -> pa.Table:
    rows = []
    for i, (pid, task, rel, b, dmos, outcome) in enumerate(_SMALL):
        chosen = "ab"[i % 2]
        hi, lo = {"c": (0.9, 0.1), "w": (0.1, 0.9), "t": (0.5, 0.5)}[outcome]
        sa, sb = (hi, lo) if chosen == "a" else (lo, hi)
        split = "test" if task == "y" or pid != "x4" else "dev"
        rows.append(
            row(pid, chosen, sa, sb, task=task, relation=rel, delta_bin=b, dmos=dmos, split=split)
        )
    return table(rows)


def _counts(c: dict) -> tuple[int, int, int]:
    return c["n"], c["correct"], c["ties"]


def _expect_cell(c: dict, n: int, k: int, t: int) -> None:
    """A cell equals the definitions applied to hand counts, with statsmodels' Wilson interval.

    The pairs here share no clip, so the clip-aware interval is Wilson's at n * (2n - 1) / (2n).
    """
    assert _counts(c) == (n, k, t)
    if n == 0:
        assert c["accuracy"] is None and c["ci_low"] is None
        return
    lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert c["accuracy"] == round(k / n, 6)
    assert c["iid_pairs_ci_low"] == pytest.approx(round(lo, 6), abs=1.1e-6)
    assert c["iid_pairs_ci_high"] == pytest.approx(round(hi, 6), abs=1.1e-6)
    if n == 1:  # each clip holds the one pair: no interval, and the cell says why
        assert c["ci_low"] is None and "one clip holds 1 of the 1 pairs" in c["interval_note"]
        return
    lo, hi = _disjoint_interval(k, n)
    assert c["ci_low"] == pytest.approx(round(lo, 6), abs=1.1e-6)
    assert c["ci_high"] == pytest.approx(round(hi, 6), abs=1.1e-6)
    assert c["n_clips"] == 2 * n
    assert c["tie_rate"] == round(t / n, 6)
    assert c["tie_half_accuracy"] == round((k + t / 2) / n, 6)


def test_aggregate_breakdowns_by_hand() -> None:
    res = aggregate(_small_table(), bins=4)
    assert list(res) == sorted(res)
    assert "by_group_subset" not in res  # subset column all null
    _expect_cell(res["overall"], 14, 8, 1)
    assert list(res["by_task"]) == ["x", "y"]
    _expect_cell(res["by_task"]["x"], 4, 3, 0)
    _expect_cell(res["by_task"]["y"], 10, 5, 1)
    # micro = 8/14; macro = (3/4 + 5/10)/2 = 0.625
    assert res["overall"]["accuracy"] == 0.571429
    macro = res["macro"]
    assert (macro["accuracy"], macro["n_tasks"]) == (0.625, 2)
    # tasks share no clips: var = (var_x + var_y) / 4, each p(1-p)/n* with n* the effective n of
    # its interval, (n - 1)(z / t_(n-1))^2 for pairs sharing no clip
    z = stats.norm.ppf(0.975)
    n_star = [(n - 1) * (z / stats.t.ppf(0.975, n - 1)) ** 2 for n in (4, 10)]
    var = (0.75 * 0.25 / n_star[0] + 0.5 * 0.5 / n_star[1]) / 4
    n_eff = 0.625 * 0.375 / var
    lo, hi = proportion_confint(0.625 * n_eff, n_eff, method="wilson")
    assert (macro["ci_low"], macro["ci_high"]) == (round(lo, 6), round(hi, 6))
    _expect_cell(res["by_split"]["dev"], 1, 1, 0)
    _expect_cell(res["by_split"]["test"], 13, 7, 1)

    _expect_cell(res["by_relation"]["same_content"], 5, 2, 1)
    _expect_cell(res["by_relation"]["same_system"], 4, 3, 0)
    _expect_cell(res["by_relation"]["cross"], 5, 3, 0)

    assert list(res["by_bin"]) == ["0", "1", "2", "3"]
    _expect_cell(res["by_bin"]["0"], 4, 2, 1)
    _expect_cell(res["by_bin"]["1"], 5, 3, 0)
    _expect_cell(res["by_bin"]["2"], 5, 3, 0)
    _expect_cell(res["by_bin"]["3"], 0, 0, 0)  # empty bin present

    assert list(res["by_subset"]) == sorted(FIXED_SUBSETS)
    _expect_cell(res["by_subset"]["dmos_lt_0_2"], 3, 2, 0)  # x1, y01, y02
    _expect_cell(res["by_subset"]["dmos_le_0_5"], 6, 3, 1)  # + x2, y03, y04 (0.5 included)
    _expect_cell(res["by_subset"]["dmos_gt_1_5"], 5, 3, 0)  # x4, y07..y10

    rb = res["by_relation_bin"]
    assert sorted(rb) == ["cross", "same_content", "same_system"]
    assert all(list(v) == ["0", "1", "2", "3"] for v in rb.values())
    _expect_cell(rb["same_content"]["0"], 4, 2, 1)
    _expect_cell(rb["same_content"]["1"], 1, 0, 0)
    _expect_cell(rb["same_content"]["2"], 0, 0, 0)
    _expect_cell(rb["same_system"]["1"], 4, 3, 0)
    _expect_cell(rb["same_system"]["0"], 0, 0, 0)
    _expect_cell(rb["cross"]["2"], 5, 3, 0)
    _expect_cell(rb["cross"]["3"], 0, 0, 0)

    # Without `bins`, only the bins present appear.
    assert list(aggregate(_small_table())["by_bin"]) == ["0", "1", "2"]
    with pytest.raises(ValueError, match="delta_bin"):
        aggregate(_small_table(), bins=2)


def test_aggregate_group_subset_and_pandas_input() -> None:
    rows = [
        row("s1", "a", 1.0, 0.0, subset="track1"),
        row("s2", "a", 0.0, 1.0, subset="track1"),
        row("s3", "b", 0.0, 1.0, subset="track2"),
        row("s4", "b", 0.0, 1.0),  # no subset: in overall, not in by_group_subset
    ]
    res = aggregate(table(rows))
    assert list(res["by_group_subset"]) == ["track1", "track2"]
    _expect_cell(res["by_group_subset"]["track1"], 2, 1, 0)
    _expect_cell(res["by_group_subset"]["track2"], 1, 1, 0)
    _expect_cell(res["overall"], 4, 3, 0)
    assert aggregate(table(rows).to_pandas()) == res
    assert aggregate(pd.DataFrame(rows)) == res


def test_aggregate_empty_table() -> None:
    res = aggregate(table([]), bins=2)
    assert res["overall"]["n"] == 0 and res["overall"]["accuracy"] is None
    assert res["macro"] == {"accuracy": None, "ci_low": None, "ci_high": None, "n_tasks": 0}
    assert list(res["by_bin"]) == ["0", "1"]


# 6. byte stability -------------------------------------------------------------------------------


def test_results_byte_stable() -> None:
    rng = np.random.default_rng(4)
    mos = rng.permutation(25) * 0.13 + 1.0
    scores = np.round(rng.normal(size=25), 1)  # coarse scores, so ties occur
    big = all_pairs_table(mos, scores, rng)
    bins = np.minimum((big.column("delta_mos").to_numpy() / 0.7).astype(int), 4)
    field = pa.field("delta_bin", pa.int16(), nullable=False)
    big = big.set_column(big.schema.get_field_index("delta_bin"), field, pa.array(bins, pa.int16()))
    pred = pa.concat_tables([big, _small_table()])
    dumps = json.dumps(aggregate(pred, bins=5), sort_keys=True)
    assert json.dumps(aggregate(pred, bins=5), sort_keys=True) == dumps
    for seed in range(3):
        perm = np.random.default_rng(seed).permutation(pred.num_rows)
        assert json.dumps(aggregate(pred.take(perm), bins=5), sort_keys=True) == dumps
    assert json.dumps(aggregate(pred.to_pandas(), bins=5), sort_keys=True) == dumps
    parsed = json.loads(dumps)
    assert parsed["overall"]["ties"] > 0
    assert all(
        v is None or isinstance(v, str) or isinstance(v, int | float) and math.isfinite(v)
        for v in parsed["overall"].values()
    )


def _units_table(systems: int, contents: int, seed: int = 0) -> pa.Table:
    """Pairs of a systems × contents listening test with their unit ids, a noisy model."""
    rng = np.random.default_rng(seed)
    clips = [(s, c) for s in range(systems) for c in range(contents)]
    quality = {k: rng.normal() for k in clips}
    rows = []
    for i, (x, y) in enumerate(itertools.combinations(clips, 2)):
        if rng.random() > 0.5:
            continue
        chosen = "a" if quality[x] > quality[y] else "b"
        r = row(
            f"p{i:05d}", chosen, quality[x] + rng.normal(0, 0.5), quality[y] + rng.normal(0, 0.5)
        )
        r.update(clip_a=f"s{x[0]}c{x[1]}", clip_b=f"s{y[0]}c{y[1]}")
        r.update(
            system_a=f"s{x[0]}", system_b=f"s{y[0]}", content_a=f"c{x[1]}", content_b=f"c{y[1]}"
        )
        rows.append(r)
    return table(rows)


def test_each_cell_says_what_its_interval_generalises_over() -> None:
    """8 systems: over clips, systems and contents; 4: systems held fixed, and the cell says so
    in its note and the report's scope line; the systems-fixed interval is always there."""
    from benchmark.results.report import interval_scope

    many = aggregate(_units_table(8, 10))["overall"]
    assert many["generalises_over"] == "clips, systems, contents" and many["interval_note"] is None
    assert (many["n_systems"], many["n_contents"], many["df"]) == (8, 10, many["df"])
    assert many["ci_low_systems_fixed"] is not None
    few = aggregate(_units_table(4, 10))
    o = few["overall"]
    assert o["generalises_over"] == "clips, contents"
    assert o["interval_note"] == (
        "4 systems: too few to generalise over new systems (fewer than 8), held fixed"
    )
    scope = interval_scope(aggregate(_units_table(8, 10)))
    assert scope.startswith("95% CI: generalises over new clips, systems, contents (80 clips, ")
    assert "8 systems: the interval is wide by design" in scope
    assert "4 systems: too few" in interval_scope(few)


def _comp(diff: float, low: float, high: float, p: float | None, cells: dict | None = None) -> dict:
    overall = {"n": 900, "difference": diff, "ci_low": low, "ci_high": high, "p_value": p}
    if p is None:
        overall |= {"ci_low": None, "ci_high": None, "interval_note": "system s1 in 60% of pairs"}
    return {
        "interval": {"confidence": 0.95},
        "alpha": 0.05,
        "overall": overall,
        "by_relation": cells or {},
        "minimum_detectable_difference": {"value": 0.061, "power": 0.8, "alpha": 0.05},
    }


def test_the_comparison_verdict_says_who_wins_or_that_no_one_does() -> None:
    """`mosrm compare`'s last line, by hand: the primary test decides; a secondary cell is named
    only when its gatekept Holm p holds; no significance prints the detectable difference."""
    from benchmark.results.report import comparison_verdict

    won = _comp(
        0.062,
        0.021,
        0.103,
        0.003,
        {"cross": {"p_holm": 0.01}, "same_system": {"p_holm": 0.2}},
    )
    assert comparison_verdict("A", "B", won) == (
        "verdict: A better than B overall: A−B = +6.2 [+2.1, +10.3] points (95% CI), "
        "p = 0.003; also in cross (Holm, gatekept)"
    )
    lost = _comp(-0.05, -0.08, -0.02, 0.00001)
    assert comparison_verdict("A", "B", lost) == (
        "verdict: B better than A overall: A−B = -5.0 [-8.0, -2.0] points (95% CI), p < 0.0001"
    )
    tie = _comp(0.02, -0.01, 0.05, 0.21)
    assert comparison_verdict("A", "B", tie) == (
        "verdict: A and B not distinguishable overall: +2.0 [-1.0, +5.0] points (95% CI), "
        "p = 0.21; this test detects ±6.1 points with 80% power"
    )
    assert comparison_verdict("A", "B", _comp(0.1, 0, 0, None)) == (
        "verdict: no test overall (system s1 in 60% of pairs)"
    )
