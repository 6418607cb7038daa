"""The board is built purely from the results folder: one JSON per submission × task.

Nothing here scores or re-reads audio, so anyone can rebuild the board from published results.
The cross-task rows (micro over all pairs, macro over tasks) are recomputed by `metrics.aggregate`
from the per-pair predictions stored beside the JSONs, never by averaging rounded numbers. Two
rules keep the cross-task tables honest: a synthetic task (the demo) never enters them, and only
submissions evaluated on the same set of tasks are ranked against each other (one table per set).

Old numbers must not pass for current ones: a task whose latest attempt failed (a
`<task>.failed.json`, see `benchmark.failures`) is listed as failed and its earlier result is not
shown, and a result computed by other code than the submission folder now holds (its fingerprint
differs) is marked stale. A submission with any failed or stale entry is left out of the cross-task
ranking until it is rerun.

Quick runs (`mosrm evaluate --limit N`, `<task>.partial.json`) never enter the board: a seeded
subset of a task's pairs is a smoke check, not a number comparable with full results.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmark.errors import MosrmError
from benchmark.escape import display_name, markdown_cell
from benchmark.report import SUBSET_LABELS, bin_label
from benchmark.tables import RELATIONS

REQUIRED = ("submission", "task", "metrics", "metrics_version", "pair_file_sha256")


def load_results(results_root: str | Path) -> list[dict[str, Any]]:
    """Every `<submission>/<task>.json` under `results_root` (evaluation splits only, quick runs'
    `<task>.partial.json` and run records `<task>.run.json` never), sorted.

    Each must be of a results schema version this harness reads and validate as a
    `results.TaskResult` (returned as the dict it was read as), be of the current metrics version,
    and have its predictions file beside it: the cross-task rows are computed from the
    predictions, so a missing one is an error, not a gap.
    """
    from benchmark.failures import SUFFIX
    from benchmark.metrics import METRICS_VERSION
    from benchmark.pipeline import PARTIAL_SUFFIX
    from benchmark.results import RUN_SUFFIX, TaskResult, check_schema_version

    records = []
    for path in sorted(Path(results_root).glob("*/*.json")):
        if "@" in path.stem or path.name.endswith((SUFFIX, PARTIAL_SUFFIX, RUN_SUFFIX)):
            continue
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MosrmError(f"{path}: unreadable results file ({exc})") from None
        if not isinstance(record, dict):
            raise MosrmError(f"{path}: results file is not a JSON object")
        check_schema_version(record, path)
        if record.get("partial") is not None:
            raise MosrmError(
                f"{path}: field 'partial' is set: a quick run's results (--limit) never enter "
                "the board; rerun the task without --limit"
            )
        for key in REQUIRED:
            if key not in record:
                raise MosrmError(f"{path}: results file lacks '{key}'")
        if record["metrics_version"] != METRICS_VERSION:
            raise MosrmError(
                f"{path}: field 'metrics_version' is {record['metrics_version']!r}, this harness "
                f"writes {METRICS_VERSION} (clip-aware intervals); rerun `mosrm evaluate "
                f"{record['submission']} --task {record['task']}`"
            )
        pred = predictions_path(path)
        if not pred.is_file():
            raise MosrmError(
                f"{pred}: predictions file missing (the results {path.name} need it); rerun "
                f"`mosrm evaluate {record['submission']} --task {record['task']}`"
            )
        TaskResult.from_raw(record, path)
        record["_path"] = str(path)
        records.append(record)
    _unique_names(records)
    return records


def predictions_path(result_json: str | Path) -> Path:
    return Path(result_json).with_suffix(".predictions.parquet")


def _pct(cell: dict[str, Any] | None, with_ci: bool = True) -> str:
    if not cell or not cell.get("n") or cell.get("accuracy") is None:
        return "–"
    acc = 100 * cell["accuracy"]
    if not with_ci or cell.get("ci_low") is None:
        return f"{acc:.1f}"
    return f"{acc:.1f} [{100 * cell['ci_low']:.1f}, {100 * cell['ci_high']:.1f}]"


def _shown(record: dict[str, Any]) -> str:
    """The display name as plain text (`escape.display_name`), else the submission's folder name."""
    return display_name(str(record.get("display_name") or "")) or display_name(
        str(record["submission"])
    )


