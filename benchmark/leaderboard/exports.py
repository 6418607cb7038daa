"""The board as data files: `board.json` (the whole `data.Board`) and `board.csv` (one row per
submission × task, and per submission × task set of the cross-task tables), and each task's
ranking as a paper's table (`task_csv`, `task_latex`).

For people who want the numbers, not the page: the same values as the Markdown and HTML (the
results' fractions, not rounded percentages), sorted keys, no paths, no timestamps of the build,
`\\n` line ends, so the same results give the same bytes. CSV text cells go through
`escape.csv_cell` (no cell starts a spreadsheet formula).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Callable
from typing import Any

from benchmark.escape import csv_cell, latex_text
from benchmark.leaderboard.data import SUBSETS, Board, Cell, Row, TaskBoard, ranking_groups

BOARD_FORMAT = 3  # 2: noise-ceiling rows (status "ceiling"), gap_closed, dimension; 3: rank_low/rank_high replace the tiers
"""Version of the layout of board.json and board.csv; bumped when a field changes meaning."""


def board_json(board: Board) -> str:
    data = {"board_format": BOARD_FORMAT, **dataclasses.asdict(board)}
    return json.dumps(data, sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def _num(x: float | int | None) -> str:
    return "" if x is None else repr(x)


def _flag(x: bool) -> str:
    return "true" if x else "false"


def board_csv(board: Board) -> str:
    """Rows: scope `task` (one task; stale, above-ceiling and failed entries included, marked) and
    `tasks` (a cross-task table: accuracy is micro, macro beside it). `status` is `verified` or
    `self-reported` for a ranked row (each ranked apart, `rank` within its status), else `stale`,
    `above-ceiling`, `failed`; `note` holds the re-score record or the cells above the ceiling."""
    bins = max([t.bins for t in board.tasks] + [len(r.by_bin) for s in board.summaries for r in s.rows] + [0])  # fmt: skip
    relations = sorted({rel for t in board.tasks for rel in t.relations})
    head = ["scope", "task", "dimension", "rank", "submission", "name", "status", "rank_low"]
    head += ["rank_high"]
    head += ["shortcut", "in_domain", "synthetic"]
    head += ["accuracy", "ci_low", "ci_high", "tie_rate", "n"]
    head += ["macro_accuracy", "macro_ci_low", "macro_ci_high"]
    for i in range(bins):
        head += [f"bin_{i}_accuracy", f"bin_{i}_ci_low", f"bin_{i}_ci_high", f"bin_{i}_n"]
    head += [f"{k}_accuracy" for k in SUBSETS]
    head += [csv_cell(f"relation_{rel}_accuracy") for rel in relations]
    head += ["gap_closed", "note"]
    out: list[list[str]] = [head]

    def cell(c: Cell | None) -> list[str]:
        c = c or Cell(None)
        return [_num(c.accuracy), _num(c.ci_low), _num(c.ci_high), _num(c.tie_rate), _num(c.n)]

    def binned(cells: list[Cell]) -> list[str]:
        row: list[str] = []
        for i in range(bins):
            c = cells[i] if i < len(cells) else Cell(None)
            row += [_num(c.accuracy), _num(c.ci_low), _num(c.ci_high), _num(c.n)]
        return row

    for t in board.tasks:
        dim = csv_cell(t.dimension)
        c = t.ceiling
        if c is not None and t.rows:  # the pairs' noise ceiling: an oracle, not a submission
            row = ["task", csv_cell(t.name), dim, "", "", "noise ceiling", "ceiling", "", ""]
            row += ["false", "false", _flag(t.synthetic)]
            row += cell(c.overall) + ["", "", ""] + binned(c.by_bin)
            row += [_num(c.by_subset[k].accuracy) for k in SUBSETS]
            row += [_num((c.by_relation.get(rel) or Cell(None)).accuracy) for rel in relations]
            out.append([*row, "", csv_cell(f"estimator: {c.estimator}")])
        for _, group in ranking_groups(t):
            rank = 0
            for r in group.rows:
                rank += 0 if r.stale or r.above_ceiling else 1
                out.append(_task_row(t, r, rank, cell, binned, relations))
        for f in t.failed:
            row = ["task", csv_cell(t.name), dim, "", csv_cell(f.submission), "", "failed", ""]
            row += ["", "", "", _flag(t.synthetic)] + [""] * 8 + binned([])
            row += [""] * (len(SUBSETS) + len(relations))
            out.append([*row, "", csv_cell(f"{f.stage}: {f.reason}")])
    for s in board.summaries:
        for sr in s.rows:
            row = ["tasks", csv_cell("+".join(s.tasks)), csv_cell(s.dimension), str(sr.rank)]
            status = "verified" if s.verified else "self-reported"
            row += [csv_cell(sr.submission), csv_cell(sr.name), status]
            row += [_num(sr.rank_low), _num(sr.rank_high)]
            row += [_flag(sr.shortcut), _flag(sr.in_domain), "false"]
            row += cell(sr.micro) + [_num(sr.macro.accuracy), _num(sr.macro.ci_low)]
            row += [_num(sr.macro.ci_high)] + binned(sr.by_bin)
            row += [""] * (len(SUBSETS) + len(relations))
            out.append([*row, "", ""])
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(out)
    return buf.getvalue()


def _task_row(
    t: TaskBoard,
    r: Row,
    rank: int,
    cell: Callable[[Cell | None], list[str]],
    binned: Callable[[list[Cell]], list[str]],
    relations: list[str],
) -> list[str]:
    unranked = r.stale or bool(r.above_ceiling)
    status = (
        "stale" if r.stale else "above-ceiling" if r.above_ceiling else
        "verified" if r.verified else "self-reported"
    )  # fmt: skip
    note = r.verified or (
        "above the ceiling: " + ", ".join(r.above_ceiling) if r.above_ceiling else ""
    )
    row = ["task", csv_cell(t.name), csv_cell(t.dimension), "" if unranked else str(rank)]
    row += [csv_cell(r.submission), csv_cell(r.name), status]
    row += [_num(r.rank_low), _num(r.rank_high)]
    row += [_flag(r.shortcut), _flag(r.in_domain), _flag(t.synthetic)]
    row += cell(r.overall) + ["", "", ""] + binned(r.by_bin)
    row += [_num(r.by_subset[k].accuracy) for k in SUBSETS]
    row += [_num((r.by_relation.get(rel) or Cell(None)).accuracy) for rel in relations]
    return [*row, _num(r.gap_closed), csv_cell(note)]


def as_records(text: str) -> list[dict[str, Any]]:
    """board.csv back as dicts (for tests and readers in Python)."""
    return list(csv.DictReader(io.StringIO(text)))


def _ranked_table(task: TaskBoard) -> tuple[list[str], list[list[str]]]:
    """The columns and rows of a task's ranking as a paper reports it: rank interval, model,
    overall accuracy with its 95% interval, each ΔMOS bin (plain strings, not yet escaped)."""
    from benchmark.leaderboard.markdown import pct, rank_range

    head = ["rank (95%)", "model", "overall [95% CI]", *task.bin_labels]
    rows = []
    for r in task.rows:
        if r.stale or r.above_ceiling:
            continue
        rank = (
            "" if r.rank_low is None or r.rank_high is None else rank_range(r.rank_low, r.rank_high)
        )
        name = (
            r.name + (" (shortcut)" if r.shortcut else "") + (" (in-domain)" if r.in_domain else "")
        )
        rows.append([rank, name, pct(r.overall), *(pct(c) for c in r.by_bin)])
    return head, rows


def task_csv(task: TaskBoard) -> str:
    """One task's ranking as CSV (`_ranked_table`), text cells guarded against formulas."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    head, rows = _ranked_table(task)
    writer.writerow(head)
    for row in rows:
        writer.writerow([csv_cell(x) for x in row])
    return buf.getvalue()


def task_latex(task: TaskBoard) -> str:
    """One task's ranking as a LaTeX `tabular` (booktabs rules), every string escaped
    (`escape.latex_text`), for a paper's table."""
    head, rows = _ranked_table(task)
    spec = "ll" + "r" * (len(head) - 2)
    lines = [
        f"% {latex_text(task.name)}: strict pairwise accuracy (%), 95% intervals; mosrm-bench",
        f"\\begin{{tabular}}{{{spec}}}",
        "\\toprule",
        " & ".join(latex_text(h) for h in head) + " \\\\",
        "\\midrule",
    ]
    lines += [" & ".join(latex_text(x) for x in row) + " \\\\" for row in rows]
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"
