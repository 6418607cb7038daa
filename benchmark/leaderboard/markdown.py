"""The board as Markdown (`leaderboard/README.md`, `<results>/summary.md`), from `data.Board`.

Formatting only: every number and rule comes from `benchmark.leaderboard.data`. Every string we
did not write (names, folders, tasks, reasons, licences, urls) goes through
`escape.markdown_cell`, so no name can become a link, an image, HTML or a new table cell.
"""

from __future__ import annotations

from collections.abc import Callable

from benchmark.data.tables import RELATIONS
from benchmark.escape import markdown_cell
from benchmark.leaderboard.data import (
    SUBSETS,
    Board,
    Cell,
    Row,
    Summary,
    TaskBoard,
    failed_text,
    provenance_lines,
    ranking_groups,
    stale_why,
    summaries_by_dimension,
)
from benchmark.leaderboard.ranking import ALPHA
from benchmark.results.report import SUBSET_LABELS
from benchmark.stats.ceiling import MEASURED_COVERAGE

INTRO = (
    "Strict pairwise accuracy in % (ties count as wrong) with 95% intervals over new clips, "
    "systems and contents (pairs share all three; under each table: what the task's intervals "
    "generalise over, and README, 'What a result means'); bins are per-task ΔMOS percentile "
    "bins of the candidate pool (bin 0 = smallest gaps). "
    "‡ shortcut heuristic, † trained on this task's corpus (in-domain). "
    "✗ failed: the latest attempt failed, so no numbers are shown; ⚠ stale: computed by "
    "other code than the submission folder now holds; ⚑ above the ceiling: a cell more in "
    "agreement with the labels than their own noise allows (check for label leakage). None of "
    "these is ranked. ✓ verified: the board's builder ran the submission again on a secret "
    "sample of its pairs and got its scores (`mosrm validate-results --rescore`); every other row "
    "is self-reported and ranked apart. "
    "⊤ noise ceiling: the strict accuracy an oracle that knew the true (infinite-panel) means "
    "would score against these labels, i.e. the pairs' mean label reliability, with the nominal "
    f"95% range of that oracle's accuracy (in simulation it held the oracle in "
    f"{MEASURED_COVERAGE[0]:.2f}–{MEASURED_COVERAGE[1]:.2f} of tests; README, 'How good can a "
    "model be?'); not a model, never "
    "ranked. 'of gap': (accuracy − 50) / (ceiling − 50), the share of the reachable gain above "
    "chance."
)

RANK_RULE = (
    f"Rank (95%): the ranks the data allow each model, all at once with {1 - ALPHA:.0%} "
    "confidence: every two models are compared by the paired test of `mosrm compare` (overall, "
    f"same pairs), Holm-adjusted over all the pairs of models, and a model's interval runs from "
    "1 + the models significantly better to the number of models − those significantly worse. "
    "Models whose intervals overlap are not distinguishable at this power, which is not the same "
    "as equally good. Across tasks the tests run on the pooled (micro) pairs."
)


def pct(cell: Cell | None, with_ci: bool = True) -> str:
    if cell is None or not cell.n or cell.accuracy is None:
        return "–"
    acc = 100 * cell.accuracy
    if not with_ci or cell.ci_low is None or cell.ci_high is None:
        return f"{acc:.1f}"
    return f"{acc:.1f} [{100 * cell.ci_low:.1f}, {100 * cell.ci_high:.1f}]"


