"""The score cache: one SQLite file of every score any model gave, so no clip is scored twice.

Cache schema (`scores.sqlite`, WAL mode, `PRAGMA user_version` = `CACHE_SCHEMA_VERSION`):

    clip_scores(fingerprint, preprocessing, clip_id, audio_sha256, score REAL, created_at)
        primary key (fingerprint, preprocessing, clip_id, audio_sha256)
    pair_scores(fingerprint, preprocessing, clip_lo, sha_lo, clip_hi, sha_hi,
                p_lo_hi REAL, p_hi_lo REAL, created_at)
        primary key (fingerprint, preprocessing, clip_lo, sha_lo, clip_hi, sha_hi);
        (clip_lo, sha_lo) < (clip_hi, sha_hi); p_lo_hi = prefer(lo, hi) and p_hi_lo =
        prefer(hi, lo), the judge's raw answers in each presentation order
    file_hashes(path, size, mtime_ns, inode, sha256)   memo of audio hashes (benchmark.data.audio)

Schema history. Version 1 cached only the order average of a pair (`p_lo`), from which the two
answers cannot be recovered. Opening a version-1 cache migrates it in one transaction: its
`pair_scores` rows are dropped (a pairwise judge is asked again, once, the next time it runs) and
everything else, the clip scores and the hash memo included, is kept as it is. The order average
is recomputed from the two answers with the same float64 expression as before, so a re-judged
pair gets bit-identical accuracy.

Writes go through a per-process journal (`benchmark.scoring.journal`), so a finished batch is safe
from a kill with one `write` and reaches SQLite every few seconds and at the end of a run.

A process keeps its last few caches open between runs (`release` closes them; it runs at exit
and at the end of `mosrm` commands): closing the last connection to a WAL database checkpoints
it and deletes its WAL, and opening one re-reads the schema, about 3.4 ms together here, 2% of
the reference CNN's forward pass over 256 clips, paid by every `score_clips` call of a library
user or of a pipeline scoring several tasks. A kept connection is used again only by the same
process, one caller at a time, and only while the file still has the identity (device, inode,
ctime, size) it had when the connection was put back: a file deleted and recreated, replaced,
or checkpointed by another process is opened afresh. As with any open SQLite database, a
process that replaces the file itself (rather than deleting it with its `-wal` and `-shm`) must
`release` first: the WAL beside the new file would still be the old file's.
"""

from __future__ import annotations

import atexit
import errno
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.data.audio import connect_wal, ensure_hash_memo, file_sha256s
from benchmark.errors import MachineError, MosrmError, no_space
from benchmark.scoring.journal import Journal

CACHE_SCHEMA_VERSION = 2
"""2: both presentation orders of a pair are cached (1 kept only their average; see above)."""

_MIGRATES_FROM = (1,)
"""Older schema versions this harness upgrades in place (module doc, "Schema history")."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS clip_scores (
    fingerprint TEXT NOT NULL,
    preprocessing TEXT NOT NULL,
    clip_id TEXT NOT NULL,
    audio_sha256 TEXT NOT NULL,
    score REAL NOT NULL,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (fingerprint, preprocessing, clip_id, audio_sha256)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pair_scores (
    fingerprint TEXT NOT NULL,
    preprocessing TEXT NOT NULL,
    clip_lo TEXT NOT NULL,
    sha_lo TEXT NOT NULL,
    clip_hi TEXT NOT NULL,
    sha_hi TEXT NOT NULL,
    p_lo_hi REAL NOT NULL,
    p_hi_lo REAL NOT NULL,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (fingerprint, preprocessing, clip_lo, sha_lo, clip_hi, sha_hi)
) WITHOUT ROWID;
"""

ClipKey = tuple[str, str]
"""(clip id, audio sha256): what a cached score is about."""

_LOOKUP_CHUNK = 500
"""Clip ids bound in one lookup query (SQLite allows 32,766 parameters since 3.32, 999 before)."""


