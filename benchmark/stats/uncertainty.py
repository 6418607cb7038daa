"""Uncertainty that says what it generalises over: intervals and paired tests over new clips,
systems and contents, and the rules for when they cannot be.

Why: pairs share clips (the demo's 3,000 test pairs come from 256 clips, each in ~23 pairs), and
clips share systems and contents; a reader of a reward-model board takes "82.6 [74.4, 88.6]" to be
about new speech from new systems. An interval over new clips of the same 8 systems covered that
truth 0.56–0.77 of the time in simulation (`benchmarks/calibrate.py`, scenario B).

Estimand of a cell (`estimand`): clips always; systems and contents when the pairs carry their ids
and the cell has at least `MIN_CLUSTERS` of them, else held fixed, with a note saying so (the
interval is then about new clips of *these* systems); none at all where one unit holds more than
`DOMINANT_SHARE` of the pairs (`_dominated`: its effect is in every pair, no estimate can see it,
and a star design's variance would read 0). `fixed=("system",)` gives the systems-fixed interval
each cell also records.

Variance of a mean over the pairs (accuracy, or a paired difference), `spread`: the crossed
variance components of `stats.crossed` over the estimand's kinds and the system and content dyads
(a pair of systems is its own unit: whether a model orders two systems right is not the sum of
what it does with each), on t with Satterthwaite's df; where systems or contents carry more than
`FLOOR_SHARE` of that variance, or the cell's pairs were picked by their labels (a ΔMOS bin or
subset), and systems or contents have fewer than `JACKKNIFE_BELOW` units, never below the
delete-one-unit jackknife over them, on t(G − 1), because with 8 systems accuracy is a U-statistic
of their spacing, far from normal. Calibrated by simulation (the README's tables, from
`benchmarks/calibration.jsonl`).

Accuracy interval (`accuracy_interval`, `score_interval`): Wilson's score interval at Korn &
Graubard's (1998) effective n* = (N / deff) (z / t_df)^2, deff = max(1, var / (p(1 − p) / N)), so
it stays inside [0, 1], is never narrower than the pair-level Wilson at the same df, and for a given
design effect its bounds are monotone in the count correct. Where the outcome says nothing about
clustering (p is 0 or 1): deff = 1, df = N − 1, so N/N never gets a lower bound below (N−1)/N's.

Paired difference (`difference_test`): v = correct_A − correct_B in {−1, 0, 1}; the same variance,
never below Agresti & Min's (2005) pair-level one (half a pair added to each discordant count), so
it is positive even when one model wins every pair; t interval and two-sided p on the same df.

Clip-only tools kept for the triplets of judges' diagnostics (three clips per unit, no systems):
`clip_variance` (the dyadic cluster-robust form, g/(g−1) Σ_{p,q share a clip} e_p e_q / N²) and
`effective_n`.

Multiplicity: `holm` (Holm 1979); `metrics.compare` gatekeeps with it, `stats.ranks` uses it over
every pair of models.

Imports, for a fast start: an evaluation imports no scipy. The 95% z is a checked constant (`_Z`),
t quantiles of whole df come from the exact finite series of the t distribution (`t_value`), and
scipy.special is imported only for p-values (compare, rank intervals, judges' diagnostics).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import numpy.typing as npt

from benchmark.stats.crossed import ABSENT, UNKNOWN, CrossedDesign, crossed_variance

ESTIMATOR = (
    "crossed variance components over clips, systems, contents and their dyads on Satterthwaite "
    "df; jackknife floor on t(G - 1) below 20 units where systems or contents carry > 30% of it "
    "or in label-selected cells (bins, subsets); Wilson at Korn-Graubard n*"
)
"""Name recorded in results next to every interval."""

_Z = {0.95: 1.959963984540054}
"""`scipy.special.ndtri(0.975)` to the last bit (tests/test_uncertainty.py checks it): the z of the
95% interval every result reports, known here so that an evaluation never imports scipy."""

_BLOCK = 256
"""Replicates summed per `np.bincount` call in `clip_variance` (bounds its temporary arrays)."""


def z_value(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    known = _Z.get(confidence)
    if known is not None:
        return known
    from scipy import special

    return float(special.ndtri(0.5 + confidence / 2.0))


@dataclass(frozen=True)
class ClipDesign:
    """Which units each pair of a cell holds: `codes[p]` are the two clips of pair p, as indices
    0..g-1 into the cell's clips; `system`/`content` (when known) the (N, 2) codes of their
    systems and contents, -1 where a clip's is unknown."""

    codes: np.ndarray  # (N, 2) int64
    g: int
    system: np.ndarray | None = None  # (N, 2) int64
    content: np.ndarray | None = None
    by_label: bool = False
    """The pairs were selected by their labels (a ΔMOS bin or subset): see `spread`."""
    _memo: dict[tuple[str, ...], object] = field(
        default_factory=dict, compare=False, repr=False, hash=False
    )

    @classmethod
    def of(
        cls,
        clip_a: np.ndarray,
        clip_b: np.ndarray,
        system: tuple[Sequence[object], Sequence[object]] | None = None,
        content: tuple[Sequence[object], Sequence[object]] | None = None,
    ) -> ClipDesign:
        """`clip_a`/`clip_b` are per-pair clip keys (any hashable dtype numpy can unique);
        `system`/`content` the (a-side, b-side) labels, None where unknown."""
        a = np.asarray(clip_a)
        b = np.asarray(clip_b)
        if a.shape != b.shape or a.ndim != 1:
            raise ValueError(f"clip keys must be 1-d of equal length: {a.shape}, {b.shape}")
        n = a.size
        _, codes = np.unique(np.concatenate([a, b]), return_inverse=True)
        codes = codes.reshape(-1).astype(np.int64)
        g = int(codes.max()) + 1 if n else 0
        if n and (codes[:n] == codes[n:]).any():
            raise ValueError("a pair cannot hold the same clip twice")
        return cls(
            codes=np.stack([codes[:n], codes[n:]], axis=1),
            g=g,
            system=_label_codes(system, n),
            content=_label_codes(content, n),
        )

    @property
    def n_pairs(self) -> int:
        return int(self.codes.shape[0])

    @property
    def n_clips(self) -> int:
        return self.g

    @property
    def n_per_clip(self) -> np.ndarray:
        """(g,) pairs containing each clip."""
        return np.bincount(self.codes.reshape(-1), minlength=self.g).astype(np.float64)

    def subset(self, mask: np.ndarray, *, by_label: bool = False) -> ClipDesign:
        """The design of the pairs selected by a boolean mask (clips not used are dropped);
        `by_label` where the mask comes from the pairs' labels (a ΔMOS bin or subset)."""
        rows = np.flatnonzero(mask)
        codes = self.codes[rows]
        used, inverse = np.unique(codes, return_inverse=True)
        return ClipDesign(
            codes=inverse.reshape(codes.shape).astype(np.int64),
            g=int(used.size),
            system=None if self.system is None else self.system[rows],
            content=None if self.content is None else self.content[rows],
            by_label=by_label or self.by_label,
        )

    def distinct(self, kind: str) -> int:
        """Known distinct systems or contents among the pairs (0 when unknown)."""
        codes = self.system if kind == "system" else self.content
        if codes is None:
            return 0
        return int(np.unique(codes[codes >= 0]).size)


