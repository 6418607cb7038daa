"""Which submission folders the harness trusts to run in its own process: its own baselines only.

A module entry (`benchmark.baselines.x:callable`) is the harness's code, but the params and files
that steer it come from the folder: a stranger's folder naming `benchmark.baselines.hub:build`
with a hub id, or a crafted weights file, would otherwise download and run whatever it names
inside the harness (as its user, with the network, without limits). So a folder runs in-process
only when its module entry is in `benchmark.baselines` AND one of:

- its files are byte-identical to an official baseline of this repository: `official.json` (beside
  the baselines) maps each shipped folder's name to the sha256 of its `folder_files` listing (the
  same per-file digests the fingerprint uses). A copy with one byte changed is a stranger's folder.
  The list grows with the shipped baselines (a committed trained baseline is one more entry):
  regenerate it with `python -m benchmark.scoring.trust --write` after changing a folder under
  `benchmark/shipped/submissions/`, and review the diff (tests/test_trusted_entries.py checks it is current);
- it lies under `$MOSRM_HOME/trained/`, where only the harness writes (`baselines.trained`): the
  sandbox never sees `$MOSRM_HOME`, and a stranger's folder is never put there.

Where a folder sits (a workspace's `submissions/`, even the package's) says nothing: that is where strangers' folders go too. Every
other folder, whatever its entry, runs in the sandbox (`benchmark.scoring.models.load_submission`).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmark.scoring.spec import TRUSTED_PACKAGE, is_module_entry  # noqa: F401 - here too

MANIFEST = Path(__file__).resolve().parents[1] / "baselines" / "official.json"
"""{folder name: sha256 of its file listing} for the repository's own baseline folders."""

REFERENCE = Path(__file__).resolve().parents[1] / "baselines" / "reference"
"""The committed official reference models, one submission folder each (`baselines.trained`)."""


def files_digest(files: Sequence[tuple[str, str]]) -> str:
    """sha256 of a folder's `folder_files` listing ((relative path, sha256) pairs, sorted)."""
    return hashlib.sha256(json.dumps([list(f) for f in files]).encode()).hexdigest()


def official_manifest() -> dict[str, str]:
    try:
        data = json.loads(MANIFEST.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return {str(k): str(v) for k, v in data.get("folders", {}).items()}


def trusted_reason(entry: str | None, folder: Path, files: Sequence[tuple[str, str]]) -> str | None:
    """'official' or 'trained' where `folder` may run in the harness's process, else None.

    `files` is the folder's `folder_files` listing (already computed for the fingerprint)."""
    if not is_module_entry(entry):
        return None
    from benchmark.paths import home

    if folder.resolve().is_relative_to((home() / "trained").resolve()):
        return "trained"
    if is_official(folder, files):
        return "official"
    return None


def is_official(folder: Path, files: Sequence[tuple[str, str]]) -> bool:
    """`folder` (its `folder_files` listing `files`) is byte-identical to the repository's own
    baseline folder of that name."""
    return official_manifest().get(folder.name) == files_digest(files)


def compute_manifest(*roots: Path) -> dict[str, str]:
    """The manifest for the folders under `roots` that are module-entry baselines; a name found
    under two roots is an error (the manifest is keyed by name)."""
    from benchmark.scoring.folder import folder_files
    from benchmark.scoring.spec import discover_submissions, read_spec

    out: dict[str, str] = {}
    for root in roots:
        for folder in discover_submissions(root):
            spec = read_spec(folder)
            if spec.baseline and is_module_entry(spec.entry):
                if folder.name in out:
                    raise ValueError(f"two official baseline folders named {folder.name!r}")
                out[folder.name] = files_digest(folder_files(folder))
    return out


def official_roots() -> tuple[Path, ...]:
    """Where the package's own baseline folders are: its shipped submissions
    (`workspace.SHIPPED_SUBMISSIONS`) and the committed reference models
    (`benchmark.baselines.trained.REFERENCE`)."""
    from benchmark.workspace import SHIPPED_SUBMISSIONS

    return (SHIPPED_SUBMISSIONS, REFERENCE)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m benchmark.scoring.trust [--write]`: print (or write) the manifest of the package's
    shipped submissions and of the committed reference models."""
    args = list(sys.argv[1:] if argv is None else argv)
    now = compute_manifest(*official_roots())
    old = official_manifest()
    for name in sorted(set(now) | set(old)):
        if now.get(name) != old.get(name):
            what = "added" if name not in old else "removed" if name not in now else "changed"
            print(f"{what}: {name}", file=sys.stderr)
    text = json.dumps({"folders": now}, indent=2, sort_keys=True) + "\n"
    if "--write" in args:
        MANIFEST.write_text(text, encoding="utf-8")
        print(f"wrote {MANIFEST}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
