"""Safe, idempotent unpacking of corpus archives into the layout the readers expect.

Archives come from third parties (and from mirrors), so no member is trusted to stay inside the
data root: absolute paths, `..` components, and symlinks or hard links whose targets leave the
unpacked tree are refused with a `DataError` naming the archive member, before anything is written.
Mac resource forks (`__MACOSX/`, present in several corpus zips) are left out.

An archive is unpacked into a staging folder next to the data root (same file system), its single
top folder is dropped when the recipe says so (e.g. `main/` of BVCC, `NISQA_Corpus/`), archives it
contains are unpacked in place (SOMOS ships `audios.zip` inside `somos.zip`), and only then are the
entries moved into the data root, one rename each. The caller writes a marker file after the move:
a crash at any point leaves no marker, so the next run unpacks again (moving over whatever a partial
move left) instead of mistaking a half-moved tree for a finished one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.atomic import atomic_write_text
from benchmark.errors import DataError

MACOS_JUNK = "__MACOSX"
_TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Nested:
    """An archive inside the unpacked tree (path relative to it), unpacked in place and removed."""

    name: str
    unpack: Unpack


@dataclass(frozen=True)
class Unpack:
    """Where an archive goes: `into` (a folder under the data root, "" for the root itself).

    `strip_top` names the archive's top folder to drop. It is dropped only when it is the
    archive's one top-level entry (ignoring `__MACOSX/`); otherwise the members are unpacked as
    they are and a note says so, since re-packed mirrors sometimes omit the folder.
    """

    into: str = ""
    strip_top: str | None = None
    nested: tuple[Nested, ...] = ()


def _refuse(archive: Path, member: str, why: str) -> DataError:
    return DataError(
        f"{archive}: member '{member}': {why}; refusing to unpack an archive whose members could "
        f"land outside the data root (the archive or its mirror is not the published file)"
    )


def _is_absolute(name: str) -> bool:
    return name.startswith("/") or re.match(r"^[A-Za-z]:", name) is not None


def member_parts(name: str, archive: Path) -> tuple[str, ...] | None:
    """The member's path components, None for entries left out (the root entry, `__MACOSX/`)."""
    posix = name.replace("\\", "/")
    if _is_absolute(posix):
        raise _refuse(archive, name, "absolute path")
    parts = tuple(p for p in posix.split("/") if p not in ("", "."))
    if ".." in parts:
        raise _refuse(archive, name, "'..' in the path")
    if not parts or parts[0] == MACOS_JUNK:
        return None
    return parts


def _link_parts(
    archive: Path, name: str, parts: tuple[str, ...], target: str, *, hard: bool
) -> tuple[str, ...]:
    """Where a link lands, as archive-relative components (symlinks: relative to their folder)."""
    posix = target.replace("\\", "/")
    if _is_absolute(posix):
        raise _refuse(archive, name, f"link to the absolute path '{target}'")
    stack = [] if hard else list(parts[:-1])
    for p in posix.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if not stack:
                raise _refuse(archive, name, f"link target '{target}' points outside the archive")
            stack.pop()
        else:
            stack.append(p)
    return tuple(stack)


def _strip_decision(
    entries: Sequence[tuple[str, tuple[str, ...], bool]], strip_top: str | None
) -> str | None:
    """The top folder to drop, if the archive really has exactly that one top-level folder."""
    if strip_top is None:
        return None
    tops = {parts[0] for _, parts, _ in entries}
    is_dir = any(len(parts) > 1 or isdir for _, parts, isdir in entries if parts[0] == strip_top)
    return strip_top if tops == {strip_top} and is_dir else None


def _check_links_inside(
    archive: Path, links: Sequence[tuple[str, tuple[str, ...]]], top: str | None
) -> None:
    for name, target in links:
        if top is not None and (not target or target[0] != top):
            raise _refuse(
                archive, name, f"link points outside the folder '{top}/' that is unpacked"
            )


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _sweep_links(staging: Path, root: Path, archive: Path) -> None:
    """Refuse links that escape `root` through other links ('b' -> '.', then 'x' -> 'b/..')."""
    real_root = os.path.realpath(root)
    for folder, dirs, files in os.walk(staging):
        for entry in (*dirs, *files):
            path = os.path.join(folder, entry)
            if os.path.islink(path) and not _within(os.path.realpath(path), real_root):
                rel = os.path.relpath(path, staging).replace(os.sep, "/")
                raise _refuse(archive, rel, "link resolves outside the unpacked tree")


