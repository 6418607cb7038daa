"""Forged results do not validate; an honest folder re-scored enters the ledger (issue 22).

The forgeries are the ones a skeptic tried: a results folder whose "scores" are the labels
themselves (metrics recomputed so they follow from the predictions, the run record's hash
rewritten), dressed as one of the repository's baselines; and the same edit made in place to a
real submission's results, which only running the submission again can tell.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from benchmark.cli import main
from benchmark.results.ledger import read_ledger
from benchmark.stats.metrics import aggregate
from tests.toy_task import REPO, write_toy_repo

SUBS = ("shortcut-loudness", "shortcut-random")


@pytest.fixture
def run(tmp_path: Path) -> tuple[Path, Path]:
    repo = write_toy_repo(tmp_path / "toy")
    results = tmp_path / "results"
    args = ["--repo", str(repo), "evaluate", *SUBS, "--task", "toy", "--quiet"]
    assert main([*args, "--results", str(results)]) == 0
    return repo, results


def _display(name: str) -> str:
    spec = yaml.safe_load(
        (REPO / "benchmark" / "shipped" / "submissions" / name / "submission.yaml").read_text()
    )
    return str(spec["display_name"])


def _forge(results: Path, source: str, name: str, **fields: object) -> Path:
    """`source`'s results with the labels as scores, under `name`, every hash made to agree."""
    out = results / name
    if name != source:
        shutil.copytree(results / source, out)
    pred_path = out / "toy.predictions.parquet"
    pred = pq.read_table(pred_path)
    for col, mos in (("score_a", "mos_a"), ("score_b", "mos_b")):
        i = pred.column_names.index(col)
        pred = pred.set_column(i, col, pa.array(pred.column(mos).to_numpy(), pa.float64()))
    pq.write_table(pred, pred_path)
    path = out / "toy.json"
    raw = json.loads(path.read_text())
    raw["metrics"] = json.loads(json.dumps(aggregate(pred, bins=raw["bins"])))
    raw.update(submission=name, **fields)
    text = json.dumps(raw, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    path.write_text(text)
    record_path = out / "toy.run.json"
    record = json.loads(record_path.read_text())
    record.update(submission=name, results_sha256=hashlib.sha256(text.encode()).hexdigest())
    record_path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    assert raw["metrics"]["overall"]["accuracy"] == 1.0  # the labels agree with themselves
    return path


def _validate(repo: Path, results: Path, capsys, *extra: str) -> tuple[int, dict[str, str]]:
    rc = main(["--repo", str(repo), "validate-results", str(results), *extra])
    out = capsys.readouterr().out
    lines = {line.split()[1].rstrip(":"): line for line in out.splitlines() if line[:1] in "✓✗"}
    return rc, lines


def test_a_forged_baseline_fails_with_one_reason_per_wrong_field(run, capsys):
    repo, results = run
    _forge(
        results,
        "shortcut-random",
        "cheat",
        display_name=_display("shortcut-loudness"),
        baseline=True,
        zero_shot=True,
        synthetic=True,
        training_data=["toy:test"],
    )
    rc, lines = _validate(repo, results, capsys)
    assert rc == 1
    line = lines["cheat/toy.json"]
    assert line.startswith("✗")
    for field in ("baseline", "display_name", "synthetic", "zero_shot"):
        assert f"field '{field}'" in line, (field, line)
    assert "is not one of the repository's baselines" in line
    assert "unverified (fingerprint" in line  # no folder of that name: nothing ran it
    assert lines["shortcut-loudness/toy.json"].startswith("✓")


def test_labels_passed_off_as_a_real_submissions_scores_fail_only_the_rescore(run, capsys):
    repo, results = run
    forged = _forge(results, "shortcut-random", "shortcut-random")
    rc, lines = _validate(repo, results, capsys)
    # every hash and number agrees: without running the model this is self-reported only
    assert rc == 0 and lines["shortcut-random/toy.json"].startswith("✓")
    ledger = results.parent / "verified.json"  # beside the results folder
    rc, lines = _validate(repo, results, capsys, "--rescore", "--sample", "20")
    assert rc == 1
    line = lines["shortcut-random/toy.json"]
    assert "re-score:" in line and "of 20 sampled pairs differ" in line, line
    entries = read_ledger(ledger)
    honest = results / "shortcut-loudness" / "toy.json"
    assert hashlib.sha256(honest.read_bytes()).hexdigest() in entries
    assert hashlib.sha256(forged.read_bytes()).hexdigest() not in entries


def test_an_honest_folder_rescored_enters_the_ledger_by_its_bytes(run, capsys):
    repo, results = run
    rc, lines = _validate(repo, results, capsys, "--rescore", "--sample", "10")
    assert rc == 0, lines
    assert all("re-scored 10 pairs: agree" in line for line in lines.values()), lines
    entries = read_ledger(results.parent / "verified.json")
    for name in SUBS:
        path = results / name / "toy.json"
        got = entries[hashlib.sha256(path.read_bytes()).hexdigest()]
        assert (got["submission"], got["task"], got["pairs_rescored"]) == (name, "toy", 10)
        assert got["max_abs_diff"] <= 1e-6 and got["rescored_utc"].endswith("Z")
    # an edit of one byte is another file: the entry no longer covers it
    path = results / "shortcut-loudness" / "toy.json"
    path.write_text(path.read_text().replace('"seed": 3', '"seed": 4'))
    assert hashlib.sha256(path.read_bytes()).hexdigest() not in entries
