"""The data card's "Label reliability and noise ceiling" section (issue 13).

A reader of a card wants to know, before trusting a per-bin number, how many of the split's labels
are coin flips and what a perfect model could score on each ΔMOS bin. Both come from the pair file
itself: its `label_reliability` column and metadata (`benchmark.pairs.reliability`), and the ceiling of
each cell as every result computes it (`benchmark.stats.ceiling.ceiling_report`), so the card and the
board cannot disagree. Kept apart from `benchmark.cards.card`, which only calls `collect` and `section`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.escape import markdown_cell
from benchmark.results.report import bin_label

BANDS = ((0.0, 0.6, "< 0.6 (near a coin flip)"), (0.6, 0.9, "0.6–0.9"), (0.9, 0.99, "0.9–0.99"),
         (0.99, 1.01, "≥ 0.99"))  # fmt: skip
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)

INTRO = (
    "How far each pair's label can be trusted: the probability that the true (infinite-panel) "
    "means are ordered as the observed MOS are, from the ratings behind each MOS "
    "(`benchmark.pairs.reliability`; README, 'How good can a model be?'). The noise ceiling of a set "
    "of pairs is the strict accuracy an oracle that knew the true means would reach against "
    "these labels: their mean reliability, with the 95% range of that oracle's accuracy. A model "
    "below 100% on a bin whose ceiling is 74% is not necessarily wrong: a quarter of those labels "
    "are expected to be."
)


@dataclass(frozen=True)
class SplitReliability:
    """One split's reliability distribution and ceiling cells (None: no pair has a reliability)."""

    info: dict[str, Any]
    n: int
    n_rated: int
    bands: list[int]
    quantiles: list[float]
    ceiling: dict[str, Any] | None
    bin_labels: list[str]


def collect(
    path: Path, clips: Any, meta: dict[str, Any], *, bins: int, seed: int
) -> SplitReliability:
    """The split's numbers from its pair file (already checked against its sha256 by the card)."""
    import numpy as np
    import pyarrow.parquet as pq

    from benchmark.data.tables import FIXED_SUBSETS
    from benchmark.pairs.reliability import float_column
    from benchmark.stats.ceiling import ceiling_report

    columns = ["pair_id", "relation", "subset", "clip_a", "clip_b", "delta_bin", *FIXED_SUBSETS]
    table = pq.read_table(path, columns=[*columns, "label_reliability"])
    rel = float_column(table, "label_reliability")
    rated = rel[np.isfinite(rel)]
    bands = [int(((rated >= lo) & (rated < hi)).sum()) for lo, hi, _ in BANDS]
    edges = meta.get("bin_edges")
    return SplitReliability(
        info=dict(meta.get("label_reliability") or {}),
        n=table.num_rows,
        n_rated=int(rated.size),
        bands=bands,
        quantiles=[float(np.quantile(rated, q)) for q in QUANTILES] if rated.size else [],
        ceiling=ceiling_report(table, clips, meta, bins=bins, seed=seed) if rated.size else None,
        bin_labels=[bin_label(i, edges) for i in range(bins)],
    )


def _pct(cell: dict[str, Any] | None) -> str:
    if not cell:
        return "–"
    c, lo, hi = (100 * cell[k] for k in ("ceiling", "ci_low", "ci_high"))
    return f"{c:.1f} [{lo:.1f}, {hi:.1f}]"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _split(split: str, s: SplitReliability) -> list[str]:
    lines = ["", f"### Split {markdown_cell(split)}", ""]
    if s.info.get("estimator") is None or s.ceiling is None:
        return lines + [
            "Not computed: no clip of this split has both a rating count and a spread (a "
            "standard deviation or per-rating rows), so every pair's reliability is null."
        ]
    pooled = ", ".join("–" if v is None else f"{v:.3f}" for v in s.info.get("pooled_rating_sd", []))
    prior = "; ".join(
        f"{markdown_cell(rel)} {', '.join(f'{sd:.3f}' for _, sd in sorted(subs.items()))}"
        for rel, subs in sorted((s.info.get("prior_sd") or {}).items())
    )
    lines.append(
        f"Estimator `{markdown_cell(s.info['estimator'])}` (version {s.info.get('version')}, "
        f"prior weight {s.info.get('prior_df')} ratings); pooled rating SD {pooled}; prior SD "
        f"of the true differences: {prior}. {s.n_rated:,} of {s.n:,} pairs have a reliability; "
        f"quantiles (10/25/50/75/90%): {', '.join(f'{q:.3f}' for q in s.quantiles)}."
    )
    lines += ["", _row(["label reliability", "pairs", "share"]), _row(["---", "---:", "---:"])]
    for (_, _, name), k in zip(BANDS, s.bands, strict=True):
        lines.append(_row([name, f"{k:,}", f"{100 * k / max(s.n_rated, 1):.1f}%"]))
    rels = sorted(s.ceiling.get("by_relation_bin") or {})
    head = ["ΔMOS bin", "pairs", "ceiling [95% range]", *(markdown_cell(r) for r in rels)]
    lines += ["", _row(head), _row(["---", *["---:"] * (len(head) - 1)])]
    for i, label in enumerate(s.bin_labels):
        cell = s.ceiling["by_bin"].get(str(i))
        per_rel = [_pct(s.ceiling["by_relation_bin"][r].get(str(i))) for r in rels]
        n = "0" if not cell else f"{cell['n']:,}"
        lines.append(_row([markdown_cell(label), n, _pct(cell), *per_rel]))
    overall = s.ceiling["overall"]
    per_rel = [_pct(s.ceiling["by_relation"].get(r)) for r in rels]
    lines.append(_row(["all", f"{overall['n']:,}", _pct(overall), *per_rel]))
    return lines


def section(
    splits: list[str], stats: dict[str, SplitReliability] | None, not_computed: str
) -> list[str]:
    """The card section; `not_computed` is the card's sentence for a card made without data."""
    lines = ["", "## Label reliability and noise ceiling", "", INTRO]
    if stats is None:
        return lines + ["", not_computed]
    for split in splits:
        if split in stats:
            lines += _split(split, stats[split])
    return lines
