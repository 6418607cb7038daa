"""Label reliability and the noise ceiling (benchmark.pairs.reliability), checked against hand-worked
numbers, against each other, and against the truth on simulated listening tests."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from benchmark.data.tables import CLIP_SCHEMA, conform
from benchmark.pairs.build import build_pairs
from benchmark.pairs.reliability import (
    AGREEMENT_MAX_ABS,
    AGREEMENT_MEAN_ABS,
    PRIOR_DF,
    bootstrap,
    ceiling_cells,
    clip_noise,
    closed_form,
    gap_closed,
    prior_var,
    se2,
    t_cdf,
)
from tests.rated_clips import rated_clips


def _table(ratings: list[list[float] | None], **extra: list) -> pa.Table:
    n = len(ratings)
    cols = {
        "clip_id": extra.pop("clip_id", [f"c{i:04d}" for i in range(n)]),
        "mos": extra.pop("mos", [float(np.mean(r)) if r else 3.0 for r in ratings]),
        "n_ratings": pa.array(
            extra.pop("n_ratings", [len(r) if r else None for r in ratings]), pa.int32()
        ),
        "rating_std": extra.pop(
            "rating_std", [float(np.std(r, ddof=1)) if r and len(r) > 1 else None for r in ratings]
        ),
        "subset": pa.array(extra.pop("subset", [None] * n), pa.string()),
        "ratings": pa.array(ratings, pa.list_(pa.float64())),
    }
    cols.update(extra)
    return pa.table(cols)


def test_closed_form_hand_worked_two_clips() -> None:
    """A: 4,5,4,5 (mean 4.5, s² 1/3); B: 4,4,3,4 (mean 3.75, s² 1/4), one group, flat prior."""
    noise = clip_noise(_table([[4, 5, 4, 5], [4, 4, 3, 4]]))
    s0 = (3 * (1 / 3) + 3 * 0.25) / 6  # pooled within-clip variance, 3 df each
    assert noise.pooled_var[0] == pytest.approx(s0, abs=1e-15)
    va = (3 * (1 / 3) + PRIOR_DF * s0) / (3 + PRIOR_DF)
    vb = (3 * 0.25 + PRIOR_DF * s0) / (3 + PRIOR_DF)
    assert noise.var.tolist() == pytest.approx([va, vb], abs=1e-15)
    ua, ub = va / 4, vb / 4
    df = 3 + PRIOR_DF
    nu = (ua + ub) ** 2 / (ua**2 / df + ub**2 / df)
    t = 0.75 / math.sqrt(ua + ub)
    g = nu - 2 / 3 + 1 / (10 * nu)  # Peizer–Pratt: z = g * sqrt(ln(1 + t²/ν) / (ν - 5/6))
    want = stats.norm.cdf(g * math.sqrt(math.log(1 + t * t / nu) / (nu - 5 / 6)))
    got = closed_form(noise, np.array([0]), np.array([1]))
    assert got[0] == pytest.approx(want, abs=1e-12)
    assert got[0] == pytest.approx(stats.t.cdf(t, nu), abs=2e-4)  # the exact t
    assert got[0] == pytest.approx(0.96511, abs=2e-4)  # written down once, by hand
    # order does not matter, and with a prior the evidence is shrunk: k = τ²/(τ²+SE²)
    assert closed_form(noise, np.array([1]), np.array([0]))[0] == pytest.approx(want, abs=1e-12)
    tau2 = 0.5
    k = tau2 / (tau2 + ua + ub)
    want_k = stats.t.cdf(math.sqrt(k) * 0.75 / math.sqrt(ua + ub), nu)
    shrunk = closed_form(noise, np.array([0]), np.array([1]), tau2)[0]
    assert shrunk == pytest.approx(want_k, abs=2e-4) and shrunk < got[0]


def test_t_cdf_is_within_its_stated_error() -> None:
    nu = np.concatenate([np.linspace(4, 8, 41), np.linspace(8, 400, 400)])[:, None]
    t = np.linspace(0, 20, 2001)[None, :]
    err = np.abs(t_cdf(nu, t) - stats.t.cdf(t, nu))
    assert err.max() < 7e-4
    assert err[nu[:, 0] >= 8].max() < 2e-4
    assert t_cdf(np.array([np.inf]), np.array([1.0]))[0] == pytest.approx(stats.norm.cdf(1.0))


def test_unknown_counts_give_null_and_single_ratings_borrow_the_pool() -> None:
    table = _table([[1, 2, 3], [3, 3, 3], [4.0], None], n_ratings=[3, 3, 1, None])
    noise = clip_noise(table)
    s0 = (2 * 1.0 + 2 * 0.0) / 4
    assert noise.pooled_var[0] == pytest.approx(s0)
    assert noise.var[1] == pytest.approx(PRIOR_DF * s0 / (2 + PRIOR_DF))  # no zero variance
    assert noise.var[2] == pytest.approx(s0) and noise.df[2] == PRIOR_DF  # one rating: the pool's
    assert math.isnan(noise.var[3])
    p = closed_form(noise, np.array([0, 1, 2]), np.array([1, 2, 3]))
    assert 0.5 < p[0] < 1 and 0.5 < p[1] < 1 and math.isnan(p[2])
    assert math.isnan(bootstrap(noise, np.array([2]), np.array([3]), draws=50)[0])
    # equal MOS: a coin flip whatever the noise
    assert closed_form(noise, np.array([0]), np.array([0]))[0] == 0.5


def test_prior_var_and_gap_closed() -> None:
    assert prior_var(10.0, 4.0, 4) == pytest.approx(1.5)
    assert prior_var(1.0, 4.0, 4) == 1e-6  # all noise: floored, not negative
    assert math.isnan(prior_var(0.0, 0.0, 0))
    assert gap_closed(0.75, 1.0, 0.9) == 0.5 and gap_closed(0.9, 0.9, 0.8) == 1.0
    assert gap_closed(0.6, 0.5, 0.45) is None


def _panel(seed: int, n_ratings: int, clips: int = 300, sd: float = 0.9):
    """True means, integer 1-5 votes with normal noise; the infinite-panel mean is computed."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(3.0, 0.8, clips)
    k = np.arange(1, 6)
    lo = np.where(k == 1, -np.inf, k - 0.5)
    hi = np.where(k == 5, np.inf, k + 0.5)
    probs = stats.norm.cdf((hi - mu[:, None]) / sd) - stats.norm.cdf((lo - mu[:, None]) / sd)
    true = probs @ k
    votes = [np.clip(np.rint(m + rng.normal(0, sd, n_ratings)), 1, 5) for m in mu]
    table = _table([v.tolist() for v in votes])
    a = rng.integers(0, clips, 4000)
    b = rng.integers(0, clips, 4000)
    mos = np.array([v.mean() for v in votes])
    keep = (a != b) & (mos[a] != mos[b])
    return table, true, mos, a[keep][:3000], b[keep][:3000]


