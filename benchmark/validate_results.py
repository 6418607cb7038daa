"""`mosrm validate-results`: check a results folder (a contributor's results PR) before merging it.

A results file is only worth merging if its numbers follow from what it says it measured. For
every `<submission>/<task>.json` (failure records, run records and other splits' `@split` files
are skipped as the board skips them; quick runs' `.partial.json` are errors, as they must never
be submitted) four things are checked:

schema       it validates as `results.TaskResult` of a schema version this harness reads, and its
             run record `<task>.run.json` is present, valid and describes these very bytes;
predictions  the predictions file is there, holds the task's pairs row for row (where the task's
             pair file can be built here), and `metrics.aggregate` over it gives exactly the
             JSON's `metrics` block: every number must follow from the predictions;
fingerprint  where `submissions/<submission>/` or the committed reference model of that name
             (`benchmark/baselines/reference/<submission>/`) exists here, or one was trained
             here (`$MOSRM_HOME/trained/*/<submission>/`, by `mosrm run --train`), its
             current fingerprint (`models.current_fingerprint`, which runs no submitted code)
             is `model_fingerprint`;
pair file    `pair_file_sha256` is the task version's pair file: built here when the task's data
             is present (the embedded demo always is), else read from the lock file
             `pair-files.lock.json` beside the task YAMLs (`benchmark.pairs.lock`), which `mosrm
             validate-results --update-lock` (--update-shipped-lock for the package's tasks)
             rewrites for the tasks whose data the writer has.

A check that cannot be made here (no submission folder, no data and no lock entry) is reported
as "unverified (why)", which fails unless the caller allows it: a results PR passes on what was
checked, never on what was not.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.errors import MosrmError
from benchmark.pairs.lock import LOCK_NAME, _Pairs, _PairSource, read_locks
from benchmark.results.ledger import ledger_path

if TYPE_CHECKING:
    import pyarrow as pa

    from benchmark.data.tasks import Task
    from benchmark.results.provenance import Rescore
    from benchmark.results.schema import TaskResult


@dataclass
class FileReport:
    """What the checks found for one results file."""

    path: Path
    problems: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rescored: Rescore | None = None  # with --rescore: what re-running the submission found

    def passed(self, allow_unverified: bool) -> bool:
        return not self.problems and (allow_unverified or not self.unverified)

    def line(self, root: Path, allow_unverified: bool) -> str:
        """One line: ✓ or ✗, the file relative to the results folder, and the reasons."""
        name = self.path.relative_to(root) if self.path.is_relative_to(root) else self.path
        parts = list(self.problems)
        parts += [f"unverified ({why})" for why in self.unverified]
        if self.passed(allow_unverified):
            extra = parts + self.notes
            return f"✓ {name}" + (f" ({'; '.join(extra)})" if extra else "")
        return f"✗ {name}: {'; '.join(parts)}"


@dataclass
class Validation:
    root: Path
    files: list[FileReport]
    allow_unverified: bool

    @property
    def ok(self) -> bool:
        return bool(self.files) and all(f.passed(self.allow_unverified) for f in self.files)

    def lines(self) -> Iterator[str]:
        for f in self.files:
            yield f.line(self.root, self.allow_unverified)
        failed = sum(bool(f.problems) for f in self.files)
        unverified = sum(not f.problems and bool(f.unverified) for f in self.files)
        passed = len(self.files) - failed - unverified
        tail = f"{len(self.files)} results file(s): {passed} passed, {failed} failed"
        if unverified:
            how = "allowed" if self.allow_unverified else "pass --allow-unverified to accept"
            tail += f", {unverified} unverified ({how})"
        yield tail


# ---------------------------------------------------------------------------------------------
# one results file


def _first_difference(found: Any, expected: Any, where: str) -> str | None:
    """The dotted path of the first value that differs, with both values; None if equal."""
    if isinstance(found, dict) and isinstance(expected, dict):
        for key in sorted(set(found) | set(expected)):
            if key not in found:
                return f"{where}.{key} is missing from the JSON"
            if key not in expected:
                return f"{where}.{key} is in the JSON but not computed from the predictions"
            diff = _first_difference(found[key], expected[key], f"{where}.{key}")
            if diff is not None:
                return diff
        return None
    if isinstance(found, list) and isinstance(expected, list) and len(found) == len(expected):
        for i, (a, b) in enumerate(zip(found, expected, strict=True)):
            diff = _first_difference(a, b, f"{where}[{i}]")
            if diff is not None:
                return diff
        return None
    if found != expected or type(found) is not type(expected):
        return f"{where} is {json.dumps(found)} in the JSON, {json.dumps(expected)} from the predictions"
    return None


def _compare_rows(pred: pa.Table, pairs: pa.Table) -> str | None:
    """Why the predictions do not hold `pairs` row for row, or None when they do."""
    missing = [c for c in pairs.column_names if c not in pred.column_names]
    if missing:
        return f"predictions lack the pair column(s) {', '.join(missing)}"
    if pred.num_rows != pairs.num_rows:
        return f"predictions have {pred.num_rows} rows, the task's pair file {pairs.num_rows}"
    ours = pred.select(pairs.column_names)
    if ours.equals(pairs, check_metadata=False):
        return None
    ids = pairs.column("pair_id").to_pylist()
    for name in pairs.column_names:
        a, b = ours.column(name).to_pylist(), pairs.column(name).to_pylist()
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return (
                    f"predictions row {i} (pair {ids[i]}) has {name} = {x!r}, the task's pair "
                    f"file {y!r}"
                )
    return "predictions differ from the task's pair file (column types)"


def _check_schema(path: Path, report: FileReport) -> tuple[TaskResult, dict[str, Any]] | None:
    from benchmark.errors import DataError
    from benchmark.results.schema import RunRecord, TaskResult, run_record_path

    try:
        data = path.read_bytes()
        raw = json.loads(data.decode("utf-8"))
    except (OSError, ValueError) as exc:
        report.problems.append(f"unreadable results file ({exc})")
        return None
    if not isinstance(raw, dict):
        report.problems.append("results file is not a JSON object")
        return None
    try:
        result = TaskResult.from_raw(raw, path)
    except DataError as exc:
        report.problems.append(str(exc).removeprefix(f"{path}: "))
        return None
    record_path = run_record_path(path)
    if not record_path.is_file():
        report.problems.append(f"run record {record_path.name} missing (rerun to write it)")
    else:
        try:
            record = RunRecord.load(record_path)
        except DataError as exc:
            report.problems.append(f"run record: {str(exc).removeprefix(f'{record_path}: ')}")
        else:
            if record.results_sha256 != hashlib.sha256(data).hexdigest():
                report.problems.append(
                    f"run record {record_path.name} describes other bytes (field "
                    "'results_sha256'): the results file was edited after its run"
                )
            ours = (record.submission, record.task, record.split)
            if ours != (result.submission, result.task, result.split):
                report.problems.append(
                    f"run record {record_path.name} is of {'/'.join(ours)}, not of these results"
                )
    return result, raw


def _check_place(path: Path, result: TaskResult, report: FileReport) -> None:
    if path.parent.name != result.submission:
        report.problems.append(
            f"field 'submission' is '{result.submission}' but the file is in '{path.parent.name}/'"
        )
    if path.name != f"{result.task}.json":
        report.problems.append(f"field 'task' is '{result.task}' but the file is '{path.name}'")


def _check_ceiling(
    pred: pa.Table, result: TaskResult, raw: dict[str, Any], source: _PairSource | None,
    report: FileReport,
) -> None:  # fmt: skip
    """The `ceiling` block recomputed from the predictions' pairs and the task's clip table."""
    from benchmark.stats.ceiling import ceiling_report

    prepared = None if source is None else source.prepared
    if prepared is None or result.split not in prepared.pair_meta:
        if raw.get("ceiling") is not None:
            report.notes.append("ceiling not recomputed: no clip table here")
        return
    try:
        expected = ceiling_report(
            pred,
            prepared.clips,
            prepared.pair_meta[result.split],
            bins=result.bins,
            seed=result.seed,
        )
    except MosrmError as exc:
        report.problems.append(f"ceiling cannot be computed ({exc})")
        return
    diff = _first_difference(raw.get("ceiling"), json.loads(json.dumps(expected)), "ceiling")
    if diff is not None:
        report.problems.append(diff)


def _check_predictions(
    path: Path,
    result: TaskResult,
    raw: dict[str, Any],
    pairs: pa.Table | None,
    report: FileReport,
    source: _PairSource | None = None,
) -> None:
    import pyarrow.parquet as pq

    from benchmark.leaderboard.load import predictions_path
    from benchmark.stats.metrics import METRICS_VERSION, aggregate

    pred_path = predictions_path(path)
    if not pred_path.is_file():
        report.problems.append(f"predictions file {pred_path.name} missing")
        return
    try:
        pred = pq.read_table(pred_path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        report.problems.append(f"{pred_path.name}: unreadable ({type(exc).__name__}: {exc})")
        return
    if pred.num_rows != result.n_pairs:
        report.problems.append(
            f"field 'n_pairs' is {result.n_pairs} but {pred_path.name} has {pred.num_rows} rows"
        )
    if pairs is not None:
        why = _compare_rows(pred, pairs)
        if why is not None:
            report.problems.append(why)
    else:
        report.notes.append("pair rows not compared: no pair file built here")
    if result.metrics_version != METRICS_VERSION:
        report.problems.append(
            f"field 'metrics_version' is {result.metrics_version}, this harness computes "
            f"{METRICS_VERSION}: rerun"
        )
        return
    try:
        expected = json.loads(json.dumps(aggregate(pred, bins=result.bins)))
    except (MosrmError, ValueError) as exc:
        report.problems.append(f"{pred_path.name}: metrics cannot be computed ({exc})")
        return
    diff = _first_difference(raw["metrics"], expected, "metrics")
    if diff is not None:
        report.problems.append(diff)
    if result.schema_version >= 2:
        _check_ceiling(pred, result, raw, source, report)


def _folder(result: TaskResult, submissions: Sequence[Path]) -> Path | None:
    """The submission's folder here: `<root>/<name>/` of the first of `submissions` (the
    workspace's, then the package's) that has it, else the committed reference model of that
    name; None when none exists."""
    from benchmark.scoring.trust import REFERENCE
    from benchmark.workspace import find_submission

    return find_submission([*submissions, REFERENCE], result.submission)


def _check_fingerprint(
    result: TaskResult, submissions: Sequence[Path], report: FileReport, cache: dict[Path, str]
) -> None:
    from benchmark.scoring.models import current_fingerprint

    found = _folder(result, submissions)
    folder = found or (submissions[0] / result.submission if submissions else None)
    if folder is None or found is None:
        if _check_trained(result, report, cache):
            return
        where = f"{folder}" if folder is not None else "no submissions folder given"
        report.unverified.append(
            f"fingerprint: no submission folder here ({where}), no committed reference model "
            "and no trained reference baseline of that name (`mosrm run --train` trains them)"
        )
        return
    if folder not in cache:
        try:
            cache[folder] = current_fingerprint(folder)
        except Exception as exc:  # a broken folder fails this check, not the whole validation
            cache[folder] = f"error: {type(exc).__name__}: {exc}"
    now = cache[folder]
    if now.startswith("error: "):
        report.problems.append(f"fingerprint of {folder.name}/ cannot be computed ({now[7:]})")
    elif now != result.model_fingerprint:
        report.problems.append(
            f"field 'model_fingerprint' is {result.model_fingerprint[:12]}… but "
            f"{folder.parent.name}/{folder.name}/ now fingerprints as {now[:12]}…: the folder changed "
            "after the run (rerun, or submit the folder that was run)"
        )


def _check_trained(result: TaskResult, report: FileReport, cache: dict[Path, str]) -> bool:
    """A reference baseline trained by `mosrm run` lives in `$MOSRM_HOME/trained/<key>/<name>/`,
    one folder per training key (config and data): the result is verified if one of them
    fingerprints as it says. False when none of that name is here (nothing could be checked)."""
    from benchmark.paths import home
    from benchmark.scoring.models import current_fingerprint

    folders = sorted(
        p.parent for p in (home() / "trained").glob(f"*/{result.submission}/submission.yaml")
    )
    if not folders:
        return False
    for folder in folders:
        if folder not in cache:
            try:
                cache[folder] = current_fingerprint(folder)
            except Exception as exc:  # a broken copy is just not the one that was run
                cache[folder] = f"error: {type(exc).__name__}: {exc}"
        if cache[folder] == result.model_fingerprint:
            return True
    report.problems.append(
        f"field 'model_fingerprint' is {result.model_fingerprint[:12]}… but none of the "
        f"{len(folders)} trained cop(ies) of {result.submission} here fingerprints so "
        f"(e.g. {folders[-1]}): rerun `make run`"
    )
    return True


def _check_pair_file(
    result: TaskResult, tasks: Mapping[str, Task], pair_files: _Pairs, report: FileReport
) -> pa.Table | None:
    """Check `pair_file_sha256`; returns the task's pair table when it was built here."""
    task = tasks.get(result.task)
    if task is None:
        report.problems.append(f"field 'task': no task '{result.task}' in tasks/")
        return None
    if result.task_version != task.spec.version:
        report.problems.append(
            f"field 'task_version' is {result.task_version}, tasks/{task.name}.yaml is version "
            f"{task.spec.version}: rerun on the current task"
        )
        return None
    source = pair_files.source(task)
    if source.why_not is not None:
        report.unverified.append(f"pair file: {source.why_not}")
        return None
    expected = source.sha256.get(result.split)
    where = f"{pair_files.lock_path.name}'s" if source.from_lock else "the pair file built here"
    if expected is None:
        report.problems.append(f"field 'split': task '{task.name}' has no '{result.split}' pairs")
    elif result.pair_file_sha256 != expected:
        overrides = " (results on non-standard pair counts)" if result.pair_count_overrides else ""
        report.problems.append(
            f"field 'pair_file_sha256' is {result.pair_file_sha256[:12]}…, {where} is "
            f"{expected[:12]}…{overrides}: not the pairs of {task.name} v{task.spec.version}"
        )
    return source.pairs(result.split)


