"""Prepare a task: read its corpus, validate the clip table, build the seeded pair sets, and write
them with a manifest, or load them back when nothing they were built from has changed
(`benchmark.pairs.reuse`).

Runs no model and computes no metric: everything here is a function of the task YAML and the
corpus files, written deterministically (same inputs, byte-identical pair files).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark import HARNESS_VERSION
from benchmark.atomic import atomic_write_text
from benchmark.errors import DataError
from benchmark.hashing import sha256_file
from benchmark.pairs.prepared import CANONICAL_RANGE, PreparedTask

if TYPE_CHECKING:
    import pyarrow as pa

    from benchmark.data.tasks import Task

__all__ = ["CANONICAL_RANGE", "PreparedTask", "last_data_root", "limit_pairs", "prepare"]

LIMIT_LABEL = "mosrm.limit"
"""Mixed with the task's seed to draw a quick run's subset, so it is independent of the pair draw."""


def rescale_to_canonical(clips: pa.Table, score_range: tuple[float, float]) -> pa.Table:
    """Map MOS linearly from the task's declared range onto 1–5.

    The fixed ΔMOS subsets (< 0.2, ≤ 0.5, > 1.5) are defined on the 1–5 ACR scale; a user CSV rated
    0–100 would otherwise put every pair in the "easy" subset. The individual `ratings` are mapped
    the same way, so their mean stays the MOS.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    lo, hi = score_range
    if (lo, hi) == CANONICAL_RANGE:
        return clips
    scale = (CANONICAL_RANGE[1] - CANONICAL_RANGE[0]) / (hi - lo)
    mos = pc.add(pc.multiply(pc.subtract(clips.column("mos"), lo), scale), CANONICAL_RANGE[0])
    std = pc.multiply(clips.column("rating_std"), scale)
    clips = clips.set_column(clips.schema.get_field_index("mos"), "mos", mos)
    clips = clips.set_column(
        clips.schema.get_field_index("rating_std"), "rating_std", std.cast(pa.float64())
    )
    if "ratings" not in clips.column_names:
        return clips
    ratings = clips.column("ratings")
    rescaled = [_rescale_lists(chunk, lo, scale) for chunk in ratings.chunks]
    return clips.set_column(
        clips.schema.get_field_index("ratings"),
        "ratings",
        pa.chunked_array(rescaled, type=ratings.type),
    )


def _rescale_lists(lists: pa.ListArray, lo: float, scale: float) -> pa.ListArray:
    """`(r - lo) * scale + 1` for every rating in a list column, null lists kept null.

    The offsets are rebuilt from the list lengths: a sliced chunk's own offsets do not start at
    0, and Arrow cannot combine such offsets with a null mask.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False)
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    values = pc.add(pc.multiply(pc.subtract(pc.list_flatten(lists), lo), scale), CANONICAL_RANGE[0])
    out = pa.ListArray.from_arrays(offsets, values.cast(pa.float64()), mask=lists.is_null())
    return out.cast(lists.type)  # keeps the item field's name


def probe_audio(clips: pa.Table, data_root: Path) -> pa.Table:
    """Check every clip's audio exists and is non-empty; fill sample_rate and duration.

    Missing files are all listed in one error (a partial corpus is a user mistake to fix, not to
    paper over). Decoding problems inside the audio (NaN samples) surface at scoring time.
    """
    import pyarrow as pa
    import soundfile as sf

    from benchmark.data.audio import resolve_audio_path

    rates: list[int] = []
    durations: list[float] = []
    missing: list[str] = []
    for rel in clips.column("audio_path").to_pylist():
        path = resolve_audio_path(data_root, rel)
        if not path.is_file():
            missing.append(str(path))
            rates.append(0)
            durations.append(0.0)
            continue
        try:
            info = sf.info(str(path))
        except Exception as exc:  # soundfile raises its own LibsndfileError / RuntimeError
            raise DataError(f"{path}: unreadable audio ({exc})") from None
        if info.frames <= 0:
            raise DataError(f"{path}: empty audio (0 samples)")
        rates.append(int(info.samplerate))
        durations.append(info.frames / info.samplerate)
    if missing:
        shown = "\n  ".join(missing[:5])
        more = f"\n  … and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise DataError(f"{len(missing)} audio file(s) missing under {data_root}:\n  {shown}{more}")
    clips = clips.set_column(
        clips.schema.get_field_index("sample_rate"), "sample_rate", pa.array(rates, pa.int32())
    )
    return clips.set_column(
        clips.schema.get_field_index("duration"), "duration", pa.array(durations, pa.float64())
    )


def merge_counts(
    pairs: Mapping[str, Mapping[Any, Any]], overrides: dict[str, dict[str, Any]] | None
) -> dict[str, dict[str, Any]]:
    """The task's pair counts with per (split, relation) overrides applied on top."""
    merged = {split: dict(per_rel) for split, per_rel in pairs.items()}
    for split, per_rel in (overrides or {}).items():
        merged.setdefault(split, {}).update(per_rel)
    return merged


