"""Best of N: hand-worked gains, the tie rule, skipped groups, the oracle and chance properties, the
calibration of the content-clustered interval, order-free subsets, judges' round robin and the
noise ceiling (`benchmark.stats.best_of_n`)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmark.stats import metrics
from benchmark.stats.best_of_n import (
    DIGITS,
    SKIP_EQUAL,
    SKIP_SMALL,
    SKIP_SUBSETS_EQUAL,
    best_of_n,
    best_of_n_judge,
    bon_ceiling,
    draw_subsets,
    judge_round_robin,
    pick_gain,
)


def mos_judge(mos: np.ndarray):
    def prefer(i: int, j: int) -> float:
        return 1.0 if mos[i] > mos[j] else 0.5 if mos[i] == mos[j] else 0.0

    return prefer


def test_digits_match_metrics():
    assert DIGITS == metrics.DIGITS


def test_hand_worked_gain_and_interval():
    # group "a": MOS 1, 2, 4, 5 (mean 3, max 5); the model picks MOS 4: (4 - 3) / (5 - 3) = 0.5
    # group "b": MOS 2, 4 (mean 3, max 4); the model picks MOS 2: (2 - 3) / (4 - 3) = -1
    mos = np.array([1.0, 2.0, 4.0, 5.0, 2.0, 4.0])
    scores = np.array([0.1, 0.2, 0.9, 0.3, 7.0, 1.0])
    content = np.array(["a", "a", "a", "a", "b", "b"])
    res = best_of_n(scores, mos, content, n=None, seed=0)
    assert res.per_group == {"a": 0.5, "b": -1.0}
    assert res.gain == -0.25
    # sd of (0.5, -1) = 0.75 * sqrt(2); t(1) is Cauchy: its 97.5% point is tan(0.475 pi)
    half = math.tan(0.475 * math.pi) * 0.75 * math.sqrt(2) / math.sqrt(2)
    assert res.df == 1
    assert res.sd == pytest.approx(0.75 * math.sqrt(2), rel=1e-12)
    assert res.ci_low == pytest.approx(-0.25 - half, rel=1e-9)
    assert res.ci_high == 1.0  # -0.25 + 9.5 capped at the most a group can gain
    assert res.groups == 2 and res.mean_group_size == 3.0
    out = res.as_json()
    assert out["gain"] == -0.25 and out["n"] is None and out["groups"] == 2


def test_tie_rule_is_the_expected_gain_over_tied_clips():
    mos = np.array([1.0, 2.0, 4.0, 5.0])  # mean 3, max 5
    # MOS 2 and 4 tie at the top: expected MOS 3, gain 0 (the first, MOS 2, would give -0.5)
    assert pick_gain(np.array([0.0, 9.0, 9.0, 0.0]), mos) == 0.0
    # MOS 1, 4, 5 tie: expected MOS 10/3, gain (10/3 - 3) / 2 = 1/6
    assert pick_gain(np.array([9.0, 0.0, 9.0, 9.0]), mos) == pytest.approx(1 / 6, rel=1e-12)
    # the row order does not matter
    assert pick_gain(np.array([9.0, 9.0, 9.0, 0.0]), mos[[3, 2, 0, 1]]) == pytest.approx(1 / 6)
    assert pick_gain(np.zeros(4), np.array([3.0, 3.0, 3.0, 3.0])) is None


def test_skipped_groups_hand_counted():
    # groups: "one" 1 clip, "eq" 3 equal MOS, "ok" 5 clips, "tri" 3 clips, "pair" 2 clips
    content = np.array(["one"] + ["eq"] * 3 + ["ok"] * 5 + ["tri"] * 3 + ["pair"] * 2)
    mos = np.array([3, 2, 2, 2, 1, 2, 3, 4, 5, 1, 2, 4, 1, 3], dtype=np.float64)
    keys = np.array([f"k{i:02d}" for i in range(mos.size)])
    whole = best_of_n(mos, mos, content, n=None, seed=0)
    assert whole.skipped == {SKIP_SMALL: 1, SKIP_EQUAL: 1, SKIP_SUBSETS_EQUAL: 0}
    assert whole.groups == 3 and set(whole.per_group) == {"ok", "tri", "pair"}
    assert whole.mean_group_size == (5 + 3 + 2) / 3
    four = best_of_n(mos, mos, content, n=4, seed=0, clip_key=keys)
    # with N = 4 only "ok" (5 clips) has enough clips; "eq" has 3 and is too small first
    assert four.skipped == {SKIP_SMALL: 4, SKIP_EQUAL: 0, SKIP_SUBSETS_EQUAL: 0}
    assert four.groups == 1 and four.gain == 1.0
    assert four.ci_low is None and four.ci_high is None and four.df is None  # G < 2
    # every subset of 4 drawn from MOS (2, 2, 2, 2, 3) is degenerate when it holds no 3
    mos2 = np.array([2.0, 2.0, 2.0, 2.0, 3.0, 1.0, 2.0, 3.0, 4.0])
    content2 = np.array(["d"] * 5 + ["e"] * 4)
    keys2 = np.array([f"c{i}" for i in range(9)])
    res = best_of_n(mos2, mos2, content2, n=4, seed=3, draws=40, clip_key=keys2)
    subsets = draw_subsets(content2, keys2, n=4, seed=3, draws=40)["d"]
    without = sum("c4" not in s for s in subsets)
    assert 0 < without < 40  # the seed draws both kinds (else this test would test nothing)
    assert res.degenerate_draws == without
    assert res.per_group["d"] == 1.0 and res.groups == 2
    only_equal = best_of_n(mos2[:4], mos2[:4], content2[:4], n=None, seed=0)
    assert only_equal.groups == 0 and only_equal.gain is None
    assert only_equal.as_json()["gain"] is None


def test_oracle_gain_is_exactly_one_and_constant_exactly_zero():
    rng = np.random.default_rng(5)
    content = np.repeat(np.arange(40), 7)
    mos = np.round(rng.uniform(1, 5, content.size), 1)  # coarse: ties at the top happen
    mos[:3] = 4.9  # and certainly once
    keys = np.array([f"clip-{i}" for i in range(mos.size)])
    for n in (None, 4):
        oracle = best_of_n(mos, mos, content, n=n, seed=1, clip_key=keys)
        assert oracle.groups == 40
        assert all(g == 1.0 for g in oracle.per_group.values())
        assert oracle.gain == 1.0
        flat = best_of_n(np.full(mos.size, 0.3), mos, content, n=n, seed=1, clip_key=keys)
        assert all(g == 0.0 for g in flat.per_group.values())
        assert flat.gain == 0.0


def test_random_pick_expectation_is_exactly_zero():
    # every clip of a group in turn gets the top score: the mean gain over those picks is 0
    mos = np.array([1.3, 4.1, 2.2, 3.7, 2.9])
    gains = []
    for top in range(mos.size):
        scores = np.zeros(mos.size)
        scores[top] = 1.0
        gain = pick_gain(scores, mos)
        assert gain is not None
        gains.append(gain)
    assert math.fsum(gains) == pytest.approx(0.0, abs=1e-12)
    assert max(gains) == 1.0  # and the best clip's pick is the oracle's


def test_random_scores_interval_covers_zero():
    """2,000 seeded replicates of 30 groups of 5 clips, MOS and scores independent normals, so the
    true expected gain is 0. The Monte Carlo standard error of a 95% coverage over 2,000
    replicates is sqrt(0.95 * 0.05 / 2000) = 0.0049, so 0.93-0.97 is about +-4 of them."""
    reps, groups, size = 2000, 30, 5
    rng = np.random.default_rng(20260)
    content = np.repeat(np.arange(groups), size)
    covered = 0
    gains = np.empty(reps)
    for r in range(reps):
        mos = rng.normal(3.0, 1.0, content.size)
        scores = rng.normal(size=content.size)
        res = best_of_n(scores, mos, content, n=None, seed=r)
        assert res.ci_low is not None and res.ci_high is not None and res.gain is not None
        covered += res.ci_low <= 0.0 <= res.ci_high
        gains[r] = res.gain
    assert 0.93 <= covered / reps <= 0.97
    mc_error = gains.std(ddof=1) / math.sqrt(reps)  # ~0.003
    assert abs(gains.mean()) < 3 * mc_error


def test_subsets_are_order_free_and_seeded():
    rng = np.random.default_rng(2)
    content = np.repeat([f"utt{i}" for i in range(12)], 8)
    keys = np.array([f"sys{i % 8}/utt{i // 8}" for i in range(content.size)])
    mos = rng.uniform(1, 5, content.size)
    scores = rng.normal(size=content.size)
    perm = rng.permutation(content.size)
    a = draw_subsets(content, keys, n=4, seed=7)
    b = draw_subsets(content[perm], keys[perm], n=4, seed=7)
    assert a == b
    assert all(len(v) == 32 and all(len(s) == 4 for s in v) for v in a.values())
    assert len({s for v in a.values() for s in v}) > 12  # draws differ within groups
    assert draw_subsets(content, keys, n=4, seed=8) != a
    ra = best_of_n(scores, mos, content, n=4, seed=7, clip_key=keys)
    rb = best_of_n(scores[perm], mos[perm], content[perm], n=4, seed=7, clip_key=keys[perm])
    assert ra.per_group == rb.per_group and ra.gain == rb.gain
    assert best_of_n(scores, mos, content, n=4, seed=8, clip_key=keys).gain != ra.gain
    with pytest.raises(ValueError, match="clip_key"):
        best_of_n(scores, mos, content, n=4, seed=7)


def test_round_robin_copeland_scores_and_cost():
    mos = np.array([3.0, 1.0, 4.0, 1.0, 5.0])
    calls: list[tuple[int, int]] = []

    def prefer(i: int, j: int) -> float:
        calls.append((i, j))
        return mos_judge(mos)(i, j)

    scores = judge_round_robin(prefer, [0, 1, 2, 3, 4])
    # wins: 3.0 beats two 1.0s; 1.0s tie each other (0.5 each); 4.0 beats three; 5.0 beats all
    assert scores.tolist() == [2.0, 0.5, 3.0, 0.5, 4.0]
    assert len(calls) == 5 * 4 // 2 and len(set(calls)) == len(calls)
    again = judge_round_robin(mos_judge(mos), [4, 2, 3, 0, 1])
    assert again.tolist() == [4.0, 3.0, 0.5, 2.0, 0.5]
    with pytest.raises(ValueError, match="probability"):
        judge_round_robin(lambda i, j: 1.5, [0, 1])


def test_judge_best_of_n():
    rng = np.random.default_rng(9)
    content = np.repeat(np.arange(25), 6)
    mos = np.round(rng.uniform(1, 5, content.size), 1)
    keys = np.arange(content.size)
    for n in (None, 4):
        good = best_of_n_judge(mos_judge(mos), mos, content, n=n, seed=0, clip_key=keys)
        assert good.groups == 25 and good.gain == 1.0
        coin = best_of_n_judge(lambda i, j: 0.5, mos, content, n=n, seed=0, clip_key=keys)
        assert coin.gain == 0.0
    # a judge agreeing with a scalar score gives that score's result
    scores = rng.normal(size=content.size)
    as_judge = best_of_n_judge(mos_judge(scores), mos, content, n=4, seed=1, clip_key=keys)
    assert (
        as_judge.per_group == best_of_n(scores, mos, content, n=4, seed=1, clip_key=keys).per_group
    )
    # each unordered pair is asked once however many subsets hold it
    asked: list[tuple[int, int]] = []

    def counting(i: int, j: int) -> float:
        asked.append((i, j))
        return 0.5

    best_of_n_judge(counting, mos, content, n=4, seed=0, clip_key=keys)
    assert len(asked) == len(set(asked)) <= 25 * 15


def test_bon_ceiling():
    rng = np.random.default_rng(4)
    content = np.repeat(np.arange(40), 6)
    mos = rng.uniform(1, 5, content.size)
    keys = np.array([f"c{i}" for i in range(mos.size)])
    n_ratings = np.full(mos.size, 20.0)
    quiet = bon_ceiling(mos, content, np.full(mos.size, 1e-6), n_ratings, n=None, seed=0)
    assert quiet.gain == 1.0 and quiet.low == 1.0 and quiet.reason is None
    noisy = bon_ceiling(mos, content, np.full(mos.size, 1.5), n_ratings, n=4, seed=0, clip_key=keys)
    assert noisy.gain is not None and noisy.low is not None and noisy.high is not None
    assert 0.3 < noisy.low <= noisy.gain <= noisy.high < 1.0
    louder = bon_ceiling(
        mos, content, np.full(mos.size, 6.0), n_ratings, n=4, seed=0, clip_key=keys
    )
    assert louder.gain is not None and louder.gain < noisy.gain
    perm = rng.permutation(mos.size)
    shuffled = bon_ceiling(
        mos[perm],
        content[perm],
        np.full(mos.size, 1.5),
        n_ratings,
        n=4,
        seed=0,
        clip_key=keys[perm],
    )
    assert shuffled.gain == pytest.approx(noisy.gain, rel=1e-12)
    std = np.full(mos.size, 1.0)
    std[5] = np.nan
    unknown = bon_ceiling(mos, content, std, n_ratings, n=None, seed=0)
    assert unknown.gain is None and unknown.reason is not None and "1 of the 240" in unknown.reason
    zero = bon_ceiling(
        mos, content, np.ones(mos.size), np.where(content == 3, 0, 20), n=None, seed=0
    )
    assert zero.gain is None and "6 of the 240" in (zero.reason or "")
    assert zero.as_json()["gain"] is None
