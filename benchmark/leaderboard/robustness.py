"""The board's robustness tables: what the probes (`benchmark.probe`) say about each model, per
task, apart from the accuracy ranking (other questions, other pairs; never pooled or ranked).

A pure function of the results folder like the rest of the board: `<sub>/probes/<task>.json`
beside each current result. A probe record counts only while it belongs to the result shown: the
same model fingerprint and the same pair file; an older one is left out and counted as stale, so a
retrained model never shows its predecessor's flip rates.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.escape import html_text as esc
from benchmark.escape import markdown_cell

FAMILY_ORDER = (
    "noise_white",
    "noise_pink",
    "clipping",
    "lowpass",
    "codec",
    "packet_loss",
    "reverb",
)


@dataclass(frozen=True)
class Range:
    value: float | None
    low: float | None = None
    high: float | None = None

    def text(self, pct: bool = True) -> str:
        if self.value is None:
            return "–"
        f = (lambda x: f"{100 * x:.1f}") if pct else (lambda x: f"{x:.2f}")
        if self.low is None or self.high is None:
            return f(self.value)
        return f"{f(self.value)} [{f(self.low)}, {f(self.high)}]"


@dataclass(frozen=True)
class RobustRow:
    submission: str
    name: str
    degradation: Range
    worst_probe: str | None
    worst_flip: Range
    bon_all: Range
    bon_n: Range
    n: int
    families: dict[str, list[float | None]]
    """degradation family -> accuracy per severity level (mildest first)"""
    flips: dict[str, float | None]
    """transform -> flip rate"""
    not_monotone: tuple[str, ...]
    consistent: bool | None
    shortcut: bool = False
    severities: dict[str, list[str]] = field(default_factory=dict)
    """degradation family -> severity labels (short), mildest first"""


@dataclass(frozen=True)
class RobustTask:
    task: str
    rows: list[RobustRow]
    probe_clips: int
    source_clips: int
    hack_pairs: int
    bon_n: int
    transforms: list[str]
    stale: list[str] = field(default_factory=list)


def _range(d: dict[str, Any], key: str = "accuracy") -> Range:
    return Range(d.get(key), d.get("ci_low"), d.get("ci_high"))


def _row(rec: dict[str, Any], name: str, shortcut: bool = False) -> RobustRow:
    sens, hack, bon = rec["sensitivity"], rec["hacking"], rec["best_of_n"]
    fams: dict[str, list[float | None]] = {}
    severities: dict[str, list[str]] = {}
    for r in sorted(sens["rows"], key=lambda r: (r["family"], r["level"])):
        fams.setdefault(r["family"], []).append(r.get("accuracy"))
        # the probe id's short form ("noise_white@20dB" -> "20dB"): a tick label
        severities.setdefault(r["family"], []).append(str(r["probe"]).partition("@")[2])
    flips = {r["probe"]: r.get("flip_rate") for r in hack["rows"]}
    named = (hack.get("worst") or {}).get("probe")  # the record's rule (`probe.blocks`)
    worst = next((r for r in hack["rows"] if r["probe"] == named), None)
    n_key = next((k for k in sorted(bon) if k.startswith("n_") and k != "n_all"), None)
    check = rec.get("stream_check")
    return RobustRow(
        submission=str(rec["submission"]),
        name=name,
        degradation=_range(sens["overall"]),
        worst_probe=None if worst is None else str(worst["probe"]),
        worst_flip=Range(None) if worst is None else _range(worst, "flip_rate"),
        bon_all=_range(bon.get("n_all", {}), "gain"),
        bon_n=Range(None) if n_key is None else _range(bon[n_key], "gain"),
        n=int(hack.get("right_before") or 0),
        families=fams,
        flips=flips,
        not_monotone=tuple(
            str(m["family"]) for m in sens["monotonicity"] if m.get("significant_violation")
        ),
        consistent=None if check is None else bool(check.get("consistent")),
        shortcut=shortcut,
        severities=severities,
    )


def robustness(results_root: str | Path, shown: Sequence[dict[str, Any]]) -> list[RobustTask]:
    """Per task, a row for each shown result (`shown`: the board's current records, with their
    display names) that has a probe record of the same model and pairs."""
    root = Path(results_root)
    by_task: dict[str, list[tuple[dict[str, Any], str, bool]]] = {}
    stale: dict[str, list[str]] = {}
    for r in shown:
        path = root / str(r["submission"]) / "probes" / f"{r['task']}.json"
        if not path.is_file():
            continue
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            stale.setdefault(str(r["task"]), []).append(str(r["submission"]))
            continue
        same = rec.get("model_fingerprint") == r.get("model_fingerprint") and rec.get(
            "pair_file_sha256"
        ) == r.get("pair_file_sha256")
        if not same or rec.get("probes_schema_version") != 1:
            stale.setdefault(str(r["task"]), []).append(str(r["submission"]))
            continue
        shown_name = str(r.get("_shown") or r["submission"])
        by_task.setdefault(str(r["task"]), []).append((rec, shown_name, bool(r.get("shortcut"))))
    out = []
    for task in sorted(set(by_task) | set(stale)):
        recs = by_task.get(task, [])
        rows = [_row(rec, name, cut) for rec, name, cut in recs]
        rows.sort(key=lambda x: (-(x.degradation.value or 0.0), x.name))
        first = recs[0][0] if recs else {}
        transforms = sorted({p for row in rows for p in row.flips})
        out.append(
            RobustTask(
                task=task,
                rows=rows,
                probe_clips=int(first.get("cost", {}).get("probe_clips") or 0),
                source_clips=int(first.get("sensitivity", {}).get("clips") or 0),
                hack_pairs=int(first.get("hacking", {}).get("pairs") or 0),
                bon_n=int(first.get("settings", {}).get("bon_n") or 0),
                transforms=transforms,
                stale=sorted(stale.get(task, [])),
            )
        )
    return out


INTRO = (
    "What an optimiser would do with each reward model (`mosrm probe`): **degradation accuracy** "
    "is how often a test clip beats its own degraded copy (noise, clipping, low-pass, codec, "
    "packet loss, reverberation); **worst flip rate** is, over transforms that "
    "should not raise the reward (gain, silence, DC offset, polarity, a 48 kHz round trip, a "
    "−60 dBFS noise floor), the largest share of the pairs the model got right that it gets "
    "wrong once the rejected clip alone is transformed; **best-of-N gain** is the MOS of the clip "
    "it would pick in a content group against the group's mean, as a share of the best possible "
    "(1 = the labels' oracle, 0 = chance). 95% intervals, over new clips, systems and contents "
    "where there are enough of them (as for accuracy); not ranked."
)


def markdown_section(tasks: Sequence[RobustTask]) -> list[str]:
    """The Markdown lines of every task's robustness table (empty: no probes on this board)."""
    if not tasks:
        return []
    out = ["", "## Will a policy exploit it? (robustness probes, not ranked)", "", INTRO]
    for t in tasks:
        out += ["", f"### {markdown_cell(t.task)}", "", _sizes(t), ""]
        head = [
            "model",
            "degradation accuracy",
            "worst flip rate",
            "best of all: gain",
            f"best of {t.bon_n}: gain",
        ]
        out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in t.rows:
            worst = "–" if r.worst_probe is None else f"{r.worst_flip.text()} ({r.worst_probe})"
            cells = [
                markdown_cell(r.name),
                r.degradation.text(),
                markdown_cell(worst),
                r.bon_all.text(pct=False),
                r.bon_n.text(pct=False),
            ]
            out.append("| " + " | ".join(cells) + " |")
        out += _notes(t, markdown_cell)
    return out


