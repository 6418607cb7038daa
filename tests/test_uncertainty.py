"""The clip-aware interval and paired test: exact against brute force, calibrated against chance.

Calibration is the acceptance test of the whole uncertainty story: on pair sets shaped like the
demo's test split (256 clips, 3,000 pairs over three relations, so each clip is in ~23 pairs), a
random scorer is chance by construction, so a 95% interval must cover 0.5 in ~95% of seeds, and a
test between two independent random scorers must reject at 5% in ~5% of seeds. With 1,000 seeds the
binomial standard error of a coverage is ~0.7 points, so the 92.5–97.5% band is ±3.5 SE: a correct
estimator does not fail it by chance, and the pair-level Wilson interval (~58% here) cannot pass.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import sparse, special, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from benchmark.data.tables import CLIP_SCHEMA, from_rows
from benchmark.pairs.build import build_pairs
from benchmark.stats.uncertainty import (
    ClipDesign,
    accuracy_interval,
    clip_variance,
    difference_test,
    holm,
    wilson,
)

SEEDS = 1000


def brute_variance(values: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """The definition, term by term: g/(g-1) * sum over ordered pairs of pairs sharing a clip."""
    n = values.size
    e = values - values.mean()
    g = len(set(a.tolist()) | set(b.tolist()))
    total = 0.0
    for p in range(n):
        for q in range(n):
            if {a[p], b[p]} & {a[q], b[q]}:
                total += e[p] * e[q]
    return g / (g - 1) * total / n**2


def random_design(rng: np.random.Generator, n_clips: int, n_pairs: int) -> tuple[np.ndarray, ...]:
    pairs = rng.choice(list(itertools.combinations(range(n_clips), 2)), n_pairs, replace=False)
    return pairs[:, 0], pairs[:, 1]


@pytest.mark.parametrize("seed", range(4))
def test_closed_form_equals_the_double_sum(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = random_design(rng, n_clips=12, n_pairs=30)
    design = ClipDesign.of(a, b)
    for values in (rng.random(30) < 0.6, rng.integers(-1, 2, 30), rng.normal(size=30)):
        v = values.astype(np.float64)
        assert abs(float(clip_variance(v, design)) - brute_variance(v, a, b)) <= 1e-12
    # string keys and a subset view give the same numbers as re-building from scratch
    names = np.array([f"clip{i:02d}" for i in range(12)], dtype=object)
    v = rng.normal(size=30)
    assert float(clip_variance(v, ClipDesign.of(names[a], names[b]))) == pytest.approx(
        float(clip_variance(v, design)), abs=1e-15
    )
    mask = rng.random(30) < 0.5
    sub = design.subset(mask)
    assert sub.n_clips == len(set(a[mask].tolist()) | set(b[mask].tolist()))
    assert (
        abs(float(clip_variance(v[mask], sub)) - brute_variance(v[mask], a[mask], b[mask])) <= 1e-12
    )


def test_disjoint_pairs_reduce_to_the_binomial_variance() -> None:
    """No clip shared: var = g/(g-1) * p(1-p)/N with g = 2N, i.e. the iid variance up to 2N/(2N-1)."""
    n = 40
    a, b = np.arange(n), np.arange(n, 2 * n)
    c = np.arange(n) % 4 != 0  # p = 0.75
    var = float(clip_variance(c, ClipDesign.of(a, b)))
    assert var == pytest.approx(2 * n / (2 * n - 1) * 0.75 * 0.25 / n, rel=1e-12)
    est = accuracy_interval(c, ClipDesign.of(a, b))
    lo, hi = proportion_confint(30 * 79 / 80, 40 * 79 / 80, method="wilson")
    assert (float(est["low"]), float(est["high"])) == pytest.approx((lo, hi), abs=1e-12)


def test_interval_is_wilson_at_the_effective_n() -> None:
    rng = np.random.default_rng(3)
    a, b = random_design(rng, n_clips=15, n_pairs=60)
    design = ClipDesign.of(a, b)
    c = rng.random(60) < 0.7
    est = accuracy_interval(c, design)
    p = c.mean()
    var = brute_variance(c.astype(float), a, b)
    n_eff = 60 / max(1.0, var / (p * (1 - p) / 60))
    lo, hi = proportion_confint(p * n_eff, n_eff, method="wilson")
    assert float(est["n_eff"]) == pytest.approx(n_eff, rel=1e-12)
    assert (float(est["low"]), float(est["high"])) == pytest.approx((lo, hi), abs=1e-12)


def test_silent_variance_falls_back_to_disjoint_pairs() -> None:
    # every pair right: no variance to estimate; 9 clips hold at most 4 disjoint pairs
    a, b = np.array([0, 0, 1, 2, 3, 5, 6, 7]), np.array([1, 2, 3, 4, 5, 6, 7, 8])
    est = accuracy_interval(np.ones(8, bool), ClipDesign.of(a, b))
    assert float(est["n_eff"]) == 4.5
    assert float(est["high"]) == 1.0
    assert float(est["low"]) == pytest.approx(4.5 / (4.5 + stats.norm.ppf(0.975) ** 2), abs=1e-12)
    # a star (one clip in every pair): the estimate is 0 and the fallback applies too
    star = ClipDesign.of(np.zeros(6, int), np.arange(1, 7))
    est = accuracy_interval(np.array([1, 1, 0, 1, 0, 1], bool), star)
    assert float(est["n_eff"]) == 3.5


def test_difference_test_against_scipy() -> None:
    rng = np.random.default_rng(8)
    a, b = random_design(rng, n_clips=20, n_pairs=80)
    design = ClipDesign.of(a, b)
    d = (rng.random(80) < 0.7).astype(int) - (rng.random(80) < 0.5).astype(int)
    res = difference_test(d, design)
    var = max(brute_variance(d.astype(float), a, b), d.var() / 80)
    se = np.sqrt(var)
    t = d.mean() / se
    assert float(res["se"]) == pytest.approx(se, rel=1e-12)
    assert float(res["p"]) == pytest.approx(2 * stats.t.sf(abs(t), 19), rel=1e-10)
    q = stats.t.ppf(0.975, 19)
    assert float(res["low"]) == pytest.approx(d.mean() - q * se, abs=1e-12)
    # identical models: no difference, p = 1; one model wins every pair: sign test over units
    zero = difference_test(np.zeros(80), design)
    assert float(zero["p"]) == 1.0 and float(zero["low"]) == float(zero["high"]) == 0.0
    won = difference_test(np.ones(80), design)
    assert float(won["p"]) == 2.0 ** (1 - 10)  # 20 clips: 10 disjoint pairs


def test_quantiles_are_scipy_stats_bit_for_bit() -> None:
    """`uncertainty` calls scipy.special (a far lighter import); scipy.stats is the reference."""
    from benchmark.stats.uncertainty import z_value

    rng = np.random.default_rng(3)
    for confidence in [0.5, 0.8, 0.9, 0.95, 0.99, 0.999, *rng.uniform(0.01, 0.999, 50)]:
        assert z_value(confidence) == float(stats.norm.ppf(0.5 + confidence / 2.0))
    for n_clips in (2, 3, 7, 40, 300):
        a, b = random_design(rng, n_clips, n_pairs=min(3 * n_clips, n_clips * (n_clips - 1) // 2))
        design = ClipDesign.of(a, b)
        d = (rng.random((40, a.size)) < 0.6).astype(int) - (rng.random((40, a.size)) < 0.5)
        res = difference_test(d, design, confidence=0.9)
        df = max(1, design.n_clips - 1)
        se = res["se"]
        t = np.abs(res["mean"]) / np.where(se > 0, se, 1.0)
        want_p = np.where(se > 0, 2.0 * stats.t.sf(t, df), 1.0)
        constant = (se <= 0) & (res["mean"] != 0)
        assert np.array_equal(res["p"][~constant], np.minimum(want_p, 1.0)[~constant])
        q = stats.t.ppf(0.95, df)
        assert np.array_equal(res["low"], np.clip(res["mean"] - q * se, -1.0, 1.0))
        assert np.array_equal(res["high"], np.clip(res["mean"] + q * se, -1.0, 1.0))


def test_known_z_is_scipy_to_the_last_bit() -> None:
    from benchmark.stats.uncertainty import _Z

    assert _Z  # the 95% interval's z, used by every result
    for confidence, z in _Z.items():
        assert z == float(special.ndtri(0.5 + confidence / 2.0))
        assert z == float(stats.norm.ppf(0.5 + confidence / 2.0))


def _sparse_variance(values: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The estimator as first written, on a scipy.sparse incidence matrix (the reference for
    `clip_sums`, which must add in the same order: results stay byte-identical)."""
    _, codes = np.unique(np.concatenate([a, b]), return_inverse=True)
    n, g = a.size, int(codes.max()) + 1
    m = sparse.csr_matrix((np.ones(2 * n), (np.tile(np.arange(n), 2), codes.ravel())), (n, g))
    e = values - values.mean(axis=1, keepdims=True)
    per_clip = np.asarray((m.T @ e.T).T)
    return g / (g - 1) * ((per_clip * per_clip).sum(axis=1) - (e * e).sum(axis=1)) / (n * n)