class ScoreCache:
    """The SQLite score cache. Every `put_*` is safe from a kill once it returns: the batch is
    appended to this process's journal (`benchmark.scoring.journal`), which is committed to SQLite
    every `FLUSH_S` seconds and on `close`, and replayed by the next opener if the process died."""

    def __init__(self, path: Path) -> None:
        from benchmark.scoring.journal import TABLES, replay

        self.path = Path(path)
        self._key = Path(os.path.abspath(self.path))
        self._pending: dict[str, list[tuple[Any, ...]]] = {table: [] for table in TABLES}
        self._flushed_at = time.monotonic()
        self._closed = False
        kept = _take(self._key)
        fresh: sqlite3.Connection | None = None
        try:
            if kept is not None:
                self.conn, self._journal = kept.conn, kept.journal
                self._check_version()  # another process may have moved the file on
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._journal = Journal(self.path)
                fresh = connect_wal(self.path, check_same_thread=False)  # kept, see _take
                self.conn = fresh
                # WAL + NORMAL survives a killed process (only a power cut may drop the last
                # commits)
                self.conn.execute("PRAGMA synchronous=NORMAL")
                self._setup()
            replay(self.path, self._commit)  # batches a killed run had journaled
        except BaseException as exc:
            self._closed = True
            if kept is not None:
                _discard(kept)
            elif fresh is not None:
                fresh.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise cache_error(self.path, exc) from None
            raise

    def _setup(self) -> None:
        if self._check_version() == CACHE_SCHEMA_VERSION:
            return  # set in the transaction that made the tables: nothing to write
        self.conn.execute("BEGIN IMMEDIATE")  # one writer migrates; the others then see v2
        try:
            self._check_version()
            self._migrate()
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self.conn.execute(statement)
            ensure_hash_memo(self.conn)
            self.conn.execute(f"PRAGMA user_version = {CACHE_SCHEMA_VERSION}")
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise

    def _check_version(self) -> int:
        version = int(self.conn.execute("PRAGMA user_version").fetchone()[0])
        if version not in (0, *_MIGRATES_FROM, CACHE_SCHEMA_VERSION):
            raise MosrmError(
                f"{self.path}: score cache has schema version {version}, this harness "
                f"writes {CACHE_SCHEMA_VERSION}; delete the file to start a fresh cache"
            )
        return version

    def _migrate(self) -> None:
        """Drop pair rows that lack either order's answer (schema 1); keep everything else."""
        columns = {row[1] for row in self.conn.execute("PRAGMA table_info(pair_scores)")}
        if columns and not {"p_lo_hi", "p_hi_lo"} <= columns:
            self.conn.execute("DROP TABLE pair_scores")

    def close(self) -> None:
        """Commit what the journal holds, then keep the connection for this process's next run
        (or close it); if the commit fails the journal stays, for the next opener to replay.
        Once only: a second close would hand on (or close) a connection another caller may
        have taken since."""
        if self._closed:
            return
        self._closed = True
        try:
            self.flush()
        except BaseException:
            _shut(self.conn, self._journal, delete=False)
            raise
        if not _put_back(self._key, self.conn, self._journal):
            _shut(self.conn, self._journal, delete=True)

    def flush(self) -> None:
        """Commit the journaled batches to SQLite, where other processes see them."""
        if any(self._pending.values()):
            self._commit(self._pending)
            try:
                self._journal.clear()
            except OSError as exc:
                raise _journal_error(self._journal.path or self.path, exc) from None
            self._pending = {table: [] for table in self._pending}
        self._flushed_at = time.monotonic()

    def _keep(self, table: str, rows: list[tuple[Any, ...]]) -> None:
        from benchmark.scoring.journal import FLUSH_S

        if not rows:
            return
        try:
            self._journal.append(table, rows)
        except OSError as exc:
            raise _journal_error(self._journal.path or self.path, exc) from None
        self._pending[table].extend(rows)
        if time.monotonic() - self._flushed_at >= FLUSH_S:
            self.flush()

    def _commit(self, rows: dict[str, list[tuple[Any, ...]]]) -> None:
        with self.conn:
            if rows["clip"]:
                self.conn.executemany(
                    "INSERT OR REPLACE INTO clip_scores (fingerprint, preprocessing, clip_id, "
                    "audio_sha256, score) VALUES (?, ?, ?, ?, ?)",
                    rows["clip"],
                )
            if rows["pair"]:
                self.conn.executemany(
                    "INSERT OR REPLACE INTO pair_scores (fingerprint, preprocessing, clip_lo, "
                    "sha_lo, clip_hi, sha_hi, p_lo_hi, p_hi_lo) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    rows["pair"],
                )

    def __enter__(self) -> ScoreCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def hashes(self, paths: Sequence[Path]) -> list[str]:
        with self.conn:
            return file_sha256s(paths, self.conn)

    def get_clips(
        self, fingerprint: str, prep: str, keys: Sequence[ClipKey]
    ) -> dict[ClipKey, float]:
        """{key: score} for the keys found: one query per `_LOOKUP_CHUNK` clip ids (a query per
        clip cost 1 ms per 256 clips), then only the rows of the asked audio are kept."""
        self.flush()
        wanted = set(keys)
        ids = sorted({cid for cid, _ in wanted})
        found: dict[ClipKey, float] = {}
        for start in range(0, len(ids), _LOOKUP_CHUNK):
            chunk = ids[start : start + _LOOKUP_CHUNK]
            rows = self.conn.execute(
                "SELECT clip_id, audio_sha256, score FROM clip_scores WHERE fingerprint = ? "
                f"AND preprocessing = ? AND clip_id IN ({','.join('?' * len(chunk))})",
                (fingerprint, prep, *chunk),
            )
            for cid, sha, score in rows:
                if (cid, sha) in wanted:
                    found[(cid, sha)] = float(score)
        return found

    def put_clips(
        self, fingerprint: str, prep: str, items: Sequence[tuple[ClipKey, float]]
    ) -> None:
        self._keep("clip", [(fingerprint, prep, k[0], k[1], float(s)) for k, s in items])

    def get_pairs(
        self, fingerprint: str, prep: str, keys: Sequence[tuple[ClipKey, ClipKey]]
    ) -> dict[tuple[ClipKey, ClipKey], tuple[float, float]]:
        """{(lo, hi): (prefer(lo, hi), prefer(hi, lo))} for the keys found in the cache."""
        self.flush()
        found: dict[tuple[ClipKey, ClipKey], tuple[float, float]] = {}
        for lo, hi in keys:
            row = self.conn.execute(
                "SELECT p_lo_hi, p_hi_lo FROM pair_scores WHERE fingerprint = ? "
                "AND preprocessing = ? AND clip_lo = ? AND sha_lo = ? AND clip_hi = ? "
                "AND sha_hi = ?",
                (fingerprint, prep, *lo, *hi),
            ).fetchone()
            if row is not None:
                found[(lo, hi)] = (float(row[0]), float(row[1]))
        return found

    def put_pairs(
        self,
        fingerprint: str,
        prep: str,
        items: Sequence[tuple[tuple[ClipKey, ClipKey], tuple[float, float]]],
    ) -> None:
        """Store (prefer(lo, hi), prefer(hi, lo)) per canonical pair (lo, hi)."""
        self._keep(
            "pair",
            [
                (fingerprint, prep, *lo, *hi, float(p_lh), float(p_hl))
                for (lo, hi), (p_lh, p_hl) in items
            ],
        )


