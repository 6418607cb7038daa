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
from tests.sandbox_required import sandbox_needed
from tests.toy_task import write_toy_repo


def _tiny(
    folder, norm: str = "layer", labels: int = 1, normalize: bool | None = None, gain: float = 1.0
) -> None:
    """A tiny classifier; with `normalize` not None, also its feature extractor (as hub MOS
    predictors ship: `do_normalize`, and an attention mask only for LayerNorm CNNs). `gain`
    scales the last layer, so that its logits are of order 1 rather than 1e-4."""
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

    cfg = tiny_wav2vec2_config(norm, num_labels=labels, classifier_proj_size=8)
    torch.manual_seed(0)
    model = Wav2Vec2ForSequenceClassification(cfg)
    with torch.no_grad():
        model.classifier.weight.mul_(gain)
    model.save_pretrained(folder)
    if normalize is not None:
        Wav2Vec2FeatureExtractor(
            sampling_rate=16000,
            do_normalize=normalize,
            return_attention_mask=norm == "layer",
        ).save_pretrained(folder)


def _trusted_root():
    """Where the harness keeps folders it trained: trusted in-process (`benchmark.scoring.trust`). A
    stranger's hub entry runs sandboxed instead (tests/test_trusted_entries.py)."""
    from benchmark.paths import home

    return home() / "trained" / "0123abcd"


def _submission(root, name: str, **params) -> object:
    folder = root / name
    folder.mkdir(parents=True)
    _tiny(
        folder / "model",
        norm=params.pop("norm", "layer"),
        labels=params.pop("labels", 1),
        normalize=params.pop("normalize", None),
    )
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


@pytest.mark.parametrize("norm", ["layer", "group"])
@pytest.mark.parametrize("normalize", [True, False])
def test_scores_are_the_models_own_feature_extractor_then_its_raw_logits(
    tmp_path, monkeypatch, norm, normalize
):
    """The reference is what the model's authors run: its feature extractor on each clip, then the
    model, then the raw logit (no softmax). A batch of clips of different lengths through the
    adapter gives the same numbers to 1e-5; with do_normalize the raw waveform would not."""
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    from benchmark.baselines.hub import HubScalar
    from benchmark.data.batch import Batch

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tmp_path / "m"
    _tiny(folder, norm=norm, normalize=normalize, gain=1000.0)
    adapter = HubScalar(str(folder))
    fe = AutoFeatureExtractor.from_pretrained(str(folder), local_files_only=True)
    model = AutoModelForAudioClassification.from_pretrained(str(folder), local_files_only=True)
    model.eval()
    g = torch.Generator().manual_seed(1)
    lengths = [4000, 2500, 3300]  # speech-like, quiet with a DC offset, quiet
    clips = [
        s * torch.randn(n, generator=g) + o
        for n, s, o in zip(lengths, (0.3, 0.001, 0.01), (0.05, 0.5, 0.0), strict=True)
    ]
    wav = torch.zeros(len(clips), max(lengths))
    for i, c in enumerate(clips):
        wav[i, : c.numel()] = c
    batch = Batch(
        waveforms=wav,
        lengths=torch.tensor(lengths),
        sample_rate=16000,
        clip_ids=tuple(f"c{i}" for i in range(len(clips))),
    )
    with torch.no_grad():
        got = adapter.score(batch)
        want = torch.stack(
            [
                model(**fe(c.numpy(), sampling_rate=16000, return_tensors="pt")).logits[0, 0]
                for c in clips
            ]
        )
        raw = torch.stack([model(c[None, :]).logits[0, 0] for c in clips])
    assert want.abs().min() > 0.01  # logits of order 1e-1: 1e-5 is a real test
    assert (got.float() - want).abs().max() <= 1e-5, (got, want)
    assert adapter.sample_rate == 16000
    if normalize:  # the bug this guards against: raw waveforms score differently
        assert (raw - want).abs().max() > 0.05


