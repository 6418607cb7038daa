"""Memory the scoring loop reuses between batches and runs (the padding ring, the store's memory
map): the model sees exactly the batches `pad_batch` makes, and never a batch changed under it."""

from __future__ import annotations

import os
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

import benchmark.scoring.config as scoring_config
import benchmark.scoring.loop as scoring
from benchmark.data import packed_audio
from benchmark.data.audio import pad_batch
from benchmark.data.audio_cache import CACHE_DIR, MANIFEST, build_cache
from benchmark.data.batch import Batch, PadBuffers, pad_buffers
from benchmark.data.packed_audio import STORE_FILE, open_store
from benchmark.data.tables import CLIP_SCHEMA, from_rows
from benchmark.errors import DataError
from benchmark.scoring.config import ScoringConfig
from benchmark.scoring.loop import score_clips


@pytest.fixture(autouse=True)
def _reader_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """The background reader runs even where the model's threads take every core (where the
    loop reads inline, `scoring._read_ahead`): these tests are about that thread."""
    monkeypatch.setattr(scoring_config, "_usable_cpus", lambda: 1 << 20)


def _waves(rng: np.random.Generator, lengths: list[int]) -> list[np.ndarray]:
    return [rng.standard_normal(n).astype(np.float32) for n in lengths]


def _same(got: Batch, want: Batch) -> None:
    assert got.waveforms.dtype == want.waveforms.dtype == torch.float32
    assert got.waveforms.shape == want.waveforms.shape
    assert got.waveforms.is_contiguous()
    assert torch.equal(got.waveforms, want.waveforms)  # the padding included
    assert torch.equal(got.lengths, want.lengths) and got.lengths.dtype == torch.int64
    assert (got.sample_rate, got.clip_ids) == (want.sample_rate, want.clip_ids)


def test_a_reused_slot_gives_pad_batchs_batch_whatever_it_held_before() -> None:
    rng = np.random.default_rng(0)
    buffers = PadBuffers(2)
    # slot 0 gets a wide batch, which a model scribbles over, then a narrower one, then a wider
    for k, lengths in enumerate([[900, 40, 700], [5], [3, 300], [10, 20], [1000, 1200], [7]]):
        waves = _waves(rng, lengths)
        ids = [f"c{k}-{i}" for i in range(len(lengths))]
        for part in (0, 1):
            got = buffers.pad(k, waves, 16000, ids, part=part)
            _same(got, pad_batch([w.copy() for w in waves], 16000, ids))
            got.waveforms.fill_(float("nan"))  # a model editing its input in place
    view = np.arange(50, dtype=np.float32)[10:20]  # a read-only slice, as of the memory map
    view.flags.writeable = False
    _same(buffers.pad(6, [view], 22050, ["v"]), pad_batch([view.copy()], 22050, ["v"]))


def test_buffers_are_reused_by_the_next_run_but_never_shared_by_two_at_once() -> None:
    with pad_buffers(3) as first:
        with pad_buffers(3) as second:
            assert second is not first
        with pad_buffers(4) as other_size:
            assert other_size is not second
    with pad_buffers(3) as again:
        assert again in (first, second)
    with pytest.raises(ValueError, match="slots must be >= 1"):
        PadBuffers(0)


class Holder:
    """Keeps each batch a while and checks that nothing wrote to it meanwhile (the prefetch
    thread pads the next batches during the wait)."""

    sample_rate = 16000

    def __init__(self) -> None:
        self.changed: list[tuple[str, ...]] = []

    def score(self, batch: Batch) -> torch.Tensor:
        before = batch.waveforms.clone()
        time.sleep(0.02)
        if not torch.equal(before, batch.waveforms):
            self.changed.append(batch.clip_ids)
        return batch.waveforms.double().abs().sum(dim=1)


@pytest.fixture
def store_clips(tmp_path: Path, write_wav) -> tuple[pa.Table, Path]:
    root = tmp_path / "data"
    rows = []
    for i in range(14):
        seconds = 0.05 + 0.01 * (i % 5)
        write_wav(root / f"c{i:02d}.wav", seconds=seconds, sr=16000, channels=1, seed=i)
        rows.append(
            {
                "clip_id": f"c{i:02d}",
                "corpus": "t",
                "split": "test",
                "audio_path": f"c{i:02d}.wav",
                "mos": 3.0,
                "duration": seconds,
            }
        )
    audio = tmp_path / "audio"
    return build_cache(from_rows(rows, CLIP_SCHEMA), root, audio, progress=False), audio


@pytest.mark.parametrize("prefetch", [0, 1, 3])
def test_no_batch_is_overwritten_while_the_model_holds_it(
    store_clips, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefetch: int
) -> None:
    clips, audio = store_clips
    config = ScoringConfig(max_batch_size=2, progress=False, device="cpu", prefetch=prefetch)
    model = Holder()
    cache = tmp_path / "a.sqlite"
    # the first run grows the ring batch by batch (lengths ascend), the second reuses all of it
    got = [
        score_clips(model, clips, audio, fingerprint=f, config=config, cache_path=cache)
        for f in ("h1", "h2")
    ]
    assert model.changed == []
    assert got[0] == got[1]
    # the scores a fresh array per batch gives (the loop before the ring)
    monkeypatch.setattr(scoring, "pad_buffers", lambda slots: nullcontext())
    want = score_clips(
        Holder(), clips, audio, fingerprint="h", config=config, cache_path=tmp_path / "b.sqlite"
    )
    assert got[0] == want


def test_the_store_map_is_kept_for_the_same_file_only(store_clips) -> None:
    clips, audio = store_clips
    ids, rels = clips.column("clip_id").to_pylist(), clips.column("audio_path").to_pylist()
    store = open_store(audio, ids, rels)
    assert store is not None
    key = store.record_stat
    first = packed_audio._map(store.path, key)
    assert packed_audio._map(store.path, key) is first  # the next run maps nothing
    # another file renamed into place with the same size and mtime: a new inode, so not the map
    st = store.path.stat()
    replacement = store.path.with_name(STORE_FILE + ".new")
    replacement.write_bytes(b"\0" * st.st_size)
    os.utime(replacement, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(replacement, store.path)
    with pytest.raises(DataError, match="packed audio store changed while scoring"):
        packed_audio._map(store.path, key)
    assert open_store(audio, ids, rels) is None  # and the manifest no longer vouches for it


def test_a_manifest_rewritten_in_place_is_read_again(store_clips) -> None:
    """Same size, same inode, maybe the same mtime tick: only the bytes tell, and they do."""
    clips, audio = store_clips
    ids, rels = clips.column("clip_id").to_pylist(), clips.column("audio_path").to_pylist()
    manifest = audio / CACHE_DIR / MANIFEST
    before = open_store(audio, ids, rels)
    assert before is not None and before.shas[0] != "f" * 64
    text = manifest.read_text()
    assert text.count(before.shas[0]) >= 1
    manifest.write_text(text.replace(before.shas[0], "f" * 64))  # in place, same length
    after = open_store(audio, ids, rels)
    assert after is not None and after.shas[0] == "f" * 64 and after.shas[1:] == before.shas[1:]
    manifest.write_text(text.replace('"c03"', '"x03"'))  # a clip gone from the index
    assert open_store(audio, ids, rels) is None
    manifest.write_text(text)
    assert open_store(audio, ids, rels) == before
