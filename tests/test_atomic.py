"""The one atomic-write helper and the cross-process lock (benchmark/atomic.py)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from benchmark.atomic import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    file_lock,
    temp_sibling,
)

REPO = Path(__file__).resolve().parents[1]


def test_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    atomic_write_text(path, "first\n")
    atomic_write_text(path, "ünïcode\n")
    assert path.read_text(encoding="utf-8") == "ünïcode\n"
    atomic_write_bytes(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    with atomic_path(path, fsync=True) as tmp:
        tmp.write_text("synced")
    assert path.read_text() == "synced"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_failure_keeps_the_old_file_and_removes_the_temp(tmp_path: Path) -> None:
    path = tmp_path / "table.parquet"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["table.parquet"]
    # a writer that never created its temp fails cleanly too
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "new.txt"):
        raise RuntimeError("before writing")
    assert [p.name for p in tmp_path.iterdir()] == ["table.parquet"]


def test_temp_names_are_hidden_unique_and_beside_the_target(tmp_path: Path) -> None:
    names = {temp_sibling(tmp_path / "a.txt") for _ in range(200)}
    assert len(names) == 200
    for p in names:
        assert p.parent == tmp_path and p.name.startswith(".a.txt.tmp-")


def test_threads_writing_one_path_never_fail(tmp_path: Path) -> None:
    path = tmp_path / "shared.txt"
    errors: list[BaseException] = []
    payloads = [f"{i}" * 5000 for i in range(8)]

    def writer(text: str) -> None:
        try:
            for _ in range(100):
                atomic_write_text(path, text)
        except BaseException as exc:  # any failure fails the test
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert path.read_text() in payloads  # whole, never a mix
    assert [p.name for p in tmp_path.iterdir()] == ["shared.txt"]


def test_processes_writing_one_path_never_fail(tmp_path: Path) -> None:
    path = tmp_path / "shared.txt"
    code = (
        "import sys\n"
        "from benchmark.atomic import atomic_write_text\n"
        "for _ in range(300):\n"
        "    atomic_write_text(sys.argv[1], sys.argv[2] * 4000)\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(path), tag],
            cwd=REPO,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in "ab"
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert path.read_text() in ("a" * 4000, "b" * 4000)
    assert [p.name for p in tmp_path.iterdir()] == ["shared.txt"]


def test_file_lock_excludes_other_threads(tmp_path: Path) -> None:
    counter = tmp_path / "n"
    counter.write_text("0")
    lock = tmp_path / "sub" / ".n.lock"  # its folder is created

    def bump() -> None:
        for _ in range(20):
            with file_lock(lock):
                n = int(counter.read_text())
                time.sleep(0.0005)  # a read-modify-write that interleaves without the lock
                counter.write_text(str(n + 1))

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counter.read_text() == "80"
