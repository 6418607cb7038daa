"""How far a pair label can be trusted, and the accuracy a perfect model could reach (issue 13).

A MOS is the mean of a handful of ratings. Two clips whose MOS differ by 0.1 on eight ratings each
are ordered by rating noise about as often as by quality, so a model that "errs" on them may be
right. The *reliability* of a pair label is the probability that the true (infinite-panel) means are
ordered as the observed MOS are; the *noise ceiling* of a set of pairs is the strict accuracy of an
oracle that knows the true means, scored against the observed labels: the mean reliability.

One model serves both estimators. A clip's rating variance is its sample variance moderated toward
the pooled within-clip variance of its corpus (per subset) with `PRIOR_DF` degrees of freedom
(Smyth's moderated variance, 2004): a clip with one rating, or with identical ratings, would
otherwise look noiseless. The true difference of a pair gets an empirical-Bayes normal prior,
N(0, τ²), with τ² estimated per relation and subset from the pairs themselves (mean observed Δ²
minus mean squared standard error): pairs are picked by their observed MOS, so a flat prior is
overconfident (regression to the mean: +0.01 to +0.03 of ceiling on simulated panels of 4–8
ratings), and clips of one system differ less than clips of two. The posterior of the true
difference is then centred on k·Δ with variance k·SE², k = τ² / (τ² + SE²).

- `closed_form`: the difference of the MOS over its standard error, through Student's t with the
  Welch–Satterthwaite degrees of freedom (the small-n correction; `t_cdf`).
- `bootstrap`: each clip's ratings resampled `draws` times (each draw from the clip's own residuals
  with weight (n-1)/(n-1+PRIOR_DF), else from its corpus's pooled residuals, so its spread is the
  same moderated variance; clips with counts but no per-rating rows draw normal noise of that
  variance). Seeded per clip id, so a clip's draws do not depend on which other clips are present.

The two differ by the t versus the resampled shape; on the demo and on simulated panels they agree
to within `AGREEMENT_MEAN_ABS` on average (tests/test_reliability.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

ESTIMATORS = ("closed_form", "bootstrap")
RELIABILITY_VERSION = 1
"""Bump whenever an estimator's numbers change: it is recorded in every pair file's metadata."""

PRIOR_DF = 4.0
"""Weight of the pooled variance, in ratings' degrees of freedom, in each clip's moderated variance."""

BOOTSTRAP_DRAWS = 2000
CEILING_DRAWS = 1000
AGREEMENT_MEAN_ABS = 0.02
AGREEMENT_MAX_ABS = 0.08


@dataclass(frozen=True)
class ClipNoise:
    """Per clip (aligned with a clip table's rows): what its MOS is worth.

    `var` is the moderated variance of one rating and `df` its degrees of freedom; both NaN where
    the corpus gives no rating count (the clip's pairs then get a null reliability). `ratings` and
    `offsets` hold the per-rating rows, clip i's in ratings[offsets[i]:offsets[i + 1]] (empty where
    the corpus publishes none); `pool` the pooled residuals of each clip's group, scaled to the
    pooled variance (`group` indexes it).
    """

    clip_ids: np.ndarray
    mos: np.ndarray
    n: np.ndarray
    var: np.ndarray
    df: np.ndarray
    ratings: np.ndarray
    offsets: np.ndarray
    group: np.ndarray
    pool: tuple[np.ndarray, ...]
    pooled_var: tuple[float, ...]

    def take(self, idx: np.ndarray) -> ClipNoise:
        """The same noise for a subset/reordering of the clips (ratings and pools kept whole)."""
        starts, ends = self.offsets[:-1][idx], self.offsets[1:][idx]
        lens = ends - starts
        offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        # position j of the new flat array reads starts[clip] + (j - offsets[clip])
        within = np.arange(int(offsets[-1])) - np.repeat(offsets[:-1], lens)
        flat = self.ratings[np.repeat(starts, lens) + within]
        return ClipNoise(
            clip_ids=self.clip_ids[idx],
            mos=self.mos[idx],
            n=self.n[idx],
            var=self.var[idx],
            df=self.df[idx],
            ratings=flat,
            offsets=offsets,
            group=self.group[idx],
            pool=self.pool,
            pooled_var=self.pooled_var,
        )

    @property
    def known(self) -> np.ndarray:
        return np.asarray(np.isfinite(self.var))


def _column(clips: pa.Table, name: str) -> list[Any]:
    return clips.column(name).to_pylist() if name in clips.column_names else [None] * len(clips)


def float_column(table: pa.Table, name: str) -> np.ndarray:
    """A numeric column as float64, NaN where null or where the column is absent."""
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    col = table.column(name).cast(pa.float64())
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)


def _rating_rows(clips: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """(flat ratings, offsets): clip i's per-rating rows are flat[offsets[i]:offsets[i + 1]]."""
    import pyarrow.compute as pc

    if "ratings" not in clips.column_names:
        return np.zeros(0), np.zeros(clips.num_rows + 1, dtype=np.int64)
    lists = clips.column("ratings").combine_chunks()
    lens = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False)
    flat = pc.list_flatten(lists).cast(pa.float64()).to_numpy(zero_copy_only=False)
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    return np.asarray(flat, dtype=np.float64), offsets


