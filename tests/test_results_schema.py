"""The versioned results schema (`benchmark.results.schema`): schema version written and enforced by every
reader, the run record beside each results file (and left alone by a rerun that reproduces the
results), and `mosrm validate-results` catching each way a submitted results file can be wrong."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from pydantic import ValidationError

import benchmark as mb
from benchmark.cli import main
from benchmark.data.tasks import load_task_file
from benchmark.errors import DataError, MosrmError
from benchmark.leaderboard.board import load_results
from benchmark.pairs.lock import LOCK_NAME, read_lock
from benchmark.pairs.prepare import PreparedTask, prepare
from benchmark.pipeline import evaluate
from benchmark.results.schema import SCHEMA_VERSION, RunRecord, TaskResult, run_record_path
from benchmark.scoring.config import ScoringConfig
from benchmark.scoring.models import Batch, Submission, SubmissionSpec
from tests.toy_task import REPO, write_toy_repo

QUIET = ScoringConfig(progress=False)
SUBS = ("shortcut-loudness", "shortcut-random")


class CountingRms:
    """RMS of the valid samples; remembers the clips it scored."""

    sample_rate = 16000

    def __init__(self) -> None:
        self.seen: list[str] = []

    def score(self, batch: Batch) -> torch.Tensor:
        self.seen.extend(batch.clip_ids)
        return torch.stack(
            [
                batch.waveforms[i, :n].double().pow(2).mean().sqrt()
                for i, n in enumerate(batch.lengths)
            ]
        )


class CountingJudge:
    """A pairwise judge from the RMS difference; counts the pairs it is asked about."""

    sample_rate = 16000

    def __init__(self) -> None:
        self.asked = 0
        self.rms = CountingRms()

    def prefer(self, a: Batch, b: Batch) -> torch.Tensor:
        self.asked += len(a)
        return 0.3 + 0.4 * torch.sigmoid(20 * (self.rms.score(a) - self.rms.score(b)))


def _submission(model: object, kind: str = "scalar", fingerprint: str = "f" * 32) -> Submission:
    spec = SubmissionSpec(name="counting", display_name="Counting", kind=kind, entry="m.py:build")
    return Submission(spec=spec, folder=Path("."), model=model, fingerprint=fingerprint)


@pytest.fixture
def toy(tmp_path: Path) -> tuple[Path, PreparedTask]:
    repo = write_toy_repo(tmp_path / "toy")
    task = load_task_file(repo / "tasks" / "toy.yaml")
    return repo, prepare(task, out_dir=tmp_path / "prepared", resample=False)


@pytest.fixture
def run(tmp_path: Path) -> tuple[Path, Path]:
    """The toy checkout and a results folder with two shortcut baselines, as `mosrm evaluate`
    writes them."""
    repo = write_toy_repo(tmp_path / "toy")
    results = tmp_path / "results"
    args = ["--repo", str(repo), "evaluate", *SUBS, "--task", "toy", "--quiet"]
    assert main([*args, "--results", str(results)]) == 0
    return repo, results


def _edit(path: Path, change: Callable[[dict[str, Any]], object]) -> None:
    """Change a JSON file in place, written as the pipeline writes it."""
    raw = json.loads(path.read_text())
    change(raw)
    path.write_text(json.dumps(raw, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def _validate(repo: Path, results: Path, capsys: pytest.CaptureFixture[str], *extra: str):
    rc = main(["--repo", str(repo), "validate-results", str(results), *extra])
    out = capsys.readouterr().out
    lines = {line.split()[1].rstrip(":"): line for line in out.splitlines() if line[:1] in "✓✗"}
    return rc, lines, out


# ---------------------------------------------------------------- the schema version


def test_schema_version_is_written_and_a_real_result_round_trips(run):
    _, results = run
    path = results / "shortcut-loudness" / "toy.json"
    raw = json.loads(path.read_text())
    assert raw["schema_version"] == SCHEMA_VERSION == 3
    assert raw["ceiling"] is None  # the toy corpus gives no rating counts
    loaded = TaskResult.load(path)
    assert loaded.schema_version == 3
    assert loaded.model_dump(mode="json", by_alias=True, exclude_unset=True) == raw
    record = RunRecord.load(run_record_path(path))
    assert record.schema_version == 3 and record.submission == "shortcut-loudness"
    assert record.results_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


OFFICIAL = sorted(
    p
    for p in (REPO / "leaderboard" / "results").rglob("*.json")
    if not p.name.endswith((".run.json", ".failure.json")) and p.parent.name != "probes"
)
PROBES = sorted((REPO / "leaderboard" / "results").glob("*/probes/*.json"))


@pytest.mark.parametrize("path", OFFICIAL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_typed_record_is_the_file_byte_for_byte(path: Path) -> None:
    """`evaluate` builds the `TaskResult` and writes its `json_text()`: that must be the committed
    file exactly, or a typed record would silently change what results say."""
    assert TaskResult.load(path).json_text() == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", PROBES, ids=lambda p: f"{p.parents[1].name}/probes/{p.name}")
def test_the_probe_records_validate_and_are_their_own_text(path: Path) -> None:
    """Each committed probe record validates as `ProbesResult` (strict JSON: no NaN) and is the
    text `benchmark.probe` writes from it."""
    import json

    from benchmark.results.schema import PROBES_SCHEMA_VERSION, ProbesResult

    text = path.read_text(encoding="utf-8")
    record = ProbesResult.model_validate(json.loads(text))
    assert record.probes_schema_version == PROBES_SCHEMA_VERSION
    dumped = json.dumps(record.model_dump(mode="json"), indent=1, sort_keys=True, allow_nan=False)
    assert dumped + "\n" == text


@pytest.mark.parametrize("limit", [None, 7])
def test_evaluate_returns_the_record_it_wrote(toy, tmp_path, limit):
    """The typed record is built before the file and the file is its text: a full run leaves the
    quick-run block out, a quick run has it."""
    from benchmark.pipeline import evaluate_task

    _, prepared = toy
    out = tmp_path / "r"
    record = evaluate_task(
        _submission(CountingRms()), prepared, results_root=out, config=QUIET, limit=limit
    )
    name = "toy.json" if limit is None else "toy.partial.json"
    assert record.json_text().encode() == (out / "counting" / name).read_bytes()
    assert ("partial" in record.as_json()) == (limit is not None)
    assert "reliability_filter" not in record.as_json()
    assert evaluate(_submission(CountingRms()), prepared, results_root=out, config=QUIET,
                    limit=limit) == record.as_json()  # fmt: skip


@pytest.mark.parametrize(
    ("value", "shown", "todo"),
    [
        (None, "missing", "rerun `mosrm evaluate shortcut-loudness --task toy`"),
        (4, "4", "upgrade mosrm-bench"),
        (0, "0", "rerun `mosrm evaluate shortcut-loudness --task toy`"),
        ("1", '"1"', "rerun"),
    ],
)
def test_a_missing_or_unknown_schema_version_is_refused_by_every_reader(run, value, shown, todo):
    _, results = run
    path = results / "shortcut-loudness" / "toy.json"

    def change(raw: dict) -> None:
        if value is None:
            del raw["schema_version"]
        else:
            raw["schema_version"] = value

    _edit(path, change)
    pattern = (
        rf"{path}: field 'schema_version' is {shown}.*this harness reads results schema version 3: "
    )
    readers = [(TaskResult.load, path), (load_results, results), (mb.load_results, results)]
    for read, arg in readers:
        with pytest.raises(MosrmError, match=pattern) as caught:
            read(arg)
        assert "\n" not in str(caught.value) and todo in str(caught.value)
    with pytest.raises(ValidationError, match="schema_version"):
        TaskResult.model_validate(json.loads(path.read_text()))  # no way round it


def test_a_version_2_result_is_refused_in_one_line(run):
    """Version 2 intervals generalise over clips only: never read beside version 3's."""
    _, results = run
    path = results / "shortcut-loudness" / "toy.json"
    _edit(path, lambda raw: raw.update(schema_version=2))
    for read, arg in [(TaskResult.load, path), (load_results, results), (mb.load_results, results)]:
        with pytest.raises(MosrmError, match=rf"{path}: field 'schema_version' is 2.*version 3: "):
            read(arg)


