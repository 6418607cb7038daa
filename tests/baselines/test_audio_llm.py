"""A generative audio-LLM judge from one submission.yaml, on a tiny random Qwen2-Audio (offline)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from benchmark.baselines.audio_llm import build
from benchmark.cli import main
from benchmark.errors import SubmissionError
from benchmark.scoring.config import ScoringConfig
from benchmark.scoring.loop import score_pairs
from benchmark.scoring.models import Batch, load_submission
from benchmark.scoring.smoke import mock_task
from tests.baselines.tiny_hf import save_tiny_qwen2_audio
from tests.toy_task import write_toy_repo

RATE = 16000
# what the Qwen2-Audio chat template must make of the default prompt: one user turn holding both
# clips, then the assistant prefix, so that the next token is the answer
EXPECTED_TEXT = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\n"
    "Audio A: <|audio_bos|><|AUDIO|><|audio_eos|>\n"
    "Audio B: <|audio_bos|><|AUDIO|><|audio_eos|>\n"
    "Which clip sounds better, A or B? Answer with A or B.<|im_end|>\n"
    "<|im_start|>assistant\n"
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("qwen2-audio")
    save_tiny_qwen2_audio(folder)
    return folder


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _clips(n: int, seed: int) -> list[np.ndarray]:
    """Noisy tones of 0.2-1.8 s (all inside the tiny model's 2 s window), each of its own length."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        t = np.arange(int(RATE * (0.2 + 1.6 * ((i * 5 + seed) % n) / n))) / RATE
        tone = 0.3 * np.sin(2 * np.pi * (120 + 60 * i) * t)
        out.append((tone + 0.05 * (1 + i % 3) * rng.normal(size=t.size)).astype(np.float32))
    return out


def _batch(clips: list[np.ndarray], pad_with: float = 0.0) -> Batch:
    lengths = torch.tensor([len(c) for c in clips])
    x = torch.full((len(clips), int(lengths.max())), pad_with)
    for i, c in enumerate(clips):
        x[i, : len(c)] = torch.from_numpy(c)
    return Batch(x, lengths, RATE, tuple(str(i) for i in range(len(clips))))


def _direct(folder, a: np.ndarray, b: np.ndarray) -> float:
    """P(A) computed by hand: the processor and model called directly on one pair."""
    from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

    processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
    model = Qwen2AudioForConditionalGeneration.from_pretrained(folder, local_files_only=True)
    inputs = processor(text=[EXPECTED_TEXT], audio=[a, b], sampling_rate=RATE, return_tensors="pt")
    with torch.no_grad():
        logits = model.eval()(**inputs).logits[0, -1]
    ids = [processor.tokenizer.convert_tokens_to_ids(t) for t in ("A", "B")]
    return float(torch.softmax(logits[ids].double(), dim=0)[0])


def test_prefer_is_the_softmax_of_the_two_answer_logits(tiny):
    judge = build(str(tiny), dtype="float32")
    assert judge.text == EXPECTED_TEXT and judge.sample_rate == RATE
    assert judge.dtype == torch.float32  # pinned: the default is bf16 wherever CUDA is
    clips_a, clips_b = _clips(4, seed=1), _clips(4, seed=2)
    p = judge.prefer(_batch(clips_a), _batch(clips_b))
    assert p.shape == (4,) and p.dtype == torch.float64
    assert bool(((p >= 0) & (p <= 1)).all())
    assert float(p.max() - p.min()) > 0.01  # it really listens to the audio
    for i in (0, 3):
        assert float(p[i]) == pytest.approx(_direct(tiny, clips_a[i], clips_b[i]), abs=1e-5)
    swapped = judge.prefer(_batch(clips_b), _batch(clips_a))
    assert float((p - swapped).abs().max()) > 1e-3  # the order of the clips reaches the model
    raw = build(str(tiny), dtype="float32", chat_template=False)  # for models without one
    assert raw.text == EXPECTED_TEXT.split("user\n")[1].split("<|im_end|>")[0]
    assert float((raw.prefer(_batch(clips_a), _batch(clips_b)) - p).abs().max()) > 1e-3


def test_batch_size_and_padding_do_not_change_answers(tiny):
    judge = build(str(tiny), max_batch=4, dtype="float32")
    clips_a, clips_b = _clips(6, seed=3), _clips(6, seed=4)
    together = judge.prefer(_batch(clips_a), _batch(clips_b))
    pairs = zip(clips_a, clips_b, strict=True)
    alone = torch.cat([judge.prefer(_batch([x]), _batch([y])) for x, y in pairs])
    assert float((together - alone).abs().max()) <= 1e-5
    # each clip is trimmed to its length: whatever sits in the padding never reaches the model
    junk = judge.prefer(_batch(clips_a, pad_with=0.7), _batch(clips_b, pad_with=-0.7))
    assert float((junk - together).abs().max()) <= 1e-5


def test_bad_params_are_one_line_errors(tiny):
    with pytest.raises(SubmissionError, match="params.answers: 'Yes' is 3 tokens") as info:
        build(str(tiny), answers=["Yes", "No"])
    assert "\n" not in str(info.value)
    with pytest.raises(SubmissionError, match="params.answers must be two strings"):
        build(str(tiny), answers=["A"])
    with pytest.raises(SubmissionError, match="params.prompt must hold '<audio>' exactly twice"):
        build(str(tiny), prompt="Is <audio> good?")
    with pytest.raises(SubmissionError, match="params.dtype 'int8' is not one of"):
        build(str(tiny), dtype="int8")
    with pytest.raises(SubmissionError, match="unknown param"):
        build(str(tiny), temperature=0.0)
    with pytest.raises(SubmissionError, match="local folder .*gone' not found"):
        build(str(tiny / "gone"))


def _submission(root, tiny, name: str, **params) -> object:
    import shutil

    folder = root / name
    shutil.copytree(tiny, folder / "model")
    spec = {
        "name": name,
        "display_name": name,
        "kind": "pairwise",
        "entry": "benchmark.baselines.audio_llm:build",
        "params": {"model": "model", "dtype": "float32", **params},
    }
    (folder / "submission.yaml").write_text(yaml.safe_dump(spec))
    return folder


def test_submission_yaml_scores_pairs(tmp_path, tiny):
    from benchmark.paths import home

    trusted = home() / "trained" / "0123abcd"  # in-process here only (benchmark.scoring.trust)
    sub = load_submission(_submission(trusted, tiny, "judge", max_batch=3))
    assert sub.model.fingerprint().startswith("audio-llm-v1-") and not sub.sandboxed
    data = tmp_path / "data"
    data.mkdir()
    clips, pairs = mock_task(data)
    got = [
        score_pairs(
            sub.model,
            pairs,
            clips,
            data,
            fingerprint=f"{sub.fingerprint}-{b}",
            cache_path=tmp_path / f"{b}.sqlite",
            config=ScoringConfig(max_batch_size=b, progress=False, device="cpu"),
        )
        for b in (1, 8)
    ]
    assert got[0].shape == (pairs.num_rows,)
    assert float(np.abs(got[0] - got[1]).max()) <= 1e-5
    assert ((got[0] >= 0) & (got[0] <= 1)).all() and np.ptp(got[0]) > 0.01
    with pytest.raises(SubmissionError, match="params.answers: 'AB' is 2 tokens"):
        load_submission(_submission(trusted, tiny, "two-token", answers=["AB", "B"]))


def test_end_to_end_through_the_cli(tmp_path, tiny, monkeypatch):
    monkeypatch.setenv("MOSRM_TRIPLETS", "20")  # the cycle-rate sample: a few are enough here
    repo = write_toy_repo(tmp_path)
    _submission(repo / "submissions", tiny, "audio-judge")
    results = tmp_path / "results"
    args = ["--repo", str(repo), "evaluate", "audio-judge", "--task", "toy", "--quiet"]
    assert main([*args, "--results", str(results)]) == 0
    record = json.loads((results / "audio-judge" / "toy.json").read_text())
    assert record["metrics"]["overall"]["n"] > 0
    assert record["model"]["parameters"] > 0 and record["model"]["parameters_source"] == "measured"
    diagnostics = record["diagnostics"]  # answers per order reach the judge diagnostics
    assert not diagnostics["by_construction"] and diagnostics["n_pairs"] > 0
    assert diagnostics["position_consistency"] is not None and diagnostics["n_triplets"] == 20


def test_the_example_submission_is_valid():
    """examples/qwen2-audio-judge (the 7B model is not loaded here): a valid spec whose params the
    adapter takes, with the default prompt and answers spelled out."""
    import inspect
    from pathlib import Path

    from benchmark.baselines import audio_llm
    from benchmark.scoring.models import read_spec

    spec = read_spec(Path(__file__).resolve().parents[2] / "examples" / "qwen2-audio-judge")
    assert spec.kind == "pairwise" and spec.entry == "benchmark.baselines.audio_llm:build"
    assert set(spec.params) <= set(inspect.signature(audio_llm.build).parameters) - {"unknown"}
    assert spec.params["prompt"] == audio_llm.DEFAULT_PROMPT
    assert tuple(spec.params["answers"]) == audio_llm.DEFAULT_ANSWERS
