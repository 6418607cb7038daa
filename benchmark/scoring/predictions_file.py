"""Predictions-only submissions: scores computed elsewhere, checked against the task's pair index.

Some models cannot run here (a 7B audio LLM behind an API, a closed checkpoint), and some authors
would rather not ship code. They submit per-clip scores (`clip_id, score`) or per-pair
probabilities (`pair_id, p_a` = P(clip A is better)) as Parquet or CSV. No code runs; the file
becomes the same predictions table the scoring loop would produce, so the same scores give
byte-identical results either way. Every id problem is listed (missing, unknown, duplicated),
never silently dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmark.errors import SubmissionError

if TYPE_CHECKING:
    import pyarrow as pa

    from benchmark.scoring.models import Submission

LAYOUTS = {"clip": ("clip_id", "score"), "pair": ("pair_id", "p_a")}


def _examples(ids: list[str], limit: int = 5) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f" (+{len(ids) - limit} more)" if len(ids) > limit else "")


def read_file(path: Path) -> tuple[str, np.ndarray, np.ndarray]:
    """(layout, ids, float64 values) of a predictions file; one-line errors naming the file."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        if path.suffix == ".csv":
            table = pacsv.read_csv(
                path,
                convert_options=pacsv.ConvertOptions(
                    column_types={"clip_id": pa.string(), "pair_id": pa.string()}
                ),
            )
        else:
            table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise SubmissionError(f"{path}: unreadable predictions file ({exc})") from None
    names = set(table.column_names)
    layout = next((k for k, cols in LAYOUTS.items() if set(cols) <= names), None)
    if layout is None:
        want = " or ".join(f"({', '.join(c)})" for c in LAYOUTS.values())
        raise SubmissionError(
            f"{path}: expected columns {want}; found {', '.join(table.column_names)}"
        )
    id_col, value_col = LAYOUTS[layout]
    ids = table.column(id_col)
    if ids.null_count:
        raise SubmissionError(f"{path}: column '{id_col}' has {ids.null_count} empty ids")
    try:
        values = table.column(value_col).cast(pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SubmissionError(f"{path}: column '{value_col}' is not numeric ({exc})") from None
    id_list = np.asarray(ids.cast(pa.string()).to_pylist(), dtype=object)
    bad = ~np.isfinite(values)
    if bad.any():
        raise SubmissionError(
            f"{path}: column '{value_col}' has {int(bad.sum())} missing or non-finite values "
            f"(ids {_examples(sorted(id_list[bad].tolist()))})"
        )
    if layout == "pair" and ((values < 0) | (values > 1)).any():
        out = sorted(id_list[(values < 0) | (values > 1)].tolist())
        raise SubmissionError(f"{path}: column 'p_a' must be in [0, 1] (ids {_examples(out)})")
    uniq, counts = np.unique(id_list.astype(str), return_counts=True)
    if (counts > 1).any():
        raise SubmissionError(
            f"{path}: duplicate {id_col}s: {_examples(uniq[counts > 1].tolist())}"
        )
    return layout, id_list, values


def predictions_from_file(
    submission: Submission, task: str, pairs: pa.Table, clips: pa.Table
) -> pa.Table:
    """`pairs` plus `score_a`/`score_b` from the submission's file for `task` (module doc)."""
    files = submission.spec.predictions
    if task not in files:
        raise SubmissionError(
            f"{submission.folder}: no predictions for task '{task}' (it has: "
            f"{', '.join(sorted(files)) or 'none'})"
        )
    path = submission.folder / files[task]
    layout, ids, values = read_file(path)
    lookup = dict(zip(ids.tolist(), values.tolist(), strict=True))
    if layout == "clip":
        known = set(clips.column("clip_id").to_pylist())
        a = pairs.column("clip_a").to_pylist()
        b = pairs.column("clip_b").to_pylist()
        needed = set(a) | set(b)
        missing = sorted(needed - set(lookup))
        unknown = sorted(set(lookup) - known)
    else:
        pid = pairs.column("pair_id").to_pylist()
        missing = sorted(set(pid) - set(lookup))
        unknown = sorted(set(lookup) - set(pid))
    if missing or unknown:
        what = "clips" if layout == "clip" else "pairs"
        parts = []
        if missing:
            parts.append(f"{len(missing)} {what} of the pair index missing ({_examples(missing)})")
        if unknown:
            parts.append(f"{len(unknown)} ids not in task '{task}' ({_examples(unknown)})")
        raise SubmissionError(f"{path}: {'; '.join(parts)}")
    if layout == "clip":
        score_a = np.array([lookup[c] for c in a], dtype=np.float64)
        score_b = np.array([lookup[c] for c in b], dtype=np.float64)
    else:
        score_a = np.array([lookup[p] for p in pid], dtype=np.float64)
        score_b = 1.0 - score_a
    from benchmark.scoring.predictions import with_scores

    return with_scores(pairs, score_a, score_b)


def check_folder(submission: Submission, tasks: dict[str, Any]) -> list[str]:
    """`mosrm validate` on a predictions folder: each file read and checked (layout, finite
    values, unique ids); where its task is prepared here, checked against the pairs `evaluate`
    would score (every id problem listed, as there). One line per task; the first problem raises
    a `SubmissionError` naming the file."""
    from benchmark.pairs.prepare import last_data_root, prepare
    from benchmark.paths import prepared_dir

    lines = []
    for name, file in sorted(submission.spec.predictions.items()):
        path = submission.folder / file
        layout, ids, _ = read_file(path)
        what = f"{ids.size} {'clip scores' if layout == 'clip' else 'pair probabilities'}"
        task = tasks.get(name)
        if task is None:
            lines.append(f"{name}: {what} in {file}; no task of that name here (not checked)")
            continue
        if not (prepared_dir(name) / "manifest.json").is_file():
            lines.append(
                f"{name}: {what} in {file}; task not prepared here, ids not checked "
                f"(`mosrm prepare {name}` first)"
            )
            continue
        root = task.data_root()
        if not task.available(root):
            root = last_data_root(task) or root
        ready = prepare(task, root, reuse=True, progress=False)
        split = task.spec.eval_split
        pairs = ready.pairs(split)
        predictions_from_file(submission, name, pairs, ready.clips)  # raises on any id problem
        lines.append(f"{name}: {what} in {file} cover all {pairs.num_rows} {split} pairs")
    return lines
