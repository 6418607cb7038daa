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


def _kg(p: float, n: int, var: float, df: float, confidence: float = 0.95) -> tuple[float, float]:
    """Korn & Graubard's interval written independently: statsmodels' Wilson at n* = (N / deff)
    (z / t_df)^2."""
    binom = p * (1 - p) / n
    deff = max(1.0, var / binom) if binom > 0 else 1.0
    z = stats.norm.ppf(0.5 + confidence / 2)
    n_star = n / deff * (z / stats.t.ppf(0.5 + confidence / 2, df)) ** 2
    return proportion_confint(p * n_star, n_star, alpha=1 - confidence, method="wilson")


def test_disjoint_pairs_reduce_to_the_binomial_variance() -> None:
    """No clip shared: var = g/(g-1) * p(1-p)/N with g = 2N, i.e. the iid variance up to 2N/(2N-1);
    the interval's variance is the unbiased iid one, p(1-p)/(N-1), on N - 1 df."""
    n = 40
    a, b = np.arange(n), np.arange(n, 2 * n)
    c = np.arange(n) % 4 != 0  # p = 0.75
    var = float(clip_variance(c, ClipDesign.of(a, b)))
    assert var == pytest.approx(2 * n / (2 * n - 1) * 0.75 * 0.25 / n, rel=1e-12)
    est = accuracy_interval(c, ClipDesign.of(a, b))
    assert est.variance == pytest.approx(0.75 * 0.25 / (n - 1), rel=1e-9)
    assert est.df == n - 1 and est.estimand.label == "clips"
    assert (est.low, est.high) == pytest.approx(_kg(0.75, n, est.variance, n - 1), abs=1e-12)


def test_interval_is_korn_graubard_wilson() -> None:
    rng = np.random.default_rng(3)
    a, b = random_design(rng, n_clips=15, n_pairs=60)
    design = ClipDesign.of(a, b)
    c = rng.random(60) < 0.7
    est = accuracy_interval(c, design)
    p = c.mean()
    assert est.p == p and est.design_effect == max(1.0, est.variance / (p * (1 - p) / 60))
    assert (est.low, est.high) == pytest.approx(_kg(p, 60, est.variance, est.df), abs=1e-12)


def test_score_interval_is_monotone_for_every_k() -> None:
    """For a fixed design effect and df, every k = 0..N: bounds nondecreasing in k, inside [0, 1],
    of positive width, holding k / N (issue 23 item 4)."""
    from benchmark.stats.uncertainty import score_interval

    for n, deff, df in ((600, 1.0, 599.0), (600, 3.7, 7.0), (3000, 2.2, 31.0), (25, 1.4, 9.0)):
        bounds = np.array([score_interval(k / n, n, deff, df) for k in range(n + 1)])
        low, high = bounds[:, 0], bounds[:, 1]
        assert (np.diff(low) > 0).all() and (np.diff(high) > 0).all()
        assert low[0] == 0.0 and high[-1] == 1.0 and (high - low > 0).all()
        k = np.arange(n + 1) / n
        assert (low <= k).all() and (k <= high).all()
        assert (low, high) == (pytest.approx(low[::-1] * 0 + 1 - high[::-1]), pytest.approx(high))


