"""A Hugging Face audio classifier as a one-line submission, on a tiny local model (offline)."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from benchmark.cli import main
from benchmark.errors import SubmissionError
from benchmark.scoring.config import ScoringConfig
from benchmark.scoring.loop import score_clips
from benchmark.scoring.models import load_submission
from benchmark.scoring.smoke import mock_task
from tests.baselines.tiny_hf import tiny_wav2vec2_config
from tests.toy_task import write_toy_repo


def _tiny(folder, norm: str = "layer", labels: int = 1) -> None:
    from transformers import Wav2Vec2ForSequenceClassification

    cfg = tiny_wav2vec2_config(norm, num_labels=labels, classifier_proj_size=8)
    torch.manual_seed(0)
    Wav2Vec2ForSequenceClassification(cfg).save_pretrained(folder)


def _trusted_root():
    """Where the harness keeps folders it trained: trusted in-process (`benchmark.scoring.trust`). A
    stranger's hub entry runs sandboxed instead (tests/test_trusted_entries.py)."""
    from benchmark.paths import home

    return home() / "trained" / "0123abcd"


def _submission(root, name: str, **params) -> object:
    folder = root / name
    folder.mkdir(parents=True)
    _tiny(folder / "model", norm=params.pop("norm", "layer"), labels=params.pop("labels", 1))
    spec = {
        "name": name,
        "display_name": name,
        "kind": "scalar",
        "entry": "benchmark.baselines.hub:build",
        "params": {"source": "model", **params},
    }
    (folder / "submission.yaml").write_text(yaml.safe_dump(spec))
    return folder


@pytest.mark.parametrize("norm", ["layer", "group"])
def test_scores_do_not_depend_on_batch_size(tmp_path, monkeypatch, norm):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    sub = load_submission(_submission(_trusted_root(), f"hub-{norm}", norm=norm))
    assert sub.model.fingerprint().startswith("hub-v1-") and not sub.sandboxed
    data = tmp_path / "data"
    data.mkdir()
    clips, _ = mock_task(data)
    got = [
        score_clips(
            sub.model,
            clips,
            data,
            fingerprint=f"{norm}{b}",
            cache_path=tmp_path / f"{b}.sqlite",
            config=ScoringConfig(max_batch_size=b, progress=False, device="cpu"),
        )
        for b in (1, 12)
    ]
    assert max(abs(got[0][c] - got[1][c]) for c in got[0]) <= 1e-5
    assert len(set(got[0].values())) > 1  # it really scores the audio


def test_end_to_end_through_the_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = write_toy_repo(tmp_path)
    _submission(repo / "submissions", "hub-model")
    results = tmp_path / "results"
    args = ["--repo", str(repo), "evaluate", "hub-model", "--task", "toy", "--quiet"]
    assert main([*args, "--results", str(results)]) == 0
    record = json.loads((results / "hub-model" / "toy.json").read_text())
    assert record["metrics"]["overall"]["n"] > 0
    assert record["model"]["parameters"] > 0 and record["model"]["parameters_source"] == "measured"


def test_bad_params_are_one_line_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SubmissionError, match="params.output 3 is not one of its 2 output"):
        load_submission(_submission(_trusted_root(), "a", labels=2, output=3))
    folder = _submission(_trusted_root(), "b")
    spec = yaml.safe_load((folder / "submission.yaml").read_text())
    spec["params"]["source"] = "./gone"
    (folder / "submission.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(SubmissionError, match="local folder .*gone' not found"):
        load_submission(folder)