def prepare(
    task: Task,
    data_root: str | Path | None = None,
    *,
    labels_only: bool = False,
    out_dir: str | Path | None = None,
    counts: dict[str, dict[str, Any]] | None = None,
    resample: bool = True,
    workers: int | None = None,
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
    reuse: bool = False,
) -> PreparedTask:
    """Read → validate → pairs → (probe and resample to 16 kHz once), all written to the task folder.

    `counts` overrides the task's pair counts per split and relation (e.g. `{"test": {"cross":
    "all"}}` for the full pool); the overrides are recorded in the pair files' metadata and the
    manifest, so results on non-standard pairs are recognisable. `labels_only` builds the pair
    index from metadata alone (no audio needed). Clips the reader left out are in `skips`.

    With `reuse`, a folder whose manifest still matches every input and whose files are intact is
    loaded instead of rebuilt (`benchmark.pairs.reuse`). Prepares of one task hold a lock across
    processes (they share the audio cache), so a second process waits, then reuses the first's.
    Nothing is written until the pairs are built, and a folder this call created is removed if
    writing fails, so a refused pair set leaves no half-written folder behind.
    """
    from benchmark.atomic import file_lock
    from benchmark.paths import prepared_dir

    spec = task.spec
    root = task.data_root(data_root)
    folder = Path(out_dir) if out_dir is not None else prepared_dir(spec.name)
    overrides = {s: dict(r) for s, r in (counts or {}).items()}
    with file_lock(prepared_dir(spec.name).with_name(f".{spec.name}.lock")):
        if reuse:
            from benchmark.pairs.reuse import load_current

            found = load_current(
                task,
                root,
                folder,
                labels_only=labels_only,
                resample=resample,
                overrides=overrides,
            )
            if found is not None:
                if echo:
                    for skip in found.skips:
                        echo(f"  {skip.describe()}")
                    echo(f"  up to date in {folder} (inputs unchanged)")
                return found
        return _build(
            task,
            root,
            folder,
            labels_only=labels_only,
            overrides=overrides,
            resample=resample,
            workers=workers,
            progress=progress,
            echo=echo,
        )


