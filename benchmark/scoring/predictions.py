"""A task's predictions table: each pair with its two scores (or a judge's averaged preference and
both raw answers), assembled from the scores the loop computed or the cache held. The one entry
point the pipeline calls to get a model's predictions for a pair table (`predict`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from benchmark.scoring.config import ScoringConfig
from benchmark.scoring.loop import _pair_ids, _used_clips, judge_pairs, score_clips
from benchmark.scoring.models import Submission


def predict(
    submission: Submission,
    pairs: pa.Table,
    clips: pa.Table,
    data_root: Path,
    *,
    config: ScoringConfig = ScoringConfig(),
    cache_path: Path | None = None,
) -> pa.Table:
    """`pairs` plus float64 `score_a`, `score_b`: clip scores (scalar, implicit) or P(A), 1 - P(A).

    A pairwise judge's table also has `p_a_first` = prefer(a, b) and `p_b_first` = prefer(b, a),
    its raw answers in each presentation order (`with_orders`); P(A) is their order average.
    Only the clips the pairs use are scored.
    """
    a_ids, b_ids = _pair_ids(pairs)
    if submission.spec.kind == "pairwise":
        judged = judge_pairs(
            submission.model,
            a_ids,
            b_ids,
            clips,
            data_root,
            fingerprint=submission.fingerprint,
            config=config,
            cache_path=cache_path,
            label=submission.spec.name,
        )
        return with_orders(
            with_scores(pairs, judged.p, 1.0 - judged.p), judged.a_first, judged.b_first
        )
    else:
        scores = (
            score_clips(
                submission.model,
                _used_clips(clips, a_ids + b_ids),
                data_root,
                fingerprint=submission.fingerprint,
                config=config,
                cache_path=cache_path,
                label=submission.spec.name,
            )
            if a_ids
            else {}
        )
        score_a = np.array([scores[c] for c in a_ids], dtype=np.float64)
        score_b = np.array([scores[c] for c in b_ids], dtype=np.float64)
    return with_scores(pairs, score_a, score_b)


def with_scores(pairs: pa.Table, score_a: np.ndarray, score_b: np.ndarray) -> pa.Table:
    """The predictions table: `pairs` plus non-null float64 `score_a` and `score_b`.

    Shared by the scoring loop and predictions-only submissions, so the same scores give the
    same bytes whichever way they arrive.
    """
    out = pairs
    for name, values in (("score_a", score_a), ("score_b", score_b)):
        col = pa.array(values, type=pa.float64())
        if name in out.column_names:
            out = out.set_column(out.column_names.index(name), name, col)
        else:
            out = out.append_column(pa.field(name, pa.float64(), nullable=False), col)
    return out


def with_orders(pred: pa.Table, a_first: np.ndarray, b_first: np.ndarray) -> pa.Table:
    """`pred` plus non-null float64 `p_a_first` = prefer(a, b) and `p_b_first` = prefer(b, a).

    Only pairwise judges have them; scalar, implicit and predictions-file tables do not, so their
    bytes are what they were before the columns existed.
    """
    from benchmark.data.tables import ORDER_COLUMNS  # checked in stats.metrics

    out = pred
    for name, values in zip(ORDER_COLUMNS, (a_first, b_first), strict=True):
        col = pa.array(values, type=pa.float64())
        if name in out.column_names:
            out = out.set_column(out.column_names.index(name), name, col)
        else:
            out = out.append_column(pa.field(name, pa.float64(), nullable=False), col)
    return out