def test_a_run_record_of_an_unknown_version_is_refused(run):
    _, results = run
    record = run_record_path(results / "shortcut-loudness" / "toy.json")
    _edit(record, lambda raw: raw.update(schema_version=7))
    with pytest.raises(DataError, match=r"toy\.run\.json: field 'schema_version' is 7.*upgrade"):
        RunRecord.load(record)


def test_run_records_are_not_results():
    assert run_record_path("r/s/toy.json").name == "toy.run.json"
    assert run_record_path("r/s/toy@dev.json").name == "toy@dev.run.json"
    assert run_record_path("r/s/toy.partial.json").name == "toy.partial.run.json"
    with pytest.raises(ValueError):
        run_record_path("r/s/toy.run.json")


# ---------------------------------------------------------------- the run record


def test_run_record_counts_the_cache_and_a_reproducing_rerun_touches_nothing(toy, tmp_path):
    _, prepared = toy
    root = tmp_path / "r"
    first = CountingRms()
    evaluate(_submission(first), prepared, results_root=root, config=QUIET)
    path = root / "counting" / "toy.json"
    record_path = run_record_path(path)
    record = RunRecord.load(record_path)
    assert record.results_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record.wall_time.total_s >= record.wall_time.score_s > 0
    assert record.n_pairs == 130 and record.n_clips == 24 == len(set(first.seen))
    assert record.score_cache.clips_computed == 24 and record.score_cache.clips_from_cache == 0
    assert record.pairs_per_s is not None and record.pairs_per_s > 0
    assert record.device == "cpu" and record.dtype == "float32" and record.autocast is None
    assert record.batch_size == QUIET.max_batch_size
    assert record.hardware.logical_cores and record.hardware.python and record.hardware.torch
    assert record.finished_utc.endswith("Z")
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (path, record_path)}

    # the same numbers again, all from the cache: neither file is touched
    again = CountingRms()
    evaluate(_submission(again), prepared, results_root=root, config=QUIET)
    assert again.seen == []
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (path, record_path)} == before

    # a lost run record is written again (saying all came from the cache); the results stay
    record_path.unlink()
    evaluate(_submission(CountingRms()), prepared, results_root=root, config=QUIET)
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before[path]
    cached = RunRecord.load(record_path)
    assert (cached.score_cache.clips_from_cache, cached.score_cache.clips_computed) == (24, 0)

    # other numbers (another model) replace both
    other = _submission(CountingRms(), fingerprint="e" * 32)
    evaluate(other, prepared, results_root=root, config=QUIET)
    assert path.read_bytes() != before[path][0]
    new = RunRecord.load(record_path)
    assert new.results_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert new.score_cache.clips_computed == 24


