"""Data cards (`mosrm card <task>`): what a task's pairs are made of, derived from the pairs themselves.

A card is read by someone deciding whether a number on the board means anything: how many clips
this copy of the corpus really has (beside the count the corpus authors published), what the reader
left out and why, how large each relation's pool was and how many pairs were drawn from it, and how
ΔMOS is spread over the difficulty bins. Hand-written prose cannot stay in sync with that, so every
count is recomputed here from the prepared clip table and the pair files on disk, which must match
the builder's metadata and the recorded sha256 (a stale folder is refused, not described). Only
what the files cannot tell comes from the metadata: targets, pool sizes, bin edges. This module
writes the Markdown; the numbers are `benchmark.cards.stats`', the histogram
`benchmark.cards.svg`'s and the label reliability section `benchmark.cards.reliability`'s. The
`card` section of the task YAML (source, redistribution, published counts, notes) is the static
text.

Cards are committed to the repository, so the output is deterministic: identical inputs give
byte-identical Markdown and SVG (fixed ordering, fixed float formatting, no timestamps, no paths of
the machine that generated them). Without the data, the card still carries everything the task
YAML says and marks each computed section as not computed, with the commands that compute it.

All text that comes from a corpus or a YAML is escaped, so a clip id, split name or skip reason can
neither break a table nor inject markup: XML-escaped in the SVG; in Markdown table cells HTML- and
Markdown-escaped with pipes and newlines neutralised; in YAML prose (description, source, notes)
Markdown is kept but every `<` that could open an HTML tag is escaped (see `benchmark.escape.markdown_prose`).

Why one file of ~630 lines: it is the card's template, section by section in the order a reader
meets them; each section is a short function and reads no file, so splitting it would only
scatter one document's layout.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from benchmark.atomic import atomic_write_text
from benchmark.cards.reliability import section
from benchmark.cards.stats import (
    HIST_BIN_WIDTH,
    CardData,
    ClipStats,
    PairStats,
    collect,
    edge_text,
    ordered_splits,
    stale,
)
from benchmark.cards.svg import histogram_svg
from benchmark.data.tables import FIXED_SUBSETS
from benchmark.escape import markdown_cell, markdown_prose
from benchmark.pairs.prepare import CANONICAL_RANGE

if TYPE_CHECKING:
    from benchmark.data.tasks import Task
    from benchmark.pairs.prepare import PreparedTask

_OPS = {"<": "<", "<=": "≤", ">": ">", ">=": "≥"}
DEFAULT_ABSENT_REASON = "the corpus data was not available where this card was generated"


@dataclass(frozen=True)
class Card:
    """A rendered card: the Markdown and, when the task has pairs, the ΔMOS histogram SVG."""

    name: str
    markdown: str
    svg: str | None

    @property
    def markdown_name(self) -> str:
        return f"{self.name}.md"

    @property
    def svg_name(self) -> str:
        return svg_filename(self.name)


def svg_filename(task_name: str) -> str:
    return f"{task_name}-delta-mos.svg"


# ---------------------------------------------------------------------------------------------
# Markdown


escape_cell = markdown_cell
"""Corpus text for one Markdown table cell (`benchmark.escape`, shared with the board)."""


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: list[str], rows: list[list[str]], align: str | None = None) -> list[str]:
    """`align`: one character per column, 'l' or 'r' (default: first left, the others right)."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---:" if a == "r" else "---" for a in align]
    return [_row(header), _row(rule), *(_row(r) for r in rows)]


def _int(n: int) -> str:
    return f"{n:,}"


def _count(value: object) -> str:
    """A pair target: an integer with separators, or a word such as 'all'."""
    return _int(value) if isinstance(value, int) else escape_cell(value)


def _fence(text: str) -> str:
    """A fenced code block whose fence is longer than any backtick run inside."""
    runs = [len(m) for m in re.findall(r"`+", text)]
    fence = "`" * max(3, max(runs, default=0) + 1)
    return f"{fence}text\n{text.rstrip()}\n{fence}"


def _subset_label(name: str | None) -> str:
    return "(no subset)" if name is None else escape_cell(name)