def _label_codes(
    labels: tuple[Sequence[object], Sequence[object]] | None, n: int
) -> np.ndarray | None:
    if labels is None:
        return None
    a = np.asarray(labels[0], dtype=object)
    b = np.asarray(labels[1], dtype=object)
    if a.shape != (n,) or b.shape != (n,):
        raise ValueError(f"unit labels must be 1-d of the pairs' length {n}: {a.shape}, {b.shape}")
    both = np.concatenate([a, b])
    known = np.array([x is not None for x in both.tolist()], dtype=bool)
    out = np.full(2 * n, -1, dtype=np.int64)
    if known.any():
        _, inverse = np.unique(both[known].astype(str), return_inverse=True)
        out[known] = inverse.reshape(-1)
    if not known.any():
        return None
    return np.stack([out[:n], out[n:]], axis=1)


MIN_CLUSTERS = 8
"""Fewest distinct systems (or contents) a cell needs for its interval to generalise over new
ones. Calibrated (`benchmarks/calibrate.py`, 1,000 simulated listening tests a setting): with 8
systems the default interval covered 0.92-0.97 per relation; with 6 contents it covered 0.91 in
the cell whose pairs differ only in content, below the 0.92 floor, so fewer than 8 units of a kind
are held fixed: the cell's interval is then about new clips of *these* systems (or contents), and
says so."""

