"""When the machine, not the input, fails (bad flags, a corrupt score cache, a full disk), `mosrm`
prints one line saying what to do, exits with status 2, and leaves earlier results as they were."""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from benchmark.atomic import atomic_write_text
from benchmark.cli import main
from benchmark.data import tasks
from benchmark.errors import MachineError
from benchmark.scoring.cache import ScoreCache
from tests.toy_task import write_toy_repo


@pytest.fixture
def toy(tmp_path: Path) -> tuple[Path, Path]:
    """(repo, results) with shortcut-random evaluated once on the toy task."""
    repo, results = write_toy_repo(tmp_path), tmp_path / "results"
    assert main(_evaluate(repo, results)) == 0
    return repo, results


def _evaluate(repo: Path, results: Path, *extra: str) -> list[str]:
    return [
        "--repo",
        str(repo),
        "evaluate",
        "shortcut-random",
        "--task",
        "toy",
        "--quiet",
        "--results",
        str(results),
        *extra,
    ]


def _snapshot(results: Path) -> dict[str, bytes]:
    return {str(p.relative_to(results)): p.read_bytes() for p in results.rglob("*") if p.is_file()}


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err.strip()


def _cache() -> Path:
    return Path(os.environ["MOSRM_HOME"]) / "scores.sqlite"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--batch-size", "0"], "argument --batch-size: must be at least 1, got 0"),
        (["--batch-size", "-4"], "argument --batch-size: must be at least 1, got -4"),
        (["--batch-size", "many"], "argument --batch-size: expected an integer, got 'many'"),
        (["--workers", "-1"], "argument --workers: must be at least 0, got -1"),
    ],
)
@pytest.mark.parametrize("command", ["evaluate", "run"])
def test_scoring_flags_are_checked_by_the_parser(
    capsys: pytest.CaptureFixture[str], command: str, flags: list[str], message: str
) -> None:
    argv = [command, *(["--task", "toy"] if command == "evaluate" else []), *flags]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == f"mosrm {command}: error: {message}"
    assert "Traceback" not in err


def test_prepare_needs_at_least_one_worker(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["prepare", "toy", "--workers", "0"])
    assert "argument --workers: must be at least 1, got 0" in capsys.readouterr().err


def _garbage(db: Path) -> None:
    db.write_bytes(os.urandom(8192))


def _smashed_pages(db: Path) -> None:
    """Keep the header page, overwrite the tables: SQLite opens it and fails on first read."""
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = bytearray(db.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[page:] = bytes((7 * i) & 0xFF for i in range(len(data) - page))
    db.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_garbage, _smashed_pages], ids=["garbage", "smashed-pages"])
def test_a_corrupt_score_cache_is_one_line_and_keeps_earlier_results(
    toy: tuple[Path, Path], capsys: pytest.CaptureFixture[str], damage: object
) -> None:
    repo, results = toy
    before = _snapshot(results)
    db = _cache()
    for side in ("-wal", "-shm"):
        db.with_name(db.name + side).unlink(missing_ok=True)
    damage(db)  # type: ignore[operator]
    capsys.readouterr()
    assert main(_evaluate(repo, results)) == 2
    line = _one_error_line(capsys)
    assert line.startswith(f"error: {db}: score cache unusable (")
    assert f"move it away (mv {db} {db}.broken) and rerun: scores will be recomputed" in line
    assert _snapshot(results) == before  # nothing withdrawn, nothing half-written


def test_the_advice_works(toy: tuple[Path, Path]) -> None:
    repo, results = toy
    db = _cache()
    _garbage(db)
    db.rename(db.with_name(db.name + ".broken"))
    assert main(_evaluate(repo, results)) == 0


def _full_disk_on(monkeypatch: pytest.MonkeyPatch, which: str) -> None:
    if which == "predictions":
        real_write_table = pq.write_table

        def write_table(table: object, where: object, **kw: object) -> None:
            real_write_table(table, where, **kw)  # a partial file, then the disk is full
            raise OSError(errno.ENOSPC, "Error writing bytes to file")

        monkeypatch.setattr(pq, "write_table", write_table)
        return
    real_write_bytes = Path.write_bytes

    def write_bytes(self: Path, data: bytes) -> int:
        if self.name.startswith(".toy.json."):
            real_write_bytes(self, data[: len(data) // 2])
            raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))
        return real_write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)


@pytest.mark.parametrize(
    ("which", "name"), [("predictions", "toy.predictions.parquet"), ("record", "toy.json")]
)
def test_a_full_disk_names_the_file_and_keeps_the_old_one(
    toy: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    which: str,
    name: str,
) -> None:
    repo, results = toy
    if which == "record":  # a rerun reproducing the same results writes nothing: make it differ
        old = results / "shortcut-random" / name
        old.write_bytes(old.read_bytes() + b"\n")
    before = _snapshot(results)
    _full_disk_on(monkeypatch, which)
    capsys.readouterr()
    assert main(_evaluate(repo, results)) == 2
    target = results / "shortcut-random" / name
    assert _one_error_line(capsys) == (
        f"error: no space left on device while writing {target}: free some space and rerun "
        "(files written before are unchanged)"
    )
    after = _snapshot(results)
    assert after[f"shortcut-random/{name}"] == before[f"shortcut-random/{name}"]
    assert set(after) == set(before)  # no temp file left behind, no failure recorded


def test_a_full_disk_under_the_score_cache_is_one_line(
    toy: tuple[Path, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo, results = toy
    before = _snapshot(results)
    db = _cache()
    for p in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        p.unlink(missing_ok=True)  # nothing cached: scores must be written

    def full(*_: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(ScoreCache, "put_clips", full)
    capsys.readouterr()
    assert main(_evaluate(repo, results)) == 2
    assert _one_error_line(capsys).startswith(f"error: no space left on device while writing {db}:")
    assert _snapshot(results) == before


def test_a_full_disk_elsewhere_still_names_the_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def full(*_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x.bin"))

    monkeypatch.setattr(tasks, "workspace_tasks", full)
    assert main(["--repo", str(tmp_path), "tasks"]) == 2
    assert _one_error_line(capsys).startswith(
        f"error: no space left on device while writing {tmp_path / 'x.bin'}:"
    )


def test_other_os_errors_are_not_disguised(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def broken(*_: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(tasks, "workspace_tasks", broken)
    with pytest.raises(OSError, match="Input/output"):
        main(["--repo", str(tmp_path), "tasks"])


def test_atomic_write_on_a_full_disk_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "out.txt"
    path.write_text("old")
    _full_disk_on(monkeypatch, "record")
    target = tmp_path / "toy.json"
    target.write_text("old")
    with pytest.raises(MachineError, match=f"while writing {target}:"):
        atomic_write_text(target, "new" * 100)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt", "toy.json"]


def test_a_closed_pipe_is_a_quiet_exit(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """`mosrm compare … | head`: the reader leaving is not an error (BrokenPipeError is an
    OSError, so its clause must come first)."""
    import benchmark.cli.commands as cli

    def closed(args: object) -> int:
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    monkeypatch.setattr(cli, "cmd_tasks", closed)
    monkeypatch.setattr(os, "dup2", lambda *a: None)  # keep pytest's stdout
    assert main(["tasks"]) == 0
    assert "Traceback" not in capfd.readouterr().err