def _fixed_label(name: str) -> str:
    op, threshold = FIXED_SUBSETS[name]
    return escape_cell(f"ΔMOS {_OPS.get(op, op)} {threshold:g}")


def _rates(rates: dict[int, int]) -> str:
    return ", ".join(f"{rate / 1000:g} kHz ({_int(n)})" for rate, n in sorted(rates.items()))


def _keys(distinct: int, missing: int, what: str) -> str:
    if distinct == 0:
        return "unknown (no key)"
    text = _int(distinct)
    if missing:
        text += f" ({_int(missing)} clips without a {what} key)"
    return text


def _ratings(s: ClipStats) -> str:
    if not s.ratings:
        return "unknown"
    r = s.ratings
    mid = len(r) // 2
    median = r[mid] if len(r) % 2 else (r[mid - 1] + r[mid]) / 2
    text = f"median {median:g} (range {r[0]}–{r[-1]})"
    if s.no_ratings:
        text += f", unknown for {_int(s.no_ratings)} clips"
    return text


def _data_root(task: Task) -> str:
    root = task.spec.data.root
    if root is None:
        return f"`$MOSRM_HOME/data/{task.corpus}` (the default; `--data-root` overrides)"
    if Path(root).expanduser().is_absolute() or root.startswith("~"):
        return "an absolute path set in the task YAML, not shown here (`--data-root` overrides)"
    return f"{escape_cell(root)} (relative to the task YAML's folder; `--data-root` overrides)"


def _not_computed(task: Task, reason: str) -> str:
    return (
        f"not computed: {markdown_prose(reason)}. To compute it, get the data "
        f"(`mosrm download {task.corpus}`) and run `mosrm card {task.name}`, or build it from the "
        f"metadata alone with `mosrm card {task.name} --labels-only`."
    )


def _header(task: Task, data: CardData | None) -> list[str]:
    spec = task.spec
    title = f"# Data card: `{task.name}`" + (" (SYNTHETIC)" if spec.synthetic else "")
    lines = [title, ""]
    if spec.synthetic:
        lines += [
            "> **SYNTHETIC DATA.** The speech and/or the MOS labels of this task are generated by a",
            "> program, not rated by people. Use it for smoke tests, tutorials and CI; numbers",
            "> measured on it say nothing about real listeners and must not support research claims.",
            "",
        ]
    lines += [markdown_prose(spec.description).strip(), ""]
    if data is None:
        basis = "the task YAML only (the data was not available when it was generated)"
    elif data.labels_only:
        basis = "the task YAML and the corpus metadata (labels only: the audio was not probed)"
    else:
        basis = "the task YAML and the prepared corpus (metadata and audio)"
    lines += [
        f"Generated by `mosrm card {task.name}` from {basis}. Do not edit it by hand: hand-written "
        f"text belongs under `card.notes` in `tasks/{task.name}.yaml`.",
        "",
    ]
    relations = ", ".join(f"`{r}`" for r in spec.relations)
    lo, hi = spec.score_range
    scale = "" if (lo, hi) == CANONICAL_RANGE else " (rescaled linearly to 1–5 before pairing)"
    rows = [
        ["Task", f"`{task.name}`"],
        ["Task version", str(spec.version)],
        ["Reader", f"`{escape_cell(spec.reader)}`"],
        ["Seed", str(spec.seed)],
        ["Relations", relations + " (`mosrm relations` prints their exact definitions)"],
        ["ΔMOS percentile bins", str(spec.bins)],
        ["Subset balancing", "yes" if spec.balance_subsets else "no"],
        ["Minimum ΔMOS", escape_cell(f"pairs need ΔMOS > {spec.min_delta:g}")],
        ["Score range", f"{lo:g}–{hi:g}{scale}"],
        ["Evaluation split", escape_cell(spec.eval_split)],
        ["Licence", escape_cell(spec.license)],
        ["URL", escape_cell(spec.url) if spec.url else "none given"],
        ["Data root", _data_root(task)],
        ["Synthetic", "**yes**" if spec.synthetic else "no"],
    ]
    lines += _table(["", ""], rows, "ll")
    return lines