DOMINANT_SHARE = 0.5
"""A cell where one clip, system or content holds more than this share of the pairs gets no
interval: that unit's own effect is in every such pair and cannot be told apart from the model's
accuracy, so no variance estimate from the cell can include it (a star design would report 0)."""

_NAMES = {"clip": "clips", "system": "systems", "content": "contents"}


@dataclass(frozen=True)
class Estimand:
    """What a cell's interval generalises over, and why not more."""

    kinds: tuple[str, ...]  # "clip" first, then "system", "content" where generalised over
    clusters: dict[str, int]  # distinct known units per kind in the cell
    notes: tuple[str, ...]  # why a kind is held fixed, or why there is no interval
    dominated: str | None = None  # the reason the cell gets no interval

    @property
    def label(self) -> str:
        """E.g. "clips, systems, contents": the results' `generalises_over`."""
        return ", ".join(_NAMES[k] for k in self.kinds)


def estimand(design: ClipDesign, fixed: Sequence[str] = ()) -> Estimand:
    """The kinds a cell's interval can generalise over: clips always; systems and contents when
    known and at least `MIN_CLUSTERS` of them (else held fixed, with a note); `fixed` holds
    kinds fixed by request (the systems-fixed interval)."""
    key = ("estimand", *fixed)
    known = design._memo.get(key)
    if isinstance(known, Estimand):
        return known
    out = _estimand(design, fixed)
    design._memo[key] = out
    return out


def _estimand(design: ClipDesign, fixed: Sequence[str]) -> Estimand:
    kinds = ["clip"]
    clusters = {"clip": design.n_clips}
    notes: list[str] = []
    for kind in ("system", "content"):
        g = design.distinct(kind)
        clusters[kind] = g
        if kind in fixed:
            continue
        if g == 0:
            notes.append(f"{_NAMES[kind]} unknown: held fixed")
        elif g < MIN_CLUSTERS:
            notes.append(
                f"{g} {_NAMES[kind]}: too few to generalise over new {_NAMES[kind]} "
                f"(fewer than {MIN_CLUSTERS}), held fixed"
            )
        else:
            kinds.append(kind)
    dominated = _dominated(design, kinds)
    return Estimand(tuple(kinds), clusters, tuple(notes), dominated)


def _dominated(design: ClipDesign, kinds: Sequence[str]) -> str | None:
    n = design.n_pairs
    if n == 0:
        return None
    for kind in kinds:
        codes = design.codes if kind == "clip" else getattr(design, kind)
        if codes is None:
            continue
        units, _ = _held(codes)
        if units.size == 0:
            continue
        top = int(np.bincount(units).max())
        if top > DOMINANT_SHARE * n:
            return (
                f"one {kind} holds {top} of the {n} pairs (more than {DOMINANT_SHARE:.0%}): "
                "its effect cannot be told apart from the model's, so no interval"
            )
    return None


