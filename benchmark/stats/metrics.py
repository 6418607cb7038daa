"""Pairwise accuracy, its uncertainty, and the one aggregation function every result goes through.

Input: a *predictions table*, i.e. a pair table (`benchmark.data.tables.PAIR_SCHEMA`) plus two float64
columns `score_a` and `score_b`, the model's scores of clip A and clip B (`PREDICTION_SCHEMA`). For a
pairwise judge, `score_a` = P(A is better) and `score_b` = 1 - `score_a`. A pyarrow Table or a pandas
DataFrame is accepted. Rows are pairs; row order never matters.

Definitions (the only place they are written down; the leaderboard and papers cite these):

strict accuracy (the main score, the paper's rule)
    A pair is correct iff score(chosen) > score(rejected). Ties are wrong. Overall accuracy is
    micro: correct pairs / all pairs.
tie rate
    Fraction of pairs with score(chosen) == score(rejected) (exact float equality; a judge that says
    P(A better) = 0.5 ties). Reported beside every accuracy, because a model that ties a lot is
    punished by the strict rule and that should be visible, not hidden.
tie-half accuracy
    (correct + 0.5 * ties) / n: what a fair coin breaking the ties would score in expectation.
    Secondary; use it to see how much of a gap to another model is ties.
NaN scores
    Raise `PredictionError` (a `ValueError`) naming the pair ids. A NaN compares false to everything,
    so it would silently count as wrong; a model that fails on some clips must be fixed, not scored.
interval (primary)
    Every cell carries a clip-aware interval (95% by default): pairs share clips, so pairs are
    not independent; the estimator and why are in `benchmark.stats.uncertainty`. `design_effect` says
    how much wider than a pair-level binomial interval it is, `n_clips` how many clips the cell
    rests on. `iid_pairs_ci_low`/`iid_pairs_ci_high` is the pair-level Wilson interval, kept for
    reference only: it assumes independent pairs and is too narrow.
cell
    `{"accuracy", "ci_low", "ci_high", "n", "n_clips", "correct", "ties", "tie_rate",
    "tie_half_accuracy", "design_effect", "iid_pairs_ci_low", "iid_pairs_ci_high"}`. Counts are
    ints; rates are floats rounded to 6 decimals (`DIGITS`) so results JSON is byte-stable. An
    empty cell (n = 0) has n = n_clips = correct = ties = 0 and *None* (JSON null) for every rate
    and bound: "no evidence" must not look like 0% or 50%.
micro vs macro
    `overall` pools all pairs given (micro, the paper's overall). `macro` is the unweighted mean of
    the per-task strict accuracies, so a big task cannot drown a small one. Both are reported, each
    with its interval (tasks share no clips, so macro's variance is the mean of the per-task ones
    over the number of tasks).
ΔMOS bins
    `delta_bin` is a percentile band of ΔMOS *within each (task, split)*, 0 = smallest gaps. Only
    `by_bin` of a single task has a ΔMOS range; `by_bin` over several tasks pools bin i of every
    task ("the i-th ΔMOS percentile band of each task"), which is meaningful as difficulty, not as a
    ΔMOS range.
presentation orders (pairwise judges only)
    Optional float64 columns `p_a_first` = prefer(a, b) and `p_b_first` = prefer(b, a), the
    judge's raw answers in each order. No metric here reads them (position bias cannot move the
    order-averaged accuracy); `benchmark.stats.diagnostics` does. Where present they are checked: both
    or neither, every value finite and in [0, 1] (a column that is entirely null, as after
    concatenating a judge's table with a scalar model's, counts as absent), and `score_a` must be
    their order average (prefer(a, b) + 1 - prefer(b, a)) / 2 to within 1e-9, so that the two
    answers really are the ones the accuracy was computed from.
fixed subsets
    `by_subset` uses the pair table's boolean columns of `benchmark.data.tables.FIXED_SUBSETS`
    (ΔMOS < 0.2, ΔMOS <= 0.5, ΔMOS > 1.5); a pair may belong to several.
splits
    `aggregate` pools whatever rows it is given; filter to one split first if that is what you
    report (`by_split` shows the split breakdown).

Paired comparison (`compare`): two models on the same pairs; per cell the difference of strict
accuracies A - B, its interval and two-sided p-value (`uncertainty.difference_test`, over the
same estimand as the accuracy intervals), and a gatekept adjusted p-value: the overall cell is the
primary endpoint at α; the other non-empty cells (per task when there are several, per relation
when there are several, per ΔMOS bin, per fixed subset, per group subset) are the secondary
family, Holm-adjusted among themselves and claimable only once the primary is rejected
(`_gatekeep_in_place`). `a_only`/`b_only` count the pairs only A / only B gets right. Rates
are rounded to 6 decimals, p-values to 6 significant digits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, SupportsFloat

import numpy as np
import pyarrow as pa

from benchmark.data.tables import FIXED_SUBSETS, PAIR_SCHEMA, PAIR_SCHEMA_VERSION

# the predictions table's checks and their error: public under this module's name too
from benchmark.stats.prediction_table import PredictionError as PredictionError
from benchmark.stats.prediction_table import _correctness, _examples, _load, _Preds
from benchmark.stats.prediction_table import correctness as correctness
from benchmark.stats.prediction_table import load_predictions as load_predictions
from benchmark.stats.uncertainty import (
    DOMINANT_SHARE,
    ESTIMATOR,
    MIN_CLUSTERS,
    ClipDesign,
    Estimand,
    accuracy_interval,
    difference_test,
    holm,
    t_value,
    wilson,
    z_value,
)

if TYPE_CHECKING:
    import pandas as pd

METRICS_VERSION = 4
"""Bumped when a reported number changes meaning (2: clip-aware intervals, Holm-adjusted tests;
3: intervals and tests generalise over new systems and contents as well as clips; 4: their df are
Satterthwaite's, and the few-unit jackknife floor applies only where systems or contents carry
much of the variance or the pairs were selected by their labels)."""

DIGITS = 6
"""Decimals kept for every rate in results, so that results JSON is byte-stable."""

P_VALUE_DIGITS = 6
"""Significant digits kept for p-values (decimals would flatten small p-values to 0)."""

PREDICTION_SCHEMA = pa.schema(
    [*PAIR_SCHEMA, pa.field("score_a", pa.float64()), pa.field("score_b", pa.float64())],
    metadata={"mosrm.table": "predictions", "mosrm.schema_version": str(PAIR_SCHEMA_VERSION)},
)
"""A pair table plus the model's scores of clip A and clip B: the input of every metric."""

