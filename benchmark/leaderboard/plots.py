"""The board's figures as static SVG text: accuracy per ΔMOS bin (the paper's Fig. 3 view), the
same per relation (small multiples), and a model × task heatmap of overall accuracy.

Reproducible bytes: a fixed `svg.hashsalt`, no date or creator in the metadata, and
`svg.fonttype: none` (text stays text, so the SVG needs no embedded glyphs and reads as text in a
browser); colours and order are fixed by rank. The figures use matplotlib's object API on an SVG
canvas, never pyplot, so no global figure state or GUI backend is involved.

Legibility with many models: a figure file (SVG and PDF, for a paper) shows the `TOP` best-ranked
models plus every shortcut (dashed, grey) with a legend; the page's per-bin plot draws every
ranked model, each line and band in its own group (`gid`), with the page's own legend of full
names to switch them on and off, the same `TOP` and shortcuts on by default. Names we did not
write are labels here: `$` is escaped so that matplotlib never reads a name as mathtext.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

from benchmark.leaderboard.data import Board, Cell, Row, TaskBoard

TOP = 5
"""Non-shortcut models shown per line plot by default (the best by rank); the table lists all."""

PALETTE = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#17becf",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#393b79",
)
SHORTCUT_COLOURS = ("#7f7f7f", "#a5a5a5", "#5a5a5a", "#c0c0c0")
SHORTCUT_MARKERS = ("s", "^", "v", "D")

RC: dict[Any, Any] = {  # matplotlib types its keys as a Literal of every rc name
    "svg.hashsalt": "mosrm-board",
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "path.simplify": False,
}
METADATA = {"Date": None, "Creator": None}
PDF_METADATA = {"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None}


def label(text: str, limit: int = 40) -> str:
    """A name as a plot label: at most `limit` characters, `$` escaped (no mathtext).

    A long name is cut in the middle, not at the end: variants of one model differ at the end
    ("… [SFT only]", "…, per unit"), and a cut there gave them the same label in the heatmap.
    """
    if len(text) > limit:
        tail = limit // 3
        text = text[: limit - tail - 1].rstrip() + "…" + text[-tail:].lstrip()
    return text.replace("$", r"\$")


def shown_rows(task: TaskBoard) -> tuple[list[Row], int]:
    """Rows drawn in the line plots (ranked only: the `TOP` best, then every shortcut) and how
    many ranked non-shortcut rows are left out."""
    ranked = [r for r in task.rows if not r.stale]
    models = [r for r in ranked if not r.shortcut]
    shortcuts = [r for r in ranked if r.shortcut]
    return models[:TOP] + shortcuts, max(0, len(models) - TOP)


def _svg(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata=METADATA, bbox_inches="tight")
    return buf.getvalue().decode("utf-8")


def _pdf(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="pdf", metadata=PDF_METADATA, bbox_inches="tight")
    return buf.getvalue()


def drawable_rows(task: TaskBoard) -> list[Row]:
    """Every row the page's interactive plot can show (ranked: not stale)."""
    return [r for r in task.rows if not r.stale]


def model_gid(task: TaskBoard, row: Row) -> str:
    """The group id of a row's line and band in the interactive plot (its place in the table)."""
    return f"m{task.rows.index(row)}"


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=72)


def _style(rows: Sequence[Row]) -> list[dict[str, Any]]:
    out = []
    models = shortcuts = 0
    for r in rows:
        if r.shortcut:
            i = shortcuts
            shortcuts += 1
            out.append(
                {
                    "color": SHORTCUT_COLOURS[i % len(SHORTCUT_COLOURS)],
                    "linestyle": "--",
                    "marker": SHORTCUT_MARKERS[i % len(SHORTCUT_MARKERS)],
                }
            )
        else:
            i = models
            models += 1
            out.append({"color": PALETTE[i % len(PALETTE)], "linestyle": "-", "marker": "o"})
    return out


def _series(cells: Sequence[Cell]) -> tuple[list[float], list[float], list[float]]:
    nan = math.nan

    def pc(x: float | None) -> float:
        return nan if x is None else 100 * x

    acc = [pc(c.accuracy) if c.n else nan for c in cells]
    low = [pc(c.ci_low) if c.n else nan for c in cells]
    high = [pc(c.ci_high) if c.n else nan for c in cells]
    return acc, low, high


def _bin_ticks(task: TaskBoard) -> list[str]:
    # "bin 0 (Δ 0.12–0.50)" -> "0\nΔ 0.12–0.50"
    out = []
    for i, text in enumerate(task.bin_labels):
        inside = text.partition("(")[2].rstrip(")")
        out.append(f"{i}\n{inside}" if inside else str(i))
    return out


def _ceiling(ax: Any, cells: Sequence[Cell] | None) -> None:
    """The noise ceiling as the upper band: a thick black line (no markers), its 95% range in grey."""
    if not cells or not any(c.n for c in cells):
        return
    xs = list(range(len(cells)))
    acc, low, high = _series(cells)
    ax.fill_between(xs, low, high, color="#9ca3af", alpha=0.30, linewidth=0)
    ax.plot(xs, acc, color="#111111", linewidth=2.0, linestyle="-", label="⊤ noise ceiling")


