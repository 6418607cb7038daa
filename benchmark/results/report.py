"""Plain-text views of results and comparisons for the terminal (`evaluate`, `compare`).

Kept apart from the CLI so that notebooks and scripts print the same tables, and apart from the
board, which renders Markdown/HTML for publication. Every number shown comes from the results or
comparison dicts unchanged; this module only lays them out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

SUBSET_LABELS = {
    "dmos_lt_0_2": "ΔMOS < 0.2",
    "dmos_le_0_5": "ΔMOS ≤ 0.5",
    "dmos_gt_1_5": "ΔMOS > 1.5",
}
"""Display names of `tables.FIXED_SUBSETS`."""


def _pct(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "–"
    return f"{100 * x:+.1f}" if signed else f"{100 * x:.1f}"


def _p(x: float | None) -> str:
    if x is None:
        return "–"
    return "<0.0001" if x < 1e-4 else f"{x:.4f}"


def bin_label(i: int, edges: Sequence[float] | None) -> str:
    if edges and len(edges) > i + 1:
        return f"bin {i} (Δ {edges[i]:.2f}–{edges[i + 1]:.2f})"
    return f"bin {i}"


def _table(head: list[str], rows: list[list[str]]) -> str:
    """First column left-aligned, the others right-aligned, two spaces apart."""
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        parts = [
            f"{c:<{w}}" if i == 0 else f"{c:>{w}}"
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return "\n".join(line(r) for r in [head, *rows])


Path = tuple[str, ...]
"""Where a cell sits in a metrics-shaped block: ("overall",), ("by_bin", "0"), …"""


def _cells(
    metrics: dict[str, Any], edges: Sequence[float] | None
) -> list[tuple[str, dict[str, Any], Path]]:
    """The labelled cells shown for one result or comparison: overall, relations, bins, subsets,
    each with its place in the block (to find the matching ceiling cell)."""
    out: list[tuple[str, dict[str, Any], Path]] = [("overall", metrics["overall"], ("overall",))]
    for group in ("by_relation", "by_bin", "by_subset", "by_group_subset"):
        for key, c in metrics.get(group, {}).items():
            if group == "by_bin":
                label = bin_label(int(key), edges)
            elif group == "by_subset":
                label = SUBSET_LABELS.get(key, key)
            else:
                label = f"subset {key}" if group == "by_group_subset" else key
            out.append((f"  {label}", c, (group, key)))
    return out


def _ceiling_at(ceiling: dict[str, Any] | None, path: Path, relation: str | None = None) -> Any:
    """The ceiling cell at `path` (None where there is none). Restricted to one `relation` (a
    comparison on its pairs only), a bin reads that relation's bin and the subsets, which the
    ceiling does not split by relation, have none."""
    if not ceiling:
        return None
    if relation is not None:
        if path[0] in ("overall", "by_relation"):
            path = ("by_relation", relation)
        elif path[0] == "by_bin":
            path = ("by_relation_bin", relation, path[1])
        else:
            return None
    node: Any = ceiling
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _ceiling_text(c: dict[str, Any] | None) -> str:
    if c is None:
        return "–"
    return f"{_pct(c['ceiling'])} [{_pct(c['ci_low'])}, {_pct(c['ci_high'])}]"


def _gap_text(accuracy: float | None, c: dict[str, Any] | None) -> str:
    from benchmark.pairs.reliability import gap_closed

    share = (
        None
        if accuracy is None or c is None
        else gap_closed(accuracy, c["ceiling"], c.get("ci_low"))
    )
    return "–" if share is None else f"{100 * share:.0f}%"


def ceiling_note(ceiling: dict[str, Any]) -> str:
    """What the ceiling columns mean, in two lines under the table."""
    conf = int(round(100 * ceiling["confidence"]))
    lo, hi = ceiling.get("measured_coverage") or (None, None)
    measured = f", which held the oracle in {lo:.2f}–{hi:.2f} of simulated tests" if lo else ""
    return (
        "ceiling: accuracy of an oracle knowing the true means (mean label reliability, "
        f"{ceiling['estimator']}; nominal {conf}% range{measured})\n"
        "of gap: (accuracy − 50) / (ceiling − 50), the share of the gain above chance reached"
    )


def format_result(result: dict[str, Any]) -> str:
    """One model on one task: accuracy with its interval per relation, bin and subset (what the
    intervals generalise over, under the table), the noise ceiling of each cell and the share of
    its gap above chance the model closes (where the pair file has label reliabilities), then a
    pairwise judge's diagnostics."""
    m = result["metrics"]
    ceiling = result.get("ceiling")
    head = ["", "accuracy", "95% CI", "ties", "n", "clips"]
    if ceiling:
        head += [f"ceiling [{int(round(100 * ceiling['confidence']))}% range]", "of gap"]
    rows = []
    for label, c, path in _cells(m, result.get("bin_edges")):
        ci = "–" if c.get("ci_low") is None else f"[{_pct(c['ci_low'])}, {_pct(c['ci_high'])}]"
        tie = "–" if c.get("tie_rate") is None else f"{_pct(c['tie_rate'])}%"
        row = [label, _pct(c.get("accuracy")), ci, tie, str(c["n"]), str(c.get("n_clips", ""))]
        if ceiling:
            top = _ceiling_at(ceiling, path)
            row += [_ceiling_text(top), _gap_text(c.get("accuracy"), top)]
        rows.append(row)
    text = _table(head, rows)
    scope = interval_scope(m, result.get("bin_edges"))
    text += f"\n{scope}" if scope else ""
    if ceiling:
        text += "\n" + ceiling_note(ceiling)
    else:
        text += "\n" + NO_CEILING
    diagnostics = format_diagnostics(result)
    text += f"\n{diagnostics}" if diagnostics else ""
    leak = ceiling_banner(result)
    banner = "\n".join(b for b in (partial_banner(result), filter_banner(result), leak) if b)
    return f"{banner}\n{text}\n{banner}" if banner else text


