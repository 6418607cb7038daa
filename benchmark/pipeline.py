"""The flow in one place: read → validate → pairs (prepare), then score → metrics → results (evaluate).

Everything a run produces is derived from the task YAML, the corpus and the submission, and written
deterministically: the same inputs give byte-identical pair files, predictions and results JSON.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark import HARNESS_VERSION
from benchmark.atomic import atomic_write_text
from benchmark.errors import DataError, MosrmError
from benchmark.hashing import sha256_file

if TYPE_CHECKING:
    import pyarrow as pa

    from benchmark.corpora._native import Skip
    from benchmark.models import Submission
    from benchmark.results import RunRecord
    from benchmark.scoring import CacheCounts, ScoringConfig
    from benchmark.tasks import Task

CANONICAL_RANGE = (1.0, 5.0)

PARTIAL_SUFFIX = ".partial.json"
"""A quick run (`evaluate(limit=N)`) writes `<task>.partial.json` (+ `.partial.predictions.parquet`,
`.partial.triplets.parquet`), never `<task>.json`: a smoke check cannot overwrite a full result,
and the board skips these names."""
LIMIT_LABEL = "mosrm.limit"
"""Mixed with the task's seed to draw a quick run's subset, so it is independent of the pair draw."""


@dataclass
class PreparedTask:
    """A task whose clip table and pair files are on disk."""

    task: Task
    data_root: Path
    folder: Path
    clips: pa.Table
    pair_files: dict[str, Path] = field(default_factory=dict)
    pair_sha256: dict[str, str] = field(default_factory=dict)
    pair_meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    skips: list[Skip] = field(default_factory=list)
    labels_only: bool = False
    audio_root: Path | None = None
    """Where `clips.audio_path` resolves: the 16 kHz cache folder once resampled, else data_root."""

    @property
    def audio_base(self) -> Path:
        return self.audio_root if self.audio_root is not None else self.data_root

    def pairs(self, split: str) -> pa.Table:
        from benchmark.tables import read_parquet

        if split not in self.pair_files:
            raise MosrmError(
                f"task '{self.task.name}' has no '{split}' pairs (splits: {', '.join(self.pair_files)})"
            )
        return read_parquet(self.pair_files[split])


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

    from benchmark.audio import resolve_audio_path

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
    pairs: dict[str, dict[str, Any]], overrides: dict[str, dict[str, Any]] | None
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
    loaded instead of rebuilt (`benchmark.reuse`). Prepares of one task hold a lock across
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
            from benchmark.reuse import load_current

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

    from benchmark.corpora._native import table_skips
    from benchmark.pairs import build_pair_sets
    from benchmark.reuse import cache_signature, data_signature, external_audio, inputs
    from benchmark.tables import validate_clips, write_parquet

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
                from benchmark.audio_cache import CACHE_RATE, build_cache, manifest_sha256
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


def _zero_shot(submission: Submission, task: Task) -> bool:
    """A model is zero-shot on a task unless its declared training data names the task/corpus."""
    names = {task.name}
    return not any(entry.split(":", 1)[0] in names for entry in submission.spec.training_data)


def evaluate(
    submission: Submission,
    prepared: PreparedTask,
    *,
    results_root: str | Path,
    config: ScoringConfig | None = None,
    split: str | None = None,
    on_stage: Callable[[str], None] | None = None,
    triplets: int | None = None,
    limit: int | None = None,
    min_reliability: float | None = None,
) -> dict[str, Any]:
    """Score the task's evaluation split and write `<results_root>/<submission>/<task>.json`.

    The per-pair predictions are written beside it as `<task>.predictions.parquet` so that paired
    comparisons and the board can be recomputed without rescoring. A success on the evaluation split
    removes the task's failure record (`benchmark.failures`). `on_stage` is told "score", then
    "write", so a caller can say where a failure happened.

    The results JSON is deterministic; how the run went (wall time, throughput, score-cache use,
    device, hardware) goes beside it into `<task>.run.json` (`results.RunRecord`). A rerun that
    reproduces the same JSON leaves both files as they are (`write_results`).

    The results' `diagnostics` block (`benchmark.diagnostics`) holds the judge diagnostics; for a
    pairwise judge they need its answers on a seeded triplet sample of the split (`triplets` per
    task, default `$MOSRM_TRIPLETS` or 500, `benchmark.triplets`), judged in the "score" stage
    and stored beside the predictions as `<task>.triplets.parquet`.

    With `limit`, a quick run: only a seeded subset of `limit` pairs is scored (`limit_pairs`; all
    of them, still marked partial, when the split has fewer), the triplet sample is cut to at most
    `limit` triplets, and everything is written under the `<task>.partial.*` names with a
    `partial` block in the JSON (`PARTIAL_SUFFIX`), so it never replaces or passes for a full
    result. Its scores go into the normal score cache, which a later full run reuses.

    The results' `ceiling` block is the noise ceiling of the pairs scored, per cell of `metrics`
    (`benchmark.ceiling`; null where the pair file has no label reliability). With
    `min_reliability` (in (0.5, 1]), only pairs whose `label_reliability` reaches it are scored
    (before `limit` draws its subset), the task's bins are kept, a `reliability_filter` block
    counts them, and everything goes under the `<task>.min-rel-<threshold>.*` names, which the
    board skips like quick runs (`ceiling.filtered_suffix`).
    """
    from benchmark.ceiling import ceiling_report, filter_pairs, filtered_suffix
    from benchmark.diagnostics import diagnose
    from benchmark.failures import clear_failure
    from benchmark.metrics import METRICS_VERSION, aggregate, interval_spec
    from benchmark.models import model_info
    from benchmark.results import SCHEMA_VERSION
    from benchmark.scoring import (
        ScoringConfig,
        count_cache_use,
        effective_preprocessing,
        predict,
    )
    from benchmark.tables import write_parquet

    started = time.perf_counter()
    spec = prepared.task.spec
    split = split or spec.eval_split
    pairs = prepared.pairs(split)
    filtered: dict[str, Any] | None = None
    if min_reliability is not None:
        source = str(prepared.pair_files[split])
        pairs, filtered = filter_pairs(pairs, min_reliability, source=source)
    partial: dict[str, Any] | None = None
    if limit is not None:
        from benchmark.triplets import requested_triplets

        pairs, partial = limit_pairs(pairs, limit, seed=spec.seed, task=spec.name, split=split)
        # a smoke check: the judge's triplet sample shrinks with the pairs (recorded below)
        triplets = min(requested_triplets(triplets), limit)
        partial["triplets"] = triplets
    config = config or ScoringConfig()
    if on_stage is not None:
        on_stage("score")
    score_started = time.perf_counter()
    with count_cache_use() as cache_use, _budget(submission, spec.name, pairs, triplets):
        if submission.spec.kind == "predictions":
            from benchmark.predictions_file import predictions_from_file

            pred = predictions_from_file(submission, spec.name, pairs, prepared.clips)
            preprocessing = None  # scored elsewhere, from whatever audio its authors used
        else:
            pred = predict(submission, pairs, prepared.clips, prepared.audio_base, config=config)
            preprocessing = effective_preprocessing(int(submission.model.sample_rate), config)
        diagnostics, judged_triplets = diagnose(
            submission,
            pred,
            prepared.clips,
            prepared.audio_base,
            task=spec.name,
            split=split,
            relations=list(spec.relations),
            seed=spec.seed,
            min_delta=spec.min_delta,
            n_triplets=triplets,
            config=config,
        )
    score_s = time.perf_counter() - score_started
    meta = prepared.pair_meta.get(split, {})
    # tied ΔMOS may have merged percentile bins: the pair file says how many were made
    bins = int(meta.get("bins", spec.bins))
    metrics = aggregate(pred, bins=bins)
    ceiling = ceiling_report(pred, prepared.clips, meta, bins=bins, seed=spec.seed)
    suffix = "" if split == spec.eval_split else f"@{split}"
    if filtered is not None:
        suffix += filtered_suffix(filtered["min"])
    if partial is not None:
        suffix += ".partial"
    if on_stage is not None:
        on_stage("write")
    out = Path(results_root) / submission.name
    result = {
        "schema_version": SCHEMA_VERSION,
        "submission": submission.name,
        "display_name": submission.spec.display_name,
        "kind": submission.spec.kind,
        "baseline": submission.spec.baseline,
        "shortcut": submission.spec.shortcut,
        "model_fingerprint": submission.fingerprint,
        "training_data": list(submission.spec.training_data),
        "zero_shot": _zero_shot(submission, prepared.task),
        "task": spec.name,
        "task_version": spec.version,
        "synthetic": spec.synthetic,
        "label": {
            "dimension": spec.label_dimension,
            "column": None if spec.label is None else spec.label.column,
        },
        "split": split,
        "harness_version": HARNESS_VERSION,
        "pair_file_sha256": prepared.pair_sha256[split],
        "pair_count_overrides": meta.get("count_overrides"),
        "n_pairs": pairs.num_rows,
        "seed": spec.seed,
        "bins": bins,
        "bins_requested": spec.bins,
        "bin_edges": meta.get("bin_edges"),
        "metrics_version": METRICS_VERSION,
        "interval": interval_spec(),
        "preprocessing": preprocessing,
        "model": model_info(submission),
        "metrics": metrics,
        "ceiling": ceiling,
        "diagnostics": diagnostics,
    }
    if filtered is not None:
        result["reliability_filter"] = filtered
    if partial is not None:
        result["partial"] = partial
    from benchmark.sharding import writes_results

    if not writes_results():  # a rank other than 0 of a sharded run: rank 0 writes it all
        return result
    out.mkdir(parents=True, exist_ok=True)
    write_parquet(
        pred,
        out / f"{spec.name}{suffix}.predictions.parquet",
        {"submission": submission.name, "task": spec.name, "split": split},
    )
    triplets_path = out / f"{spec.name}{suffix}.triplets.parquet"
    if judged_triplets is not None:
        write_parquet(
            judged_triplets,
            triplets_path,
            {"submission": submission.name, "task": spec.name, "split": split},
        )
    else:
        triplets_path.unlink(missing_ok=True)  # an earlier pairwise entry of that name
    path = out / f"{spec.name}{suffix}.json"
    text = json.dumps(result, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def run_record(results_sha256: str) -> RunRecord:
        return _run_record(
            result,
            results_sha256,
            pairs,
            config,
            preprocessing,
            cache_use,
            score_s=score_s,
            total_s=time.perf_counter() - started,
            sandbox=submission.model.describe() if submission.sandboxed else None,
        )

    write_results(path, text, run_record)
    if not suffix:  # a quick run proves too little to clear a failure
        clear_failure(results_root, submission.name, spec.name)
    return result


def _budget(
    submission: Submission, task: str, pairs: pa.Table, triplets: int | None
) -> contextlib.AbstractContextManager[Any]:
    """A sandboxed model's time budget for this task (`benchmark.sandbox.budget`), sized by the
    units it computes: the clips of the pairs, or for a judge the pairs and its triplet sample."""
    scope = getattr(submission.model, "budget_scope", None)
    if not submission.sandboxed or scope is None:
        return contextlib.nullcontext()
    if submission.spec.kind == "pairwise":
        from benchmark.triplets import requested_triplets

        units = pairs.num_rows + 3 * requested_triplets(triplets)
    else:
        ids = set(pairs.column("clip_a").to_pylist()) | set(pairs.column("clip_b").to_pylist())
        units = len(ids)
    return scope(task, units, submission.fingerprint)


def write_results(path: Path, text: str, run_record: Callable[[str], RunRecord]) -> bool:
    """Write a results file's `text` and its run record (`run_record(sha256 of text)`), both
    atomically; False, touching nothing, when `path` already holds `text` and a run record
    describing it exists.

    Identical numbers keep the record of the run that computed them: a rerun served from the score
    cache would record the cache's speed, and committed results must stay byte-identical in git.
    The run record is written first, so a run killed between the two writes leaves a results file
    that no record describes, which the next run rewrites, never a record passing for new numbers.
    """
    from benchmark.results import run_record_path

    record_path = run_record_path(path)
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    same = _holds(path, text)
    if same and _describes(record_path, sha):
        return False
    atomic_write_text(record_path, run_record(sha).dumps())
    if not same:
        atomic_write_text(path, text)
    return True


def _holds(path: Path, text: str) -> bool:
    try:
        return path.read_bytes() == text.encode("utf-8")
    except OSError:
        return False


def _describes(record_path: Path, sha: str) -> bool:
    """Whether a valid run record of the current schema describes the results with this hash."""
    from benchmark.results import RunRecord

    try:
        return RunRecord.load(record_path).results_sha256 == sha
    except MosrmError:
        return False


def _run_record(
    result: dict[str, Any],
    results_sha256: str,
    pairs: pa.Table,
    config: ScoringConfig,
    preprocessing: dict[str, Any] | None,
    cache_use: CacheCounts,
    *,
    score_s: float,
    total_s: float,
    sandbox: dict[str, Any] | None = None,
) -> RunRecord:
    """The run record of one evaluate call (`results.RunRecord`)."""
    from dataclasses import asdict
    from datetime import UTC, datetime

    from benchmark.hardware import describe_machine
    from benchmark.results import SCHEMA_VERSION, RunRecord
    from benchmark.scoring import resolve_device

    n_pairs = pairs.num_rows
    clip_ids = set(pairs.column("clip_a").to_pylist()) | set(pairs.column("clip_b").to_pylist())
    ran = preprocessing is not None  # a predictions file ran no model here

    def per_second(n: int) -> float | None:
        return round(n / score_s, 3) if score_s > 0 else None

    return RunRecord.model_validate(
        {
            "schema_version": SCHEMA_VERSION,
            "submission": result["submission"],
            "task": result["task"],
            "split": result["split"],
            "results_sha256": results_sha256,
            "harness_version": HARNESS_VERSION,
            "finished_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "wall_time": {"score_s": round(score_s, 3), "total_s": round(total_s, 3)},
            "n_pairs": n_pairs,
            "n_clips": len(clip_ids),
            "pairs_per_s": per_second(n_pairs),
            "clips_per_s": per_second(len(clip_ids)),
            "score_cache": asdict(cache_use),
            "batch_size": config.max_batch_size,
            "max_batch_samples": config.max_batch_samples,
            "device": str(resolve_device(config)) if ran else None,
            "dtype": preprocessing.get("dtype") if preprocessing else None,
            "autocast": preprocessing.get("autocast") if preprocessing else None,
            "hardware": describe_machine(),
            "sandbox": sandbox,
        }
    )