def clip_noise(clips: pa.Table) -> ClipNoise:
    """The variance model of every clip of a (validated, canonical-scale) clip table.

    Pooled variances are per subset over all splits: one listening test's rating noise, estimated
    from every clip that has at least two ratings and a standard deviation (or per-rating rows).
    """
    ids = np.asarray(clips.column("clip_id").to_pylist(), dtype=object)
    mos = float_column(clips, "mos")
    n = float_column(clips, "n_ratings")
    std = float_column(clips, "rating_std")
    ratings, offsets = _rating_rows(clips)
    lens = np.diff(offsets)
    rows = lens > 0
    n = np.where(rows, lens.astype(np.float64), n)
    # the per-rating rows decide where present (their spread, unbiased); else the published SD
    s2 = np.where(np.isfinite(n) & (n > 1), std * std, np.nan)
    if rows.any():
        clip_of = np.repeat(np.arange(lens.size), lens)
        sums = np.bincount(clip_of, weights=ratings, minlength=lens.size)
        means = np.divide(sums, lens, out=np.zeros(lens.size), where=rows)
        resid = ratings - means[clip_of]
        ss = np.bincount(clip_of, weights=resid * resid, minlength=lens.size)
        s2 = np.where(lens > 1, ss / np.maximum(lens - 1, 1), np.where(rows, np.nan, s2))
    else:
        resid = np.zeros(0)
        clip_of = np.zeros(0, dtype=np.int64)
    subsets = _column(clips, "subset")
    names = sorted({s for s in subsets}, key=lambda s: (s is not None, s or ""))
    code = {s: k for k, s in enumerate(names)}
    group = np.array([code[s] for s in subsets], dtype=np.int64)
    var = np.full(ids.size, np.nan)
    df = np.full(ids.size, np.nan)
    pools: list[np.ndarray] = []
    pooled: list[float] = []
    own = np.where(np.isfinite(s2), n - 1.0, 0.0)
    own_s2 = np.where(np.isfinite(s2), s2, 0.0)
    for g in range(len(names)):
        sel = group == g
        informative = sel & np.isfinite(s2) & (n > 1)
        dof = n[informative] - 1.0
        s0 = float(np.sum(dof * s2[informative]) / dof.sum()) if dof.sum() > 0 else float("nan")
        pooled.append(s0)
        pools.append(_pool(resid[(lens > 1)[clip_of] & sel[clip_of]], s0))
        if not np.isfinite(s0):
            continue
        counted = sel & np.isfinite(n) & (n >= 1)
        var[counted] = (own[counted] * own_s2[counted] + PRIOR_DF * s0) / (own[counted] + PRIOR_DF)
        df[counted] = own[counted] + PRIOR_DF
    return ClipNoise(ids, mos, n, var, df, ratings, offsets, group, tuple(pools), tuple(pooled))