def test_a_judges_run_record_counts_pair_units(toy, tmp_path):
    _, prepared = toy
    judge = CountingJudge()
    evaluate(
        _submission(judge, kind="pairwise"),
        prepared,
        results_root=tmp_path,
        config=QUIET,
        triplets=20,
    )
    record = RunRecord.load(tmp_path / "counting" / "toy.run.json")
    use = record.score_cache
    assert use.clips_computed == use.clips_from_cache == 0
    # each unordered pair is asked in both orders; the triplets reuse some of the table's pairs
    assert use.pairs_computed * 2 == judge.asked and use.pairs_computed >= 130
    assert use.pairs_from_cache > 0


# ---------------------------------------------------------------- mosrm validate-results


def test_fresh_results_validate(run, capsys):
    repo, results = run
    rc, lines, out = _validate(repo, results, capsys)
    assert rc == 0, out
    assert set(lines) == {f"{s}/toy.json" for s in SUBS}
    assert all(line.startswith("✓") for line in lines.values())
    assert "2 results file(s): 2 passed, 0 failed" in out


def test_an_edited_metric_fails(run, capsys):
    repo, results = run
    path = results / "shortcut-loudness" / "toy.json"
    _edit(path, lambda raw: raw["metrics"]["overall"].update(accuracy=0.99))
    rc, lines, _ = _validate(repo, results, capsys)
    line = lines["shortcut-loudness/toy.json"]
    assert rc == 1 and line.startswith("✗")
    assert "metrics.overall.accuracy is 0.99 in the JSON" in line
    assert "results_sha256" in line  # the run record describes other bytes
    assert lines["shortcut-random/toy.json"].startswith("✓")


def test_a_changed_prediction_fails(run, capsys):
    repo, results = run
    pred_path = results / "shortcut-loudness" / "toy.predictions.parquet"
    pred = pq.read_table(pred_path)
    a, b = pred.column("score_a"), pred.column("score_b")
    swapped = pred.set_column(pred.column_names.index("score_a"), "score_a", b)
    swapped = swapped.set_column(pred.column_names.index("score_b"), "score_b", a)
    pq.write_table(swapped, pred_path)
    rc, lines, _ = _validate(repo, results, capsys)
    assert rc == 1 and "from the predictions" in lines["shortcut-loudness/toy.json"]

    chosen = pred.column("chosen").to_pylist()
    chosen[3] = "a" if chosen[3] == "b" else "b"
    flipped = pred.set_column(pred.column_names.index("chosen"), "chosen", pa.array(chosen))
    pq.write_table(flipped, pred_path)
    rc, lines, _ = _validate(repo, results, capsys)
    pair = pred.column("pair_id")[3].as_py()
    assert rc == 1
    assert (
        f"predictions row 3 (pair {pair}) has chosen = '{chosen[3]}'"
        in lines["shortcut-loudness/toy.json"]
    )


