"""Decoding, padding, bucketing and hashing: the pieces the scoring loop trusts blindly."""

from __future__ import annotations

import os
import random
import sqlite3
import time

import numpy as np
import pytest
import soundfile as sf

from benchmark.data.audio import (
    PREPROCESSING_VERSION,
    audio_num_frames,
    file_sha256,
    file_sha256s,
    length_buckets,
    load_audio,
    pad_batch,
    preprocessing_config,
)
from benchmark.errors import DataError

# ---------------------------------------------------------------- load_audio


def test_mono_passthrough_is_exact(tmp_path):
    x = (0.25 * np.sin(np.linspace(0, 100, 4000))).astype(np.float32)
    path = tmp_path / "m.wav"
    sf.write(path, x, 16000, subtype="FLOAT")
    y = load_audio(path, 16000)
    assert y.dtype == np.float32 and y.ndim == 1
    np.testing.assert_array_equal(y, x)


def test_stereo_is_channel_mean(tmp_path):
    left = np.linspace(-0.5, 0.5, 1000, dtype=np.float32)
    right = np.full(1000, 0.25, dtype=np.float32)
    path = tmp_path / "s.wav"
    sf.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    y = load_audio(path, 16000)
    assert y.shape == (1000,)
    np.testing.assert_allclose(y, (left + right) / 2, atol=1e-7)


def test_stereo_fixture_collapses_to_mono(tmp_path, write_wav):
    path = write_wav(tmp_path / "st.wav", seconds=0.25, channels=2)
    y = load_audio(path, 16000)
    assert y.shape == (4000,)


def test_resample_22050_to_16000(tmp_path):
    sr_in, sr_out, f = 22050, 16000, 440.0
    t = np.arange(sr_in) / sr_in
    path = tmp_path / "r.wav"
    sf.write(path, (0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32), sr_in, subtype="FLOAT")
    y = load_audio(path, sr_out)
    assert y.dtype == np.float32
    assert abs(len(y) - sr_out) <= 1
    ref = 0.5 * np.sin(2 * np.pi * f * np.arange(len(y)) / sr_out)
    inner = slice(200, len(y) - 200)  # filter edge effects
    assert np.max(np.abs(y[inner] - ref[inner])) < 1e-3


def test_missing_file(tmp_path):
    path = tmp_path / "nope.wav"
    with pytest.raises(DataError, match="nope.wav"):
        load_audio(path, 16000)


def test_corrupt_file_is_data_error_naming_it(tmp_path):
    path = tmp_path / "garbage.wav"
    path.write_bytes(os.urandom(2048))
    with pytest.raises(DataError, match="garbage.wav") as info:
        load_audio(path, 16000)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_truncated_header_is_data_error(tmp_path, write_wav):
    good = write_wav(tmp_path / "g.wav")
    bad = tmp_path / "truncated.wav"
    bad.write_bytes(good.read_bytes()[:20])
    with pytest.raises(DataError, match="truncated.wav"):
        load_audio(bad, 16000)


