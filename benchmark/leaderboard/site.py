"""The board as one static HTML page (`leaderboard/site/index.html`), from `data.Board`.

It must work from `file://` with no network: no CDN, no web fonts, inline CSS, the figures inline
as SVG, and a small hand-written script that sorts a table by its clicked header. A
Content-Security-Policy meta tag forbids every fetch, so a name that slipped through escaping still
could not load anything. Every string we did not write goes through `escape.html_text`; a model's
url becomes a link only if `escape.safe_url` passes it (http or https), with rel="nofollow
noopener". Formatting only: numbers and rules come from `benchmark.leaderboard.data`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from benchmark.escape import html_text as esc
from benchmark.escape import safe_url
from benchmark.leaderboard import plots
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
from benchmark.leaderboard.markdown import (
    CEILING_NAME,
    DIAGNOSTICS_NOTE,
    DIMENSIONS_NOTE,
    GROUP_CAPTIONS,
    INTRO,
    RANK_RULE,
    SUMMARY_INTRO,
    by_dimension,
    ceiling_note,
    diagnostics_cells,
    dimension_title,
    merged_bins_note,
    pct,
    rank_range,
)
from benchmark.results.report import SUBSET_LABELS

TITLE = "mosrm-bench leaderboard"
CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; "
    "script-src 'unsafe-inline'"
)

CSS = """
:root { --fg:#1d2330; --muted:#5b6475; --line:#d9dee7; --band:#f5f7fa; --accent:#2456a6; }
* { box-sizing: border-box; }
body { margin:0; color:var(--fg); background:#fff; line-height:1.45;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { background:#16233b; color:#fff; padding:18px 28px 12px; }
header h1 { margin:0 0 4px; font-size:22px; }
header p { margin:0; color:#c9d3e6; font-size:13px; }
nav { margin-top:10px; display:flex; flex-wrap:wrap; gap:6px 14px; font-size:13px; }
nav a { color:#fff; text-decoration:none; border-bottom:1px dotted #9fb3d9; }
main { padding:8px 28px 40px; max-width:1280px; }
h2 { margin:34px 0 8px; font-size:19px; border-bottom:2px solid var(--line); padding-bottom:4px; }
h3 { margin:22px 0 6px; font-size:15px; }
p, li { max-width:980px; }
.note { color:var(--muted); font-size:13px; }
.scroll { overflow-x:auto; margin:6px 0 10px; }
table { border-collapse:collapse; font-size:13px; font-variant-numeric:tabular-nums; }
th, td { padding:3px 6px; border-bottom:1px solid var(--line); text-align:right; white-space:nowrap; }
th:first-child, td:first-child, td.name, th.name { text-align:left; }
td.name { white-space:normal; min-width:150px; max-width:250px; overflow-wrap:break-word; }
thead th { background:var(--band); position:sticky; top:0; vertical-align:bottom;
  white-space:normal; max-width:92px; }
th button { font:inherit; font-weight:600; color:var(--fg); background:none; border:0; padding:0;
  cursor:pointer; text-align:inherit; }
th[aria-sort="ascending"] button::after { content:" ▲"; color:var(--accent); }
th[aria-sort="descending"] button::after { content:" ▼"; color:var(--accent); }
tbody tr:nth-child(even) { background:#fbfcfd; }
tbody tr:hover { background:#eef3fb; }
tr.shortcut td { color:#6b7280; font-style:italic; }
tr.stale td { color:#9a6a00; }
tr.ceiling td { background:#eef3fb; font-style:italic; border-bottom:2px solid var(--line); }
.ci { color:var(--muted); font-size:10px; display:block; line-height:1.1; }
.downloads { font-size:12px; color:var(--muted); margin:2px 0 8px; }
.legend { display:flex; flex-wrap:wrap; gap:2px 14px; font-size:12px; max-width:1100px; margin:4px 0; }
.legend label { cursor:pointer; }
.swatch { display:inline-block; width:22px; height:0; border-top-width:3px; vertical-align:middle;
  margin-right:4px; }
details.fold summary { cursor:pointer; }
.lede { font-size:13px; margin:6px 0 0; }
.tier { display:inline-block; min-width:22px; padding:0 6px; border-radius:9px; font-weight:600;
  text-align:center; background:#e6ecf7; color:#2456a6; }
.tier.t1 { background:#2456a6; color:#fff; }
.badge { font-size:11px; padding:0 5px; border-radius:6px; margin-left:4px; font-style:normal; }
.badge.shortcut { background:#eceff3; color:#4b5563; }
.badge.indomain { background:#fff1d6; color:#8a5a00; }
.badge.stale { background:#ffe4c2; color:#8a4b00; }
figure { margin:8px 0 14px; }
figure svg { max-width:100%; height:auto; }
figcaption { color:var(--muted); font-size:12px; }
.literature { border:2px dashed #b8c2d3; background:#fafbfc; padding:6px 18px 14px; margin-top:34px; }
.literature h2 { border:0; }
ul.notes li { margin:3px 0; overflow-wrap:anywhere; }
footer { color:var(--muted); font-size:12px; padding:0 28px 28px; }
"""

SCRIPT = """
(function () {
  "use strict";
  function value(row, col) {
    var cell = row.cells[col];
    var v = cell.getAttribute("data-sort");
    return v === null ? cell.textContent.trim() : v;
  }
  function sortBy(table, th, col) {
    var numeric = th.getAttribute("data-type") === "number";
    var current = th.getAttribute("aria-sort");
    var asc = numeric ? current === "descending" : current !== "ascending";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (row, i) {
      var v = value(row, col);
      var missing = v === "" || v === "–" || (numeric && isNaN(parseFloat(v)));
      return { row: row, i: i, missing: missing, v: numeric && !missing ? parseFloat(v) : v };
    });
    rows.sort(function (a, b) {
      if (a.missing !== b.missing) { return a.missing ? 1 : -1; }
      var d = 0;
      if (!a.missing) {
        d = numeric ? a.v - b.v : a.v.localeCompare(b.v);
        if (!asc) { d = -d; }
      }
      return d !== 0 ? d : a.i - b.i;
    });
    rows.forEach(function (r) { body.appendChild(r.row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) {
      h.setAttribute("aria-sort", "none");
    });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
  }
  function show(box) {
    ["-line", "-band"].forEach(function (part) {
      var g = document.getElementById(box.getAttribute("data-fig") + "-" +
        box.getAttribute("data-gid") + part);
      if (g) { g.style.display = box.checked ? "" : "none"; }
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll(".legend input"), function (box) {
    show(box);
    box.addEventListener("change", function () { show(box); });
  });
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      var button = th.querySelector("button");
      if (button) {
        button.addEventListener("click", function () { sortBy(table, th, col); });
      }
    });
  });
})();
"""


class Col:
    """A table column: header text (escaped here) and whether it sorts as a number."""

    def __init__(self, title: str, numeric: bool = True, name: bool = False) -> None:
        self.title, self.numeric, self.name = title, numeric, name


def _th(col: Col) -> str:
    kind = "number" if col.numeric else "text"
    cls = ' class="name"' if col.name else ""
    return (
        f'<th scope="col"{cls} data-type="{kind}" aria-sort="none">'
        f'<button type="button">{esc(col.title)}</button></th>'
    )


def _td(html: str, sort: float | str | None = None, cls: str = "") -> str:
    attr = "" if sort is None else f' data-sort="{esc(sort)}"'
    klass = f' class="{cls}"' if cls else ""
    return f"<td{klass}{attr}>{html}</td>"


def _table(
    cols: Sequence[Col],
    rows: Sequence[tuple[str, list[str]]],
    label: str,
    pinned: list[str] | None = None,
) -> str:
    """A sortable table; each row is (tr class, cells already rendered by `_td`). A `pinned` row
    (the noise ceiling) sits in the head, under the titles, so sorting never moves it."""
    head = "".join(_th(c) for c in cols)
    if pinned:
        head += '</tr><tr class="ceiling">' + "".join(pinned)
    body = "\n".join(
        f"<tr{f' class={chr(34)}{cls}{chr(34)}' if cls else ''}>{''.join(cells)}</tr>"
        for cls, cells in rows
    )
    return (
        f'<div class="scroll"><table class="sortable" aria-label="{esc(label)}">'
        f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table></div>"
    )


def _acc(cell: Cell | None, with_ci: bool = True) -> str:
    """An accuracy cell, sortable by the accuracy value; '–' (sorted last) without evidence."""
    if cell is None or not cell.n or cell.accuracy is None:
        return _td("–", "")
    text = pct(cell, with_ci=False)
    if with_ci and cell.ci_low is not None and cell.ci_high is not None:
        ci = pct(cell)[len(text) :].strip()
        text += f' <span class="ci">{esc(ci)}</span>'
    return _td(text, f"{100 * cell.accuracy:.4f}")


def _name(name: str, shortcut: bool, in_domain: bool, stale: bool = False) -> str:
    out = esc(name)
    if shortcut:
        out += ' <span class="badge shortcut" title="shortcut heuristic">‡ shortcut</span>'
    if in_domain:
        out += ' <span class="badge indomain" title="trained on this corpus">† in-domain</span>'
    if stale:
        out += ' <span class="badge stale" title="computed by other code">⚠ stale</span>'
    return _td(out, name, "name")


def _rank(low: int | None, high: int | None) -> str:
    if low is None or high is None:
        return _td("–", "")
    text = rank_range(low, high)
    title = f"with 95% confidence, rank {text} (simultaneous over all models)"
    top = " t1" if low == 1 else ""
    return _td(
        f'<span class="tier{top}" title="{esc(title)}">{esc(text)}</span>',
        low * 1000 + high,
        "tiercell",
    )


def _row_class(r: Row) -> str:
    flags = ("shortcut" if r.shortcut else "", "stale" if r.stale or r.above_ceiling else "")
    return " ".join(c for c in flags if c)


def _gap(value: float | None) -> str:
    return _td("–", "") if value is None else _td(f"{100 * value:.0f}%", f"{100 * value:.4f}")


def _ceiling_row(t: TaskBoard) -> list[str] | None:
    c = t.ceiling
    if c is None:
        return None
    cells = [_td("⊤"), _td(f"<b>{esc(CEILING_NAME[2:])}</b>", cls="name"), _td("–")]
    cells += [_acc(c.overall), _td("100%" if c.overall.accuracy else "–"), _td("–")]
    cells += [_acc(c.by_group.get(g)) for g in t.groups]
    cells += [_acc(x) for x in c.by_bin]
    cells += [_acc(c.by_subset.get(k)) for k in SUBSETS]
    return cells


def task_table(t: TaskBoard) -> str:
    cols = [Col("#"), Col("model", numeric=False, name=True), Col("rank (95%)")]
    cols += [Col("overall [95% CI]"), Col("of gap"), Col("ties (%)")]
    cols += [Col(g) for g in t.groups]
    cols += [Col(b) for b in t.bin_labels]
    cols += [Col(SUBSET_LABELS[k]) for k in SUBSETS]
    rows = []
    for i, r in enumerate(t.rows, start=1):
        ranked = not r.stale and not r.above_ceiling
        name = _name(r.name, r.shortcut, r.in_domain, r.stale)
        if r.above_ceiling:
            badge = (
                ' <span class="badge stale" title="interval above the noise ceiling: check for '
                'label leakage">⚑ above the ceiling</span>'
            )
            name = name.replace("</td>", badge + "</td>", 1)
        cells = [
            _td(str(i) if ranked else "–", i if ranked else ""),
            name,
            _rank(r.rank_low, r.rank_high),
            _acc(r.overall),
            _gap(r.gap_closed),
            _td(f"{100 * (r.overall.tie_rate or 0):.1f}", f"{100 * (r.overall.tie_rate or 0):.4f}"),
        ]
        cells += [_acc(r.by_group.get(g)) for g in t.groups]
        cells += [_acc(c) for c in r.by_bin]
        cells += [_acc(r.by_subset.get(k)) for k in SUBSETS]
        rows.append((_row_class(r), cells))
    return _table(cols, rows, f"{t.name}: accuracy per ΔMOS bin", _ceiling_row(t))


def relation_table(t: TaskBoard) -> str:
    cols = [Col("model", numeric=False, name=True)]
    cols += [Col(f"{rel} ({t.relation_sizes[rel]} pairs)") for rel in t.relations]
    rows = [
        (
            _row_class(r),
            [
                _name(r.name, r.shortcut, r.in_domain, r.stale),
                *(_acc(r.by_relation.get(rel)) for rel in t.relations),
            ],
        )
        for r in t.rows
    ]
    pinned = None
    if t.ceiling is not None:
        pinned = [_td(f"<b>{esc(CEILING_NAME[2:])}</b>", cls="name")]
        pinned += [_acc(t.ceiling.by_relation.get(rel)) for rel in t.relations]
    return _table(cols, rows, f"{t.name}: accuracy per relation", pinned)


def diagnostics(t: TaskBoard) -> str:
    judged = [r for r in t.rows if r.judged]
    if not judged:
        return ""
    cols = [Col("model", numeric=False, name=True)]
    cols += [Col(c) for c in ("position consistency", "first-position bias", "cycle rate")]
    cols += [Col("pairs"), Col("triplets")]
    rows = []
    notes = []
    for r in judged:
        cells = diagnostics_cells(r)
        rows.append(
            (
                _row_class(r),
                [_name(r.name, r.shortcut, r.in_domain, r.stale)]
                + [_td(esc(c), _lead_number(c)) for c in cells],
            )  # fmt: skip
        )
        for what, why in sorted(((r.diagnostics or {}).get("unavailable") or {}).items()):
            notes.append(f"<li>{esc(r.name)}: {esc(what)} not available: {esc(why)}</li>")
    n_scalar = len(t.rows) - len(judged)
    note = DIAGNOSTICS_NOTE + (
        f"The {n_scalar} other model(s) score each clip on its own: consistency 100%, bias 0 "
        "and cycle rate 0 by construction."
        if n_scalar
        else ""
    )
    out = f"<h3>Judge diagnostics</h3>{_table(cols, rows, f'{t.name}: judge diagnostics')}"
    out += f'<p class="note">{esc(note)}</p>'
    if notes:
        out += '<ul class="notes">' + "".join(notes) + "</ul>"
    return out


def _lead_number(text: str) -> str:
    m = re.match(r"[+-]?\d+(\.\d+)?", text)
    return m.group(0) if m else ""


def not_ranked(t: TaskBoard) -> str:
    items = [f"✗ {failed_text(f, esc, f'<b>{esc(f.submission)}</b>')}" for f in t.failed]
    for r in t.rows:
        if r.above_ceiling:
            items.append(
                f"⚑ <b>{esc(r.name)}</b>: above what the labels allow "
                f"({esc(', '.join(r.above_ceiling))}: interval entirely above the noise "
                "ceiling's): check for label leakage; never ranked"
            )
    for s in t.stale:
        items.append(
            f"⚠ <b>{esc(s.submission)}</b>: stale, {stale_why(s, esc)}; rerun it "
            f"(<code>mosrm evaluate {esc(s.submission)} --task {esc(t.name)}</code>)"
        )
    if not items:
        return ""
    return (
        '<h3>Not ranked</h3><ul class="notes">' + "".join(f"<li>{i}</li>" for i in items) + "</ul>"
    )


_DECL = re.compile(r"<\?xml[^>]*\?>|<!DOCTYPE[^>]*>|<!--.*?-->", re.S)
_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r'(url\(#|href="#)([^)"]+)')


def inline_svg(svg: str, prefix: str, label: str) -> str:
    """A matplotlib SVG for inlining in HTML: no XML declaration, doctype or comments, its ids
    prefixed (several figures on one page must not share clip-path or marker ids)."""
    body = _DECL.sub("", svg).strip()
    body = _ID.sub(lambda m: f'id="{prefix}-{m.group(1)}"', body)
    body = _REF.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", body)
    return body.replace("<svg ", f'<svg role="img" aria-label="{esc(label)}" ', 1)


def _figure(svg: str, prefix: str, label: str, caption: str, files: str = "") -> str:
    """An inline figure with its caption and, given the file stem under `plots/`, links to
    download it as SVG and PDF (the default models, with a legend: for a paper)."""
    links = (
        f'<p class="downloads">Download: <a href="plots/{esc(files)}.svg" download>SVG</a> · '
        f'<a href="plots/{esc(files)}.pdf" download>PDF</a></p>'
        if files
        else ""
    )
    return (
        f"<figure>{inline_svg(svg, prefix, label)}<figcaption>{esc(caption)}</figcaption>"
        f"{links}</figure>"
    )


def _legend(t: TaskBoard, prefix: str) -> str:
    """The per-bin plot's legend, as switches: every ranked model by its full name, the
    `plots.TOP` best and the shortcuts on by default (the page's script hides the rest)."""
    default = {id(r) for r in plots.shown_rows(t)[0]}
    styles = plots.styles(t)
    items = []
    for r in plots.drawable_rows(t):
        gid = plots.model_gid(t, r)
        st = styles[gid]
        line = "dashed" if st["linestyle"] == "--" else "solid"
        checked = " checked" if id(r) in default else ""
        items.append(
            f'<label><input type="checkbox" data-fig="{esc(prefix)}" data-gid="{gid}"{checked}>'
            f'<span class="swatch" style="border-top-style:{line};border-top-color:{st["color"]}">'
            f"</span>{t.rows.index(r) + 1}. {esc(r.name)}{' ‡' if r.shortcut else ''}</label>"
        )
    return f'<div class="legend" aria-label="models drawn">{"".join(items)}</div>'


def anchor(i: int) -> str:
    return f"task-{i}"


def task_section(i: int, t: TaskBoard, figures: dict[str, str]) -> str:
    if not t.rows:
        return f'<section id="{anchor(i)}"><h2>{esc(t.name)}</h2><p>No current results.</p>{not_ranked(t)}</section>'
    synthetic = " — SYNTHETIC, smoke test only" if t.synthetic else ""
    label = "" if t.dimension == "quality" else f", label: {esc(t.dimension)}"
    head = (
        f'<h2>{esc(t.name)}{synthetic}</h2><p class="note">version {esc(t.version)}, '
        f"{esc(t.split)} split, {esc(t.n_pairs)} pairs on {esc(t.n_clips)} clips, "
        f"{t.bins} ΔMOS bins{label}</p>"
    )
    note = " ".join(
        x for x in (esc(t.interval_scope), ceiling_note(t, str), merged_bins_note(t)) if x
    )
    shown, left = plots.shown_rows(t)
    caption = (
        "Strict accuracy per ΔMOS percentile bin with 95% bands over new clips, systems and "
        "contents; dotted: chance. "
        "Shortcuts dashed grey."
    )
    if t.ceiling is not None:
        caption += " Thick black line and grey band: the noise ceiling with its 95% range."
    if left:
        caption += (
            f" The {plots.TOP} best models and the shortcuts are drawn; tick others above to "
            "add them."
        )
    out = [f'<section id="{anchor(i)}">', head]
    for what, group in ranking_groups(t):
        out += [f'<p class="note">{esc(GROUP_CAPTIONS[what])}</p>', task_table(group)]
    slug = figures.get("slug", "")
    if slug:
        out.append(
            f'<p class="downloads">Table for a paper: <a href="tables/{esc(slug)}.csv" download>'
            f'CSV</a> · <a href="tables/{esc(slug)}.tex" download>LaTeX</a></p>'
        )
    marks = [
        f"<li>{'' if what == 'self-reported' else '✓ '}{esc(what)}: {esc('; '.join(names))}</li>"
        for what, names in provenance_lines(t)
    ]
    out.append('<ul class="notes">' + "".join(marks) + "</ul>")
    if note:
        out.append(f'<p class="note">{esc(note)}</p>')
    if shown:
        prefix = f"{anchor(i)}-bins"
        out.append(_legend(t, prefix))
        out.append(
            _figure(
                figures["bins"],
                prefix,
                f"{t.name}: accuracy by ΔMOS bin",
                caption,
                f"{slug}-bins",
            )
        )
        out.append("<h3>By relation</h3>")
        out.append(
            _figure(
                figures["relations"],
                f"{anchor(i)}-rel",
                f"{t.name}: accuracy by ΔMOS bin per relation",
                f"The same, per pair relation (same content, same system, cross); the "
                f"{plots.TOP} best models and the shortcuts.",
                f"{slug}-relations",
            )
        )
    else:
        out.append("<h3>By relation</h3>")
    out += [relation_table(t), diagnostics(t), not_ranked(t), "</section>"]
    return "\n".join(x for x in out if x)


def summary_table(s: Summary) -> str:
    cols = [Col("#"), Col("model", numeric=False, name=True), Col("rank (95%)")]
    cols += [Col("micro [95% CI]"), Col("macro [95% CI]"), Col("training", numeric=False)]
    cols += [Col(t) for t in s.tasks] + [Col("pairs")]
    rows = []
    for r in s.rows:
        cells = [
            _td(str(r.rank), r.rank),
            _name(r.name, r.shortcut, r.in_domain),
            _rank(r.rank_low, r.rank_high),
            _acc(r.micro),
            _acc(r.macro),
            _td("in-domain" if r.in_domain else "zero-shot"),
            *(_acc(r.per_task.get(t), with_ci=False) for t in s.tasks),
            _td(str(r.pairs), r.pairs),
        ]
        rows.append(("shortcut" if r.shortcut else "", cells))
    listed = ", ".join(s.tasks)
    status = "✓ verified" if s.verified else "self-reported, ranked apart"
    return f"<h3>Evaluated on {len(s.tasks)} task(s): {esc(listed)} ({status})</h3>" + _table(
        cols, rows, f"all tasks: {listed}"
    )


def summary_section(board: Board, heatmap: str) -> str:
    kept = ""
    if board.synthetic_tasks:
        kept = (
            f"Synthetic tasks ({', '.join(board.synthetic_tasks)}) are never pooled with real "
            "corpora here."
        )
    out = ['<section id="all-tasks"><h2>All tasks</h2>']
    if not board.summaries:
        out.append(f"<p>No results on real (non-synthetic) tasks yet. {esc(kept)}</p>")
    else:
        groups = summaries_by_dimension(board.summaries)
        several = len(groups) > 1 or groups[0][0] != "quality"
        out.append(f"<p>{esc(SUMMARY_INTRO + (DIMENSIONS_NOTE if several else '') + kept)}</p>")
        for dim, summaries in groups:
            if several:
                out.append(f"<h3>{esc(dimension_title(dim).capitalize())}</h3>")
            out += [summary_table(s) for s in summaries]
    if board.not_pooled:
        listed = "; ".join(f"{t} ({why})" for t, why in board.not_pooled.items())
        out.append(f'<p class="note">Not pooled here: {esc(listed)}.</p>')
    if board.unranked:
        listed = "; ".join(f"{sub} ({', '.join(why)})" for sub, why in board.unranked.items())
        out.append(f'<p class="note">Left out of this ranking until rerun: {esc(listed)}.</p>')
    if heatmap:
        out.append(
            _figure(
                heatmap,
                "heatmap",
                "overall accuracy, model × task",
                "Overall strict accuracy per model and task (grey: no current result). "
                "Models ordered by their mean over the tasks they have.",
            )
        )
    out.append("</section>")
    return "\n".join(out)


def _fold(text: str, keep: int) -> str:
    """Long metadata (a 40-character revision, a long URL) folded: its first `keep` characters,
    the rest behind a click."""
    if len(text) <= keep + 1:
        return esc(text)
    return f'<details class="fold"><summary>{esc(text[:keep])}…</summary>{esc(text)}</details>'


def models_section(board: Board) -> str:
    if not board.models:
        return ""
    cols = [Col("model", numeric=False, name=True), Col("kind", numeric=False), Col("parameters")]
    cols += [
        Col(c, numeric=False) for c in ("licence", "revision", "released", "link", "trained on")
    ]
    rows = []
    for m in board.models:
        size = "–" if m.parameters is None else f"{m.parameters:,}"
        if m.parameters is not None and m.parameters_source == "declared":
            size += " (declared)"
        url = safe_url(m.url) if m.url else None
        if url:
            shown_url = _fold(url.split("://", 1)[-1], 40)
            link = f'<a href="{esc(url)}" rel="nofollow noopener noreferrer">{shown_url}</a>'
        else:
            link = esc(m.url or "–")
        cells = [
            _name(m.name, m.shortcut, False),
            _td(esc(m.kind or "–")),
            _td(esc(size), "" if m.parameters is None else m.parameters),
            _td(esc(m.license or "–")),
            _td(_fold(m.revision or "–", 12), m.revision or ""),
            _td(esc(m.release_date or "–")),
            _td(link, cls="name"),
            _td(esc(", ".join(m.training_data) or "none declared"), cls="name"),
        ]
        rows.append(("shortcut" if m.shortcut else "", cells))
    return f'<section id="models"><h2>Models</h2>{_table(cols, rows, "models")}</section>'


def literature_section(board: Board) -> str:
    rows = "".join(
        f"<tr><td>{esc(r.model)}</td><td>{esc(r.base)}</td><td>{esc(r.overall)}</td></tr>"
        for r in board.literature
    )
    return (
        '<section id="literature" class="literature">'
        "<h2>Numbers reported in the literature — not ranked, not comparable</h2>"
        f"<p>Reported by {esc(board.literature_source)}. These numbers are <b>not comparable</b> "
        "with the tables above: other pairs (the paper's own, unreleased), other training. They "
        "are listed for orientation and never ranked with ours.</p>"
        '<div class="scroll"><table aria-label="numbers reported in the literature">'
        "<thead><tr><th>model (as reported)</th><th>base</th><th>overall accuracy (%)</th>"
        f"</tr></thead><tbody>{rows}</tbody></table></div></section>"
    )


def about_section() -> str:
    return (
        '<section id="about"><h2>What a result means</h2>'
        f"<p>{esc(INTRO)}</p>"
        "<ul>"
        "<li><b>Pairs</b>: two clips of one corpus with different MOS; the model is right if it "
        "scores the higher-MOS clip strictly higher. A tie (equal scores) is wrong; the tie rate "
        "is shown beside every accuracy.</li>"
        "<li><b>Intervals</b> are 95% and generalise over new clips, systems and contents: "
        "pairs share all three, so the interval is wider than a binomial one over pairs, and "
        "wide by design with few systems (each task says what its intervals rest on).</li>"
        "<li><b>Bins</b> are ΔMOS percentile bands within each task: bin 0 holds the smallest "
        "MOS gaps (the hard pairs), the last bin the largest.</li>"
        f"<li><b>Rank (95%)</b>. "
        f"{esc(RANK_RULE.removeprefix('Rank (95%): ').replace('`', ''))}</li>"
        "<li><b>Across tasks</b> only real corpora are pooled, and a model is ranked only "
        "against models evaluated on the same set of tasks.</li>"
        "<li>Click a column header to sort a table (again to reverse).</li>"
        "</ul></section>"
    )


def page(
    board: Board,
    figures: dict[str, dict[str, str]],
    heatmap: str,
    robust: dict[str, tuple[str, str]] | None = None,
) -> str:
    """The whole page. `figures[task]` holds that task's "bins" and "relations" SVG text,
    `robust[task]` its sensitivity figure (SVG text, file stem)."""
    nav = ['<a href="#all-tasks">All tasks</a>']
    tasks = by_dimension(board.tasks)
    nav += [f'<a href="#{anchor(i)}">{esc(t.name)}</a>' for i, t in enumerate(tasks)]
    nav += ['<a href="#models">Models</a>']
    nav += ['<a href="#robustness">Robustness</a>'] if board.robustness else []
    nav += ['<a href="#literature">Literature</a>']
    nav += ['<a href="#exports">Exports</a>', '<a href="#about">What this means</a>']
    body = []
    if board.empty:
        body.append('<section id="all-tasks"><h2>All tasks</h2><p>No results yet: run '
                    "<code>mosrm run</code>.</p></section>")  # fmt: skip
    else:
        body.append(summary_section(board, heatmap))
        body += [task_section(i, t, figures.get(t.name, {})) for i, t in enumerate(tasks)]
        body.append(models_section(board))
        from benchmark.leaderboard.robustness import site_section

        shown = {
            task: _figure(
                svg,
                f"sens-{stem}",
                f"degradation accuracy by severity on {task}",
                "Degradation accuracy by family and severity (mildest left): a line should not "
                "fall to the right; under 50% the model prefers the degraded copy.",
                f"{stem}-sensitivity",
            )
            for task, (svg, stem) in (robust or {}).items()
        }
        body.append(site_section(board.robustness, shown))
    body.append(literature_section(board))
    body.append(
        '<section id="exports"><h2>Exports</h2><p>The same tables as '
        '<a href="board.csv">CSV</a> (one row per submission × task, and per submission × task '
        'set) and <a href="board.json">JSON</a>, and as <a href="../README.md">Markdown</a>. '
        "Each figure as SVG and PDF (<code>plots/</code>), each task's ranking as CSV and LaTeX "
        "(<code>tables/</code>), linked beside them. Everything here is rebuilt from the "
        "results folder by <code>mosrm board</code>, byte for byte.</p></section>"
    )
    body.append(about_section())
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{TITLE}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<header><h1>{TITLE}</h1><p>Pairwise, ΔMOS-stratified accuracy of speech-quality "
        "reward models, rebuilt from the results folder. "
        '<a href="#about" style="color:#fff">What this means →</a></p>'
        f"<nav>{' '.join(nav)}</nav></header>\n<main>\n"
        + "\n".join(b for b in body if b)
        + "\n</main>\n<footer>Built by <code>mosrm board</code>; no network is used by this "
        f"page.</footer>\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )
