"""`mosrm board`: compute the board once and write every output of it.

Into `out` (default: the workspace's `board/`): `README.md` (Markdown), `site/index.html` (the
static page), `site/board.csv`, `site/board.json`, `site/plots/*.svg` and `*.pdf` (each figure as
a file for a paper: the default models, with a legend) and `site/tables/<task>.csv` and `.tex`
(each task's ranking as a paper's table). Each file is written atomically (`benchmark.atomic`), and figures of tasks no longer on
the board are removed, so the folder is a pure function of the results folder: the same results
give the same bytes wherever they sit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmark.atomic import atomic_write_bytes, atomic_write_text
from benchmark.leaderboard.data import Board, board_data


@dataclass(frozen=True)
class Built:
    board: Board
    markdown: str
    files: list[Path]


def _slug(i: int, name: str) -> str:
    return f"{i:02d}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)[:60]}"


def render(board: Board) -> dict[str, str | bytes]:
    """{relative path: text, or bytes for a PDF} of every file of the board, Markdown first."""
    from benchmark.leaderboard import plots
    from benchmark.leaderboard.exports import board_csv, board_json, task_csv, task_latex
    from benchmark.leaderboard.markdown import markdown
    from benchmark.leaderboard.site import page

    files: dict[str, str | bytes] = {"README.md": markdown(board)}
    figures: dict[str, dict[str, str]] = {}
    for i, t in enumerate(board.tasks):
        slug = _slug(i, t.name)
        if t.rows:
            files[f"site/tables/{slug}.csv"] = task_csv(t)
            files[f"site/tables/{slug}.tex"] = task_latex(t)
        shown, _ = plots.shown_rows(t)
        if not shown:
            continue
        bins_svg, bins_pdf = plots.bins_files(t)
        rel_svg, rel_pdf = plots.relations_files(t)
        figures[t.name] = {
            "bins": plots.bins_page_svg(t),
            "relations": rel_svg,
            "slug": slug,
        }
        files[f"site/plots/{slug}-bins.svg"] = bins_svg
        files[f"site/plots/{slug}-bins.pdf"] = bins_pdf
        files[f"site/plots/{slug}-relations.svg"] = rel_svg
        files[f"site/plots/{slug}-relations.pdf"] = rel_pdf
    names = [t.name for t in board.tasks]
    robust: dict[str, tuple[str, str]] = {}
    for rt in board.robustness:
        if not rt.rows:
            continue
        i = names.index(rt.task) if rt.task in names else len(names)
        stem = _slug(i, rt.task)
        svg, pdf = plots.sensitivity_files(rt)
        files[f"site/plots/{stem}-sensitivity.svg"] = svg
        files[f"site/plots/{stem}-sensitivity.pdf"] = pdf
        robust[rt.task] = (svg, stem)
    heatmap = plots.heatmap_svg(board) if plots.heatmap_order(board) else ""
    if heatmap:
        files["site/plots/heatmap.svg"] = heatmap
    files["site/index.html"] = page(board, figures, heatmap, robust)
    files["site/board.csv"] = board_csv(board)
    files["site/board.json"] = board_json(board)
    return files


def build_board(
    results_root: str | Path,
    out: str | Path,
    submissions_root: str | Path | Sequence[Path] | None = None,
    *,
    repo: str | Path | None = None,
) -> Built:
    """Compute the board from `results_root` and write it under `out` (see module doc). With
    `repo`, its rules: the re-score ledger (`results.ledger`) says which rows are verified, and
    only its official tasks (`load.official_tasks`) are pooled in "All tasks"."""
    ledger, official = None, None
    if repo is not None:
        from benchmark.leaderboard.load import official_tasks
        from benchmark.results.ledger import ledger_path, read_ledger

        ledger = read_ledger(ledger_path(results_root))
        official = official_tasks(Path(repo))
    board = board_data(results_root, submissions_root, ledger=ledger, official_tasks=official)
    files = render(board)
    out = Path(out)
    written = []
    for rel, data in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            atomic_write_bytes(path, data)
        else:
            atomic_write_text(path, data)
        written.append(path)
    for folder, pattern in (("plots", "*.*"), ("tables", "*.*")):
        for old in sorted((out / "site" / folder).glob(pattern)):
            if old not in written:  # a task or figure gone since the last build
                old.unlink()
    markdown = files["README.md"]
    assert isinstance(markdown, str)
    return Built(board, markdown, written)


def short_summary(board: Board, top: int = 3) -> str:
    """What `mosrm board` prints: per task its leaders (overall accuracy [95% CI], rank interval)
    and how many more rows the full board has; the tables themselves are in the files it names."""
    from benchmark.escape import display_name

    lines = []
    for t in board.tasks:
        ranked = [r for r in t.rows if not r.stale and not r.above_ceiling]
        tag = " (synthetic)" if t.synthetic else ""
        lines.append(f"{t.name}{tag}: {len(t.rows)} model(s), {t.n_pairs or 0} pairs")
        for r in ranked[:top]:
            acc = "–" if r.overall.accuracy is None else f"{100 * r.overall.accuracy:.1f}"
            ci = (
                ""
                if r.overall.ci_low is None or r.overall.ci_high is None
                else f" [{100 * r.overall.ci_low:.1f}, {100 * r.overall.ci_high:.1f}]"
            )
            rank = "" if r.rank_low is None else f"  rank {r.rank_low}–{r.rank_high}"
            lines.append(f"  {display_name(r.name)[:60]:<60} {acc}{ci}{rank}")
        if len(t.rows) > top:
            lines.append(f"  … and {len(t.rows) - min(top, len(ranked))} more")
        if t.failed:
            lines.append(f"  {len(t.failed)} failed (see the board)")
    return "\n".join(lines) if lines else "no results yet"
