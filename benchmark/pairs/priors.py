"""The label-reliability column's prior, accumulated while the pairs are drawn (stage 2).

Why its own module: the empirical-Bayes prior variance τ² of true MOS differences, per (relation,
subset), is summed pair by pair as the builder draws them (each pair of a relation is seen once,
whichever way it is stored), so the prior never needs a second pass over a pool spilled to disk;
the per-pair estimators themselves are `benchmark.pairs.reliability`'s. Nothing here draws pairs
or writes a file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from benchmark.pairs.pools import _Clips


class LabelPriors:
    """Per (relation, subset): the sums behind the prior variance τ² of true differences.

    Filled as pairs are drawn (every pair of a relation is seen once, whichever way it is stored),
    so the prior never needs a second pass over a spilled pool.
    """

    def __init__(self, c: _Clips, rels: int) -> None:
        self.c = c
        size = (rels, int(c.subset_names.size))
        self.d2, self.se2, self.count = np.zeros(size), np.zeros(size), np.zeros(size, np.int64)
        # per clip, once: its mean's variance (NaN unknown); the hot path below only gathers
        self._u = None if c.noise is None else c.noise.var / c.noise.n
        self._all_known = self._u is not None and bool(np.isfinite(self._u).all())
        self._one_subset = np.unique(c.subset).size <= 1

    def add(self, code: int, a: np.ndarray, b: np.ndarray) -> None:
        if self._u is None or not a.size:
            return
        mos = self.c.mos
        u = self._u[a] + self._u[b]
        d = mos[a] - mos[b]
        if self._all_known and self._one_subset:  # the common case: plain sums
            j = int(self.c.subset[a[0]])
            self.d2[code, j] += float(np.dot(d, d))
            self.se2[code, j] += float(u.sum())
            self.count[code, j] += int(a.size)
            return
        known = np.isfinite(u)
        if not known.any():
            return
        sub = self.c.subset[a[known]]
        width = self.d2.shape[1]
        d = d[known]
        self.d2[code] += np.bincount(sub, weights=d * d, minlength=width)
        self.se2[code] += np.bincount(sub, weights=u[known], minlength=width)
        self.count[code] += np.bincount(sub, minlength=width)

    def tau2(self) -> np.ndarray:
        from benchmark.pairs.reliability import prior_var

        out = np.full(self.d2.shape, np.nan)
        for i, j in np.ndindex(out.shape):
            out[i, j] = prior_var(
                float(self.d2[i, j]), float(self.se2[i, j]), int(self.count[i, j])
            )
        return out

    def reliability(
        self, estimator: str, seed: int
    ) -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None:
        """The column's values for rows (a, b, relation code); None when no clip has a count."""
        noise = self.c.noise
        if noise is None or not int(self.count.sum()):
            return None
        from benchmark.pairs.reliability import bootstrap, bootstrap_means, closed_form

        tau2 = self.tau2()
        means: list[np.ndarray] = []

        def values(a: np.ndarray, b: np.ndarray, rel: np.ndarray) -> np.ndarray:
            prior = tau2[rel, self.c.subset[a]]
            if estimator == "closed_form":
                return closed_form(noise, a, b, prior)
            if not means:
                means.append(bootstrap_means(noise, seed=seed))
            return bootstrap(noise, a, b, prior, means=means[0])

        return values

    def describe(self, estimator: str, rel_names: Sequence[str]) -> dict[str, Any]:
        from benchmark.pairs.reliability import describe

        noise = self.c.noise
        if noise is None or not int(self.count.sum()):
            return {
                "estimator": None,
                "note": "no clip of this split has both a rating count and a spread",
            }
        tau2 = self.tau2()
        prior: dict[str, dict[str, float]] = {}
        for i, rel in enumerate(rel_names):
            for j, name in enumerate(self.c.subset_names.tolist()):
                if self.count[i, j]:
                    label = "null" if name is None else str(name)
                    prior.setdefault(rel, {})[label] = round(float(np.sqrt(tau2[i, j])), 6)
        return {
            **describe(noise, estimator),
            "pairs_rated": int(self.count.sum()),
            "prior_sd": prior,
        }