def interval_scope(m: dict[str, Any], edges: Sequence[float] | None = None) -> str:
    """What the 95% intervals generalise over (the overall cell's estimand), and every cell that
    generalises over less or has no interval, with why; "" for results without the record."""
    o = m.get("overall") or {}
    over = o.get("generalises_over")
    if not over:
        return ""
    counts = f"{o.get('n_clips', 0)} clips, {o.get('n_systems', 0)} systems, "
    counts += f"{o.get('n_contents', 0)} contents"
    line = f"95% CI: generalises over new {over} ({counts})"
    from benchmark.stats.uncertainty import JACKKNIFE_BELOW  # few units: the jackknife floor

    if "systems" in over and 0 < int(o.get("n_systems") or 0) < JACKKNIFE_BELOW:
        line += f"; {o['n_systems']} systems: the interval is wide by design"
    notes: dict[str, list[str]] = {}
    for label, c, _ in _cells(m, edges):
        note = c.get("interval_note")
        if c.get("n") and note and (label == "overall" or c.get("generalises_over") != over
                                     or c.get("ci_low") is None):  # fmt: skip
            notes.setdefault(note, []).append(label.strip())
    lines = [line] + [f"  {', '.join(cells)}: {note}" for note, cells in notes.items()]
    return "\n".join(lines)


def ceiling_banner(result: dict[str, Any]) -> str:
    """For a result with a cell whose interval lies above its noise ceiling's: the line saying
    so, above and below its table (the board flags it and never ranks it); else ""."""
    from benchmark.stats.ceiling import above_ceiling

    cells = above_ceiling(result)
    if not cells:
        return ""
    return (
        f"*** above what the labels allow ({', '.join(cells)}: interval entirely above the "
        "noise ceiling's): check for label leakage; never ranked on the board ***"
    )


