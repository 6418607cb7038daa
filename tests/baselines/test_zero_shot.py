"""Zero-shot DNSMOS / PLCMOS baselines: speechmos's numbers, masked padding, shipped submissions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from benchmark.baselines import zero_shot as zs
from benchmark.errors import SubmissionError
from benchmark.scoring.models import Batch, load_submission, model_info

REPO = Path(__file__).resolve().parents[2]
RATE = 16000


def _clip(seconds: float, seed: int = 0, silence: float = 0.1) -> np.ndarray:
    """A vowel-like tone with a syllable envelope, noise, and leading digital silence."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * RATE))
    t = np.arange(n) / RATE
    x = 0.3 * np.sin(2 * np.pi * (150 + 30 * seed) * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    x += 10 ** rng.uniform(-3, -1.3) * rng.standard_normal(n)
    x[: int(silence * n)] = 0.0
    return np.clip(x, -1, 1).astype(np.float32)


def _batch(clips: list[np.ndarray]) -> Batch:
    width = max(c.size for c in clips)
    wave = torch.zeros(len(clips), width)
    for i, c in enumerate(clips):
        wave[i, : c.size] = torch.from_numpy(c)
    lengths = torch.tensor([c.size for c in clips], dtype=torch.int64)
    return Batch(wave, lengths, RATE, tuple(str(i) for i in range(len(clips))))


def test_dnsmos_windows_follow_speechmos_rounding():
    """One window per second; speechmos's float bounds drop windows 7-23 (one sample short)."""
    assert zs.dnsmos_windows(zs.WINDOW_SAMPLES) == [0]
    assert zs.dnsmos_windows(12 * RATE) == [0, RATE, 2 * RATE]
    assert zs.dnsmos_windows(35 * RATE) == [i * RATE for i in [*range(7), 24, 25]]


# 0.3 s: looped 32x into one window; 2.1 s: 7 windows; 3.0 s: three; 35 s: windows
# 0-6 and 24-25 (two runs of overlapping windows, the first longer than one head chunk).
@pytest.mark.parametrize("seconds", [0.3, 2.1, 3.0, 35.0])
def test_dnsmos_equals_speechmos(seconds):
    from speechmos import dnsmos as reference

    x = _clip(seconds, seed=int(seconds * 10) % 7)
    ours = zs.dnsmos(x)
    theirs = reference.run(x, RATE)
    for name in ("ovrl", "sig", "bak", "p808"):
        assert ours[name] == pytest.approx(float(theirs[f"{name}_mos"]), abs=1e-5), name


def test_window_blocks_do_not_change_scores(monkeypatch):
    """P.808 and tail runs in blocks of windows, the head in chunks: sizes never move a score."""
    x = _clip(3.9, 5)  # six windows
    before = zs.dnsmos(x)
    monkeypatch.setattr(zs, "P808_BATCH", 4)
    monkeypatch.setattr(zs, "TAIL_BATCH", 4)
    monkeypatch.setattr(zs, "HEAD_CHUNK", 256)
    after = zs.dnsmos(x)
    for name, value in before.items():
        assert after[name] == pytest.approx(value, abs=1e-6), name


@pytest.mark.parametrize("samples", [1281, 1500, 1600, 3 * RATE, 11 * RATE])
def test_plcmos_equals_speechmos_after_seeding(samples):
    from speechmos import plcmos as reference

    x = _clip(samples / RATE, seed=samples % 5)
    for seed in (0, 3):
        np.random.seed(seed)
        theirs = reference.run(x, RATE)["plcmos"]
        assert zs.plcmos(x, seed=seed) == pytest.approx(theirs, abs=1e-5)


def test_plcmos_loops_clips_too_short_for_the_graph():
    """speechmos fails under 7 STFT frames (1281 samples); ours loops such clips, even empty."""
    for n in (0, 1, 700, 1280):
        assert np.isfinite(zs.plcmos(_clip(n / RATE)))
    assert np.isfinite(zs.dnsmos(np.zeros(0, np.float32), ("p808",))["p808"])


@pytest.mark.parametrize("model", ["dnsmos", "plcmos"])
def test_batch_size_and_padding_do_not_change_scores(model):
    clips = [_clip(2.5, 1), _clip(0.6, 2), _clip(1.2, 3)]  # one DNSMOS window each
    scorer = zs.DnsMos() if model == "dnsmos" else zs.PlcMos()
    together = scorer.score(_batch(clips))
    alone = torch.cat([scorer.score(_batch([c])) for c in clips])
    reordered = scorer.score(_batch(clips[::-1])).flip(0)
    assert together.shape == (3,) and together.dtype == torch.float64
    assert torch.equal(together, alone) and torch.equal(together, reordered)


def test_outputs_pick_the_score_and_share_sessions():
    x = _clip(2.5, 4)
    every = zs.dnsmos(x)
    before = dict(zs._SESSIONS)
    for output in ("ovrl", "sig", "bak", "p808"):
        model = zs.DnsMos(output=output)
        assert model.score(_batch([x])).item() == pytest.approx(every[output], abs=1e-9)
        assert output in model.fingerprint()
    assert zs._SESSIONS == before  # one session per graph per process
    assert zs.DnsMos("sig").fingerprint() != zs.DnsMos("bak").fingerprint()
    assert zs.PlcMos(seed=1).fingerprint() != zs.PlcMos(seed=2).fingerprint()


def test_a_changed_model_file_is_refused(monkeypatch):
    rel, _ = zs.MODEL_FILES["plcmos"]
    monkeypatch.setitem(zs.MODEL_FILES, "plcmos", (rel, "0" * 64))
    zs._model_bytes.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="sha256"):
            zs.PlcMos()
    finally:
        monkeypatch.undo()
        zs._model_bytes.cache_clear()


