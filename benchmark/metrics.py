"""Pairwise accuracy, its uncertainty, and the one aggregation function every result goes through.

Input: a *predictions table*, i.e. a pair table (`benchmark.tables.PAIR_SCHEMA`) plus two float64
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
Wilson interval
    Every cell carries the Wilson score interval of its strict accuracy (95% by default). Unlike the
    normal approximation it stays inside [0, 1] and behaves at accuracy 0 or 1 and small n, which the
    smallest-ΔMOS bins and the fixed subsets often are.
cell
    `{"accuracy", "ci_low", "ci_high", "n", "correct", "ties", "tie_rate", "tie_half_accuracy"}`.
    Counts are ints; rates are floats rounded to 6 decimals (`DIGITS`) so results JSON is
    byte-stable. An empty cell (n = 0) has n = correct = ties = 0 and *None* (JSON null) for every
    rate and both CI bounds: "no evidence" must not look like 0% or 50%.
micro vs macro
    `overall` pools all pairs given (micro, the paper's overall). `macro` is the unweighted mean of
    the per-task strict accuracies, so a big task cannot drown a small one. Both are reported.
ΔMOS bins
    `delta_bin` is a percentile band of ΔMOS *within each (task, split)*, 0 = smallest gaps. Only
    `by_bin` of a single task has a ΔMOS range; `by_bin` over several tasks pools bin i of every
    task ("the i-th ΔMOS percentile band of each task"), which is meaningful as difficulty, not as a
    ΔMOS range.
fixed subsets
    `by_subset` uses the pair table's boolean columns of `benchmark.tables.FIXED_SUBSETS`
    (ΔMOS < 0.2, ΔMOS <= 0.5, ΔMOS > 1.5); a pair may belong to several.
splits
    `aggregate` pools whatever rows it is given; filter to one split first if that is what you
    report (`by_split` shows the split breakdown).

Paired comparison (`compare`): two models on the same pairs. The exact McNemar test is the two-sided
binomial test of the discordant pairs (one model right, the other wrong) against p = 1/2:
p = min(1, 2 * BinomCDF(min(b, c); b + c, 1/2)), and p = 1 when there are no discordant pairs. The
paired bootstrap resamples pairs with replacement (seeded `numpy.random.Generator`); the statistic
is the accuracy difference A - B, the interval is the percentile interval, and the two-sided p-value
is min(1, 2 * (min(#{d* <= 0}, #{d* >= 0}) + 1) / (n_boot + 1)), i.e. how far the bootstrap
distribution must be cut to exclude 0, never reported as exactly 0. Each pair contributes
d_i = correct_A - correct_B in {-1, 0, 1}, so resampling n pairs with replacement is exactly a
multinomial draw of the counts of +1, 0, -1 with the observed frequencies; that draw is what is
computed (same distribution, O(n_boot) work, independent of row order). P-values are rounded to 6
significant digits, rates to 6 decimals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import stats

from benchmark.errors import DataError
from benchmark.tables import FIXED_SUBSETS, PAIR_SCHEMA, PAIR_SCHEMA_VERSION

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
    "n",
    "correct",
    "ties",
    "tie_rate",
    "tie_half_accuracy",
)

_STRING_COLUMNS = ("pair_id", "task", "split", "relation", "chosen")
_REQUIRED = (*_STRING_COLUMNS, "delta_bin", *FIXED_SUBSETS, "score_a", "score_b")


class PredictionError(DataError, ValueError):
    """A predictions table that cannot be scored (missing columns, NaN scores, mismatched pairs).

    A `DataError` so the CLI prints one line; a `ValueError` because it is bad input to a function.
    """


@dataclass(frozen=True)
class _Preds:
    """The columns the metrics need, as numpy arrays, checked once."""

    pair_id: np.ndarray  # object (str)
    task: np.ndarray
    split: np.ndarray
    relation: np.ndarray
    chosen: np.ndarray
    subset: np.ndarray  # object (str or None)
    clip_a: np.ndarray | None
    clip_b: np.ndarray | None
    delta_bin: np.ndarray  # int64
    flags: dict[str, np.ndarray]  # bool
    score_a: np.ndarray  # float64
    score_b: np.ndarray


def _examples(ids: Sequence[Any], limit: int = 5) -> str:
    shown = ", ".join(str(i) for i in list(ids)[:limit])
    more = f" (+{len(ids) - limit} more)" if len(ids) > limit else ""
    return shown + more


def _as_table(pred: pa.Table | pd.DataFrame) -> pa.Table:
    if isinstance(pred, pa.Table):
        return pred
    if isinstance(pred, pd.DataFrame):
        return pa.Table.from_pandas(pred, preserve_index=False)
    raise TypeError(
        f"predictions must be a pyarrow Table or a pandas DataFrame, not {type(pred).__name__}"
    )


def _strings(table: pa.Table, name: str, nullable: bool = False) -> np.ndarray:
    values = table.column(name).to_pylist()
    if not nullable and any(v is None for v in values):
        raise PredictionError(f"predictions column '{name}' has missing values")
    return np.array([None if v is None else str(v) for v in values], dtype=object)


def _load(pred: pa.Table | pd.DataFrame) -> _Preds:
    table = _as_table(pred)
    missing = [c for c in _REQUIRED if c not in table.column_names]
    if missing:
        raise PredictionError(f"predictions table lacks required columns: {', '.join(missing)}")
    pair_id = _strings(table, "pair_id")
    uniq, counts = np.unique(pair_id.astype(str), return_counts=True)
    if (counts > 1).any():
        dup = uniq[counts > 1].tolist()
        raise PredictionError(f"duplicate pair_id in predictions: {_examples(dup)}")
    chosen = _strings(table, "chosen")
    bad = sorted({str(c) for c in chosen if c not in ("a", "b")})
    if bad:
        raise PredictionError(f"column 'chosen' must be 'a' or 'b', found {_examples(bad)}")

    def numeric(name: str, dtype: pa.DataType) -> np.ndarray:
        col = table.column(name)
        try:
            col = col.cast(dtype)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise PredictionError(f"column '{name}' cannot be read as {dtype}: {exc}") from None
        if col.null_count and not pa.types.is_floating(dtype):
            raise PredictionError(f"predictions column '{name}' has missing values")
        # Nulls in float columns become NaN here and are reported by the NaN check.
        return col.to_numpy(zero_copy_only=False)

    score_a = numeric("score_a", pa.float64()).astype(np.float64)
    score_b = numeric("score_b", pa.float64()).astype(np.float64)
    nan = np.isnan(score_a) | np.isnan(score_b)
    if nan.any():
        ids = sorted(pair_id[nan].tolist())
        raise PredictionError(
            f"NaN (or missing) score in {len(ids)} pairs: {_examples(ids)}; "
            "a pair the model could not score must be fixed, not counted"
        )
    has_clips = "clip_a" in table.column_names and "clip_b" in table.column_names
    return _Preds(
        pair_id=pair_id,
        task=_strings(table, "task"),
        split=_strings(table, "split"),
        relation=_strings(table, "relation"),
        chosen=chosen,
        subset=(
            _strings(table, "subset", nullable=True)
            if "subset" in table.column_names
            else np.full(table.num_rows, None, dtype=object)
        ),
        clip_a=_strings(table, "clip_a") if has_clips else None,
        clip_b=_strings(table, "clip_b") if has_clips else None,
        delta_bin=numeric("delta_bin", pa.int64()).astype(np.int64),
        flags={k: numeric(k, pa.bool_()).astype(bool) for k in FIXED_SUBSETS},
        score_a=score_a,
        score_b=score_b,
    )


def _correctness(p: _Preds) -> tuple[np.ndarray, np.ndarray]:
    is_a = p.chosen == "a"
    s_chosen = np.where(is_a, p.score_a, p.score_b)
    s_rejected = np.where(is_a, p.score_b, p.score_a)
    return s_chosen > s_rejected, s_chosen == s_rejected


def correctness(pred: pa.Table | pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per-pair (strict_correct, tie) booleans in row order, the raw material of every metric.

    Exposed so that callers can build their own breakdowns without re-deriving the tie rule.
    """
    return _correctness(_load(pred))


