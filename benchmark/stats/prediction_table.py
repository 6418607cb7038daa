"""A predictions table, read and checked once, as the arrays every metric reads.

Why its own module: every number of a result starts from this table, so its checks (columns,
types, finite scores, one row per pair, ids that agree) live in one place and give one clear error
(`PredictionError`) whatever metric asked. Sorted by pair_id, never by the order rows came in, so
no metric can depend on it. Computes no metric (`benchmark.stats.metrics` does).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from benchmark.data.tables import FIXED_SUBSETS, ORDER_COLUMNS
from benchmark.errors import DataError
from benchmark.stats.uncertainty import (
    ClipDesign,
)

if TYPE_CHECKING:
    import pandas as pd


_STRING_COLUMNS = ("pair_id", "task", "split", "relation", "chosen", "clip_a", "clip_b")


_REQUIRED = (*_STRING_COLUMNS, "delta_bin", *FIXED_SUBSETS, "score_a", "score_b")


class PredictionError(DataError, ValueError):
    """A predictions table that cannot be scored (missing columns, NaN scores, mismatched pairs).

    A `DataError` so the CLI prints one line; a `ValueError` because it is bad input to a function.
    """


@dataclass(frozen=True)
class _Preds:
    """The columns the metrics need, as numpy arrays sorted by pair_id, checked once."""

    pair_id: np.ndarray  # object (str)
    task: np.ndarray
    split: np.ndarray
    relation: np.ndarray
    chosen: np.ndarray
    subset: np.ndarray  # object (str or None)
    clip_a: np.ndarray
    clip_b: np.ndarray
    delta_bin: np.ndarray  # int64
    flags: dict[str, np.ndarray]  # bool
    score_a: np.ndarray  # float64
    score_b: np.ndarray
    p_a_first: np.ndarray | None = None  # float64, pairwise judges only (module doc)
    p_b_first: np.ndarray | None = None
    units: dict[str, np.ndarray] | None = None  # system_a/_b, content_a/_b (object, None unknown)

    def keyed(self) -> dict[str, np.ndarray]:
        """Clip ids and, where the table has them, system and content ids, prefixed by the task
        (pairs never cross tasks, ids may repeat across them): `clip_a`, `clip_b`, `system_a`,
        ... as object arrays, None where a unit is unknown."""
        task = [f"{t}\x1f" for t in self.task.astype(str).tolist()]
        columns = {"clip_a": self.clip_a, "clip_b": self.clip_b, **(self.units or {})}
        return {
            k: np.array(
                [None if x is None else f"{t}{x}" for t, x in zip(task, v.tolist(), strict=True)],
                dtype=object,
            )
            for k, v in columns.items()
        }

    def design(self) -> ClipDesign:
        """The pairs' units keyed by task (`keyed`): clips, systems and contents."""
        return design_of(self.keyed())


def design_of(keyed: dict[str, np.ndarray]) -> ClipDesign:
    """The clip design of `_Preds.keyed` columns (also of several tables' concatenated)."""

    def sides(kind: str) -> tuple[list[object], list[object]] | None:
        a, b = keyed.get(f"{kind}_a"), keyed.get(f"{kind}_b")
        return None if a is None or b is None else (a.tolist(), b.tolist())

    return ClipDesign.of(
        keyed["clip_a"].astype(str), keyed["clip_b"].astype(str), sides("system"), sides("content")
    )


def _examples(ids: Sequence[Any], limit: int = 5) -> str:
    shown = ", ".join(str(i) for i in list(ids)[:limit])
    more = f" (+{len(ids) - limit} more)" if len(ids) > limit else ""
    return shown + more


