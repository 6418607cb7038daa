"""End to end on a tiny generated CSV task: prepare → evaluate → results → board, and bad input."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import yaml

from benchmark.cli import main
from benchmark.data.tasks import load_task_file
from benchmark.errors import DataError
from benchmark.pairs.prepare import prepare
from benchmark.pipeline import evaluate
from benchmark.scoring.config import ScoringConfig
from benchmark.scoring.models import load_submission
from tests.toy_task import write_toy_repo

REPO = Path(__file__).resolve().parents[1]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def toy_repo(tmp_path):
    """A checkout with one CSV task (4 systems x 6 sentences, 24 clips) and the shortcut submissions."""
    return write_toy_repo(tmp_path)


def _task(repo: Path, **patch):
    path = repo / "tasks" / "toy.yaml"
    if patch:
        spec = yaml.safe_load(path.read_text())
        spec.update(patch)
        path.write_text(yaml.safe_dump(spec))
    return load_task_file(path)


def test_prepare_is_deterministic_and_seed_sensitive(toy_repo, tmp_path):
    first = prepare(_task(toy_repo), out_dir=tmp_path / "p1")
    second = prepare(_task(toy_repo), out_dir=tmp_path / "p2")
    f1, f2 = first.pair_files["test"], second.pair_files["test"]
    assert _sha(f1) == _sha(f2) == first.pair_sha256["test"]
    assert pq.read_table(f1).num_rows == 130
    other = prepare(_task(toy_repo, seed=4), out_dir=tmp_path / "p3")
    assert other.pair_sha256["test"] != first.pair_sha256["test"]
    manifest = json.loads((tmp_path / "p1" / "manifest.json").read_text())
    assert manifest["pair_sha256"]["test"] == first.pair_sha256["test"]
    clips = first.clips.to_pylist()
    assert all(c["sample_rate"] == 16000 and c["duration"] > 0 for c in clips)


def test_results_json_fields_and_byte_stability(toy_repo, tmp_path):
    prepared = prepare(_task(toy_repo))
    sub = load_submission(toy_repo / "submissions" / "shortcut-loudness")
    out1, out16 = tmp_path / "r1", tmp_path / "r16"
    evaluate(
        sub, prepared, results_root=out1, config=ScoringConfig(max_batch_size=1, progress=False)
    )
    evaluate(
        sub, prepared, results_root=out16, config=ScoringConfig(max_batch_size=16, progress=False)
    )
    j1 = out1 / "shortcut-loudness" / "toy.json"
    j16 = out16 / "shortcut-loudness" / "toy.json"
    assert j1.read_bytes() == j16.read_bytes()
    p1 = out1 / "shortcut-loudness" / "toy.predictions.parquet"
    assert _sha(p1) == _sha(out16 / "shortcut-loudness" / "toy.predictions.parquet")
    result = json.loads(j1.read_text())
    for key in (
        "submission",
        "task",
        "task_version",
        "harness_version",
        "pair_file_sha256",
        "preprocessing",
        "seed",
        "metrics",
    ):
        assert key in result, key
    assert result["pair_file_sha256"] == prepared.pair_sha256["test"]
    overall = result["metrics"]["overall"]
    for key in ("accuracy", "ci_low", "ci_high", "n", "tie_rate"):
        assert key in overall
    assert overall["n"] == 130
    assert set(result["metrics"]["by_bin"]) == {"0", "1", "2", "3"}
    for cell in result["metrics"]["by_bin"].values():
        assert {"accuracy", "ci_low", "ci_high", "n", "tie_rate"} <= set(cell)
    assert sum(c["n"] for c in result["metrics"]["by_bin"].values()) == 130
    pred = pq.read_table(p1)
    assert pred.num_rows == 130 and {"score_a", "score_b"} <= set(pred.column_names)


def test_missing_audio_is_named(toy_repo):
    task = _task(toy_repo)
    (task.data_root() / "wav" / "s1_c2.wav").unlink()
    with pytest.raises(DataError, match=r"(?s)1 audio file\(s\) missing.*s1_c2\.wav"):
        prepare(task)


def test_empty_and_unreadable_audio_are_named(toy_repo):
    task = _task(toy_repo)
    sf.write(task.data_root() / "wav" / "s0_c0.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(DataError, match=r"s0_c0\.wav: empty audio"):
        prepare(task)
    (task.data_root() / "wav" / "s0_c0.wav").write_bytes(b"RIFF garbage")
    with pytest.raises(DataError, match=r"s0_c0\.wav: unreadable audio"):
        prepare(task)


def test_nan_audio_is_named_at_prepare_and_at_scoring(toy_repo, tmp_path):
    task = _task(toy_repo)
    bad = task.data_root() / "wav" / "s2_c3.wav"
    x = np.full(4000, 0.1, np.float32)
    x[100] = np.nan
    sf.write(bad, x, 16000, subtype="FLOAT")
    with pytest.raises(DataError, match=r"s2_c3\.wav.*non-finite"):
        prepare(task)  # the 16 kHz cache decodes every clip once
    prepared = prepare(task, resample=False)
    sub = load_submission(toy_repo / "submissions" / "shortcut-loudness")
    with pytest.raises(DataError, match=r"s2_c3\.wav"):
        evaluate(sub, prepared, results_root=tmp_path / "r", config=ScoringConfig(progress=False))


def test_duplicate_ids_and_range_errors_name_the_task_file(toy_repo):
    task = _task(toy_repo)
    csv = task.data_root() / "scores.csv"
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join([*lines, lines[1]]) + "\n")
    with pytest.raises(DataError, match=r"toy\.yaml: duplicate clip_id"):
        prepare(task)
    bad = lines[1].split(",")
    bad[1] = "9.5"
    csv.write_text("\n".join([lines[0], ",".join(bad), *lines[2:]]) + "\n")
    with pytest.raises(DataError, match=r"toy\.yaml: .*'mos' outside"):
        prepare(task)


def test_score_range_is_mapped_to_1_5(toy_repo):
    task = _task(toy_repo, score_range=[0, 10])
    prepared = prepare(task)
    csv_mos = {
        line.split(",")[0]: float(line.split(",")[1])
        for line in (task.data_root() / "scores.csv").read_text().splitlines()[1:]
    }
    for clip in prepared.clips.to_pylist():
        assert clip["mos"] == pytest.approx(1 + 0.4 * csv_mos[clip["clip_id"]])


def test_cli_run_shows_every_shortcut_per_bin(toy_repo, capsys):
    """`run` prints a short summary (the leaders of each task) and the paths; the board it
    writes has every bin. The workspace's own task, not the package's, is what it runs."""
    assert main(["--repo", str(toy_repo), "run", "--quiet"]) == 0
    out = capsys.readouterr().out
    for name in ("random", "duration", "loudness"):
        assert f"Shortcut: {name}" in out
    assert "toy: 3 model(s)" in out and "demo" not in out
    assert "| model |" not in out  # a summary of the board, not its tables
    summary = toy_repo / "results" / "summary.md"
    assert f"board:   {toy_repo / 'board' / 'README.md'}" in out
    text = summary.read_text()
    assert "bin 0 (Δ" in text and "bin 3 (Δ" in text
    assert "## All tasks" in text


def test_cli_errors_are_one_line(toy_repo, capsys):
    (toy_repo / "tasks" / "toy.yaml").write_text(
        (toy_repo / "tasks" / "toy.yaml").read_text() + "surprise: 1\n"
    )
    assert main(["--repo", str(toy_repo), "tasks"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "toy.yaml" in err and "'surprise'" in err


def test_cli_validate_and_compare(toy_repo, capsys):
    assert main(["--repo", str(toy_repo), "validate", str(toy_repo / "tasks" / "toy.yaml")]) == 0
    assert (
        main(
            ["--repo", str(toy_repo), "validate", str(toy_repo / "submissions" / "shortcut-random")]
        )
        == 0
    )
    assert main(["--repo", str(toy_repo), "run", "--quiet"]) == 0
    capsys.readouterr()
    args = [
        "--repo",
        str(toy_repo),
        "compare",
        "shortcut-loudness",
        "shortcut-random",
        "--task",
        "toy",
    ]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["overall"]["n"] > 0 and out["correction"].startswith("gatekeeping")
    assert out["primary"] == "overall"  # the rest: test_metrics.py
    # the default is a readable table: overall, per relation, per bin, with the adjusted p column
    assert main(args) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert "A = shortcut-loudness" in lines[0] and "p (adj.)" in text
    row = next(line for line in lines if line.startswith("overall"))
    o = out["overall"]
    assert f"{100 * o['difference']:+.1f}" in row and str(o["n"]) in row
    assert any(line.strip().startswith("same_content") for line in lines)
    assert any(line.strip().startswith("bin 0 (Δ") for line in lines)
    assert lines[-1].startswith("verdict: ")  # the one line to quote, last
    assert f"{100 * o['difference']:+.1f} [" in lines[-1]
    assert main([*args, "--relation", "same_system", "--json"]) == 0
    filtered = json.loads(capsys.readouterr().out)
    assert filtered["relation"] == "same_system"
    assert filtered["overall"]["n"] == out["by_relation"]["same_system"]["n"]
    assert main([*args, "--relation", "nonsense"]) == 2
    assert "no 'nonsense' pairs" in capsys.readouterr().err


def test_cli_prepare_reports_counts_and_shortfall(toy_repo, capsys):
    spec = yaml.safe_load((toy_repo / "tasks" / "toy.yaml").read_text())
    spec["pairs"]["test"]["same_content"] = 50  # the pool holds 36
    (toy_repo / "tasks" / "toy.yaml").write_text(yaml.safe_dump(spec))
    assert main(["--repo", str(toy_repo), "prepare", "toy"]) == 0
    out = capsys.readouterr().out
    assert "same_content 36/36" in out
    assert "shortfall in same_content" in out


def test_run_goes_on_past_a_broken_task_and_fails_at_the_end(toy_repo, tmp_path, capsys):

    from benchmark.cli import main
    from tests.layouts import bvcc

    bvcc.write(tmp_path / "bvcc", audio=False)  # metadata only: a full prepare must fail
    spec = yaml.safe_load((REPO / "benchmark" / "shipped" / "tasks" / "bvcc.yaml").read_text())
    spec["data"]["root"] = str(tmp_path / "bvcc")
    spec["name"] = "my-bvcc"  # a workspace task may not take a shipped task's name
    (toy_repo / "tasks" / "my-bvcc.yaml").write_text(yaml.safe_dump(spec))
    shutil.rmtree(toy_repo / "submissions" / "shortcut-loudness")
    results = tmp_path / "results"
    rc = main(["--repo", str(toy_repo), "run", "--quiet", "--results", str(results)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "1 task(s) could not be prepared" in err and "my-bvcc:" in err and "DATA/wav" in err
    assert (results / "shortcut-duration" / "toy.json").is_file()
    assert not (results / "shortcut-duration" / "my-bvcc.json").exists()


def test_evaluate_takes_several_tasks(toy_repo, capsys):
    """`--task` repeats: each task's result is written; a task without data stops the command
    before anything is scored, naming it."""
    text = (toy_repo / "tasks" / "toy.yaml").read_text().replace("name: toy", "name: toy2")
    (toy_repo / "tasks" / "toy2.yaml").write_text(text)
    results = toy_repo / "out"
    base = ["--repo", str(toy_repo), "evaluate", "shortcut-random", "--quiet"]
    assert main([*base, "--task", "toy", "--task", "toy2", "--results", str(results)]) == 0
    written = {p.name for p in (results / "shortcut-random").glob("*.json")}
    assert {"toy.json", "toy2.json"} <= written
    spec = yaml.safe_load(text)
    spec["name"], spec["data"]["root"] = "toy3", str(toy_repo / "nowhere")
    (toy_repo / "tasks" / "toy3.yaml").write_text(yaml.safe_dump(spec))
    capsys.readouterr()
    assert main([*base, "--task", "toy", "--task", "toy3", "--results", str(toy_repo / "o2")]) == 2
    assert "task 'toy3' has no data" in capsys.readouterr().err
    assert not (toy_repo / "o2").exists()
