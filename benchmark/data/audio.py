"""Audio decoding, padding and length bucketing for the scoring loop.

Every clip a model sees goes through `load_audio`, one clip at a time, so the samples a model
receives for a clip never depend on which other clips share its batch: that is what makes "batch size
must not change a score" testable. What this module does to the audio is summarised by
`preprocessing_config`, which is part of every score-cache key; bump `PREPROCESSING_VERSION` whenever
the decoded samples could change, so stale cached scores are never reused.

Decoding failures are user data problems, so they surface as `DataError` naming the file instead of
a traceback from inside libsndfile.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from benchmark.data.batch import Batch
from benchmark.errors import DataError
from benchmark.hashing import sha256_file

PREPROCESSING_VERSION = 1
RESAMPLER_QUALITY = "HQ"

_RACY_NS = 2_000_000_000
"""A file modified less than this long ago is hashed but not memoised: file-system timestamps are
coarse (a few ms), so a file rewritten twice within one tick keeps its size and mtime, and a memo
taken in between would go stale unnoticed (the "racy git" problem)."""


def preprocessing_config(target_sr: int) -> dict[str, Any]:
    """Everything that determines the samples a model receives, for cache keys and results JSON."""
    return {
        "version": PREPROCESSING_VERSION,
        "sample_rate": int(target_sr),
        "mono": "mean",
        "resampler": f"soxr-{RESAMPLER_QUALITY}",
        "dtype": "float32",
    }


def load_audio(path: str | Path, target_sr: int) -> np.ndarray:
    """Decode `path` to float32 mono at `target_sr` Hz (channel mean, soxr HQ resampling).

    Raises `DataError` naming the file when it is missing, cannot be decoded, holds no samples or
    holds NaN/inf samples; a silently propagated NaN would otherwise surface much later as a bad
    model score blamed on the submission.
    """
    path = Path(path)
    if target_sr <= 0:
        raise ValueError(f"target sample rate must be positive, got {target_sr}")
    if not path.is_file():
        raise DataError(f"{path}: audio file not found")
    try:
        data, sr = sf.read(path, dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile reports corrupt files through several exception types
        raise DataError(f"{path}: cannot decode audio: {_one_line(exc)}") from None
    if data.shape[0] == 0:
        raise DataError(f"{path}: audio file holds no samples")
    finite = np.isfinite(data)
    if not finite.all():
        bad = int(data.size - np.count_nonzero(finite))
        raise DataError(f"{path}: audio holds {bad} non-finite samples (NaN or inf)")
    if data.shape[1] == 1:
        mono = data[:, 0]
    else:
        mono = data.mean(axis=1, dtype=np.float64).astype(np.float32)
    if sr != target_sr:
        mono = soxr.resample(mono, sr, target_sr, quality=RESAMPLER_QUALITY)
    return np.ascontiguousarray(mono, dtype=np.float32)


def resolve_audio_path(data_root: str | Path, audio_path: str | Path) -> Path:
    """Clip tables store audio paths relative to the task's data root (or absolute)."""
    path = Path(audio_path)
    return path if path.is_absolute() else Path(data_root) / path