CELL_KEYS = (
    "accuracy",
    "ci_low",
    "ci_high",
    "generalises_over",
    "interval_note",
    "df",
    "ci_low_systems_fixed",
    "ci_high_systems_fixed",
    "n",
    "n_clips",
    "n_systems",
    "n_contents",
    "correct",
    "ties",
    "tie_rate",
    "tie_half_accuracy",
    "design_effect",
    "iid_pairs_ci_low",
    "iid_pairs_ci_high",
)


def interval_spec(confidence: float = 0.95) -> dict[str, Any]:
    """What results record about their intervals, so a reader knows what `ci_low` means."""
    return {
        "estimator": ESTIMATOR,
        "generalises_over": "clips, systems, contents (per cell: see its generalises_over)",
        "min_clusters": MIN_CLUSTERS,
        "dominant_share": DOMINANT_SHARE,
        "confidence": confidence,
    }


def _round(x: SupportsFloat) -> float:
    return round(float(x), DIGITS)


def _round_p(p: SupportsFloat) -> float:
    return float(f"{float(p):.{P_VALUE_DIGITS}g}")


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Pair-level Wilson score interval for k successes in n trials (unrounded).

    Assumes independent trials: for pairs sharing clips it is too narrow (reference only).
    n = 0 raises: an interval without data is undefined, and `cell` reports None instead.
    """
    if n <= 0:
        raise ValueError(f"Wilson interval needs n > 0, got n={n}")
    if not 0 <= k <= n:
        raise ValueError(f"Wilson interval needs 0 <= k <= n, got k={k}, n={n}")
    low, high = wilson(np.float64(k / n), np.float64(n), z_value(confidence))
    return float(low), float(high)


def _empty_cell() -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(CELL_KEYS)
    out.update(n=0, n_clips=0, n_systems=0, n_contents=0, correct=0, ties=0)
    return out


def _bound(x: float | None) -> float | None:
    return None if x is None else _round(x)


def _estimand_note(target: Estimand) -> str | None:
    """Why a cell's interval generalises over less than clips, systems and contents, or why it
    has none; None when it has nothing to say."""
    parts = [*target.notes]
    if target.dominated is not None:
        parts.append(target.dominated)
    return "; ".join(parts) or None


def cell(
    correct: np.ndarray, ties: np.ndarray, design: ClipDesign, confidence: float = 0.95
) -> dict[str, Any]:
    """One result cell from per-pair correctness, tie flags and the pairs' clips (module doc)."""
    correct = np.asarray(correct, dtype=bool)
    ties = np.asarray(ties, dtype=bool)
    if correct.shape != ties.shape or correct.ndim != 1:
        raise ValueError(
            f"correct and ties must be 1-d of equal length: {correct.shape}, {ties.shape}"
        )
    if correct.size != design.n_pairs:
        raise ValueError(f"{correct.size} pairs but the clip design has {design.n_pairs}")
    if (correct & ties).any():
        raise ValueError("a pair cannot be both correct and tied")
    n = int(correct.size)
    if n == 0:
        return _empty_cell()
    k = int(correct.sum())
    t = int(ties.sum())
    est = accuracy_interval(correct, design, confidence)
    fixed = accuracy_interval(correct, design, confidence, fixed=("system",))
    iid_low, iid_high = wilson_interval(k, n, confidence)
    return {
        "accuracy": _round(k / n),
        "ci_low": _bound(est.low),
        "ci_high": _bound(est.high),
        "generalises_over": est.estimand.label,
        "interval_note": _estimand_note(est.estimand),
        "df": _round(est.df),
        "ci_low_systems_fixed": _bound(fixed.low),
        "ci_high_systems_fixed": _bound(fixed.high),
        "n": n,
        "n_clips": design.n_clips,
        "n_systems": design.distinct("system"),
        "n_contents": design.distinct("content"),
        "correct": k,
        "ties": t,
        "tie_rate": _round(t / n),
        "tie_half_accuracy": _round((k + 0.5 * t) / n),
        "design_effect": _round(est.design_effect),
        "iid_pairs_ci_low": _round(iid_low),
        "iid_pairs_ci_high": _round(iid_high),
    }


