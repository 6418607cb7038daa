"""Variance of a mean over pairs whose clips, systems and contents are all sampled: crossed components.

Why: a reward-model board is read as "ranks new systems' speech better", so its intervals must
generalise over new systems and contents, not only new clips of the same ones. Pairs share clips,
systems and contents at once, and the demo has only 8 systems: the multi-way cluster-robust
sandwich over every kind of unit (Cameron, Gelbach & Miller 2011, dyadic at each level) is unbiased
only with many clusters of each kind and covered 0.89 (demo shape, systems redrawn) where 0.95 was
promised. This estimator is unbiased for any number of clusters under its working model, so what
is left to calibrate is the degrees of freedom (and, in `uncertainty`, a jackknife floor).

Working model (the Hájek projection of a pair's outcome on its units, as in generalisability
theory and crossed random-effects models, Owen 2007): for pair p with unit set M_p (its clips, their
systems, their contents, and the dyads `uncertainty` adds; a unit on both sides counts once),

    v_p = mu + sum over u in M_p of a_u + eps_p,   a_u ~ (0, s_k^2) for a unit of kind k, eps ~ (0, s_0^2),

all independent. Then Var(mean v) = (sum_k s_k^2 sum_u n_u^2 + N s_0^2) / N^2, n_u = pairs holding u.

Estimation by the method of moments, unbiased under that model for any design: with residuals
e = v − mean(v), the statistics Q_k = sum_u (sum of e_p over the pairs holding u)^2 and Q_0 = sum e_p^2
have E[Q_j] = sum_k s_k^2 ||Z_j' M Z_k||_F^2 + s_0^2 ||M Z_j||_F^2 (Z_k the pairs × units incidence of
kind k, M the centring matrix), a (K+1) × (K+1) linear system solved for the s^2 (a negative
component is set to 0 and the rest re-solved: the usual truncation, slightly conservative). This is
the CR2 idea (Bell & McCaffrey 2002: unbiased under a working model) for crossed clusters. Cost
O(pairs): each pair has at most two units of a kind, so every Gram term is a count over pairs.

Degrees of freedom: Satterthwaite's (1946) over the components, each resting on its own kind's
(G − 1) (pairs − 1 for the residual; a dyad kind on the units it pairs, `CrossedDesign.of`'s
`df`), rounded down to a whole number and at most pairs − 1: df = V^2 / sum_k (V_k^2 / df_k), V_k the part of the
variance kind k carries. Where the clips carry most of it (the BVCC shape, bin 0 of the demo) that
is hundreds of df, not the 7 of the fewest clusters; where 8 systems carry it, close to 7. Alone
it undercovered (0.89–0.91 in the demo shape's cells, systems redrawn): `uncertainty` adds the
jackknife floor where systems or contents carry much of the variance. Calibrated by
`benchmarks/calibrate.py`; the numbers are in the README.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

KINDS = ("clip", "system", "content", "system_pair", "content_pair")
"""The kinds of unit a pair's outcome depends on, in the order results list them."""


@dataclass(frozen=True)
class _Kind:
    rows: np.ndarray  # int64: pair of each (pair, unit) membership
    cols: np.ndarray  # int64: unit of each membership
    g: int  # distinct units
    both: np.ndarray  # (N, 2) int64: each pair's units, -1 where it has fewer than two

    @property
    def counts(self) -> np.ndarray:
        return np.bincount(self.cols, minlength=self.g).astype(np.float64)


UNKNOWN = -1
"""A side's unit is not known: a unit of its own, equal to no other."""
ABSENT = -2
"""A side holds no unit of this kind (the system dyad of a same-system pair)."""