@dataclass
class _Provenance:
    """What the metadata and re-score checks need, found once per validation."""

    baseline_names: dict[str, str]  # the repository's own baselines: submission -> display name
    rescore: bool = False
    sample: int = 64
    tolerance: float = 1e-6
    seed: int | None = None
    prepared: dict[str, Any] = field(default_factory=dict)  # task -> PreparedTask (with audio)


def _official(folder: Path) -> bool:
    from benchmark.scoring.folder import folder_files
    from benchmark.scoring.trust import is_official

    try:
        return is_official(folder, folder_files(folder))
    except MosrmError:
        return False


def _check_metadata(
    result: TaskResult,
    task: Task | None,
    folder: Path | None,
    prov: _Provenance,
    report: FileReport,
) -> None:
    from benchmark.results.provenance import metadata_problems
    from benchmark.scoring.spec import read_spec

    if task is None:
        return
    spec = None
    if folder is not None:
        try:
            spec = read_spec(folder)
        except MosrmError as exc:
            report.problems.append(f"{folder.name}/submission.yaml: {exc}")
            return
    # one of the repository's own: listed in its manifest, and (where its folder is here) that
    # very folder; a listed name whose folder is absent is left to the fingerprint check
    official = result.submission in prov.baseline_names and (folder is None or _official(folder))
    report.problems += metadata_problems(result, task, spec, official, prov.baseline_names)