@pytest.mark.parametrize(
    ("name", "entry", "params", "field"),
    [
        ("dnsmos", "DnsMos", {"output": "mos"}, "output"),
        ("dnsmos", "DnsMos", {"threads": -1}, "threads"),
        ("plcmos", "PlcMos", {"rounds": 0}, "rounds"),
        ("plcmos", "PlcMos", {"seed": "x"}, "seed"),
    ],
)
def test_bad_params_give_one_line_naming_the_field(tmp_path, name, entry, params, field):
    from benchmark.paths import home

    folder = (
        home() / "trained" / "test" / name
    )  # in-process, as the harness's own (benchmark.scoring.trust)
    folder.mkdir(parents=True)
    spec = yaml.safe_load(
        (REPO / "benchmark" / "shipped" / "submissions" / name / "submission.yaml").read_text()
    )
    spec["params"] = params
    (folder / "submission.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(SubmissionError) as info:
        load_submission(folder)
    message = str(info.value)
    assert "\n" not in message and field in message and entry in message


@pytest.mark.parametrize("name", ["dnsmos", "plcmos"])
def test_shipped_submissions_load(name):
    sub = load_submission(REPO / "benchmark" / "shipped" / "submissions" / name)
    spec = sub.spec
    assert spec.baseline and not spec.shortcut and spec.kind == "scalar"
    assert spec.license == "MIT" and spec.training_data == [] and spec.url
    assert any(r.startswith("speechmos") for r in spec.requirements)
    assert any(r.startswith("onnxruntime") for r in spec.requirements)
    fingerprint = sub.model.fingerprint()
    for key in ("p835",) if name == "dnsmos" else ("plcmos",):
        assert zs.MODEL_FILES[key][1][:16] in fingerprint
    info = model_info(sub)
    assert info["parameters_source"] == "measured" and info["parameters"] > 100_000


def test_validate_smoke_runs(capsys):
    from benchmark.cli import main

    for name in ("plcmos", "dnsmos"):
        assert main(["validate", str(REPO / "benchmark" / "shipped" / "submissions" / name)]) == 0
        assert f"ok: submission '{name}'" in capsys.readouterr().out