def test_empty_audio(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(DataError, match=r"empty\.wav.*no samples"):
        load_audio(path, 16000)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_samples(tmp_path, bad):
    x = np.zeros(1600, dtype=np.float32)
    x[100] = bad
    path = tmp_path / "nonfinite.wav"
    sf.write(path, x, 16000, subtype="FLOAT")
    with pytest.raises(DataError, match=r"nonfinite\.wav.*non-finite"):
        load_audio(path, 16000)


def test_num_frames_from_header(tmp_path, write_wav):
    path = write_wav(tmp_path / "h.wav", seconds=0.5, sr=8000)
    assert audio_num_frames(path, 8000) == 4000
    assert audio_num_frames(path, 16000) == 8000
    with pytest.raises(DataError, match="missing.wav"):
        audio_num_frames(tmp_path / "missing.wav", 16000)


def test_preprocessing_config_is_json_ready():
    cfg = preprocessing_config(16000)
    assert cfg["version"] == PREPROCESSING_VERSION
    assert cfg["sample_rate"] == 16000
    assert preprocessing_config(16000) == cfg != preprocessing_config(24000)


# ---------------------------------------------------------------- pad_batch


def test_pad_batch_zero_pads_and_keeps_lengths():
    waves = [np.ones(3, np.float32), np.full(5, 2.0, np.float32), np.zeros(1, np.float32)]
    batch = pad_batch(waves, 16000, ["a", "b", "c"])
    assert tuple(batch.waveforms.shape) == (3, 5)
    assert str(batch.waveforms.dtype) == "torch.float32"
    assert str(batch.lengths.dtype) == "torch.int64"
    assert batch.lengths.tolist() == [3, 5, 1]
    assert batch.waveforms[0].tolist() == [1, 1, 1, 0, 0]
    assert batch.clip_ids == ("a", "b", "c") and batch.sample_rate == 16000
    assert batch.mask().sum(dim=1).tolist() == [3, 5, 1]
    with pytest.raises(ValueError):
        pad_batch(waves, 16000, ["a"])


# ---------------------------------------------------------------- length_buckets


@pytest.mark.parametrize("seed", range(20))
def test_length_buckets_properties(seed):
    rng = random.Random(seed)
    n = rng.randint(0, 60)
    lengths = [rng.choice([rng.randint(1, 50), rng.randint(1, 500)]) for _ in range(n)]
    max_size = rng.randint(1, 10)
    budget = rng.randint(50, 1000)
    buckets = length_buckets(lengths, max_size, budget)
    flat = [i for b in buckets for i in b]
    assert sorted(flat) == list(range(n))  # every index exactly once
    assert flat == sorted(range(n), key=lambda i: (lengths[i], i))  # sorted by length, stable
    for b in buckets:
        assert 1 <= len(b) <= max_size
        longest = max(lengths[i] for i in b)
        assert len(b) * longest <= budget or len(b) == 1  # over-long clips travel alone
    assert length_buckets(lengths, max_size, budget) == buckets  # deterministic


def test_length_buckets_examples():
    assert length_buckets([], 4, 100) == []
    assert length_buckets([10, 10, 10, 10, 10], 2, 1000) == [[0, 1], [2, 3], [4]]
    assert length_buckets([30, 10, 20], 8, 60) == [[1, 2], [0]]
    assert length_buckets([500, 10], 8, 100) == [[1], [0]]  # 500 > budget: alone
    with pytest.raises(ValueError):
        length_buckets([1], 0, 10)


# ---------------------------------------------------------------- file_sha256


def _age(path, seconds=10):
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - seconds * 1_000_000_000))


def test_sha256_matches_hashlib_and_is_memoised(tmp_path, write_wav):
    import hashlib

    path = write_wav(tmp_path / "a.wav")
    _age(path)
    db = tmp_path / "memo.sqlite"
    digest = file_sha256(path, db)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT path, sha256 FROM file_hashes").fetchall()
    assert rows == [(str(path.resolve()), digest)]
    # the memo is trusted while (path, size, mtime) match ...
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE file_hashes SET sha256 = 'memoised'")
    assert file_sha256(path, db) == "memoised"
    # ... and ignored once the file changes
    write_wav(path, seed=3)
    assert file_sha256(path, db) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_fresh_files_are_not_memoised(tmp_path, write_wav):
    """A file written just now could be rewritten within the same mtime tick: don't trust it."""
    path = write_wav(tmp_path / "fresh.wav")
    db = tmp_path / "memo.sqlite"
    file_sha256(path, db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM file_hashes").fetchone()[0] == 0
    assert path.stat().st_mtime_ns > time.time_ns() - 60 * 1_000_000_000


def test_sha256_many_and_missing(tmp_path, write_wav):
    paths = [write_wav(tmp_path / f"{i}.wav", seed=i) for i in range(5)]
    digests = file_sha256s(paths, tmp_path / "memo.sqlite")
    assert len(set(digests)) == 5
    with pytest.raises(DataError, match="gone.wav"):
        file_sha256s([*paths, tmp_path / "gone.wav"], tmp_path / "memo.sqlite")


def test_sha256_default_memo_lives_in_score_cache(tmp_path, write_wav):
    from benchmark.paths import score_cache_path

    path = write_wav(tmp_path / "a.wav")
    file_sha256(path)
    assert score_cache_path().is_file()


def test_decoding_does_not_load_submission_code() -> None:
    """`Batch` lives in `benchmark.data.batch`: decoding audio imports no submission machinery."""
    import subprocess
    import sys

    code = "import sys, benchmark.data.audio; assert 'benchmark.scoring.models' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