def _static(task: Task) -> list[str]:
    card = task.spec.card
    lines = ["", "## Source", ""]
    lines.append(
        markdown_prose(card.source).strip() if card else "Not documented (no `card` section)."
    )
    lines += ["", "## Licence and redistribution", ""]
    lines.append(f"Licence: {markdown_prose(task.spec.license)}")
    lines.append("")
    if card:
        lines.append(f"Redistribution: {markdown_prose(card.redistribution).strip()}")
    else:
        lines.append("Redistribution: not documented (the task YAML has no `card` section).")
    lines += ["", "## Citation", "", _fence(task.spec.citation)]
    return lines


def _clip_section(task: Task, data: CardData | None, reason: str) -> list[str]:
    published = task.spec.card.published_clips if task.spec.card else {}
    lines = ["", "## Clips per split", ""]
    if data is None:
        lines += [_not_computed(task, reason), ""]
        if published:
            lines.append("Counts published by the corpus authors (published, not verified here):")
            lines.append("")
            rows = [
                [escape_cell(s), _int(published[s]) + " (published, not verified)"]
                for s in ordered_splits(published)
            ]
            lines += _table(["split", "clips (published)"], rows)
        else:
            lines.append("The task YAML lists no published clip counts.")
        return lines

    rows = []
    differ = 0
    for split in data.splits:
        ours = data.clips[split].n if split in data.clips else 0
        pub = published.get(split)
        if pub is None:
            check = "no published count"
        elif pub == ours:
            check = "matches"
        else:
            differ += 1
            check = f"**DIFFERS** ({ours - pub:+,})"
        rows.append([escape_cell(split), _int(ours), "—" if pub is None else _int(pub), check])
    total = sum(c.n for c in data.clips.values())
    pub_total = sum(published.values()) if published else None
    rows.append(["**total**", _int(total), "—" if pub_total is None else _int(pub_total), ""])
    lines += _table(["split", "clips (this copy)", "published", "check"], rows, "lrrl")
    if differ:
        lines += [
            "",
            f"**{differ} split(s) differ from the published count**: see the clips left out by "
            "the reader below, and the notes.",
        ]

    lines += ["", "## Split details", ""]
    probe = "not probed (labels-only)" if data.labels_only else "not probed"
    rows = []
    for split in data.splits:
        s = data.clips.get(split)
        if s is None:
            continue
        hours = (
            "" if s.seconds is None else f"{s.seconds / 3600:,.2f} h ({s.seconds / s.n:.2f} s/clip)"
        )
        rows.append(
            [
                escape_cell(split),
                _keys(s.systems, s.no_system, "system"),
                _keys(s.contents, s.no_content, "content"),
                _keys(s.speakers, s.no_speaker, "speaker"),
                probe if s.rates is None else _rates(s.rates),
                probe if s.seconds is None else hours,
                f"{s.mos_mean:.3f} ({s.mos_min:.3f}–{s.mos_max:.3f})",
                _ratings(s),
            ]
        )
    header = [
        "split",
        "systems",
        "contents",
        "speakers",
        "sample rates (clips)",
        "duration",
        "MOS on 1–5: mean (min–max)",
        "ratings per clip",
    ]
    lines += _table(header, rows, "lrrrllll")
    return lines


def _skip_section(task: Task, data: CardData | None, reason: str) -> list[str]:
    lines = ["", "## Clips left out by the reader", ""]
    if data is None:
        return lines + [_not_computed(task, reason)]
    if not data.skips:
        return lines + ["None: the reader kept every clip it found, without caveats."]
    dropped = sum(s.count for s in data.skips if not s.kept)
    kept = sum(s.count for s in data.skips if s.kept)
    lines.append(
        f"{_int(dropped)} clip(s) left out, {_int(kept)} kept with a caveat "
        f"({len(data.skips)} reason(s)):"
    )
    lines.append("")
    rows = []
    for s in data.skips:
        examples = ", ".join(escape_cell(e) for e in s.examples)
        if s.count > len(s.examples):
            examples += ", …"
        status = "kept with a caveat" if s.kept else "left out"
        rows.append([escape_cell(s.reason), _int(s.count), status, examples])
    lines += _table(["reason", "clips", "status", "examples"], rows, "lrll")
    return lines