def test_a_wrong_pair_file_hash_fails(run, capsys):
    repo, results = run
    _edit(
        results / "shortcut-random" / "toy.json", lambda raw: raw.update(pair_file_sha256="0" * 64)
    )
    rc, lines, _ = _validate(repo, results, capsys)
    line = lines["shortcut-random/toy.json"]
    assert rc == 1 and "field 'pair_file_sha256' is 000000000000…" in line
    assert "not the pairs of toy v1" in line


def test_a_changed_or_absent_submission_folder(run, capsys):
    repo, results = run
    (repo / "submissions" / "shortcut-random" / "notes.txt").write_text("changed after the run\n")
    rc, lines, _ = _validate(repo, results, capsys)
    line = lines["shortcut-random/toy.json"]
    assert rc == 1 and "field 'model_fingerprint'" in line and "the folder changed" in line

    empty = repo / "no-submissions"
    empty.mkdir()
    rc, lines, _ = _validate(repo, results, capsys, "--submissions", str(empty))
    assert (
        rc == 1
        and "unverified (fingerprint: no submission folder" in lines["shortcut-loudness/toy.json"]
    )
    rc, lines, out = _validate(
        repo, results, capsys, "--submissions", str(empty), "--allow-unverified"
    )
    assert rc == 0 and "2 unverified (allowed)" in out
    assert lines["shortcut-loudness/toy.json"].startswith("✓")


def test_a_trained_reference_baseline_is_checked_in_the_trained_home(run, capsys):
    """Reference baselines trained by `mosrm run` have no submissions/ folder: their copies under
    `$MOSRM_HOME/trained/<key>/<name>/` are what the fingerprint is checked against."""
    import shutil

    from benchmark.paths import home

    repo, results = run
    empty = repo / "no-submissions"
    empty.mkdir()
    trained = home() / "trained"
    shutil.copytree(repo / "submissions" / "shortcut-random", trained / "k1" / "shortcut-random")
    rc, lines, _ = _validate(repo, results, capsys, "--submissions", str(empty))
    assert lines["shortcut-random/toy.json"].startswith("✓")
    assert "unverified" in lines["shortcut-loudness/toy.json"]  # no trained copy of it here
    assert "no trained reference baseline" in lines["shortcut-loudness/toy.json"]

    (trained / "k1" / "shortcut-random" / "notes.txt").write_text("retrained differently\n")
    rc, lines, _ = _validate(repo, results, capsys, "--submissions", str(empty))
    line = lines["shortcut-random/toy.json"]
    assert rc == 1 and "none of the 1 trained cop(ies) of shortcut-random" in line
    # another training key holding the copy that was run: verified again
    shutil.copytree(repo / "submissions" / "shortcut-random", trained / "k2" / "shortcut-random")
    rc, lines, _ = _validate(repo, results, capsys, "--submissions", str(empty))
    assert lines["shortcut-random/toy.json"].startswith("✓")


def test_an_unknown_schema_version_or_a_missing_run_record_fails(run, capsys):
    repo, results = run
    _edit(results / "shortcut-random" / "toy.json", lambda raw: raw.update(schema_version=99))
    (results / "shortcut-loudness" / "toy.run.json").unlink()
    rc, lines, out = _validate(repo, results, capsys)
    assert rc == 1 and "2 failed" in out
    assert "field 'schema_version' is 99" in lines["shortcut-random/toy.json"]
    assert "run record toy.run.json missing" in lines["shortcut-loudness/toy.json"]


def test_a_partial_result_fails(run, capsys):
    repo, results = run
    args = ["--repo", str(repo), "evaluate", "shortcut-loudness", "--task", "toy", "--quiet"]
    assert main([*args, "--results", str(results), "--limit", "10"]) == 0
    capsys.readouterr()
    rc, lines, _ = _validate(repo, results, capsys)
    assert rc == 1
    assert "must not be submitted" in lines["shortcut-loudness/toy.partial.json"]
    assert lines["shortcut-loudness/toy.json"].startswith("✓")