def filter_banner(result: dict[str, Any]) -> str:
    """For a reliability-filtered result (`evaluate --min-reliability`): the line saying which
    pairs it rests on and that it is kept off the board; else ""."""
    f = result.get("reliability_filter")
    if not f:
        return ""
    unrated = f", {f['unrated']} unrated excluded" if f["unrated"] else ""
    return (
        f"*** reliability-filtered: {f['kept']} of {f['of']} pairs with label reliability "
        f"≥ {f['min']!r}{unrated}; not on the board ***"
    )


def partial_banner(result: dict[str, Any]) -> str:
    """For a quick run's result (`evaluate --limit`): the line saying its numbers rest on a subset
    and are kept off the board, shown above and below its table so no one mistakes them; else ""."""
    partial = result.get("partial")
    if not partial:
        return ""
    return (
        f"*** partial: {partial['n']} of {partial['of']} pairs (seeded subset, --limit "
        f"{partial['limit']}); a smoke check, not on the board ***"
    )


def format_diagnostics(result: dict[str, Any]) -> str:
    """The judge diagnostics of a pairwise result (`benchmark.stats.diagnostics`), else "".

    Models with one score per clip are consistent, unbiased and acyclic by construction: nothing
    is printed for them, as nothing was measured.
    """
    d = result.get("diagnostics")
    if not d or d.get("by_construction"):
        return ""
    lines = ["judge diagnostics (both presentation orders; cycles on MOS-decreasing triplets):"]
    rows = []
    if d.get("position_consistency") is not None:
        lo, hi = d["position_consistency_ci"]
        rows.append(
            [
                "  position consistency",
                f"{_pct(d['position_consistency'])}%",
                f"[{_pct(lo)}, {_pct(hi)}]",
                f"{d['n_consistent']} of {d['n_pairs']} pairs",
            ]
        )
        lo, hi = d["first_position_bias_ci"]
        rows.append(
            [
                "  first-position bias",
                f"{d['first_position_bias']:+.3f}",
                f"[{lo:+.3f}, {hi:+.3f}]",
                f"p = {_p(d.get('first_position_bias_p'))}",
            ]
        )
    if d.get("cycle_rate") is not None:
        lo, hi = d["cycle_rate_ci"] or (None, None)
        ties = d.get("n_triplets_with_ties") or 0
        rows.append(
            [
                "  cycle rate",
                f"{_pct(d['cycle_rate'])}%",
                "–" if lo is None else f"[{_pct(lo)}, {_pct(hi)}]",
                f"{d['n_cycles']} of {d['n_triplets']} triplets ({ties} with a tie)",
            ]
        )
    if rows:
        lines.append(_table(["", "value", "95% CI", "n"], rows))
    for what, why in sorted((d.get("unavailable") or {}).items()):
        lines.append(f"  {what}: not available ({why})")
    shortfall = (d.get("triplets") or {}).get("shortfall")
    if shortfall:
        lines.append(f"  fewer triplets than requested: {shortfall}")
    return "\n".join(lines)


NO_CEILING = (
    "  no noise ceiling: the pairs carry no label reliability (a CSV task gets one from its "
    "`n_ratings` and `rating_std` columns: docs/user-guide.md, 'Adding a task')"
)
"""Said under a result without a ceiling, so a missing column is never a silent gap."""