def test_estimators_agree_on_simulated_panels() -> None:
    for n_ratings in (4, 8):
        table, _, mos, a, b = _panel(1, n_ratings)
        noise = clip_noise(table)
        tau2 = prior_var(
            float(((mos[a] - mos[b]) ** 2).sum()), float(se2(noise, a, b).sum()), a.size
        )
        cf = closed_form(noise, a, b, tau2)
        bs = bootstrap(noise, a, b, tau2, seed=3)
        diff = np.abs(cf - bs)
        assert diff.mean() <= AGREEMENT_MEAN_ABS, (n_ratings, diff.mean())
        assert diff.max() <= AGREEMENT_MAX_ABS, (n_ratings, diff.max())


def test_ceiling_covers_the_oracle_on_simulated_panels() -> None:
    """Over seeds and ΔMOS bins, the oracle's actual accuracy (true means vs observed labels)
    falls inside the ceiling's 95% interval in most cells, and the ceiling is unbiased overall."""
    inside, bias = [], []
    for seed in range(12):
        table, true, mos, a, b = _panel(seed, 8)
        noise = clip_noise(table)
        u = se2(noise, a, b)
        tau2 = prior_var(float(((mos[a] - mos[b]) ** 2).sum()), float(u.sum()), a.size)
        rel = closed_form(noise, a, b, tau2)
        d = np.abs(mos[a] - mos[b])
        edges = np.quantile(d, [0.2, 0.4, 0.6, 0.8])
        band = np.searchsorted(edges, d, side="right")
        masks = {str(k): band == k for k in range(5)}
        cells = ceiling_cells(noise, a, b, rel, masks, tau2, seed=seed)
        oracle = np.sign(true[a] - true[b]) == np.sign(mos[a] - mos[b])
        for k, m in masks.items():
            cell = cells[k]
            assert cell is not None and cell["n_rated"] == m.sum()
            assert cell["ci_low"] <= cell["ceiling"] <= cell["ci_high"] + 0.01
            actual = oracle[m].mean()
            inside.append(cell["ci_low"] <= actual <= cell["ci_high"])
            bias.append(cell["ceiling"] - actual)
    assert np.mean(inside) >= 0.9, np.mean(inside)  # 95% intervals: 0.96 measured over 20 seeds
    assert abs(np.mean(bias)) < 0.01, np.mean(bias)


