"""A task's standard pair files as this machine knows them: built here from the labels, or their
SHA-256 read from a lock `pair-files.lock.json` ({task: {"version": v, "splits": {split:
sha256}}}) beside the task YAMLs (the package's, committed, and a workspace's for its own tasks),
which `update_lock` rewrites for the tasks whose data the writer has.

Why its own module: `validate-results` checks a result's `pair_file_sha256` against these, and a
contributor without the licensed corpora still needs the check to mean something; the lock is
that meaning, written where the data is. Builds pairs from labels only (no audio is read) in a
scratch folder, never touching the user's prepared tasks; reads no results and scores nothing.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.errors import MosrmError

if TYPE_CHECKING:
    import pyarrow as pa

    from benchmark.data.tasks import Task
    from benchmark.pairs.prepare import PreparedTask


LOCK_NAME = "pair-files.lock.json"
"""The pair-file lock of a folder of tasks: the package's (`workspace.SHIPPED_TASKS`) for its
tasks, a workspace's `tasks/` for the workspace's own (so a published listening test can be
validated elsewhere too)."""


def lock_files(repo: Path) -> list[Path]:
    """The locks a workspace reads: the package's, then its own (which names only its tasks)."""
    from benchmark.workspace import SHIPPED_TASKS

    own = Path(repo) / "tasks" / LOCK_NAME
    shipped = SHIPPED_TASKS / LOCK_NAME
    return [shipped] if own.resolve() == shipped.resolve() else [shipped, own]


def read_locks(repo: Path) -> dict[str, Any]:
    """Every entry of `lock_files`; a task in both is the package's (a workspace task may not
    take a shipped task's name: `data.tasks.task_files`)."""
    out: dict[str, Any] = {}
    for path in reversed(lock_files(repo)):
        out.update(read_lock(path))
    return out


@dataclass
class _PairSource:
    """A task's pair files as known here: built (sha256 and table per split), or only the lock's
    hashes, or nothing (with why)."""

    sha256: dict[str, str] = field(default_factory=dict)
    tables: dict[str, Path] = field(default_factory=dict)
    from_lock: bool = False
    why_not: str | None = None
    prepared: PreparedTask | None = None  # clips and pair metadata, for the ceiling

    def pairs(self, split: str) -> pa.Table | None:
        import pyarrow.parquet as pq

        path = self.tables.get(split)
        return pq.read_table(path) if path is not None else None


def _data_root(task: Task, overrides: Mapping[str | None, str | Path]) -> Path | None:
    """Where the task's data is (as `mosrm evaluate` looks: override, own root, last prepared)."""
    from benchmark.pairs.prepare import last_data_root

    given = overrides.get(task.name, overrides.get(None))
    candidates = [task.data_root(given)]
    last = last_data_root(task) if given is None else None
    if last is not None and last not in candidates:
        candidates.append(last)
    for root in candidates:
        try:
            if task.available(root):
                return root
        except MosrmError:
            continue
    return None


def build_pair_files(
    task: Task, data_root: Path, scratch: Path, echo: Callable[[str], None] | None = None
) -> PreparedTask:
    """The task's standard pair files (`pair_sha256`, `pair_files`, with the clip table and pair
    metadata): the prepared folder's when it is current (`benchmark.pairs.reuse`), else built from
    labels alone in `scratch` (pairs depend on labels only, so no audio is probed or resampled and
    the user's prepared folder is untouched)."""
    from benchmark.pairs.prepare import prepare
    from benchmark.pairs.reuse import load_current
    from benchmark.paths import prepared_dir

    for labels_only in (False, True):
        found = load_current(
            task,
            data_root,
            prepared_dir(task.name),
            labels_only=labels_only,
            resample=True,
            overrides={},
        )
        if found is not None:
            return found
    if echo is not None:
        echo(f"building the pair files of '{task.name}' from its labels …")
    return prepare(task, data_root, labels_only=True, out_dir=scratch / task.name)