def test_the_ceiling_is_recomputed_and_filtered_views_fail(tmp_path, capsys):
    """With rating counts the results carry a ceiling: validate-results recomputes it from the
    predictions and the task's clip table; an edited one fails, and a --min-reliability view
    must not be submitted."""
    repo = write_toy_repo(tmp_path / "toy", rated=True)
    results = tmp_path / "results"
    args = ["--repo", str(repo), "evaluate", *SUBS, "--task", "toy", "--quiet"]
    assert main([*args, "--results", str(results)]) == 0
    path = results / "shortcut-loudness" / "toy.json"
    assert json.loads(path.read_text())["ceiling"]["overall"]["n_rated"] > 0
    capsys.readouterr()
    rc, lines, out = _validate(repo, results, capsys)
    assert rc == 0, out
    _edit(path, lambda raw: raw["ceiling"]["by_bin"]["0"].update(ceiling=0.99))
    rc, lines, _ = _validate(repo, results, capsys)
    assert (
        rc == 1
        and "ceiling.by_bin.0.ceiling is 0.99 in the JSON" in lines["shortcut-loudness/toy.json"]
    )
    assert lines["shortcut-random/toy.json"].startswith("✓")
    loud = ["--repo", str(repo), "evaluate", "shortcut-random", "--task", "toy", "--quiet"]
    assert main([*loud, "--results", str(results), "--min-reliability", "0.9"]) == 0
    capsys.readouterr()
    rc, lines, _ = _validate(repo, results, capsys)
    (name,) = [k for k in lines if ".min-rel-" in k]
    assert "reliability-filtered results (--min-reliability) must not be submitted" in lines[name]


def test_without_data_the_lock_file_decides(run, capsys, tmp_path):
    repo, results = run
    nowhere = ["--data-root", f"toy={tmp_path / 'no-data'}"]
    rc, lines, _ = _validate(repo, results, capsys, *nowhere)
    line = lines["shortcut-loudness/toy.json"]
    assert rc == 1
    assert "unverified (pair file: no 'toy' data here, no entry in pair-files.lock.json)" in line

    assert main(["--repo", str(repo), "validate-results", "--update-lock"]) == 0
    lock = repo / "tasks" / LOCK_NAME  # the workspace's own lock, for its own task
    text = lock.read_text()
    sha = json.loads((results / "shortcut-loudness" / "toy.json").read_text())["pair_file_sha256"]
    assert read_lock(lock) == {"toy": {"version": 1, "splits": {"test": sha}}}
    assert main(["--repo", str(repo), "validate-results", "--update-lock"]) == 0
    assert lock.read_text() == text  # deterministic
    capsys.readouterr()
    rc, lines, out = _validate(repo, results, capsys, *nowhere)
    assert rc == 0, out
    assert (
        "(pair rows not compared: no pair file built here)" in lines["shortcut-loudness/toy.json"]
    )

    lock.write_text(json.dumps({"toy": {"version": 1, "splits": {"test": "1" * 64}}}))
    rc, lines, _ = _validate(repo, results, capsys, *nowhere)
    assert (
        rc == 1 and "pair-files.lock.json's is 111111111111…" in lines["shortcut-loudness/toy.json"]
    )
    lock.write_text(json.dumps({"toy": {"version": 2, "splits": {"test": sha}}}))
    rc, lines, _ = _validate(repo, results, capsys, *nowhere)
    assert (
        rc == 1
        and "pair-files.lock.json has it at version 2" in lines["shortcut-loudness/toy.json"]
    )
    lock.write_text(json.dumps({"toy": {"version": 1}}))
    assert main(["--repo", str(repo), "validate-results", "--update-lock"]) == 2
    assert "pair-files.lock.json: entry 'toy' must be" in capsys.readouterr().err


def test_the_committed_lock_covers_the_demo():
    shipped = REPO / "benchmark" / "shipped" / "tasks"
    lock = read_lock(shipped / LOCK_NAME)
    demo = load_task_file(shipped / "demo.yaml")
    assert lock["demo"]["version"] == demo.spec.version
    assert set(lock["demo"]["splits"]) == set(demo.spec.pairs)
    assert (shipped / LOCK_NAME).read_text() == json.dumps(lock, indent=2, sort_keys=True) + "\n"