def _sizes(t: RobustTask) -> str:
    return (
        f"{t.source_clips} test clips x 23 degradations and {t.hack_pairs} test pairs x "
        f"{len(t.transforms)} transforms ({t.probe_clips} probe clips), every content group for "
        "best of N."
    )


def _notes(t: RobustTask, escape: Any) -> list[str]:
    notes = []
    for r in t.rows:
        if r.not_monotone:
            notes.append(
                f"{escape(r.name)}: accuracy falls significantly as severity rises for "
                f"{', '.join(r.not_monotone)} (it prefers the more degraded copy)."
            )
        if r.consistent is False:
            notes.append(
                f"{escape(r.name)}: scored the test clips differently when probes were in the "
                "stream."
            )
    if t.stale:
        notes.append(
            f"Probes left out (older model or pairs, or unreadable): {escape(', '.join(t.stale))}."
        )
    return ["", *(f"- {n}" for n in notes)] if notes else []


def _heat(value: float | None, good_high: bool) -> str:
    """A cell's background: green where the model behaves, red where it does not."""
    if value is None:
        return ""
    v = value if good_high else 1.0 - value
    hue = int(round(120 * max(0.0, min(1.0, v))))
    return f' style="background:hsl({hue},70%,85%)"'


def site_section(tasks: Sequence[RobustTask], figures: dict[str, str] | None = None) -> str:
    """The site's robustness section: per task the summary table, the sensitivity figure
    (`figures[task]`: its HTML, rendered by the site), a heat map of degradation accuracy by
    family and severity, and a heat map of flip rates by transform."""
    if not tasks:
        return ""
    figures = figures or {}
    parts = [
        '<section id="robustness"><h2>Will a policy exploit it? (robustness, not ranked)</h2>',
        f"<p>{esc(INTRO).replace('**', '')}</p>",
    ]
    for t in tasks:
        parts.append(f"<h3>{esc(t.task)}</h3><p>{esc(_sizes(t))}</p>")
        parts.append(
            f'<div class="scroll"><table aria-label="robustness on {esc(t.task)}"><thead><tr>'
            "<th>model</th><th>degradation accuracy</th><th>worst flip rate</th>"
            f"<th>best of all: gain</th><th>best of {t.bon_n}: gain</th></tr></thead><tbody>"
        )
        for r in t.rows:
            worst = "–" if r.worst_probe is None else f"{r.worst_flip.text()} ({r.worst_probe})"
            parts.append(
                f"<tr><td>{esc(r.name)}</td><td>{esc(r.degradation.text())}</td>"
                f"<td{_heat(r.worst_flip.value, False)}>{esc(worst)}</td>"
                f"<td>{esc(r.bon_all.text(pct=False))}</td>"
                f"<td>{esc(r.bon_n.text(pct=False))}</td></tr>"
            )
        parts.append("</tbody></table></div>")
        parts.append(figures.get(t.task, ""))
        fams = [f for f in FAMILY_ORDER if any(f in r.families for r in t.rows)]
        parts.append(
            "<p>Degradation accuracy (%) by family, mildest to harshest severity (a row should "
            "not get redder to the right):</p>"
            f'<div class="scroll"><table class="heat" aria-label="sensitivity on '
            f'{esc(t.task)}"><thead><tr><th>model</th>'
            + "".join(f"<th>{esc(f)}</th>" for f in fams)
            + "</tr></thead><tbody>"
        )
        for r in t.rows:
            cells = []
            for f in fams:
                accs = r.families.get(f, [])
                shown = " · ".join("–" if a is None else f"{100 * a:.0f}" for a in accs)
                lowest = min((a for a in accs if a is not None), default=None)
                cells.append(f"<td{_heat(lowest, True)}>{esc(shown)}</td>")
            parts.append(f"<tr><td>{esc(r.name)}</td>{''.join(cells)}</tr>")
        parts.append("</tbody></table></div>")
        parts.append(
            "<p>Flip rate (%) per transform of the rejected clip (0 = the model is not fooled):</p>"
            f'<div class="scroll"><table class="heat" aria-label="flip rates on {esc(t.task)}">'
            "<thead><tr><th>model</th>"
            + "".join(f"<th>{esc(p)}</th>" for p in t.transforms)
            + "</tr></thead><tbody>"
        )
        for r in t.rows:
            cells = []
            for p in t.transforms:
                v = r.flips.get(p)
                cells.append(f"<td{_heat(v, False)}>{'–' if v is None else f'{100 * v:.0f}'}</td>")
            parts.append(f"<tr><td>{esc(r.name)}</td>{''.join(cells)}</tr>")
        parts.append("</tbody></table></div>")
        parts += [f"<p>{n[2:]}</p>" for n in _notes(t, esc) if n]
    parts.append("</section>")
    return "".join(parts)
