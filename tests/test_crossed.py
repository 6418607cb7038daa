"""The crossed variance components (`stats.crossed`) and the estimand rules built on them
(`stats.uncertainty`): exact against a dense implementation of the definition, unbiased under their
working model by simulation, the jackknife against brute force, and the few-systems and
unknown-systems rules."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from benchmark.stats.crossed import ABSENT, UNKNOWN, CrossedDesign, crossed_variance
from benchmark.stats.uncertainty import (
    MIN_CLUSTERS,
    ClipDesign,
    accuracy_interval,
    delete_one_jackknife,
    estimand,
)
from tests.crossed_reference import dense_crossed, incidence


def _design(rng: np.random.Generator, systems: int, contents: int, n: int) -> dict[str, np.ndarray]:
    """Random pairs of distinct clips over systems × contents (one clip per cell)."""
    clips = systems * contents
    pairs = rng.choice(list(itertools.combinations(range(clips), 2)), n, replace=False)
    a, b = pairs[:, 0], pairs[:, 1]
    return {
        "clip": np.stack([a, b], axis=1),
        "system": np.stack([a // contents, b // contents], axis=1),
        "content": np.stack([a % contents, b % contents], axis=1),
    }


@pytest.mark.parametrize("seed", range(5))
def test_the_sparse_estimator_is_the_dense_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    units = _design(rng, systems=int(rng.integers(3, 9)), contents=int(rng.integers(3, 12)), n=90)
    v = (rng.random(90) < 0.7).astype(float) + rng.normal(0, 0.3, 90) * (seed % 2)
    for kinds in (["clip"], ["clip", "system"], ["clip", "system", "content"]):
        got = crossed_variance(v, CrossedDesign.of({k: units[k] for k in kinds}))
        want, df = dense_crossed(v, [incidence(*units[k].T) for k in kinds])
        assert got.variance == pytest.approx(want, rel=1e-9, abs=1e-15)
        assert got.df == df


def test_unknown_and_absent_units() -> None:
    """UNKNOWN is a unit of its own (shared with nothing); ABSENT is no unit at all."""
    rng = np.random.default_rng(3)
    units = _design(rng, 6, 8, 60)
    v = (rng.random(60) < 0.6).astype(float)
    system = units["system"].copy()
    system[:10, 0] = UNKNOWN
    distinct = system.copy()
    distinct[:10, 0] = 100 + np.arange(10)  # the same as ten fresh systems
    a = crossed_variance(v, CrossedDesign.of({"clip": units["clip"], "system": system}))
    b = crossed_variance(v, CrossedDesign.of({"clip": units["clip"], "system": distinct}))
    assert a.variance == pytest.approx(b.variance, rel=1e-12)
    dyad = np.where(units["system"][:, :1] == units["system"][:, 1:], ABSENT, 7)
    dyad[::3] = 3
    design = CrossedDesign.of({"clip": units["clip"], "system_pair": np.repeat(dyad, 2, axis=1)})
    member = dyad[:, 0] >= 0
    z = np.zeros((60, 2))
    z[member, np.where(dyad[member, 0] == 3, 0, 1)] = 1.0
    want, _ = dense_crossed(v, [incidence(*units["clip"].T), z])
    assert crossed_variance(v, design).variance == pytest.approx(want, rel=1e-9)


def test_unbiased_under_its_working_model() -> None:
    """Outcomes built from clip, system and content effects plus noise: the mean estimate over
    2,000 draws matches the true variance of the mean (truncation at 0 adds a little)."""
    rng = np.random.default_rng(0)
    units = _design(rng, 6, 10, 200)
    zs = [incidence(*units[k].T) for k in ("clip", "system", "content")]
    s2 = np.array([0.5, 0.3, 0.2, 0.1])  # pair, clip, system, content
    true = (s2[0] * 200 + sum(s2[i + 1] * (z.sum(0) ** 2).sum() for i, z in enumerate(zs))) / 200**2
    design = CrossedDesign.of(units)
    est, means = [], []
    for _ in range(2000):
        v = np.sqrt(s2[0]) * rng.normal(size=200)
        v += sum(z @ (np.sqrt(s2[i + 1]) * rng.normal(size=z.shape[1])) for i, z in enumerate(zs))
        means.append(v.mean())
        est.append(crossed_variance(v, design).variance)
    assert np.mean(est) == pytest.approx(true, rel=0.05)
    assert np.var(means) == pytest.approx(true, rel=0.1)


def test_jackknife_is_the_brute_force_definition() -> None:
    rng = np.random.default_rng(2)
    units = _design(rng, 7, 9, 80)
    v = (rng.random(80) < 0.7).astype(float)
    codes = units["system"]
    thetas = []
    for s in np.unique(codes):
        keep = (codes[:, 0] != s) & (codes[:, 1] != s)
        thetas.append(v[keep].mean())
    t = np.array(thetas)
    want = (t.size - 1) / t.size * ((t - t.mean()) ** 2).sum()
    assert delete_one_jackknife(v, codes) == pytest.approx(want, rel=1e-12)


def test_the_estimand_says_what_the_interval_generalises_over() -> None:
    rng = np.random.default_rng(4)
    units = _design(rng, MIN_CLUSTERS, 12, 150)

    def design(systems: int) -> ClipDesign:
        sa, sb = (units["system"] % systems).T
        return ClipDesign.of(
            *units["clip"].T, (sa.tolist(), sb.tolist()), tuple(units["content"].T.tolist())
        )

    full = estimand(design(MIN_CLUSTERS))
    assert full.kinds == ("clip", "system", "content") and full.notes == ()
    assert full.label == "clips, systems, contents"
    few = estimand(design(MIN_CLUSTERS - 1))
    assert few.kinds == ("clip", "content")
    assert few.notes == (
        f"{MIN_CLUSTERS - 1} systems: too few to generalise over new systems "
        f"(fewer than {MIN_CLUSTERS}), held fixed",
    )
    fixed = estimand(design(MIN_CLUSTERS), fixed=("system",))
    assert fixed.kinds == ("clip", "content") and fixed.notes == ()
    unknown = estimand(ClipDesign.of(*units["clip"].T))
    assert unknown.kinds == ("clip",) and "systems unknown: held fixed" in unknown.notes
    # the interval over systems is wider than the one holding them fixed, on the same outcome
    v = rng.random(150) < 0.75
    wide = accuracy_interval(v, design(MIN_CLUSTERS))
    narrow = accuracy_interval(v, design(MIN_CLUSTERS), fixed=("system",))
    assert wide.high - wide.low >= narrow.high - narrow.low


def test_batch_and_order_never_change_a_cell() -> None:
    """The same pairs in another order give the same interval to the last bit."""
    rng = np.random.default_rng(6)
    units = _design(rng, 8, 16, 300)
    v = rng.random(300) < 0.7
    perm = rng.permutation(300)

    def interval(order: np.ndarray) -> tuple[float | None, float | None]:
        d = ClipDesign.of(
            *units["clip"][order].T,
            tuple(units["system"][order].T.tolist()),
            tuple(units["content"][order].T.tolist()),
        )
        iv = accuracy_interval(v[order], d)
        return round(iv.low or 0, 12), round(iv.high or 0, 12)

    assert interval(np.arange(300)) == interval(perm)