def _round(x: float) -> float:
    return round(float(x), DIGITS)


def _round_p(p: float) -> float:
    return float(f"{float(p):.{P_VALUE_DIGITS}g}")


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return float(stats.norm.ppf(0.5 + confidence / 2.0))


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials (unrounded).

    n = 0 raises: an interval without data is undefined, and `cell` reports None instead.
    """
    if n <= 0:
        raise ValueError(f"Wilson interval needs n > 0, got n={n}")
    if not 0 <= k <= n:
        raise ValueError(f"Wilson interval needs 0 <= k <= n, got k={k}, n={n}")
    z = _z(confidence)
    p = k / n
    z2n = z * z / n
    denom = 1.0 + z2n
    centre = (p + z2n / 2.0) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n)) / denom
    # At k = 0 or k = n the bounds are 0 and 1 analytically; pin them against rounding error.
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high


def cell(correct: np.ndarray, ties: np.ndarray, confidence: float = 0.95) -> dict[str, Any]:
    """One result cell from per-pair correctness and tie flags (see the module docstring)."""
    correct = np.asarray(correct, dtype=bool)
    ties = np.asarray(ties, dtype=bool)
    if correct.shape != ties.shape or correct.ndim != 1:
        raise ValueError(
            f"correct and ties must be 1-d of equal length: {correct.shape}, {ties.shape}"
        )
    if (correct & ties).any():
        raise ValueError("a pair cannot be both correct and tied")
    n = int(correct.size)
    k = int(correct.sum())
    t = int(ties.sum())
    if n == 0:
        return {
            "accuracy": None,
            "ci_low": None,
            "ci_high": None,
            "n": 0,
            "correct": 0,
            "ties": 0,
            "tie_rate": None,
            "tie_half_accuracy": None,
        }
    low, high = wilson_interval(k, n, confidence)
    return {
        "accuracy": _round(k / n),
        "ci_low": _round(low),
        "ci_high": _round(high),
        "n": n,
        "correct": k,
        "ties": t,
        "tie_rate": _round(t / n),
        "tie_half_accuracy": _round((k + 0.5 * t) / n),
    }


def _cells_by(
    keys: np.ndarray,
    correct: np.ndarray,
    ties: np.ndarray,
    all_keys: Sequence[Any] | None = None,
    name: Callable[[Any], str] = str,
) -> dict[str, dict[str, Any]]:
    """Cells per key value, in sorted key order (so insertion order is deterministic too)."""
    values = sorted(set(keys.tolist()) | set(all_keys or ()))
    return {name(v): cell(correct[keys == v], ties[keys == v]) for v in values}


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


def aggregate(pred: pa.Table | pd.DataFrame, *, bins: int | None = None) -> dict[str, Any]:
    """Every reported number of one model on one predictions table: THE aggregation function.

    `bins` is the task's ΔMOS bin count; when given, every bin 0..bins-1 appears (empty ones as
    n = 0 cells) so tables line up across models, and a delta_bin outside that range raises.
    """
    p = _load(pred)
    correct, ties = _correctness(p)
    bin_keys = _bin_keys(p, bins)

    by_task = _cells_by(p.task, correct, ties)
    task_acc = [correct[p.task == t].mean() for t in sorted(set(p.task.tolist()))]
    macro = {
        "accuracy": _round(sum(task_acc) / len(task_acc)) if task_acc else None,
        "n_tasks": len(task_acc),
    }
    by_relation_bin = {}
    for rel in sorted(set(p.relation.tolist())):
        m = p.relation == rel
        by_relation_bin[rel] = _cells_by(p.delta_bin[m], correct[m], ties[m], bin_keys)

    result: dict[str, Any] = {
        "overall": cell(correct, ties),
        "macro": macro,
        "by_task": by_task,
        "by_split": _cells_by(p.split, correct, ties),
        "by_relation": _cells_by(p.relation, correct, ties),
        "by_bin": _cells_by(p.delta_bin, correct, ties, bin_keys),
        "by_subset": {
            name: cell(correct[p.flags[name]], ties[p.flags[name]])
            for name in sorted(FIXED_SUBSETS)
        },
        "by_relation_bin": by_relation_bin,
    }
    has_subset = np.array([s is not None for s in p.subset], dtype=bool)
    if has_subset.any():
        # Pairs without a subset are left out here; they are all still in `overall`.
        result["by_group_subset"] = _cells_by(
            p.subset[has_subset], correct[has_subset], ties[has_subset]
        )
    return dict(sorted(result.items()))


def _mcnemar_p(a_only: int, b_only: int) -> float:
    m = a_only + b_only
    if m == 0:
        return 1.0
    return min(1.0, 2.0 * float(stats.binom.cdf(min(a_only, b_only), m, 0.5)))


def _paired(ca: np.ndarray, cb: np.ndarray) -> dict[str, Any]:
    n = int(ca.size)
    a_only = int((ca & ~cb).sum())
    b_only = int((~ca & cb).sum())
    if n == 0:
        return {
            "n": 0,
            "accuracy_a": None,
            "accuracy_b": None,
            "difference": None,
            "a_only": 0,
            "b_only": 0,
            "mcnemar_p": 1.0,
        }
    acc_a = int(ca.sum()) / n
    acc_b = int(cb.sum()) / n
    return {
        "n": n,
        "accuracy_a": _round(acc_a),
        "accuracy_b": _round(acc_b),
        "difference": _round((a_only - b_only) / n),
        "a_only": a_only,
        "b_only": b_only,
        "mcnemar_p": _round_p(_mcnemar_p(a_only, b_only)),
    }


def _bootstrap(
    a_only: int, b_only: int, n: int, n_boot: int, seed: int, confidence: float
) -> dict[str, Any]:
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    base = {"n_boot": n_boot, "seed": seed, "confidence": confidence}
    if n == 0:
        return {**base, "ci_low": None, "ci_high": None, "p_value": 1.0}
    rng = np.random.default_rng(seed)
    # Resampling n pairs with replacement only changes how many +1, 0, -1 differences are drawn.
    probs = np.array([a_only, b_only, n - a_only - b_only], dtype=np.float64) / n
    draws = rng.multinomial(n, probs, size=n_boot)
    diffs = (draws[:, 0] - draws[:, 1]) / n
    alpha = 1.0 - confidence
    low, high = np.quantile(diffs, [alpha / 2.0, 1.0 - alpha / 2.0])
    tail = min(int((diffs <= 0).sum()), int((diffs >= 0).sum()))
    p_value = min(1.0, 2.0 * (tail + 1) / (n_boot + 1))
    return {
        **base,
        "ci_low": _round(low),
        "ci_high": _round(high),
        "p_value": _round_p(p_value),
    }


def compare(
    pred_a: pa.Table | pd.DataFrame,
    pred_b: pa.Table | pd.DataFrame,
    *,
    n_boot: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Paired comparison of model A and model B on the same pairs (difference = A - B).

    Paired tests are far more sensitive than comparing two overlapping Wilson intervals, because
    both models face the same hard pairs. The pair sets must be identical (same pair ids, same
    chosen side and clips); anything else is a comparison on different data and raises.
    """
    pa_, pb_ = _load(pred_a), _load(pred_b)
    ids_a, ids_b = set(pa_.pair_id.tolist()), set(pb_.pair_id.tolist())
    if ids_a != ids_b:
        only_a, only_b = sorted(ids_a - ids_b), sorted(ids_b - ids_a)
        raise PredictionError(
            "the two predictions tables cover different pairs: "
            f"{len(only_a)} only in A ({_examples(only_a, 3)}), "
            f"{len(only_b)} only in B ({_examples(only_b, 3)})"
        )
    # Sort both by pair_id so that nothing downstream depends on row order.
    oa = np.argsort(pa_.pair_id.astype(str), kind="stable")
    ob = np.argsort(pb_.pair_id.astype(str), kind="stable")
    checks = [("chosen", pa_.chosen, pb_.chosen), ("delta_bin", pa_.delta_bin, pb_.delta_bin)]
    if pa_.clip_a is not None and pb_.clip_a is not None:
        checks += [("clip_a", pa_.clip_a, pb_.clip_a), ("clip_b", pa_.clip_b, pb_.clip_b)]
    for name, xa, xb in checks:
        differ = xa[oa] != xb[ob]
        if differ.any():
            raise PredictionError(
                f"the two predictions tables disagree on '{name}' for pairs "
                f"{_examples(sorted(pa_.pair_id[oa][differ].tolist()), 3)}: not the same pair file"
            )
    ca, _ = _correctness(pa_)
    cb, _ = _correctness(pb_)
    ca, cb = ca[oa], cb[ob]
    task, bins = pa_.task[oa], pa_.delta_bin[oa]

    overall = _paired(ca, cb)
    result: dict[str, Any] = {
        **overall,
        "bootstrap": _bootstrap(
            overall["a_only"], overall["b_only"], overall["n"], n_boot, seed, confidence
        ),
        "by_task": {t: _paired(ca[task == t], cb[task == t]) for t in sorted(set(task.tolist()))},
        "by_bin": {
            str(b): _paired(ca[bins == b], cb[bins == b]) for b in sorted(set(bins.tolist()))
        },
    }
    return dict(sorted(result.items()))