def format_comparison(
    name_a: str,
    name_b: str,
    task: str,
    comp: dict[str, Any],
    edges: Sequence[float] | None,
    ceiling: dict[str, Any] | None = None,
) -> str:
    """The paired comparison as a table: both accuracies, A - B, its interval, raw and Holm p,
    and the noise ceiling of each cell when given (the results' block: both models were scored
    on the same pairs, so they share it)."""
    o = comp["overall"]
    rel = f", {comp['relation']} pairs only" if comp.get("relation") else ""
    conf = int(round(100 * comp["interval"]["confidence"]))
    lines = [
        f"A = {name_a}   B = {name_b}   task {task}{rel}: {o['n']} pairs on {o['n_clips']} clips",
        f"A−B = difference of strict accuracies (points); {conf}% interval and p-values "
        f"generalise over {o.get('generalises_over') or 'clips'}; p (adj.): overall is the "
        f"primary test at α = {comp.get('alpha', 0.05):g}, the other {comp['family_size']} cells "
        "are Holm-adjusted among themselves and count only if overall is significant",
        "",
    ]
    head = ["", "n", "A", "B", "A−B", f"{conf}% CI", "p", "p (adj.)"]
    if ceiling:
        head.append(f"ceiling [{int(round(100 * ceiling['confidence']))}% range]")
    rows = []
    for label, c, path in _cells(comp, edges):
        ci = (
            "–"
            if c.get("ci_low") is None
            else f"[{_pct(c['ci_low'], True)}, {_pct(c['ci_high'], True)}]"
        )
        rows.append(
            [
                label,
                str(c["n"]),
                _pct(c.get("accuracy_a")),
                _pct(c.get("accuracy_b")),
                _pct(c.get("difference"), signed=True),
                ci,
                _p(c.get("p_value")),
                _p(c.get("p_holm")),
            ]
        )
        if ceiling:
            rows[-1].append(_ceiling_text(_ceiling_at(ceiling, path, comp.get("relation"))))
    lines.append(_table(head, rows))
    notes: dict[str, list[str]] = {}
    for label, c, _ in _cells(comp, edges):
        if c.get("n") and c.get("p_value") is None and c.get("interval_note"):
            notes.setdefault(c["interval_note"], []).append(label.strip())
    lines += [f"no test in {', '.join(cells)}: {note}" for note, cells in notes.items()]
    if ceiling:
        lines.append(ceiling_note(ceiling).split("\n")[0])
    mdd = comp.get("minimum_detectable_difference") or {}
    if mdd.get("value") is not None:
        lines.append(
            f"minimum detectable difference, overall: ±{100 * mdd['value']:.1f} points "
            f"(power {int(round(100 * mdd['power']))}% at α = {mdd['alpha']:g}, these pairs); a "
            "smaller true difference may well go undetected, so no significance is no evidence "
            "of no difference"
        )
    lines.append(comparison_verdict(name_a, name_b, comp, edges))
    return "\n".join(lines)


def comparison_verdict(
    name_a: str, name_b: str, comp: dict[str, Any], edges: Sequence[float] | None = None
) -> str:
    """One line a paper can quote: which model is better overall (the primary test), by how much
    with its interval and p, and which other cells hold after gatekeeping; or that this test could
    not tell them apart, with the difference it could have detected."""
    o = comp["overall"]
    alpha = float(comp.get("alpha", 0.05))
    conf = int(round(100 * comp["interval"]["confidence"]))
    if o.get("p_value") is None or o.get("ci_low") is None:
        return f"verdict: no test overall ({o.get('interval_note') or 'no pairs'})"
    diff = f"{_pct(o['difference'], True)} [{_pct(o['ci_low'], True)}, {_pct(o['ci_high'], True)}]"
    stats = f"{diff} points ({conf}% CI), {_p_short(o['p_value'])}"
    if o["p_value"] >= alpha:
        mdd = (comp.get("minimum_detectable_difference") or {}).get("value")
        tail = f"; this test detects ±{100 * mdd:.1f} points with 80% power" if mdd else ""
        return f"verdict: {name_a} and {name_b} not distinguishable overall: {stats}{tail}"
    better, worse = (name_a, name_b) if o["difference"] > 0 else (name_b, name_a)
    held = [
        label.strip()
        for label, c, path in _cells(comp, edges)
        if path != ("overall",) and c.get("p_holm") is not None and c["p_holm"] < alpha
    ]
    also = f"; also in {', '.join(held)} (Holm, gatekept)" if held else ""
    return f"verdict: {better} better than {worse} overall: A−B = {stats}{also}"


def _p_short(x: float) -> str:
    """ "p = 0.21", "p = 0.003", "p = 0.00012", "p < 0.0001"."""
    if x < 1e-4:
        return "p < 0.0001"
    return f"p = {x:.2g}" if x < 0.01 else f"p = {x:.3f}".rstrip("0").rstrip(".")
