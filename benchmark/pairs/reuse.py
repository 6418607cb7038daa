"""When a prepared task folder is reused instead of rebuilt.

Re-preparing on every `evaluate` wasted time and made two runs on one home rewrite the same files at
once. A folder is reused when its manifest records the same inputs as now (task spec, harness code,
prepare options, and a stat-only signature of the corpus files: cheap on tens of thousands of
files) and its outputs still hash to what the manifest says. An edit that keeps a file's size and
mtime goes unnoticed; `mosrm prepare` always rebuilds.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from benchmark.data.tasks import Task
    from benchmark.pairs.prepared import PreparedTask

REUSE_FORMAT = 1
"""Bump when the meaning of the recorded inputs changes."""

RACY_NS = 2_000_000_000
"""A data file modified less than this before the signature makes it unusable for reuse: a file
rewritten within one coarse file-system tick keeps its size and mtime (the "racy git" problem)."""


def canonical_sha256(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def tree_signature(
    root: Path, *, exclude: Iterable[Path] = (), skip: Iterable[str] = (), skip_hidden: bool = False
) -> dict[str, Any]:
    """Count and SHA-256 of the sorted (relative path, size, mtime_ns) of every file under `root`.

    Folders in `exclude` are not entered (symlinked folders are followed, each real folder once);
    relative paths in `skip`, and with `skip_hidden` names starting with a dot, are left out. A
    folder that cannot be listed is recorded as such, so it still changes the signature.
    """
    root = Path(root)
    if not root.is_dir():
        return {"files": 0, "sha256": None, "newest_mtime_ns": None}
    excluded = {os.path.realpath(p) for p in exclude}
    skipped = set(skip)
    rows: list[str] = []
    newest = 0
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[str, str]] = [(str(root), "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            entries = list(os.scandir(folder))
        except OSError as exc:
            rows.append(f"{prefix}\0unreadable\0{type(exc).__name__}")
            continue
        for entry in entries:
            if skip_hidden and entry.name.startswith("."):
                continue
            rel = prefix + entry.name
            try:
                if entry.is_dir():
                    if os.path.realpath(entry.path) not in excluded:
                        stack.append((entry.path, rel + "/"))
                elif rel not in skipped:
                    est = entry.stat()
                    rows.append(f"{rel}\0{est.st_size}\0{est.st_mtime_ns}")
                    newest = max(newest, est.st_mtime_ns)
            except OSError:  # a dangling symlink, or a file removed while listing
                rows.append(f"{rel}\0missing")
    rows.sort()
    h = hashlib.sha256()
    for row in rows:
        h.update(row.encode("utf-8", "surrogateescape") + b"\n")
    return {"files": len(rows), "sha256": h.hexdigest(), "newest_mtime_ns": newest}


def _file_stats(paths: Sequence[str]) -> dict[str, Any]:
    h = hashlib.sha256()
    newest = 0
    for p in paths:
        try:
            st = os.stat(p)
            h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
            newest = max(newest, st.st_mtime_ns)
        except OSError:
            h.update(f"{p}\0missing\n".encode("utf-8", "surrogateescape"))
    return {"paths": list(paths), "sha256": h.hexdigest(), "newest_mtime_ns": newest}


def external_audio(clips: pa.Table, root: Path) -> list[str]:
    """Clip audio paths outside the data root (absolute paths in the labels), sorted."""
    base = os.path.realpath(root) + os.sep
    out = set()
    for p in clips.column("audio_path").to_pylist():
        if os.path.isabs(p) and not os.path.realpath(p).startswith(base):
            out.add(p)
    return sorted(out)


@functools.cache
def code_sha256() -> str:
    """SHA-256 of every file of the `benchmark` package, data files included: an edited reader or
    pair sampler must never reuse pairs the old code built, whatever the version number says."""
    package = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    files = sorted(
        p
        for p in package.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not p.name.startswith(".")
    )
    for p in files:
        h.update(p.relative_to(package).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def reader_sha256(name: str) -> str | None:
    """SHA-256 of a reader's source from another package (`corpora.reader_code`); None for a
    built-in reader (`code_sha256` covers it): an edited third-party reader rebuilds the pairs."""
    from benchmark.data.corpora import reader_code

    files = reader_code(name)
    if not files:
        return None
    h = hashlib.sha256()
    for f in files:
        h.update(f.as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def inputs(
    task: Task,
    root: Path,
    folder: Path,
    *,
    labels_only: bool,
    resample: bool,
    overrides: dict[str, dict[str, Any]],
    external: Sequence[str],
    data_before: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What a prepare of `task` from `root` into `folder` depends on, as recorded in its manifest.

    `racy` marks a record that must not be reused: a data file changed within `RACY_NS` of the
    signature, or the corpus changed while it was read (`data_before`, taken before the read, differs).
    """
    from benchmark import HARNESS_VERSION
    from benchmark.data.tables import CLIP_SCHEMA_VERSION, PAIR_SCHEMA_VERSION
    from benchmark.pairs.build import RELATION_DEFINITIONS_SHA256

    cached = resample and not labels_only
    settings = None
    if cached:
        from benchmark.data.audio_cache import CACHE_RATE, cache_settings

        settings = cache_settings(CACHE_RATE)
    data = data_signature(task, root, folder)
    stats = _file_stats(external)
    settled = time.time_ns() - RACY_NS
    newest = max(data["newest_mtime_ns"] or 0, stats["newest_mtime_ns"])
    return {
        "format": REUSE_FORMAT,
        "task_spec_sha256": canonical_sha256(task.spec.model_dump(mode="json")),
        "harness_version": HARNESS_VERSION,
        "code_sha256": code_sha256(),
        "reader_code_sha256": reader_sha256(task.spec.reader),
        "clip_schema_version": CLIP_SCHEMA_VERSION,
        "pair_schema_version": PAIR_SCHEMA_VERSION,
        "relation_definitions_sha256": RELATION_DEFINITIONS_SHA256,
        "audio_cache_settings": settings,
        "data_root": str(root),
        "labels_only": labels_only,
        "resample": cached,
        "count_overrides": overrides or None,
        "data_files": data,
        "external_audio": stats,
        "racy": newest >= settled or (data_before is not None and data_before != data),
    }