def _unique_names(records: list[dict[str, Any]]) -> None:
    """Set `_shown` on each record: one name per submission, no two submissions sharing one.

    Submissions whose names read the same are each shown as "Name (folder)" (folders are unique);
    another round settles a name that already read like that. Deterministic: it depends only on the
    records, which `load_results` sorts.
    """
    names = {r["submission"]: _shown(r) for r in records}
    for _ in range(len(names)):
        owners: dict[str, set[str]] = defaultdict(set)
        for sub, shown in names.items():
            owners[shown].add(sub)
        clashing = [sub for subs in owners.values() if len(subs) > 1 for sub in subs]
        if not clashing:
            break
        for sub in clashing:
            names[sub] = f"{names[sub]} ({display_name(str(sub))})"
    for r in records:
        r["_shown"] = names[r["submission"]]


def _name(record: dict[str, Any], in_domain: bool | None = None) -> str:
    """Display name (made plain and unique), escaped, with the ‡ shortcut and † in-domain markers."""
    name = markdown_cell(display_name(str(record.get("_shown") or _shown(record)), 160))
    if record.get("shortcut"):
        name += " ‡"
    trained = (not record.get("zero_shot", True)) if in_domain is None else in_domain
    if trained:
        name += " †"
    return name


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _head(cells: list[str]) -> list[str]:
    return [_row(cells), "|" + "---|" * len(cells)]


