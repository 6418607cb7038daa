"""The packed audio store: a task's prepared 16 kHz clips as one memory-mapped float32 array.

Scoring from the per-clip WAV files of the 16 kHz cache (`benchmark.data.audio_cache`) opens and
decodes one file per clip and, on a cold hash memo, reads every file a second time to hash it, all
serial with the model. The store is written at prepare time beside those files, so that scoring
does no per-file decoding or hashing at all: a clip is a slice of one `np.memmap`, and its
score-cache key is read from the manifest.

Layout, in the task's audio folder:

    audio-16k/audio.f32      the samples of every clip, little-endian float32, back to back in
                             clip-id order (so the same clips give the same bytes)
    audio-16k/manifest.json  "packed": {format, file, dtype, rate, frames, size, mtime_ns, inode,
                             sha256, clips: {clip_id: [offset, frames, sha256]}}

Offsets and frames count samples. The per-clip `sha256` is the SHA-256 of the clip's cached WAV
file, the same bytes the scoring loop hashed before the store existed, so cached scores keep their
keys whichever path produced them. Each WAV is read, checked against that hash and decoded once,
when the store is written; its samples are the float32 values the file holds, so a model gets
bit-identical input from the store and from the file (`benchmark.data.audio.load_audio`). A model at
another rate gets them resampled with the same resampler call.

The store is *current* when the manifest's record has this format and the file has the recorded
size, mtime and inode: a stat, like the hash memo's, not a hash (`mosrm prepare`'s `verify`
re-hashes it). A rewrite always renames a new file into place, so it always changes the inode.
Scoring uses the store only when it is current and every clip of the table has an entry and points
at its cached file; otherwise it decodes and hashes files as before. `build_cache` rebuilds a store
that is absent or stale, and `benchmark.pairs.reuse` re-prepares a task whose store is not current.

A process keeps the last few stores mapped and manifests parsed, so that its next run over the
same task faults in no page and parses no JSON: a kept map serves only the inode it mapped, and a
kept parse only the same manifest bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.errors import DataError

STORE_FORMAT = 1
STORE_FILE = "audio.f32"
DTYPE = "<f4"
CHUNK_CLIPS = 64
"""Clips decoded ahead while the store is written: bounds memory on corpora of many GB."""


def expected_index(entries: Mapping[str, Mapping[str, Any]]) -> dict[str, list[Any]]:
    """{clip_id: [offset, frames, sha256]} the store of these cache entries must have."""
    index: dict[str, list[Any]] = {}
    offset = 0
    for cid in sorted(entries):
        frames = int(entries[cid]["frames"])
        index[cid] = [offset, frames, entries[cid]["sha256"]]
        offset += frames
    return index


def _stat_matches(st: os.stat_result, record: Mapping[str, Any]) -> bool:
    return (
        st.st_size == record.get("size")
        and st.st_mtime_ns == record.get("mtime_ns")
        and st.st_ino == record.get("inode")
    )


def stale_reason(
    cache_dir: Path,
    record: Mapping[str, Any] | None,
    entries: Mapping[str, Mapping[str, Any]],
    rate: int,
    *,
    verify: bool = False,
) -> str | None:
    """Why the store in `cache_dir` (the `audio-16k` folder) does not match `record` and the cache
    `entries`, or None when it does. `verify` also re-hashes the whole file."""
    if not isinstance(record, Mapping):
        return "no packed store recorded"
    if record.get("format") != STORE_FORMAT or record.get("file") != STORE_FILE:
        return f"packed store format {record.get('format')!r}, this harness writes {STORE_FORMAT}"
    if record.get("dtype") != DTYPE or record.get("rate") != rate:
        return "packed store has another dtype or rate"
    if record.get("clips") != expected_index(entries):
        return "packed store index differs from the cached clips"
    path = cache_dir / STORE_FILE
    try:
        st = path.stat()
    except OSError:
        return f"{path} missing"
    if not _stat_matches(st, record) or st.st_size != 4 * int(record.get("frames", -1)):
        return f"{path} changed since it was written"
    if verify:
        from benchmark.hashing import sha256_file

        if sha256_file(path) != record.get("sha256"):
            return f"{path} does not hash to the recorded sha256"
    return None


def store_current(audio_root: Path) -> bool:
    """Whether the task audio folder `audio_root` has a current store for every cached clip (what
    `benchmark.pairs.reuse` asks before reusing a prepared task)."""
    from benchmark.data.cache_layout import CACHE_DIR, CACHE_RATE, MANIFEST

    cache_dir = Path(audio_root) / CACHE_DIR
    try:
        manifest = json.loads((cache_dir / MANIFEST).read_text(encoding="utf-8"))
        entries = manifest["clips"]
        return stale_reason(cache_dir, manifest.get("packed"), entries, CACHE_RATE) is None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def write_store(
    cache_dir: Path,
    entries: Mapping[str, Mapping[str, Any]],
    read: Callable[[str], bytes],
    rate: int,
    *,
    workers: int = 1,
) -> dict[str, Any]:
    """Write `cache_dir/audio.f32` from the cached WAVs and return its manifest record.

    `read(clip_id)` returns the bytes of the clip's cached WAV, already checked against its entry's
    sha256 (the caller re-converts a file that fails the check). The file is written beside its
    destination and renamed, so a reader sees the old store or the new one.
    """
    from concurrent.futures import ThreadPoolExecutor

    from benchmark.atomic import atomic_path

    ids = sorted(entries)

    def decode(cid: str) -> np.ndarray:
        data = read(cid)  # may re-convert the clip and update its entry: read the entry after
        return _decode_wav(data, cid, rate, int(entries[cid]["frames"]))

    digest = hashlib.sha256()
    index: dict[str, list[Any]] = {}
    total = 0
    path = cache_dir / STORE_FILE
    with atomic_path(path) as tmp, tmp.open("wb") as out:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for start in range(0, len(ids), CHUNK_CLIPS):
                chunk = ids[start : start + CHUNK_CLIPS]
                for cid, wave in zip(chunk, pool.map(decode, chunk), strict=True):
                    data = wave.astype(DTYPE, copy=False).tobytes()
                    digest.update(data)
                    out.write(data)
                    index[cid] = [total, int(wave.shape[0]), entries[cid]["sha256"]]
                    total += int(wave.shape[0])
        out.flush()
    st = path.stat()
    return {
        "format": STORE_FORMAT,
        "file": STORE_FILE,
        "dtype": DTYPE,
        "rate": rate,
        "frames": total,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "inode": st.st_ino,
        "sha256": digest.hexdigest(),
        "clips": index,
    }


def _decode_wav(data: bytes, clip_id: str, rate: int, frames: int) -> np.ndarray:
    """The samples `benchmark.data.audio.load_audio` gives for these WAV bytes at their own rate."""
    import soundfile as sf

    try:
        wave, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile reports corrupt files through several exception types
        raise DataError(f"cached audio of clip {clip_id}: cannot decode ({exc})") from None
    if sr != rate or wave.shape[1] != 1 or wave.shape[0] != frames:
        raise DataError(
            f"cached audio of clip {clip_id}: {wave.shape[0]} frames, {wave.shape[1]} channels at "
            f"{sr} Hz; the manifest says {frames} mono frames at {rate} Hz"
        )
    if not np.isfinite(wave).all():
        raise DataError(f"cached audio of clip {clip_id}: non-finite samples")
    return np.ascontiguousarray(wave[:, 0], dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# reading, at scoring time


@dataclass
class PackedClips:
    """The store's slice of a clip table: row i is clip i of the table it was opened for.

    Picklable for DataLoader workers: the memory map is dropped and reopened (and re-checked).
    """

    path: Path
    record_stat: tuple[int, int, int]  # size, mtime_ns, inode
    rate: int
    offsets: list[int]
    frames: list[int]
    shas: list[str]
    _data: np.ndarray | None = field(default=None, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_data": None}

    def _samples(self) -> np.ndarray:
        if self._data is None:
            self._data = _map(self.path, self.record_stat)
        return self._data

    def num_frames(self, i: int, target_sr: int) -> int:
        """Clip i's length at `target_sr`, as `benchmark.data.audio.audio_num_frames` computes it."""
        return int(np.ceil(self.frames[i] * target_sr / self.rate))

    def wave(self, i: int, target_sr: int) -> np.ndarray:
        """Clip i as float32 mono at `target_sr`: what `load_audio` gives for its cached file."""
        x = self._samples()[self.offsets[i] : self.offsets[i] + self.frames[i]]
        if target_sr == self.rate:
            return x  # a read-only view; `pad_batch` copies it into the batch
        import soxr

        from benchmark.data.audio import RESAMPLER_QUALITY

        y = soxr.resample(np.array(x), self.rate, target_sr, quality=RESAMPLER_QUALITY)
        return np.ascontiguousarray(y, dtype=np.float32)