def _lines(
    ax: Any,
    task: TaskBoard,
    rows: Sequence[Row],
    series: list[list[Cell]],
    ceiling: Sequence[Cell] | None = None,
    grouped: bool = False,
) -> None:
    xs = list(range(task.bins))
    _ceiling(ax, ceiling)
    for r, style, cells in zip(rows, _style(rows), series, strict=True):
        acc, low, high = _series(cells)
        band = ax.fill_between(xs, low, high, color=style["color"], alpha=0.10, linewidth=0)
        # "rank. name": a legend skips labels starting with "_", and the rank links to the table
        (line,) = ax.plot(
            xs,
            acc,
            label=label(f"{task.rows.index(r) + 1}. {r.name}" + (" ‡" if r.shortcut else "")),
            linewidth=1.4,
            markersize=4,
            **style,
        )
        if grouped:  # the page switches a model on and off by these ids
            band.set_gid(f"{model_gid(task, r)}-band")
            line.set_gid(f"{model_gid(task, r)}-line")
    ax.axhline(50, color="#444444", linewidth=0.8, linestyle=":")
    ax.set_xticks(xs)
    ax.set_xticklabels(_bin_ticks(task), fontsize=7)
    ax.set_ylim(0, 100)
    ax.grid(axis="y", color="#e5e5e5", linewidth=0.6)


def styles(task: TaskBoard) -> dict[str, dict[str, Any]]:
    """Each drawable row's colour, line style and marker (by gid), the same in every figure."""
    rows = drawable_rows(task)
    return {model_gid(task, r): st for r, st in zip(rows, _style(rows), strict=True)}


def _bins_figure(task: TaskBoard, interactive: bool) -> Any:
    import matplotlib

    rows = drawable_rows(task) if interactive else shown_rows(task)[0]
    with matplotlib.rc_context(RC):
        fig = _figure(7.5 if not interactive else 6.2, 3.6)
        ax = fig.add_subplot()
        ceiling = None if task.ceiling is None else task.ceiling.by_bin
        _lines(ax, task, rows, [r.by_bin for r in rows], ceiling, grouped=interactive)
        ax.set_xlabel("ΔMOS percentile bin (0 = smallest gaps)")
        ax.set_ylabel("strict accuracy (%)")
        ax.set_title(label(f"{task.name}: accuracy by ΔMOS bin", 80), loc="left")
        if rows and not interactive:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
        return fig


def bins_page_svg(task: TaskBoard) -> str:
    """The page's per-bin plot: accuracy per ΔMOS bin, every ranked model's line and 95% band,
    each grouped by gid, no legend (the page's switches are), chance dotted, the noise ceiling
    (where the pairs have label reliabilities) as the upper band."""
    import matplotlib

    with matplotlib.rc_context(RC):
        return _svg(_bins_figure(task, True))


def bins_files(task: TaskBoard) -> tuple[str, bytes]:
    """The per-bin figure as files for a paper (the default models, with a legend): SVG and PDF
    from one drawing."""
    import matplotlib

    with matplotlib.rc_context(RC):
        fig = _bins_figure(task, False)
        return _svg(fig), _pdf(fig)


def _relations_figure(task: TaskBoard) -> Any:
    rows, _ = shown_rows(task)
    rels = task.relations or ["(none)"]
    fig = _figure(3.2 * len(rels) + 2.4, 3.2)
    axes = fig.subplots(1, len(rels), sharey=True, squeeze=False)[0]
    for ax, rel in zip(axes, rels, strict=True):
        series = [r.by_relation_bin.get(rel) or [Cell(None)] * task.bins for r in rows]
        ceiling = None if task.ceiling is None else task.ceiling.by_relation_bin.get(rel)
        _lines(ax, task, rows, series, ceiling)
        size = task.relation_sizes.get(rel, 0)
        ax.set_title(label(f"{rel} ({size} pairs)", 50), loc="left", fontsize=9)
        ax.set_xlabel("ΔMOS bin")
    axes[0].set_ylabel("strict accuracy (%)")
    if rows:
        axes[-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize=8)
    return fig


def relations_files(task: TaskBoard) -> tuple[str, bytes]:
    """The per-relation figure as SVG (also inlined in the page) and PDF, from one drawing."""
    import matplotlib

    with matplotlib.rc_context(RC):
        fig = _relations_figure(task)
        return _svg(fig), _pdf(fig)


def heatmap_order(board: Board) -> list[tuple[str, str, bool]]:
    """(submission, name, shortcut) by mean overall accuracy over the tasks each has, best first."""
    acc: dict[str, list[float]] = {}
    names: dict[str, tuple[str, bool]] = {}
    for t in board.tasks:
        for r in t.rows:
            if not r.stale and r.overall.accuracy is not None:
                acc.setdefault(r.submission, []).append(r.overall.accuracy)
                names[r.submission] = (r.name, r.shortcut)
    order = sorted(acc, key=lambda s: (-sum(acc[s]) / len(acc[s]), s))
    return [(s, *names[s]) for s in order]