def _by_accuracy(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(
        records, key=lambda r: (-(r["metrics"]["overall"].get("accuracy") or 0), r["submission"])
    )


def _ordered(
    records: list[dict[str, Any]], stale: list[dict[str, Any]] | None
) -> list[tuple[dict[str, Any], str]]:
    """Ranked rows by accuracy, then the stale ones (marked, unranked) in name order."""
    rows = [(r, "") for r in _by_accuracy(records)]
    rows += [(r, " ⚠ stale") for r in sorted(stale or [], key=lambda r: r["submission"])]
    return rows


def render_task_table(
    records: list[dict[str, Any]], stale: list[dict[str, Any]] | None = None
) -> str:
    """One Markdown table for one task: overall, per ΔMOS bin and subset, with 95% intervals.

    `stale` results come last, marked, out of the accuracy order.
    """
    ranked = records
    records = records + (stale or [])
    first = records[0]
    bins = int(first.get("bins") or len(first["metrics"].get("by_bin", {})))
    edges = first.get("bin_edges")
    # subsets of the split (e.g. VMC'23 tracks 1a/1b/2/3): one column each, pairs never cross them
    groups = sorted({k for r in records for k in r["metrics"].get("by_group_subset", {})})
    head = ["model", "overall [95% CI]"]
    head += [markdown_cell(g) for g in groups]
    head += [bin_label(i, edges) for i in range(bins)]
    head += [SUBSET_LABELS[k] for k in ("dmos_lt_0_2", "dmos_le_0_5", "dmos_gt_1_5")]
    head += ["ties", "n"]
    lines = _head(head)
    for r, mark in _ordered(ranked, stale):
        m = r["metrics"]
        row = [_name(r) + mark, _pct(m["overall"])]
        row += [_pct(m.get("by_group_subset", {}).get(g)) for g in groups]
        row += [_pct(m.get("by_bin", {}).get(str(i))) for i in range(bins)]
        subsets = m.get("by_subset", {})
        row += [_pct(subsets.get(k)) for k in ("dmos_lt_0_2", "dmos_le_0_5", "dmos_gt_1_5")]
        row += [f"{100 * (m['overall'].get('tie_rate') or 0):.1f}%", str(m["overall"].get("n", 0))]
        lines.append(_row(row))
    return "\n".join(lines)


def render_relation_table(
    records: list[dict[str, Any]], stale: list[dict[str, Any]] | None = None
) -> str:
    """Per relation: on a listening test with many systems per sentence, same_content is the
    number users want, while most pairs (and so the overall figure) are cross pairs."""
    ranked = records
    records = records + (stale or [])
    relations = sorted({k for r in records for k in r["metrics"].get("by_relation", {})})
    sizes = {
        rel: max(r["metrics"]["by_relation"].get(rel, {}).get("n", 0) for r in records)
        for rel in relations
    }
    head = ["model"]
    head += [
        f"{rel if rel in RELATIONS else markdown_cell(rel)} ({sizes[rel]} pairs)"
        for rel in relations
    ]
    lines = _head(head)
    for r, mark in _ordered(ranked, stale):
        cells = r["metrics"].get("by_relation", {})
        lines.append(_row([_name(r) + mark, *(_pct(cells.get(rel)) for rel in relations)]))
    return "\n".join(lines)


def _judged(record: dict[str, Any]) -> bool:
    """Whether a result has judge diagnostics to show (a pairwise judge, or a per-pair file)."""
    d = record.get("diagnostics")
    if d is None:
        return record.get("kind") == "pairwise"
    return not d.get("by_construction")


def _rate(value: float | None, ci: list[float] | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    if signed:
        text = f"{value:+.3f}"
        return text if not ci else f"{text} [{ci[0]:+.3f}, {ci[1]:+.3f}]"
    text = f"{100 * value:.1f}%"
    return text if not ci else f"{text} [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def render_diagnostics_table(
    records: list[dict[str, Any]], stale: list[dict[str, Any]] | None = None
) -> str:
    """Judge diagnostics of the task's pairwise models (`benchmark.diagnostics`), or "".

    Models with one score per clip are not rows: they are consistent, unbiased and acyclic by
    construction, which the line under the table says. Stale results come last, marked.
    """
    judged = [r for r in records if _judged(r)]
    judged_stale = [r for r in stale or [] if _judged(r)]
    if not judged and not judged_stale:
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
    for r, mark in _ordered(judged, judged_stale):
        d = r.get("diagnostics")
        if d is None:
            lines.append(_row([_name(r) + mark, *["not computed: rerun"] * 3, "–", "–"]))
            continue
        lines.append(
            _row(
                [
                    _name(r) + mark,
                    _rate(d.get("position_consistency"), d.get("position_consistency_ci")),
                    _rate(d.get("first_position_bias"), d.get("first_position_bias_ci"), True),
                    _rate(d.get("cycle_rate"), d.get("cycle_rate_ci")),
                    str(d.get("n_pairs") if d.get("n_pairs") is not None else "–"),
                    str(d.get("n_triplets") if d.get("n_triplets") is not None else "–"),
                ]
            )
        )
        for what, why in sorted((d.get("unavailable") or {}).items()):
            notes.append(f"- {_name(r)}: {markdown_cell(what)} not available: {markdown_cell(why)}")
    n_scalar = sum(1 for r in records + (stale or []) if not _judged(r))
    out = [
        "\n".join(lines),
        "",
        "Consistency: share of pairs whose decision (as a clip) is the same in both presentation "
        "orders. Bias: mean of prefer(a, b) + prefer(b, a) − 1 (+1 = always the first clip). "
        "Cycle rate: share of the seeded MOS-decreasing triplets the judge orders cyclically "
        "(x ≻ y ≻ z ≻ x); ties never form a cycle. Definitions: README, 'What a result means'. "
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


def _check_task(task: str, recs: list[dict[str, Any]]) -> None:
    versions = sorted({str(r.get("task_version")) for r in recs})
    if len(versions) > 1:
        raise MosrmError(f"results for task '{task}' mix task versions {versions}: rerun them")
    shas = defaultdict(list)
    for r in recs:
        shas[r["pair_file_sha256"]].append(Path(r["_path"]))
    if len(shas) > 1:
        shown = "; ".join(f"{sha[:12]}… in {paths[0]}" for sha, paths in sorted(shas.items()))
        raise MosrmError(
            f"results for task '{task}' were computed on different pair files ({shown}): "
            "models are only comparable on the same pairs; rerun the stale ones"
        )


def current_fingerprints(
    names: set[str], submissions_root: str | Path | None
) -> dict[str, tuple[str | None, str | None]]:
    """{submission: (fingerprint its folder has now, or None with why not)} for folders present.

    Uses `benchmark.models.current_fingerprint`, which hashes the folder without running its code;
    where the harness lacks it, or no submissions folder is given, nothing is checked.
    """
    from benchmark import models
    from benchmark.failures import one_line

    current = getattr(models, "current_fingerprint", None)
    if submissions_root is None or current is None:
        return {}
    out: dict[str, tuple[str | None, str | None]] = {}
    for name in sorted(names):
        folder = Path(submissions_root) / name
        if not (folder / "submission.yaml").is_file():
            continue  # results of a submission this checkout does not have: nothing to compare
        try:
            out[name] = (str(current(folder)), None)
        except (Exception, SystemExit) as exc:
            out[name] = (None, one_line(f"{type(exc).__name__}: {exc}", 300))
    return out


def _failed_line(f: dict[str, Any], withdrawn: bool, now: tuple[str | None, str | None]) -> str:
    stage = f.get("stage") or "?"
    when = f" at {markdown_cell(f['time'])}" if f.get("time") else ""
    line = (
        f"- ✗ {markdown_cell(f['submission'])}: failed ({markdown_cell(stage)}){when}: "
        f"{markdown_cell(f['reason'])}"
    )
    if withdrawn:
        line += " (its earlier result is withdrawn)"
    if f.get("fingerprint") and now[0] and now[0] != f["fingerprint"]:
        line += " (the folder has changed since: rerun it)"
    return line


def _stale_line(r: dict[str, Any], task: str, now: tuple[str | None, str | None]) -> str:
    was = r.get("model_fingerprint")
    if now[0] is None:
        why = f"its folder cannot be fingerprinted now ({markdown_cell(now[1])})"
    else:
        old = f"{markdown_cell(str(was)[:12])}…" if was else "unknown code"
        why = f"computed by {old}, the folder is now {markdown_cell(now[0][:12])}…"
    name = markdown_cell(r["submission"])
    return (
        f"- ⚠ {name}: stale, {why}; rerun it (mosrm evaluate {name} --task {markdown_cell(task)})"
    )


def render_markdown(results_root: str | Path, submissions_root: str | Path | None = None) -> str:
    """The whole board as Markdown: two tables per task, then the cross-task summary.

    With `submissions_root`, each result's model fingerprint is checked against its folder's.
    """
    from benchmark.failures import load_failures

    records = load_results(results_root)
    failures = load_failures(results_root)
    if not records and not failures:
        return "No results yet: run `mosrm run` (or `make run`).\n"
    failed = {(f["submission"], f["task"]): f for f in failures}
    now = current_fingerprints(
        {r["submission"] for r in records} | {f["submission"] for f in failures}, submissions_root
    )
    unranked: dict[str, list[str]] = defaultdict(list)  # submission -> "failed on t", "stale on t"
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    stale_by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        key = (r["submission"], r["task"])
        if key in failed:
            continue
        fp = now.get(r["submission"])
        if fp is not None and (fp[0] is None or fp[0] != r.get("model_fingerprint")):
            stale_by_task[r["task"]].append(r)
            unranked[r["submission"]].append(f"stale on {r['task']}")
        else:
            by_task[r["task"]].append(r)
    failed_by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in failures:
        failed_by_task[f["task"]].append(f)
        unranked[f["submission"]].append(f"failed on {f['task']}")
    had_result = {(r["submission"], r["task"]) for r in records}
    out = [
        "# mosrm-bench results",
        "",
        "Strict pairwise accuracy in % (ties count as wrong) with 95% intervals that account for "
        "pairs sharing clips (clip-clustered; see the README, 'What a result means'); bins are "
        "per-task ΔMOS percentile bins (bin 0 = smallest gaps). "
        "‡ shortcut heuristic, † trained on this task's corpus (in-domain). "
        "✗ failed: the latest attempt failed, so no numbers are shown; ⚠ stale: computed by "
        "other code than the submission folder now holds. Neither is ranked.",
    ]
    for task in sorted(set(by_task) | set(stale_by_task) | set(failed_by_task)):
        recs, stale = by_task.get(task, []), stale_by_task.get(task, [])
        shown = recs + stale
        if not shown:
            out += ["", f"## {markdown_cell(task)}", "", "No current results."]
        else:
            _check_task(task, shown)
            first = shown[0]
            note = " — SYNTHETIC, smoke test only" if first.get("synthetic") else ""
            clips = first["metrics"]["overall"].get("n_clips")
            out += [
                "",
                f"## {markdown_cell(task)} (v{first.get('task_version')}, {first.get('split')} "
                f"split, {first.get('n_pairs')} pairs on {clips} clips){note}",
                "",
                render_task_table(recs, stale),
            ]
            made, asked = first.get("bins"), first.get("bins_requested")
            if made and asked and made < asked:
                out += [
                    "",
                    f"{made} ΔMOS bins, not the {asked} requested: tied ΔMOS values filled whole "
                    "percentile bands, which are merged (a tie is never split across bins).",
                ]
            out += ["", "By relation:", "", render_relation_table(recs, stale)]
            diagnostics = render_diagnostics_table(recs, stale)
            if diagnostics:
                out += ["", "Judge diagnostics:", "", diagnostics]
        notes = [
            _failed_line(
                f, (f["submission"], task) in had_result, now.get(f["submission"], (None, None))
            )
            for f in sorted(failed_by_task.get(task, []), key=lambda f: f["submission"])
        ]
        notes += [
            _stale_line(r, task, now[r["submission"]])
            for r in sorted(stale, key=lambda r: r["submission"])
        ]
        if notes:
            out += ["", "Not ranked:", "", *notes]
    ranked = [r for rs in by_task.values() for r in rs if r["submission"] not in unranked]
    out += ["", "## All tasks", "", render_summary(ranked)]
    if unranked:
        listed = "; ".join(
            f"{markdown_cell(sub)} ({', '.join(markdown_cell(w) for w in sorted(why))})"
            for sub, why in sorted(unranked.items())
        )
        out += ["", f"Left out of this ranking until rerun: {listed}."]
    models = render_models_table([r for rs in by_task.values() for r in rs])
    if models:
        out += ["", "## Models", "", models]
    return "\n".join(out) + "\n"


def render_models_table(records: list[dict[str, Any]]) -> str:
    """What each model is (MTEB-style record): size, licence, revision, release, link, training.

    From one result per submission (every result carries the same record); the parameter count
    says whether the harness measured it or the submitter declared it. Links are shown as text,
    never rendered.
    """
    latest: dict[str, dict[str, Any]] = {}
    for r in sorted(records, key=lambda r: (r["submission"], r.get("task", ""))):
        latest.setdefault(r["submission"], r)
    rows = []
    for key in sorted(latest):
        r = latest[key]
        info = r.get("model") or {}
        params = info.get("parameters")
        size = "–" if params is None else f"{params:,}"
        if params is not None and info.get("parameters_source") == "declared":
            size += " (declared)"
        cells = [
            _name(r, in_domain=False),
            markdown_cell(r.get("kind") or "–"),
            size,
            *(markdown_cell(info.get(k) or "–") for k in ("license", "revision", "release_date")),
            markdown_cell(info.get("url") or "–"),
            markdown_cell(", ".join(r.get("training_data") or []) or "none declared"),
        ]
        rows.append(_row(cells))
    if not rows:
        return ""
    head = ["model", "kind", "parameters", "licence", "revision", "released", "url", "trained on"]
    return "\n".join([*_head(head), *rows])


def render_summary(records: list[dict[str, Any]]) -> str:
    """Micro and macro over the real tasks, one ranked table per set of tasks evaluated."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from benchmark.metrics import aggregate

    real = [r for r in records if not r.get("synthetic")]
    synthetic = sorted({r["task"] for r in records if r.get("synthetic")})
    kept_out = (
        f"Synthetic tasks ({', '.join(markdown_cell(t) for t in synthetic)}) are never pooled "
        "with real corpora here."
        if synthetic
        else ""
    )
    if not real:
        return ("No results on real (non-synthetic) tasks yet. " + kept_out).strip()
    by_sub: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in real:
        by_sub[r["submission"]].append(r)
    coverage: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for sub, recs in by_sub.items():
        coverage[tuple(sorted(r["task"] for r in recs))].append(sub)
    parts = [
        "Micro pools every pair of the tasks listed (the paper's overall); macro is the unweighted "
        "mean over those tasks. Submissions are ranked only against others evaluated on the same "
        "tasks. " + kept_out
    ]
    for tasks in sorted(coverage, key=lambda t: (-len(t), t)):
        rows = []
        for sub in coverage[tasks]:
            recs = sorted(by_sub[sub], key=lambda r: r["task"])
            # the presentation-order columns feed only the per-task judge diagnostics; results
            # written before they existed lack them, and a partly-null column would be refused
            tables = [_without_orders(pq.read_table(predictions_path(r["_path"]))) for r in recs]
            agg = aggregate(pa.concat_tables(tables, promote_options="default"))
            per_task = {r["task"]: r["metrics"]["overall"] for r in recs}
            in_domain = any(not r.get("zero_shot", True) for r in recs)
            cells = [
                _name(recs[0], in_domain),
                _pct(agg["overall"]),
                _pct(agg["macro"] | {"n": agg["macro"]["n_tasks"]}),
                *(_pct(per_task[t], with_ci=False) for t in tasks),
                str(agg["overall"]["n"]),
            ]
            rows.append((-(agg["overall"]["accuracy"] or 0), sub, cells))
        listed = ", ".join(markdown_cell(t) for t in tasks)
        lines = [f"Evaluated on {len(tasks)} task(s): {listed}", ""]
        lines += _head(
            [
                "#",
                "model",
                "micro [95% CI]",
                "macro [95% CI]",
                *(markdown_cell(t) for t in tasks),
                "pairs",
            ]
        )
        for rank, (_, _, cells) in enumerate(sorted(rows), start=1):
            lines.append(_row([str(rank), *cells]))
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def _without_orders(table: Any) -> Any:
    """Predictions (a pyarrow Table) minus the presentation-order columns, which feed only the per-task judge
    diagnostics: results written before those columns existed lack them, and pooling old and new
    tables would leave a partly-null column that the metrics refuse."""
    from benchmark.metrics import ORDER_COLUMNS

    return table.drop_columns([c for c in ORDER_COLUMNS if c in table.column_names])