def audio_num_frames(path: str | Path, target_sr: int) -> int:
    """Length in samples at `target_sr`, from the header only (for bucketing when no duration)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: audio file not found")
    try:
        info = sf.info(str(path))
    except Exception as exc:
        raise DataError(f"{path}: cannot read audio header: {_one_line(exc)}") from None
    if info.samplerate <= 0:
        raise DataError(f"{path}: audio header has sample rate {info.samplerate}")
    return int(np.ceil(info.frames * target_sr / info.samplerate))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def pad_batch(waves: Sequence[np.ndarray], sr: int, clip_ids: Sequence[str]) -> Batch:
    """Zero-pad mono waveforms to the longest one; the true lengths let models mask the padding."""
    import torch

    if len(waves) != len(clip_ids):
        raise ValueError(f"{len(waves)} waveforms but {len(clip_ids)} clip ids")
    lengths = [int(w.shape[0]) for w in waves]
    out = np.zeros((len(waves), max(lengths, default=0)), dtype=np.float32)
    for i, w in enumerate(waves):
        out[i, : lengths[i]] = w
    return Batch(
        waveforms=torch.from_numpy(out),
        lengths=torch.tensor(lengths, dtype=torch.int64),
        sample_rate=int(sr),
        clip_ids=tuple(clip_ids),
    )


def length_buckets(
    lengths: Sequence[int], max_batch_size: int, max_batch_samples: int
) -> list[list[int]]:
    """Group indices into batches of similar length so padding stays small.

    Indices are sorted by length (ties by index, so the result is deterministic; the scoring loop
    passes its units already in `scoring.order.send_order`, so that order holds within a length) and
    cut greedily: a batch never holds more than `max_batch_size` items, and batch size times its
    longest item stays within `max_batch_samples`, except that an item longer than the budget
    gets a batch of its own rather than being dropped.
    """
    if max_batch_size < 1:
        raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
    if max_batch_samples < 1:
        raise ValueError(f"max_batch_samples must be >= 1, got {max_batch_samples}")
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    buckets: list[list[int]] = []
    current: list[int] = []
    for i in order:
        # ascending order: the incoming item is the longest of the batch it would join
        size = len(current) + 1
        if current and (size > max_batch_size or size * lengths[i] > max_batch_samples):
            buckets.append(current)
            current = []
        current.append(i)
    if current:
        buckets.append(current)
    return buckets


# ---------------------------------------------------------------------------------------------
# file hashes, memoised in SQLite (the score cache DB by default)

_MEMO_SCHEMA = """
CREATE TABLE IF NOT EXISTS file_hashes (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    sha256 TEXT NOT NULL
) WITHOUT ROWID
"""


def connect_wal(
    path: str | Path, timeout: float = 60.0, *, check_same_thread: bool = True
) -> sqlite3.Connection:
    """A connection to the SQLite file `path` in WAL mode, safe when processes open it at once.

    Switching a new database to WAL needs an exclusive lock that SQLite does not wait for (the busy
    timeout does not apply), so two runs creating one cache at the same moment failed with
    "database is locked"; the switch is retried here until `timeout`.
    """
    conn = sqlite3.connect(path, timeout=timeout, check_same_thread=check_same_thread)
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return conn
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                conn.close()
                raise
            time.sleep(delay)
            delay = min(2 * delay, 0.1)


def ensure_hash_memo(conn: sqlite3.Connection) -> None:
    """Create the file-hash memo table in `conn` if it is not there yet."""
    conn.execute(_MEMO_SCHEMA)


def _sha256_path(path: Path) -> str:
    try:
        return sha256_file(path)
    except FileNotFoundError:
        raise DataError(f"{path}: audio file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read audio file: {_one_line(exc)}") from None


def file_sha256s(
    paths: Sequence[str | Path], memo: sqlite3.Connection | Path | None = None
) -> list[str]:
    """SHA-256 of each file, reusing memoised hashes keyed by (absolute path, size, mtime, inode).

    The hash ties cached scores to the audio content rather than to a path, so replacing a file
    invalidates its scores; the memo spares re-reading a whole corpus on every run. `memo` is an
    open SQLite connection (committed by the caller) or a DB path; default: the score cache.
    Files not memoised are hashed in a few threads (hashlib releases the GIL).
    """
    if isinstance(memo, sqlite3.Connection):
        return _sha256s_with(memo, paths)
    if memo is None:
        from benchmark.paths import score_cache_path

        memo = score_cache_path()
    memo = Path(memo)
    memo.parent.mkdir(parents=True, exist_ok=True)
    conn = connect_wal(memo)
    try:
        with conn:
            return _sha256s_with(conn, paths)
    finally:
        conn.close()


def file_sha256(path: str | Path, memo: sqlite3.Connection | Path | None = None) -> str:
    """SHA-256 of one file, memoised like `file_sha256s`."""
    return file_sha256s([path], memo)[0]


def _sha256s_with(conn: sqlite3.Connection, paths: Sequence[str | Path]) -> list[str]:
    ensure_hash_memo(conn)
    absolute = [Path(os.path.abspath(p)) for p in paths]
    stats: list[os.stat_result] = []
    for p in absolute:
        try:
            stats.append(p.stat())
        except FileNotFoundError:
            raise DataError(f"{p}: audio file not found") from None
        except OSError as exc:
            raise DataError(f"{p}: cannot read audio file: {_one_line(exc)}") from None
    out: list[str | None] = [None] * len(absolute)
    todo: list[int] = []
    for i, (p, st) in enumerate(zip(absolute, stats, strict=True)):
        row = conn.execute(
            "SELECT sha256 FROM file_hashes WHERE path = ? AND size = ? AND mtime_ns = ? AND inode = ?",
            (str(p), st.st_size, st.st_mtime_ns, st.st_ino),
        ).fetchone()
        if row is None:
            todo.append(i)
        else:
            out[i] = row[0]
    if todo:
        workers = min(8, len(todo), os.cpu_count() or 1)
        if workers > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                digests = list(pool.map(_sha256_path, [absolute[i] for i in todo]))
        else:
            digests = [_sha256_path(absolute[i]) for i in todo]
        settled = time.time_ns() - _RACY_NS
        rows = []
        for i, digest in zip(todo, digests, strict=True):
            out[i] = digest
            st = stats[i]
            if st.st_mtime_ns < settled:
                rows.append((str(absolute[i]), st.st_size, st.st_mtime_ns, st.st_ino, digest))
        conn.executemany("INSERT OR REPLACE INTO file_hashes VALUES (?, ?, ?, ?, ?)", rows)
    return [d for d in out if d is not None]