def _journal_error(path: Path, exc: OSError) -> MachineError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return no_space(path)
    return MachineError(
        f"{path}: cannot write the score journal ({exc.strerror or exc}); check the folder's "
        "permissions and the disk, then rerun"
    )


def cache_error(path: Path, exc: sqlite3.Error) -> MachineError:
    """One line for an SQLite failure of the score cache at `path`, saying what to do about it."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    text = " ".join(str(exc).split())
    if code == sqlite3.SQLITE_FULL or "disk is full" in text:
        return no_space(path)
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in text:
        return MachineError(f"{path}: score cache busy ({text}); rerun when the other run is done")
    if code == sqlite3.SQLITE_IOERR or "I/O error" in text:
        return MachineError(
            f"{path}: score cache I/O error ({text}); check the disk and its free space, then rerun"
        )
    return MachineError(
        f"{path}: score cache unusable ({text}); move it away (mv {path} {path}.broken) and rerun: "
        "scores will be recomputed"
    )


@contextmanager
def open_cache(path: Path | None) -> Iterator[ScoreCache]:
    if path is None:
        from benchmark.paths import score_cache_path

        path = score_cache_path()
    cache = ScoreCache(path)
    try:
        try:
            yield cache
        finally:
            cache.close()  # commits the journaled batches, whatever stopped the run
    except sqlite3.DatabaseError as exc:  # e.g. a page found corrupt only when it is read
        raise cache_error(cache.path, exc) from None


# ---------------------------------------------------------------------------------------------
# connections kept between runs of one process


@dataclass
class _Kept:
    conn: sqlite3.Connection
    journal: Journal
    identity: tuple[int, int, int, int]  # the file's (device, inode, ctime_ns, size) when kept
    pid: int


_KEPT: OrderedDict[Path, _Kept] = OrderedDict()
_KEPT_MAX = 4
_KEPT_LOCK = threading.Lock()


def _identity(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_ctime_ns, st.st_size)


_ORPHANS: list[_Kept] = []
"""A forked child's copies of its parent's kept connections: referenced until the child exits,
so that no garbage collection closes the parent's SQLite handle from the child."""


