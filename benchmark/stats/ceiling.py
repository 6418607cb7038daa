"""The noise ceiling of a result, and the reliability-filtered view of a task (issue 13).

`ceiling_report` gives every results file its `ceiling` block: per cell of `metrics.aggregate`
(overall, ΔMOS bin, relation, relation × bin, fixed subset, group subset, same keys), the accuracy
an oracle knowing the true means would reach against the observed labels, with its interval
(`reliability.ceiling_cells`). Metrics stay untouched: "the share of the gap above chance a model
closes" is `reliability.gap_closed(accuracy, ceiling, ceiling_low)`, computed by whoever shows both.

The noise model is rebuilt from the whole clip table, exactly as the pair builder built it, and the
prior variance τ² of each pair is the one the pair file recorded for its relation and subset, so
the ceiling is the mean of the very `label_reliability` values in the pair file.

`filter_pairs` keeps the pairs whose label reliability reaches a threshold (`evaluate
--min-reliability`); such results carry a `reliability_filter` record, are written under
`<task>.min-rel-<threshold>.*` (`filtered_suffix`) and never enter the board, like quick runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from benchmark.data.tables import FIXED_SUBSETS
from benchmark.errors import DataError, MosrmError
from benchmark.pairs.reliability import (
    CEILING_DRAWS,
    RELIABILITY_VERSION,
    ceiling_cells,
    clip_noise,
    float_column,
)

MEASURED_COVERAGE = (0.92, 0.95)
"""The range of the ceiling's nominal-95% interval's coverage in simulation: over 1,000 simulated
listening tests of each shape (`make calibrate`, `benchmarks/calibration-ceiling.jsonl`), the share
of tests whose range held the realised accuracy of the oracle that knows the true qualities, lowest
and highest over the cells reported (overall, relations, bin 0). Below 0.95 (the posterior draws
ignore the uncertainty of the noise model's own fit), so results and the board state it beside the
range instead of calling it 95% (tests/test_calibration.py ties it to the file)."""

FILTER_TAG = ".min-rel-"
"""`<task>[@split].min-rel-<threshold>[.partial].json`: the name marks a filtered result."""

COLUMN = "label_reliability"


def check_min_reliability(value: object) -> float:
    """A reliability threshold in (0.5, 1]: at 0.5 or below every rated pair passes (a label is
    never worse than a coin flip), so such a filter would only drop the unrated pairs."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MosrmError(f"min_reliability must be a number in (0.5, 1], got {value!r}")
    if not 0.5 < float(value) <= 1.0:
        raise MosrmError(f"min_reliability must be in (0.5, 1], got {value!r}")
    return float(value)


def filtered_suffix(min_reliability: float) -> str:
    """The file-name tag of results filtered at `min_reliability` (`repr`: 0.9 -> `.min-rel-0.9`,
    never rounded, so two thresholds never share a name)."""
    return f"{FILTER_TAG}{float(min_reliability)!r}"


def is_filtered_name(name: str) -> bool:
    """Whether a results file name (`<task>....json`) is a reliability-filtered result's."""
    return FILTER_TAG in name


def filter_pairs(
    pairs: pa.Table, min_reliability: float, *, source: str
) -> tuple[pa.Table, dict[str, Any]]:
    """The pairs whose label reliability is >= `min_reliability` (in pair-file order) and the
    results' `reliability_filter` record: {"min", "kept", "of", "unrated"} (unrated pairs, null
    reliability, are excluded and counted). A filter keeping nothing is an error naming `source`."""
    threshold = check_min_reliability(min_reliability)
    rel = float_column(pairs, COLUMN)
    rated = np.isfinite(rel)
    keep = rated & (rel >= threshold)
    if not rated.any():
        raise DataError(
            f"{source}: column '{COLUMN}' is null for all {pairs.num_rows} pairs (the corpus gives "
            "no rating counts): nothing to filter on; evaluate without --min-reliability"
        )
    if not keep.any():
        raise DataError(
            f"{source}: no pair has '{COLUMN}' >= {threshold!r} (highest "
            f"{float(rel[rated].max()):.6f}); choose a lower --min-reliability"
        )
    kept = pairs.filter(pa.array(keep))
    record = {
        "min": threshold,
        "kept": int(keep.sum()),
        "of": int(pairs.num_rows),
        "unrated": int((~rated).sum()),
    }
    return kept, record


def _strings(table: pa.Table, name: str) -> np.ndarray:
    return np.array(
        [None if v is None else str(v) for v in table.column(name).to_pylist()], dtype=object
    )


def _tau2(
    relation: np.ndarray,
    subset: np.ndarray,
    prior_sd: dict[str, dict[str, float]],
    rated: np.ndarray,
) -> np.ndarray:
    """τ² per pair from the pair file's `prior_sd[relation][subset or "null"]`."""
    out = np.full(relation.size, np.nan)
    for key in sorted({(r, s) for r, s in zip(relation, subset, strict=True)}, key=str):
        rel, sub = key
        label = "null" if sub is None else sub
        sel = (relation == rel) & np.array([s == sub for s in subset], dtype=bool)
        sd = (prior_sd.get(rel) or {}).get(label)
        if sd is None:
            if (sel & rated).any():
                raise DataError(
                    f"pair file metadata: field 'label_reliability.prior_sd.{rel}.{label}' "
                    "missing, but pairs of that relation and subset have a reliability; "
                    "prepare the task again"
                )
            continue
        out[sel] = float(sd) ** 2
    return out


def ceiling_report(
    pred: pa.Table,
    clips: pa.Table,
    pair_meta: dict[str, Any],
    *,
    bins: int,
    seed: int,
    confidence: float = 0.95,
) -> dict[str, Any] | None:
    """The results' `ceiling` block for the pairs of `pred` (module doc), or None where the pair
    file names no estimator or no pair has a reliability.

    `clips` is the prepared clip table (canonical scale, all splits), `pair_meta` the pair file's
    metadata, `bins` the task's bin count (every bin 0..bins-1 gets a key), `seed` the task's.
    """
    info = pair_meta.get("label_reliability") or {}
    estimator = info.get("estimator")
    if estimator is None:
        return None
    order = np.argsort(np.asarray(pred.column("pair_id").to_pylist(), dtype=str), kind="stable")
    pred = pred.take(pa.array(order, type=pa.int64()))  # no number depends on row order
    rel = float_column(pred, COLUMN)
    rated = np.isfinite(rel)
    if not rated.any():
        return None
    noise = clip_noise(clips)
    index = {str(c): i for i, c in enumerate(noise.clip_ids.tolist())}
    sides = []
    for side in ("clip_a", "clip_b"):
        ids = pred.column(side).to_pylist()
        missing = sorted({str(c) for c in ids if str(c) not in index})
        if missing:
            raise DataError(
                f"predictions: field '{side}' names clips not in the prepared clip table "
                f"({', '.join(missing[:3])}); prepare the task again"
            )
        sides.append(np.array([index[str(c)] for c in ids], dtype=np.int64))
    a, b = sides
    relation = _strings(pred, "relation")
    subset = (
        _strings(pred, "subset")
        if "subset" in pred.column_names
        else np.full(pred.num_rows, None, dtype=object)
    )
    tau2 = _tau2(relation, subset, info.get("prior_sd") or {}, rated)
    delta_bin = np.asarray(pred.column("delta_bin").to_numpy(zero_copy_only=False), dtype=np.int64)
    flags = {
        k: np.asarray(pred.column(k).to_numpy(zero_copy_only=False), dtype=bool)
        for k in FIXED_SUBSETS
    }
    bin_keys = sorted(set(range(bins)) | set(delta_bin.tolist()))
    relations = sorted(set(relation.tolist()))
    has_subset = np.array([s is not None for s in subset], dtype=bool)
    groups = sorted({s for s in subset[has_subset].tolist()})

    # every cell's mask under a flat name, then put back in the metrics' layout
    masks: dict[str, np.ndarray] = {"overall": np.ones(pred.num_rows, dtype=bool)}
    layout: dict[str, Any] = {"overall": "overall"}
    layout["by_bin"] = {}
    for v in bin_keys:
        masks[f"bin/{v}"] = delta_bin == v
        layout["by_bin"][str(v)] = f"bin/{v}"
    layout["by_relation"] = {}
    layout["by_relation_bin"] = {}
    for r in relations:
        masks[f"rel/{r}"] = relation == r
        layout["by_relation"][r] = f"rel/{r}"
        layout["by_relation_bin"][r] = {}
        for v in bin_keys:
            masks[f"rel/{r}/{v}"] = (relation == r) & (delta_bin == v)
            layout["by_relation_bin"][r][str(v)] = f"rel/{r}/{v}"
    layout["by_subset"] = {}
    for k in sorted(FIXED_SUBSETS):
        masks[f"fixed/{k}"] = flags[k]
        layout["by_subset"][k] = f"fixed/{k}"
    if groups:
        layout["by_group_subset"] = {}
        for g in groups:
            masks[f"group/{g}"] = has_subset & (subset == g)
            layout["by_group_subset"][g] = f"group/{g}"
    cells = ceiling_cells(
        noise,
        a,
        b,
        rel,
        masks,
        tau2,
        draws=CEILING_DRAWS,
        seed=seed,
        confidence=confidence,
    )

    def place(node: Any) -> Any:
        return cells[node] if isinstance(node, str) else {k: place(v) for k, v in node.items()}

    return {
        "estimator": estimator,
        "reliability_version": int(info.get("version", RELIABILITY_VERSION)),
        "draws": CEILING_DRAWS,
        "confidence": confidence,
        "measured_coverage": list(MEASURED_COVERAGE),
        **{k: place(v) for k, v in sorted(layout.items())},
    }


_CEILING_CELLS = ("by_bin", "by_relation", "by_subset")


def above_ceiling(record: Mapping[str, Any]) -> list[str]:
    """The cells whose accuracy interval lies entirely above the noise ceiling's interval
    ("overall", "bin <i>", a relation or a subset key): agreement with the labels beyond what
    their own noise allows, which only knowing the labels gives."""
    ceiling = record.get("ceiling") or {}
    metrics = record.get("metrics") or {}
    pairs = [("overall", metrics.get("overall"), ceiling.get("overall"))]
    for block in _CEILING_CELLS:
        mine, top = metrics.get(block) or {}, ceiling.get(block) or {}
        for key in sorted(mine):
            label = f"bin {key}" if block == "by_bin" else str(key)
            pairs.append((label, mine[key], top.get(key)))
    out = []
    for label, cell, top in pairs:
        if not cell or not top:
            continue
        low, high = cell.get("ci_low"), top.get("ci_high")
        if low is not None and high is not None and top.get("ceiling") is not None and low > high:
            out.append(label)
    return out
