from __future__ import annotations

import numpy as np
import torch

from benchmark.baselines.shortcuts import DurationModel, LoudnessModel, RandomModel
from benchmark.scoring.models import Batch


def _batch(waves: list[np.ndarray], sr: int = 16000) -> Batch:
    n = max(len(w) for w in waves)
    x = torch.zeros(len(waves), n)
    for i, w in enumerate(waves):
        x[i, : len(w)] = torch.from_numpy(w)
    lengths = torch.tensor([len(w) for w in waves])
    return Batch(x, lengths, sr, tuple(f"c{i}" for i in range(len(waves))))


def test_duration_is_seconds():
    b = _batch([np.ones(16000, np.float32), np.ones(8000, np.float32)])
    assert DurationModel().score(b).tolist() == [1.0, 0.5]


def test_loudness_matches_numpy_and_ignores_padding():
    rng = np.random.default_rng(0)
    a = (0.5 * rng.standard_normal(4000)).astype(np.float32)
    b = (0.1 * rng.standard_normal(9000)).astype(np.float32)
    scores = LoudnessModel().score(_batch([a, b])).tolist()
    for w, s in zip([a, b], scores, strict=True):
        expected = 10 * np.log10(np.mean(w.astype(np.float64) ** 2))
        assert abs(s - expected) < 1e-9
    alone = LoudnessModel().score(_batch([a])).tolist()[0]
    assert alone == scores[0]  # bit-identical with and without padding


def test_loudness_silence_hits_floor():
    assert LoudnessModel().score(_batch([np.zeros(100, np.float32)])).item() == -120.0


def test_random_is_seeded_and_batch_independent():
    b = _batch([np.ones(10, np.float32)] * 3)
    r0 = RandomModel(seed=0).score(b).tolist()
    assert r0 == RandomModel(seed=0).score(b).tolist()
    assert r0 != RandomModel(seed=1).score(b).tolist()
    single = Batch(b.waveforms[1:2], b.lengths[1:2], 16000, ("c1",))
    assert RandomModel(seed=0).score(single).tolist() == [r0[1]]
    assert all(0 <= v < 1 for v in r0)