def read_lock(path: Path) -> dict[str, Any]:
    """The lock file's entries ({} when absent); a malformed one is an error naming the file."""
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MosrmError(f"{path}: unreadable pair-file lock ({exc})") from None
    if not isinstance(raw, dict):
        raise MosrmError(f"{path}: expected a JSON object {{task: {{version, splits}}}}")
    for task, entry in raw.items():
        ok = (
            isinstance(entry, dict)
            and set(entry) == {"version", "splits"}
            and type(entry["version"]) is int
            and isinstance(entry["splits"], dict)
            and all(isinstance(v, str) for v in entry["splits"].values())
        )
        if not ok:
            raise MosrmError(
                f'{path}: entry \'{task}\' must be {{"version": int, "splits": {{split: sha256}}}}'
            )
    return raw


def lock_text(entries: Mapping[str, Any]) -> str:
    """The lock file's text: sorted keys, two-space indent, a final newline (deterministic)."""
    return json.dumps(dict(entries), indent=2, sort_keys=True) + "\n"


class _Pairs:
    """Each task's pair files, found once per run (building one may take a while)."""

    def __init__(
        self,
        tasks: Mapping[str, Task],
        lock: Mapping[str, Any],
        lock_path: Path,
        data_roots: Mapping[str | None, str | Path],
        scratch: Path,
        echo: Callable[[str], None] | None,
    ) -> None:
        self.tasks, self.lock, self.lock_path = tasks, lock, lock_path
        self.data_roots, self.scratch, self.echo = data_roots, scratch, echo
        self.found: dict[str, _PairSource] = {}

    def source(self, task: Task) -> _PairSource:
        if task.name not in self.found:
            self.found[task.name] = self._find(task)
        return self.found[task.name]

    def _find(self, task: Task) -> _PairSource:
        root = _data_root(task, self.data_roots)
        built_error = None
        if root is not None:
            try:
                built = build_pair_files(task, root, self.scratch, self.echo)
                return _PairSource(
                    sha256=dict(built.pair_sha256), tables=dict(built.pair_files), prepared=built
                )
            except MosrmError as exc:
                built_error = f"building its pair files failed: {exc}"
        entry = self.lock.get(task.name)
        if entry is not None and entry["version"] == task.spec.version:
            return _PairSource(sha256=dict(entry["splits"]), from_lock=True)
        lock_says = (
            f"{self.lock_path.name} has it at version {entry['version']}"
            if entry is not None
            else f"no entry in {self.lock_path.name}"
        )
        data = built_error or f"no '{task.name}' data here"
        return _PairSource(why_not=f"{data}, {lock_says}")


def update_lock(
    repo: Path,
    data_roots: Mapping[str | None, str | Path] | None = None,
    echo: Callable[[str], None] | None = None,
    *,
    shipped: bool = False,
) -> tuple[list[Path], list[str]]:
    """(Re)write the lock entries of the workspace's own tasks whose data is present here, in its
    `tasks/` lock (or with `shipped`, of the package's tasks, in the package's lock: maintainers,
    in a checkout); the other entries are kept as they are. Returns the locks written and the
    tasks."""
    from benchmark.atomic import atomic_write_text
    from benchmark.data.tasks import load_task_file, task_files
    from benchmark.workspace import SHIPPED_TASKS

    by_lock: dict[Path, dict[str, Any]] = {}
    written = []
    with tempfile.TemporaryDirectory(prefix="mosrm-lock-") as scratch:
        for name, yaml_path in task_files(repo).items():
            if (yaml_path.parent.resolve() == SHIPPED_TASKS.resolve()) != shipped:
                continue
            task = load_task_file(yaml_path)
            root = _data_root(task, data_roots or {})
            if root is None:
                if echo is not None:
                    echo(f"skip {name}: no data here (its entry, if any, is kept)")
                continue
            path = yaml_path.parent / LOCK_NAME
            entries = by_lock.setdefault(path, read_lock(path))
            sha = dict(build_pair_files(task, root, Path(scratch), echo).pair_sha256)
            entries[name] = {"version": task.spec.version, "splits": dict(sorted(sha.items()))}
            written.append(name)
    for path, entries in by_lock.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, lock_text(entries))
    return sorted(by_lock), written