def _build(
    task: Task,
    root: Path,
    folder: Path,
    *,
    labels_only: bool,
    overrides: dict[str, dict[str, Any]],
    resample: bool,
    workers: int | None,
    progress: bool,
    echo: Callable[[str], None] | None,
) -> PreparedTask:
    import contextlib
    import shutil

    from benchmark.data.corpora._native import table_skips
    from benchmark.data.tables import validate_clips, write_parquet
    from benchmark.pairs.build import build_pair_sets
    from benchmark.pairs.reuse import cache_signature, data_signature, external_audio, inputs

    spec = task.spec
    data_before = data_signature(task, root, folder)
    raw = task.reader().read(root, task.reader_options(), labels_only=labels_only)
    skips = table_skips(raw)
    if echo:
        for skip in skips:
            echo(f"  {skip.describe()}")
    clips = validate_clips(raw, spec.score_range, source=task.path or spec.name)
    clips = rescale_to_canonical(clips, spec.score_range)
    # the pairs depend on labels only: build them first, so a refused pool costs no resampling
    built = build_pair_sets(
        clips,
        task=spec.name,
        relations=spec.relations,
        counts=merge_counts(spec.pairs, overrides),
        seed=spec.seed,
        min_delta=spec.min_delta,
        bins=spec.bins,
        balance_subsets=spec.balance_subsets,
        workdir=folder.parent,  # whole pools spill to bucket files on the prepared folder's disk
        reliability=spec.label_reliability,
    )
    # spilled bucket files live until the pair files are written, and are removed on any exit
    with contextlib.ExitStack() as spills:
        for rows, _ in built.values():
            spills.callback(rows.close)
        # what the next prepare compares against (not reusable if the corpus changed while read)
        key = inputs(
            task,
            root,
            folder,
            labels_only=labels_only,
            resample=resample,
            overrides=overrides,
            external=external_audio(clips, root),
            data_before=data_before,
        )
        audio_root: Path | None = None
        cache_record: dict[str, Any] | None = None
        if not labels_only:
            clips = probe_audio(clips, root)
            if resample:
                from benchmark.data.audio_cache import CACHE_RATE, build_cache, manifest_sha256
                from benchmark.paths import audio_cache_dir

                audio_root = audio_cache_dir(spec.name)
                clips = build_cache(
                    clips,
                    root,
                    audio_root,
                    rate=CACHE_RATE,
                    workers=workers,
                    progress=progress,
                    echo=echo,
                )
                cache_record = {
                    "folder": str(audio_root),
                    "manifest_sha256": manifest_sha256(audio_root),
                    "files": cache_signature(audio_root),
                }
        prepared = PreparedTask(
            task=task,
            data_root=root,
            folder=folder,
            clips=clips,
            skips=skips,
            labels_only=labels_only,
            audio_root=audio_root,
        )
        created = not folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
        try:
            write_parquet(
                clips, folder / "clips.parquet", {"task": spec.name, "version": spec.version}
            )
            for split, (pairs, meta) in sorted(built.items()):
                meta = {**meta, "task_version": spec.version}
                if overrides.get(split):
                    meta["count_overrides"] = overrides[split]
                path = folder / f"pairs-{split}.parquet"
                prepared.pair_sha256[split] = pairs.write(path, meta)
                prepared.pair_files[split] = path
                # as a reused folder gives it back: through JSON (tuples become lists)
                prepared.pair_meta[split] = json.loads(json.dumps(meta))
            manifest = {
                "task": spec.name,
                "task_version": spec.version,
                "harness_version": HARNESS_VERSION,
                "data_root": str(root),
                "labels_only": labels_only,
                "audio_cache": cache_record,
                "n_clips": clips.num_rows,
                "skipped": [
                    {
                        "reason": k.reason,
                        "count": k.count,
                        "examples": list(k.examples),
                        "kept": k.kept,
                    }
                    for k in skips
                ],
                "count_overrides": overrides or None,
                "clips_sha256": sha256_file(folder / "clips.parquet"),
                "pair_files": {s: p.name for s, p in prepared.pair_files.items()},
                "pair_sha256": prepared.pair_sha256,
                "pair_meta": prepared.pair_meta,
                "inputs": key,
            }
            text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
            atomic_write_text(folder / "manifest.json", text)
        except BaseException:
            if created:
                shutil.rmtree(folder, ignore_errors=True)
            raise
        return prepared


def last_data_root(task: Task) -> Path | None:
    """The data root the task was last prepared from (from its manifest), if any; else the one a
    task of the same corpus (`data.corpus`: nisqa for nisqa_noi) was last prepared from."""
    from benchmark.paths import prepared_dir

    for name in dict.fromkeys((task.name, task.corpus)):
        try:
            manifest = json.loads((prepared_dir(name) / "manifest.json").read_text())
        except (OSError, ValueError):
            continue
        root = manifest.get("data_root")
        if isinstance(root, str):
            return Path(root)
    return None


def limit_pairs(
    pairs: pa.Table, limit: int, *, seed: int, task: str, split: str
) -> tuple[pa.Table, dict[str, Any]]:
    """A seeded subset of `limit` rows of `pairs` (all of them if fewer), kept in pair-file order,
    and the results' `partial` record describing it.

    The rows are the first `limit` of one seeded permutation, so the same `limit` gives the same
    subset and a larger one contains it (its scores are already cached). The record's
    `pair_ids_sha256` (over the subset's pair ids, in order) identifies the subset exactly.
    """
    import hashlib

    import numpy as np
    import pyarrow as pa

    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be an integer >= 1, got {limit!r}")
    total = pairs.num_rows
    material = json.dumps([LIMIT_LABEL, int(seed), task, split]).encode()
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(material).digest()[:16], "big"))
    rows = np.sort(rng.permutation(total)[: min(limit, total)])
    subset = pairs.take(pa.array(rows, type=pa.int64()))
    ids = [str(i) for i in subset.column("pair_id").to_pylist()]
    record = {
        "limit": limit,
        "of": total,
        "n": subset.num_rows,
        "seed": int(seed),
        "seed_label": LIMIT_LABEL,
        "pair_ids_sha256": hashlib.sha256(json.dumps(ids).encode()).hexdigest(),
    }
    return subset, record
