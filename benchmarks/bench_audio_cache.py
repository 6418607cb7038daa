"""Throughput of the 16 kHz cache build (decode, downmix, soxr resample, write, hash).

~120 generated 3 s clips at the corpora's native rates (48 kHz stereo like NISQA, 24 kHz like
SOMOS / VMC'23 track 2, 22.05 kHz like track 1). Cold = empty cache; warm = the re-run that only
stats sources and cached files. Run with `make bench`; clips/s is in each benchmark's extra_info.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import soundfile as sf

from benchmark.data.audio_cache import build_cache
from benchmark.data.tables import CLIP_SCHEMA, from_rows

RATES = ((48000, 2), (24000, 1), (22050, 1))
PER_RATE = 40


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pa.Table]:
    root = tmp_path_factory.mktemp("bench-cache-data")
    rng = np.random.default_rng(0)
    rows = []
    for rate, channels in RATES:
        for i in range(PER_RATE):
            rel = f"wav/{rate}-{i}.wav"
            (root / "wav").mkdir(exist_ok=True)
            x = 0.2 * rng.standard_normal((3 * rate, channels)).astype(np.float32)
            sf.write(root / rel, x, rate, subtype="PCM_16")
            rows.append(
                {
                    "clip_id": f"{rate}-{i}",
                    "corpus": "b",
                    "split": "test",
                    "audio_path": rel,
                    "mos": 3.0,
                }
            )
    return root, from_rows(rows, CLIP_SCHEMA)


def test_cache_cold(benchmark, corpus: tuple[Path, pa.Table], tmp_path: Path) -> None:
    root, clips = corpus
    out = tmp_path / "cache"

    def setup() -> None:
        shutil.rmtree(out, ignore_errors=True)

    benchmark.pedantic(lambda: build_cache(clips, root, out, progress=False), setup=setup, rounds=3)
    benchmark.extra_info["clips_per_s"] = clips.num_rows / benchmark.stats.stats.mean
    print(f"\ncold: {clips.num_rows / benchmark.stats.stats.mean:.0f} clips/s")


def test_cache_warm(benchmark, corpus: tuple[Path, pa.Table], tmp_path: Path) -> None:
    root, clips = corpus
    out = tmp_path / "cache"
    build_cache(clips, root, out, progress=False)
    benchmark(lambda: build_cache(clips, root, out, progress=False))
    benchmark.extra_info["clips_per_s"] = clips.num_rows / benchmark.stats.stats.mean
    print(f"\nwarm: {clips.num_rows / benchmark.stats.stats.mean:.0f} clips/s")