def heatmap_svg(board: Board) -> str:
    """Overall accuracy, models (rows) × tasks (columns); blank where a model has no current
    result on a task."""
    import matplotlib
    import numpy as np

    models = heatmap_order(board)
    tasks = [t for t in board.tasks if t.rows]
    values = np.full((len(models), len(tasks)), np.nan)
    row_of = {s: i for i, (s, _, _) in enumerate(models)}
    for j, t in enumerate(tasks):
        for r in t.rows:
            if not r.stale and r.overall.accuracy is not None:
                values[row_of[r.submission], j] = 100 * r.overall.accuracy
    with matplotlib.rc_context(RC):
        fig = _figure(1.1 * len(tasks) + 3.2, 0.3 * len(models) + 1.4)
        ax = fig.add_subplot()
        cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#eeeeee")
        # a vector mesh, not imshow: no embedded raster image in the SVG
        ax.pcolormesh(
            np.arange(len(tasks) + 1) - 0.5,
            np.arange(len(models) + 1) - 0.5,
            np.ma.masked_invalid(values),
            cmap=cmap,
            vmin=40,
            vmax=100,
            edgecolors="white",
            linewidth=1.0,
        )
        ax.set_ylim(len(models) - 0.5, -0.5)
        for i in range(len(models)):
            for j in range(len(tasks)):
                v = values[i, j]
                if not np.isnan(v):
                    colour = "white" if v < 75 else "black"
                    ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=7, color=colour)
        ax.set_xticks(range(len(tasks)))
        ax.set_xticklabels(
            [label(t.name + (" (synthetic)" if t.synthetic else ""), 30) for t in tasks],
            rotation=30,
            ha="right",
        )
        ax.set_yticks(range(len(models)))
        ax.set_yticklabels([label(n + (" ‡" if sc else "")) for _, n, sc in models])
        ax.tick_params(length=0)
        for side in ("left", "bottom"):
            ax.spines[side].set_visible(False)
        ax.set_title("overall strict accuracy (%)", loc="left")
        return _svg(fig)


def _sensitivity_figure(task: Any) -> Any:
    """Small multiples, one per degradation family: accuracy (%) by severity, a line per model
    (`leaderboard.robustness.RobustTask`), shortcuts dashed grey, chance dotted."""
    from benchmark.leaderboard.robustness import FAMILY_ORDER

    fams = [f for f in FAMILY_ORDER if any(f in r.families for r in task.rows)]
    cols = max(1, min(4, len(fams)))
    nrows = max(1, -(-len(fams) // cols))
    fig = _figure(2.3 * cols + 2.6, 2.2 * nrows + 0.4)
    axes = fig.subplots(nrows, cols, sharey=True, squeeze=False)
    models = shortcuts = 0
    styles = []
    for r in task.rows:
        if r.shortcut:
            i, shortcuts = shortcuts, shortcuts + 1
            styles.append({"color": SHORTCUT_COLOURS[i % len(SHORTCUT_COLOURS)], "linestyle": "--",
                           "marker": SHORTCUT_MARKERS[i % len(SHORTCUT_MARKERS)]})  # fmt: skip
        else:
            i, models = models, models + 1
            styles.append({"color": PALETTE[i % len(PALETTE)], "linestyle": "-", "marker": "o"})
    for k, ax in enumerate(axes.reshape(-1)):
        if k >= len(fams):
            ax.set_visible(False)
            continue
        fam = fams[k]
        ticks: list[str] = []
        for r, style in zip(task.rows, styles, strict=True):
            accs = r.families.get(fam, [])
            ticks = ticks or r.severities.get(fam, [])
            ys = [math.nan if a is None else 100 * a for a in accs]
            ax.plot(range(len(ys)), ys, label=label(r.name), linewidth=1.2, markersize=3, **style)
        ax.axhline(50, color="#444444", linewidth=0.8, linestyle=":")
        ax.set_xticks(range(len(ticks)))
        ax.set_xticklabels([label(t, 12) for t in ticks], fontsize=6)
        ax.set_ylim(-2, 102)
        ax.set_title(label(fam, 30), loc="left", fontsize=8)
        ax.grid(axis="y", color="#e5e5e5", linewidth=0.6)
    fig.subplots_adjust(hspace=0.45)
    for row in axes:
        row[0].set_ylabel("clean preferred (%)")
    if task.rows:
        axes[0][-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize=7)
    return fig


def sensitivity_files(task: Any) -> tuple[str, bytes]:
    """The robustness figure of a task (`RobustTask`): SVG (inlined in the page) and PDF."""
    import matplotlib

    with matplotlib.rc_context(RC):
        fig = _sensitivity_figure(task)
        return _svg(fig), _pdf(fig)
