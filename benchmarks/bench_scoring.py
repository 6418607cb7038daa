"""Throughput of the scoring loop on ~200 generated 2-4 s clips with a cheap masked model.

Cold = empty score cache (decode, resample, model, commit per batch); warm = everything cached
(hash memo lookups and cache reads only). Run with
`pytest -q benchmarks/bench_scoring.py --benchmark-enable --benchmark-only`; clips/s is stored in
each benchmark's extra_info and printed.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from benchmark.data.tables import CLIP_SCHEMA, from_rows
from benchmark.scoring.config import ScoringConfig
from benchmark.scoring.loop import score_clips
from benchmark.scoring.models import Batch

N_CLIPS = 200


class MaskedRms:
    """Cheap scalar model: RMS over the valid samples, vectorised."""

    sample_rate = 16000

    def score(self, batch: Batch) -> torch.Tensor:
        x = batch.waveforms * batch.mask()
        return (x.pow(2).sum(dim=1) / batch.lengths).sqrt()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("bench-data")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(N_CLIPS):
        seconds = float(rng.uniform(2.0, 4.0))
        sr = 22050 if i % 5 == 0 else 16000  # some clips need resampling
        n = int(seconds * sr)
        x = 0.3 * np.sin(2 * np.pi * 220 * np.arange(n) / sr) + 0.01 * rng.standard_normal(n)
        path = root / f"{i:03d}.wav"
        sf.write(path, x.astype(np.float32), sr, subtype="PCM_16")
        old = path.stat().st_mtime_ns - 3_600 * 1_000_000_000
        os.utime(path, ns=(old, old))  # settled files, as in a real corpus: hash memo applies
        rows.append(
            {
                "clip_id": f"c{i:03d}",
                "corpus": "bench",
                "split": "test",
                "audio_path": path.name,
                "mos": 3.0,
                "duration": seconds,
            }
        )
    return root, from_rows(rows, CLIP_SCHEMA)


def _report(benchmark, label: str) -> None:
    mean = benchmark.stats.stats.mean
    benchmark.extra_info["clips_per_s"] = round(N_CLIPS / mean, 1)
    print(f"\n{label}: {N_CLIPS / mean:.1f} clips/s ({mean * 1000:.1f} ms for {N_CLIPS} clips)")


@pytest.mark.parametrize("num_workers", [0, 2])
def test_score_cold(benchmark, corpus, tmp_path, num_workers):
    root, clips = corpus
    config = ScoringConfig(num_workers=num_workers, progress=False, device="cpu")
    counter = itertools.count()

    def fresh_cache() -> tuple[tuple, dict]:
        return (), {"cache_path": tmp_path / f"cold-{next(counter)}.sqlite"}

    def run(cache_path: Path) -> dict[str, float]:
        return score_clips(
            MaskedRms(), clips, root, fingerprint="bench", config=config, cache_path=cache_path
        )

    scores = benchmark.pedantic(run, setup=fresh_cache, rounds=3, iterations=1)
    assert len(scores) == N_CLIPS
    _report(benchmark, f"cold, num_workers={num_workers}")


def test_score_warm(benchmark, corpus, tmp_path):
    root, clips = corpus
    config = ScoringConfig(progress=False, device="cpu")
    cache = tmp_path / "warm.sqlite"
    first = score_clips(
        MaskedRms(), clips, root, fingerprint="bench", config=config, cache_path=cache
    )

    def run() -> dict[str, float]:
        return score_clips(
            MaskedRms(), clips, root, fingerprint="bench", config=config, cache_path=cache
        )

    scores = benchmark.pedantic(run, rounds=5, iterations=1)
    assert scores == first
    _report(benchmark, "warm")
