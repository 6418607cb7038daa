"""The board is built purely from the results folder: one JSON per submission × task.

Nothing here scores or re-reads audio, so anyone can rebuild the board from published results.
The cross-task rows (micro over all pairs, macro over tasks) are recomputed by `metrics.aggregate`
from the per-pair predictions stored beside the JSONs, never by averaging rounded numbers. Two
rules keep the cross-task tables honest: a synthetic task (the demo) never enters them, and only
submissions evaluated on the same set of tasks are ranked against each other (one table per set).

Old numbers must not pass for current ones: a task whose latest attempt failed (a
`<task>.failed.json`, see `benchmark.results.failures`) is listed as failed and its earlier result is not
shown, and a result computed by other code than the submission folder now holds (its fingerprint
differs) is marked stale. A submission with any failed or stale entry is left out of the cross-task
ranking until it is rerun.

Quick runs (`mosrm evaluate --limit N`, `<task>.partial.json`) never enter the board: a seeded
subset of a task's pairs is a smoke check, not a number comparable with full results. Nor do
reliability-filtered results (`mosrm evaluate --min-reliability`, `<task>.min-rel-<t>.json`):
they rest on the pairs with trustworthy labels only.

This module loads and checks; `leaderboard.data` computes every table once (with significance
rank intervals), and `leaderboard.markdown`, `leaderboard.site` and `leaderboard.exports` format it
(`leaderboard.board` puts the Markdown together).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmark.errors import MosrmError
from benchmark.escape import display_name

REQUIRED = ("submission", "task", "metrics", "metrics_version", "pair_file_sha256")


def load_results(results_root: str | Path) -> list[dict[str, Any]]:
    """Every `<submission>/<task>.json` under `results_root` (evaluation splits only, quick runs'
    `<task>.partial.json`, reliability-filtered `<task>.min-rel-<t>.json` and run records
    `<task>.run.json` never), sorted.

    Each must be of a results schema version this harness reads and validate as a
    `results.TaskResult` (returned as the dict it was read as), be of the current metrics version,
    and have its predictions file beside it: the cross-task rows are computed from the
    predictions, so a missing one is an error, not a gap.
    """
    from benchmark.results.failures import SUFFIX
    from benchmark.results.schema import (
        PARTIAL_SUFFIX,
        RUN_SUFFIX,
        TaskResult,
        check_schema_version,
    )
    from benchmark.stats.ceiling import is_filtered_name
    from benchmark.stats.metrics import METRICS_VERSION

    records = []
    for path in sorted(Path(results_root).glob("*/*.json")):
        if "@" in path.stem or path.name.endswith((SUFFIX, PARTIAL_SUFFIX, RUN_SUFFIX)):
            continue
        if is_filtered_name(path.name):
            continue
        try:
            data = path.read_bytes()
            record = json.loads(data.decode("utf-8"))
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
        if record.get("reliability_filter") is not None:
            raise MosrmError(
                f"{path}: field 'reliability_filter' is set: results on reliability-filtered "
                "pairs (--min-reliability) never enter the board; rerun the task without it"
            )
        for key in REQUIRED:
            if key not in record:
                raise MosrmError(f"{path}: results file lacks '{key}'")
        if record["metrics_version"] != METRICS_VERSION:
            raise MosrmError(
                f"{path}: field 'metrics_version' is {record['metrics_version']!r}, this harness "
                f"writes {METRICS_VERSION} (intervals over new clips, systems and contents); rerun `mosrm evaluate "
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
        record["_sha256"] = hashlib.sha256(data).hexdigest()  # the re-score ledger's key
        records.append(record)
    _unique_names(records)
    return records


OFFICIAL_TASKS = "official-tasks.json"
"""The tasks "All tasks" pools ({"version": 1, "tasks": [...]}): a workspace's own list if it
has one; else, where the workspace has no tasks of its own (the official board's), the package's
list (`workspace.SHIPPED`), so that no other task enters the ranking meant for the corpora of the
benchmark; a workspace with its own tasks pools every real task (its board is its own)."""


def official_tasks(repo: Path) -> list[str] | None:
    """The pooled tasks (`OFFICIAL_TASKS`); None: every real task may be pooled."""
    from benchmark.workspace import SHIPPED

    own = Path(repo) / OFFICIAL_TASKS
    if own.is_file():
        path = own
    elif any((Path(repo) / "tasks").glob("*.yaml")) or not (SHIPPED / OFFICIAL_TASKS).is_file():
        return None
    else:
        path = SHIPPED / OFFICIAL_TASKS
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MosrmError(f"{path}: unreadable ({exc})") from None
    tasks = raw.get("tasks") if isinstance(raw, dict) else None
    if raw.get("version") != 1 or not isinstance(tasks, list):
        raise MosrmError(f'{path}: expected {{"version": 1, "tasks": [task names]}}')
    return [str(t) for t in tasks]


def predictions_path(result_json: str | Path) -> Path:
    return Path(result_json).with_suffix(".predictions.parquet")


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
    names: set[str], submissions_root: str | Path | Sequence[Path] | None
) -> dict[str, tuple[str | None, str | None]]:
    """{submission: (fingerprint its folder has now, or None with why not)} for folders present
    (in the first of the roots that has it: a workspace's, then the package's).

    Uses `benchmark.scoring.models.current_fingerprint`, which hashes the folder without running its code;
    where the harness lacks it, or no submissions folder is given, nothing is checked.
    """
    from benchmark.results.failures import one_line
    from benchmark.scoring import models
    from benchmark.workspace import find_submission

    current = getattr(models, "current_fingerprint", None)
    if submissions_root is None or current is None:
        return {}
    out: dict[str, tuple[str | None, str | None]] = {}
    roots = (
        [Path(submissions_root)]
        if isinstance(submissions_root, str | Path)
        else [Path(r) for r in submissions_root]
    )
    for name in sorted(names):
        folder = find_submission(roots, name)
        if folder is None:
            continue  # results of a submission this workspace does not have: nothing to compare
        try:
            out[name] = (str(current(folder)), None)
        except (Exception, SystemExit) as exc:
            out[name] = (None, one_line(f"{type(exc).__name__}: {exc}", 300))
    return out


def _without_orders(table: Any) -> Any:
    """Predictions (a pyarrow Table) minus the presentation-order columns, which feed only the per-task judge
    diagnostics: results written before those columns existed lack them, and pooling old and new
    tables would leave a partly-null column that the metrics refuse."""
    from benchmark.data.tables import ORDER_COLUMNS

    return table.drop_columns([c for c in ORDER_COLUMNS if c in table.column_names])