class _Cells:
    """Cells of one predictions table: masks over the sorted pairs, one clip design shared."""

    def __init__(self, p: _Preds, confidence: float) -> None:
        self.correct, self.ties = _correctness(p)
        self.design = p.design()
        self.confidence = confidence

    def of(self, mask: np.ndarray, by_label: bool = False) -> dict[str, Any]:
        if not mask.any():
            return _empty_cell()
        design = self.design.subset(mask, by_label=by_label)
        return cell(self.correct[mask], self.ties[mask], design, self.confidence)

    def by(
        self,
        keys: np.ndarray,
        all_keys: Sequence[Any] | None = None,
        name: Callable[[Any], str] = str,
        within: np.ndarray | None = None,
        by_label: bool = False,
    ) -> dict[str, dict[str, Any]]:
        """Cells per key value, in sorted key order (so insertion order is deterministic too);
        `by_label` where the keys come from the pairs' labels (ΔMOS bins)."""
        inside = np.ones(keys.size, dtype=bool) if within is None else within
        values = sorted(set(keys[inside].tolist()) | set(all_keys or ()))
        return {name(v): self.of(inside & (keys == v), by_label) for v in values}


def _bin_keys(p: _Preds, bins: int | None) -> list[int] | None:
    if bins is None:
        return None
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    out = p.delta_bin[(p.delta_bin < 0) | (p.delta_bin >= bins)]
    if out.size:
        raise PredictionError(
            f"delta_bin values outside 0..{bins - 1}: {_examples(sorted(set(out.tolist())))}"
        )
    return list(range(bins))


