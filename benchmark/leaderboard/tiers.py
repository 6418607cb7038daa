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
from benchmark.metrics import _correctness, load_predictions
from benchmark.uncertainty import ClipDesign, difference_test, holm

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
    """One model's strict correctness on the shared pairs, sorted by pair id."""

    key: str
    accuracy: float
    correct: np.ndarray


def scored(key: str, accuracy: float, predictions: pa.Table) -> tuple[Scored, np.ndarray]:
    """`Scored` plus what identifies its pairs (id, clips, chosen side), for the same-pairs check
    of `assign`."""
    p = load_predictions(predictions)
    correct, _ = _correctness(p)  # the one tie rule; reloading via metrics.correctness costs 2x
    pairs = np.array(
        ["\x1f".join(x) for x in zip(p.pair_id, p.clip_a, p.clip_b, p.chosen, strict=True)],
        dtype=object,
    )
    return Scored(key, accuracy, correct), pairs


def design_of(predictions: pa.Table) -> ClipDesign:
    """The clip design of the shared pairs (clips keyed by task, as in `metrics`)."""
    return load_predictions(predictions).design()


def assign(
    models: Sequence[tuple[Scored, np.ndarray]], design: ClipDesign, where: str
) -> dict[str, Tier]:
    """Tiers of `models` (from `scored`) that all hold the same pairs; `where` names the table in
    the error raised when they do not."""
    if not models:
        return {}
    ids = models[0][1]
    for m, other in models[1:]:
        if other.shape != ids.shape or (other != ids).any():
            raise MosrmError(
                f"{where}: the predictions of '{m.key}' hold other pairs (ids, clips or chosen "
                f"side) than "
                f"'{models[0][0].key}': models are only compared on the same pairs; rerun them"
            )
    left = sorted((m for m, _ in models), key=lambda m: (-m.accuracy, m.key))
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
