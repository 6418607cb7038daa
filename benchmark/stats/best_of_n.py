"""Best of N (issue 26): if a policy generated N versions of one content and kept the one the reward
model likes best, how much better would that be, by the listeners' MOS?

Why normalised: a group's MOS range and spread differ by corpus and content, so the gain of a pick
is scaled per group, g = (MOS(pick) − mean MOS) / (max MOS − mean MOS): 1 for the oracle of the
observed labels (scores = MOS), 0 in expectation for a random pick (the mean is what a random pick
gets), negative for a model that prefers worse clips. Groups whose MOS are all equal have no
scale and are skipped and counted.

Ties in the model's top score: the pick is uniform among the tied clips, so the gain is the
*expected* gain over them (the mean of their MOS), never the first in array order. This makes the
gain a function of the scores, not of the order of the rows, and makes a constant score give
exactly 0 (all clips tie; the mean of the group is the group mean).

N: `n=None` takes every clip of each group (N = the group's size); `n=4` draws seeded subsets of 4
clips per group, `draws` of them, the gain averaged over the draws within a group (normalised
within each subset: the best a policy sampling 4 could do is the best of those 4). A subset depends
only on (seed, content id, clip key), never on array order (`draw_subsets`).

Interval: the groups are the units (contents are independent; the clips of one content are not),
so a t interval on the per-group gains, mean ± t(G − 1) · sd / √G, with no interval below G = 2.
Its upper bound is capped at 1, the most any group can gain.

Judges compare two clips, so within a group (or subset) each clip's score is its Copeland score
from a round robin (`judge_round_robin`), and the same pick and tie rules apply
(`best_of_n_judge`).

`bon_ceiling` is the noise-ceiling analogue: how far from 1 even a perfect model of the true means
would look on these labels, given the rating noise.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from benchmark.stats.uncertainty import t_value

DRAWS = 32
"""Seeded subsets per group when N is smaller than the group."""

CEILING_DRAWS = 1000
"""Noise draws of `bon_ceiling` (as `pairs.reliability.CEILING_DRAWS`)."""

DIGITS = 6
"""Decimals kept for every rate, as `stats.metrics.DIGITS`."""

SKIP_SMALL = "fewer than N clips (2 for whole groups)"
SKIP_EQUAL = "all MOS equal"
SKIP_SUBSETS_EQUAL = "every drawn subset has all MOS equal"


def _round(x: float) -> float:
    return round(float(x), DIGITS)


def _opt(x: float | None) -> float | None:
    return None if x is None else _round(x)


def _word(x: object) -> int:
    """A 64-bit word of a key's text: the same key gives the same word in every run."""
    return int.from_bytes(hashlib.blake2b(str(x).encode(), digest_size=8).digest(), "little")


def _rng(seed: int, tag: int, content: object, key: object) -> np.random.Generator:
    return np.random.default_rng([seed, tag, _word(content), _word(key)])


_SUBSET_TAG = 0
_NOISE_TAG = 1


@dataclass(frozen=True)
class _Group:
    content: object
    members: np.ndarray  # global indices in canonical order (by clip key, else by index)
    subsets: tuple[np.ndarray, ...]  # global indices, canonical order within each


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0, got {seed!r}")
    return int(seed)