_MAPS: OrderedDict[tuple[Path, tuple[int, int, int]], np.ndarray] = OrderedDict()
"""Stores mapped by this process, newest last, keyed by (path, (size, mtime_ns, inode))."""
_MAPS_KEPT = 4
_KEPT_LOCK = threading.Lock()


def _map(path: Path, record_stat: tuple[int, int, int]) -> np.ndarray:
    """`path` memory-mapped, after checking that it is the store recorded.

    The map is kept for the next run (up to `_MAPS_KEPT` stores): the first read of each page
    of a new map faults it in (about 5 ms for 256 clips of 2.5 s here, per run). A kept map is
    used again only while `path` still stats as recorded, i.e. still is the mapped inode; a
    rewrite renames a new file into place, which changes the inode."""
    key = (path, record_stat)
    with _KEPT_LOCK:
        kept = _MAPS.get(key)
        if kept is not None:
            try:
                st = path.stat()
            except OSError:
                st = None
            if st is not None and (st.st_size, st.st_mtime_ns, st.st_ino) == record_stat:
                _MAPS.move_to_end(key)
                return kept
            del _MAPS[key]
    try:
        f = path.open("rb")
    except OSError as exc:
        raise DataError(f"{path}: cannot open the packed audio store ({exc.strerror})") from None
    with f:
        st = os.fstat(f.fileno())
        if (st.st_size, st.st_mtime_ns, st.st_ino) != record_stat:
            raise DataError(f"{path}: packed audio store changed while scoring; rerun")
        if st.st_size == 0:
            return np.zeros(0, dtype=DTYPE)
        # a plain ndarray over the map (which it keeps open): slicing a memmap costs ~3x more
        data = np.memmap(f, dtype=DTYPE, mode="r").view(np.ndarray)
    with _KEPT_LOCK:
        _MAPS[key] = data
        while len(_MAPS) > _MAPS_KEPT:
            _MAPS.popitem(last=False)
    return data


