"""Judge diagnostics: position consistency, first-position bias and the preference-cycle rate.

The harness asks a pairwise judge in both presentation orders and averages, so position bias
cannot move its accuracy, and the average hides it. These numbers show it, for every pairwise
model; they never change a metric (`benchmark.stats.metrics` does not read them).

Definitions (the only place they are written down; README "What a result means" repeats them):

decision in one order
    For an answer P = prefer(first, second): P > 0.5 picks the first-presented clip, P < 0.5 the
    second, P = 0.5 (exactly) is a tie.
position consistency
    Over the task's judged pairs (the rows of the pair table), the share whose decision, read as
    a clip rather than a position, is the same in both orders: prefer(a, b) and prefer(b, a) pick
    the same clip, or both are ties. A tie in one order only is inconsistent. An always-"A" judge
    picks a, then b: consistency 0.
first-position bias
    Mean over the pairs of prefer(a, b) + prefer(b, a) - 1, in [-1, 1]: the probability mass a
    judge gives whichever clip comes first, beyond what a consistent judge would (for whom
    prefer(b, a) = 1 - prefer(a, b)). Always "A" (answers 1) gives +1, always "B" gives -1, any
    judge with prefer(b, a) = 1 - prefer(a, b) gives 0. Consistency counts flipped decisions;
    bias says which way and how much, including shifts too small to flip one. Each pair's value
    is rounded to 1e-9 first (`BIAS_QUANTUM_DIGITS`): float noise is not bias.
preference-cycle rate
    Over the task's triplet sample (`benchmark.pairs.triplets`: clips x, y, z with MOS(x) > MOS(y) >
    MOS(z), all three pairs valid under one relation, seeded), the share of triplets the judge
    orders cyclically. Decisions use the order-averaged P, the harness's own decision: x ≻ y iff
    P(x over y) > 0.5. A cycle is x ≻ y, y ≻ z and z ≻ x, or the reverse (y ≻ x, z ≻ y, x ≻ z). A
    pair judged an exact tie (P = 0.5) cannot be part of a cycle, so a triplet with a tie never
    counts (`n_triplets_with_ties` says how many had one). The triplets' pairs that are not in
    the pair table are judged through the same score cache as the pair table's, so no pair is
    ever judged twice, and a killed run resumes to the same numbers.
scalar and implicit models, per-clip prediction files
    A score per clip is read the same whichever clip comes first and is ordered, so it is
    consistent (1), unbiased (0) and acyclic (cycle rate 0) by construction: recorded with
    `by_construction: true`, and no triplet is scored.
per-pair prediction files
    One probability per pair, not an answer per order: position consistency and bias are null,
    with the reason. The cycle rate is computed only if every pair of every sampled triplet is in
    the file's pair table (they rarely all are), else null, with the reason.

Intervals (95%) know that pairs share clips (`benchmark.stats.uncertainty`): consistency is a
proportion over pairs, with the clip-clustered Wilson interval of an accuracy; the bias is a mean
of per-pair values with the clip-clustered t interval and two-sided p-value of a paired
difference (`difference_test`; p tests "no bias"). Triplets hold three clips, so the cycle rate's
variance sums the residual products of every two triplets sharing at least one clip (the same
dyadic estimator, with "shares a clip" for "shares a clip" of pairs), and its interval is
Wilson's at the matching effective size (where the variance says nothing, e.g. no cycle at all,
at min(n, clips / 3) units: as many triplets as could be disjoint, like min(n, clips / 2) for
the pairs of an accuracy).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, SupportsFloat

import numpy as np

from benchmark.stats.metrics import DIGITS, P_VALUE_DIGITS
from benchmark.stats.uncertainty import (
    accuracy_interval,
    difference_test,
    effective_n,
    wilson,
    z_value,
)

if TYPE_CHECKING:
    import pyarrow as pa
    from scipy import sparse

    from benchmark.scoring.config import ScoringConfig
    from benchmark.scoring.models import Submission

DIAGNOSTICS_VERSION = 1

BY_CONSTRUCTION_NOTE = (
    "one score per clip: the same whichever clip is presented first, and ordered, so "
    "consistency 1, bias 0 and cycle rate 0 by construction (no triplet scored)"
)

_KEYS = (
    "position_consistency",
    "position_consistency_ci",
    "n_consistent",
    "n_tied_both_orders",
    "first_position_bias",
    "first_position_bias_ci",
    "first_position_bias_p",
    "n_pairs",
    "n_pair_clips",
    "cycle_rate",
    "cycle_rate_ci",
    "n_cycles",
    "n_triplets_with_ties",
    "n_triplets",
    "n_triplet_clips",
    "triplet_pairs_judged",
    "triplets",
)


def decisions(p: np.ndarray) -> np.ndarray:
    """+1 where an answer picks the first-presented clip (P > 0.5), -1 the second, 0 a tie."""
    p = np.asarray(p, dtype=np.float64)
    return np.sign(p - 0.5).astype(np.int8)


def _round(x: SupportsFloat) -> float:
    return round(float(x), DIGITS) + 0.0  # + 0.0: never "-0.0" in results


BIAS_QUANTUM_DIGITS = 9
"""Per-pair bias is rounded to 1e-9 first: float noise (a float32 sigmoid(d) + sigmoid(-d) - 1
is ~1e-8, not 0) is not a position bias, and the test of "no bias" should not test it."""


def _bound(x: float | None) -> float | None:
    return None if x is None else _round(x)


def _round_p(x: SupportsFloat) -> float:
    return float(f"{float(x):.{P_VALUE_DIGITS}g}")


def empty_block(n_pairs: int) -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(_KEYS)
    out.update(version=DIAGNOSTICS_VERSION, by_construction=False, note=None, unavailable=None)
    out["n_pairs"] = int(n_pairs)
    return out


def by_construction(n_pairs: int) -> dict[str, Any]:
    """The block of a model with one score per clip (module doc)."""
    out = empty_block(n_pairs)
    out.update(
        by_construction=True,
        note=BY_CONSTRUCTION_NOTE,
        position_consistency=1.0,
        first_position_bias=0.0,
        cycle_rate=0.0,
    )
    return out


def position(pred: pa.Table, confidence: float = 0.95) -> dict[str, Any]:
    """Consistency and first-position bias from a judge's `p_a_first`/`p_b_first` (module doc)."""
    from benchmark.stats.prediction_table import PredictionError, load_predictions

    p = load_predictions(pred)
    n = int(p.pair_id.size)
    if p.p_a_first is None or p.p_b_first is None:
        raise PredictionError("predictions lack p_a_first/p_b_first: no answers per order")
    out: dict[str, Any] = {"n_pairs": n}
    if n == 0:
        return out
    first = decisions(p.p_a_first)  # +1 = a
    second = -decisions(p.p_b_first)  # prefer(b, a) > 0.5 picks b: -1 as a clip of the row
    consistent = first == second
    bias = np.round(p.p_a_first + p.p_b_first - 1.0, BIAS_QUANTUM_DIGITS) + 0.0
    design = p.design()
    est = accuracy_interval(consistent, design, confidence)
    test = difference_test(bias, design, confidence)
    out.update(
        position_consistency=_round(consistent.mean()),
        position_consistency_ci=[_bound(est.low), _bound(est.high)],
        n_consistent=int(consistent.sum()),
        n_tied_both_orders=int(((first == 0) & (second == 0)).sum()),
        first_position_bias=_round(bias.mean()),
        first_position_bias_ci=[_bound(test.low), _bound(test.high)],
        first_position_bias_p=None if test.p is None else _round_p(test.p),
        n_pair_clips=design.n_clips,
    )
    return out