def _groups(
    content: np.ndarray,
    clip_key: np.ndarray | None,
    n: int | None,
    seed: int,
    draws: int,
) -> tuple[list[_Group], dict[str, int], dict[object, int]]:
    """The content groups with at least N clips, their subsets, and the groups skipped as too
    small; also every group's size."""
    if n is not None and (isinstance(n, bool) or n < 2):
        raise ValueError(f"N must be at least 2 (or None: whole groups), got {n!r}")
    if draws < 1:
        raise ValueError(f"draws must be at least 1, got {draws}")
    if n is not None and clip_key is None:
        raise ValueError("subsets of N clips need clip_key: they must not depend on array order")
    seed = _check_seed(seed)
    keys = None if clip_key is None else np.asarray(clip_key).astype(str)
    if keys is not None and np.unique(keys).size != keys.size:
        raise ValueError("clip_key must be unique")
    values, inverse = np.unique(content, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(values.size + 1))
    minimum = 2 if n is None else n
    groups: list[_Group] = []
    sizes: dict[object, int] = {}
    skipped = {SKIP_SMALL: 0}
    for g, value in enumerate(values.tolist()):
        members = order[bounds[g] : bounds[g + 1]]
        if keys is not None:
            members = members[np.argsort(keys[members], kind="stable")]
        sizes[value] = int(members.size)
        if members.size < minimum:
            skipped[SKIP_SMALL] += 1
            continue
        if n is None or n == members.size:
            subsets: tuple[np.ndarray, ...] = (members,)
        else:
            assert keys is not None
            u = np.stack([_rng(seed, _SUBSET_TAG, value, keys[m]).random(draws) for m in members])
            picked = []
            for d in range(draws):
                first = np.sort(np.argsort(u[:, d], kind="stable")[:n])
                picked.append(members[first])
            subsets = tuple(picked)
        groups.append(_Group(value, members, subsets))
    return groups, skipped, sizes


def draw_subsets(
    content: np.ndarray,
    clip_key: np.ndarray,
    *,
    n: int,
    seed: int,
    draws: int = DRAWS,
) -> dict[str, list[tuple[str, ...]]]:
    """The subsets `best_of_n` scores, as clip keys, per content (str): a function of (seed,
    content id, clip key) only. Each clip draws `draws` uniforms from a generator seeded by
    (seed, its content, its key); subset d is the N clips with the smallest d-th uniform (ties,
    probability ~0, broken by key). Groups with fewer than N clips are absent."""
    keys = np.asarray(clip_key).astype(str)
    groups, _, _ = _groups(np.asarray(content), keys, n, seed, draws)
    return {str(grp.content): [tuple(keys[s].tolist()) for s in grp.subsets] for grp in groups}


def pick_gain(scores: np.ndarray, mos: np.ndarray) -> float | None:
    """Normalised gain of the top-scored clip of one group: (MOS(pick) − mean) / (max − mean),
    the pick's MOS the mean over the clips tied at the top score (the expected gain of a uniform
    pick among them); None where the group's MOS are all equal (no scale)."""
    s = np.asarray(scores, dtype=np.float64)
    m = np.asarray(mos, dtype=np.float64)
    best = float(m.max())
    if best == float(m.min()):
        return None
    mean = float(m.mean())
    scale = best - mean
    if not scale > 0.0:  # equal to float precision
        return None
    tied = m[s == s.max()]
    picked = float(tied[0]) if tied.min() == tied.max() else float(tied.mean())
    if tied.size == m.size:
        picked = mean  # every clip tied: exactly the group mean, so exactly 0
    return (picked - mean) / scale


@dataclass(frozen=True)
class BoNResult:
    """Best-of-N's normalised gain (module doc): the mean over the G groups used of each group's
    gain (averaged over its subsets), a t interval on G − 1 df (None below G = 2), the groups
    skipped by reason, and the mean size of the groups used. `per_group` (content as str →
    gain) is kept for plots and tests, not written by `as_json`."""

    n: int | None
    gain: float | None
    ci_low: float | None
    ci_high: float | None
    df: int | None
    sd: float | None
    groups: int
    skipped: dict[str, int]
    mean_group_size: float | None
    draws: int
    degenerate_draws: int
    seed: int
    confidence: float
    per_group: dict[str, float] = field(default_factory=dict, compare=False, repr=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "gain": _opt(self.gain),
            "ci_low": _opt(self.ci_low),
            "ci_high": _opt(self.ci_high),
            "df": self.df,
            "sd": _opt(self.sd),
            "groups": self.groups,
            "groups_skipped": dict(sorted(self.skipped.items())),
            "mean_group_size": _opt(self.mean_group_size),
            "draws": self.draws,
            "degenerate_draws": self.degenerate_draws,
            "seed": self.seed,
            "confidence": self.confidence,
        }