def macro_cell(task_cells: Sequence[dict[str, Any]], confidence: float = 0.95) -> dict[str, Any]:
    """Unweighted mean of per-task accuracies with its interval (tasks share no units).

    Each task contributes the variance its own interval implies, p(1 - p) / n* with n* = (n /
    design_effect) (z / t_df)^2 its interval's effective n (so few systems widen the macro too);
    the mean's variance is their sum over T^2, and the interval is Wilson's at the matching
    effective n (the summed n* where the variance is 0).
    """
    cells = [c for c in task_cells if c.get("n") and c.get("design_effect") is not None]
    if not cells:
        return {"accuracy": None, "ci_low": None, "ci_high": None, "n_tasks": 0}
    acc = np.array([c["correct"] / c["n"] for c in cells])
    z = z_value(confidence)
    n_eff = np.array(
        [c["n"] / c["design_effect"] * (z / t_value(c["df"], confidence)) ** 2 for c in cells]
    )
    m = float(acc.mean())
    var = float((acc * (1 - acc) / n_eff).sum()) / len(cells) ** 2
    n_macro = m * (1 - m) / var if var > 0 and 0 < m < 1 else float(n_eff.sum())
    low, high = wilson(np.float64(m), np.float64(n_macro), z_value(confidence))
    return {
        "accuracy": _round(m),
        "ci_low": _round(low),
        "ci_high": _round(high),
        "n_tasks": len(cells),
    }


def aggregate(
    pred: pa.Table | pd.DataFrame, *, bins: int | None = None, confidence: float = 0.95
) -> dict[str, Any]:
    """Every reported number of one model on one predictions table: THE aggregation function.

    `bins` is the task's ΔMOS bin count; when given, every bin 0..bins-1 appears (empty ones as
    n = 0 cells) so tables line up across models, and a delta_bin outside that range raises.
    """
    p = _load(pred)
    cells = _Cells(p, confidence)
    bin_keys = _bin_keys(p, bins)
    by_task = cells.by(p.task)
    by_relation_bin = {
        rel: cells.by(p.delta_bin, bin_keys, within=p.relation == rel, by_label=True)
        for rel in sorted(set(p.relation.tolist()))
    }
    result: dict[str, Any] = {
        "overall": cells.of(np.ones(p.pair_id.size, dtype=bool)),
        "macro": macro_cell(list(by_task.values()), confidence),
        "by_task": by_task,
        "by_split": cells.by(p.split),
        "by_relation": cells.by(p.relation),
        "by_bin": cells.by(p.delta_bin, bin_keys, by_label=True),
        "by_subset": {name: cells.of(p.flags[name], True) for name in sorted(FIXED_SUBSETS)},
        "by_relation_bin": by_relation_bin,
    }
    has_subset = np.array([s is not None for s in p.subset], dtype=bool)
    if has_subset.any():
        # Pairs without a subset are left out here; they are all still in `overall`.
        result["by_group_subset"] = cells.by(p.subset, within=has_subset)
    return dict(sorted(result.items()))


