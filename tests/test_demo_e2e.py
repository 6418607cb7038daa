"""Acceptance on the real demo task: `mosrm run` shows the shortcut baselines per bin with CIs, and
the demo pair files are reproducible to the byte (and move with the seed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from benchmark.cli import main
from benchmark.pipeline import prepare
from benchmark.tasks import load_task_file

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_run_and_reproducible_pairs(tmp_path, capsys):
    results = tmp_path / "results"
    args = ["--repo", str(REPO), "run", "--tasks", "demo", "--quiet", "--results", str(results)]
    assert main(args) == 0
    out = capsys.readouterr().out
    task = load_task_file(REPO / "tasks" / "demo.yaml")
    lines = [line for line in out.splitlines() if line.startswith("| Shortcut:")]
    assert {line.split("|")[1].split("(")[0].strip() for line in lines} >= {
        "Shortcut: random",
        "Shortcut: duration",
        "Shortcut: loudness",
    }
    for line in lines[:3]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        # overall + one cell per bin, each "acc [lo, hi]"
        per_bin = cells[2 : 2 + task.spec.bins]
        assert all("[" in c and "]" in c for c in [cells[1], *per_bin]), line
    for name in ("shortcut-random", "shortcut-duration", "shortcut-loudness"):
        record = json.loads((results / name / "demo.json").read_text())
        assert record["n_pairs"] >= 2000
        assert len(record["metrics"]["by_bin"]) == task.spec.bins

    first = prepare(task, out_dir=tmp_path / "a")
    again = prepare(task, out_dir=tmp_path / "b")
    assert first.pair_sha256 == again.pair_sha256
    assert first.clips.num_rows >= 400
    assert first.pairs("test").num_rows >= 2000

    spec = yaml.safe_load((REPO / "tasks" / "demo.yaml").read_text())
    spec["seed"] += 1
    del spec["card"]  # its notes_file is relative to the repository's tasks/ folder
    reseeded = tmp_path / "tasks" / "demo.yaml"
    reseeded.parent.mkdir()
    reseeded.write_text(yaml.safe_dump(spec))
    other = prepare(load_task_file(reseeded), data_root=first.data_root, out_dir=tmp_path / "c")
    assert other.clips.equals(first.clips)  # same corpus ...
    assert other.pair_sha256["test"] != first.pair_sha256["test"]  # ... different pairs
