"""The re-score ledger: which results files the board's builder re-scored, when, and on what.

Why its own module: "verified" on the board must not be something a submitter can write. The
ledger (`verified.json` beside the results folder: `leaderboard/verified.json`, committed, for
the official board) is keyed by the SHA-256 of a results file's bytes,
so an entry covers exactly those bytes (an edited file is a new key, unverified again), and it is
written only by `mosrm validate-results --rescore` after the submission, run again on a secret
sample of its pairs, gave the submitted scores (`results.provenance`). A results PR that touches
the ledger is visible in review as such. Nothing here re-scores or reads a results file's claims.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmark.errors import DataError

LEDGER_NAME = "verified.json"


def ledger_path(results_root: str | Path) -> Path:
    """The ledger of a results folder: beside it (`leaderboard/results` -> `leaderboard/verified.json`,
    a workspace's `results` -> its `verified.json`)."""
    return Path(results_root).resolve().parent / LEDGER_NAME


VERSION = 1


def read_ledger(path: Path) -> dict[str, dict[str, Any]]:
    """{results sha256: entry}; {} when the file is absent; a malformed ledger names the file."""
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable re-score ledger ({exc})") from None
    entries = raw.get("verified") if isinstance(raw, dict) else None
    if raw.get("version") != VERSION or not isinstance(entries, dict):
        raise DataError(f'{path}: expected {{"version": {VERSION}, "verified": {{sha256: entry}}}}')
    return {str(k): dict(v) for k, v in entries.items()}


def write_ledger(path: Path, entries: dict[str, dict[str, Any]]) -> None:
    """Sorted keys, two-space indent, a final newline: the same entries give the same bytes."""
    from benchmark.atomic import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"version": VERSION, "verified": entries}, indent=2, sort_keys=True)
    atomic_write_text(path, text + "\n")


def entry(
    submission: str, task: str, split: str, sampled: int, max_abs_diff: float
) -> dict[str, Any]:
    """What a re-score records: what and how much was re-run, when, on which machine and code."""
    from datetime import UTC, datetime

    from benchmark import HARNESS_VERSION
    from benchmark.results.hardware import describe_machine

    machine = describe_machine()
    return {
        "submission": submission,
        "task": task,
        "split": split,
        "rescored_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "pairs_rescored": sampled,
        "max_abs_diff": float(f"{max_abs_diff:.3g}"),
        "hardware": f"{machine['cpu']}, {machine['logical_cores']} cores, torch {machine['torch']}",
        "harness_version": HARNESS_VERSION,
    }