def _rescore(
    path: Path,
    result: TaskResult,
    task: Task,
    folder: Path | None,
    pair_files: _Pairs,
    prov: _Provenance,
    report: FileReport,
) -> None:
    """Run the submission again on a secret sample of its pairs (`provenance.rescore`)."""
    import pyarrow.parquet as pq

    from benchmark.leaderboard.load import predictions_path
    from benchmark.pairs.lock import _data_root
    from benchmark.results.provenance import rescore

    if result.kind == "predictions":
        report.notes.append("self-reported: predictions-only results cannot be re-scored")
        return
    if folder is None:
        report.unverified.append("re-score: no submission folder here")
        return
    if task.name not in prov.prepared:
        from benchmark.pairs.prepare import prepare

        root = _data_root(task, pair_files.data_roots)
        prov.prepared[task.name] = (
            None if root is None else prepare(task, root, reuse=True, progress=False)
        )
    prepared = prov.prepared[task.name]
    if prepared is None:
        report.unverified.append(f"re-score: no '{task.name}' data here")
        return
    try:
        outcome = rescore(
            folder,
            pq.read_table(predictions_path(path)),
            prepared,
            sample=prov.sample,
            tolerance=prov.tolerance,
            seed=prov.seed,
        )
    except MosrmError as exc:
        report.problems.append(f"re-score: {exc}")
        return
    report.rescored = outcome
    if not outcome.agrees:
        report.problems.append(
            f"re-score: {outcome.differing} of {outcome.sampled} sampled pairs differ from what "
            f"{folder.name}/ computes now (e.g. {'; '.join(outcome.examples)}): the predictions "
            "are not this submission's"
        )
    else:
        report.notes.append(
            f"re-scored {outcome.sampled} pairs: agree (max |Δ| {outcome.max_abs_diff:.2g})"
        )


