"""Failure records: `<results>/<submission>/<task>.failed.json`, one per submission × task.

A submission that fails must not stop the others, and must not keep its last good numbers on the
board as if they were current. The record says why it failed (one line) at which stage; the board
reads it, and a later successful evaluation of the same task removes it. So a record on disk always
means the latest attempt failed: mtimes are not trusted (a git checkout resets them).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmark.atomic import atomic_write_text

STAGES = ("load", "score", "write")
SUFFIX = ".failed.json"
MAX_REASON = 2000


def failure_path(results_root: str | Path, submission: str, task: str) -> Path:
    return Path(results_root) / submission / f"{task}{SUFFIX}"


def one_line(text: object, limit: int = MAX_REASON) -> str:
    """`text` on one line, whitespace collapsed, cut to `limit` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def record_failure(
    results_root: str | Path,
    *,
    submission: str,
    folder: str,
    task: str,
    stage: str,
    reason: str,
    fingerprint: str | None,
) -> Path:
    """Write (atomically, replacing any older one) the failure record and return its path."""
    from benchmark import HARNESS_VERSION

    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    path = failure_path(results_root, submission, task)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "submission": submission,
        "folder": folder,
        "task": task,
        "fingerprint": fingerprint,
        "stage": stage,
        "reason": one_line(reason),
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "harness_version": HARNESS_VERSION,
    }
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return path


def clear_failure(results_root: str | Path, submission: str, task: str) -> None:
    failure_path(results_root, submission, task).unlink(missing_ok=True)


def load_failures(results_root: str | Path) -> list[dict[str, Any]]:
    """Every failure record under `results_root`, sorted by path.

    An unreadable record still counts as a failure (its presence is what matters); the submission
    and task then come from its path.
    """
    out = []
    for path in sorted(Path(results_root).glob(f"*/*{SUFFIX}")):
        task = path.name[: -len(SUFFIX)]
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            record = {"reason": f"unreadable failure record ({one_line(exc, 200)})"}
        # the path is authoritative: a record copied under another name must not hide elsewhere
        record = {**record, "submission": path.parent.name, "task": task, "_path": str(path)}
        record["reason"] = one_line(record.get("reason") or "no reason recorded")
        out.append(record)
    return out