def _held(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unit, pair) of every known membership of (N, 2) unit codes; a unit on both sides of a
    pair is held once (as `stats.crossed` counts it)."""
    one = codes[:, 0]
    other = np.where(codes[:, 1] != codes[:, 0], codes[:, 1], -1)
    held = np.concatenate([one, other])
    pair = np.tile(np.arange(codes.shape[0]), 2)
    keep = held >= 0
    return held[keep], pair[keep]


def _crossed(design: ClipDesign, kinds: Sequence[str]) -> CrossedDesign:
    """The crossed design of a cell over `kinds` (and their dyads): built once over every kind the
    cell knows, then restricted, so the default and the systems-fixed interval share the work."""
    key = ("crossed", *kinds)
    known = design._memo.get(key)
    if isinstance(known, CrossedDesign):
        return known
    full = design._memo.get(("crossed-all",))
    if not isinstance(full, CrossedDesign):
        units: dict[str, np.ndarray] = {"clip": design.codes}
        df: dict[str, float] = {}
        for kind in ("system", "content"):
            codes = getattr(design, kind)
            if codes is None or design.distinct(kind) < 2:
                continue
            units[kind] = codes
            dyads = _dyads(codes)
            if dyads is not None:
                units[f"{kind}_pair"] = dyads
                df[f"{kind}_pair"] = design.distinct(kind) - 1.0
        full = CrossedDesign.of(units, df)
        design._memo[("crossed-all",)] = full
    wanted = [k for k in full.kinds if k.removesuffix("_pair") in kinds]
    out = full.restrict(tuple(wanted))
    design._memo[key] = out
    return out


def _dyads(codes: np.ndarray) -> np.ndarray | None:
    """The unordered pair of units of each pair as one unit (ABSENT where both sides share one,
    UNKNOWN where either is unknown), or None when no two pairs share a dyad."""
    lo, hi = np.minimum(codes[:, 0], codes[:, 1]), np.maximum(codes[:, 0], codes[:, 1])
    width = int(hi.max()) + 1 if hi.size else 1
    dyad = np.where(lo < 0, UNKNOWN, np.where(lo == hi, ABSENT, lo * width + hi))
    known = dyad[dyad >= 0]
    if known.size == 0 or np.unique(known).size == known.size:
        return None
    return np.stack([dyad, dyad], axis=1)


@dataclass(frozen=True)
class Spread:
    """The variance of a cell's mean under an estimand, with the t quantile's df."""

    variance: float
    df: float
    estimand: Estimand


JACKKNIFE_BELOW = 20
"""A kind generalised over with fewer units than this may get the delete-one-unit jackknife
(`FLOOR_SHARE` says when). Why: with 8 systems the accuracy is a U-statistic of the systems'
spacing, far from normal; the jackknife is conservative for such statistics (Efron & Stein 1981).
With 20 or more units the crossed estimate alone was calibrated."""

FLOOR_SHARE = 0.3
"""The jackknife floor applies where a system or content kind (or its dyad) carries more than this
share of the crossed variance, and in every cell whose pairs were selected by their labels (a ΔMOS
bin or subset: `ClipDesign.by_label`), then on t(G − 1) of that kind. Why (simulated demo-shape
tests, systems redrawn): Satterthwaite's df alone covered 0.89–0.91 in the same-content and cross
cells; the floor everywhere (metrics version 3) covered up to 0.99 in bin 0 at 1.6× the width
needed; the floor above a share of 0.3 covered 0.925–0.963 in every cell with the 80% model
(exploratory runs), but in the acceptance run bin 0 of the 95% model covered 0.900: a bin's
membership follows the sampled labels, a source of variance the crossed model does not hold. With
the floor in label-selected cells too, bin 0 covered 0.938–0.958 for the 95% model (400 tests,
exploratory), at the cost of over-covering bins of weak models (up to 0.995)."""

_UNIT_KINDS = ("system", "content", "system_pair", "content_pair")


def spread(values: np.ndarray, design: ClipDesign, target: Estimand) -> Spread:
    """Crossed variance components over the estimand's kinds on Satterthwaite's df
    (`stats.crossed`); where systems or contents carry more than `FLOOR_SHARE` of it, or the pairs
    were selected by their labels, never below the delete-one-unit jackknife of a kind with few
    units, on that kind's G − 1. One pair has nothing to estimate from."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < 2:
        return Spread(0.0, 1.0, target)
    cv = crossed_variance(v, _crossed(design, target.kinds))
    var = max(cv.variance, 0.0)
    df = max(1.0, cv.df)
    shared = max((cv.shares.get(k, 0.0) for k in _UNIT_KINDS), default=0.0)
    if shared <= FLOOR_SHARE and not design.by_label:
        return Spread(var, df, target)
    for kind in target.kinds:
        codes = getattr(design, kind) if kind != "clip" else None
        g = design.distinct(kind) if codes is not None else 0
        if codes is not None and 2 <= g < JACKKNIFE_BELOW:
            jack = delete_one_jackknife(v, codes)
            if jack > var:
                var, df = jack, min(df, g - 1.0)
    return Spread(var, df, target)


