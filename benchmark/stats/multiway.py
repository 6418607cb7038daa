"""Variance of a mean over pairs that share clips, systems and contents: multi-way dyadic clustering.

Why its own module: the results' intervals (`stats.uncertainty`) treat the clip as the unit, so they
generalise over new clips of the same systems; a reward-model board is read as generalising over
new systems and contents too, and simulation shows the clip-level interval covering only 0.56–0.79
of the time when systems are redrawn (`benchmarks/calibrate.py`). This is the candidate estimator
for that estimand (issue 23): under calibration by `benchmarks/calibrate.py`, not yet what results
report. It never decides on its own which estimand a cell gets.

Each pair p holds a set M_p of units (its two clips, their systems, their contents; a unit shared
by both clips counts once). Two pairs are dependent when they share any unit, and the estimator is

    var = c * sum over ordered (p, q) with M_p ∩ M_q ≠ ∅ of e_p e_q / N²,   e_p = v_p − mean(v),

the dyadic cluster-robust form (Aronow, Samii & Assenova 2015) with every kind of unit at once
(Cameron, Gelbach & Miller 2011). The indicator of a non-empty intersection is expanded by
inclusion–exclusion over the subsets T of M_p: sum over T of (−1)^(|T|+1) (sum of e_p over the
pairs whose M_p contains T)², exact and O(pairs × 2^|M_p|) (at most 63 subsets a pair).
c = G / (G − 1) with G the fewest clusters of any kind (systems, usually): the small-sample factor
of the dimension that limits what can be learnt. With the clips alone it is `uncertainty`'s
clip-clustered variance (tested).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np


@dataclass(frozen=True)
class UnitDesign:
    """The inclusion–exclusion groups of a set of pairs, computed once per cell."""

    n_pairs: int
    entry_pair: np.ndarray  # int64: the pair of each (pair, subset) entry
    entry_group: np.ndarray  # int64: the subset's group
    group_sign: np.ndarray  # float64: (−1)^(|T|+1) per group
    clusters: dict[str, int]  # distinct units per kind

    @classmethod
    def of(cls, units: Mapping[str, tuple[Sequence[object], Sequence[object]]]) -> UnitDesign:
        """`units` maps a kind ("clip", "system", "content") to its (a-side, b-side) labels per
        pair. A missing label (None) is a unit of its own, never shared (unknown is not equal)."""
        kinds = sorted(units)
        n = len(units[kinds[0]][0])
        groups: dict[tuple[object, ...], int] = {}
        signs: list[float] = []
        pairs: list[int] = []
        entries: list[int] = []
        distinct: dict[str, set[object]] = {k: set() for k in kinds}
        for p in range(n):
            members: set[tuple[object, ...]] = set()
            for k in kinds:
                for side, labels in enumerate(units[k]):
                    label = labels[p]
                    unit = (k, label) if label is not None else (k, None, p, side)
                    members.add(unit)
                    distinct[k].add(unit)
            ordered = sorted(members, key=repr)
            for size in range(1, len(ordered) + 1):
                for subset in combinations(ordered, size):
                    g = groups.get(subset)
                    if g is None:
                        g = groups[subset] = len(signs)
                        signs.append(1.0 if size % 2 else -1.0)
                    pairs.append(p)
                    entries.append(g)
        return cls(
            n_pairs=n,
            entry_pair=np.asarray(pairs, dtype=np.int64),
            entry_group=np.asarray(entries, dtype=np.int64),
            group_sign=np.asarray(signs, dtype=np.float64),
            clusters={k: len(v) for k, v in distinct.items()},
        )

    @property
    def fewest_clusters(self) -> int:
        return min(self.clusters.values())


def multiway_variance(values: np.ndarray, design: UnitDesign) -> float:
    """The variance of mean(values) over the pairs (module doc); 0 for a single cluster."""
    v = np.asarray(values, dtype=np.float64)
    if v.shape != (design.n_pairs,):
        raise ValueError(f"{v.shape[0] if v.ndim else 0} values for {design.n_pairs} pairs")
    e = v - v.mean()
    sums = np.bincount(
        design.entry_group, weights=e[design.entry_pair], minlength=design.group_sign.size
    )
    total = float(np.dot(design.group_sign, sums * sums))
    g = design.fewest_clusters
    if g < 2:
        return 0.0
    return g / (g - 1) * total / design.n_pairs**2
