"""The probes' numbers (`benchmark.stats.probe_stats`): sensitivity rows against a direct
computation with the harness's interval, monotonicity on constructed severity ladders, the strict
tie rule, flip rates by hand and on a loudness-hacked model, and the score shift."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from benchmark.stats import metrics
from benchmark.stats.probe_stats import (
    DIGITS,
    ScoreShift,
    degradation_accuracy,
    flip_rate,
    monotonicity,
    score_shift,
    sensitivity,
)
from benchmark.stats.uncertainty import ClipDesign, accuracy_interval


def test_digits_match_metrics():
    assert DIGITS == metrics.DIGITS


def snr_ladder(snr_db: list[float], sources: int = 60, seed: int = 0, clean_db: float = 30.0):
    """A model that estimates SNR (dB) with N(0, 5 dB) error scores each source clip (clean, 30
    dB) and one noisy copy per level; level 0 is the mildest."""
    rng = np.random.default_rng(seed)
    rows = {k: [] for k in ("clean", "degraded", "source", "probe", "family", "level")}
    for lv, snr in enumerate(snr_db):
        for s in range(sources):
            rows["clean"].append(clean_db + rng.normal(0, 5))
            rows["degraded"].append(snr + rng.normal(0, 5))
            rows["source"].append(f"src{s}")
            rows["probe"].append(f"noise@{snr:g}dB")
            rows["family"].append("noise")
            rows["level"].append(lv)
    return {k: np.asarray(v) for k, v in rows.items()}


def test_sensitivity_equals_direct_interval():
    d = snr_ladder([25.0, 20.0, 10.0])
    rows = sensitivity(d["clean"], d["degraded"], d["source"], d["probe"], d["family"], d["level"])
    assert [(r.family, r.level, r.probe) for r in rows] == [
        ("noise", 0, "noise@25dB"),
        ("noise", 1, "noise@20dB"),
        ("noise", 2, "noise@10dB"),
    ]
    degraded_key = np.array([f"{p}/{s}" for p, s in zip(d["probe"], d["source"], strict=True)])
    for row in rows:
        mask = d["level"] == row.level
        correct = d["clean"][mask] > d["degraded"][mask]
        direct = accuracy_interval(
            correct.astype(float), ClipDesign.of(d["source"][mask], degraded_key[mask])
        )
        assert row.cell.n == 60 and row.cell.hits == int(correct.sum())
        assert row.accuracy == direct.p == correct.mean()
        # the same design up to the order of its clips (float sums in another order: 1e-12)
        assert direct.low is not None and direct.high is not None
        assert row.cell.low == pytest.approx(direct.low, rel=1e-12)
        assert row.cell.high == pytest.approx(direct.high, rel=1e-12)
        assert row.cell.df == direct.df
        assert row.cell.design_effect == pytest.approx(direct.design_effect, rel=1e-12)
        out = row.as_json()
        assert (
            out["accuracy"] == round(correct.mean(), 6) and out["n_clips"] == 120
        )  # 60 sources + 60 copies
        assert out["ci_low"] == round(direct.low, 6)
        json.dumps(out)
    overall = degradation_accuracy(d["clean"], d["degraded"], d["source"])
    correct = d["clean"] > d["degraded"]
    direct = accuracy_interval(correct.astype(float), ClipDesign.of(d["source"], degraded_key))
    assert overall.cell.rate == direct.p and overall.cell.n == 180 and overall.cell.n_clips == 240
    assert overall.cell.low == pytest.approx(direct.low, rel=1e-12)
    assert overall.cell.high == pytest.approx(direct.high, rel=1e-12)


def test_source_clip_is_the_cluster():
    # 20 sources x 6 probes; the model is wrong on every copy of 4 sources: the errors cluster
    source = np.repeat([f"s{i}" for i in range(20)], 6)
    clean = np.where(np.isin(source, ["s0", "s1", "s2", "s3"]), 0.0, 1.0)
    overall = degradation_accuracy(clean, np.full(120, 0.5), source)
    assert overall.cell.rate == 0.8 and overall.cell.n_clips == 140
    assert overall.cell.design_effect > 4.0  # pairs as independent would read 1
    iid = accuracy_interval(
        (clean > 0.5).astype(float), ClipDesign.of(np.arange(120), 1000 + np.arange(120))
    )
    assert iid.design_effect < 1.01  # n/(n − 1) only
    assert overall.cell.low is not None and iid.low is not None and overall.cell.low < iid.low


def test_monotone_ladder_and_flagged_violation():
    d = snr_ladder([25.0, 20.0, 10.0])
    rows = sensitivity(d["clean"], d["degraded"], d["source"], d["probe"], d["family"], d["level"])
    assert [round(r.accuracy, 2) for r in rows] == sorted(round(r.accuracy, 2) for r in rows)
    assert rows[0].accuracy < rows[2].accuracy  # the ladder is not flat (else trivially monotone)
    (check,) = monotonicity(rows)
    assert check.monotone and check.violations == () and check.significant is False
    # a model whose SNR estimate wraps below 5 dB: the harshest level reads as the cleanest
    bad = snr_ladder([25.0, 20.0, 10.0, 0.0])
    bad["degraded"] = np.where(bad["level"] == 3, 90.0, bad["degraded"])
    rows = sensitivity(
        bad["clean"], bad["degraded"], bad["source"], bad["probe"], bad["family"], bad["level"]
    )
    (check,) = monotonicity(rows)
    assert not check.monotone
    assert [(v.low_level, v.high_level) for v in check.violations] == [(0, 3), (1, 3), (2, 3)]
    assert all(v.significant for v in check.violations) and check.significant is True
    out = check.as_json()
    assert out["monotone"] is False and out["significant_violation"] is True
    assert out["violations"][0]["accuracy_high_level"] == 0.0
    json.dumps(out)


def test_small_dip_is_a_violation_but_not_significant():
    # level 0: 9 of 10 right; level 1: 8 of 10 right; the intervals overlap
    clean = np.ones(20)
    degraded = np.zeros(20)
    degraded[[0, 10, 11]] = 2.0
    source = np.array([f"s{i}" for i in range(10)] * 2)
    level = np.repeat([0, 1], 10)
    probe = np.where(level == 0, "clip@0", "clip@1")
    family = np.full(20, "clip")
    rows = sensitivity(clean, degraded, source, probe, family, level)
    assert [r.accuracy for r in rows] == [0.9, 0.8]
    (check,) = monotonicity(rows)
    (v,) = check.violations
    assert (v.low_level, v.high_level, v.significant) == (0, 1, False)
    assert check.significant is False


def test_dominated_design_passes_none_through():
    # one source clip in every pair: no interval, so a violation cannot be judged
    clean = np.ones(8)
    degraded = np.array([0, 0, 0, 0, 0, 2, 2, 2], dtype=float)
    level = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    rows = sensitivity(
        clean, degraded, np.full(8, "only"), level.astype(str), np.full(8, "f"), level
    )
    assert rows[0].cell.low is None and rows[0].cell.high is None
    assert rows[0].as_json()["ci_low"] is None
    assert rows[0].as_json()["interval_note"] is not None
    (check,) = monotonicity(rows)
    assert not check.monotone and check.violations[0].significant is None
    assert check.significant is None


def test_ties_count_wrong_and_judges():
    clean = np.array([1.0, 1.0, 1.0, 1.0, 2.0, 2.0])
    degraded = np.array([0.0, 1.0, 1.0, 3.0, 1.0, 2.0])
    source = np.array(["a", "b", "c", "d", "e", "f"])
    level = np.zeros(6, dtype=int)
    family = np.full(6, "codec")
    probe = np.full(6, "codec@0")
    (row,) = sensitivity(clean, degraded, source, probe, family, level)
    assert (row.cell.hits, row.cell.ties, row.accuracy) == (2, 3, 2 / 6)
    out = row.as_json()
    assert out["correct"] == 2 and out["ties"] == 3 and out["tie_rate"] == 0.5
    prob = np.array([0.9, 0.5, 0.5, 0.1, 0.51, 0.5])
    (judged,) = sensitivity(None, None, source, probe, family, level, judge_prob=prob)
    assert (judged.cell.hits, judged.cell.ties) == (2, 3)
    with pytest.raises(ValueError, match="not both"):
        sensitivity(clean, degraded, source, probe, family, level, judge_prob=prob)
    with pytest.raises(ValueError, match="non-finite"):
        sensitivity(clean * np.nan, degraded, source, probe, family, level)
    with pytest.raises(ValueError, match="2 probes"):
        sensitivity(clean, degraded, source, np.array(["x", "y"] * 3), family, level)


def test_flip_rate_hand_worked():
    before = np.array([True, True, True, True, False, False])
    after = np.array([True, False, False, True, False, True])
    chosen = np.array(["c0", "c1", "c2", "c3", "c4", "c5"])
    rejected = np.array(["r0", "r1", "r2", "r3", "r4", "r5"])
    row = flip_rate(before, after, chosen, rejected)
    assert row.cell is not None
    assert row.flip_rate == 0.5 and row.cell.n == 4 and row.cell.hits == 2 and row.n_pairs == 6
    direct = accuracy_interval(
        np.array([0.0, 1.0, 1.0, 0.0]), ClipDesign.of(chosen[:4], rejected[:4])
    )
    assert (row.cell.low, row.cell.high) == (direct.low, direct.high)
    # the pairs wrong before are not in the denominator, whatever happens to them after
    other = flip_rate(before, np.array([True, False, False, True, True, False]), chosen, rejected)
    assert other.flip_rate == 0.5 and other.cell is not None and other.cell.n == 4
    out = row.as_json()
    assert out["flip_rate"] == 0.5 and out["flipped"] == 2 and out["n"] == 4
    json.dumps(out)
    none = flip_rate(np.zeros(6, bool), after, chosen, rejected)
    assert none.flip_rate is None and none.as_json()["ci_low"] is None
    assert none.as_json()["n"] == 0


def test_loudness_hack_flips_every_pair():
    """A model that scores loudness; the hack turns the rejected clip up 20 dB, so it always wins
    afterwards: every pair right before flips."""
    rng = np.random.default_rng(11)
    pairs = 140
    loud_chosen = rng.normal(-23, 4, pairs)
    loud_rejected = rng.normal(-23, 4, pairs)
    before = loud_chosen > loud_rejected
    after = loud_chosen > loud_rejected + 20.0
    assert not after.any()
    chosen = np.array([f"c{i}" for i in range(pairs)])
    rejected = np.array([f"r{i}" for i in range(pairs)])
    row = flip_rate(before, after, chosen, rejected)
    assert row.cell is not None and row.cell.n == int(before.sum()) >= 50
    assert row.flip_rate == 1.0
    assert row.cell.low is not None and row.cell.low > 0.8 and row.cell.high == 1.0


def test_score_shift():
    # the spread of [0, 2, 4] (ddof = 1) is exactly 2; after - before = 4 = 2 spreads
    before = np.array([1.0, -3.0, 0.5])
    assert score_shift(before, before + 4.0, np.array([0.0, 2.0, 4.0])) == 2.0
    rng = np.random.default_rng(3)
    ref = rng.normal(10, 7, 50)
    b = rng.normal(10, 7, 30)
    shift = rng.normal(0, 1, 30)
    shift += 2 * np.std(ref, ddof=1) - shift.mean()  # mean shift 2 spreads, not constant
    assert score_shift(b, b + shift, ref) == pytest.approx(2.0, rel=1e-12)
    flat = ScoreShift.of(b, b + 1.0, np.full(10, 3.0))
    assert math.isnan(flat.value or 0.0) and flat.reason is not None
    assert math.isnan(score_shift(b, b + 1.0, np.full(10, 3.0)))
    assert flat.as_json()["score_shift"] is None and flat.as_json()["reason"]
    judge = ScoreShift.judge(30)
    assert judge.value is None and judge.as_json()["score_shift"] is None
    json.dumps(ScoreShift.of(b, b + shift, ref).as_json())


def test_system_and_content_labels_give_the_default_crossed_interval() -> None:
    """With the sources' systems and contents (12 of each), the degradation and flip intervals
    are the harness's default ones: over new clips, systems and contents, and wider than the
    clip-only interval when errors cluster by system."""
    from benchmark.stats.probe_stats import degradation_accuracy, flip_rate

    rng = np.random.default_rng(5)
    n = 240
    source = np.array([f"c{i % 120}" for i in range(n)], dtype=object)
    system = [f"s{(i % 120) % 12}" for i in range(n)]
    content = [f"t{(i % 120) // 10}" for i in range(n)]
    bad = np.array([int(s[1:]) < 3 for s in system])  # three systems always lose to noise
    clean = np.where(bad, 0.0, 1.0) + 0.01 * rng.standard_normal(n)
    deg = np.full(n, 0.5)
    plain = degradation_accuracy(clean, deg, source).as_json()
    crossed = degradation_accuracy(clean, deg, source, system=system, content=content).as_json()
    assert plain["accuracy"] == crossed["accuracy"] == 0.75
    assert "systems" in crossed["generalises_over"] and "systems" not in plain["generalises_over"]
    assert crossed["ci_high"] - crossed["ci_low"] > plain["ci_high"] - plain["ci_low"]

    before = np.ones(n, dtype=bool)
    after = ~bad
    chosen = np.array([f"a{i}" for i in range(n)], dtype=object)
    rejected = np.array([f"b{i}" for i in range(n)], dtype=object)
    row = flip_rate(
        before, after, chosen, rejected, system=(system, system), content=(content, content)
    ).as_json()
    assert row["flip_rate"] == 0.25 and "systems" in row["generalises_over"]