def test_a_perfect_cell_is_never_bounded_below_one_error() -> None:
    """Where the outcome says nothing about clustering (p = 0 or 1) deff = 1 and df = N - 1
    (Korn & Graubard), the most a cell of N pairs can claim, so N/N never gets a lower bound below
    (N-1)/N's wherever the one error falls (issue 23: 600/600 gave 0.963, 599/600 gave 0.991;
    3000/3000 gave [0.971, 1] and 2999/3000 [0.998, 0.9999])."""
    rng = np.random.default_rng(5)
    for n_pairs, n_clips in ((600, 120), (3000, 256)):
        a, b = random_design(rng, n_clips, n_pairs)
        system = ((a % 8).tolist(), (b % 8).tolist())
        content = ((a // 8).tolist(), (b // 8).tolist())
        design = ClipDesign.of(a, b, system, content)
        every = accuracy_interval(np.ones(n_pairs, bool), design)
        assert every.high == 1.0 and every.df == n_pairs - 1 and every.design_effect == 1.0
        assert (every.low, every.high) == pytest.approx(
            _kg(1.0, n_pairs, 0.0, n_pairs - 1), abs=1e-12
        )
        none = accuracy_interval(np.zeros(n_pairs, bool), design)
        assert none.low == 0.0 and none.high == pytest.approx(1 - every.low, abs=1e-12)
        for wrong in rng.choice(n_pairs, 60, replace=False):
            c = np.ones(n_pairs, bool)
            c[wrong] = False
            iv = accuracy_interval(c, design)
            assert iv.low < every.low and 0 < iv.high - iv.low and iv.low < iv.p < iv.high
            c = ~c
            iv = accuracy_interval(c, design)
            assert iv.high > none.high and iv.low < iv.p < iv.high


def test_a_star_design_gets_no_interval_never_a_zero_variance() -> None:
    """Every pair holds clip 0: that clip's effect is in every pair and no cell-level estimate
    can include it (the old estimator reported 0 and covered 0.41-0.49)."""
    star = ClipDesign.of(np.zeros(500, int), np.arange(1, 501))
    rng = np.random.default_rng(1)
    iv = accuracy_interval(rng.random(500) < 0.7, star)
    assert iv.low is None and iv.high is None
    assert iv.estimand.dominated is not None and "one clip holds 500 of the 500 pairs" in (
        iv.estimand.dominated
    )
    test = difference_test((rng.random(500) < 0.5).astype(int) - 0, star)
    assert test.p is None and test.low is None
    # a hub system (one system in 60% of the pairs) is refused the same way
    a, b = np.arange(100), np.arange(100, 200)
    sys_a = ["hub"] * 60 + [f"s{i}" for i in range(40)]
    sys_b = [f"t{i % 9}" for i in range(100)]
    hub = ClipDesign.of(a, b, (sys_a, sys_b), None)
    iv = accuracy_interval(rng.random(100) < 0.7, hub)
    assert iv.low is None and "one system holds 60 of the 100 pairs" in str(iv.estimand.dominated)
    # just under the share: an interval
    sys_a = ["hub"] * 50 + [f"s{i}" for i in range(50)]
    assert accuracy_interval(rng.random(100) < 0.7, ClipDesign.of(a, b, (sys_a, sys_b), None)).low


def test_difference_test_against_scipy() -> None:
    rng = np.random.default_rng(8)
    a, b = random_design(rng, n_clips=20, n_pairs=80)
    design = ClipDesign.of(a, b)
    d = (rng.random(80) < 0.7).astype(int) - (rng.random(80) < 0.5).astype(int)
    res = difference_test(d, design)
    iv = accuracy_interval(d, design)  # the same variance machinery (values need not be 0/1)
    k_plus, k_minus = (d > 0).sum() + 0.5, (d < 0).sum() + 0.5
    floor = ((k_plus + k_minus) - (k_plus - k_minus) ** 2 / 82) / 82**2
    se = np.sqrt(max(iv.variance, floor))
    assert res.se == pytest.approx(se, rel=1e-12) and res.df == iv.df
    assert res.p == pytest.approx(2 * stats.t.sf(abs(d.mean()) / se, res.df), rel=1e-10)
    q = stats.t.ppf(0.975, res.df)
    assert res.low == pytest.approx(d.mean() - q * se, abs=1e-12)


def test_paired_boundaries_are_finite_and_agree_with_their_p() -> None:
    """Identical models: p = 1 with an interval around 0; one model winning every pair: a
    finite, non-degenerate interval whose exclusion of 0 agrees with its p-value (issue 23: it
    was [1.000, 1.000] with p = 0.0625)."""
    rng = np.random.default_rng(8)
    a, b = random_design(rng, n_clips=20, n_pairs=80)
    design = ClipDesign.of(a, b)
    zero = difference_test(np.zeros(80), design)
    assert zero.p == 1.0 and zero.low < 0 < zero.high
    for n in (5, 80):
        won = difference_test(np.ones(n), ClipDesign.of(np.arange(n), np.arange(n, 2 * n)))
        assert won.low < 1.0 and won.high == 1.0 and won.se > 0
        assert (won.low > 0) == (won.p < 0.05)
    # Agresti & Min's pseudo-counts, by hand for 5 wins out of 5: b' = 5.5, c' = 0.5, n' = 7
    won = difference_test(np.ones(5), ClipDesign.of(np.arange(5), np.arange(5, 10)))
    assert won.se == pytest.approx(np.sqrt((6 - 25 / 7) / 49), rel=1e-12)


def test_quantiles_are_scipy_stats_bit_for_bit() -> None:
    """`uncertainty`'s own t quantile (whole df: an evaluation imports no scipy) and the paired
    test's scipy.special p-values, against scipy.stats."""
    from benchmark.stats.uncertainty import t_value, z_value

    rng = np.random.default_rng(3)
    for confidence in [0.5, 0.8, 0.9, 0.95, 0.99, 0.999, *rng.uniform(0.01, 0.999, 50)]:
        assert z_value(confidence) == float(stats.norm.ppf(0.5 + confidence / 2.0))
        for df in (1.0, 3.0, 7.0, 30.5, 255.0):
            want = float(stats.t.ppf(0.5 + confidence / 2.0, df))
            assert t_value(df, confidence) == pytest.approx(want, rel=1e-10)
    for n_clips in (5, 7, 40, 300):
        a, b = random_design(rng, n_clips, n_pairs=min(3 * n_clips, n_clips * (n_clips - 1) // 2))
        design = ClipDesign.of(a, b)
        for _ in range(10):
            d = (rng.random(a.size) < 0.6).astype(int) - (rng.random(a.size) < 0.5)
            res = difference_test(d, design, confidence=0.9)
            want_p = 2.0 * stats.t.sf(abs(res.mean) / res.se, res.df)
            assert res.p == pytest.approx(min(float(want_p), 1.0), rel=1e-9)
            q = stats.t.ppf(0.95, res.df)
            assert res.low == pytest.approx(max(-1.0, res.mean - q * res.se), rel=1e-12)
            assert res.high == pytest.approx(min(1.0, res.mean + q * res.se), rel=1e-12)


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
    hits = [
        (iv.low is not None and iv.high is not None and iv.low <= 0.5 <= iv.high)
        for iv in (accuracy_interval(row, design) for row in correct)
    ]
    return float(np.mean(hits))


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
    p = np.array([difference_test(row, design).p for row in d], dtype=float)
    assert (p < 0.05).mean() <= 0.065
    # and Holm over the cells `compare` reports (overall, 3 relations, 5 bins) keeps the family
    # error near 5%: a model is not "better on some bin" by chance
    cells = [np.ones(d.shape[1], bool)]
    cells += [demo_shaped["relation"] == r for r in np.unique(demo_shaped["relation"])]
    cells += [demo_shaped["bin"] == k for k in np.unique(demo_shaped["bin"])]
    subs = [design.subset(m) for m in cells]
    ps = np.array(
        [[difference_test(row[m], sub).p for m, sub in zip(cells, subs, strict=True)] for row in d],
        dtype=float,
    )
    any_holm = np.array([min(holm(row.tolist())) < 0.05 for row in ps])
    assert any_holm.mean() <= 0.065
    assert (ps < 0.05).any(axis=1).mean() > 0.15  # unadjusted, some cell "wins" far too often
