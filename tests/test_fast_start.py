"""Fast start (issue 12, item 3): an evaluation served wholly from the score cache imports no
torch and no scipy, and starts no sandbox, yet writes the very bytes a run that built and
ran the model wrote. Structural checks, not timings (`benchmarks/bench_start.py` times it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from benchmark.data.tasks import load_task_file
from benchmark.errors import SubmissionError
from benchmark.pairs.prepare import prepare
from benchmark.pipeline import evaluate
from benchmark.scoring import model_facts
from benchmark.scoring.config import ScoringConfig
from benchmark.scoring.model_facts import ModelFacts
from benchmark.scoring.models import load_submission, model_info
from benchmark.scoring.sandbox import SandboxedModel, bubblewrap
from tests.toy_task import REPO, write_toy_repo

HEAVY = ("torch", "scipy", "scipy.stats", "pyarrow.dataset")

# runs the CLI in a fresh interpreter and says which heavy modules it imported by the end
RUNNER = f"""
import json, sys
from benchmark.cli import main
rc = main(sys.argv[1:])
print("IMPORTED " + json.dumps([m for m in {HEAVY!r} if m in sys.modules]))
sys.exit(rc)
"""


def _evaluate_cli(repo: Path, results: Path, submission: str) -> list[str]:
    cmd = [sys.executable, "-c", RUNNER, "--repo", str(repo), "evaluate", submission]
    cmd += ["--task", "toy", "--quiet", "--results", str(results)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("IMPORTED "))
    return json.loads(line.removeprefix("IMPORTED "))


def test_a_cached_evaluate_imports_neither_torch_nor_scipy(tmp_path: Path) -> None:
    repo = write_toy_repo(tmp_path)
    results = tmp_path / "results"
    # the first run prepares and scores: the model runs, so torch is imported (the probe works)
    assert "torch" in _evaluate_cli(repo, results, "shortcut-loudness")
    out = results / "shortcut-loudness"
    before = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    assert "toy.json" in before and "toy.run.json" in before
    # the rerun reuses the prepared task and every score: nothing heavy, files untouched (a
    # changed result would have been rewritten, with a new run record)
    assert _evaluate_cli(repo, results, "shortcut-loudness") == []
    assert {p.name: p.read_bytes() for p in sorted(out.iterdir())} == before


SANDBOXED = """
import torch


class Net(torch.nn.Module):
    sample_rate = 16000

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(3, 2)  # 8 parameters

    def score(self, batch):
        return batch.lengths.double()


def build():
    return Net()
"""


def _sandboxed(tmp_path: Path) -> Path:
    folder = tmp_path / "netsub"
    folder.mkdir()
    (folder / "model.py").write_text(SANDBOXED)
    spec = {"name": "netsub", "display_name": "Net", "kind": "scalar", "entry": "model.py:build"}
    (folder / "submission.yaml").write_text(yaml.safe_dump(spec))
    return folder


def test_a_cached_sandboxed_submission_is_not_started_and_writes_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = write_toy_repo(tmp_path)
    prepared = prepare(load_task_file(repo / "tasks" / "toy.yaml"))
    folder = _sandboxed(tmp_path)
    unsandboxed = bubblewrap() is None
    config = ScoringConfig(progress=False)

    first = load_submission(folder, unsandboxed=unsandboxed)
    assert model_facts.recorded(first.fingerprint) is None
    try:
        evaluate(first, prepared, results_root=tmp_path / "a", config=config)
    finally:
        first.close()
    assert model_facts.recorded(first.fingerprint) == ModelFacts(16000, 8)

    def refuse(self: SandboxedModel) -> None:
        raise AssertionError("the sandbox was started for a fully cached evaluation")

    with monkeypatch.context() as patch:
        patch.setattr(SandboxedModel, "_start", refuse)
        again = load_submission(folder, unsandboxed=unsandboxed)
        assert again.fingerprint == first.fingerprint
        assert (model_info(again)["parameters"], model_info(again)["parameters_source"]) == (
            8,
            "measured",
        )
        evaluate(again, prepared, results_root=tmp_path / "b", config=config)
    for name in ("toy.json", "toy.predictions.parquet"):
        a = (tmp_path / "a" / "netsub" / name).read_bytes()
        assert a == (tmp_path / "b" / "netsub" / name).read_bytes(), name


def test_a_model_whose_sample_rate_changed_is_refused(tmp_path: Path) -> None:
    repo = write_toy_repo(tmp_path)
    prepared = prepare(load_task_file(repo / "tasks" / "toy.yaml"))
    folder = _sandboxed(tmp_path)
    fingerprint = load_submission(folder, unsandboxed=True).fingerprint
    # as if this folder's model had reported 8 kHz before: nothing is cached at that rate, so
    # the model is started, reports 16 kHz, and the run stops rather than mix the two
    model_facts.record(fingerprint, 8000, 8)
    sub = load_submission(folder, unsandboxed=bubblewrap() is None)
    assert sub.model.sample_rate == 8000  # known, not started
    with pytest.raises(SubmissionError, match="sample_rate 16000, but 8000"):
        try:
            evaluate(
                sub, prepared, results_root=tmp_path / "r", config=ScoringConfig(progress=False)
            )
        finally:
            sub.close()


def test_a_damaged_facts_record_is_ignored(tmp_path: Path) -> None:
    fingerprint = "ab" * 16
    path = model_facts.facts_path(fingerprint)
    path.parent.mkdir(parents=True)
    for text in (
        "not json",
        json.dumps({"fingerprint": fingerprint, "sample_rate": True, "parameters": 3}),
        json.dumps({"fingerprint": fingerprint, "sample_rate": 16000, "parameters": -1}),
        json.dumps({"fingerprint": "cd" * 16, "sample_rate": 16000, "parameters": 3}),
        json.dumps([16000, 3]),
    ):
        path.write_text(text)
        assert model_facts.recorded(fingerprint) is None, text
    model_facts.record(fingerprint, 16000, None)
    assert model_facts.recorded(fingerprint) == ModelFacts(16000, None)
    with pytest.raises(ValueError, match="not a model fingerprint"):
        model_facts.facts_path("../../etc/passwd")
