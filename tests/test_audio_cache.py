"""The 16 kHz cache: same waveform as the scoring decoder, checksummed, resumable, incremental."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import soundfile as sf

from benchmark.data import audio_cache
from benchmark.data.audio import load_audio
from benchmark.data.audio_cache import CACHE_DIR, MANIFEST, build_cache, cached_name
from benchmark.data.tables import CLIP_SCHEMA, from_rows
from benchmark.hashing import sha256_file


def _clips(root: Path, specs: list[tuple[str, int, int]]) -> pa.Table:
    rng = np.random.default_rng(0)
    rows = []
    for cid, rate, channels in specs:
        rel = f"wav/{cid}.wav"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        x = (0.3 * rng.standard_normal((rate // 10, channels))).astype(np.float32)
        sf.write(root / rel, x, rate, subtype="PCM_16")
        rows.append({"clip_id": cid, "corpus": "t", "split": "test", "audio_path": rel, "mos": 3.0})
    return from_rows(rows, CLIP_SCHEMA)


def test_cache_matches_the_scoring_decoder_and_the_manifest(tmp_path):
    root = tmp_path / "data"
    clips = _clips(root, [("a/1", 48000, 2), ("b", 16000, 1), ("c", 22050, 1)])
    out = build_cache(clips, root, tmp_path / "prep", progress=False)
    manifest = json.loads((tmp_path / "prep" / CACHE_DIR / MANIFEST).read_text())
    assert manifest["settings"]["rate"] == 16000
    for cid, rel, path in zip(
        clips.column("clip_id").to_pylist(),
        clips.column("audio_path").to_pylist(),
        out.column("audio_path").to_pylist(),
        strict=True,
    ):
        assert path == cached_name(cid) and "/" not in Path(path).name
        data, sr = sf.read(tmp_path / "prep" / path, dtype="float32")
        assert sr == 16000 and data.ndim == 1
        np.testing.assert_array_equal(data, load_audio(root / rel, 16000))
        entry = manifest["clips"][cid]
        assert entry["source"] == rel
        assert entry["source_sha256"] == sha256_file(root / rel)
        assert entry["sha256"] == sha256_file(tmp_path / "prep" / path)
        assert entry["frames"] == data.shape[0]


def test_rerun_skips_unchanged_and_redoes_changed_sources(tmp_path, monkeypatch):
    root = tmp_path / "data"
    clips = _clips(root, [("a", 16000, 1), ("b", 24000, 1)])
    build_cache(clips, root, tmp_path / "prep", progress=False)
    calls: list[str] = []
    real = audio_cache._convert

    def spy(clip_id: str, src: Path, dst: Path, rate: int) -> dict:
        calls.append(clip_id)
        return real(clip_id, src, dst, rate)

    monkeypatch.setattr(audio_cache, "_convert", spy)
    build_cache(clips, root, tmp_path / "prep", progress=False)
    assert calls == []
    sf.write(root / "wav" / "b.wav", np.zeros(800, np.float32) + 0.1, 24000, subtype="PCM_16")
    build_cache(clips, root, tmp_path / "prep", progress=False)
    assert calls == ["b"]
    # a cached file corrupted in place is caught by verify
    (tmp_path / "prep" / cached_name("a")).write_bytes(b"RIFF0000")
    calls.clear()
    build_cache(clips, root, tmp_path / "prep", progress=False)
    assert calls == ["a"]  # size changed: redone without verify
    target = tmp_path / "prep" / cached_name("b")
    raw = bytearray(target.read_bytes())
    raw[-1] ^= 1
    target.write_bytes(bytes(raw))
    calls.clear()
    build_cache(clips, root, tmp_path / "prep", progress=False)
    assert calls == []  # same size: only verify re-hashes
    build_cache(clips, root, tmp_path / "prep", progress=False, verify=True)
    assert calls == ["b"]


def test_a_crash_keeps_the_finished_clips(tmp_path, monkeypatch):
    root = tmp_path / "data"
    clips = _clips(root, [("a", 16000, 1), ("b", 16000, 1), ("c", 16000, 1)])
    real = audio_cache._convert

    def flaky(clip_id: str, src: Path, dst: Path, rate: int) -> dict:
        if clip_id == "c":
            raise KeyboardInterrupt
        return real(clip_id, src, dst, rate)

    monkeypatch.setattr(audio_cache, "_convert", flaky)
    with pytest.raises(KeyboardInterrupt):
        build_cache(clips, root, tmp_path / "prep", progress=False, workers=1)
    manifest = json.loads((tmp_path / "prep" / CACHE_DIR / MANIFEST).read_text())
    assert sorted(manifest["clips"]) == ["a", "b"]
    assert not list((tmp_path / "prep").rglob("*.tmp"))


def test_a_converted_clip_has_the_same_bytes_whenever_it_is_converted(tmp_path: Path) -> None:
    """Float WAVs written by libsndfile carried a PEAK chunk with the write time: the same clip
    converted a second later hashed differently (score-cache keys moved with the clock, and two
    nodes preparing one corpus disagreed on every clip)."""
    import time

    from benchmark.data.audio_cache import _convert

    src = tmp_path / "src.wav"
    sf.write(src, 0.1 * np.random.default_rng(0).standard_normal(8000), 22050)
    first = _convert("x", src, tmp_path / "a.wav", 16000)
    time.sleep(1.1)  # the PEAK timestamp has one-second resolution
    second = _convert("x", src, tmp_path / "b.wav", 16000)
    assert first["sha256"] == second["sha256"]
    assert b"PEAK" not in (tmp_path / "a.wav").read_bytes()
    wave, rate = sf.read(tmp_path / "a.wav", dtype="float32")
    assert rate == 16000 and wave.shape == (first["frames"],)
