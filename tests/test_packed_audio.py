"""The packed audio store and the prefetching loop: the same scores, bit for bit, with and without
either, for any batch size; a stale or partial store is never used; errors surface in one line."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

import benchmark.scoring.buckets as scoring_buckets
import benchmark.scoring.config as scoring_config
import benchmark.scoring.loop as scoring
from benchmark.data import audio_cache, packed_audio
from benchmark.data.audio import load_audio
from benchmark.data.audio_cache import CACHE_DIR, MANIFEST, build_cache, manifest_sha256
from benchmark.data.batch import Batch
from benchmark.data.packed_audio import STORE_FILE, open_store, store_current
from benchmark.data.tables import CLIP_SCHEMA, from_rows
from benchmark.errors import DataError
from benchmark.hashing import sha256_file
from benchmark.scoring.config import ScoringConfig
from benchmark.scoring.loop import judge_pairs, score_clips
from benchmark.scoring.prefetch import prefetched

# ---------------------------------------------------------------- models that see every sample


class WeightedSum:
    """Per row, a float64 weighted sum of the valid samples: any changed sample changes it, padding
    never does."""

    def __init__(self, sample_rate: int = 16000) -> None:
        self.sample_rate = sample_rate
        self.batches: list[tuple[tuple[str, ...], int]] = []  # (clip ids, padded width)

    def score(self, batch: Batch) -> torch.Tensor:
        self.batches.append((batch.clip_ids, int(batch.waveforms.shape[1])))
        x = batch.waveforms.double()
        w = 1.0 + (torch.arange(x.shape[1], dtype=torch.float64) % 7)
        return (x * w * batch.mask()).sum(dim=1)


class SumJudge:
    sample_rate = 16000

    def prefer(self, a: Batch, b: Batch) -> torch.Tensor:
        m = WeightedSum()
        return torch.sigmoid(m.score(a) - 0.5 * m.score(b))


# ---------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def _reader_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """The background reader runs even where the model's threads take every core (where the
    loop reads inline, `scoring._read_ahead`): these tests are about that thread."""
    monkeypatch.setattr(scoring_config, "_usable_cpus", lambda: 1 << 20)


@pytest.fixture
def prepared(tmp_path: Path, write_wav) -> tuple[pa.Table, Path, Path]:
    """(clip table pointing at the 16 kHz cache, its audio folder, the source root)."""
    root = tmp_path / "data"
    rows = []
    for i in range(12):
        sr, channels = ((16000, 1), (22050, 1), (48000, 2))[i % 3]
        seconds = 0.05 + 0.011 * ((i * 5) % 9)
        write_wav(root / f"c{i:02d}.wav", seconds=seconds, sr=sr, channels=channels, seed=i)
        rows.append(
            {
                "clip_id": f"c{i:02d}",
                "corpus": "t",
                "split": "test",
                "audio_path": f"c{i:02d}.wav",
                "mos": 3.0,
                # no duration for some: bucketing then reads lengths from the store / the header
                "duration": None if i % 4 == 0 else seconds,
            }
        )
    audio = tmp_path / "audio"
    clips = build_cache(from_rows(rows, CLIP_SCHEMA), root, audio, progress=False, workers=2)
    return clips, audio, root


def _manifest(audio: Path) -> dict:
    return json.loads((audio / CACHE_DIR / MANIFEST).read_text())


def _cache_rows(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return sorted(conn.execute("SELECT clip_id, audio_sha256, score FROM clip_scores"))


def _source_table(clips: pa.Table) -> pa.Table:
    """The same clips pointing at their source files (what `build_cache` is given)."""
    col = clips.schema.get_field_index("audio_path")
    rels = [f"{c}.wav" for c in clips.column("clip_id").to_pylist()]
    return clips.set_column(col, "audio_path", pa.array(rels))


def _no_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any per-file decode or hash in the scoring loop fail the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a file was decoded or hashed although the store is current")

    monkeypatch.setattr(scoring_buckets, "load_audio", refuse)
    monkeypatch.setattr(scoring.ScoreCache, "hashes", refuse)


# ---------------------------------------------------------------- the store itself


def test_store_holds_the_cached_wavs_samples_and_hashes(prepared) -> None:
    clips, audio, _ = prepared
    record = _manifest(audio)["packed"]
    ids = clips.column("clip_id").to_pylist()
    rels = clips.column("audio_path").to_pylist()
    store = open_store(audio, ids, rels)
    assert (
        store is not None
        and record["frames"] * 4 == (audio / CACHE_DIR / STORE_FILE).stat().st_size
    )
    assert record["sha256"] == sha256_file(audio / CACHE_DIR / STORE_FILE)
    assert list(record["clips"]) == sorted(ids)  # clip-id order: same clips, same bytes
    for i, rel in enumerate(rels):
        assert store.shas[i] == sha256_file(audio / rel)  # the score-cache key of today
        for rate in (16000, 8000, 24000):  # a model at another rate: the same resampler call
            np.testing.assert_array_equal(store.wave(i, rate), load_audio(audio / rel, rate))
            assert store.wave(i, rate).dtype == np.float32


@pytest.mark.parametrize("batch", [1, 5])
def test_scores_identical_with_and_without_store_and_prefetch(
    prepared, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    clips, audio, _ = prepared
    base = ScoringConfig(max_batch_size=batch, progress=False, device="cpu", prefetch=0)
    cache = tmp_path / "files.sqlite"
    with monkeypatch.context() as m:
        m.setattr(packed_audio, "open_store", lambda *a: None)  # today's path: decode files
        files_model = WeightedSum()
        want = score_clips(
            files_model, clips, audio, fingerprint="f", config=base, cache_path=cache
        )
    for prefetch in (0, 2):
        with monkeypatch.context() as m:
            _no_files(m)
            config = ScoringConfig(
                max_batch_size=batch, progress=False, device="cpu", prefetch=prefetch
            )
            path = tmp_path / f"store-{prefetch}.sqlite"
            model = WeightedSum()
            got = score_clips(model, clips, audio, fingerprint="f", config=config, cache_path=path)
        assert got == want  # bit-identical floats
        assert model.batches == files_model.batches  # the same batches, in the same order
        assert _cache_rows(path) == _cache_rows(cache)  # same keys: the WAV files' SHA-256
    # and batch size is invisible too (the model masks padding)
    one = ScoringConfig(max_batch_size=1, progress=False, device="cpu")
    assert (
        score_clips(
            WeightedSum(),
            clips,
            audio,
            fingerprint="f",
            config=one,
            cache_path=tmp_path / "b1.sqlite",
        )
        == want
    )


def test_a_model_at_another_rate_gets_the_same_samples_from_the_store(
    prepared, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clips, audio, _ = prepared
    config = ScoringConfig(max_batch_size=4, progress=False, device="cpu")
    with monkeypatch.context() as m:
        m.setattr(packed_audio, "open_store", lambda *a: None)
        want = score_clips(
            WeightedSum(8000),
            clips,
            audio,
            fingerprint="f",
            config=config,
            cache_path=tmp_path / "a.sqlite",
        )
    _no_files(monkeypatch)
    got = score_clips(
        WeightedSum(8000),
        clips,
        audio,
        fingerprint="f",
        config=config,
        cache_path=tmp_path / "b.sqlite",
    )
    assert got == want


@pytest.mark.parametrize("batch", [1, 4])
def test_judged_pairs_identical_with_and_without_store(
    prepared, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    clips, audio, _ = prepared
    ids = clips.column("clip_id").to_pylist()
    a = [ids[i] for i in range(12)]
    b = [ids[(i * 5 + 1) % 12] for i in range(12)]
    runs = []
    for use_store, prefetch in ((False, 0), (True, 0), (True, 2)):
        config = ScoringConfig(
            max_batch_size=batch, progress=False, device="cpu", prefetch=prefetch
        )
        with monkeypatch.context() as m:
            if use_store:
                _no_files(m)
            else:
                m.setattr(packed_audio, "open_store", lambda *a: None)
            path = tmp_path / f"j-{use_store}-{prefetch}.sqlite"
            runs.append(
                judge_pairs(
                    SumJudge(), a, b, clips, audio, fingerprint="j", config=config, cache_path=path
                )
            )
    for other in runs[1:]:
        for name in ("p", "a_first", "b_first"):
            np.testing.assert_array_equal(getattr(other, name), getattr(runs[0], name))


# ---------------------------------------------------------------- never used when not current


def test_store_changed_on_disk_is_not_used_and_prepare_rebuilds_it(
    prepared, tmp_path: Path
) -> None:
    clips, audio, root = prepared
    ids, rels = clips.column("clip_id").to_pylist(), clips.column("audio_path").to_pylist()
    store_path = audio / CACHE_DIR / STORE_FILE
    before = _manifest(audio)["packed"]
    # same bytes, rewritten: a new inode and mtime; then a same-size edit in place
    data = store_path.read_bytes()
    store_path.unlink()
    store_path.write_bytes(data)
    assert open_store(audio, ids, rels) is None and not store_current(audio)
    config = ScoringConfig(progress=False, device="cpu")
    # scoring still works (from the files), with the same scores as the store gives once rebuilt
    by_files = score_clips(
        WeightedSum(),
        clips,
        audio,
        fingerprint="f",
        config=config,
        cache_path=tmp_path / "a.sqlite",
    )
    rebuilt_clips = build_cache(_source_table(clips), root, audio, progress=False)
    after = _manifest(audio)["packed"]
    assert after["sha256"] == before["sha256"] and after["inode"] != before["inode"]
    assert store_current(audio) and open_store(audio, ids, rels) is not None
    by_store = score_clips(
        WeightedSum(),
        rebuilt_clips,
        audio,
        fingerprint="f",
        config=config,
        cache_path=tmp_path / "b.sqlite",
    )
    assert by_store == by_files


def test_a_clip_missing_from_the_index_means_no_store(prepared, tmp_path: Path) -> None:
    clips, audio, root = prepared
    ids, rels = clips.column("clip_id").to_pylist(), clips.column("audio_path").to_pylist()
    path = audio / CACHE_DIR / MANIFEST
    body = _manifest(audio)
    del body["packed"]["clips"]["c03"]
    path.write_text(json.dumps(body))
    assert open_store(audio, ids, rels) is None  # not for part of the table
    assert open_store(audio, ids[:3], rels[:3]) is not None  # c03 not asked for: fine
    assert not store_current(audio)  # reuse will re-prepare ...
    build_cache(_source_table(clips), root, audio, progress=False)
    assert open_store(audio, ids, rels) is not None  # ... and prepare rebuilds the index
    # a table row not pointing at its cached file is not about this store's audio
    assert open_store(audio, ids[:2], [rels[1], rels[0]]) is None
    assert open_store(root, ids, [f"{c}.wav" for c in ids]) is None  # raw corpus: no store


def test_a_redone_clip_drops_then_rebuilds_the_store(
    prepared, write_wav, monkeypatch: pytest.MonkeyPatch
) -> None:
    clips, audio, root = prepared
    write_wav(root / "c04.wav", seconds=0.2, sr=22050, seed=99)  # the corpus changed
    seen: list[dict | None] = []
    real = audio_cache._convert

    def spy(*args: object) -> dict:
        seen.append(_manifest(audio).get("packed"))  # what a reader sees as the WAV changes
        return real(*args)

    monkeypatch.setattr(audio_cache, "_convert", spy)
    build_cache(_source_table(clips), root, audio, progress=False)
    assert seen == [None]  # the old record was gone before the WAV was rewritten
    store = open_store(audio, ["c04"], [clips.column("audio_path")[4].as_py()])
    assert store is not None
    np.testing.assert_array_equal(store.wave(0, 16000), load_audio(root / "c04.wav", 16000))
    assert store.shas[0] == sha256_file(audio / clips.column("audio_path")[4].as_py())


def test_a_damaged_cached_wav_is_reconverted_when_the_store_is_built(prepared) -> None:
    clips, audio, root = prepared
    rel = clips.column("audio_path")[5].as_py()
    wav = audio / rel
    data = bytearray(wav.read_bytes())
    data[-8:] = bytes(8)  # same size, other samples: the stat-only freshness check passes
    stat = wav.stat()
    wav.write_bytes(bytes(data))
    os.utime(wav, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    (audio / CACHE_DIR / STORE_FILE).unlink()
    build_cache(_source_table(clips), root, audio, progress=False)
    store = open_store(audio, ["c05"], [rel])
    assert store is not None
    np.testing.assert_array_equal(store.wave(0, 16000), load_audio(root / "c05.wav", 16000))
    assert store.shas[0] == sha256_file(wav) == _manifest(audio)["clips"]["c05"]["sha256"]


def test_manifest_hash_is_the_audio_record_only(prepared) -> None:
    clips, audio, root = prepared
    body = _manifest(audio)
    old_format = json.dumps(
        {"settings": body["settings"], "clips": body["clips"]}, indent=1, sort_keys=True
    )
    want = hashlib.sha256((old_format + "\n").encode()).hexdigest()
    assert manifest_sha256(audio) == want  # trained baselines keyed on it are not retrained
    (audio / CACHE_DIR / STORE_FILE).unlink()
    build_cache(_source_table(clips), root, audio, progress=False)  # store rebuilt: new inode
    assert manifest_sha256(audio) == want


# ---------------------------------------------------------------- prefetching


def test_prefetch_keeps_order_and_bounds_how_far_it_runs_ahead() -> None:
    made: list[int] = []

    def items():
        for i in range(50):
            made.append(i)
            yield i

    got = []
    for x in prefetched(items(), 2):
        time.sleep(0.001)
        assert len(made) <= len(got) + 1 + 2 + 1  # consumed + in hand + queue + being made
        got.append(x)
    assert got == list(range(50))


def test_prefetch_reraises_the_producers_exception_after_the_items_before_it() -> None:
    boom = DataError("x.wav: cannot decode audio: bad header")

    def items():
        yield 1
        yield 2
        raise boom

    got = []
    with pytest.raises(DataError) as info:
        for x in prefetched(items(), 2):
            got.append(x)
    assert got == [1, 2] and info.value is boom


def test_prefetch_stops_its_thread_when_the_consumer_stops() -> None:
    started = threading.active_count()

    def items():
        i = 0
        while True:
            yield i
            i += 1

    it = prefetched(items(), 2)
    assert next(it) == 0
    it.close()
    assert threading.active_count() == started


def test_a_decode_error_in_the_prefetch_thread_is_the_same_one_line_error(
    prepared, tmp_path: Path
) -> None:
    clips, _, root = prepared
    source = _source_table(clips)
    (root / "c07.wav").write_bytes(b"RIFF0000WAVEjunk")
    messages = []
    for prefetch in (0, 2):
        config = ScoringConfig(max_batch_size=2, progress=False, device="cpu", prefetch=prefetch)
        cache = tmp_path / f"e{prefetch}.sqlite"
        with pytest.raises(DataError) as info:
            score_clips(
                WeightedSum(), source, root, fingerprint="f", config=config, cache_path=cache
            )
        messages.append(str(info.value))
        done = {r[0] for r in _cache_rows(cache)}
        assert done and "c07" not in done  # batches before the bad one are committed
    assert messages[0] == messages[1]
    assert "c07.wav: cannot decode audio" in messages[0] and "\n" not in messages[0]


class FailsOnSecondBatch(WeightedSum):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def score(self, batch: Batch) -> torch.Tensor:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("boom")
        return super().score(batch)


def test_a_model_error_stops_the_prefetch_thread(prepared, tmp_path: Path) -> None:
    clips, audio, _ = prepared
    started = threading.active_count()
    config = ScoringConfig(max_batch_size=2, progress=False, device="cpu", prefetch=2)
    with pytest.raises(scoring.SubmissionError, match="raised RuntimeError: boom"):
        score_clips(
            FailsOnSecondBatch(),
            clips,
            audio,
            fingerprint="f",
            config=config,
            cache_path=tmp_path / "c.sqlite",
        )
    assert threading.active_count() == started
    assert len(_cache_rows(tmp_path / "c.sqlite")) == 2  # the first batch was committed


def test_dataloader_workers_reopen_the_store(prepared, tmp_path: Path) -> None:
    """Workers get the store pickled without its memory map and map it again themselves."""
    clips, audio, _ = prepared
    runs = []
    for workers in (0, 1):
        config = ScoringConfig(max_batch_size=3, progress=False, device="cpu", num_workers=workers)
        cache = tmp_path / f"w{workers}.sqlite"
        runs.append(
            score_clips(
                WeightedSum(), clips, audio, fingerprint="f", config=config, cache_path=cache
            )
        )
    assert runs[0] == runs[1]


# ---------------------------------------------------------------- through prepare and evaluate


def test_prepare_writes_the_store_evaluate_uses_it_and_reuse_knows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from benchmark.data.tasks import load_task_file
    from benchmark.pairs import prepare as pipeline
    from benchmark.pairs.prepare import prepare
    from benchmark.pipeline import evaluate
    from benchmark.scoring.models import load_submission
    from tests.toy_task import write_toy_repo

    repo = write_toy_repo(tmp_path)
    task = load_task_file(repo / "tasks" / "toy.yaml")
    prepared = prepare(task)
    assert prepared.audio_root is not None and store_current(prepared.audio_root)
    sub = load_submission(repo / "submissions" / "shortcut-loudness")
    config = ScoringConfig(progress=False)
    with monkeypatch.context() as m:
        m.setattr(packed_audio, "open_store", lambda *a: None)
        evaluate(sub, prepared, results_root=tmp_path / "files", config=config)
    with monkeypatch.context() as m:
        _no_files(m)
        evaluate(sub, prepared, results_root=tmp_path / "store", config=config)
    name = "shortcut-loudness/toy.predictions.parquet"
    assert (tmp_path / "store" / name).read_bytes() == (tmp_path / "files" / name).read_bytes()
    # a store that went missing: the prepared task is not reused as it is; prepare rebuilds it
    (prepared.audio_root / CACHE_DIR / STORE_FILE).unlink()
    built: list[Path] = []
    real = pipeline._build

    def spy(*args: object, **kwargs: object) -> object:
        built.append(Path(str(args[2])))
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "_build", spy)
    again = prepare(task, reuse=True)
    assert built and store_current(again.audio_root)