_MANIFESTS: OrderedDict[Path, tuple[bytes, Any, dict[str, str]]] = OrderedDict()
"""The manifests read last, newest last: (bytes, their JSON, {clip_id: cached file name})."""
_MANIFESTS_KEPT = 4


def _read_manifest(path: Path) -> tuple[Any, dict[str, str]] | None:
    """The JSON of `path` and a memo of its clips' cached names, or None if unreadable.

    The file is read on every call and parsed only when its bytes differ from the last read (a
    read and a compare cost ~0.05 ms for 256 clips, a parse ~0.4 ms, growing with the corpus).
    Callers must not modify what they get."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    with _KEPT_LOCK:
        kept = _MANIFESTS.get(path)
        if kept is not None and kept[0] == data:
            _MANIFESTS.move_to_end(path)
            return kept[1], kept[2]
    try:
        manifest = json.loads(data)
    except ValueError:  # not JSON, or not UTF-8
        return None
    with _KEPT_LOCK:
        _MANIFESTS[path] = (data, manifest, {})
        while len(_MANIFESTS) > _MANIFESTS_KEPT:
            _MANIFESTS.popitem(last=False)
        return manifest, _MANIFESTS[path][2]


def open_store(
    audio_root: Path, clip_ids: Sequence[str], audio_paths: Sequence[str]
) -> PackedClips | None:
    """The store under `audio_root` for these clips, or None to decode files as before.

    None when there is no current store, or when any clip has no entry in it or its `audio_path`
    is not its cached file (the table is not about this store's audio): the store is never used
    for part of a table, nor for audio it was not built from.
    """
    from benchmark.data.cache_layout import (
        CACHE_DIR,
        CACHE_RATE,
        MANIFEST,
        cache_settings,
        cached_name,
    )

    cache_dir = Path(audio_root) / CACHE_DIR
    parsed = _read_manifest(cache_dir / MANIFEST)
    if parsed is None:
        return None
    manifest, names = parsed
    if not isinstance(manifest, dict) or manifest.get("settings") != cache_settings(CACHE_RATE):
        return None
    record = manifest.get("packed")
    if not isinstance(record, dict) or record.get("format") != STORE_FORMAT:
        return None
    if record.get("file") != STORE_FILE or record.get("dtype") != DTYPE:
        return None
    index = record.get("clips")
    if not isinstance(index, dict):
        return None
    offsets: list[int] = []
    frames: list[int] = []
    shas: list[str] = []
    for cid, rel in zip(clip_ids, audio_paths, strict=True):
        item = index.get(cid)
        if item is None:
            return None
        name = names.get(cid)
        if name is None:
            name = names[cid] = cached_name(cid)
        if rel != name:
            return None
        offsets.append(int(item[0]))
        frames.append(int(item[1]))
        shas.append(str(item[2]))
    path = cache_dir / STORE_FILE
    try:
        st = path.stat()
    except OSError:
        return None
    if not _stat_matches(st, record):
        return None
    stat = (int(record["size"]), int(record["mtime_ns"]), int(record["inode"]))
    return PackedClips(path, stat, int(record["rate"]), offsets, frames, shas)
