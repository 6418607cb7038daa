"""A process keeps its score-cache connection between runs (`benchmark.scoring.cache`): the next
run in that process gets it back only while the file is the one it was kept for, one caller at a
time, never in a forked child; `release` (run by `mosrm` at the end of a command and at exit)
closes it and leaves no WAL nor journal behind."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import benchmark.scoring.cache as score_cache
from benchmark.scoring.cache import ScoreCache, release


@pytest.fixture(autouse=True)
def _released() -> Iterator[None]:
    release()
    yield
    release()


def _put(path: Path, fingerprint: str, score: float) -> sqlite3.Connection:
    with ScoreCache(path) as cache:
        cache.put_clips(fingerprint, "p", [(("c", "s"), score)])
        return cache.conn


def _get(path: Path, fingerprint: str) -> dict:
    with ScoreCache(path) as cache:
        return cache.get_clips(fingerprint, "p", [("c", "s")])


def _journals(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.pending-*"))


def test_the_next_run_reuses_the_connection_and_its_journal(tmp_path: Path) -> None:
    path = tmp_path / "scores.sqlite"
    first = _put(path, "fp", 1.5)
    (journal,) = _journals(path)
    assert journal.stat().st_size == 0  # committed, kept open (and locked) for the next run
    with ScoreCache(path) as cache:
        assert cache.conn is first
        assert cache.get_clips("fp", "p", [("c", "s")]) == {("c", "s"): 1.5}
        cache.put_clips("fp2", "p", [(("c", "s"), 2.5)])
    assert _journals(path) == [journal]
    with sqlite3.connect(path) as other:  # what another process sees: committed rows
        rows = other.execute("SELECT fingerprint, score FROM clip_scores ORDER BY 1").fetchall()
    assert rows == [("fp", 1.5), ("fp2", 2.5)]


def test_release_closes_and_leaves_no_wal_nor_journal(tmp_path: Path) -> None:
    path = tmp_path / "scores.sqlite"
    conn = _put(path, "fp", 1.0)
    assert Path(f"{path}-wal").exists()
    release()
    with pytest.raises(sqlite3.ProgrammingError):
        conn.execute("SELECT 1")
    assert not Path(f"{path}-wal").exists() and not Path(f"{path}-shm").exists()
    assert _journals(path) == []
    assert _get(path, "fp") == {("c", "s"): 1.0}


def test_a_file_deleted_and_recreated_gets_a_fresh_connection(tmp_path: Path) -> None:
    path = tmp_path / "scores.sqlite"
    old = _put(path, "fp", 1.0)
    for side in ("", "-wal", "-shm"):
        Path(f"{path}{side}").unlink(missing_ok=True)
    with ScoreCache(path) as cache:  # the new file, even if it got the old inode number
        assert cache.conn is not old
        assert cache.get_clips("fp", "p", [("c", "s")]) == {}
    with pytest.raises(sqlite3.ProgrammingError):
        old.execute("SELECT 1")  # the stale one was closed, not leaked


def test_a_file_replaced_after_release_is_read_afresh(tmp_path: Path) -> None:
    """Replacing an SQLite file that a connection holds open strands its WAL beside the new
    file (SQLite's rule, kept connection or not); after `release` nothing holds it."""
    path, elsewhere = tmp_path / "scores.sqlite", tmp_path / "other.sqlite"
    _put(elsewhere, "fp", 7.0)
    kept = _put(path, "fp", 1.0)
    release()
    os.replace(elsewhere, path)
    with ScoreCache(path) as cache:
        assert cache.conn is not kept
        assert cache.get_clips("fp", "p", [("c", "s")]) == {("c", "s"): 7.0}


def test_a_replaced_file_is_not_served_by_the_kept_connection(tmp_path: Path) -> None:
    path, elsewhere = tmp_path / "scores.sqlite", tmp_path / "other.sqlite"
    _put(elsewhere, "fp", 7.0)
    release()
    kept = _put(path, "fp", 1.0)
    os.replace(elsewhere, path)
    with ScoreCache(path) as cache:
        assert cache.conn is not kept  # the identity check: another inode
    with pytest.raises(sqlite3.ProgrammingError):
        kept.execute("SELECT 1")


def test_another_process_writing_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "scores.sqlite"
    _put(path, "fp", 1.0)
    code = (
        "import sys; from pathlib import Path; from benchmark.scoring.cache import ScoreCache\n"
        "with ScoreCache(Path(sys.argv[1])) as c: c.put_clips('other', 'p', [(('c', 's'), 3.0)])"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=120)
    assert _get(path, "other") == {("c", "s"): 3.0}
    assert _get(path, "fp") == {("c", "s"): 1.0}


def test_callers_at_once_get_their_own_connections(tmp_path: Path) -> None:
    path = tmp_path / "scores.sqlite"
    _put(path, "fp", 1.0)
    outer = ScoreCache(path)
    inner = ScoreCache(path)  # a second caller while the first holds the kept one
    assert inner.conn is not outer.conn
    inner.put_clips("inner", "p", [(("c", "s"), 2.0)])
    inner.close()
    outer.close()  # one of them is kept, the other closed; both committed
    assert _get(path, "inner") == {("c", "s"): 2.0}
    assert len(score_cache._KEPT) == 1


def test_threads_take_turns_with_one_kept_connection(tmp_path: Path) -> None:
    path = tmp_path / "scores.sqlite"
    _put(path, "fp", 1.0)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for j in range(20):
                with ScoreCache(path) as cache:
                    cache.put_clips(f"t{k}", "p", [((f"c{j}", "s"), float(j))])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM clip_scores").fetchone()[0] == 1 + 4 * 20


def _child(path: str, queue: multiprocessing.Queue) -> None:
    try:
        assert score_cache._KEPT == {}  # handed to _ORPHANS at the fork
        (parent,) = score_cache._ORPHANS
        with ScoreCache(Path(path)) as cache:
            fresh = cache.conn is not parent.conn
            cache.put_clips("child", "p", [(("c", "s"), 4.0)])
        release()  # must not close (nor checkpoint through) the parent's connection
        queue.put(fresh)
    except BaseException as exc:
        queue.put(repr(exc))


@pytest.mark.skipif(sys.platform != "linux", reason="fork")
def test_a_forked_child_never_uses_its_parents_connection(tmp_path: Path) -> None:
    path = tmp_path / "scores.sqlite"
    kept = _put(path, "fp", 1.0)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(str(path), queue))
    child.start()
    got = queue.get(timeout=60)
    child.join(60)
    assert got is True
    assert child.exitcode == 0
    with ScoreCache(path) as cache:  # the parent's kept connection still works, and sees it
        assert cache.get_clips("child", "p", [("c", "s")]) == {("c", "s"): 4.0}
    assert kept.execute("SELECT 1").fetchone() == (1,)


