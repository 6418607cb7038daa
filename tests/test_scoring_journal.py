"""The score journal: finished batches survive a killed process bit for bit, a live writer's
journal is never taken, torn lines are dropped, and rows reach SQLite at the latest on close or
after `FLUSH_S`."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.scoring import journal as score_journal
from benchmark.scoring.cache import ScoreCache
from benchmark.scoring.journal import Journal, read, replay

ODD = [0.1 + 0.2, 1e-300, 2.0**-1074, 1 / 3, 123456789.123456789, -7.25e17]
"""Floats whose decimal forms are easy to get wrong."""


def _rows(path: Path, table: str = "clip_scores") -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return sorted(conn.execute(f"SELECT * FROM {table}").fetchall())


def _clip_rows(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return sorted(
            conn.execute(
                "SELECT fingerprint, preprocessing, clip_id, audio_sha256, score FROM clip_scores"
            ).fetchall()
        )


_WRITER = """
import os, sys
from pathlib import Path
from benchmark.scoring.cache import ScoreCache
odd = [0.1 + 0.2, 1e-300, 2.0**-1074, 1 / 3, 123456789.123456789, -7.25e17]
cache = ScoreCache(Path(sys.argv[1]))
cache.put_clips("fp", "p", [((f"c{i}", f"s{i}"), v) for i, v in enumerate(odd)])
cache.put_pairs("fp", "p", [((("a", "sa"), ("b", "sb")), (0.25, 1 / 7))])
with open(cache.path.with_name(cache.path.name + ".pending-half"), "wb") as f:
    f.write(b'["clip","fp","p",[["torn","s",1.0]]')  # a line cut by the kill: no newline
os._exit(9)  # killed: no commit, no close
"""


def test_a_killed_writers_batches_are_replayed_exactly(tmp_path: Path) -> None:
    cache = tmp_path / "scores.sqlite"
    ScoreCache(cache).close()
    done = subprocess.run(
        [sys.executable, "-c", _WRITER, str(cache)],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 9, done.stderr
    assert _rows(cache) == []  # nothing reached SQLite
    assert len(list(tmp_path.glob("scores.sqlite.pending-*"))) == 2
    with ScoreCache(cache) as reopened:
        got = reopened.get_clips("fp", "p", [(f"c{i}", f"s{i}") for i in range(len(ODD))])
        pairs = reopened.get_pairs("fp", "p", [(("a", "sa"), ("b", "sb"))])
    assert [got[(f"c{i}", f"s{i}")] for i in range(len(ODD))] == ODD
    assert [repr(v) for v in got.values()] == [repr(v) for v in ODD]
    assert pairs == {(("a", "sa"), ("b", "sb")): (0.25, 1 / 7)}
    assert "torn" not in {r[2] for r in _rows(cache)}
    assert not list(tmp_path.glob("scores.sqlite.pending-*"))  # replayed, then deleted


def test_a_live_writers_journal_is_left_alone(tmp_path: Path) -> None:
    cache = tmp_path / "scores.sqlite"
    writer = ScoreCache(cache)
    writer.put_clips("fp", "p", [(("c0", "s0"), 0.5)])  # journaled, lock held, not committed
    other = ScoreCache(cache)  # another opener (flock conflicts across open files)
    assert other.get_clips("fp", "p", [("c0", "s0")]) == {}
    other.close()
    assert len(list(tmp_path.glob("scores.sqlite.pending-*"))) == 1
    writer.close()  # commits and deletes its journal
    assert _clip_rows(cache) == [("fp", "p", "c0", "s0", 0.5)]
    assert not list(tmp_path.glob("scores.sqlite.pending-*"))


def test_rows_reach_sqlite_after_flush_s_and_a_lookup_sees_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "scores.sqlite"
    with ScoreCache(cache) as c:
        c.put_clips("fp", "p", [])  # nothing to keep: no journal line, no file
        assert c._journal.path is None
        c.put_clips("fp", "p", [(("c0", "s0"), 1.0)])
        assert _rows(cache) == []  # within FLUSH_S: in the journal only
        assert c.get_clips("fp", "p", [("c0", "s0")]) == {("c0", "s0"): 1.0}
        assert len(_rows(cache)) == 1  # the lookup committed first
        monkeypatch.setattr(score_journal, "FLUSH_S", 0.0)
        c.put_clips("fp", "p", [(("c1", "s1"), 2.0)])
        assert len(_rows(cache)) == 2  # due: committed by the put itself
        journal = c._journal.path
        assert journal is not None and journal.stat().st_size == 0  # emptied once committed


def test_read_drops_torn_and_malformed_lines() -> None:
    good = b'["clip","f","p",[["c0","s0",0.5],["c1","s1",1.5]]]\n'
    pair = b'["pair","f","p",[["a","sa","b","sb",0.25,0.75]]]\n'
    short = b'["clip","f","p",[["c2","s2",2.5],["c3"]]]\n'  # one bad row: the line goes
    data = good + b"not json\n" + short + pair + b'["clip","f","p",[["c4"'
    rows = read(data)
    assert rows["clip"] == [("f", "p", "c0", "s0", 0.5), ("f", "p", "c1", "s1", 1.5)]
    assert rows["pair"] == [("f", "p", "a", "sa", "b", "sb", 0.25, 0.75)]


def test_replay_applies_each_dead_journal_once(tmp_path: Path) -> None:
    db = tmp_path / "x.sqlite"
    journal = Journal(db)
    journal.append("clip", [("f", "p", "c0", "s0", 0.5)])
    assert journal.path is not None
    dead = journal.path.read_bytes()
    journal.close(delete=True)
    (tmp_path / "x.sqlite.pending-1-a").write_bytes(dead)
    (tmp_path / "x.sqlite.pending-1-b").write_bytes(dead + dead)
    (tmp_path / "other.sqlite.pending-1-c").write_bytes(dead)  # another cache's
    seen: list[dict] = []
    assert replay(db, seen.append) == 2
    assert [len(r["clip"]) for r in seen] == [1, 2]
    assert replay(db, seen.append) == 0
    assert os.listdir(tmp_path) == ["other.sqlite.pending-1-c"]


def test_a_journal_that_cannot_be_written_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from benchmark.errors import MachineError

    def full(*_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    cache = ScoreCache(tmp_path / "scores.sqlite")
    monkeypatch.setattr(Journal, "append", full)
    with pytest.raises(MachineError, match="^no space left on device while writing .*scores"):
        cache.put_clips("fp", "p", [(("c0", "s0"), 0.5)])
    cache.close()


def test_a_short_write_leaves_no_half_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = Journal(tmp_path / "scores.sqlite")
    journal.append("clip", [("f", "p", "c0", "s0", 0.5)])
    assert journal.path is not None
    whole = journal.path.read_bytes()
    real = os.write

    def half(fd: int, data: bytes) -> int:
        return real(fd, data[: len(data) // 2])

    monkeypatch.setattr(score_journal.os, "write", half)
    with pytest.raises(OSError, match="short write"):
        journal.append("clip", [("f", "p", "c1", "s1", 0.25)])
    monkeypatch.undo()
    assert journal.path.read_bytes() == whole  # cut back to the last whole line
    journal.append("clip", [("f", "p", "c2", "s2", 0.125)])
    rows = read(journal.path.read_bytes())
    assert rows["clip"] == [("f", "p", "c0", "s0", 0.5), ("f", "p", "c2", "s2", 0.125)]
    journal.close(delete=True)