def rate(value: float | None, ci: list[float] | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    if signed:
        text = f"{value:+.3f}"
        return text if not ci else f"{text} [{ci[0]:+.3f}, {ci[1]:+.3f}]"
    text = f"{100 * value:.1f}%"
    return text if not ci else f"{text} [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def _name(name: str, shortcut: bool, in_domain: bool) -> str:
    """Escaped display name with the ‡ shortcut and † in-domain markers."""
    out = markdown_cell(name)
    if shortcut:
        out += " ‡"
    if in_domain:
        out += " †"
    return out


def _row_name(r: Row) -> str:
    out = _name(r.name, r.shortcut, r.in_domain) + (" ⚠ stale" if r.stale else "")
    return out + (" ⚑ above the ceiling" if r.above_ceiling else "")


def _line(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _head(cells: list[str]) -> list[str]:
    return [_line(cells), "|" + "---|" * len(cells)]


def rank_range(low: int | None, high: int | None) -> str:
    """ "1–3" (or "2" when the data pin it down); "–" for an unranked row."""
    if low is None or high is None:
        return "–"
    return str(low) if low == high else f"{low}–{high}"


CEILING_NAME = "⊤ noise ceiling"


def gap(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def ceiling_note(t: TaskBoard, esc: Callable[[str], str] = markdown_cell) -> str:
    """Which estimator made the ceiling, and whether some pairs had no reliability."""
    c = t.ceiling
    if c is None:
        return ""
    out = f"⊤ from the {esc(c.estimator)} label-reliability estimator"
    if c.partial:
        out += f"; only the {c.overall.n} pairs with rating counts are in it"
    return out + "."


GROUP_CAPTIONS = {
    "verified": "✓ Verified (re-scored by the board's builder):",
    "self-reported": "Self-reported (not re-scored by the board's builder; ranked apart):",
}


def task_tables(t: TaskBoard) -> str:
    """The task's tables (`ranking_groups`), each under its caption, then who re-scored what."""
    parts = []
    for what, group in ranking_groups(t):
        parts += [GROUP_CAPTIONS[what], "", task_table(group), ""]
    for what, names in provenance_lines(t):
        mark = "" if what == "self-reported" else "✓ "
        parts.append(f"- {mark}{markdown_cell(what)}: {'; '.join(map(markdown_cell, names))}")
    return "\n".join(parts)


def task_table(t: TaskBoard) -> str:
    head = ["model", "overall [95% CI]", "of gap"]
    head += [markdown_cell(g) for g in t.groups]
    head += t.bin_labels
    head += [SUBSET_LABELS[k] for k in SUBSETS]
    head += ["ties", "n", "rank (95%)"]
    lines = _head(head)
    c = t.ceiling
    if c is not None:
        row = [CEILING_NAME, pct(c.overall), "100%" if c.overall.accuracy else "–"]
        row += [pct(c.by_group.get(g)) for g in t.groups]
        row += [pct(x) for x in c.by_bin]
        row += [pct(c.by_subset.get(k)) for k in SUBSETS]
        row += ["–", str(c.overall.n), "–"]
        lines.append(_line(row))
    for r in t.rows:
        row = [_row_name(r), pct(r.overall), gap(r.gap_closed)]
        row += [pct(r.by_group.get(g)) for g in t.groups]
        row += [pct(c) for c in r.by_bin]
        row += [pct(r.by_subset.get(k)) for k in SUBSETS]
        row += [
            f"{100 * (r.overall.tie_rate or 0):.1f}%",
            str(r.overall.n),
            rank_range(r.rank_low, r.rank_high),
        ]
        lines.append(_line(row))
    return "\n".join(lines)


def relation_label(rel: str, size: int) -> str:
    return f"{rel if rel in RELATIONS else markdown_cell(rel)} ({size} pairs)"


def relation_table(t: TaskBoard) -> str:
    """Per relation: on a listening test with many systems per sentence, same_content is the
    number users want, while most pairs (and so the overall figure) are cross pairs."""
    lines = _head(["model", *(relation_label(rel, t.relation_sizes[rel]) for rel in t.relations)])
    if t.ceiling is not None:
        cells = [pct(t.ceiling.by_relation.get(rel)) for rel in t.relations]
        lines.append(_line([CEILING_NAME, *cells]))
    for r in t.rows:
        lines.append(_line([_row_name(r), *(pct(r.by_relation.get(rel)) for rel in t.relations)]))
    return "\n".join(lines)


DIAGNOSTICS_NOTE = (
    "Consistency: share of pairs whose decision (as a clip) is the same in both presentation "
    "orders. Bias: mean of prefer(a, b) + prefer(b, a) − 1 (+1 = always the first clip). "
    "Cycle rate: share of the seeded MOS-decreasing triplets the judge orders cyclically "
    "(x ≻ y ≻ z ≻ x); ties never form a cycle. Definitions: README, 'What a result means'. "
)


def diagnostics_cells(r: Row) -> list[str]:
    """Consistency, bias, cycle rate, pairs, triplets: formatted, not escaped (numbers only)."""
    d = r.diagnostics
    if d is None:
        return [*["not computed: rerun"] * 3, "–", "–"]
    return [
        rate(d.get("position_consistency"), d.get("position_consistency_ci")),
        rate(d.get("first_position_bias"), d.get("first_position_bias_ci"), True),
        rate(d.get("cycle_rate"), d.get("cycle_rate_ci")),
        str(d.get("n_pairs") if d.get("n_pairs") is not None else "–"),
        str(d.get("n_triplets") if d.get("n_triplets") is not None else "–"),
    ]


def diagnostics_table(t: TaskBoard) -> str:
    """Judge diagnostics of the task's pairwise models (`benchmark.stats.diagnostics`), or "".

    Models with one score per clip are not rows: they are consistent, unbiased and acyclic by
    construction, which the line under the table says.
    """
    judged = [r for r in t.rows if r.judged]
    if not judged:
        return ""
    head = [
        "model",
        "position consistency [95% CI]",
        "first-position bias [95% CI]",
        "cycle rate [95% CI]",
        "pairs",
        "triplets",
    ]
    lines = _head(head)
    notes: list[str] = []
    for r in judged:
        lines.append(_line([_row_name(r), *diagnostics_cells(r)]))
        for what, why in sorted(((r.diagnostics or {}).get("unavailable") or {}).items()):
            name = _name(r.name, r.shortcut, r.in_domain)
            notes.append(f"- {name}: {markdown_cell(what)} not available: {markdown_cell(why)}")
    n_scalar = len(t.rows) - len(judged)
    out = [
        "\n".join(lines),
        "",
        DIAGNOSTICS_NOTE
        + (
            f"The {n_scalar} other model(s) score each clip on its own: consistency 100%, bias 0 "
            "and cycle rate 0 by construction."
            if n_scalar
            else ""
        ),
    ]
    if notes:
        out += ["", *notes]
    return "\n".join(out).rstrip()


def not_ranked(t: TaskBoard) -> list[str]:
    lines = [f"- ✗ {failed_text(f, markdown_cell, markdown_cell(f.submission))}" for f in t.failed]
    for r in t.rows:
        if r.above_ceiling:
            cells = ", ".join(markdown_cell(c) for c in r.above_ceiling)
            lines.append(
                f"- ⚑ {markdown_cell(r.name)}: above what the labels allow ({cells}: interval "
                "entirely above the noise ceiling's): check for label leakage; never ranked"
            )
    for s in t.stale:
        name = markdown_cell(s.submission)
        lines.append(
            f"- ⚠ {name}: stale, {stale_why(s, markdown_cell)}; rerun it "
            f"(mosrm evaluate {name} --task {markdown_cell(t.name)})"
        )
    return lines


def task_heading(t: TaskBoard) -> str:
    note = " — SYNTHETIC, smoke test only" if t.synthetic else ""
    label = "" if t.dimension == "quality" else f", label: {markdown_cell(t.dimension)}"
    return (
        f"{markdown_cell(t.name)} (v{t.version}, {t.split} split, {t.n_pairs} pairs on "
        f"{t.n_clips} clips{label}){note}"
    )


def dimension_title(dim: str) -> str:
    return "overall quality" if dim == "quality" else f"label '{dim}'"


def by_dimension(tasks: list[TaskBoard]) -> list[TaskBoard]:
    """Overall-quality tasks first, then each other preference dimension's, by name."""
    return sorted(tasks, key=lambda t: (t.dimension != "quality", t.dimension, t.name))


def merged_bins_note(t: TaskBoard) -> str:
    if t.bins and t.bins_requested and t.bins < t.bins_requested:
        return (
            f"{t.bins} ΔMOS bins, not the {t.bins_requested} requested: tied ΔMOS values filled "
            "whole percentile bands, which are merged (a tie is never split across bins)."
        )
    return ""


def kept_out(board: Board) -> str:
    if not board.synthetic_tasks:
        return ""
    return (
        f"Synthetic tasks ({', '.join(markdown_cell(t) for t in board.synthetic_tasks)}) are "
        "never pooled with real corpora here."
    )


SUMMARY_INTRO = (
    "Micro pools every pair of the tasks listed (the paper's overall); macro is the unweighted "
    "mean over those tasks. Submissions are ranked only against others evaluated on the same "
    "tasks. "
)


def summary_table(s: Summary) -> str:
    listed = ", ".join(markdown_cell(t) for t in s.tasks)
    status = "✓ verified" if s.verified else "self-reported, ranked apart"
    lines = [f"Evaluated on {len(s.tasks)} task(s): {listed} ({status})", ""]
    head = ["#", "model", "micro [95% CI]", "macro [95% CI]", "rank (95%)"]
    lines += _head([*head, *(markdown_cell(t) for t in s.tasks), "pairs"])
    for r in s.rows:
        cells = [str(r.rank), _name(r.name, r.shortcut, r.in_domain), pct(r.micro), pct(r.macro)]
        cells += [rank_range(r.rank_low, r.rank_high)]
        cells += [pct(r.per_task.get(t), with_ci=False) for t in s.tasks]
        lines.append(_line([*cells, str(r.pairs)]))
    return "\n".join(lines)


DIMENSIONS_NOTE = (
    "Tasks whose labels come from another score column than overall quality (e.g. noisiness, "
    "intelligibility) are summarised per dimension, never pooled with overall quality. "
)


def not_pooled(board: Board) -> str:
    if not board.not_pooled:
        return ""
    listed = "; ".join(
        f"{markdown_cell(t)} ({markdown_cell(w)})" for t, w in board.not_pooled.items()
    )
    return f"Not pooled here: {listed}."


def summary(board: Board) -> str:
    if not board.summaries:
        text = "No results on real (non-synthetic) tasks yet. " + kept_out(board)
        return (text + " " + not_pooled(board)).strip()
    groups = summaries_by_dimension(board.summaries)
    several = len(groups) > 1 or groups[0][0] != "quality"
    parts = [SUMMARY_INTRO + (DIMENSIONS_NOTE if several else "") + kept_out(board)]
    for dim, summaries in groups:
        if several:
            parts.append(f"### {markdown_cell(dimension_title(dim)).capitalize()}")
        parts += [summary_table(s) for s in summaries]
    if board.not_pooled:
        parts.append(not_pooled(board))
    return "\n\n".join(parts)


def models_table(board: Board) -> str:
    """What each model is (MTEB-style record). Links are shown as text, never rendered."""
    rows = []
    for m in board.models:
        size = "–" if m.parameters is None else f"{m.parameters:,}"
        if m.parameters is not None and m.parameters_source == "declared":
            size += " (declared)"
        cells = [
            _name(m.name, m.shortcut, False),
            markdown_cell(m.kind or "–"),
            size,
            *(markdown_cell(v or "–") for v in (m.license, m.revision, m.release_date)),
            markdown_cell(m.url or "–"),
            markdown_cell(", ".join(m.training_data) or "none declared"),
        ]
        rows.append(_line(cells))
    if not rows:
        return ""
    head = ["model", "kind", "parameters", "licence", "revision", "released", "url", "trained on"]
    return "\n".join([*_head(head), *rows])


def literature(board: Board) -> str:
    lines = [
        "Reported by " + board.literature_source + ". These numbers are **not comparable** with "
        "the tables above (other pairs, other models' training) and are never ranked with them.",
        "",
        *_head(["model (as reported)", "base", "overall accuracy (%)"]),
    ]
    lines += [_line([r.model, r.base, r.overall]) for r in board.literature]
    return "\n".join(lines)


def markdown(board: Board) -> str:
    """The whole board: per task (bins, relations, judge diagnostics, notes), all tasks, models,
    then the literature, apart."""
    if board.empty:
        return "No results yet: run `mosrm run` (or `make run`).\n"
    out = ["# mosrm-bench results", "", INTRO, "", RANK_RULE]
    for t in by_dimension(board.tasks):
        if not t.rows:
            out += ["", f"## {markdown_cell(t.name)}", "", "No current results."]
        else:
            out += ["", f"## {task_heading(t)}", "", task_tables(t)]
            for note in (t.interval_scope, ceiling_note(t), merged_bins_note(t)):
                if note:
                    out += ["", note]
            out += ["", "By relation:", "", relation_table(t)]
            diagnostics = diagnostics_table(t)
            if diagnostics:
                out += ["", "Judge diagnostics:", "", diagnostics]
        notes = not_ranked(t)
        if notes:
            out += ["", "Not ranked:", "", *notes]
    out += ["", "## All tasks", "", summary(board)]
    if board.unranked:
        listed = "; ".join(
            f"{markdown_cell(sub)} ({', '.join(markdown_cell(w) for w in why)})"
            for sub, why in board.unranked.items()
        )
        out += ["", f"Left out of this ranking until rerun: {listed}."]
    models = models_table(board)
    if models:
        out += ["", "## Models", "", models]
    from benchmark.leaderboard.robustness import markdown_section

    out += markdown_section(board.robustness)
    out += ["", "## Numbers reported in the literature (not ranked, not comparable)", ""]
    out += [literature(board)]
    return "\n".join(out) + "\n"
