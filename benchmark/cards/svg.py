"""A data card's ΔMOS histogram as SVG: one panel per split, one bar series per relation, fixed
bar width and colours so that cards of different tasks compare. Deterministic (fixed float
formatting, no timestamps), and every text from a corpus or YAML XML-escaped."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from benchmark.cards.stats import (
    HIST_BIN_WIDTH,
    HIST_MAX,
    CardData,
    display_relations,
    edge_text,
)
from benchmark.data.tables import RELATIONS

if TYPE_CHECKING:
    from benchmark.data.tasks import Task

RELATION_COLOURS = {
    "same_content": "#4477aa",
    "same_system": "#ee6677",
    "cross": "#228833",
    "any": "#ccbb44",
}
"""Colour-blind-safe (Paul Tol 'bright'), fixed per relation so every card uses the same key."""
assert set(RELATION_COLOURS) == set(RELATIONS)


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def escape_xml(text: object) -> str:
    """Text or attribute value for the SVG (characters XML 1.0 forbids become U+FFFD)."""
    clean = _XML_INVALID.sub("\ufffd", str(text))
    return (
        clean.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&apos;")
    )


def _n(x: float) -> str:
    """Coordinates with two decimals, trailing zeros dropped: deterministic and compact."""
    text = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _nice_ticks(top: int) -> list[int]:
    """0 .. a round maximum >= top in 1/2/5 × 10^k steps (about four intervals)."""
    if top <= 0:
        return [0, 1]
    raw = top / 4
    mag = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    step = max(int(step), 1)
    return list(range(0, math.ceil(top / step) * step + 1, step))


_W, _LEFT, _RIGHT = 720, 64, 16
_PLOT_H, _PANEL_GAP, _TOP = 140, 72, 64


def histogram_svg(task: Task, data: CardData) -> str:
    n_bars = round(HIST_MAX / HIST_BIN_WIDTH)
    plot_w = _W - _LEFT - _RIGHT
    bar_w = plot_w / n_bars
    panels = [s for s in data.splits if s in data.pairs and data.pairs[s].n > 0]
    height = _TOP + len(panels) * (_PLOT_H + _PANEL_GAP)
    relations = display_relations(task, {r for s in panels for r in data.pairs[s].relations})
    title = f"ΔMOS of the sampled pairs: {task.name} (version {task.spec.version})"
    if task.spec.synthetic:
        title += ", SYNTHETIC"
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{height}" '
        f'viewBox="0 0 {_W} {height}" role="img" aria-labelledby="title" '
        'font-family="Helvetica, Arial, sans-serif" font-size="11">',
        f'<title id="title">{escape_xml(title)}</title>',
        f'<rect x="0" y="0" width="{_W}" height="{height}" fill="#ffffff"/>',
        f'<text x="{_W / 2:g}" y="20" text-anchor="middle" font-size="14" '
        f'font-weight="bold">{escape_xml(title)}</text>',
    ]
    x: float = _LEFT
    for rel in relations:
        out.append(
            f'<rect x="{_n(x)}" y="32" width="10" height="10" fill="{RELATION_COLOURS[rel]}"/>'
        )
        out.append(f'<text x="{_n(x + 14)}" y="41">{escape_xml(rel)}</text>')
        x += 14 + 7 * len(rel) + 18
    out.append(
        f'<line x1="{_n(x)}" y1="37" x2="{_n(x + 18)}" y2="37" stroke="#555555" '
        'stroke-width="1" stroke-dasharray="4 3"/>'
    )
    out.append(f'<text x="{_n(x + 22)}" y="41">percentile bin edges</text>')
    for k, split in enumerate(panels):
        p = data.pairs[split]
        top = _TOP + k * (_PLOT_H + _PANEL_GAP) + 24
        base = top + _PLOT_H
        per_bar = [sum(p.hist[r][i] for r in p.relations) for i in range(n_bars)]
        ticks = _nice_ticks(max(per_bar))
        scale = _PLOT_H / ticks[-1]
        out.append(f'<g class="panel" data-split="{escape_xml(split)}">')
        out.append(
            f'<text x="{_LEFT}" y="{_n(top - 8)}" font-weight="bold">'
            f"{escape_xml(f'split {split}: {p.n:,} pairs')}</text>"
        )
        for t in ticks:
            y = base - t * scale
            out.append(
                f'<line x1="{_LEFT}" y1="{_n(y)}" x2="{_LEFT + plot_w}" y2="{_n(y)}" '
                'stroke="#dddddd" stroke-width="1"/>'
            )
            out.append(f'<text x="{_LEFT - 6}" y="{_n(y + 4)}" text-anchor="end">{t:,}</text>')
        for i in range(n_bars):
            y = base
            for rel in p.relations:
                count = p.hist[rel][i]
                if count == 0:
                    continue
                h = count * scale
                y -= h
                lo, hi = i * HIST_BIN_WIDTH, (i + 1) * HIST_BIN_WIDTH
                out.append(
                    f'<rect class="bar" x="{_n(_LEFT + i * bar_w + 0.5)}" y="{_n(y)}" '
                    f'width="{_n(bar_w - 1)}" height="{_n(h)}" fill="{RELATION_COLOURS[rel]}" '
                    f'data-split="{escape_xml(split)}" data-relation="{escape_xml(rel)}" '
                    f'data-bin="{i}" data-count="{count}">'
                    f"<title>{escape_xml(f'{split}, {rel}, ΔMOS {lo:.1f}–{hi:.1f}: {count:,}')}"
                    "</title></rect>"
                )
        # the percentile bins the results are reported in: inner edges as dashed lines
        edges = p.meta.get("bin_edges") or []
        for j, edge in enumerate(edges[1:-1], start=1):
            x = _LEFT + min(float(edge), HIST_MAX) / HIST_MAX * plot_w
            out.append(
                f'<line class="bin-edge" x1="{_n(x)}" y1="{_n(top)}" x2="{_n(x)}" '
                f'y2="{_n(base)}" stroke="#555555" stroke-width="1" stroke-dasharray="4 3" '
                f'data-edge="{edge_text(float(edge))}"><title>'
                f"{escape_xml(f'percentile bin edge {j}: ΔMOS {edge_text(float(edge))}')}"
                "</title></line>"
            )
        out.append(
            f'<line x1="{_LEFT}" y1="{_n(base)}" x2="{_LEFT + plot_w}" y2="{_n(base)}" '
            'stroke="#000000" stroke-width="1"/>'
        )
        out.append(
            f'<line x1="{_LEFT}" y1="{_n(top)}" x2="{_LEFT}" y2="{_n(base)}" '
            'stroke="#000000" stroke-width="1"/>'
        )
        step = max(1, round(0.5 / HIST_BIN_WIDTH))
        for i in range(0, n_bars + 1, step):
            x = _LEFT + i * bar_w
            out.append(
                f'<line x1="{_n(x)}" y1="{_n(base)}" x2="{_n(x)}" y2="{_n(base + 4)}" '
                'stroke="#000000" stroke-width="1"/>'
            )
            out.append(
                f'<text x="{_n(x)}" y="{_n(base + 16)}" text-anchor="middle">'
                f"{i * HIST_BIN_WIDTH:g}</text>"
            )
        out.append(
            f'<text x="{_n(_LEFT + plot_w / 2)}" y="{_n(base + 32)}" text-anchor="middle">'
            "ΔMOS (|MOS A − MOS B|, 1–5 scale)</text>"
        )
        out.append(
            f'<text x="16" y="{_n(top + _PLOT_H / 2)}" text-anchor="middle" '
            f'transform="rotate(-90 16 {_n(top + _PLOT_H / 2)})">pairs</text>'
        )
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"