def _targets(task: Task) -> list[str]:
    rels = list(task.spec.relations)
    rows = []
    for split in ordered_splits(task.spec.pairs):
        per = task.spec.pairs[split]
        rows.append([escape_cell(split), *(_count(per.get(r, 0)) for r in rels)])
    return _table(["split", *rels], rows)


def _pairs_split(task: Task, split: str, p: PairStats, clips: ClipStats | None) -> list[str]:
    meta = p.meta
    lines = ["", f"### Split {escape_cell(split)}", ""]
    n_clips = clips.n if clips else 0
    lines.append(f"{_int(n_clips)} clips, {_int(p.n)} pairs, in `{escape_cell(p.file_name)}`.")
    lines.append("")
    overrides = meta.get("count_overrides")
    if overrides:
        shown = ", ".join(
            f"{escape_cell(r)}: {escape_cell(v)}" for r, v in sorted(overrides.items())
        )
        lines += [
            f"**Non-standard pair set**: counts overridden when it was prepared ({shown}); "
            "results on it are not comparable with the task's standard pairs.",
            "",
        ]
    rows = []
    for rel in p.relations:
        info = meta.get("relations", {}).get(rel, {})
        target = info.get("target", "—")
        sampled = p.by_relation[rel]
        short = "—"
        if "shortfall" in info and isinstance(target, int):
            short = f"short by {_int(target - sampled)}: the whole pool taken"
        rows.append(
            [
                f"`{rel}`",
                _count(target),
                _int(int(info["available"])) if "available" in info else "—",
                _int(sampled),
                short,
            ]
        )
    rows.append(["**total**", "", "", _int(p.n), ""])
    lines += _table(["relation", "target", "available pool", "sampled", "shortfall"], rows, "lrrrl")
    if p.n == 0:
        return lines + ["", "No pairs: no ΔMOS bins or subsets to report."]

    edges = meta.get("bin_edges") or []
    bins = len(edges) - 1
    lines += [
        "",
        "ΔMOS percentile bins (percentiles of every valid pair of this split's relations, the "
        "candidate pool, so the sample drawn never moves an edge; bin i holds "
        "edge[i] ≤ ΔMOS < edge[i+1], the last bin closed): edges "
        + ", ".join(edge_text(e) for e in edges)
        + ".",
        "",
    ]
    header = ["relation"]
    for i in range(bins):
        close = "]" if i == bins - 1 else ")"
        header.append(f"bin {i} [{edge_text(edges[i])}, {edge_text(edges[i + 1])}{close}")
    header.append("pairs")
    rows = [
        [f"`{r}`", *(_int(c) for c in p.by_bin[r]), _int(p.by_relation[r])] for r in p.relations
    ]
    totals = [sum(p.by_bin[r][i] for r in p.relations) for i in range(bins)]
    rows.append(["**all**", *(_int(c) for c in totals), _int(p.n)])
    lines += _table(header, rows)
    requested = int(meta.get("bins_requested", bins))
    empty = [i for i, c in enumerate(totals) if c == 0]
    if empty:
        lines += [
            "",
            f"**Empty in this sample:** bin(s) {', '.join(map(str, empty))}: the pool has pairs "
            "there, the sample drew none; their cells say n = 0.",
        ]
    if bins < requested:
        lines += [
            "",
            f"**{bins} bins, not the {requested} requested:** many pairs share the same ΔMOS (a "
            "discrete rating scale), so some percentile edges coincided; they were merged, because "
            "tied values are never split across bins. Results on this split are reported in these "
            f"{bins} bins.",
        ]

    lines += ["", "Fixed ΔMOS subsets (pairs, share of the relation):", ""]
    header = ["relation", *(_fixed_label(f) for f in FIXED_SUBSETS), "pairs"]
    rows = []
    for which in [*p.relations, None]:
        counts = (
            p.fixed[which]
            if which is not None
            else {f: sum(p.fixed[r][f] for r in p.relations) for f in FIXED_SUBSETS}
        )
        total = p.by_relation[which] if which is not None else p.n
        cells = [
            f"{_int(counts[f])} ({100 * counts[f] / total:.1f} %)" if total else "0"
            for f in FIXED_SUBSETS
        ]
        rows.append(["**all**" if which is None else f"`{which}`", *cells, _int(total)])
    lines += _table(header, rows)

    subsets = sorted(p.by_subset, key=lambda s: (s is not None, s or ""))
    if clips is not None and any(s is not None for s in clips.subsets):
        all_subsets = sorted(
            set(subsets) | set(clips.subsets), key=lambda s: (s is not None, s or "")
        )
        lines += ["", "Per subset (pairs never cross subsets):", ""]
        rows = []
        for sub in all_subsets:
            per = p.by_subset.get(sub, {})
            rows.append(
                [
                    _subset_label(sub),
                    _int(clips.subsets.get(sub, 0)),
                    *(_int(per.get(r, 0)) for r in p.relations),
                    _int(sum(per.values())),
                ]
            )
        lines += _table(["subset", "clips", *(f"`{r}`" for r in p.relations), "pairs"], rows)
    lines += _balanced(task, split, p)
    return lines


