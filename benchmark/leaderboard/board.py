"""The board is built purely from the results folder: one JSON per submission × task.

Nothing here scores or re-reads audio, so anyone can rebuild the board from published results.
The cross-task row (micro over all pairs, macro over tasks) is recomputed by `metrics.aggregate`
from the per-pair predictions stored beside the JSONs, never by averaging rounded numbers.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmark.errors import MosrmError


def load_results(results_root: str | Path) -> list[dict[str, Any]]:
    """Every `<submission>/<task>.json` under `results_root` (evaluation splits only), sorted."""
    records = []
    for path in sorted(Path(results_root).glob("*/*.json")):
        if "@" in path.stem:
            continue
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise MosrmError(f"{path}: unreadable results file ({exc})") from None
        for key in ("submission", "task", "metrics"):
            if key not in record:
                raise MosrmError(f"{path}: results file lacks '{key}'")
        record["_path"] = str(path)
        records.append(record)
    return records


def _pct(cell: dict[str, Any] | None, with_ci: bool = True) -> str:
    if not cell or not cell.get("n") or cell.get("accuracy") is None:
        return "–"
    acc = 100 * cell["accuracy"]
    if not with_ci or cell.get("ci_low") is None:
        return f"{acc:.1f}"
    return f"{acc:.1f} [{100 * cell['ci_low']:.1f}, {100 * cell['ci_high']:.1f}]"


def _escape(text: str) -> str:
    """Neutralise Markdown/HTML in user-provided names (submissions are untrusted)."""
    import html

    return html.escape(str(text), quote=True).replace("|", "&#124;").replace("\n", " ")


def _bin_header(i: int, edges: list[float] | None) -> str:
    if edges and len(edges) > i + 1:
        return f"bin {i} (Δ {edges[i]:.2f}–{edges[i + 1]:.2f})"
    return f"bin {i}"


def render_task_table(records: list[dict[str, Any]]) -> str:
    """One Markdown table for one task: overall and per ΔMOS bin, each with its Wilson 95% CI."""
    first = records[0]
    bins = int(first.get("bins") or len(first["metrics"].get("by_bin", {})))
    edges = first.get("bin_edges")
    # subsets of the split (e.g. VMC'23 tracks 1a/1b/2/3): one column each, pairs never cross them
    groups = sorted({k for r in records for k in r["metrics"].get("by_group_subset", {})})
    head = ["model", "overall [95% CI]"]
    head += [f"{_escape(g)}" for g in groups]
    head += [_bin_header(i, edges) for i in range(bins)]
    head += ["Δ<0.2", "Δ≤0.5", "Δ>1.5", "ties", "n"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    ordered = sorted(
        records, key=lambda r: (-(r["metrics"]["overall"].get("accuracy") or 0), r["submission"])
    )
    for r in ordered:
        m = r["metrics"]
        name = _escape(r.get("display_name") or r["submission"])
        if r.get("shortcut"):
            name += " ‡"
        if not r.get("zero_shot", True):
            name += " †"
        row = [name, _pct(m["overall"])]
        row += [_pct(m.get("by_group_subset", {}).get(g)) for g in groups]
        row += [_pct(m.get("by_bin", {}).get(str(i))) for i in range(bins)]
        subsets = m.get("by_subset", {})
        row += [
            _pct(subsets.get(k), with_ci=False)
            for k in ("dmos_lt_0_2", "dmos_le_0_5", "dmos_gt_1_5")
        ]
        row += [f"{100 * (m['overall'].get('tie_rate') or 0):.1f}%", str(m["overall"].get("n", 0))]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def render_markdown(results_root: str | Path) -> str:
    """The whole board as Markdown: a table per task, then the cross-task summary."""
    records = load_results(results_root)
    if not records:
        return "No results yet: run `mosrm run` (or `make run`).\n"
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_task[r["task"]].append(r)
    out = [
        "# mosrm-bench results",
        "",
        "Strict pairwise accuracy in % (ties count as wrong) with Wilson 95% intervals; "
        "bins are per-task ΔMOS percentile bins (bin 0 = smallest gaps). "
        "‡ shortcut heuristic, † trained on this task's corpus.",
    ]
    for task in sorted(by_task):
        recs = by_task[task]
        first = recs[0]
        versions = sorted({r.get("task_version") for r in recs})
        if len(versions) > 1:
            raise MosrmError(f"results for task '{task}' mix task versions {versions}: rerun them")
        note = " — SYNTHETIC, smoke test only" if first.get("synthetic") else ""
        out += [
            "",
            f"## {_escape(task)} (v{first.get('task_version')}, {first.get('split')} split, "
            f"{first.get('n_pairs')} pairs){note}",
            "",
            render_task_table(recs),
        ]
    summary = render_summary(results_root, records)
    if summary:
        out += ["", "## All tasks", "", summary]
    return "\n".join(out) + "\n"


def render_summary(results_root: str | Path, records: list[dict[str, Any]]) -> str:
    """Micro (all pairs pooled, the paper's overall) and macro (mean over tasks) per submission."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from benchmark.metrics import aggregate

    by_sub: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_sub[r["submission"]].append(r)
    rows = []
    for sub, recs in sorted(by_sub.items()):
        tables = []
        for r in recs:
            pred = Path(r["_path"]).with_suffix(".predictions.parquet")
            if not pred.is_file():
                return ""
            tables.append(pq.read_table(pred))
        agg = aggregate(pa.concat_tables(tables, promote_options="default"))
        name = _escape(recs[0].get("display_name") or sub)
        macro = agg.get("macro", {}).get("accuracy")
        rows.append(
            (
                -(agg["overall"].get("accuracy") or 0),
                f"| {name} | {_pct(agg['overall'])} | "
                f"{'–' if macro is None else f'{100 * macro:.1f}'} | {len(recs)} | {agg['overall']['n']} |",
            )
        )
    head = "| model | micro [95% CI] | macro | tasks | pairs |\n|---|---|---|---|---|"
    return head + "\n" + "\n".join(line for _, line in sorted(rows))
