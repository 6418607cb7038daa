"""The flow in one place: read → validate → pairs (prepare), then score → metrics → results (evaluate).

Everything a run produces is derived from the task YAML, the corpus and the submission, and written
deterministically: the same inputs give byte-identical pair files, predictions and results JSON.
`evaluate_task` is its named steps (`_choose_pairs` → `_score` → `_numbers` → `_result` →
`_write_tables` → `write_results`); it never computes a number itself (stats does) and never
prints (it logs; the CLI shows).
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark import HARNESS_VERSION
from benchmark.atomic import atomic_write_text
from benchmark.errors import MosrmError
from benchmark.pairs.prepare import PreparedTask, limit_pairs

if TYPE_CHECKING:
    import pyarrow as pa

    from benchmark.results.schema import RunRecord, TaskResult
    from benchmark.scoring.config import ScoringConfig
    from benchmark.scoring.counts import CacheCounts
    from benchmark.scoring.models import Submission


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
    """`evaluate_task`, returning the results JSON as written (a dict) rather than the record."""
    return evaluate_task(
        submission,
        prepared,
        results_root=results_root,
        config=config,
        split=split,
        on_stage=on_stage,
        triplets=triplets,
        limit=limit,
        min_reliability=min_reliability,
    ).as_json()


def evaluate_task(
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
) -> TaskResult:
    """Score the task's evaluation split and write `<results_root>/<submission>/<task>.json`.

    The record is typed from birth (`results.TaskResult`, validated as it is built) and the file
    is its `json_text()`, so what is returned is exactly what was written.

    The per-pair predictions are written beside it as `<task>.predictions.parquet` so that paired
    comparisons and the board can be recomputed without rescoring. A success on the evaluation split
    removes the task's failure record (`benchmark.results.failures`). `on_stage` is told "score", then
    "write", so a caller can say where a failure happened.

    The results JSON is deterministic; how the run went (wall time, throughput, score-cache use,
    device, hardware) goes beside it into `<task>.run.json` (`results.RunRecord`). A rerun that
    reproduces the same JSON leaves both files as they are (`write_results`).

    The results' `diagnostics` block (`benchmark.stats.diagnostics`) holds the judge diagnostics; for a
    pairwise judge they need its answers on a seeded triplet sample of the split (`triplets` per
    task, default `$MOSRM_TRIPLETS` or 500, `benchmark.pairs.triplets`), judged in the "score" stage
    and stored beside the predictions as `<task>.triplets.parquet`.

    With `limit`, a quick run: only a seeded subset of `limit` pairs is scored (`limit_pairs`; all
    of them, still marked partial, when the split has fewer), the triplet sample is cut to at most
    `limit` triplets, and everything is written under the `<task>.partial.*` names with a
    `partial` block in the JSON (`PARTIAL_SUFFIX`), so it never replaces or passes for a full
    result. Its scores go into the normal score cache, which a later full run reuses.

    The results' `ceiling` block is the noise ceiling of the pairs scored, per cell of `metrics`
    (`benchmark.stats.ceiling`; null where the pair file has no label reliability). With
    `min_reliability` (in (0.5, 1]), only pairs whose `label_reliability` reaches it are scored
    (before `limit` draws its subset), the task's bins are kept, a `reliability_filter` block
    counts them, and everything goes under the `<task>.min-rel-<threshold>.*` names, which the
    board skips like quick runs (`ceiling.filtered_suffix`).
    """
    from benchmark.scoring.config import ScoringConfig
    from benchmark.scoring.sharding import writes_results

    started = time.perf_counter()
    spec = prepared.task.spec
    split = split or spec.eval_split
    config = config or ScoringConfig()
    chosen = _choose_pairs(prepared, split, limit=limit, min_reliability=min_reliability)
    triplets = chosen.triplets(triplets)
    if on_stage is not None:
        on_stage("score")
    scored = _score(submission, prepared, chosen.pairs, split, config, triplets)
    numbers = _numbers(prepared, split, scored.pred)
    if on_stage is not None:
        on_stage("write")
    result = _result(submission, prepared, split, chosen, scored, numbers)
    if not writes_results():  # a rank other than 0 of a sharded run: rank 0 writes it all
        return result
    suffix = chosen.suffix(split, spec.eval_split)
    _write_tables(
        Path(results_root) / submission.name, spec.name, suffix, split, submission, scored
    )
    path = Path(results_root) / submission.name / f"{spec.name}{suffix}.json"
    text = result.json_text()

    def run_record(results_sha256: str) -> RunRecord:
        return _run_record(
            result,
            results_sha256,
            chosen.pairs,
            config,
            scored.preprocessing,
            scored.cache_use,
            score_s=scored.seconds,
            total_s=time.perf_counter() - started,
            sandbox=submission.model.describe() if submission.sandboxed else None,
        )

    write_results(path, text, run_record)
    if not suffix:  # a quick run proves too little to clear a failure
        from benchmark.results.failures import clear_failure

        clear_failure(results_root, submission.name, spec.name)
    return result


@dataclass
class _Chosen:
    """The pairs a run scores: the split's, maybe filtered by label reliability, maybe cut to a
    quick run's seeded subset; with the blocks that say so in the results."""

    pairs: pa.Table
    filtered: dict[str, Any] | None = None
    partial: dict[str, Any] | None = None

    def triplets(self, requested: int | None) -> int | None:
        """A quick run's judge triplet sample shrinks with its pairs (recorded in `partial`)."""
        if self.partial is None:
            return requested
        from benchmark.pairs.triplets import requested_triplets

        n = min(requested_triplets(requested), int(self.partial["limit"]))
        self.partial["triplets"] = n
        return n

    def suffix(self, split: str, eval_split: str) -> str:
        """`@split`, `.min-rel-<t>`, `.partial`: results of another split, a filtered set or a
        quick run never take a full result's file names."""
        from benchmark.stats.ceiling import filtered_suffix

        out = "" if split == eval_split else f"@{split}"
        if self.filtered is not None:
            out += filtered_suffix(self.filtered["min"])
        if self.partial is not None:
            out += ".partial"
        return out


