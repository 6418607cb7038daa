"""The numbers of the probes (issue 26): what an optimiser would do with a reward model, as pure
functions of arrays.

Why a module of its own: a probe is not a listening test. Its "pairs" are a clean clip against a
degraded copy of itself (sensitivity), or a test pair whose rejected clip was transformed in a way
that should not help it (flip rate, score shift); nothing here reads a label beyond "the clean clip
is better" or "the pair was right before". The intervals are still the harness's own: every
accuracy-type number goes through `uncertainty.accuracy_interval` with a `ClipDesign`, so a probe's
"92.0 [85.1, 96.0]" means what a board cell's does (over new clips; dominated designs get no bound,
reported as None, never invented).

Definitions:

sensitivity
    One row per probe, i.e. per (family, level): each pair is (clean clip, its degraded copy),
    correct iff score(clean) > score(degraded), strictly (a tie is wrong, the harness's rule, and
    the tie rate is reported beside). A judge gives P(clean preferred) averaged over both
    presentation orders (`judge_prob`): correct iff > 0.5, a tie iff == 0.5. The design has the
    clean source clip on one side and a unique degraded clip on the other, so pairs are clustered
    by source clip (a source degraded many ways is one unit, not many).
monotonicity
    Per family, accuracy should not fall as the degradation gets worse (level 0 mildest). Every
    pair of levels i < j with acc_j < acc_i is a violation; it is called significant only when the
    two intervals do not overlap (high_j < low_i) — conservative, and a one-sided paired test
    across levels (which share source clips) would be heavier machinery than a flag needs.
degradation accuracy
    Micro accuracy over every degradation pair of every probe, clustered by source clip.
flip rate
    Among the test pairs the model gets right (strictly) before, the share it gets wrong (not
    strictly right) once only the rejected clip is transformed; n = the pairs right before, so a
    model that was wrong anyway is not credited with resisting the hack.
score shift
    Mean (after − before) over the transformed clips, in units of the model's own score spread (the
    standard deviation, ddof = 1, of its scores on the task's clean test clips), so that models on
    different scales compare. Judges have no scalar score: their shift is None (`ScoreShift.judge`).

Every record has `as_json()`: plain dicts, rates rounded to `DIGITS` decimals and named as the
cells of `stats.metrics` are ("accuracy", "ci_low", "ci_high", "n", "n_clips", "correct",
"ties", "tie_rate", "df", "design_effect", "generalises_over", "interval_note").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark.stats.uncertainty import ClipDesign, Estimand, Interval, accuracy_interval

DIGITS = 6
"""Decimals kept for every rate, as `stats.metrics.DIGITS` (tests/test_probe_stats.py ties them;
not imported, because metrics pulls in pyarrow and the pair tables)."""


def _round(x: float) -> float:
    return round(float(x), DIGITS)


def _bound(x: float | None) -> float | None:
    return None if x is None else _round(x)


def _note(target: Estimand) -> str | None:
    """Why an interval generalises over less than clips, systems and contents, or why it has none
    (as `stats.metrics` writes it)."""
    parts = [*target.notes]
    if target.dominated is not None:
        parts.append(target.dominated)
    return "; ".join(parts) or None


@dataclass(frozen=True)
class Cell:
    """A rate over pairs with the harness's clip-aware interval: `rate` is an accuracy or a flip
    rate; `low`/`high` None where the design is dominated (one clip in more than half the pairs)."""

    n: int
    n_clips: int
    hits: int
    ties: int
    rate: float
    low: float | None
    high: float | None
    df: float
    design_effect: float
    generalises_over: str
    interval_note: str | None

    @classmethod
    def of(
        cls, hits: np.ndarray, ties: np.ndarray, design: ClipDesign, confidence: float = 0.95
    ) -> Cell:
        est: Interval = accuracy_interval(hits.astype(np.float64), design, confidence)
        return cls(
            n=design.n_pairs,
            n_clips=design.n_clips,
            hits=int(hits.sum()),
            ties=int(ties.sum()),
            rate=est.p,
            low=est.low,
            high=est.high,
            df=est.df,
            design_effect=est.design_effect,
            generalises_over=est.estimand.label,
            interval_note=_note(est.estimand),
        )

    def interval_json(self) -> dict[str, Any]:
        return {
            "ci_low": _bound(self.low),
            "ci_high": _bound(self.high),
            "generalises_over": self.generalises_over,
            "interval_note": self.interval_note,
            "df": _round(self.df),
            "design_effect": _round(self.design_effect),
        }

    def accuracy_json(self) -> dict[str, Any]:
        """The cell as an accuracy (the names of `stats.metrics.cell`)."""
        return {
            "accuracy": _round(self.rate),
            **self.interval_json(),
            "n": self.n,
            "n_clips": self.n_clips,
            "correct": self.hits,
            "ties": self.ties,
            "tie_rate": _round(self.ties / self.n),
        }


def _float_1d(name: str, x: np.ndarray, n: int | None = None) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1 or (n is not None and a.size != n):
        raise ValueError(f"{name} must be 1-d of length {n}, got shape {a.shape}")
    bad = int((~np.isfinite(a)).sum())
    if bad:
        raise ValueError(f"{name} has {bad} non-finite values: fix the model, do not score NaN")
    return a


def _keys_1d(name: str, x: np.ndarray, n: int) -> np.ndarray:
    a = np.asarray(x)
    if a.shape != (n,):
        raise ValueError(f"{name} must be 1-d of length {n}, got shape {a.shape}")
    return a


def _outcomes(
    scores_clean: np.ndarray | None,
    scores_degraded: np.ndarray | None,
    judge_prob: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """(correct, tie) per pair: clean strictly preferred, or tied."""
    if judge_prob is not None:
        if scores_clean is not None or scores_degraded is not None:
            raise ValueError(
                "pass scores_clean/scores_degraded (a scalar model) or judge_prob (a judge), "
                "not both: a judge's answer is its order-averaged P(clean preferred)"
            )
        p = _float_1d("judge_prob", judge_prob)
        if ((p < 0.0) | (p > 1.0)).any():
            raise ValueError("judge_prob must be in [0, 1]")
        return p > 0.5, p == 0.5
    if scores_clean is None or scores_degraded is None:
        raise ValueError("a scalar model needs both scores_clean and scores_degraded")
    clean = _float_1d("scores_clean", scores_clean)
    degraded = _float_1d("scores_degraded", scores_degraded, clean.size)
    return clean > degraded, clean == degraded


Labels = tuple[Sequence[object], Sequence[object]]
"""(a-side, b-side) system or content labels per pair, None where unknown (`ClipDesign.of`)."""


def _source_design(
    source: np.ndarray,
    system: Sequence[object] | None = None,
    content: Sequence[object] | None = None,
) -> ClipDesign:
    """Each pair is (its clean source clip, a degraded clip of its own): the degraded keys are
    unique by construction, so the source clip is the only clip pairs share; a degraded copy has
    its source's system and content, so with those given the interval is the default crossed
    one (new clips, systems and contents, where there are enough of them)."""
    _, codes = np.unique(source, return_inverse=True)
    codes = codes.reshape(-1).astype(np.int64)
    width = int(codes.max()) + 1 if codes.size else 0
    return ClipDesign.of(
        codes,
        width + np.arange(codes.size, dtype=np.int64),
        system=None if system is None else (system, system),
        content=None if content is None else (content, content),
    )


def _pair_labels(labels: Labels | None, mask: np.ndarray) -> Labels | None:
    if labels is None:
        return None
    a_side = [x for x, m in zip(labels[0], mask, strict=True) if m]
    b_side = [x for x, m in zip(labels[1], mask, strict=True) if m]
    return a_side, b_side


def _take(labels: Sequence[object] | None, mask: np.ndarray) -> list[object] | None:
    return None if labels is None else [x for x, m in zip(labels, mask, strict=True) if m]


@dataclass(frozen=True)
class SensitivityRow:
    """One probe: a degradation `family` at severity `level` (0 mildest)."""

    family: str
    level: int
    probe: str
    cell: Cell

    @property
    def accuracy(self) -> float:
        return self.cell.rate

    def as_json(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "level": self.level,
            "probe": self.probe,
            **self.cell.accuracy_json(),
        }


def sensitivity(
    scores_clean: np.ndarray | None,
    scores_degraded: np.ndarray | None,
    source: np.ndarray,
    probe: np.ndarray,
    family: np.ndarray,
    level: np.ndarray,
    *,
    judge_prob: np.ndarray | None = None,
    system: Sequence[object] | None = None,
    content: Sequence[object] | None = None,
    confidence: float = 0.95,
) -> list[SensitivityRow]:
    """One row per probe (family, level), sorted by family then level: the share of pairs where
    the clean clip is strictly preferred to its degraded copy, ties wrong (module doc).

    Arrays are per pair: the model's score of the clean `source` clip and of its degraded copy,
    the source clip's key, and the probe's name, family and severity level. A judge passes
    `judge_prob` (P(clean preferred), averaged over both presentation orders) and None for the two
    score arrays. A (family, level) must name one probe. `system`/`content`: the source clips'
    labels per pair (None where unknown), for intervals over new systems and contents too."""
    correct, tie = _outcomes(scores_clean, scores_degraded, judge_prob)
    n = correct.size
    src = _keys_1d("source", source, n)
    names = _keys_1d("probe", probe, n).astype(str)
    fam = _keys_1d("family", family, n).astype(str)
    lev_raw = _keys_1d("level", level, n)
    lev = lev_raw.astype(np.int64)
    if not np.array_equal(lev, lev_raw) or (lev < 0).any():
        raise ValueError("level must be whole numbers >= 0 (0 the mildest)")
    rows: list[SensitivityRow] = []
    for f in sorted(set(fam.tolist())):
        in_family = fam == f
        for lv in sorted(set(lev[in_family].tolist())):
            mask = in_family & (lev == lv)
            held = sorted(set(names[mask].tolist()))
            if len(held) != 1:
                raise ValueError(f"family {f!r} level {lv} holds {len(held)} probes: {held}")
            design = _source_design(src[mask], _take(system, mask), _take(content, mask))
            cell = Cell.of(correct[mask], tie[mask], design, confidence)
            rows.append(SensitivityRow(f, int(lv), held[0], cell))
    return rows


@dataclass(frozen=True)
class DegradationAccuracy:
    """Micro accuracy over every degradation pair, clustered by source clip."""

    cell: Cell

    def as_json(self) -> dict[str, Any]:
        return self.cell.accuracy_json()


def degradation_accuracy(
    scores_clean: np.ndarray | None,
    scores_degraded: np.ndarray | None,
    source: np.ndarray,
    *,
    judge_prob: np.ndarray | None = None,
    system: Sequence[object] | None = None,
    content: Sequence[object] | None = None,
    confidence: float = 0.95,
) -> DegradationAccuracy:
    """The overall "degradation accuracy": every (clean, degraded) pair of every probe pooled
    (micro), with its interval clustered by source clip; arrays as `sensitivity`'s."""
    correct, tie = _outcomes(scores_clean, scores_degraded, judge_prob)
    if correct.size == 0:
        raise ValueError("no degradation pairs")
    design = _source_design(_keys_1d("source", source, correct.size), system, content)
    return DegradationAccuracy(Cell.of(correct, tie, design, confidence))


