"""All-or-nothing file writes and a cross-process lock, shared by every writer in the harness.

A reader sees the old file or the new one, never half of one. Each write goes through its own
temp file (hidden, named with the pid and a random suffix) in the destination's folder: a fixed
temp name lets two processes writing the same path rename each other's temp away, which is how two
`mosrm evaluate` runs on one home used to crash with FileNotFoundError.
"""

from __future__ import annotations

import fcntl
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmark.errors import NO_SPACE, no_space


def temp_sibling(path: str | Path, tag: str = "tmp") -> Path:
    """A unique hidden name beside `path`: `.<name>.<tag>-<pid>-<random>`."""
    path = Path(path)
    return path.with_name(f".{path.name}.{tag}-{os.getpid()}-{secrets.token_hex(4)}")


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | Path, *, fsync: bool = False) -> Iterator[Path]:
    """Yield a temp path to write; on success it replaces `path`, on failure it is removed.

    The destination's folder must exist. `fsync` flushes the file and the folder entry (for files
    that must survive a power cut, not just a killed process). A full disk raises `MachineError`
    naming `path` (the temp file's name would mean nothing to the user); `path` is left as it was.
    """
    path = Path(path)
    tmp = temp_sibling(path)
    try:
        yield tmp
        if fsync:
            _fsync_file(tmp)
        os.replace(tmp, path)
        if fsync:
            _fsync_file(path.parent)
    except OSError as exc:
        if exc.errno in NO_SPACE:
            raise no_space(path) from None
        raise
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | Path, data: bytes, *, fsync: bool = False) -> None:
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(
    path: str | Path, text: str, *, encoding: str = "utf-8", fsync: bool = False
) -> None:
    atomic_write_bytes(path, text.encode(encoding), fsync=fsync)


@contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive `flock` on `path` (created if absent) for the duration of the block.

    The lock dies with the process, so a killed holder never leaves it stuck. It also excludes
    other threads of the same process, as each `open` gets its own lock.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
