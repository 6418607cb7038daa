"""Hub weights for a sandboxed module entry: fetched by the harness, read-only in the sandbox.

A stranger's folder may name a reference adapter with a Hugging Face hub id
(`benchmark.baselines.hub:build` with `params.source` and `params.revision`,
`benchmark.baselines.audio_llm:build` with `params.model` and `params.revision`). The sandbox has no network, so the harness (trusted code:
`huggingface_hub.snapshot_download` into the usual cache) fetches the snapshot beforehand; the
child gets the snapshot's local path in place of the id, and that repository's cache folder
(`models--org--name`: its snapshots and the blobs they link to, nothing else of the cache, no
token) bound read-only. The child runs with HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE set.

The fingerprint gets `digest`: for each fetched param, the id, the revision asked for, the commit
the snapshot came from and each file's content address (the blob a snapshot file links to is
named by its sha256 for LFS files and its git blob id otherwise; a file that is no link is hashed).
The harness computes it; nothing the child reports enters a fingerprint.

Only these params are hub ids. Other adapters (the trained scalar / judge / DPO models) name a
backbone inside their own files: a stranger's copy must ship it as a folder inside the submission,
as `mosrm run`'s trained folders do; a hub id there fails offline in the sandbox.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.errors import SubmissionError, first_line
from benchmark.hashing import sha256_file

HUB_PARAMS: dict[str, tuple[str, str | None]] = {
    "benchmark.baselines.hub": ("source", "revision"),
    "benchmark.baselines.audio_llm": ("model", "revision"),
}
"""Adapter module -> (the param naming a hub id or local folder, the param naming its revision)."""

REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")


@dataclass
class HubWeights:
    kwargs: dict[str, Any]
    """The factory's params, hub ids replaced by local snapshot folders."""
    binds: list[Path] = field(default_factory=list)
    """Folders to make visible read-only in the sandbox."""
    digest: dict[str, Any] = field(default_factory=dict)
    """What the fingerprint records of the fetched files (empty when nothing was fetched)."""


def resolve(module: str, kwargs: dict[str, Any], where: str, *, download: bool) -> HubWeights:
    """Fetch what `kwargs` names on the hub for adapter `module` (only from the local cache when
    not `download`), or a one-line `SubmissionError` prefixed with `where`."""
    names = HUB_PARAMS.get(module)
    out = HubWeights(dict(kwargs))
    if names is None:
        return out
    key, rev_key = names
    source = kwargs.get(key)
    revision = kwargs.get(rev_key) if rev_key is not None else None
    if not isinstance(source, str) or Path(source).is_absolute() or not REPO_ID.match(source):
        return out  # a folder inside the submission (made absolute already), or left to the adapter
    if revision is not None and not isinstance(revision, str):
        raise SubmissionError(f"{where}: field 'params.{rev_key}' must be a string")
    snapshot_dir = snapshot(source, revision, download, f"{where}: field 'params.{key}'")
    out.kwargs[key] = str(snapshot_dir)
    in_cache = snapshot_dir.parent.name == "snapshots"
    repo_folder = snapshot_dir.parent.parent if in_cache else snapshot_dir
    out.binds.append(repo_folder)
    out.digest[key] = {
        "id": source,
        "revision": revision,
        "commit": snapshot_dir.name if in_cache else None,
        "files": _content(snapshot_dir, repo_folder),
    }
    return out


def snapshot(source: str, revision: str | None, download: bool, where: str) -> Path:
    """The local folder of `source`'s snapshot at `revision` (fetched when `download` and online,
    else from the cache), or a one-line `SubmissionError` prefixed with `where`."""
    try:
        from huggingface_hub import constants, snapshot_download

        path = snapshot_download(
            source, revision=revision, local_files_only=not download or constants.HF_HUB_OFFLINE
        )
    except Exception as exc:  # offline, unknown repo or revision, gated, invalid id
        how = "fetching" if download else "finding in the local cache"
        raise SubmissionError(
            f"{where}: {how} hub model '{source}' failed: {first_line(exc)}"
        ) from None
    return Path(path)


def _content(snapshot: Path, repo_folder: Path) -> list[tuple[str, str]]:
    """(relative path, content address) of each file of the snapshot; links must stay inside
    the repository's cache folder (what the sandbox gets)."""
    out = []
    root = repo_folder.resolve()
    for path in sorted(p for p in snapshot.rglob("*") if not p.is_dir()):
        rel = path.relative_to(snapshot).as_posix()
        target = path.resolve()
        if not target.is_relative_to(root) or not target.is_file():
            raise SubmissionError(f"hub snapshot {snapshot}: '{rel}' links outside its repository")
        if path.is_symlink() and target.parent.name == "blobs":
            out.append((rel, f"blob:{target.name}"))
        else:
            out.append((rel, f"sha256:{sha256_file(target)}"))
    return out
