"""Simultaneous confidence intervals for the ranks of models scored on the same pairs.

Why: a leaderboard's first question is "who is best?", and a point rank answers it with more
certainty than the data hold. Significance tiers (the leader, then everything not separated from
it) were read as "equivalent" and held, in simulation, a model 3.1 points worse in 31% of
replicates; an interval per rank says instead what the data rule out: "rank 1–3".

Method (the pairwise approach of Klein, Wright & Wieczorek 2020): every pair of models is compared
by the paired test (`uncertainty.difference_test`, over the same estimand as the accuracies), Holm
adjusts the K(K−1)/2 p-values together, and model i's interval is

    [1 + #{j significantly better than i},  K − #{j significantly worse than i}].

If no pairwise decision is wrong, which Holm guarantees with probability ≥ 1 − α, every model's true
rank lies in its interval: the intervals hold simultaneously, for all models at once. Calibrated
by `benchmarks/calibrate.py` (coverage and mean width in the README). Never reads ids or order:
models are given as a mapping, and the result depends only on their correctness vectors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from benchmark.stats.uncertainty import ClipDesign, difference_test, holm

ALPHA = 0.05
"""Simultaneous error rate of the rank intervals (95% intervals)."""


@dataclass(frozen=True)
class RankInterval:
    low: int
    high: int
    n_models: int

    @property
    def label(self) -> str:
        """ "1", or "1–3": what the board prints."""
        return str(self.low) if self.low == self.high else f"{self.low}–{self.high}"


def rank_intervals(
    correct: Mapping[str, np.ndarray], design: ClipDesign, alpha: float = ALPHA
) -> dict[str, RankInterval]:
    """Rank intervals of the models (`correct`: key -> per-pair strict correctness, all on the
    design's pairs in the same order), rank 1 the most accurate (module doc)."""
    keys = sorted(correct)
    k = len(keys)
    for key in keys:
        if np.asarray(correct[key]).shape != (design.n_pairs,):
            raise ValueError(
                f"'{key}': {np.asarray(correct[key]).shape} verdicts, not {design.n_pairs}"
            )
    pairs = list(combinations(range(k), 2))
    means: list[float] = []
    ps: list[float] = []
    for i, j in pairs:
        d = np.asarray(correct[keys[i]], dtype=np.int8) - np.asarray(
            correct[keys[j]], dtype=np.int8
        )
        test = difference_test(d, design, confidence=1 - alpha)
        means.append(test.mean)
        ps.append(1.0 if test.p is None else test.p)
    better = np.zeros(k, dtype=np.int64)  # models significantly better than this one
    worse = np.zeros(k, dtype=np.int64)  # models significantly worse
    for (i, j), mean, adjusted in zip(pairs, means, holm(ps), strict=True):
        if adjusted >= alpha or mean == 0:
            continue
        win, lose = (i, j) if mean > 0 else (j, i)
        better[lose] += 1
        worse[win] += 1
    return {
        key: RankInterval(int(1 + better[n]), int(k - worse[n]), k) for n, key in enumerate(keys)
    }