def _balanced(task: Task, split: str, p: PairStats) -> list[str]:
    """Per-subset targets and pools, for relations sampled subset by subset (`balance_subsets`)."""
    rows = []
    for rel in p.relations:
        per_subset = p.meta.get("relations", {}).get(rel, {}).get("subsets")
        for label, info in sorted((per_subset or {}).items()):
            sub = None if label == "null" and None in p.by_subset else label
            sampled = p.by_subset.get(sub, {}).get(rel, 0)
            if int(info.get("sampled", sampled)) != sampled:
                raise stale(
                    task,
                    Path(p.file_name),
                    f"{sampled} {rel} pairs of subset '{label}' in split '{split}', "
                    f"the metadata says {info.get('sampled')}",
                )
            target = info.get("target", "—")
            short = "—"
            if "shortfall" in info and isinstance(target, int):
                short = f"short by {_int(target - sampled)}"
            rows.append(
                [
                    _subset_label(sub),
                    f"`{rel}`",
                    _count(target),
                    _int(int(info["available"])) if "available" in info else "—",
                    _int(sampled),
                    short,
                ]
            )
    if not rows:
        return []
    lines = [
        "",
        "Balanced over subsets (`balance_subsets`): each relation's count is split evenly over "
        "the subsets and each subset sampled on its own; a subset's shortfall is not made up "
        "from the others.",
        "",
    ]
    header = ["subset", "relation", "target", "available pool", "sampled", "shortfall"]
    return lines + _table(header, rows, "llrrrl")


def _pair_section(task: Task, data: CardData | None, reason: str) -> list[str]:
    lines = ["", "## Pairs", ""]
    lines.append(
        "Pairs requested per split and relation by the task YAML ('all' = the whole pool):"
    )
    lines.append("")
    lines += _targets(task)
    lines.append("")
    if data is None:
        return lines + [_not_computed(task, reason)]
    first = next(iter(data.pairs.values()), None)
    if first is not None:
        meta = first.meta
        lines.append(
            f"Drawn with seed {meta.get('seed', task.spec.seed)}, uniformly without replacement "
            f"from each relation's valid pool (pair schema version "
            f"{meta.get('pair_schema_version', '—')}, relation definitions version "
            f"{meta.get('relation_definitions_version', '—')})."
        )
    for split in data.splits:
        if split in data.pairs:
            lines += _pairs_split(task, split, data.pairs[split], data.clips.get(split))
        else:
            lines += ["", f"### Split {escape_cell(split)}", ""]
            lines.append("No pairs: the task YAML requests none from this split.")
    return lines