def _paired(
    ca: np.ndarray, cb: np.ndarray, design: ClipDesign, confidence: float
) -> dict[str, Any]:
    n = int(ca.size)
    a_only = int((ca & ~cb).sum())
    b_only = int((~ca & cb).sum())
    if n == 0:
        return {
            "n": 0,
            "n_clips": 0,
            "accuracy_a": None,
            "accuracy_b": None,
            "difference": None,
            "ci_low": None,
            "ci_high": None,
            "generalises_over": None,
            "interval_note": None,
            "df": None,
            "p_value": None,
            "a_only": 0,
            "b_only": 0,
        }
    test = difference_test(ca.astype(np.int8) - cb.astype(np.int8), design, confidence)
    return {
        "n": n,
        "n_clips": design.n_clips,
        "accuracy_a": _round(int(ca.sum()) / n),
        "accuracy_b": _round(int(cb.sum()) / n),
        "difference": _round((a_only - b_only) / n),
        "ci_low": _bound(test.low),
        "ci_high": _bound(test.high),
        "generalises_over": test.estimand.label,
        "interval_note": _estimand_note(test.estimand),
        "df": _round(test.df),
        "p_value": None if test.p is None else _round_p(test.p),
        "a_only": a_only,
        "b_only": b_only,
    }


def _check_same_pairs(pa_: _Preds, pb_: _Preds) -> None:
    ids_a, ids_b = set(pa_.pair_id.tolist()), set(pb_.pair_id.tolist())
    if ids_a != ids_b:
        only_a, only_b = sorted(ids_a - ids_b), sorted(ids_b - ids_a)
        raise PredictionError(
            "the two predictions tables cover different pairs: "
            f"{len(only_a)} only in A ({_examples(only_a, 3)}), "
            f"{len(only_b)} only in B ({_examples(only_b, 3)})"
        )
    checks = [
        ("chosen", pa_.chosen, pb_.chosen),
        ("delta_bin", pa_.delta_bin, pb_.delta_bin),
        ("clip_a", pa_.clip_a, pb_.clip_a),
        ("clip_b", pa_.clip_b, pb_.clip_b),
        ("relation", pa_.relation, pb_.relation),
    ]
    for name, xa, xb in checks:
        differ = xa != xb  # both sorted by pair_id in _load
        if differ.any():
            raise PredictionError(
                f"the two predictions tables disagree on '{name}' for pairs "
                f"{_examples(sorted(pa_.pair_id[differ].tolist()), 3)}: not the same pair file"
            )