def data_signature(task: Task, root: Path, folder: Path) -> dict[str, Any]:
    """`tree_signature` of the data root, minus the harness's own folders should they lie in it."""
    from benchmark.paths import audio_cache_dir, home

    return tree_signature(root, exclude=(folder, audio_cache_dir(task.name), home()))


def cache_signature(audio_root: Path) -> dict[str, Any]:
    """Signature of the cached audio files (not the manifest, checked by hash; no temp files)."""
    from benchmark.data.audio_cache import CACHE_DIR, MANIFEST

    return tree_signature(audio_root / CACHE_DIR, skip=(MANIFEST,), skip_hidden=True)


def load_current(
    task: Task,
    root: Path,
    folder: Path,
    *,
    labels_only: bool,
    resample: bool,
    overrides: dict[str, dict[str, Any]],
) -> PreparedTask | None:
    """The prepared task in `folder` if its manifest matches today's inputs and its files are
    intact, else None (absent, stale, damaged or from an older harness: rebuild)."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        return _load(task, root, folder, manifest, labels_only, resample, overrides)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _load(
    task: Task,
    root: Path,
    folder: Path,
    manifest: dict[str, Any],
    labels_only: bool,
    resample: bool,
    overrides: dict[str, dict[str, Any]],
) -> PreparedTask | None:
    from benchmark.data.audio_cache import manifest_sha256
    from benchmark.data.corpora._native import Skip
    from benchmark.data.packed_audio import store_current
    from benchmark.data.tables import read_parquet
    from benchmark.hashing import sha256_file
    from benchmark.pairs.prepared import PreparedTask
    from benchmark.paths import audio_cache_dir

    stored = manifest["inputs"]
    external = stored["external_audio"]["paths"]
    now = inputs(
        task,
        root,
        folder,
        labels_only=labels_only,
        resample=resample,
        overrides=overrides,
        external=external,
    )
    if stored["racy"] or now != stored:
        return None
    clips_path = folder / "clips.parquet"
    if sha256_file(clips_path) != manifest["clips_sha256"]:
        return None
    pair_files = {split: folder / name for split, name in manifest["pair_files"].items()}
    pair_sha256: dict[str, str] = manifest["pair_sha256"]
    if set(pair_files) != set(pair_sha256):
        return None
    for split, path in pair_files.items():
        if sha256_file(path) != pair_sha256[split]:
            return None
    audio_root = None
    cache = manifest["audio_cache"]
    if now["resample"]:
        audio_root = audio_cache_dir(task.name)
        if (
            cache["folder"] != str(audio_root)
            or manifest_sha256(audio_root) != cache["manifest_sha256"]
            or cache_signature(audio_root) != cache["files"]
            or not store_current(audio_root)  # a prepare builds it (benchmark.data.packed_audio)
        ):
            return None
    elif cache is not None:
        return None
    clips = read_parquet(clips_path)
    meta = dict(clips.schema.metadata or {})
    meta.pop(b"mosrm.meta", None)  # added by write_parquet; the in-memory table never had it
    clips = clips.replace_schema_metadata(meta)
    skips = [
        Skip(
            reason=s["reason"],
            count=int(s["count"]),
            examples=tuple(s["examples"]),
            kept=bool(s["kept"]),
        )
        for s in manifest["skipped"]
    ]
    return PreparedTask(
        task=task,
        data_root=root,
        folder=folder,
        clips=clips,
        pair_files=pair_files,
        pair_sha256=dict(pair_sha256),
        pair_meta=manifest["pair_meta"],
        skips=skips,
        labels_only=labels_only,
        audio_root=audio_root,
    )