def _histogram_section(task: Task, data: CardData | None, reason: str) -> list[str]:
    lines = ["", "## ΔMOS histogram", ""]
    if data is None:
        return lines + [_not_computed(task, reason)]
    if data.total_pairs == 0:
        return lines + ["No pairs, so no histogram."]
    lines.append(
        f"Sampled pairs per {HIST_BIN_WIDTH:g}-MOS step of ΔMOS (1–5 scale), stacked by relation; "
        "one panel per split, each with its own count axis."
    )
    gaps = [escape_cell(s) for s in data.splits if s in data.pairs and _interior_gap(data.pairs[s])]
    if gaps:
        lines.append(
            f"Empty bars between full ones (split(s) {', '.join(gaps)}) come from "
            "a discrete rating scale: MOS moves in fixed steps that do not divide the bar width."
        )
    lines += ["", f"![ΔMOS histogram of the sampled pairs]({svg_filename(task.name)})"]
    return lines


def _interior_gap(p: PairStats) -> bool:
    bars = [sum(col) for col in zip(*p.hist.values(), strict=True)]
    full = [i for i, n in enumerate(bars) if n]
    return bool(full) and any(bars[i] == 0 for i in range(full[0], full[-1]))


def _files_section(task: Task, data: CardData | None, reason: str) -> list[str]:
    lines = ["", "## Pair files", ""]
    if data is None:
        return lines + [_not_computed(task, reason)]
    if not data.pairs:
        return lines + ["None."]
    lines.append(
        "The sha256 of a pair file identifies the pair set; results record it, so numbers from "
        "different pair sets are never mixed."
    )
    lines.append("")
    rows = [
        [escape_cell(s), f"`{escape_cell(p.file_name)}`", _int(p.n), f"`{p.sha256}`"]
        for s, p in ((s, data.pairs[s]) for s in data.splits if s in data.pairs)
    ]
    lines += _table(["split", "file", "pairs", "sha256"], rows, "llrl")
    return lines


def _notes(task: Task) -> list[str]:
    card = task.spec.card
    if card is None or not card.notes:
        return []
    return ["", "## Notes", "", markdown_prose(card.notes).strip()]


def _markdown(task: Task, data: CardData | None, reason: str) -> str:
    lines = _header(task, data)
    lines += _static(task)
    lines += _clip_section(task, data, reason)
    lines += _skip_section(task, data, reason)
    lines += _pair_section(task, data, reason)
    lines += _histogram_section(task, data, reason)
    lines += section(
        data.splits if data else [],
        data.reliability if data else None,
        _not_computed(task, reason),
    )
    lines += _files_section(task, data, reason)
    lines += _notes(task)
    return "\n".join(line.rstrip() for line in lines).rstrip() + "\n"


# ---------------------------------------------------------------------------------------------
# public API


def render_card(
    task: Task, prepared: PreparedTask | None, *, absent_reason: str | None = None
) -> Card:
    """The card of `task`; from `prepared` when given, else the static part only.

    `absent_reason` (used only without `prepared`) says why nothing was computed, e.g. "the corpus
    is not under /data" — shown verbatim in every computed section.
    """
    reason = absent_reason or DEFAULT_ABSENT_REASON
    data = collect(task, prepared) if prepared is not None else None
    svg = histogram_svg(task, data) if data is not None and data.total_pairs > 0 else None
    return Card(name=task.name, markdown=_markdown(task, data, reason), svg=svg)


def write_card(
    task: Task,
    prepared: PreparedTask | None,
    out_dir: Path,
    *,
    absent_reason: str | None = None,
) -> list[Path]:
    """Write `<task>.md` and, when there are pairs, `<task>-delta-mos.svg` into `out_dir`.

    The SVG is written first, so the Markdown never points at an image that is not there yet. A card
    without pairs removes an older SVG of the same task: left behind, it would describe pairs the
    card no longer has.
    """
    card = render_card(task, prepared, absent_reason=absent_reason)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    svg_path = out_dir / card.svg_name
    if card.svg is not None:
        atomic_write_text(svg_path, card.svg)
        written.append(svg_path)
    else:
        svg_path.unlink(missing_ok=True)
    md_path = out_dir / card.markdown_name
    atomic_write_text(md_path, card.markdown)
    return [md_path, *written]
