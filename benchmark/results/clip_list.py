"""The clips a predictions-only submission must score, with their audio on this machine
(`mosrm export-clips`).

Why: an author whose model cannot run here (an API, a closed checkpoint) scores the clips
elsewhere and submits `clip_id, score` (`scoring.predictions_file`). They need the exact clip ids
the pairs use and the audio the harness would feed a model: the 16 kHz mono WAV it resampled
once (absolute paths, so a script reads them from anywhere on this machine), plus each clip's
system and content for their own bookkeeping; no labels. One CSV, sorted by clip id; the score
column is theirs to add.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

from benchmark.errors import MosrmError

if TYPE_CHECKING:
    from benchmark.pairs.prepared import PreparedTask

COLUMNS = ("clip_id", "audio_path", "sample_rate", "system", "content", "split")


def export_clips(prepared: PreparedTask, out: str | Path, split: str | None = None) -> int:
    """Write the clips of `split`'s pairs (the task's eval split by default) to `out` (CSV);
    returns how many. Paths are absolute: the 16 kHz mono WAV the harness scores."""
    from benchmark.atomic import atomic_write_text
    from benchmark.data.audio_cache import CACHE_RATE

    split = split or prepared.task.spec.eval_split
    pairs = prepared.pairs(split)
    wanted = set(pairs.column("clip_a").to_pylist()) | set(pairs.column("clip_b").to_pylist())
    rows = {r["clip_id"]: r for r in prepared.clips.to_pylist() if r["clip_id"] in wanted}
    missing = sorted(wanted - set(rows))
    if missing:
        raise MosrmError(
            f"task '{prepared.task.name}': {len(missing)} clips of the {split} pairs are not in "
            f"its clip table (e.g. {missing[0]}); run `mosrm prepare {prepared.task.name}` again"
        )
    if prepared.audio_root is None:
        raise MosrmError(
            f"task '{prepared.task.name}' was prepared without audio (--labels-only): run "
            f"`mosrm prepare {prepared.task.name}` to resample it first"
        )
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for clip_id in sorted(rows):
        r = rows[clip_id]
        writer.writerow(
            [
                clip_id,
                str((prepared.audio_base / r["audio_path"]).resolve()),
                CACHE_RATE,
                r.get("system_id") or "",
                r.get("content_id") or "",
                split,
            ]
        )
    atomic_write_text(Path(out), buffer.getvalue())
    return len(rows)