def _unpack_zip(archive: Path, staging: Path, strip_top: str | None) -> str | None:
    with zipfile.ZipFile(archive) as zf:
        entries: list[tuple[zipfile.ZipInfo, tuple[str, ...], bool]] = []
        for info in zf.infolist():
            parts = member_parts(info.filename, archive)
            if parts is not None:
                entries.append((info, parts, info.is_dir()))
        top = _strip_decision([(i.filename, p, d) for i, p, d in entries], strip_top)
        links: list[tuple[zipfile.ZipInfo, tuple[str, ...], str]] = []
        checked: list[tuple[str, tuple[str, ...]]] = []
        for info, parts, _ in entries:
            if stat.S_ISLNK(info.external_attr >> 16):
                target = zf.read(info).decode("utf-8", errors="surrogateescape")
                landed = _link_parts(archive, info.filename, parts, target, hard=False)
                links.append((info, parts, target))
                checked.append((info.filename, landed))
        _check_links_inside(archive, checked, top)
        link_names = {info.filename for info, _, _ in links}
        for info, parts, isdir in entries:
            path = staging.joinpath(*parts)
            if isdir:
                path.mkdir(parents=True, exist_ok=True)
            elif info.filename not in link_names:
                path.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, path.open("wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
        # Links last, so no regular file is ever written through one.
        real_staging = os.path.realpath(staging)
        for info, parts, target in links:
            path = staging.joinpath(*parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            if not _within(os.path.realpath(path.parent), real_staging):
                raise _refuse(archive, info.filename, "its folder resolves outside the archive")
            os.symlink(target, path)
    return top


def _unpack_tar(archive: Path, staging: Path, strip_top: str | None) -> str | None:
    with tarfile.open(archive) as tf:
        kept: list[tarfile.TarInfo] = []
        entries: list[tuple[str, tuple[str, ...], bool]] = []
        checked: list[tuple[str, tuple[str, ...]]] = []
        for member in tf.getmembers():
            parts = member_parts(member.name, archive)
            if parts is None:
                continue
            if member.issym() or member.islnk():
                landed = _link_parts(
                    archive, member.name, parts, member.linkname, hard=member.islnk()
                )
                checked.append((member.name, landed))
            elif not (member.isfile() or member.isdir()):
                raise _refuse(archive, member.name, "a device, FIFO or other special file")
            kept.append(member)
            entries.append((member.name, parts, member.isdir()))
        top = _strip_decision(entries, strip_top)
        _check_links_inside(archive, checked, top)
        if not hasattr(tarfile, "data_filter"):  # Python < 3.11.4: no extraction-time checks
            for member in kept:
                if (member.issym() or member.islnk()) and ".." in member.linkname.split("/"):
                    raise _refuse(archive, member.name, "link target with '..' (old Python)")
            tf.extractall(staging, members=kept)
            return top
        try:
            tf.extractall(staging, members=kept, filter="data")
        except tarfile.FilterError as exc:
            name = exc.tarinfo.name if exc.tarinfo is not None else "?"
            raise _refuse(archive, name, str(exc)) from None
    return top


def archive_kind(path: Path) -> str:
    lower = path.name.lower()
    if lower.endswith(".zip"):
        return "zip"
    if lower.endswith(_TAR_SUFFIXES):
        return "tar"
    if zipfile.is_zipfile(path):
        return "zip"
    if tarfile.is_tarfile(path):
        return "tar"
    raise DataError(f"{path}: neither a zip nor a tar archive")


def _merge_move(src: Path, dst: Path) -> None:
    """Move `src` to `dst`, merging folders; the archive's entries replace files already there."""
    if dst.is_symlink() or (dst.exists() and not dst.is_dir() and src.is_dir()):
        dst.unlink()
    elif dst.is_dir() and not (src.is_dir() and not src.is_symlink()):
        shutil.rmtree(dst)
    if dst.is_dir() and src.is_dir() and not src.is_symlink():
        for child in sorted(src.iterdir()):
            _merge_move(child, dst / child.name)
        src.rmdir()
    else:
        os.replace(src, dst)


def unpack_archive(archive: Path, dest: Path, *, staging: Path, spec: Unpack, echo: Echo) -> Path:
    """Unpack `archive` into `dest` per `spec` via `staging` (removed afterwards); return `dest`."""
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        kind = archive_kind(archive)
        try:
            unpack = _unpack_zip if kind == "zip" else _unpack_tar
            top = unpack(archive, staging, spec.strip_top)
        except DataError:
            raise
        except (
            zipfile.BadZipFile,
            tarfile.TarError,
            zlib.error,
            EOFError,
            NotImplementedError,
            OSError,
        ) as exc:
            raise DataError(
                f"{archive}: cannot unpack ({type(exc).__name__}: {exc}); the archive is damaged "
                f"or incomplete: delete it and run the command again"
            ) from None
        root = staging / top if top is not None else staging
        _sweep_links(staging, root, archive)
        if spec.strip_top is not None and top is None:
            echo(
                f"{archive.name}: no single top folder '{spec.strip_top}/' in the archive; "
                f"unpacked its members as they are"
            )
        for nested in spec.nested:
            inner = root.joinpath(*nested.name.split("/"))
            if not inner.is_file():
                echo(f"{archive.name}: holds no {nested.name}; nothing more to unpack")
                continue
            echo(f"{archive.name}: unpacking the inner archive {nested.name}")
            unpack_archive(
                inner,
                root / nested.unpack.into,
                staging=staging.with_name(f"{staging.name}-{inner.name}"),
                spec=nested.unpack,
                echo=echo,
            )
            inner.unlink()
        dest.mkdir(parents=True, exist_ok=True)
        for child in sorted(root.iterdir()):
            _merge_move(child, dest / child.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def marker_path(work: Path, archive_name: str) -> Path:
    return work / f"{archive_name}.unpacked.json"


def read_marker(path: Path) -> dict[str, Any] | None:
    """The marker's record, or None (absent or unreadable: unpacking again is always safe)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_marker(path: Path, info: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(info, indent=2, sort_keys=True) + "\n")