def test_the_fingerprint_covers_the_feature_extractor(tmp_path, monkeypatch):
    from benchmark.baselines.hub import HubScalar

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    prints = []
    for normalize in (True, False, None):
        folder = tmp_path / str(normalize)
        _tiny(folder, normalize=normalize)
        prints.append(HubScalar(str(folder)).fingerprint())
    assert len(set(prints)) == 3


def test_a_sample_rate_against_the_feature_extractor_is_a_one_line_error(tmp_path, monkeypatch):
    from benchmark.baselines.hub import HubScalar

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _tiny(tmp_path / "m", normalize=True)
    with pytest.raises(SubmissionError, match="params.sample_rate 8000 but its feature extractor"):
        HubScalar(str(tmp_path / "m"), sample_rate=8000)


def test_quiet_silences_the_loading_bars_of_an_in_process_model(tmp_path, monkeypatch, capfd):
    """A trusted hub folder loads in this process, where transformers was imported before the
    command (as in a notebook, or here by earlier tests) and read its progress switch then:
    `--quiet` still silences its "Loading weights" bar."""
    import transformers  # noqa: F401

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = write_toy_repo(tmp_path)
    folder = _submission(_trusted_root(), "hub-quiet")
    args = ["--repo", str(repo), "evaluate", str(folder), "--task", "toy", "--quiet"]
    capfd.readouterr()
    assert main([*args, "--results", str(tmp_path / "results")]) == 0
    err = capfd.readouterr().err
    assert "Loading weights" not in err and "it/s]" not in err, err


@sandbox_needed()
def test_one_line_for_a_hub_model_pins_its_revision_and_runs_sandboxed(
    tmp_path, monkeypatch, capsys
):
    """`mosrm evaluate --model hf:ORG/NAME --task T`, offline, from a Hugging Face cache laid out
    as `snapshot_download` leaves it: the folder is written with the commit pinned, scored in the
    sandbox through the model's feature extractor, and stays on that commit until @REV moves it."""
    import yaml
    from huggingface_hub import constants

    from tests.baselines.tiny_hf import fake_hub_cache

    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # no test touches the network
    _tiny(tmp_path / "w1", normalize=True)
    fake_hub_cache(cache, "org/tiny-mos", tmp_path / "w1", "c" * 40)
    repo = write_toy_repo(tmp_path)
    results = tmp_path / "results"
    args = ["--repo", str(repo), "evaluate", "--task", "toy", "--quiet", "--results", str(results)]
    assert main([*args, "--model", "hf:org/tiny-mos"]) == 0
    folder = repo / "submissions" / "hf-org--tiny-mos"
    spec = yaml.safe_load((folder / "submission.yaml").read_text())
    assert spec["params"] == {"source": "org/tiny-mos", "revision": "c" * 40}
    record = json.loads((results / "hf-org--tiny-mos" / "toy.json").read_text())
    assert record["metrics"]["overall"]["n"] > 0 and record["model"]["revision"] == "c" * 40

    _tiny(tmp_path / "w2", normalize=False)  # new weights on main
    fake_hub_cache(cache, "org/tiny-mos", tmp_path / "w2", "d" * 40)
    assert main([*args, "--model", "hf:org/tiny-mos"]) == 0
    spec = yaml.safe_load((folder / "submission.yaml").read_text())
    assert spec["params"]["revision"] == "c" * 40  # pinned: the same weights as before
    assert main([*args, "--model", "hf:org/tiny-mos@main"]) == 0
    spec = yaml.safe_load((folder / "submission.yaml").read_text())
    assert spec["params"]["revision"] == "d" * 40
    moved = json.loads((results / "hf-org--tiny-mos" / "toy.json").read_text())
    assert moved["model_fingerprint"] != record["model_fingerprint"]

    capsys.readouterr()
    assert main([*args, "--model", "hf:org/not-there"]) == 2
    err = capsys.readouterr().err
    assert "--model hf:org/not-there" in err and "hub model 'org/not-there'" in err
    assert len(err.strip().splitlines()) == 1