def test_at_most_a_few_caches_are_kept(tmp_path: Path) -> None:
    conns = [_put(tmp_path / f"s{i}.sqlite", "fp", 1.0) for i in range(score_cache._KEPT_MAX + 2)]
    assert len(score_cache._KEPT) == score_cache._KEPT_MAX
    for old in conns[:2]:  # the oldest were closed, and their journals removed
        with pytest.raises(sqlite3.ProgrammingError):
            old.execute("SELECT 1")
    assert _journals(tmp_path / "s0.sqlite") == []


def test_a_failed_commit_closes_and_keeps_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "scores.sqlite"
    cache = ScoreCache(path)
    cache.put_clips("fp", "p", [(("c", "s"), 1.0)])

    def full(*_: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(ScoreCache, "_commit", full)
    with pytest.raises(sqlite3.OperationalError):
        cache.close()
    monkeypatch.undo()
    assert score_cache._KEPT == {}
    (journal,) = _journals(path)  # left for the next opener, which replays it
    assert journal.stat().st_size > 0
    assert _get(path, "fp") == {("c", "s"): 1.0}
    assert _journals(path) == []


def test_the_cli_releases_at_the_end_of_a_command(tmp_path: Path) -> None:
    from benchmark.cli import main

    path = tmp_path / "scores.sqlite"
    _put(path, "fp", 1.0)
    assert score_cache._KEPT
    assert main(["tasks"]) == 0
    assert score_cache._KEPT == {}


def test_closing_twice_hands_on_nothing(tmp_path: Path) -> None:
    path = tmp_path / "scores.sqlite"
    a = ScoreCache(path)
    a.put_clips("fp", "p", [(("c", "s"), 1.0)])
    a.close()
    a.close()  # a no-op: it must not close the kept connection
    b = ScoreCache(path)
    assert b.conn is a.conn  # the kept one, still open
    a.close()  # nor hand b's connection on to a third caller
    c = ScoreCache(path)
    assert c.conn is not b.conn and c._journal is not b._journal
    b.put_clips("fp2", "p", [(("c", "s"), 2.0)])
    c.close()
    b.close()
    assert _get(path, "fp2") == {("c", "s"): 2.0}


def test_a_failed_open_closes_its_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "scores.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")  # a newer harness's cache
    opened: list[sqlite3.Connection] = []
    real = score_cache.connect_wal

    def tracked(*args: object, **kwargs: object) -> sqlite3.Connection:
        opened.append(real(*args, **kwargs))  # type: ignore[arg-type]
        return opened[-1]

    monkeypatch.setattr(score_cache, "connect_wal", tracked)
    with pytest.raises(score_cache.MosrmError, match="schema version 99"):
        ScoreCache(path)
    (conn,) = opened
    with pytest.raises(sqlite3.ProgrammingError):
        conn.execute("SELECT 1")
    assert score_cache._KEPT == {}
