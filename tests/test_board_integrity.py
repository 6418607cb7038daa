"""The board's integrity rules (issue 22): what it refuses to rank, and what it refuses to pool.

- a result above its noise ceiling (the labels passed off as scores) is flagged and never ranked;
- predictions-only results are always self-reported, even if someone put them in the ledger;
- "All tasks" pools only the repository's official tasks, and never the same pairs twice.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmark.cli import main
from benchmark.leaderboard.data import board_data
from benchmark.leaderboard.exports import as_records, board_csv
from benchmark.leaderboard.markdown import markdown
from benchmark.stats.metrics import aggregate
from tests.toy_task import write_toy_repo

SUBS = ("shortcut-loudness", "shortcut-random")


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """The shortcuts on a toy task with rating counts (so results carry a noise ceiling)."""
    repo = write_toy_repo(tmp_path / "toy", rated=True)
    out = tmp_path / "results"
    args = ["--repo", str(repo), "evaluate", *SUBS, "--task", "toy", "--quiet"]
    assert main([*args, "--results", str(out)]) == 0
    return out


def _rewrite(path: Path, change) -> None:
    raw = json.loads(path.read_text())
    change(raw)
    path.write_text(json.dumps(raw, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def _labels_as_scores(results: Path, name: str, kind: str = "predictions") -> Path:
    """A submission whose "scores" are the test MOS (what the exported pairs make easy)."""
    shutil.copytree(results / "shortcut-random", results / name)
    pred_path = results / name / "toy.predictions.parquet"
    pred = pq.read_table(pred_path)
    for col, mos in (("score_a", "mos_a"), ("score_b", "mos_b")):
        i = pred.column_names.index(col)
        pred = pred.set_column(i, col, pa.array(pred.column(mos).to_numpy(), pa.float64()))
    pq.write_table(pred, pred_path)
    metrics = json.loads(json.dumps(aggregate(pred, bins=4)))

    def change(raw: dict) -> None:
        raw.update(submission=name, display_name="Labels as scores", kind=kind, metrics=metrics)
        raw.update(shortcut=False, baseline=False)

    _rewrite(results / name / "toy.json", change)
    return results / name / "toy.json"


def test_a_result_above_its_noise_ceiling_is_flagged_and_never_ranked(results):
    _labels_as_scores(results, "cheat")
    board = board_data(results)
    (task,) = board.tasks
    rows = {r.submission: r for r in task.rows}
    cheat = rows["cheat"]
    assert cheat.overall.accuracy == 1.0 and task.ceiling is not None
    # on 24 clips the overall interval is wide; the small-gap cells are where it shows
    assert {"bin 0", "dmos_le_0_5"} <= set(cheat.above_ceiling) and cheat.rank_low is None
    assert cheat.by_bin[0].ci_low > task.ceiling.by_bin[0].ci_high  # the premise, checked
    assert not any(r.above_ceiling for r in task.rows if r.submission != "cheat")
    assert [r.submission for r in task.rows][-1] == "cheat"  # after every ranked row
    assert all(r.rank_low is not None for r in task.rows if r.submission != "cheat")
    assert any("above the noise ceiling" in w for w in board.unranked["cheat"])
    text = markdown(board)
    assert "Labels as scores ⚑ above the ceiling" in text
    assert "check for label leakage" in text
    status = {r["submission"]: (r["status"], r["rank"]) for r in as_records(board_csv(board))}
    assert status["cheat"] == ("above-ceiling", "")
    # the harness's own report says so too, above and below the table
    from benchmark.results.report import format_result

    report = format_result(json.loads((results / "cheat" / "toy.json").read_text()))
    assert report.count("*** above what the labels allow (") == 2 and "bin 0" in report
    honest = format_result(json.loads((results / "shortcut-random" / "toy.json").read_text()))
    assert "above what the labels allow" not in honest


def test_predictions_only_results_are_always_self_reported(results):
    path = _labels_as_scores(results, "preds", kind="predictions")
    honest = results / "shortcut-loudness" / "toy.json"
    entry = {"submission": "preds", "rescored_utc": "2026-12-07T00:00:00Z", "hardware": "x"}
    ledger = {
        hashlib.sha256(path.read_bytes()).hexdigest(): entry,
        hashlib.sha256(honest.read_bytes()).hexdigest(): {**entry, "submission": SUBS[0]},
    }
    board = board_data(results, ledger=ledger)
    rows = {r.submission: r for r in board.tasks[0].rows}
    assert rows["preds"].verified is None
    assert rows["shortcut-loudness"].verified is not None
    assert rows["shortcut-random"].verified is None
    text = markdown(board)
    assert "✓ Verified (re-scored by the board's builder):" in text
    assert "Self-reported (not re-scored by the board's builder; ranked apart):" in text
    # ranked apart: each group has its own rank 1
    assert rows["shortcut-loudness"].rank_low == 1 and rows["shortcut-random"].rank_low == 1


def _copy_task(results: Path, sub: str, new: str) -> None:
    """`sub`'s toy result again, as task `new` (the same pairs under another name)."""
    folder = results / sub
    shutil.copy(folder / "toy.json", folder / f"{new}.json")
    shutil.copy(folder / "toy.run.json", folder / f"{new}.run.json")
    pred = pq.read_table(folder / "toy.predictions.parquet")
    i = pred.column_names.index("task")
    pred = pred.set_column(i, "task", pa.array([new] * pred.num_rows, pa.string()))
    pq.write_table(pred, folder / f"{new}.predictions.parquet")
    _rewrite(folder / f"{new}.json", lambda raw: raw.update(task=new))


def test_only_official_tasks_are_pooled_and_never_the_same_pairs_twice(results):
    # a user's private task: shown on its own, never in the ranking of the benchmark's corpora
    board = board_data(results, official_tasks=["bvcc", "somos"])
    assert [t.name for t in board.tasks] == ["toy"] and not board.summaries
    assert "not one of the official tasks" in board.not_pooled["toy"]
    assert "Not pooled here: toy (not one of the official tasks" in markdown(board)

    for sub in SUBS:
        _copy_task(results, sub, "toy_copy")
    board = board_data(results, official_tasks=["toy", "toy_copy"])
    (summary,) = board.summaries
    assert summary.tasks == ["toy"]  # the copy's pairs are not counted twice
    assert board.not_pooled == {"toy_copy": "the same pair file as toy"}
    assert summary.rows[0].pairs == board.tasks[0].n_pairs

    # the same clips under a different pair file: refused too
    for sub in SUBS:
        _rewrite(results / sub / "toy_copy.json", lambda raw: raw.update(pair_file_sha256="0" * 64))
    board = board_data(results, official_tasks=["toy", "toy_copy"])
    assert "clip(s) in common with toy" in board.not_pooled["toy_copy"]
    # without an official list (the library's default), every real task is pooled
    assert "toy" not in board_data(results).not_pooled