def delete_one_jackknife(values: np.ndarray, codes: np.ndarray) -> float:
    """(G − 1)/G sum over units u of (mean without the pairs holding u − their average)^2, over
    the known units that leave some pairs behind; O(pairs)."""
    v = np.asarray(values, dtype=np.float64)
    n = v.size
    units, pairs = _held(codes)
    g = int(units.max(initial=-1)) + 1
    if g < 2:
        return 0.0
    sums = np.bincount(units, weights=v[pairs], minlength=g)
    counts = np.bincount(units, minlength=g).astype(np.float64)
    left = n - counts
    usable = (counts > 0) & (left > 0)
    if usable.sum() < 2:
        return 0.0
    theta = (v.sum() - sums[usable]) / left[usable]
    k = theta.size
    return float((k - 1) / k * ((theta - theta.mean()) ** 2).sum())


def clip_sums(e: np.ndarray, design: ClipDesign) -> np.ndarray:
    """(S, g): per row of `e` (S, N), S_i = the sum of e_p over the pairs p holding clip i.

    Added in pair order, starting from 0, as the sparse product (incidence.T @ e.T) that this
    replaced did, so the float64 sums are bit-identical (tests/test_uncertainty.py) and so are
    the results; numpy alone, because scipy.sparse was the heaviest import of an evaluation.
    """
    s = e.shape[0]
    g = design.n_clips
    flat = design.codes.reshape(-1)  # pair 0's two clips, then pair 1's, ...
    # column-major, as that product's transpose was: a reduction over clips then adds in the
    # same order for S > 1 replicates too
    out = np.empty((s, g), dtype=np.float64, order="F")
    for start in range(0, s, _BLOCK):
        block = e[start : start + _BLOCK]
        k = block.shape[0]
        index = (np.arange(k)[:, None] * g + flat[None, :]).reshape(-1)
        weights = np.repeat(block, 2, axis=1).reshape(-1)
        out[start : start + k] = np.bincount(index, weights, minlength=k * g).reshape(k, g)
    return out


def clip_variance(values: np.ndarray, design: ClipDesign) -> np.ndarray:
    """Clip-clustered variance of the mean of `values` over the design's pairs (module doc).

    `values` has shape (N,) or (S, N) (S replicates, e.g. seeds, sharing one design); the result
    has shape () or (S,). It may be <= 0 for tiny or degenerate cells; callers fall back then.
    """
    v = np.asarray(values, dtype=np.float64)
    one = v.ndim == 1
    v2 = v[None, :] if one else v
    n, g = design.n_pairs, design.n_clips
    if v2.shape[-1] != n:
        raise ValueError(f"values have {v2.shape[-1]} pairs, the design {n}")
    if n == 0:
        out = np.full(v2.shape[0], np.nan)
        return cast(np.ndarray, out[0]) if one else out  # shape (): a NumPy scalar
    e = v2 - v2.mean(axis=1, keepdims=True)
    per_clip = clip_sums(e, design)  # (S, g): S_i
    shared = (per_clip * per_clip).sum(axis=1) - (e * e).sum(axis=1)
    var = g / (g - 1) * shared / (n * n)
    return cast(np.ndarray, var[0]) if one else var  # shape (): a NumPy scalar