def _check_file(
    path: Path,
    tasks: Mapping[str, Task],
    pair_files: _Pairs,
    submissions: Sequence[Path],
    fingerprints: dict[Path, str],
    prov: _Provenance | None = None,
) -> FileReport:
    from benchmark.results.schema import PARTIAL_SUFFIX
    from benchmark.stats.ceiling import is_filtered_name

    report = FileReport(path)
    if path.name.endswith(PARTIAL_SUFFIX):
        report.problems.append(
            "a quick run's results (--limit) must not be submitted: delete its .partial.* files "
            "and submit a full run"
        )
        return report
    if is_filtered_name(path.name):
        report.problems.append(
            "reliability-filtered results (--min-reliability) must not be submitted: delete its "
            ".min-rel-* files and submit the full run"
        )
        return report
    checked = _check_schema(path, report)
    if checked is None:
        return report
    result, raw = checked
    _check_place(path, result, report)
    if result.partial is not None:
        report.problems.append(
            "field 'partial' is set: a quick run's results must not be submitted"
        )
    if result.reliability_filter is not None:
        report.problems.append(
            "field 'reliability_filter' is set: a filtered view's results must not be submitted"
        )
    pairs = _check_pair_file(result, tasks, pair_files, report)
    task = tasks.get(result.task)
    source = pair_files.source(task) if task is not None and pairs is not None else None
    _check_predictions(path, result, raw, pairs, report, source)
    _check_fingerprint(result, submissions, report, fingerprints)
    prov = prov or _Provenance(_baseline_names())
    folder = _folder(result, submissions)
    _check_metadata(result, task, folder, prov, report)
    if prov.rescore and task is not None and not report.problems:
        _rescore(path, result, task, folder, pair_files, prov, report)
    return report


