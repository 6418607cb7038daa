"""Where a task's data is, and how to get it when it is not: one answer for `mosrm run`,
`mosrm train --plan`, `make paper`, the API and the templates.

The data root is the one given, else the task's own root, else the root it was last prepared
from (so `mosrm prepare T --data-root D` once is enough for later runs). A missing task is one
line naming where it looked and the commands that get its data, never a traceback later.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from benchmark.data.tasks import Task


def find_data_root(task: Task, data_root: str | Path | None) -> tuple[Path | None, list[Path]]:
    """(the root `task`'s data is found at, or None; the roots looked at): `data_root` when given,
    else the task's own root, then the root it was last prepared from."""
    from benchmark.pairs.prepare import last_data_root

    candidates = [task.data_root(data_root)]
    last = last_data_root(task) if data_root is None else None
    if last is not None and last not in candidates:
        candidates.append(last)
    return next((r for r in candidates if task.available(r)), None), candidates


def fetch_hint(task: Task, looked: Path) -> str:
    """How to get a missing task's data into `looked`, as one clause: the corpus's `mosrm
    download` (saying when part of it is manual), then `mosrm prepare`."""
    from benchmark.data.download import CORPORA
    from benchmark.data.download.sources import get_recipe
    from benchmark.paths import default_data_root

    corpus = task.corpus
    prepare = f"`mosrm prepare {task.name} --data-root {looked}`"
    if corpus in CORPORA:
        where = "" if looked == default_data_root(corpus) else f" --data-root {looked}"
        download = f"`mosrm download {corpus}{where}`"
        if get_recipe(corpus).manual:
            download += f" (has manual steps: `mosrm download {corpus} --instructions`)"
        return f"get it: {download}, then {prepare}"
    if task.spec.synthetic:
        return (
            "it is generated on first use, but the tools its generator needs are not installed "
            f"(see the task's data card), then {prepare}"
        )
    return f"'{corpus}' has no downloader: put the corpus there, then {prepare}"