def _after_fork_in_child() -> None:
    global _KEPT_LOCK
    _KEPT_LOCK = threading.Lock()  # another thread may have held it at the fork
    _ORPHANS.extend(_KEPT.values())
    _KEPT.clear()


def _discard(kept: _Kept) -> None:
    if kept.pid != os.getpid():
        _ORPHANS.append(kept)  # the parent's: never touched here (see `_after_fork_in_child`)
        return
    _shut(kept.conn, kept.journal, delete=True)  # empty: all it held was committed when kept


def _shut(conn: sqlite3.Connection, journal: Journal, *, delete: bool) -> None:
    """Close `journal` (deleted when everything it held is in SQLite), then `conn`, whatever
    the first does."""
    try:
        journal.close(delete=delete)
    finally:
        conn.close()


def _take(path: Path) -> _Kept | None:
    """This process's kept connection to `path`, if the file is still the one it was kept for."""
    with _KEPT_LOCK:
        kept = _KEPT.pop(path, None)
    if kept is None:
        return None
    if kept.pid == os.getpid() and _identity(path) == kept.identity:
        return kept
    _discard(kept)
    return None


def _put_back(path: Path, conn: sqlite3.Connection, journal: Journal) -> bool:
    """Keep `conn` (all committed) and its emptied `journal` for the next run over `path`."""
    identity = _identity(path)
    if identity is None:
        return False
    evicted: list[_Kept] = []
    with _KEPT_LOCK:
        if path in _KEPT:
            return False  # another caller's connection is kept already
        _KEPT[path] = _Kept(conn, journal, identity, os.getpid())
        while len(_KEPT) > _KEPT_MAX:
            evicted.append(_KEPT.popitem(last=False)[1])
    for kept in evicted:
        _discard(kept)
    return True


def release() -> None:
    """Close every cache connection this process keeps (checkpointing their WALs)."""
    with _KEPT_LOCK:
        kept = list(_KEPT.values())
        _KEPT.clear()
    for k in kept:
        try:
            _discard(k)
        except (OSError, sqlite3.Error):
            pass  # at exit, or after a failed run: the next opener recovers the WAL


atexit.register(release)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
