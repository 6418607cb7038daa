"""A multi-dimensional task end to end (issue 13): prepare, evaluate and the board on the NISQA
fixture, whose four quality dimensions order clips differently from the overall MOS."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchmark.cli import main
from benchmark.data.tables import read_parquet
from benchmark.leaderboard.data import board_data
from tests.layouts import nisqa

REPO = Path(__file__).resolve().parents[1]


def test_nisqa_noi_is_evaluated_and_boarded_apart_from_quality(tmp_path: Path) -> None:
    root = tmp_path / "nisqa"
    nisqa.write(root)
    results = tmp_path / "results"
    for task in ("nisqa", "nisqa_noi"):
        args = ["--repo", str(REPO), "evaluate", "shortcut-loudness", "shortcut-duration"]
        args += ["--task", task, "--data-root", str(root), "--results", str(results), "--quiet"]
        assert main(args) == 0
    for sub in ("shortcut-loudness", "shortcut-duration"):
        quality = json.loads((results / sub / "nisqa.json").read_text())
        noi = json.loads((results / sub / "nisqa_noi.json").read_text())
        assert quality["label"] == {"dimension": "quality", "column": None}
        assert noi["label"] == {"dimension": "noi", "column": "noi"}
        # NISQA publishes votes and a standard deviation per dimension: every pair is rated
        assert noi["ceiling"]["overall"]["n_rated"] == noi["n_pairs"]
        pred = read_parquet(results / sub / "nisqa_noi.predictions.parquet")
        rel = np.asarray(pred.column("label_reliability").to_pylist(), dtype=float)
        assert noi["ceiling"]["overall"]["ceiling"] == round(float(rel.mean()), 6)
    board = board_data(results)
    assert [(s.dimension, s.tasks) for s in board.summaries] == [
        ("quality", ["nisqa"]),
        ("noi", ["nisqa_noi"]),
    ]
    assert {t.name: t.dimension for t in board.tasks} == {"nisqa": "quality", "nisqa_noi": "noi"}
    assert all(t.ceiling is not None for t in board.tasks)