def compare(
    pred_a: pa.Table | pd.DataFrame,
    pred_b: pa.Table | pd.DataFrame,
    *,
    relation: str | None = None,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Paired comparison of model A and model B on the same pairs (difference = A - B).

    Paired tests are far more sensitive than comparing two overlapping intervals, because both
    models face the same hard pairs. The pair sets must be identical (same pair ids, same chosen
    side and clips); anything else is a comparison on different data and raises. `relation`
    restricts every cell (and the Holm family) to that relation's pairs.
    """
    pa_, pb_ = _load(pred_a), _load(pred_b)
    _check_same_pairs(pa_, pb_)
    ca, _ = _correctness(pa_)
    cb, _ = _correctness(pb_)
    keep = np.ones(ca.size, dtype=bool)
    if relation is not None:
        present = sorted(set(pa_.relation.tolist()))
        if relation not in present:
            raise PredictionError(
                f"no '{relation}' pairs to compare (relations present: {', '.join(present)})"
            )
        keep = pa_.relation == relation
    design = pa_.design()
    masks: list[tuple[dict[str, Any], np.ndarray]] = []

    def paired(mask: np.ndarray, by_label: bool = False) -> dict[str, Any]:
        mask = mask & keep
        out = _paired(ca[mask], cb[mask], design.subset(mask, by_label=by_label), confidence)
        masks.append((out, mask))
        return out

    def by(keys: np.ndarray, by_label: bool = False) -> dict[str, dict[str, Any]]:
        return {str(v): paired(keys == v, by_label) for v in sorted(set(keys[keep].tolist()))}

    has_subset = np.array([s is not None for s in pa_.subset], dtype=bool)
    result: dict[str, Any] = {
        "overall": paired(np.ones(ca.size, dtype=bool)),
        "by_task": by(pa_.task),
        "by_relation": by(pa_.relation),
        "by_bin": by(pa_.delta_bin, by_label=True),
        "by_subset": {k: paired(pa_.flags[k], True) for k in sorted(FIXED_SUBSETS)},
    }
    if (has_subset & keep).any():
        result["by_group_subset"] = {
            str(v): paired(has_subset & (pa_.subset == v))
            for v in sorted({s for s in pa_.subset[has_subset & keep].tolist()})
        }
    family = _gatekeep_in_place(masks)
    overall = keep if keep.any() else np.ones(ca.size, dtype=bool)
    return {
        "interval": interval_spec(confidence),
        "correction": "gatekeeping: overall at alpha (primary), then Holm over the other cells",
        "primary": "overall",
        "alpha": _round(1 - confidence),
        "family_size": family,
        "relation": relation,
        "minimum_detectable_difference": _detectable(
            ca[overall], cb[overall], design.subset(overall), confidence
        ),
        **result,
    }


POWER = 0.8
"""The power at which `compare` states the smallest difference its overall test would detect."""


def _detectable(
    ca: np.ndarray, cb: np.ndarray, design: ClipDesign, confidence: float
) -> dict[str, Any]:
    """The smallest true difference the overall paired test detects with `POWER` at the same
    pairs and standard error: (t(1 − α/2) + t(power)) × SE on the test's degrees of freedom, so
    a reader sees whether "not significant" means "no difference" or "too few pairs to tell"."""
    from scipy import special

    if ca.size == 0:
        return {"power": POWER, "alpha": _round(1 - confidence), "value": None}
    test = difference_test(ca.astype(np.int8) - cb.astype(np.int8), design, confidence)
    df = test.df
    t = float(special.stdtrit(df, 0.5 + confidence / 2.0)) + float(special.stdtrit(df, POWER))
    return {"power": POWER, "alpha": _round(1 - confidence), "value": _round(t * test.se)}


def _gatekeep_in_place(cells: list[tuple[dict[str, Any], np.ndarray]]) -> int:
    """Serial gatekeeping (Dmitrienko & Tamhane 2007): the first cell (overall) is the primary
    endpoint, tested at α on its own; the other cells are the secondary family, Holm-adjusted
    among themselves and claimable only once the primary is rejected. Each cell's `p_holm` is
    its gatekept adjusted p-value: the primary's raw p, and max(primary p, Holm p) for a
    secondary cell, so "p_holm < α" is exactly "rejected by the procedure". Returns the
    secondary family's size.

    Cells holding exactly the same pairs (a lone task or relation repeats `overall`; on a
    1/8-step scale the top bin may equal ΔMOS > 1.5) are one test, counted once and given one
    answer: testing the same pairs twice would only cost power. Why not Holm over every cell
    with the overall among them: at the demo's size that cost the headline test most of its
    power (35% → 10% for a true 2-point difference).
    """
    for cell_, _ in cells:
        cell_["p_holm"] = None
    if not cells:
        return 0
    primary, primary_mask = cells[0]
    primary_key = np.packbits(primary_mask).tobytes()
    p_primary = primary["p_value"]
    tests: dict[bytes, list[dict[str, Any]]] = {}
    for cell_, mask in cells[1:]:
        if cell_["p_value"] is None:
            continue
        key = np.packbits(mask).tobytes()
        if key == primary_key:
            cell_["p_holm"] = None if p_primary is None else _round_p(p_primary)
            continue
        tests.setdefault(key, []).append(cell_)
    if p_primary is not None:
        primary["p_holm"] = _round_p(p_primary)
    groups = list(tests.values())
    gate = 1.0 if p_primary is None else float(p_primary)
    for group, adj in zip(groups, holm([g[0]["p_value"] for g in groups]), strict=True):
        for cell_ in group:
            cell_["p_holm"] = _round_p(max(gate, adj))
    return len(groups)
