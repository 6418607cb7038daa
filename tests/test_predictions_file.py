"""Predictions-only submissions: the same scores as the code path give the same results, and every
id problem is listed."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from benchmark.data.tasks import get_task
from benchmark.errors import SubmissionError
from benchmark.pairs.prepare import prepare
from benchmark.pipeline import evaluate
from benchmark.scoring.config import ScoringConfig
from benchmark.scoring.models import load_submission, read_spec
from tests.toy_task import write_toy_repo

IDENTITY = ("submission", "display_name", "kind", "model_fingerprint", "preprocessing", "model")
IDENTITY += ("baseline", "shortcut")


def _predictions_submission(root: Path, name: str, file: str, table: pa.Table) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    if file.endswith(".csv"):
        cols = table.column_names
        lines = [",".join(cols)]
        for row in table.to_pylist():
            lines.append(
                ",".join(repr(row[c]) if isinstance(row[c], float) else row[c] for c in cols)
            )
        (folder / file).write_text("\n".join(lines) + "\n")
    else:
        pq.write_table(table, folder / file)
    spec = {"name": name, "display_name": name, "kind": "predictions", "predictions": {"toy": file}}
    (folder / "submission.yaml").write_text(yaml.safe_dump(spec))
    return folder


@pytest.fixture
def scored(tmp_path):
    repo = write_toy_repo(tmp_path)
    prepared = prepare(get_task(repo / "tasks", "toy"))
    code = load_submission(repo / "submissions" / "shortcut-loudness")
    results = tmp_path / "results"
    result = evaluate(code, prepared, results_root=results, config=ScoringConfig(progress=False))
    pred = pq.read_table(results / "shortcut-loudness" / "toy.predictions.parquet")
    return tmp_path, prepared, result, pred


def _strip(result: dict) -> str:
    return json.dumps({k: v for k, v in result.items() if k not in IDENTITY}, sort_keys=True)


@pytest.mark.parametrize("file", ["scores.parquet", "scores.csv"])
def test_clip_scores_give_the_code_paths_results(scored, file):
    tmp_path, prepared, result, pred = scored
    scores = {}
    for side in ("a", "b"):
        for cid, s in zip(
            pred.column(f"clip_{side}").to_pylist(),
            pred.column(f"score_{side}").to_pylist(),
            strict=True,
        ):
            scores[cid] = s
    table = pa.table({"clip_id": list(scores), "score": list(scores.values())})
    folder = _predictions_submission(tmp_path / "subs", "files", file, table)
    sub = load_submission(folder)
    assert sub.model is None and not sub.sandboxed
    again = evaluate(sub, prepared, results_root=tmp_path / "r2")
    assert _strip(again) == _strip(result)
    got = pq.read_table(tmp_path / "r2" / "files" / "toy.predictions.parquet")
    assert got.select(["pair_id", "score_a", "score_b"]).equals(
        pred.select(["pair_id", "score_a", "score_b"])
    )
    assert again["preprocessing"] is None and again["kind"] == "predictions"


def test_pair_probabilities(scored):
    tmp_path, prepared, _, pred = scored
    p = [
        1.0 if a > b else 0.0 if a < b else 0.5
        for a, b in zip(
            pred.column("score_a").to_pylist(), pred.column("score_b").to_pylist(), strict=True
        )
    ]
    table = pa.table({"pair_id": pred.column("pair_id"), "p_a": pa.array(p)})
    folder = _predictions_submission(tmp_path / "subs", "pairs", "p.parquet", table)
    out = evaluate(load_submission(folder), prepared, results_root=tmp_path / "r3")
    assert out["metrics"]["overall"]["correct"] > 0


def test_id_problems_are_listed(scored):
    tmp_path, prepared, _, pred = scored
    ids = sorted(set(pred.column("clip_a").to_pylist()) | set(pred.column("clip_b").to_pylist()))
    cases = {
        "missing": (
            pa.table({"clip_id": ids[1:], "score": [0.5] * (len(ids) - 1)}),
            rf"1 clips of the pair index missing \({ids[0]}\)",
        ),
        "unknown": (
            pa.table({"clip_id": [*ids, "ghost"], "score": [0.5] * (len(ids) + 1)}),
            r"1 ids not in task 'toy' \(ghost\)",
        ),
        "dupe": (
            pa.table({"clip_id": [*ids, ids[0]], "score": [0.5] * (len(ids) + 1)}),
            rf"duplicate clip_ids: {ids[0]}",
        ),
        "nan": (
            pa.table({"clip_id": ids, "score": [float("nan")] + [0.5] * (len(ids) - 1)}),
            r"1 missing or non-finite",
        ),
        "columns": (
            pa.table({"id": ids, "value": [0.5] * len(ids)}),
            r"expected columns \(clip_id, score\) or \(pair_id, p_a\)",
        ),
        "range": (
            pa.table({"pair_id": pred.column("pair_id"), "p_a": [1.5] * pred.num_rows}),
            r"'p_a' must be in \[0, 1\]",
        ),
    }
    for name, (table, message) in cases.items():
        folder = _predictions_submission(tmp_path / "subs", name, "s.parquet", table)
        with pytest.raises(SubmissionError, match=message):
            evaluate(load_submission(folder), prepared, results_root=tmp_path / "r4")


def test_spec_rules(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    base = {"name": "bad", "display_name": "b", "kind": "predictions"}
    for extra, message in [
        ({}, "needs 'predictions"),
        ({"predictions": {"toy": "s.json"}}, r"\.parquet or \.csv"),
        ({"predictions": {"toy": "s.csv"}, "entry": "model.py:build"}, "runs no code"),
        ({"kind": "scalar", "predictions": {"toy": "s.csv"}, "entry": "m.py:b"}, "belong to kind"),
        ({"kind": "scalar"}, "needs an 'entry'"),
    ]:
        (folder / "submission.yaml").write_text(yaml.safe_dump({**base, **extra}))
        with pytest.raises(SubmissionError, match=message):
            read_spec(folder)
    (folder / "submission.yaml").write_text(
        yaml.safe_dump({**base, "predictions": {"toy": "../outside.csv"}})
    )
    with pytest.raises(SubmissionError, match="outside the submission folder"):
        load_submission(folder)


def test_validate_checks_a_predictions_folder_against_its_tasks(scored, capsys):
    """`mosrm validate` on a predictions folder runs no code: it reads each file and, where the
    task is prepared here, checks its ids against the pairs `evaluate` would score."""
    from benchmark.cli import main

    tmp_path, _, _, pred = scored
    clips = sorted(set(pred.column("clip_a").to_pylist()) | set(pred.column("clip_b").to_pylist()))
    table = pa.table({"clip_id": clips, "score": [float(i) for i in range(len(clips))]})
    folder = _predictions_submission(tmp_path / "subs", "mine", "scores.csv", table)
    repo = tmp_path / "repo"
    assert main(["--repo", str(repo), "validate", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "ok: submission 'mine' (predictions, no code runs)" in out
    assert f"toy: {len(clips)} clip scores in scores.csv cover all" in out
    short = pa.table({"clip_id": clips[:-2], "score": [0.0] * (len(clips) - 2)})
    bad = _predictions_submission(tmp_path / "subs", "short", "scores.csv", short)
    assert main(["--repo", str(repo), "validate", str(bad)]) == 2
    assert "2 clips of the pair index missing" in capsys.readouterr().err


def test_a_predictions_submission_is_evaluated_only_on_the_tasks_it_covers(scored, capsys):
    """Another task prepared beside it is skipped with a line, not recorded as a failure."""
    from benchmark.cli import main

    tmp_path, _, _, pred = scored
    repo = tmp_path / "repo"
    text = (repo / "tasks" / "toy.yaml").read_text().replace("name: toy", "name: toy2")
    (repo / "tasks" / "toy2.yaml").write_text(text)
    clips = sorted(set(pred.column("clip_a").to_pylist()) | set(pred.column("clip_b").to_pylist()))
    table = pa.table({"clip_id": clips, "score": [float(i) for i in range(len(clips))]})
    folder = _predictions_submission(tmp_path / "subs", "mine", "scores.parquet", table)
    results = tmp_path / "out"
    args = ["--repo", str(repo), "evaluate", str(folder), "--task", "toy", "--task", "toy2"]
    assert main([*args, "--quiet", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "skip mine on toy2: it has no predictions for that task" in out
    assert (results / "mine" / "toy.json").is_file()
    assert not list((results / "mine").glob("toy2*"))


def test_export_clips_lists_the_scored_audio_and_round_trips_into_a_submission(scored, capsys):
    """`mosrm export-clips` gives every clip of the eval pairs with the absolute path of the
    16 kHz WAV the harness scores; scores written against it evaluate."""
    import csv

    import soundfile as sf

    from benchmark.cli import main

    tmp_path, prepared, _, pred = scored
    repo = tmp_path / "repo"
    out = tmp_path / "clips.csv"
    assert main(["--repo", str(repo), "export-clips", "toy", str(out), "--quiet"]) == 0
    rows = list(csv.DictReader(out.open()))
    wanted = set(pred.column("clip_a").to_pylist()) | set(pred.column("clip_b").to_pylist())
    assert [r["clip_id"] for r in rows] == sorted(wanted)
    for r in rows:
        path = Path(r["audio_path"])
        assert path.is_absolute() and sf.info(path).samplerate == int(r["sample_rate"]) == 16000
    assert {r["system"] for r in rows} == {f"sys{i}" for i in range(4)}
    assert "mos" not in rows[0]  # no labels
    # a predictions author scores them (here: file size) and submits
    table = pa.table(
        {"clip_id": [r["clip_id"] for r in rows],
         "score": [float(Path(r["audio_path"]).stat().st_size) for r in rows]}
    )  # fmt: skip
    folder = _predictions_submission(tmp_path / "subs", "by-size", "scores.csv", table)
    assert main(["--repo", str(repo), "evaluate", str(folder), "--task", "toy", "--quiet",
                 "--results", str(tmp_path / "out")]) == 0  # fmt: skip