def _pool(residuals: np.ndarray, s0: float) -> np.ndarray:
    """A group's residuals (clips with per-rating rows), scaled to mean square `s0`."""
    if not residuals.size or not np.isfinite(s0):
        return np.zeros(0)
    ms = float(np.mean(residuals**2))
    return residuals * np.sqrt(s0 / ms) if ms > 0 else residuals


def se2(noise: ClipNoise, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared standard error of each pair's MOS difference (NaN where unknown)."""
    return np.asarray(noise.var[a] / noise.n[a] + noise.var[b] / noise.n[b])


def prior_var(delta2_sum: float, se2_sum: float, count: int) -> float:
    """τ² of the true differences of a set of pairs: E[Δ²] − E[SE²], floored just above zero
    (a set whose gaps are all noise then gets reliabilities near 0.5, not a division by zero)."""
    if count <= 0:
        return float("nan")
    return max(delta2_sum / count - se2_sum / count, 1e-6)


def _shrink(u: np.ndarray, tau2: np.ndarray | float | None) -> np.ndarray:
    """k = τ²/(τ² + SE²) per pair; 1 without a prior (τ² None or NaN) or where SE² is 0."""
    if tau2 is None:
        return np.ones_like(u)
    tau2 = np.asarray(tau2, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = tau2 / (tau2 + u)
    flat = ~np.isfinite(tau2)
    if flat.any():
        k = np.where(flat, 1.0, k)
    zero = u == 0
    if zero.any():
        k = np.where(zero, 1.0, k)
    return np.asarray(k)


def t_cdf(nu: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Student's t CDF at t >= 0 by the Peizer–Pratt normal approximation.

    Within 7e-4 of the exact CDF for ν >= 4 (the smallest Welch ν here, as every clip has at least
    PRIOR_DF degrees of freedom) and 2e-4 for ν >= 8 (tests/test_reliability.py), far inside the
    estimate's own uncertainty; at a twentieth of the cost of the exact incomplete beta, so a pool
    of 10^8 pairs gets its column in seconds. ν = inf is the normal CDF.
    """
    from scipy.special import ndtr

    with np.errstate(divide="ignore", invalid="ignore"):
        # z = (ν − 2/3 + 1/(10ν)) · sqrt(log1p(t²/ν) / (ν − 5/6)), in place: ~1e6 pairs a call
        g = 10.0 * nu
        np.divide(1.0, g, out=g)
        g += nu - 2.0 / 3.0
        z = t * t / nu  # broadcast here: ν and t may have different shapes
        np.log1p(z, out=z)
        z /= nu - 5.0 / 6.0
        np.sqrt(z, out=z)
        z *= g
    inf = np.isinf(nu)
    if inf.any():
        z = np.where(inf, t, z)
    return np.asarray(ndtr(z))


def closed_form(
    noise: ClipNoise, a: np.ndarray, b: np.ndarray, tau2: np.ndarray | float | None = None
) -> np.ndarray:
    """P(true means ordered as the observed MOS) per pair (a[k], b[k]); NaN where unknown.

    t = sqrt(k)·|Δ| / SE with SE² = v_a/n_a + v_b/n_b and k the shrinkage under the prior
    N(0, tau2) (no prior: k = 1), through Student's t with Welch–Satterthwaite degrees of
    freedom (`t_cdf`). Equal MOS give 0.5; a zero SE (a group whose ratings never vary) gives 1.
    """
    u_clip = noise.var / noise.n
    w_clip = u_clip * u_clip / noise.df
    u = u_clip[a] + u_clip[b]
    delta = np.abs(noise.mos[a] - noise.mos[b])
    k = _shrink(u, tau2)
    with np.errstate(divide="ignore", invalid="ignore"):
        nu = u * u
        nu /= w_clip[a] + w_clip[b]
        t = k * delta
        t *= delta
        t /= u
        np.sqrt(t, out=t)
        p = t_cdf(nu, t)
    sure = (u == 0) & (delta > 0)
    if sure.any():
        p = np.where(sure, 1.0, p)
    tied = delta == 0
    if tied.any():
        p = np.where(tied, 0.5, p)
    unknown = ~np.isfinite(u)
    if unknown.any():
        p = np.where(unknown, np.nan, p)
    return p


def _clip_seed(seed: int, clip_id: str) -> np.random.Generator:
    digest = hashlib.blake2b(str(clip_id).encode(), digest_size=8).digest()
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int.from_bytes(digest, "little")])


def bootstrap_means(noise: ClipNoise, draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> np.ndarray:
    """(clips, draws) resampled means; NaN rows for clips without a rating count."""
    out = np.full((noise.mos.size, draws), np.nan)
    for i in np.flatnonzero(noise.known):
        rng = _clip_seed(seed, noise.clip_ids[i])
        n_i = int(noise.n[i])
        own = noise.ratings[noise.offsets[i] : noise.offsets[i + 1]]
        pool = noise.pool[noise.group[i]]
        if own.size and pool.size:
            res = own - own.mean()
            if own.size > 1:
                res = res * np.sqrt(own.size / (own.size - 1))
            w = (own.size - 1) / (own.size - 1 + PRIOR_DF)
            from_own = rng.random((draws, n_i)) < w
            picked = np.where(
                from_own,
                res[rng.integers(0, res.size, (draws, n_i))],
                pool[rng.integers(0, pool.size, (draws, n_i))],
            )
            out[i] = noise.mos[i] + picked.mean(axis=1)
        else:  # counts and a standard deviation, no per-rating rows: normal noise, same variance
            out[i] = noise.mos[i] + np.sqrt(noise.var[i] / n_i) * rng.standard_normal(draws)
    return out


def bootstrap(
    noise: ClipNoise,
    a: np.ndarray,
    b: np.ndarray,
    tau2: np.ndarray | float | None = None,
    draws: int = BOOTSTRAP_DRAWS,
    seed: int = 0,
    means: np.ndarray | None = None,
) -> np.ndarray:
    """The rater-level bootstrap estimate per pair: the share of resampled differences, shrunk as
    the prior says (k·Δ + sqrt(k)·(noise of A − noise of B)), on the observed side (ties count
    half); NaN where unknown. Pass `means` (from `bootstrap_means`) to reuse draws."""
    m = bootstrap_means(noise, draws, seed) if means is None else means
    u = se2(noise, a, b)
    k = _shrink(u, tau2)
    out = np.empty(a.size)
    step = max(1, 4_000_000 // m.shape[1])
    for lo in range(0, a.size, step):
        ia, ib = a[lo : lo + step], b[lo : lo + step]
        kk = k[lo : lo + step, None]
        delta = noise.mos[ia] - noise.mos[ib]
        sign = np.sign(delta)[:, None]
        noise_d = (m[ia] - noise.mos[ia, None]) - (m[ib] - noise.mos[ib, None])
        d = (kk * delta[:, None] + np.sqrt(kk) * noise_d) * np.where(sign == 0, 1.0, sign)
        p = (d > 0).mean(axis=1) + 0.5 * (d == 0).mean(axis=1)
        p = np.where(sign[:, 0] == 0, 0.5, p)
        out[lo : lo + step] = np.where(np.isnan(m[ia, 0]) | np.isnan(m[ib, 0]), np.nan, p)
    return out


def describe(noise: ClipNoise, estimator: str) -> dict[str, Any]:
    """What a pair file records about how its `label_reliability` column was made."""
    return {
        "estimator": estimator,
        "version": RELIABILITY_VERSION,
        "prior_df": PRIOR_DF,
        "bootstrap_draws": BOOTSTRAP_DRAWS if estimator == "bootstrap" else None,
        "clips_with_counts": int(noise.known.sum()),
        "clips_with_ratings": int(np.count_nonzero(np.diff(noise.offsets))),
        "pooled_rating_sd": [
            None if not np.isfinite(v) else round(float(np.sqrt(v)), 6) for v in noise.pooled_var
        ],
    }


# ---------------------------------------------------------------------------------------------
# the noise ceiling


def posterior_means(noise: ClipNoise, draws: int = CEILING_DRAWS, seed: int = 0) -> np.ndarray:
    """(clips, draws) draws of each clip's true mean: MOS + sqrt(v/n) * t(df), seeded per clip id."""
    out = np.full((noise.mos.size, draws), np.nan)
    for i in np.flatnonzero(noise.known):
        rng = _clip_seed(seed ^ 0x5EED, noise.clip_ids[i])
        out[i] = noise.mos[i] + np.sqrt(noise.var[i] / noise.n[i]) * rng.standard_t(
            noise.df[i], draws
        )
    return out


def ceiling_cells(
    noise: ClipNoise,
    a: np.ndarray,
    b: np.ndarray,
    reliability: np.ndarray,
    masks: Mapping[str, np.ndarray],
    tau2: np.ndarray | float | None = None,
    *,
    draws: int = CEILING_DRAWS,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, dict[str, Any] | None]:
    """The noise ceiling of each cell (a boolean mask over the pairs), with its interval.

    value: the mean reliability of the cell's rated pairs. Interval: the central `confidence` range
    of the oracle's accuracy on those pairs over posterior draws of the true differences, k·Δ +
    sqrt(k)·(e_A − e_B), where e is each clip's noise drawn once per draw and shared by all of its
    pairs, so pairs that share clips move together; centred on the value (shifted by the value
    minus the draws' mean, then clipped to [0, 1]). None for a cell without a rated pair.
    """
    rated = np.isfinite(reliability)
    out: dict[str, dict[str, Any] | None] = {}
    names = list(masks)
    if not names:
        return out
    cols = np.stack([np.asarray(masks[k], dtype=bool) & rated for k in names], axis=1)
    counts = cols.sum(axis=0)
    sums = np.zeros((draws, len(names)))
    if rated.any():
        used = np.unique(np.concatenate([a[rated], b[rated]]))
        post = posterior_means(noise.take(used), draws, seed)  # rows follow `used`
        ra = np.searchsorted(used, a).clip(0, used.size - 1)
        rb = np.searchsorted(used, b).clip(0, used.size - 1)
        delta = noise.mos[a] - noise.mos[b]
        sign = np.sign(delta)
        k = _shrink(se2(noise, a, b), tau2)
        post = post - noise.mos[used, None]  # each clip's noise draws
        weights = cols.astype(np.float64)
        step = max(1, 2_000_000 // draws)
        for lo in range(0, a.size, step):
            sl = slice(lo, lo + step)
            if not rated[sl].any():
                continue
            kk = k[sl, None]
            d = (kk * delta[sl, None] + np.sqrt(kk) * (post[ra[sl]] - post[rb[sl]])) * sign[
                sl, None
            ]
            correct = np.where(rated[sl, None], (d > 0) + 0.5 * (d == 0), 0.0)
            sums += correct.T @ weights[sl]
    alpha = (1.0 - confidence) / 2.0
    for col, name in enumerate(names):
        if counts[col] == 0:
            out[name] = None
            continue
        acc = sums[:, col] / counts[col]
        value = float(reliability[cols[:, col]].mean())
        # the draws give the spread; the centre is the estimate's (per-clip t draws are a little
        # wider than the Welch t of the estimate, which would pull the range below it)
        shift = value - float(acc.mean())
        out[name] = {
            "ceiling": round(value, 6),
            "ci_low": round(min(max(float(np.quantile(acc, alpha)) + shift, 0.0), value), 6),
            "ci_high": round(max(min(float(np.quantile(acc, 1.0 - alpha)) + shift, 1.0), value), 6),
            "n": int(np.asarray(masks[name], dtype=bool).sum()),
            "n_rated": int(counts[col]),
        }
    return out


GAP_MARGIN = 0.05
""""Of gap" is shown only where the ceiling's lower bound is at least this far above chance: a
ceiling whose range reaches 50% makes the share's denominator anything from 0 up, and one pair
gave "104%" and "-224%" (issue 23)."""


def gap_closed(accuracy: float, ceiling: float, ceiling_low: float | None) -> float | None:
    """(accuracy - chance) / (ceiling - chance): the share of the reachable gain above chance;
    None unless the ceiling's lower bound clears chance by `GAP_MARGIN`."""
    if ceiling_low is None or not ceiling_low >= 0.5 + GAP_MARGIN or not ceiling > 0.5:
        return None
    return round((accuracy - 0.5) / (ceiling - 0.5), 6)