def _validate(mos: np.ndarray, content: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m = np.asarray(mos, dtype=np.float64)
    c = np.asarray(content)
    if m.ndim != 1 or c.shape != m.shape:
        raise ValueError(f"mos and content must be 1-d of equal length: {m.shape}, {c.shape}")
    if not np.isfinite(m).all():
        raise ValueError("mos has non-finite values: drop unrated clips first")
    return m, c


def _run(
    choose: Callable[[np.ndarray], np.ndarray],
    mos: np.ndarray,
    content: np.ndarray,
    n: int | None,
    seed: int,
    draws: int,
    clip_key: np.ndarray | None,
    confidence: float,
) -> BoNResult:
    groups, skipped, sizes = _groups(content, clip_key, n, seed, draws)
    skipped[SKIP_EQUAL] = 0
    skipped[SKIP_SUBSETS_EQUAL] = 0
    gains: list[float] = []
    per_group: dict[str, float] = {}
    used_sizes: list[int] = []
    degenerate = 0
    for grp in groups:
        if mos[grp.members].min() == mos[grp.members].max():
            skipped[SKIP_EQUAL] += 1
            continue
        draw_gains = []
        for subset in grp.subsets:
            gain = pick_gain(choose(subset), mos[subset])
            if gain is None:
                degenerate += 1
            else:
                draw_gains.append(gain)
        if not draw_gains:
            skipped[SKIP_SUBSETS_EQUAL] += 1
            continue
        value = math.fsum(draw_gains) / len(draw_gains)
        gains.append(value)
        per_group[str(grp.content)] = value
        used_sizes.append(sizes[grp.content])
    g = len(gains)
    mean = math.fsum(gains) / g if g else None
    sd = low = high = None
    df = None
    if mean is not None and g >= 2:
        sd = float(np.std(np.asarray(gains), ddof=1))
        df = g - 1
        half = t_value(df, confidence) * sd / math.sqrt(g)
        low, high = mean - half, min(1.0, mean + half)
    return BoNResult(
        n=n,
        gain=mean,
        ci_low=low,
        ci_high=high,
        df=df,
        sd=sd,
        groups=g,
        skipped=skipped,
        mean_group_size=float(np.mean(used_sizes)) if used_sizes else None,
        draws=1 if n is None else draws,
        degenerate_draws=degenerate,
        seed=int(seed),
        confidence=confidence,
        per_group=per_group,
    )


def best_of_n(
    scores: np.ndarray,
    mos: np.ndarray,
    content: np.ndarray,
    *,
    n: int | None,
    seed: int,
    draws: int = DRAWS,
    clip_key: np.ndarray | None = None,
    confidence: float = 0.95,
) -> BoNResult:
    """Best-of-N normalised gain of a scalar model (module doc). Arrays are per clip: the model's
    score, the clip's MOS, its content id and (needed when `n` is set) its unique key, on which
    alone, with the seed and content, the subsets depend. `n=None`: whole groups (N = group size).
    Non-finite scores or MOS raise."""
    m, c = _validate(mos, content)
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != m.shape:
        raise ValueError(f"scores must match mos: {s.shape}, {m.shape}")
    if not np.isfinite(s).all():
        raise ValueError("scores have non-finite values: fix the model, do not score NaN")
    return _run(lambda idx: s[idx], m, c, n, seed, draws, clip_key, confidence)


def judge_round_robin(prefer: Callable[[int, int], float], members: Sequence[int]) -> np.ndarray:
    """Copeland scores of a group's clips from a judge: score_i = Σ_{j ≠ i} prefer(i, j), where
    prefer(i, j) = P(i beats j) in [0, 1], already averaged over both presentation orders by the
    caller, so prefer(j, i) = 1 − prefer(i, j) and each unordered pair is asked once, in the
    order the members are given (i before j). Returns the scores aligned with `members`; the pick
    is their argmax, ties as `pick_gain` (the expected gain over the tied clips).

    Why a round robin: it needs no order of presentation or of the members (every pair is asked,
    the sums are exact with `math.fsum`, so the scores do not depend on the members' order), and
    for a transitive judge (one that orders clips by some hidden quality) the Copeland winner is
    exactly that judge's favourite, with its ties. A knockout would need only N − 1 comparisons but
    its winner depends on the bracket for a judge that is not transitive. Cost: N(N − 1)/2
    comparisons per group (each two forward passes, one per order): 6 for N = 4, 45 for N = 10,
    190 for N = 20."""
    idx = [int(i) for i in members]
    k = len(idx)
    wins: list[list[float]] = [[] for _ in range(k)]
    for a in range(k):
        for b in range(a + 1, k):
            p = float(prefer(idx[a], idx[b]))
            if not 0.0 <= p <= 1.0:  # NaN fails too
                raise ValueError(f"prefer({idx[a]}, {idx[b]}) = {p} is not a probability")
            wins[a].append(p)
            wins[b].append(1.0 - p)
    return np.asarray([math.fsum(w) for w in wins], dtype=np.float64)


def best_of_n_judge(
    prefer: Callable[[int, int], float],
    mos: np.ndarray,
    content: np.ndarray,
    *,
    n: int | None,
    seed: int,
    draws: int = DRAWS,
    clip_key: np.ndarray | None = None,
    confidence: float = 0.95,
) -> BoNResult:
    """Best-of-N of a judge: within each group (or drawn subset) a round robin
    (`judge_round_robin`, over the clips' indices into these arrays) gives each clip its Copeland
    score, then as `best_of_n`. A subset's round robin is over that subset only (for a judge that
    is not transitive, the subset's winner need not be the group's). Each unordered pair is asked
    once however many subsets hold it (memoised here), so a group of G clips costs at most
    G(G − 1)/2 comparisons."""
    m, c = _validate(mos, content)
    memo: dict[tuple[int, int], float] = {}

    def asked(i: int, j: int) -> float:
        lo, hi = (i, j) if i < j else (j, i)
        if (lo, hi) not in memo:
            memo[(lo, hi)] = float(prefer(lo, hi))
        p = memo[(lo, hi)]
        return p if i == lo else 1.0 - p

    return _run(
        lambda idx: judge_round_robin(asked, idx.tolist()),
        m,
        c,
        n,
        seed,
        draws,
        clip_key,
        confidence,
    )


@dataclass(frozen=True)
class BoNCeiling:
    """The best-of-N gain an oracle of the true means could expect to show on these labels
    (`bon_ceiling`): the mean over noise draws and the 2.5–97.5% range of the draws; all None
    with a `reason` where the rating noise is unknown."""

    n: int | None
    gain: float | None
    low: float | None
    high: float | None
    groups: int
    noise_draws: int
    seed: int
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "gain": _opt(self.gain),
            "range_low": _opt(self.low),
            "range_high": _opt(self.high),
            "groups": self.groups,
            "noise_draws": self.noise_draws,
            "seed": self.seed,
            "reason": self.reason,
        }