@dataclass(frozen=True)
class Violation:
    """Accuracy at the harsher `high_level` below that at `low_level` of the same family;
    `significant` when the two intervals do not overlap, None when either has no interval."""

    low_level: int
    high_level: int
    accuracy_low_level: float
    accuracy_high_level: float
    significant: bool | None

    def as_json(self) -> dict[str, Any]:
        return {
            "low_level": self.low_level,
            "high_level": self.high_level,
            "accuracy_low_level": _round(self.accuracy_low_level),
            "accuracy_high_level": _round(self.accuracy_high_level),
            "significant": self.significant,
        }


@dataclass(frozen=True)
class MonotoneCheck:
    """Whether a family's accuracy is non-decreasing in severity, with every violation."""

    family: str
    levels: tuple[int, ...]
    accuracies: tuple[float, ...]
    violations: tuple[Violation, ...]

    @property
    def monotone(self) -> bool:
        return not self.violations

    @property
    def significant(self) -> bool | None:
        """Any violation significant: True; else None if some could not be judged; else False."""
        flags = [v.significant for v in self.violations]
        if any(f is True for f in flags):
            return True
        return None if any(f is None for f in flags) else False

    def as_json(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "levels": list(self.levels),
            "accuracies": [_round(a) for a in self.accuracies],
            "monotone": self.monotone,
            "significant_violation": self.significant,
            "violations": [v.as_json() for v in self.violations],
        }