def fallback_units(n_pairs: int, n_clips: int, clips_per_unit: int = 2) -> float:
    """Effective independent units when the variance is silent: units that could be disjoint
    (a pair holds 2 clips, a triplet 3)."""
    return float(max(1.0, min(n_pairs, n_clips / clips_per_unit)))


def wilson(p: npt.ArrayLike, n_eff: npt.ArrayLike, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for proportion p at a (possibly non-integer) sample size n_eff."""
    p = np.asarray(p, dtype=np.float64)
    n_eff = np.asarray(n_eff, dtype=np.float64)
    z2n = z * z / n_eff
    denom = 1.0 + z2n
    centre = (p + z2n / 2.0) / denom
    half = z * np.sqrt(p * (1.0 - p) / n_eff + z2n / (4.0 * n_eff)) / denom
    low = np.where(p <= 0.0, 0.0, np.maximum(0.0, centre - half))
    high = np.where(p >= 1.0, 1.0, np.minimum(1.0, centre + half))
    return low, high


def effective_n(
    p: npt.ArrayLike, var: npt.ArrayLike, n_pairs: int, n_clips: int, clips_per_unit: int = 2
) -> np.ndarray:
    """N / deff, deff = max(1, var / binomial var); the fallback where the variance is silent.

    `n_pairs` counts the units (pairs, or triplets with `clips_per_unit=3`)."""
    p = np.asarray(p, dtype=np.float64)
    var = np.asarray(var, dtype=np.float64)
    binom = p * (1.0 - p) / n_pairs
    informative = np.isfinite(var) & (binom > 0) & (var > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        deff = np.where(informative, np.maximum(1.0, var / np.where(binom > 0, binom, 1.0)), 1.0)
    fallback = fallback_units(n_pairs, n_clips, clips_per_unit)
    return np.where(informative, n_pairs / deff, fallback)


@functools.lru_cache(maxsize=4096)
def t_value(df: float, confidence: float) -> float:
    """The two-sided `confidence` quantile of Student's t on `df` degrees of freedom.

    Whole df (all the results use: clusters − 1 or pairs − 1) by bisection on the exact
    finite-series CDF of Abramowitz & Stegun 26.7.3–4, so that an evaluation still imports no
    scipy (0.15 s); it agrees with scipy.stats.t.ppf to 1e-12 (tests/test_uncertainty.py). Other
    df go to scipy.special.stdtrit."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if df != int(df) or df < 1:
        from scipy import special

        return float(special.stdtrit(df, 0.5 + confidence / 2.0))
    nu = int(df)
    lo, hi = 0.0, 1.0
    while _t_central(hi, nu) < confidence:
        hi *= 2.0
    for _ in range(200):  # to the last bit
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if _t_central(mid, nu) < confidence:
            lo = mid
        else:
            hi = mid
    return hi


def _t_central(t: float, nu: int) -> float:
    """P(|T| <= t) for T ~ t(nu), nu whole (A&S 26.7.3 odd nu, 26.7.4 even nu)."""
    theta = math.atan(t / math.sqrt(nu))
    c2 = math.cos(theta) ** 2
    if nu % 2:  # 1 + (2/3)c² + (2·4)/(3·5)c⁴ + ... up to c^(nu−3), times sin·cos
        k = np.arange(1, (nu - 1) // 2, dtype=np.float64)
        terms = np.cumprod(2.0 * k / (2.0 * k + 1.0) * c2)
        series = 1.0 + float(terms.sum()) if nu > 1 else 0.0
        return 2.0 / math.pi * (theta + math.sin(theta) * math.cos(theta) * series)
    k = np.arange(1, nu // 2, dtype=np.float64)  # 1 + (1/2)c² + (1·3)/(2·4)c⁴ + ...
    terms = np.cumprod((2.0 * k - 1.0) / (2.0 * k) * c2)
    return math.sin(theta) * (1.0 + float(terms.sum()))


@dataclass(frozen=True)
class Interval:
    """A cell's accuracy interval under one estimand; `low`/`high` None when dominated."""

    p: float
    variance: float
    df: float
    design_effect: float
    low: float | None
    high: float | None
    estimand: Estimand


def accuracy_interval(
    correct: np.ndarray,
    design: ClipDesign,
    confidence: float = 0.95,
    fixed: Sequence[str] = (),
) -> Interval:
    """Accuracy with its interval over the cell's estimand (module doc).

    Korn & Graubard (1998): Wilson's score interval at n* = (N / deff) (z / t_df)^2, deff =
    max(1, var / binomial var); where the outcome says nothing about clustering (p is 0 or 1)
    deff = 1 and df = N - 1, which keeps the bounds monotone in the count correct."""
    c = np.asarray(correct, dtype=np.float64)
    n = design.n_pairs
    if n == 0 or c.shape != (n,):
        raise ValueError(f"an interval needs 1-d values for the design's {n} > 0 pairs")
    target = estimand(design, fixed)
    p = float(c.mean())
    binom = p * (1.0 - p) / n
    if binom <= 0:
        var, df, deff = 0.0, float(max(1, n - 1)), 1.0
    else:
        sp = spread(c, design, target)
        var, df = sp.variance, sp.df
        deff = max(1.0, var / binom)
    if target.dominated is not None:
        return Interval(p, var, df, deff, None, None, target)
    low, high = score_interval(p, n, deff, df, confidence)
    return Interval(p, var, df, deff, low, high, target)


def score_interval(
    p: float, n: int, deff: float, df: float, confidence: float = 0.95
) -> tuple[float, float]:
    """Wilson's score interval at the effective n* = (n / deff) (z / t_df)^2 (Korn & Graubard
    1998). For a given design effect and df its bounds are monotone in the count correct, inside
    [0, 1], and of positive width for every k = 0..n (tests/test_uncertainty.py); the design
    effect itself is estimated from where the errors fall, so two outcomes with the same count
    but differently clustered errors get different intervals, as they should."""
    z = z_value(confidence)
    n_star = n / deff * (z / t_value(df, confidence)) ** 2
    low, high = wilson(np.float64(p), np.float64(n_star), z)
    return float(low), float(high)


@dataclass(frozen=True)
class Difference:
    """A paired difference's test; `low`/`high`/`p` None when dominated."""

    mean: float
    se: float
    df: float
    low: float | None
    high: float | None
    p: float | None
    estimand: Estimand


def difference_test(diff: np.ndarray, design: ClipDesign, confidence: float = 0.95) -> Difference:
    """Mean paired difference (v in {-1, 0, 1}) with a t interval and two-sided p-value over the
    cell's estimand (module doc). The variance is never below Agresti & Min's (2005) pair-level
    one, which adds half a pair to each discordant count: so one model winning every pair gets a
    finite, non-degenerate interval and a p-value that agrees with it."""
    d = np.asarray(diff, dtype=np.float64)
    n = design.n_pairs
    if n == 0 or d.shape != (n,):
        raise ValueError(f"a paired test needs 1-d values for the design's {n} > 0 pairs")
    target = estimand(design)
    mean = float(d.mean())
    b = float((d > 0).sum()) + 0.5
    c = float((d < 0).sum()) + 0.5
    n2 = n + 2.0
    floor = ((b + c) - (b - c) ** 2 / n2) / n2**2
    if np.all(d == d[0]):
        var, df = 0.0, float(max(1, n - 1))
    else:
        sp = spread(d, design, target)
        var, df = sp.variance, sp.df
    se = math.sqrt(max(var, floor))
    if target.dominated is not None:
        return Difference(mean, se, df, None, None, None, target)
    from scipy import special

    q = t_value(df, confidence)
    p = float(min(1.0, 2.0 * special.stdtr(df, -abs(mean) / se)))
    low = max(-1.0, mean - q * se)
    high = min(1.0, mean + q * se)
    return Difference(mean, se, df, low, high, p, target)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values, in input order."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    scaled = (m - np.arange(m)) * p[order]
    adjusted = np.minimum(1.0, np.maximum.accumulate(scaled))
    out = np.empty(m)
    out[order] = adjusted
    return out.tolist()