def bon_ceiling(
    mos: np.ndarray,
    content: np.ndarray,
    rating_std: np.ndarray,
    n_ratings: np.ndarray,
    *,
    n: int | None,
    seed: int,
    draws: int = DRAWS,
    clip_key: np.ndarray | None = None,
    noise_draws: int = CEILING_DRAWS,
) -> BoNCeiling:
    """The noise-ceiling analogue of best-of-N: the normalised gain, scored on the observed MOS,
    of an oracle that picks by a noisy re-rating of the clips.

    Model: observed MOS_i = μ_i + ε_i with ε_i ~ N(0, σ_i² / n_i) (σ_i the clip's rating standard
    deviation, n_i its number of ratings). The honest quantity, the gain of argmax μ on the
    observed labels, needs the posterior of μ given the labels; this uses a posterior-free
    approximation instead: each draw takes μ*_i = MOS_i + ε*_i with fresh ε*_i from the same noise
    model, the oracle picks argmax μ* in every group (or the same subsets as `best_of_n` with the
    same seed, draws and clip keys), and the pick is scored by the *observed* MOS with the usual
    normalisation. So it measures how much the observed labels disagree with a noisy re-rating of
    the same clips, i.e. the gain a perfect model of the true means could expect to show on these
    labels. Centring the draws on the observed MOS instead of the truth makes the re-rating look
    closer to the labels than the truth is in one way (its ranking starts from the labels') and
    adds a second dose of noise in another (μ* is twice as far from the labels as μ in
    variance), so read it as the scale of the label noise's effect, not an exact expectation.
    Groups and subsets are those of `best_of_n`; noise is drawn per clip from (seed, content, clip
    key) when keys are given, so it does not depend on array order either.

    Reports the mean over `noise_draws` draws of the mean-over-groups gain, and the 2.5% and 97.5%
    quantiles of those draws. Unknown noise (`rating_std` or `n_ratings` NaN or 0) of any clip of
    a group used: all None, with the reason."""
    m, c = _validate(mos, content)
    std = np.asarray(rating_std, dtype=np.float64)
    cnt = np.asarray(n_ratings, dtype=np.float64)
    if std.shape != m.shape or cnt.shape != m.shape:
        raise ValueError("rating_std and n_ratings must match mos")
    if noise_draws < 2:
        raise ValueError(f"noise_draws must be at least 2, got {noise_draws}")
    seed = _check_seed(seed)
    groups, _, _ = _groups(c, clip_key, n, seed, draws)
    groups = [g for g in groups if m[g.members].min() != m[g.members].max()]
    known = np.isfinite(std) & (std > 0) & np.isfinite(cnt) & (cnt > 0)
    used = np.concatenate([g.members for g in groups]) if groups else np.zeros(0, dtype=np.int64)
    empty = BoNCeiling(n, None, None, None, len(groups), noise_draws, seed)
    if not groups:
        return replace(empty, reason="no group with a MOS spread")
    unknown = int((~known[used]).sum())
    if unknown:
        return replace(
            empty,
            reason=f"rating noise unknown (rating_std or n_ratings missing or 0) for {unknown} "
            f"of the {used.size} clips used",
        )
    sd = std / np.sqrt(cnt)  # σ_i / √n_i
    keys = None if clip_key is None else np.asarray(clip_key).astype(str)
    eps = np.zeros((m.size, noise_draws))
    if keys is None:
        rng = np.random.default_rng([seed, _NOISE_TAG])
        eps[used] = rng.standard_normal((used.size, noise_draws))
    else:
        for i in used.tolist():
            eps[i] = _rng(seed, _NOISE_TAG, c[i], keys[i]).standard_normal(noise_draws)
    star = m[:, None] + sd[:, None] * eps  # (clips, draws)
    totals = np.zeros(noise_draws)
    counted = 0
    for grp in groups:
        per_subset = []
        for subset in grp.subsets:
            obs = m[subset]
            best, mean = float(obs.max()), float(obs.mean())
            if best == float(obs.min()) or not best - mean > 0.0:
                continue
            pick = np.argmax(star[subset], axis=0)  # continuous noise: ties have probability 0
            per_subset.append((obs[pick] - mean) / (best - mean))
        if per_subset:
            totals += np.mean(per_subset, axis=0)
            counted += 1
    if not counted:
        return replace(empty, groups=0, reason=SKIP_SUBSETS_EQUAL)
    per_draw = totals / counted
    low, high = np.quantile(per_draw, [0.025, 0.975])
    return BoNCeiling(
        n, float(per_draw.mean()), float(low), float(high), counted, noise_draws, seed
    )