def monotonicity(rows: list[SensitivityRow]) -> list[MonotoneCheck]:
    """Per family (sorted), whether accuracy is non-decreasing as severity rises (level 0 the
    mildest): every pair of levels i < j with acc_j < acc_i is a violation (not only neighbours,
    so a dip two levels down is seen). A violation is "significant" only when the two intervals do
    not overlap (ci_high at level j < ci_low at level i): a conservative flag, chosen over a
    one-sided paired test across levels (which share source clips), which would be overkill for a
    flag; None where either level has no interval (a dominated design)."""
    by_family: dict[str, list[SensitivityRow]] = {}
    for row in rows:
        by_family.setdefault(row.family, []).append(row)
    out: list[MonotoneCheck] = []
    for fam in sorted(by_family):
        ladder = sorted(by_family[fam], key=lambda r: r.level)
        levels = [r.level for r in ladder]
        if len(set(levels)) != len(levels):
            raise ValueError(f"family {fam!r} has a level twice: {levels}")
        found: list[Violation] = []
        for i, lo in enumerate(ladder):
            for hi in ladder[i + 1 :]:
                if hi.accuracy < lo.accuracy:
                    if hi.cell.high is None or lo.cell.low is None:
                        sig: bool | None = None
                    else:
                        sig = hi.cell.high < lo.cell.low
                    found.append(Violation(lo.level, hi.level, lo.accuracy, hi.accuracy, sig))
        out.append(
            MonotoneCheck(fam, tuple(levels), tuple(r.accuracy for r in ladder), tuple(found))
        )
    return out


