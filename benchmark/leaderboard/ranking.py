"""Rank intervals of the models on a board: which ranks the data allow each model.

A ranked table orders models by accuracy, but two models 0.3 points apart on 1,000 pairs are not
distinguishable, and readers of a board take rank 1 vs rank 2 for a finding. Each model gets a
simultaneous 95% interval for its rank (`benchmark.stats.ranks`: every pair of models compared by
the paired test of `metrics.compare` on the same pairs, Holm over all of them), shown as "1–3".
Significance tiers, which this replaced, were read as "equivalent" and in simulation put a model
3.1 points worse in tier 1 in 31% of replicates.

Deterministic: intervals depend only on the stored predictions; the order of the table on
accuracies and names. The one tie rule comes from `metrics` (strict: a tie is wrong).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from benchmark.errors import MosrmError
from benchmark.stats.prediction_table import _correctness, design_of, load_predictions
from benchmark.stats.ranks import ALPHA as RANK_ALPHA
from benchmark.stats.ranks import RankInterval, rank_intervals
from benchmark.stats.uncertainty import ClipDesign

ALPHA = RANK_ALPHA
"""Simultaneous error rate of the rank intervals."""


@dataclass(frozen=True)
class Scored:
    """One model's strict correctness on its pairs, with what identifies the pairs (id, clips,
    chosen side) and the pairs' units keyed by task (`prediction_table._Preds.keyed`)."""

    key: str
    accuracy: float
    correct: np.ndarray
    pairs: np.ndarray
    units: dict[str, np.ndarray]  # clip_a/_b, and system_a/_b, content_a/_b where known

    def design(self) -> ClipDesign:
        return design_of(self.units)


def scored(key: str, accuracy: float, predictions: pa.Table) -> Scored:
    """A model on one predictions table, its pairs sorted by pair id (`metrics.load_predictions`)."""
    p = load_predictions(predictions)
    correct, _ = _correctness(p)  # the one tie rule; reloading via metrics.correctness costs 2x
    pairs = np.array(
        ["\x1f".join(x) for x in zip(p.pair_id, p.clip_a, p.clip_b, p.chosen, strict=True)],
        dtype=object,
    )
    return Scored(key, accuracy, correct, pairs, p.keyed())


def pooled(key: str, accuracy: float, parts: Sequence[Scored]) -> Scored:
    """One model on several tasks' pairs at once (the micro pool), from its per-task `scored`."""
    cat = np.concatenate
    kinds = [k for k in parts[0].units if all(k in p.units for p in parts)] if parts else []
    return Scored(
        key,
        accuracy,
        cat([p.correct for p in parts]),
        cat([p.pairs for p in parts]),
        {k: cat([p.units[k] for p in parts]) for k in kinds},
    )


def assign(models: Sequence[Scored], where: str) -> dict[str, RankInterval]:
    """Rank intervals of `models`, which must all hold the same pairs in the same order; `where`
    names the table in the error raised when they do not."""
    if not models:
        return {}
    first = models[0]
    for m in models[1:]:
        if m.pairs.shape != first.pairs.shape or (m.pairs != first.pairs).any():
            raise MosrmError(
                f"{where}: the predictions of '{m.key}' hold other pairs (ids, clips or chosen "
                f"side) than '{first.key}': models are only compared on the same pairs; rerun them"
            )
    keys = [m.key for m in models]
    if len(set(keys)) != len(keys):
        raise MosrmError(f"{where}: a model appears twice: {sorted(keys)}")
    return rank_intervals({m.key: m.correct for m in models}, first.design(), ALPHA)