def _baseline_names() -> dict[str, str]:
    """The display names of the repository's own baselines, which no other result may wear."""
    from benchmark.scoring.spec import discover_submissions, read_spec
    from benchmark.scoring.trust import official_manifest, official_roots

    listed = official_manifest()
    out = {}
    for root in official_roots():
        for folder in discover_submissions(root):
            if folder.name in listed:
                out[folder.name] = read_spec(folder).display_name
    return out


def results_files(root: Path) -> list[Path]:
    """The files the board would read, plus quick runs (to be reported): `<sub>/<task>.json`
    without failure records, run records and other splits' results."""
    from benchmark.results.failures import SUFFIX
    from benchmark.results.schema import RUN_SUFFIX

    return [
        p
        for p in sorted(root.glob("*/*.json"))
        if not p.name.endswith((SUFFIX, RUN_SUFFIX)) and "@" not in p.name
    ]


def validate_results(
    results_root: str | Path,
    *,
    repo: str | Path,
    submissions: str | Path | None = None,
    data_roots: Mapping[str | None, str | Path] | None = None,
    allow_unverified: bool = False,
    echo: Callable[[str], None] | None = None,
    rescore: bool = False,
    sample: int | None = None,
    tolerance: float | None = None,
    ledger: str | Path | None = None,
    seed: int | None = None,
) -> Validation:
    """Check every results file under `results_root` (module doc). `submissions` defaults to
    `<repo>/submissions`; `data_roots` maps a task name (or None: every task) to its data root.

    With `rescore`, each submission is also run again on a secret sample of `sample` pairs of
    each results file (`results.provenance`), and every file that passes everything is entered
    in the re-score ledger (`ledger`, default `verified.json` beside the results folder): the only way a
    row becomes "verified" on the board. `seed` fixes the sample (tests only)."""
    from benchmark.data.tasks import workspace_tasks
    from benchmark.results import provenance
    from benchmark.workspace import submission_roots

    root = Path(results_root)
    if not root.is_dir():
        raise MosrmError(f"{root}: no such results folder")
    files = results_files(root)
    if not files:
        raise MosrmError(f"{root}: no results files (<submission>/<task>.json) to validate")
    repo = Path(repo)
    subs = [Path(submissions)] if submissions is not None else submission_roots(repo)
    tasks = workspace_tasks(repo)
    lock_path = Path(LOCK_NAME)  # named in messages; entries from the package's and the workspace's
    lock = read_locks(repo)
    fingerprints: dict[Path, str] = {}
    prov = _Provenance(
        _baseline_names(),
        rescore=rescore,
        sample=provenance.DEFAULT_SAMPLE if sample is None else sample,
        tolerance=provenance.DEFAULT_TOLERANCE if tolerance is None else tolerance,
        seed=seed,
    )
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mosrm-validate-")))
        pair_files = _Pairs(tasks, lock, lock_path, data_roots or {}, scratch, echo)
        reports = [
            _check_file(
                path, tasks, pair_files, [p for p in subs if p.is_dir()], fingerprints, prov
            )
            for path in files
        ]
    if rescore:
        _record(
            reports, Path(ledger) if ledger is not None else ledger_path(root), allow_unverified
        )
    return Validation(root, reports, allow_unverified)


def _record(reports: list[FileReport], path: Path, allow_unverified: bool) -> None:
    """Enter every file that passed and was re-scored in the ledger (others are left as
    they were: a failing re-score never removes an earlier file's entry, it is another file)."""
    from benchmark.results.ledger import entry, read_ledger, write_ledger
    from benchmark.results.schema import TaskResult

    entries = read_ledger(path)
    for r in reports:
        if r.rescored is None or not r.rescored.agrees or not r.passed(allow_unverified):
            continue
        result = TaskResult.load(r.path)
        sha = hashlib.sha256(r.path.read_bytes()).hexdigest()
        entries[sha] = entry(
            result.submission, result.task, result.split, r.rescored.sampled,
            r.rescored.max_abs_diff,
        )  # fmt: skip
    write_ledger(path, entries)


def __getattr__(name: str) -> object:
    """The pair-file lock's functions, moved to `benchmark.pairs.lock`, for one release, with a
    warning."""
    from benchmark._moved import moved_attribute

    return moved_attribute(__name__, name)