@dataclass(frozen=True)
class FlipRow:
    """Flip rate of one transformation of the rejected clip: `cell.n` pairs right before,
    `cell.hits` of them flipped; None rate and bounds when the model got no pair right before."""

    cell: Cell | None
    n_pairs: int

    @property
    def flip_rate(self) -> float | None:
        return None if self.cell is None else self.cell.rate

    def as_json(self) -> dict[str, Any]:
        if self.cell is None:
            return {
                "flip_rate": None,
                "ci_low": None,
                "ci_high": None,
                "generalises_over": None,
                "interval_note": "no pair right before the transformation",
                "df": None,
                "design_effect": None,
                "n": 0,
                "n_clips": 0,
                "flipped": 0,
                "n_pairs": self.n_pairs,
            }
        return {
            "flip_rate": _round(self.cell.rate),
            **self.cell.interval_json(),
            "n": self.cell.n,
            "n_clips": self.cell.n_clips,
            "flipped": self.cell.hits,
            "n_pairs": self.n_pairs,
        }


def _bool_1d(name: str, x: np.ndarray, n: int | None = None) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1 or (n is not None and a.size != n):
        raise ValueError(f"{name} must be 1-d of length {n}, got shape {a.shape}")
    if a.dtype != np.bool_:
        if not np.isin(a, (0, 1)).all():
            raise ValueError(f"{name} must be booleans (strictly right or not)")
        a = a.astype(bool)
    return a