def test_flat_prior_would_overstate_the_ceiling() -> None:
    """Why the prior exists: with 4 ratings a flat prior puts the ceiling above the truth."""
    flat, eb = [], []
    for seed in range(6):
        table, true, mos, a, b = _panel(seed, 4)
        noise = clip_noise(table)
        tau2 = prior_var(
            float(((mos[a] - mos[b]) ** 2).sum()), float(se2(noise, a, b).sum()), a.size
        )
        actual = (np.sign(true[a] - true[b]) == np.sign(mos[a] - mos[b])).mean()
        flat.append(closed_form(noise, a, b).mean() - actual)
        eb.append(closed_form(noise, a, b, tau2).mean() - actual)
    assert np.mean(flat) > 0.015 and abs(np.mean(eb)) < 0.01, (np.mean(flat), np.mean(eb))


def test_ceiling_interval_respects_shared_clips() -> None:
    """Pairs that all share one clip move together: a wider interval than independent pairs."""
    ratings = [[3, 4, 4, 4]] + [[3, 3, 4, 3]] * 200  # same sample variance: same pool either way
    table = _table(ratings, clip_id=[f"c{i:04d}" for i in range(201)])
    noise = clip_noise(table)
    a = np.zeros(200, dtype=np.int64)
    b = np.arange(1, 201)
    rel = closed_form(noise, a, b)
    star = ceiling_cells(noise, a, b, rel, {"all": np.ones(200, bool)})["all"]
    a2, b2 = np.arange(0, 200, 2), np.arange(1, 201, 2)
    table2 = _table([[3, 4, 4, 4], [3, 3, 4, 3]] * 100 + [[3, 3, 4, 3]])
    noise2 = clip_noise(table2)
    rel2 = closed_form(noise2, a2, b2)
    apart = ceiling_cells(noise2, a2, b2, rel2, {"all": np.ones(100, bool)})["all"]
    assert star["ceiling"] == pytest.approx(apart["ceiling"], abs=1e-9)
    assert star["ci_high"] - star["ci_low"] > 2 * (apart["ci_high"] - apart["ci_low"])


def test_pair_files_carry_reliability(tmp_path) -> None:
    clips = rated_clips(60, seed=0, votes_per_clip=6)
    kw = dict(
        task="t",
        relations=("same_content", "same_system", "cross"),
        counts={"test": {"same_content": 40, "same_system": 40, "cross": 80}},
        seed=1,
    )
    table, meta = build_pairs(clips, **kw)["test"]
    rel = np.asarray(table.column("label_reliability").to_pylist(), dtype=float)
    assert table.column("label_reliability").null_count == 0
    assert ((rel >= 0.5) & (rel <= 1)).all()
    info = meta["label_reliability"]
    assert info["estimator"] == "closed_form" and info["pairs_rated"] == table.num_rows
    assert set(info["prior_sd"]) == {"same_content", "same_system", "cross"}
    # recomputed independently from the pair rows and the per-relation prior
    noise = clip_noise(clips)
    index = {c: i for i, c in enumerate(clips.column("clip_id").to_pylist())}
    a = np.array([index[c] for c in table.column("clip_a").to_pylist()])
    b = np.array([index[c] for c in table.column("clip_b").to_pylist()])
    relation = np.array(table.column("relation").to_pylist())
    for name in ("same_content", "same_system", "cross"):
        sel = relation == name
        tau2 = prior_var(
            float(((noise.mos[a[sel]] - noise.mos[b[sel]]) ** 2).sum()),
            float(se2(noise, a[sel], b[sel]).sum()),
            int(sel.sum()),
        )
        assert info["prior_sd"][name]["null"] == pytest.approx(math.sqrt(tau2), abs=1e-6)
        np.testing.assert_allclose(rel[sel], closed_form(noise, a[sel], b[sel], tau2), atol=1e-6)
    # the bootstrap estimator is recorded and agrees; unknown counts give nulls, not zeros
    boot, meta_b = build_pairs(clips, reliability="bootstrap", **kw)["test"]
    assert meta_b["label_reliability"]["estimator"] == "bootstrap"
    rb = np.asarray(boot.column("label_reliability").to_pylist(), dtype=float)
    assert np.abs(rb - rel).mean() <= AGREEMENT_MEAN_ABS
    assert boot.drop(["label_reliability"]).equals(table.drop(["label_reliability"]))
    bare = clips.set_column(
        clips.schema.get_field_index("n_ratings"), "n_ratings", pa.nulls(clips.num_rows, pa.int32())
    ).drop(["ratings"])
    bare = conform(bare, CLIP_SCHEMA)
    t0, m0 = build_pairs(bare, **kw)["test"]
    assert t0.column("label_reliability").null_count == t0.num_rows
    assert m0["label_reliability"]["estimator"] is None
