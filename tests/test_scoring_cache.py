"""The score cache's own operations, against plain SQL: the batched lookup finds exactly the rows
a query per key finds, and opening a current cache writes nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import benchmark.scoring.cache as score_cache
from benchmark.scoring.cache import CACHE_SCHEMA_VERSION, ScoreCache


def _one_by_one(path: Path, fingerprint: str, prep: str, keys: list[tuple[str, str]]) -> dict:
    with sqlite3.connect(path) as conn:
        found = {}
        for cid, sha in keys:
            row = conn.execute(
                "SELECT score FROM clip_scores WHERE fingerprint = ? AND preprocessing = ? "
                "AND clip_id = ? AND audio_sha256 = ?",
                (fingerprint, prep, cid, sha),
            ).fetchone()
            if row is not None:
                found[(cid, sha)] = row[0]
    return found


@pytest.mark.parametrize("chunk", [3, 500])
def test_lookup_finds_what_a_query_per_key_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(score_cache, "_LOOKUP_CHUNK", chunk)
    path = tmp_path / "scores.sqlite"
    with ScoreCache(path) as cache:
        # clips 0-19 cached for (fp, p); some under another audio sha, model or preprocessing
        cache.put_clips("fp", "p", [((f"c{i:02d}", f"sha{i}"), i / 7) for i in range(20)])
        cache.put_clips("fp", "p", [(("c03", "old"), -1.0), (("c04", "old"), -2.0)])
        cache.put_clips("other", "p", [(("c30", "sha30"), 9.0)])
        cache.put_clips("fp", "q", [(("c31", "sha31"), 8.0)])
        keys = [(f"c{i:02d}", f"sha{i}") for i in range(0, 40, 3)]  # hits and misses
        keys += [("c04", "new"), ("c03", "old"), ("c30", "sha30"), ("c31", "sha31")]
        got = cache.get_clips("fp", "p", keys)
    want = _one_by_one(path, "fp", "p", keys)
    assert got == want
    assert set(want) == {(f"c{i:02d}", f"sha{i}") for i in range(0, 20, 3)} | {("c03", "old")}
    assert got[("c03", "old")] == -1.0 and got[("c18", "sha18")] == 18 / 7


def test_opening_a_current_cache_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "scores.sqlite"
    ScoreCache(path).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == CACHE_SCHEMA_VERSION
        changes = conn.execute("PRAGMA data_version").fetchone()[0]
        with ScoreCache(path) as cache:  # another connection: a write would bump data_version
            assert cache.get_clips("fp", "p", [("c", "s")]) == {}
        assert conn.execute("PRAGMA data_version").fetchone()[0] == changes
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert {"clip_scores", "pair_scores", "file_hashes"} <= tables