def _choose_pairs(
    prepared: PreparedTask, split: str, *, limit: int | None, min_reliability: float | None
) -> _Chosen:
    """Step 1: the pairs to score (reliability filter first, then a quick run's subset)."""
    from benchmark.stats.ceiling import filter_pairs

    spec = prepared.task.spec
    chosen = _Chosen(prepared.pairs(split))
    if min_reliability is not None:
        source = str(prepared.pair_files[split])
        chosen.pairs, chosen.filtered = filter_pairs(chosen.pairs, min_reliability, source=source)
    if limit is not None:
        chosen.pairs, chosen.partial = limit_pairs(
            chosen.pairs, limit, seed=spec.seed, task=spec.name, split=split
        )
    return chosen


@dataclass
class _Scored:
    """What the model (or its predictions file) gave for the pairs, and how the scoring went."""

    pred: pa.Table
    preprocessing: dict[str, Any] | None
    diagnostics: dict[str, Any]
    judged_triplets: pa.Table | None
    cache_use: CacheCounts
    seconds: float


def _score(
    submission: Submission,
    prepared: PreparedTask,
    pairs: pa.Table,
    split: str,
    config: ScoringConfig,
    triplets: int | None,
) -> _Scored:
    """Step 2: predictions for the pairs (cached scores, then the model for the rest, within the
    sandbox's time budget) and the judge diagnostics on their triplet sample."""
    from benchmark.scoring.config import effective_preprocessing
    from benchmark.scoring.counts import count_cache_use
    from benchmark.scoring.predictions import predict
    from benchmark.stats.diagnostics import diagnose

    spec = prepared.task.spec
    began = time.perf_counter()
    preprocessing: dict[str, Any] | None
    with count_cache_use() as cache_use, _budget(submission, spec.name, pairs, triplets):
        if submission.spec.kind == "predictions":
            from benchmark.scoring.predictions_file import predictions_from_file

            pred = predictions_from_file(submission, spec.name, pairs, prepared.clips)
            preprocessing = None  # scored elsewhere, from whatever audio its authors used
        else:
            pred = predict(submission, pairs, prepared.clips, prepared.audio_base, config=config)
            preprocessing = effective_preprocessing(int(submission.model.sample_rate), config)
        diagnostics, judged = diagnose(
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
    return _Scored(pred, preprocessing, diagnostics, judged, cache_use, time.perf_counter() - began)


def _numbers(prepared: PreparedTask, split: str, pred: pa.Table) -> dict[str, Any]:
    """Step 3: the numbers: accuracy by cell with intervals, and the noise ceiling per cell."""
    from benchmark.stats.ceiling import ceiling_report
    from benchmark.stats.metrics import aggregate

    spec = prepared.task.spec
    meta = prepared.pair_meta.get(split, {})
    # tied ΔMOS may have merged percentile bins: the pair file says how many were made
    bins = int(meta.get("bins", spec.bins))
    return {
        "bins": bins,
        "metrics": aggregate(pred, bins=bins),
        "ceiling": ceiling_report(pred, prepared.clips, meta, bins=bins, seed=spec.seed),
    }


def _result(
    submission: Submission,
    prepared: PreparedTask,
    split: str,
    chosen: _Chosen,
    scored: _Scored,
    numbers: dict[str, Any],
) -> TaskResult:
    """Step 4: the results record: the numbers with what they are about and how they were made,
    validated as it is built (a block left out, such as `partial` on a full run, stays out of the
    file: `TaskResult.as_json`)."""
    from benchmark.results.provenance import zero_shot
    from benchmark.results.schema import (
        SCHEMA_VERSION,
        Diagnostics,
        IntervalSpec,
        Label,
        ModelInfo,
        Preprocessing,
        TaskResult,
    )
    from benchmark.scoring.models import model_info
    from benchmark.stats.metrics import METRICS_VERSION, interval_spec

    spec = prepared.task.spec
    meta = prepared.pair_meta.get(split, {})
    optional: dict[str, Any] = {}  # blocks a full, unfiltered run leaves out of the file
    if chosen.filtered is not None:
        optional["reliability_filter"] = chosen.filtered
    if chosen.partial is not None:
        optional["partial"] = chosen.partial
    return TaskResult(
        schema_version=SCHEMA_VERSION,
        submission=submission.name,
        display_name=submission.spec.display_name,
        kind=submission.spec.kind,
        baseline=submission.spec.baseline,
        shortcut=submission.spec.shortcut,
        model_fingerprint=submission.fingerprint,
        training_data=list(submission.spec.training_data),
        zero_shot=zero_shot(list(submission.spec.training_data), prepared.task.name),
        task=spec.name,
        task_version=spec.version,
        synthetic=spec.synthetic,
        label=Label(
            dimension=spec.label_dimension,
            column=None if spec.label is None else spec.label.column,
        ),
        split=split,
        harness_version=HARNESS_VERSION,
        pair_file_sha256=prepared.pair_sha256[split],
        pair_count_overrides=meta.get("count_overrides"),
        n_pairs=chosen.pairs.num_rows,
        seed=spec.seed,
        bins=numbers["bins"],
        bins_requested=spec.bins,
        bin_edges=meta.get("bin_edges"),
        metrics_version=METRICS_VERSION,
        interval=IntervalSpec.model_validate(interval_spec()),
        preprocessing=None
        if scored.preprocessing is None
        else Preprocessing.model_validate(scored.preprocessing),
        model=ModelInfo.model_validate(model_info(submission)),
        metrics=numbers["metrics"],
        ceiling=numbers["ceiling"],
        diagnostics=Diagnostics.model_validate(scored.diagnostics),
        **optional,
    )


def _write_tables(
    out: Path, task: str, suffix: str, split: str, submission: Submission, scored: _Scored
) -> None:
    """Step 5: the per-pair predictions (and a judge's triplet answers) beside the results, so
    paired comparisons and the board recompute without rescoring."""
    from benchmark.data.tables import write_parquet

    out.mkdir(parents=True, exist_ok=True)
    meta = {"submission": submission.name, "task": task, "split": split}
    write_parquet(scored.pred, out / f"{task}{suffix}.predictions.parquet", meta)
    triplets_path = out / f"{task}{suffix}.triplets.parquet"
    if scored.judged_triplets is not None:
        write_parquet(scored.judged_triplets, triplets_path, meta)
    else:
        triplets_path.unlink(missing_ok=True)  # an earlier pairwise entry of that name


def _budget(
    submission: Submission, task: str, pairs: pa.Table, triplets: int | None
) -> contextlib.AbstractContextManager[Any]:
    """A sandboxed model's time budget for this task (`benchmark.scoring.sandbox.budget`), sized by the
    units it computes: the clips of the pairs, or for a judge the pairs and its triplet sample."""
    scope = getattr(submission.model, "budget_scope", None)
    if not submission.sandboxed or scope is None:
        return contextlib.nullcontext()
    if submission.spec.kind == "pairwise":
        from benchmark.pairs.triplets import requested_triplets

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
    from benchmark.results.schema import run_record_path

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
    from benchmark.results.schema import RunRecord

    try:
        return RunRecord.load(record_path).results_sha256 == sha
    except MosrmError:
        return False


def _run_record(
    result: TaskResult,
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

    from benchmark.results.hardware import describe_machine
    from benchmark.results.schema import SCHEMA_VERSION, RunRecord
    from benchmark.scoring.config import resolve_device

    n_pairs = pairs.num_rows
    clip_ids = set(pairs.column("clip_a").to_pylist()) | set(pairs.column("clip_b").to_pylist())
    ran = preprocessing is not None  # a predictions file ran no model here

    def per_second(n: int) -> float | None:
        return round(n / score_s, 3) if score_s > 0 else None

    return RunRecord.model_validate(
        {
            "schema_version": SCHEMA_VERSION,
            "submission": result.submission,
            "task": result.task,
            "split": result.split,
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


def __getattr__(name: str) -> object:
    """Names that moved to `benchmark.pairs.prepare` and `benchmark.results.schema`, for one
    release, with a warning."""
    from benchmark._moved import moved_attribute

    return moved_attribute(__name__, name)