def _kind(codes: np.ndarray) -> _Kind:
    """Memberships of one kind from (N, 2) int codes (`UNKNOWN`, `ABSENT` or a unit >= 0); a unit
    on both sides of a pair is one membership."""
    codes = np.asarray(codes, dtype=np.int64)
    n = codes.shape[0]
    flat = codes.reshape(-1).copy()
    known = flat >= 0
    unknown = flat == UNKNOWN
    _, inverse = np.unique(flat[known], return_inverse=True)
    g_known = int(inverse.max()) + 1 if inverse.size else 0
    flat[known] = inverse.reshape(-1)
    flat[unknown] = g_known + np.arange(int(unknown.sum()))
    pair = flat.reshape(n, 2)
    rows = np.arange(n, dtype=np.int64)
    first = pair[:, 0] >= 0
    second = (pair[:, 1] >= 0) & (pair[:, 1] != pair[:, 0])
    both = np.stack([np.where(first, pair[:, 0], -1), np.where(second, pair[:, 1], -1)], axis=1)
    return _Kind(
        rows=np.concatenate([rows[first], rows[second]]),
        cols=np.concatenate([pair[first, 0], pair[second, 1]]),
        g=g_known + int(unknown.sum()),
        both=both,
    )


@dataclass(frozen=True)
class CrossedDesign:
    """The units of a cell's pairs, by kind, and the method-of-moments system (computed once)."""

    n_pairs: int
    kinds: tuple[str, ...]
    members: tuple[_Kind, ...]
    coef: np.ndarray  # (K+1, K+1): E[Q_j] = sum_k coef[j, k] s_k^2; index 0 is the residual
    target: np.ndarray  # (K+1,): Var(mean) = sum_k target[k] s_k^2
    dfs: np.ndarray  # (K+1,): degrees of freedom each component's estimate rests on

    @classmethod
    def of(
        cls, units: Mapping[str, np.ndarray], df: Mapping[str, float] | None = None
    ) -> CrossedDesign:
        """`units` maps a kind to (N, 2) int codes of each pair's a- and b-side unit; kinds with
        a single unit (nothing to generalise over) are the caller's to leave out. `df` overrides
        a kind's degrees of freedom (clusters − 1 by default): a dyad of systems rests on the
        systems, not on the number of dyads."""
        kinds = tuple(k for k in KINDS if k in units) + tuple(sorted(set(units) - set(KINDS)))
        if not kinds:
            raise ValueError("a crossed design needs at least one kind of unit")
        n = int(np.asarray(units[kinds[0]]).shape[0])
        if n < 2:
            raise ValueError(f"a crossed design needs at least two pairs, got {n}")
        members = tuple(_kind(units[k]) for k in kinds)
        counts = [m.counts for m in members]
        # r_k[p] = sum of n_u over pair p's units of kind k
        r = [
            np.bincount(m.rows, weights=c[m.cols], minlength=n)
            for m, c in zip(members, counts, strict=True)
        ]
        size = len(kinds) + 1
        coef = np.empty((size, size))
        coef[0, 0] = n - 1
        for j, (mj, cj) in enumerate(zip(members, counts, strict=True), start=1):
            cc = float(cj @ cj)
            coef[0, j] = coef[j, 0] = mj.rows.size - cc / n
            for k in range(j, size):
                mk, ck = members[k - 1], counts[k - 1]
                gram = _gram_frobenius(mj, mk, n)
                cross = float(r[j - 1] @ r[k - 1])
                coef[j, k] = coef[k, j] = gram - 2.0 * cross / n + cc * float(ck @ ck) / n**2
        target = np.array([1.0 / n] + [float(c @ c) / n**2 for c in counts])
        given = df or {}
        dfs = np.array(
            [n - 1.0]
            + [
                max(1.0, float(given.get(k, m.g - 1.0)))
                for k, m in zip(kinds, members, strict=True)
            ]
        )
        return cls(n_pairs=n, kinds=kinds, members=members, coef=coef, target=target, dfs=dfs)

    @property
    def clusters(self) -> dict[str, int]:
        return {k: m.g for k, m in zip(self.kinds, self.members, strict=True)}

    def restrict(self, kinds: tuple[str, ...]) -> CrossedDesign:
        """The design over some of its kinds: each moment's coefficient involves two kinds only,
        so this is a sub-matrix, not a recount (the systems-fixed interval reuses the cell's)."""
        keep = [0] + [1 + self.kinds.index(k) for k in kinds]
        idx = np.ix_(keep, keep)
        return CrossedDesign(
            n_pairs=self.n_pairs,
            kinds=tuple(kinds),
            members=tuple(self.members[i - 1] for i in keep[1:]),
            coef=self.coef[idx],
            target=self.target[keep],
            dfs=self.dfs[keep],
        )


