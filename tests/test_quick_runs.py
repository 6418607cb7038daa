"""Quick runs (`mosrm evaluate --limit N`): a seeded subset, kept apart from full results and off
the board, sharing the score cache; and progress bars that name the submission."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from benchmark.cli import main
from benchmark.data.tasks import load_task_file
from benchmark.errors import MosrmError
from benchmark.leaderboard.board import render_markdown
from benchmark.pairs.prepare import PreparedTask, limit_pairs, prepare
from benchmark.pipeline import evaluate
from benchmark.scoring.config import ScoringConfig
from benchmark.scoring.loop import judge_pairs, score_clips
from benchmark.scoring.models import Batch, Submission, SubmissionSpec, load_submission
from tests.toy_task import write_toy_repo

QUIET = ScoringConfig(progress=False)
FINGERPRINT = "f00dfacec0ffee1234567890abcdef"


class CountingRms:
    """RMS of the valid samples; remembers every clip it was asked to score."""

    sample_rate = 16000

    def __init__(self) -> None:
        self.seen: list[str] = []

    def score(self, batch: Batch) -> torch.Tensor:
        self.seen.extend(batch.clip_ids)
        out = torch.empty(len(batch), dtype=torch.float64)
        for i, n in enumerate(batch.lengths.tolist()):
            out[i] = batch.waveforms[i, :n].double().pow(2).mean().sqrt()
        return out


class CountingJudge:
    """A pairwise judge from the RMS difference; remembers how many pairs it judged."""

    sample_rate = 16000

    def __init__(self) -> None:
        self.rms = CountingRms()
        self.pairs = 0

    def prefer(self, a: Batch, b: Batch) -> torch.Tensor:
        self.pairs += len(a)
        return 0.3 + 0.4 * torch.sigmoid(20 * (self.rms.score(a) - self.rms.score(b)))


def _submission(folder: Path, model: object, name: str, kind: str = "scalar") -> Submission:
    spec = SubmissionSpec(name=name, display_name=name.title(), kind=kind, entry="model.py:build")
    return Submission(spec=spec, folder=folder, model=model, fingerprint=FINGERPRINT)


@pytest.fixture
def toy(tmp_path) -> tuple[Path, PreparedTask]:
    """The toy checkout (24 clips, 130 test pairs), prepared without resampling (it is 16 kHz)."""
    base = tmp_path / "toy"
    repo = write_toy_repo(base)
    task = load_task_file(repo / "tasks" / "toy.yaml")
    return repo, prepare(task, out_dir=base / "prepared", resample=False)


def _ids(table) -> list[str]:
    return table.column("pair_id").to_pylist()


def test_subset_is_seeded_nested_in_file_order_and_recorded(toy):
    _, prepared = toy
    pairs = prepared.pairs("test")
    order = {pid: i for i, pid in enumerate(_ids(pairs))}
    a, rec_a = limit_pairs(pairs, 20, seed=3, task="toy", split="test")
    again, rec_again = limit_pairs(pairs, 20, seed=3, task="toy", split="test")
    assert _ids(a) == _ids(again) and rec_a == rec_again
    assert a.num_rows == 20 and len(set(_ids(a))) == 20  # without replacement
    rows = [order[p] for p in _ids(a)]
    assert rows == sorted(rows) and rows != list(range(20))  # file order, not a prefix
    assert a.to_pylist() == [pairs.slice(r, 1).to_pylist()[0] for r in rows]
    assert rec_a == {
        "limit": 20,
        "of": 130,
        "n": 20,
        "seed": 3,
        "seed_label": "mosrm.limit",
        "pair_ids_sha256": hashlib.sha256(json.dumps(_ids(a)).encode()).hexdigest(),
    }
    bigger, _ = limit_pairs(pairs, 40, seed=3, task="toy", split="test")
    assert set(_ids(a)) < set(_ids(bigger))  # a larger quick run reuses a smaller one's scores
    other, rec_other = limit_pairs(pairs, 20, seed=4, task="toy", split="test")
    assert _ids(other) != _ids(a) and rec_other["pair_ids_sha256"] != rec_a["pair_ids_sha256"]
    everything, rec_all = limit_pairs(pairs, 500, seed=3, task="toy", split="test")
    assert _ids(everything) == _ids(pairs)
    assert (rec_all["limit"], rec_all["of"], rec_all["n"]) == (500, 130, 130)
    with pytest.raises(ValueError, match="limit must be an integer >= 1"):
        limit_pairs(pairs, 0, seed=3, task="toy", split="test")


def test_quick_run_is_byte_stable_apart_from_full_results_and_feeds_the_cache(toy, tmp_path):
    repo, prepared = toy
    quick = CountingRms()
    sub = _submission(tmp_path, quick, "counting")
    out1, out2 = tmp_path / "r1", tmp_path / "r2"
    r = evaluate(sub, prepared, results_root=out1, config=QUIET, limit=5)
    folder = out1 / "counting"
    assert sorted(p.name for p in folder.iterdir()) == [
        "toy.partial.json",
        "toy.partial.predictions.parquet",
        "toy.partial.run.json",
    ]
    assert r["partial"]["limit"] == 5 and r["partial"]["of"] == 130 and r["n_pairs"] == 5
    assert r["metrics"]["overall"]["n"] == 5
    assert r["partial"]["triplets"] == 5  # scaled down; a scalar model samples none anyway
    pred = pq.read_table(folder / "toy.partial.predictions.parquet")
    subset, record = limit_pairs(prepared.pairs("test"), 5, seed=3, task="toy", split="test")
    assert (
        _ids(pred) == _ids(subset) and r["partial"]["pair_ids_sha256"] == record["pair_ids_sha256"]
    )
    used = set(subset.column("clip_a").to_pylist()) | set(subset.column("clip_b").to_pylist())
    assert len(used) < 24
    assert sorted(quick.seen) == sorted(used)  # each clip of the subset once, no others
    # same N → the same bytes (the second run is served from the cache)
    again = CountingRms()
    sub2 = _submission(tmp_path, again, "counting")
    evaluate(sub2, prepared, results_root=out2, config=QUIET, limit=5)
    assert again.seen == []
    for name in ("toy.partial.json", "toy.partial.predictions.parquet"):
        assert (out1 / "counting" / name).read_bytes() == (out2 / "counting" / name).read_bytes()
    # the full run beside it: only the clips the quick run did not score reach the model
    full = CountingRms()
    sub3 = _submission(tmp_path, full, "counting")
    result = evaluate(sub3, prepared, results_root=out1, config=QUIET)
    assert "partial" not in result and result["n_pairs"] == 130
    assert full.seen and not set(full.seen) & used
    assert len(full.seen) == 24 - len(used)
    assert (out1 / "counting" / "toy.json").is_file()
    assert (out1 / "counting" / "toy.partial.json").read_bytes() == (
        out2 / "counting" / "toy.partial.json"
    ).read_bytes()  # untouched by the full run
    # a quick result's scores equal the full run's on the same pairs
    full_pred = pq.read_table(out1 / "counting" / "toy.predictions.parquet").to_pylist()
    by_id = {row["pair_id"]: row for row in full_pred}
    for row in pred.to_pylist():
        assert row["score_a"] == by_id[row["pair_id"]]["score_a"]


def test_partial_results_never_enter_the_board(toy, tmp_path):
    repo, prepared = toy
    root = tmp_path / "results"
    subs = {
        n: load_submission(repo / "submissions" / n)
        for n in ("shortcut-loudness", "shortcut-random", "shortcut-duration")
    }
    for name in ("shortcut-loudness", "shortcut-random"):
        evaluate(subs[name], prepared, results_root=root, config=QUIET)
    before = render_markdown(root, repo / "submissions")
    assert "Shortcut: loudness" in before and "Shortcut: duration" not in before
    # a quick run beside a full one, and one of a submission with no full result at all
    evaluate(subs["shortcut-loudness"], prepared, results_root=root, config=QUIET, limit=7)
    evaluate(subs["shortcut-duration"], prepared, results_root=root, config=QUIET, limit=7)
    assert (root / "shortcut-duration" / "toy.partial.json").is_file()
    assert render_markdown(root, repo / "submissions").encode() == before.encode()
    # a partial result renamed into a full one's place is refused, not shown
    (root / "shortcut-duration" / "toy.partial.json").rename(
        root / "shortcut-duration" / "toy.json"
    )
    (root / "shortcut-duration" / "toy.partial.predictions.parquet").rename(
        root / "shortcut-duration" / "toy.predictions.parquet"
    )
    with pytest.raises(MosrmError, match="toy.json: field 'partial' is set"):
        render_markdown(root, repo / "submissions")


def test_pairwise_quick_run_scales_the_triplet_sample_down(toy, tmp_path):
    _, prepared = toy
    judge = CountingJudge()
    sub = _submission(tmp_path, judge, "judge", kind="pairwise")
    r = evaluate(sub, prepared, results_root=tmp_path / "r", config=QUIET, limit=6, triplets=50)
    assert r["partial"]["triplets"] == 6
    assert r["diagnostics"]["triplets"]["requested"] == 6
    assert r["diagnostics"]["triplets"]["n"] <= 6
    assert (tmp_path / "r" / "judge" / "toy.partial.triplets.parquet").is_file()
    assert not (tmp_path / "r" / "judge" / "toy.json").exists()
    assert judge.pairs <= 2 * (6 + 3 * 6)  # both orders of the pairs and the triplets' edges


def test_cli_limit_reports_partial_and_refuses_bad_values(toy, capsys):
    repo, _ = toy
    args = ["--repo", str(repo), "evaluate", "shortcut-loudness", "--task", "toy", "--quiet"]
    assert main([*args, "--limit", "1000"]) == 0
    out = capsys.readouterr().out
    assert "partial: 130 of 130 pairs" in out  # more than the pool: all pairs, still partial
    folder = repo / "results" / "shortcut-loudness"  # the workspace's
    record = json.loads((folder / "toy.partial.json").read_text())
    assert record["partial"]["limit"] == 1000 and record["partial"]["n"] == 130
    assert not (folder / "toy.json").exists()
    for bad in ("0", "-3", "x"):
        with pytest.raises(SystemExit) as exc:
            main([*args, "--limit", bad])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert "argument --limit" in err and len(err.strip().splitlines()[-1]) < 120


def test_progress_bars_name_the_submission_not_its_fingerprint(tmp_path, write_wav, caplog):
    """What the progress says (`benchmark.progress`: a bar on a terminal, these log lines
    elsewhere) names the submission, never its fingerprint."""
    caplog.set_level(logging.INFO, logger="benchmark.progress")
    from benchmark.data.tables import CLIP_SCHEMA, from_rows

    rows = []
    for i in range(3):
        write_wav(tmp_path / f"c{i}.wav", seconds=0.1, seed=i)
        rows.append(
            {
                "clip_id": f"c{i}",
                "corpus": "t",
                "split": "test",
                "audio_path": f"c{i}.wav",
                "mos": 1.0 + i,
                "sample_rate": 16000,
                "duration": 0.1,
            }
        )
    clips = from_rows(rows, CLIP_SCHEMA)
    loud = ScoringConfig(progress=True)
    fp = FINGERPRINT
    score_clips(CountingRms(), clips, tmp_path, fingerprint=fp, config=loud, label="my-model")
    judge = CountingJudge()
    judge_pairs(
        judge, ["c0"], ["c1"], clips, tmp_path, fingerprint=fp, config=loud, label="my-judge"
    )
    err = caplog.text
    assert "scoring my-model" in err and "judging my-judge" in err
    assert FINGERPRINT[:12] not in err
    # without a label (older callers) the bar still says what it does, never the fingerprint
    caplog.clear()
    score_clips(CountingRms(), clips, tmp_path, fingerprint="other-fp", config=loud)
    err = caplog.text
    assert "scoring" in err and "other-fp" not in err


def test_evaluate_labels_the_bar_with_the_submission_name(toy, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="benchmark.progress")
    _, prepared = toy
    sub = _submission(tmp_path, CountingRms(), "named-sub")
    evaluate(sub, prepared, results_root=tmp_path / "r", config=ScoringConfig(), limit=3)
    err = caplog.text
    assert "scoring named-sub" in err and FINGERPRINT[:12] not in err