def cycle_flags(p_xy: np.ndarray, p_yz: np.ndarray, p_xz: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per triplet (x ≻ y ≻ z by MOS): (cycle, has a tie) from order-averaged P (module doc)."""
    d_xy, d_yz, d_xz = decisions(p_xy), decisions(p_yz), decisions(p_xz)
    forward = (d_xy == 1) & (d_yz == 1) & (d_xz == -1)  # x ≻ y, y ≻ z, z ≻ x
    backward = (d_xy == -1) & (d_yz == -1) & (d_xz == 1)  # y ≻ x, z ≻ y, x ≻ z
    ties = (d_xy == 0) | (d_yz == 0) | (d_xz == 0)
    return forward | backward, ties


def overlap_variance(values: np.ndarray, incidence: sparse.csr_matrix) -> float:
    """Variance of the mean of `values` over units holding several clips each (module doc).

    g/(g-1) * sum of e_p * e_q over ordered (p, q) sharing at least one clip (p = q once) / N^2;
    for units of two clips it is `uncertainty.clip_variance`.
    """
    v = np.asarray(values, dtype=np.float64)
    n, g = incidence.shape
    if n == 0 or g < 2:
        return float("nan")
    e = v - v.mean()
    shares = (incidence @ incidence.T).tocsr()
    shares.data = np.ones_like(shares.data)
    return float(g / (g - 1) * (e @ (shares @ e)) / (n * n))


def cycles(
    triplets: pa.Table, p_xy: np.ndarray, p_yz: np.ndarray, p_xz: np.ndarray, confidence: float
) -> dict[str, Any]:
    """The cycle rate of one triplet sample, with its clip-aware interval (module doc)."""
    flags, ties = cycle_flags(p_xy, p_yz, p_xz)
    n = int(flags.size)
    out: dict[str, Any] = {"n_triplets": n, "n_cycles": int(flags.sum())}
    out["n_triplets_with_ties"] = int(ties.sum())
    if n == 0:
        return out
    keys = np.concatenate([np.asarray(triplets.column(k).to_pylist()) for k in _XYZ])
    _, codes = np.unique(keys, return_inverse=True)
    g = int(codes.max()) + 1
    from scipy import sparse  # judges only: a scalar model's block is known by construction

    rows = np.tile(np.arange(n), 3)
    incidence = sparse.csr_matrix((np.ones(3 * n), (rows, codes.reshape(-1))), shape=(n, g))
    rate = float(flags.mean())
    var = overlap_variance(flags.astype(np.float64), incidence)
    n_eff = effective_n(np.float64(rate), np.float64(var), n, g, clips_per_unit=3)
    low, high = wilson(np.float64(rate), n_eff, z_value(confidence))
    out.update(
        cycle_rate=_round(rate),
        cycle_rate_ci=[_round(low), _round(high)],
        n_triplet_clips=g,
    )
    return out


_XYZ = ("clip_x", "clip_y", "clip_z")


def with_judgements(
    triplets: pa.Table, p_xy: np.ndarray, p_yz: np.ndarray, p_xz: np.ndarray
) -> pa.Table:
    """The triplet sample plus the judge's P per pair and the cycle flag: what was counted."""
    import pyarrow as pa

    flags, _ = cycle_flags(p_xy, p_yz, p_xz)
    out = triplets
    for name, values in (("p_xy", p_xy), ("p_yz", p_yz), ("p_xz", p_xz)):
        out = out.append_column(
            pa.field(name, pa.float64(), nullable=False), pa.array(values, pa.float64())
        )
    return out.append_column(pa.field("cycle", pa.bool_(), nullable=False), pa.array(flags))


def diagnose(
    submission: Submission,
    pred: pa.Table,
    clips: pa.Table,
    audio_base: Path,
    *,
    task: str,
    split: str,
    relations: list[str],
    seed: int,
    min_delta: float,
    n_triplets: int | None = None,
    config: ScoringConfig | None = None,
    cache_path: Path | None = None,
    confidence: float = 0.95,
) -> tuple[dict[str, Any], pa.Table | None]:
    """The results' `diagnostics` block for one model on one task and split, and for a pairwise
    judge the judged triplets (`with_judgements`) to store beside its predictions.

    Scalar and implicit models and per-clip prediction files get the by-construction block
    without any model call or triplet sampling. A pairwise judge is asked only about the
    triplets' pairs that are not cached yet (the pair table's were cached by `predict`).
    """
    from benchmark.pairs.triplets import requested_triplets, sample_triplets, triplet_edges

    kind = submission.spec.kind
    layout = _file_layout(submission, task) if kind == "predictions" else None
    if kind in ("scalar", "implicit") or layout == "clip":
        return by_construction(pred.num_rows), None
    block = empty_block(pred.num_rows)
    unavailable: dict[str, str] = {}
    if kind == "pairwise":
        block.update(position(pred, confidence))
    else:
        unavailable["position"] = (
            "a per-pair predictions file gives one probability per pair, not the judge's "
            "answer in each presentation order"
        )
    triplets, record = sample_triplets(
        clips,
        task=task,
        split=split,
        relations=relations,
        seed=seed,
        n=requested_triplets(n_triplets),
        min_delta=min_delta,
    )
    block["triplets"] = record
    a_ids, b_ids = triplet_edges(triplets)
    in_table = _pair_lookup(pred)
    beyond = {frozenset(e) for e in zip(a_ids, b_ids, strict=True)} - set(in_table)
    judged: pa.Table | None = None
    if kind == "pairwise":
        from benchmark.scoring.config import ScoringConfig
        from benchmark.scoring.loop import judge_pairs

        p = judge_pairs(
            submission.model,
            a_ids,
            b_ids,
            clips,
            audio_base,
            fingerprint=submission.fingerprint,
            config=config or ScoringConfig(),
            cache_path=cache_path,
            label=submission.spec.name,
        ).p.reshape(-1, 3)
        block["triplet_pairs_judged"] = len(beyond)
    elif beyond:
        unavailable["cycles"] = (
            f"{len(beyond)} of the {len({frozenset(e) for e in zip(a_ids, b_ids, strict=True)})} "
            "pairs of the triplet sample are not in the pair table, so a per-pair predictions "
            "file has no answer for them"
        )
        p = None
    else:
        p = np.array(
            [in_table[frozenset((a, b))][a] for a, b in zip(a_ids, b_ids, strict=True)],
            dtype=np.float64,
        ).reshape(-1, 3)
    if p is not None:
        block.update(cycles(triplets, p[:, 0], p[:, 1], p[:, 2], confidence))
        if kind == "pairwise":
            judged = with_judgements(triplets, p[:, 0], p[:, 1], p[:, 2])
    block["unavailable"] = unavailable or None
    return block, judged


def _pair_lookup(pred: pa.Table) -> dict[frozenset[str], dict[str, float]]:
    """{unordered pair: {clip: P(that clip better)}} from the predictions' scores."""
    a = pred.column("clip_a").to_pylist()
    b = pred.column("clip_b").to_pylist()
    sa = pred.column("score_a").to_pylist()
    sb = pred.column("score_b").to_pylist()
    return {
        frozenset((x, y)): {x: float(px), y: float(py)}
        for x, y, px, py in zip(a, b, sa, sb, strict=True)
    }


def _file_layout(submission: Submission, task: str) -> str:
    """'clip' or 'pair': the layout of a predictions submission's file for `task`."""
    from benchmark.scoring.predictions_file import read_file

    layout, _, _ = read_file(submission.folder / submission.spec.predictions[task])
    return layout
