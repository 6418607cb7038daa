"""Acceptance: hostile submissions scored in ONE `mosrm run` beside a good one.

Each misbehaviour ends as a recorded failure or is contained; the good submission is scored, the
board is rebuilt, the score cache and the labels are untouched, and the run exits non-zero.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from benchmark.cli import main
from benchmark.paths import prepared_dir, score_cache_path
from benchmark.sandbox import bubblewrap
from tests.toy_task import write_toy_repo

pytestmark = pytest.mark.skipif(bubblewrap() is None, reason="bubblewrap cannot run here")

CODE = """
import os, socket, sqlite3, sys, time

import numpy as np
import torch

HERE = os.path.dirname(__file__)
SECRETS = dict(line.split("=", 1) for line in open(os.path.join(HERE, "paths.txt")).read().split())


class Model:
    sample_rate = 16000

    def __init__(self, mode):
        self.mode = mode

    def score(self, batch):
        n, m = len(batch), self.mode
        if m == "good":
            x = batch.waveforms * batch.mask()
            return (x.pow(2).sum(1) / batch.lengths).sqrt().double()
        if m == "raise":
            raise RuntimeError("boom")
        if m == "exit0":
            raise SystemExit(0)
        if m == "sleep":
            time.sleep(3600)
        if m == "stubborn":
            while True:
                try:
                    time.sleep(0.05)
                except BaseException:  # swallows KeyboardInterrupt and friends
                    pass
        if m == "memory":
            np.ones(8 << 30, dtype=np.uint8)
        if m == "nan":
            return torch.full((n,), float("nan"))
        if m == "shape":
            return torch.zeros(n, 2)
        if m == "socket":
            try:
                socket.create_connection(("1.1.1.1", 443), timeout=2)
            except OSError:
                pass
            return torch.rand(n, generator=torch.Generator().manual_seed(n)).double()
        if m == "writer":
            for path in (SECRETS["victim"], os.path.join(HERE, "pwned.txt")):
                try:
                    open(path, "w").write("x")
                except OSError:
                    pass
            return torch.rand(n, generator=torch.Generator().manual_seed(n)).double()
        if m == "labels":  # cheat: read the prepared clip table and return the true MOS
            try:
                import pyarrow.parquet as pq

                mos = dict(zip(*pq.read_table(SECRETS["labels"], columns=["clip_id", "mos"]).to_pydict().values()))
                return torch.tensor([mos.get(c, 0.0) for c in batch.clip_ids], dtype=torch.float64)
            except Exception:
                return torch.rand(n, generator=torch.Generator().manual_seed(n)).double()
        if m == "cache":  # sabotage another submission's cached scores
            try:
                con = sqlite3.connect(SECRETS["cache"])
                con.execute("UPDATE clip_scores SET score = 0")
                con.commit()
            except Exception:
                pass
            return batch.lengths.double()
        raise AssertionError(m)


def build(mode):
    if mode == "build_raise":
        raise ValueError("cannot build")
    return Model(mode)
"""

MODES = {
    # failures: recorded, with the words the record must contain
    "raise": "RuntimeError: boom",
    "build_raise": "building the model failed: ValueError: cannot build",
    "import_exit": "building the model failed: SystemExit: 7",
    "exit0": "score() raised SystemExit",
    "sleep": "timeout",
    "stubborn": "timeout",
    "memory": "MemoryError",
    "nan": "non-finite",
    "shape": "shape [",
    # contained: scored, harmlessly
    "socket": None,
    "writer": None,
    "labels": None,
    "cache": None,
}


def _hostile(subs: Path, mode: str, paths: dict[str, Path], name: str | None = None) -> None:
    folder = subs / (name or f"z-{mode.replace('_', '-')}")
    folder.mkdir()
    code = CODE if mode != "import_exit" else "import sys\nsys.exit(7)\n" + CODE
    (folder / "model.py").write_text(code)
    (folder / "paths.txt").write_text("\n".join(f"{k}={v}" for k, v in paths.items()))
    spec = {
        "name": folder.name,
        "display_name": mode,
        "kind": "scalar",
        "entry": "model.py:build",
        "params": {"mode": "good" if mode == "import_exit" else mode},
    }
    (folder / "submission.yaml").write_text(yaml.safe_dump(spec))


def test_one_run_with_hostile_submissions(tmp_path, capsys):
    repo = write_toy_repo(tmp_path)
    subs = repo / "submissions"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    paths = {
        "victim": victim,
        "labels": prepared_dir("toy") / "clips.parquet",
        "cache": score_cache_path(),
    }
    _hostile(subs, "good", paths, name="a-good")  # scored first: sabotage would come after it
    for mode in MODES:
        _hostile(subs, mode, paths)
    results = tmp_path / "results"
    args = ["--repo", str(repo), "run", "--quiet", "--results", str(results)]
    args += ["--call-timeout", "5", "--memory-mb", "3072"]
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 2
    assert f"{sum(v is not None for v in MODES.values())} submission failure(s)" in err

    good = json.loads((results / "a-good" / "toy.json").read_text())
    assert good["metrics"]["overall"]["n"] > 0
    for mode, expected in MODES.items():
        name = f"z-{mode.replace('_', '-')}"
        failed = results / name / "toy.failed.json"
        if expected is None:
            assert not failed.exists(), (mode, failed.read_text() if failed.exists() else "")
            assert (results / name / "toy.json").is_file(), mode
        else:
            record = json.loads(failed.read_text())
            assert expected in record["reason"], (mode, record["reason"])
            assert not (results / name / "toy.json").exists()
            assert name in err
    # contained: labels unreadable (the cheat scores like a coin, not 100%), files untouched
    cheat = json.loads((results / "z-labels" / "toy.json").read_text())["metrics"]["overall"]
    assert cheat["accuracy"] < 0.75 and cheat["ci_low"] <= 0.5 <= cheat["ci_high"]
    assert victim.read_text() == "precious"
    assert not (subs / "z-writer" / "pwned.txt").exists()
    # the score cache was not rewritten: rescoring the good model from the cache gives its bytes
    before = pq.read_table(results / "a-good" / "toy.predictions.parquet")
    again = tmp_path / "again"
    assert (
        main(
            [
                "--repo",
                str(repo),
                "evaluate",
                "a-good",
                "--task",
                "toy",
                "--quiet",
                "--results",
                str(again),
            ]
        )
        == 0
    )
    after = pq.read_table(again / "a-good" / "toy.predictions.parquet")
    assert after.column("score_a").equals(before.column("score_a"))
    # the board was rebuilt and shows the failures as such
    board = (results / "summary.md").read_text()
    assert "a-good" in board or "good" in board
    assert board.count("✗") >= sum(v is not None for v in MODES.values())