def _as_table(pred: pa.Table | pd.DataFrame) -> pa.Table:
    if isinstance(pred, pa.Table):
        return pred
    # a DataFrame exists only once pandas is imported, which a run given Tables never pays for
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(pred, pandas.DataFrame):
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
        return np.asarray(col.to_numpy(zero_copy_only=False))

    score_a = numeric("score_a", pa.float64()).astype(np.float64)
    score_b = numeric("score_b", pa.float64()).astype(np.float64)
    nan = np.isnan(score_a) | np.isnan(score_b)
    if nan.any():
        ids = sorted(pair_id[nan].tolist())
        raise PredictionError(
            f"NaN (or missing) score in {len(ids)} pairs: {_examples(ids)}; "
            "a pair the model could not score must be fixed, not counted"
        )
    clip_a, clip_b = _strings(table, "clip_a"), _strings(table, "clip_b")
    same = clip_a == clip_b
    if same.any():
        raise PredictionError(
            f"pairs with the same clip on both sides: {_examples(sorted(pair_id[same].tolist()))}"
        )
    # Sorted by pair_id so that no number depends on row order (float sums included).
    order = np.argsort(pair_id.astype(str), kind="stable")
    subset = (
        _strings(table, "subset", nullable=True)
        if "subset" in table.column_names
        else np.full(table.num_rows, None, dtype=object)
    )
    a_first, b_first = _orders(table, pair_id, score_a)
    return _Preds(
        p_a_first=None if a_first is None else a_first[order],
        p_b_first=None if b_first is None else b_first[order],
        pair_id=pair_id[order],
        task=_strings(table, "task")[order],
        split=_strings(table, "split")[order],
        relation=_strings(table, "relation")[order],
        chosen=chosen[order],
        subset=subset[order],
        clip_a=clip_a[order],
        clip_b=clip_b[order],
        delta_bin=numeric("delta_bin", pa.int64()).astype(np.int64)[order],
        flags={k: numeric(k, pa.bool_()).astype(bool)[order] for k in FIXED_SUBSETS},
        score_a=score_a[order],
        score_b=score_b[order],
        units={
            k: _strings(table, k, nullable=True)[order]
            for k in UNIT_COLUMNS
            if k in table.column_names
        },
    )


UNIT_COLUMNS = ("system_a", "system_b", "content_a", "content_b")
"""The pair table's unit columns: what lets an interval generalise over systems and contents."""


ORDER_AVERAGE_TOLERANCE = 1e-9


def _orders(
    table: pa.Table, pair_id: np.ndarray, score_a: np.ndarray
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The checked order columns in row order, or (None, None) where the table has none."""
    present = [
        c
        for c in ORDER_COLUMNS
        if c in table.column_names and table.column(c).null_count < len(table)
    ]
    if not present or table.num_rows == 0:
        return None, None
    if len(present) == 1:
        other = next(c for c in ORDER_COLUMNS if c not in present)
        raise PredictionError(
            f"predictions column '{present[0]}' given without '{other}': a judge's answers "
            "come in both presentation orders or not at all"
        )
    values = []
    for name in ORDER_COLUMNS:
        col = table.column(name)
        try:
            arr = col.cast(pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise PredictionError(f"column '{name}' cannot be read as float64: {exc}") from None
        bad = ~np.isfinite(arr) | (arr < 0.0) | (arr > 1.0)
        if bad.any():
            raise PredictionError(
                f"predictions column '{name}' must be a probability in [0, 1] for every pair; "
                f"missing or out of range in {_examples(sorted(pair_id[bad].tolist()))}"
            )
        values.append(arr)
    a_first, b_first = values
    off = np.abs(score_a - (a_first + 1.0 - b_first) / 2.0) > ORDER_AVERAGE_TOLERANCE
    if off.any():
        raise PredictionError(
            "score_a is not the order average (p_a_first + 1 - p_b_first) / 2 for pairs "
            f"{_examples(sorted(pair_id[off].tolist()))}: not the same judge's answers"
        )
    return a_first, b_first


def load_predictions(pred: pa.Table | pd.DataFrame) -> _Preds:
    """A predictions table checked once, as arrays sorted by pair_id (what every metric reads)."""
    return _load(pred)


def _correctness(p: _Preds) -> tuple[np.ndarray, np.ndarray]:
    is_a = p.chosen == "a"
    s_chosen = np.where(is_a, p.score_a, p.score_b)
    s_rejected = np.where(is_a, p.score_b, p.score_a)
    return s_chosen > s_rejected, s_chosen == s_rejected


def correctness(pred: pa.Table | pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per-pair (strict_correct, tie) booleans in row order, the raw material of every metric.

    Exposed so that callers can build their own breakdowns without re-deriving the tie rule.
    """
    table = _as_table(pred)
    p = _load(table)
    correct, ties = _correctness(p)
    # back to the caller's row order
    inverse = np.empty(p.pair_id.size, dtype=np.int64)
    inverse[np.argsort(_strings(table, "pair_id").astype(str), kind="stable")] = np.arange(
        p.pair_id.size
    )
    return correct[inverse], ties[inverse]
