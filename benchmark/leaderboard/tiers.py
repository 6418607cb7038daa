"""Significance tiers: which models the paired test cannot tell apart from the leader.

A ranked table orders models by accuracy, but two models 0.3 points apart on 1,000 pairs are not
distinguishable, and readers of a board take rank 1 vs rank 2 for a finding. Tiers say what the
data supports. The rule, stated on the board too:

1. The leader is the most accurate model not yet in a tier (ties broken by folder name).
2. Every other model not yet in a tier is compared with it by the paired, clip-clustered test of
   `metrics.compare` (the same pairs, difference of strict accuracies, t with clips − 1 degrees of
   freedom, `uncertainty.difference_test`). The p-values of this family (one per model against
   this leader) are Holm-adjusted.
3. The leader and every model whose adjusted p-value is at least 0.05 form the tier; repeat from
   the best model left.

Deterministic: the order depends only on accuracies and names, and the tests on the stored
predictions. The one tie rule comes from `metrics` (strict: a tie is wrong).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from benchmark.errors import MosrmError
from benchmark.stats.prediction_table import _correctness, load_predictions
from benchmark.stats.uncertainty import ClipDesign, difference_test, holm

ALPHA = 0.05
"""Family-wise error rate of each tier's comparisons against its leader."""


@dataclass(frozen=True)
class Tier:
    """A model's tier, the leader it was tested against, and the Holm-adjusted p-value (None for
    the leader itself)."""

    tier: int
    leader: str
    p_holm: float | None


@dataclass(frozen=True)
class Scored:
    """One model's strict correctness on its pairs, with what identifies the pairs (id, clips,
    chosen side) and the pairs' clips keyed by task (the clip design of the test)."""

    key: str
    accuracy: float
    correct: np.ndarray
    pairs: np.ndarray
    clip_a: np.ndarray
    clip_b: np.ndarray


def scored(key: str, accuracy: float, predictions: pa.Table) -> Scored:
    """A model on one predictions table, its pairs sorted by pair id (`metrics.load_predictions`)."""
    p = load_predictions(predictions)
    correct, _ = _correctness(p)  # the one tie rule; reloading via metrics.correctness costs 2x
    pairs = np.array(
        ["\x1f".join(x) for x in zip(p.pair_id, p.clip_a, p.clip_b, p.chosen, strict=True)],
        dtype=object,
    )
    task = p.task.astype(str)
    return Scored(
        key,
        accuracy,
        correct,
        pairs,
        np.char.add(np.char.add(task, "\x1f"), p.clip_a.astype(str)),
        np.char.add(np.char.add(task, "\x1f"), p.clip_b.astype(str)),
    )


def pooled(key: str, accuracy: float, parts: Sequence[Scored]) -> Scored:
    """One model on several tasks' pairs at once (the micro pool), from its per-task `scored`."""
    cat = np.concatenate
    return Scored(
        key,
        accuracy,
        cat([p.correct for p in parts]),
        cat([p.pairs for p in parts]),
        cat([p.clip_a for p in parts]),
        cat([p.clip_b for p in parts]),
    )


def assign(models: Sequence[Scored], where: str) -> dict[str, Tier]:
    """Tiers of `models`, which must all hold the same pairs in the same order; `where` names the
    table in the error raised when they do not."""
    if not models:
        return {}
    first = models[0]
    for m in models[1:]:
        if m.pairs.shape != first.pairs.shape or (m.pairs != first.pairs).any():
            raise MosrmError(
                f"{where}: the predictions of '{m.key}' hold other pairs (ids, clips or chosen "
                f"side) than '{first.key}': models are only compared on the same pairs; rerun them"
            )
    design = ClipDesign.of(first.clip_a, first.clip_b)
    left = sorted(models, key=lambda m: (-m.accuracy, m.key))
    out: dict[str, Tier] = {}
    tier = 0
    while left:
        tier += 1
        leader, others = left[0], left[1:]
        out[leader.key] = Tier(tier, leader.key, None)
        if not others:
            break
        diff = leader.correct.astype(np.int8)[None, :] - np.stack(
            [o.correct.astype(np.int8) for o in others]
        )
        p = np.atleast_1d(difference_test(diff, design)["p"])
        adjusted = holm([float(x) for x in p])
        rest = []
        for o, adj in zip(others, adjusted, strict=True):
            if adj >= ALPHA:
                out[o.key] = Tier(tier, leader.key, float(f"{adj:.6g}"))
            else:
                rest.append(o)
        left = rest
    return out