def flip_rate(
    correct_before: np.ndarray,
    correct_after: np.ndarray,
    chosen: np.ndarray,
    rejected: np.ndarray,
    *,
    system: Labels | None = None,
    content: Labels | None = None,
    confidence: float = 0.95,
) -> FlipRow:
    """Among the test pairs the model gets strictly right before, the share it does not get
    strictly right once only the rejected clip is transformed (module doc).

    `correct_before`/`correct_after` are per pair (strict correctness, ties wrong);
    `chosen`/`rejected` the pairs' clip keys. The interval is `accuracy_interval` on the flip
    indicator over the pairs right before, with `ClipDesign.of(chosen, rejected)`."""
    before = _bool_1d("correct_before", correct_before)
    after = _bool_1d("correct_after", correct_after, before.size)
    a = _keys_1d("chosen", chosen, before.size)
    b = _keys_1d("rejected", rejected, before.size)
    if not before.any():
        return FlipRow(None, int(before.size))
    flipped = ~after[before]
    design = ClipDesign.of(
        a[before],
        b[before],
        system=_pair_labels(system, before),
        content=_pair_labels(content, before),
    )
    cell = Cell.of(flipped, np.zeros(flipped.size, dtype=bool), design, confidence)
    return FlipRow(cell, int(before.size))


@dataclass(frozen=True)
class ScoreShift:
    """Mean (after − before) in units of the model's score spread; `value` is NaN with a `reason`
    where the spread is 0 or undefined, and None for a judge (no scalar score)."""

    value: float | None
    spread: float | None
    n: int
    reason: str | None = None

    @classmethod
    def judge(cls, n: int = 0) -> ScoreShift:
        return cls(None, None, n, "a judge has no scalar score: no score shift")

    @classmethod
    def of(
        cls, scores_before: np.ndarray, scores_after: np.ndarray, reference_scores: np.ndarray
    ) -> ScoreShift:
        before = _float_1d("scores_before", scores_before)
        after = _float_1d("scores_after", scores_after, before.size)
        ref = _float_1d("reference_scores", reference_scores)
        if before.size == 0:
            raise ValueError("no transformed clips")
        if ref.size < 2:
            return cls(math.nan, None, int(before.size), "fewer than 2 reference scores: no spread")
        spread = float(np.std(ref, ddof=1))
        if not spread > 0.0:
            return cls(
                math.nan, 0.0, int(before.size), "the model scores every clean test clip the same"
            )
        return cls(float(np.mean(after - before)) / spread, spread, int(before.size))

    def as_json(self) -> dict[str, Any]:
        value: float | None = self.value
        if value is not None and not math.isfinite(value):
            value = None  # JSON has no NaN; `reason` says why
        return {
            "score_shift": None if value is None else _round(value),
            "score_spread": None if self.spread is None else _round(self.spread),
            "n": self.n,
            "reason": self.reason,
        }


def score_shift(
    scores_before: np.ndarray, scores_after: np.ndarray, reference_scores: np.ndarray
) -> float:
    """Mean (after − before) over the transformed clips, divided by the standard deviation
    (ddof = 1) of `reference_scores` (the model's scores on the task's clean test clips); NaN where
    that spread is 0 or undefined (`ScoreShift.of` gives the reason, for results). Judges have no
    scalar score: their shift is None (`ScoreShift.judge`), never computed from probabilities."""
    value = ScoreShift.of(scores_before, scores_after, reference_scores).value
    assert value is not None
    return value
