"""Where a user's own things live (their submissions, tasks and results) and where the package's are.

Why: a researcher installs the package (`pip install`) and works in a folder of their own; the
package's tasks, shortcut and zero-shot submissions and reference models ship inside it
(`SHIPPED`, `baselines/reference`) and are never written by a run. The user's **workspace** holds

    submissions/<name>/submission.yaml   their models (`mosrm init` writes one)
    tasks/<name>.yaml                    their own listening tests (CSV tasks)
    results/<submission>/<task>.json     what `mosrm evaluate` / `run` write (the board reads)
    board/                               what `mosrm board` writes

and is, in this order: `--workspace DIR` (or its older name `--repo`), `$MOSRM_WORKSPACE` (or
`$MOSRM_REPO`), the current folder if it has `submissions/` or `tasks/`, else `~/mosrm`. The
checkout's tracked `leaderboard/` (the official board) is written only when a maintainer names it
(`make run` passes `--results leaderboard/results`).

A name means the workspace's folder or task first, then the package's: a user's copy of a shipped
submission replaces it (trust never follows a name: `scoring.trust`); a user's task may not take a
shipped task's name (results and the board are keyed by task name).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SHIPPED = Path(__file__).resolve().parent / "shipped"
"""The package's own tasks (`tasks/`, with the pair-file lock), submissions (`submissions/`) and
the list of tasks the official board ranks (`official-tasks.json`)."""

SHIPPED_TASKS = SHIPPED / "tasks"
SHIPPED_SUBMISSIONS = SHIPPED / "submissions"


@dataclass(frozen=True)
class Workspace:
    """A user's folder (module doc); nothing in it needs to exist yet."""

    root: Path

    @property
    def tasks(self) -> Path:
        return self.root / "tasks"

    @property
    def submissions(self) -> Path:
        return self.root / "submissions"

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def board(self) -> Path:
        return self.root / "board"


def workspace(explicit: str | Path | None = None) -> Workspace:
    """The workspace a command works in (module doc for the order)."""
    if explicit is not None:
        return Workspace(Path(explicit).expanduser().resolve())
    for key in ("MOSRM_WORKSPACE", "MOSRM_REPO"):
        env = os.environ.get(key)
        if env:
            return Workspace(Path(env).expanduser().resolve())
    here = Path.cwd().resolve()
    if (here / "submissions").is_dir() or (here / "tasks").is_dir():
        return Workspace(here)
    return Workspace((Path.home() / "mosrm").resolve())


def submission_roots(root: str | Path) -> list[Path]:
    """Where a workspace's submissions are looked up by name: its own, then the package's."""
    own = Path(root) / "submissions"
    if own.resolve() == SHIPPED_SUBMISSIONS.resolve():
        return [SHIPPED_SUBMISSIONS]
    return [own, SHIPPED_SUBMISSIONS]


def find_submission(roots: Sequence[Path], name: str) -> Path | None:
    """`<root>/<name>` of the first of `roots` holding a submission of that name, else None."""
    return next((r / name for r in roots if (r / name / "submission.yaml").is_file()), None)