_DENSE_CELLS = 1 << 22
"""Up to this many (unit, unit) cells the co-occurrence counts go through one `np.bincount`;
beyond (clips × clips on a large task) through a sort."""


def _gram_frobenius(a: _Kind, b: _Kind, n: int) -> float:
    """||Z_a' Z_b||_F^2: the sum over (unit of a, unit of b) of (pairs holding both)^2. Each pair
    holds at most two units of a kind, so its (at most 4) combinations are all there is."""
    keys = []
    for i in range(2):
        for j in range(2):
            ok = (a.both[:, i] >= 0) & (b.both[:, j] >= 0)
            keys.append(a.both[ok, i] * b.g + b.both[ok, j])
    flat = np.concatenate(keys)
    if a.g * b.g <= _DENSE_CELLS:
        counts = np.bincount(flat, minlength=0)
    else:
        _, counts = np.unique(flat, return_counts=True)
    return float((counts.astype(np.float64) ** 2).sum())


@dataclass(frozen=True)
class CrossedVariance:
    variance: float
    components: dict[str, float]  # s_k^2 per kind, "pair" for the residual
    shares: dict[str, float]  # the fraction of the variance each kind carries
    df: float  # Satterthwaite's, rounded down (module doc)


def crossed_variance(values: np.ndarray, design: CrossedDesign) -> CrossedVariance:
    """The variance of mean(values) over the design's pairs, its components and its df (module doc)."""
    v = np.asarray(values, dtype=np.float64)
    if v.shape != (design.n_pairs,):
        raise ValueError(f"{v.shape[0] if v.ndim else 0} values for {design.n_pairs} pairs")
    e = v - v.mean()
    q = [float(e @ e)]
    for m in design.members:
        sums = np.bincount(m.cols, weights=e[m.rows], minlength=m.g)
        q.append(float(sums @ sums))
    s2 = _nonnegative_solve(design.coef, np.asarray(q))
    parts = design.target * s2
    var = float(parts.sum())
    names = ("pair", *design.kinds)
    return CrossedVariance(
        var,
        {k: float(x) for k, x in zip(names, s2, strict=True)},
        {k: float(x / var) if var > 0 else 0.0 for k, x in zip(names, parts, strict=True)},
        satterthwaite(parts, design.dfs),
    )


def satterthwaite(parts: np.ndarray, dfs: np.ndarray) -> float:
    """V^2 / sum(V_k^2 / df_k) over the parts that carry variance, rounded down to a whole number
    (the t quantiles of whole df need no scipy; rounding down only widens) and at most the
    residual's pairs − 1 (`dfs[0]`: components estimated from N pairs rest on no more); the
    fewest df when no part does."""
    carrying = parts > 0
    if not carrying.any():
        return float(dfs.min())
    p, d = parts[carrying], dfs[carrying]
    df = float(p.sum()) ** 2 / float((p**2 / d).sum())
    return float(max(1.0, min(float(dfs[0]), math.floor(df * (1 + 1e-12)))))


def _nonnegative_solve(coef: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Solve coef @ s = q with s >= 0: drop the most negative component and re-solve (least
    squares on the remaining equations) until none is negative."""
    active = np.ones(q.size, dtype=bool)
    s = np.zeros(q.size)
    while active.any():
        sub = coef[:, active]
        sol, *_ = np.linalg.lstsq(sub, q, rcond=None)
        if (sol >= 0).all():
            s[:] = 0.0
            s[active] = sol
            return s
        worst = np.flatnonzero(active)[int(np.argmin(sol))]
        active[worst] = False
    return s