@pytest.mark.parametrize("replicates", [1, 5, 300])
def test_clip_sums_are_the_sparse_product_bit_for_bit(replicates: int) -> None:
    rng = np.random.default_rng(replicates)
    for n_clips, n_pairs in ((3, 3), (12, 40), (256, 3000)):
        a, b = random_design(rng, n_clips, n_pairs)
        design = ClipDesign.of(a, b)
        mask = rng.random(n_pairs) < 0.4
        shape = (replicates, n_pairs)
        for values in (rng.random(shape) < 0.6, rng.integers(-1, 2, shape), rng.normal(size=shape)):
            v = values.astype(np.float64)
            assert clip_variance(v, design).tobytes() == _sparse_variance(v, a, b).tobytes()
            one = np.asarray(clip_variance(v[0], design))
            assert one.tobytes() == _sparse_variance(v[:1], a, b)[0].tobytes()
            if mask.sum() > 1:
                sub = clip_variance(v[:, mask], design.subset(mask))
                assert sub.tobytes() == _sparse_variance(v[:, mask], a[mask], b[mask]).tobytes()


def test_holm_matches_statsmodels() -> None:
    rng = np.random.default_rng(0)
    for m in (1, 2, 7, 30):
        p = rng.random(m) ** 3
        p[: m // 3] = p[0]  # ties keep their order and their adjustment
        ref = multipletests(p, method="holm")[1]
        assert holm(p.tolist()) == pytest.approx(ref.tolist(), abs=1e-15)
    assert holm([]) == []


def test_wilson_is_vectorised_and_bounded() -> None:
    p = np.array([0.0, 0.3, 1.0])
    lo, hi = wilson(p, np.array([5.0, 10.5, 7.0]), 1.96)
    assert lo[0] == 0.0 and hi[2] == 1.0 and (lo <= p).all() and (hi >= p).all()


# --- calibration -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_shaped() -> dict[str, np.ndarray]:
    """A demo-shaped test split: 8 sentences x 4 voices x 8 systems, MOS = mean of 8 votes."""
    rng = np.random.default_rng(2026)
    system_effect = rng.normal(0, 1, 8)
    rows = []
    for s, v, k in itertools.product(range(8), range(4), range(8)):
        votes = np.clip(
            np.rint(3 + system_effect[k] + rng.normal(0, 0.7) + rng.normal(0, 0.8, 8)), 1, 5
        )
        rows.append(
            {
                "clip_id": f"s{s}v{v}k{k}",
                "corpus": "demo-shaped",
                "split": "test",
                "audio_path": "x.wav",
                "mos": float(votes.mean()),
                "system_id": f"k{k}",
                "speaker_id": f"v{v}",
                "content_id": f"s{s}",
            }
        )
    clips = from_rows(rows, CLIP_SCHEMA)
    counts = {"test": {"same_content": 1000, "same_system": 1000, "cross": 1000}}
    pairs, _ = build_pairs(clips, task="t", relations=list(counts["test"]), counts=counts, seed=7)[
        "test"
    ]
    index = {c: i for i, c in enumerate(clips.column("clip_id").to_pylist())}
    a = np.array([index[c] for c in pairs.column("clip_a").to_pylist()])
    b = np.array([index[c] for c in pairs.column("clip_b").to_pylist()])
    first = np.array(pairs.column("chosen").to_pylist()) == "a"
    return {
        "a": a,
        "b": b,
        "chosen": np.where(first, a, b),
        "rejected": np.where(first, b, a),
        "bin": pairs.column("delta_bin").to_numpy(),
        "relation": np.array(pairs.column("relation").to_pylist()),
    }


def _random_correct(shape: dict[str, np.ndarray], offset: int) -> np.ndarray:
    """Strict correctness of 1,000 independently seeded random scorers: (SEEDS, pairs)."""
    scores = np.stack([np.random.default_rng(offset + s).random(256) for s in range(SEEDS)])
    return scores[:, shape["chosen"]] > scores[:, shape["rejected"]]


def _coverage(correct: np.ndarray, design: ClipDesign) -> float:
    est = accuracy_interval(correct, design)
    return float(((est["low"] <= 0.5) & (est["high"] >= 0.5)).mean())


def test_interval_covers_chance_for_a_random_scorer(demo_shaped) -> None:
    a, b = demo_shaped["a"], demo_shaped["b"]
    assert a.size == 3000 and len(set(a) | set(b)) == 256
    design = ClipDesign.of(a, b)
    correct = _random_correct(demo_shaped, offset=0)
    assert 0.925 <= _coverage(correct, design) <= 0.975
    # the pair-level Wilson interval, on the same seeds, under-covers badly (the bug this fixes)
    k = correct.sum(axis=1)
    lo, hi = proportion_confint(k, 3000, method="wilson")
    assert ((lo <= 0.5) & (hi >= 0.5)).mean() < 0.90
    # every relation and ΔMOS bin of the split is calibrated too (fewer pairs per clip there)
    for key in ("relation", "bin"):
        for value in np.unique(demo_shaped[key]):
            m = demo_shaped[key] == value
            assert 0.925 <= _coverage(correct[:, m], design.subset(m)) <= 0.975, (key, value)


def test_paired_test_holds_its_level_for_two_random_scorers(demo_shaped) -> None:
    design = ClipDesign.of(demo_shaped["a"], demo_shaped["b"])
    d = _random_correct(demo_shaped, offset=0).astype(np.int8) - _random_correct(
        demo_shaped, offset=SEEDS
    ).astype(np.int8)
    p = difference_test(d, design)["p"]
    assert (p < 0.05).mean() <= 0.065
    # and Holm over the cells `compare` reports (overall, 3 relations, 5 bins) keeps the family
    # error near 5%: a model is not "better on some bin" by chance
    cells = [np.ones(d.shape[1], bool)]
    cells += [demo_shaped["relation"] == r for r in np.unique(demo_shaped["relation"])]
    cells += [demo_shaped["bin"] == k for k in np.unique(demo_shaped["bin"])]
    ps = np.stack([difference_test(d[:, m], design.subset(m))["p"] for m in cells], axis=1)
    any_holm = np.array([min(holm(row.tolist())) < 0.05 for row in ps])
    assert any_holm.mean() <= 0.065
    assert (ps < 0.05).any(axis=1).mean() > 0.15  # unadjusted, some cell "wins" far too often
