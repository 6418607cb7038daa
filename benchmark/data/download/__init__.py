"""`mosrm download <corpus>`: fetch, verify and unpack a corpus into the layout its reader expects.

The data root given is the task reader's root (BVCC: the `main/` folder; NISQA: `NISQA_Corpus/`;
SOMOS: the folder holding `training_files/` and `audios/`; TMHINT-QI: the folder holding
`raw_data.csv`; VMC'23: the folder holding the answer files and `track{1,2,3}/`; SingMOS: the
Hugging Face snapshot). `instructions(corpus)` prints the steps and the final layout.

What is automatic and what is manual:

* bvcc: automatic for `main.tar.gz` (Zenodo 6572573) and the UTMOS22 cluster file; the Blizzard
  Challenge audio is manual (its terms forbid redistribution): the bundled `01_get.py`,
  `02_gather.py`, `03_preprocess.py` fetch and process it on the user's machine.
* nisqa, somos: fully automatic (Zenodo 4728081, 7378801).
* singmos: automatic through `huggingface_hub` (optional dependency, `mosrm-bench[download]`).
* tmhint_qi: manual (Google Drive, licence not stated); a `TMHINTQI.zip` dropped into the data root
  is unpacked safely.
* vmc23: the answer keys are automatic (SHEET repository); the three track zips are manual
  (Dropbox / Google Drive) and unpacked safely once dropped into the data root.

Where checksums come from, strongest first: a checksum pinned in `sources.py` (BVCC and SOMOS
archives: the md5 Zenodo publishes, as pinned by public prep scripts); else, for Zenodo files, the
md5 listed in the record's API JSON (`https://zenodo.org/api/records/<id>`), read at download time
(NISQA); else trust on first use: the sha256 of the first download is recorded in
`<data root>/.mosrm-downloads.json` and every later run verifies against it (GitHub raw files,
pinned to a commit where one was found). The output says which applied. That JSON also records,
per file, the URL, size, sha256, md5 and time.

Mirrors (`mirror=` or `$MOSRM_DOWNLOAD_MIRROR`, an http(s):// or file:// base URL): every remote
file named `<name>` of corpus `<corpus>` is fetched from `<mirror>/<corpus>/<name>` (e.g.
`<mirror>/bvcc/main.tar.gz`, `<mirror>/vmc23/track1_answer.txt`), and a Zenodo record's API JSON
from `<mirror>/<corpus>/zenodo-<record id>.json`. Checksums are verified exactly as without a
mirror: a mirror must serve the published bytes. The Hugging Face snapshot ignores the mirror
(huggingface_hub honours `HF_ENDPOINT`).

Files written under the data root: the corpus layout itself, `.mosrm-downloads.json`, and
`.mosrm-downloads/` (partial downloads, archives until unpacked, `<archive>.unpacked.json` markers
that make unpacking idempotent). Archives are deleted once unpacked; archives the user dropped in
by hand are kept (the output says they may be deleted).

Nothing here touches the network at import time.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from benchmark.data.download.extract import (
    Unpack,
    marker_path,
    read_marker,
    unpack_archive,
    write_marker,
)
from benchmark.data.download.fetch import (
    Checksum,
    ChecksumMismatch,
    DownloadError,
    Manifest,
    download_file,
    file_digests,
    now,
    zenodo_checksum,
)
from benchmark.data.download.sources import (
    WORK_DIR,
    ManualArchive,
    Recipe,
    Remote,
    get_recipe,
    render_instructions,
    zenodo_api_url,
)
from benchmark.errors import MosrmError

__all__ = [
    "CORPORA",
    "MIRROR_ENV",
    "ChecksumMismatch",
    "DownloadError",
    "DownloadResult",
    "download",
    "instructions",
    "mirrored_url",
]

CORPORA: tuple[str, ...] = ("bvcc", "nisqa", "singmos", "somos", "tmhint_qi", "vmc23")
MIRROR_ENV = "MOSRM_DOWNLOAD_MIRROR"

Echo = Callable[[str], None]


@dataclass
class DownloadResult:
    """What one `download` run did, and what is left to the user."""

    corpus: str
    data_root: Path
    fetched: list[Path] = field(default_factory=list)
    """Files downloaded in this run (archives: their path before unpacking and deletion)."""
    verified: list[Path] = field(default_factory=list)
    """Files already present whose checksum matched; not downloaded again."""
    trusted: list[Path] = field(default_factory=list)
    """Files without a published checksum whose sha256 was recorded in this run (trust on first
    use); later runs verify against the record."""
    unpacked: list[Path] = field(default_factory=list)
    """Folders an archive was unpacked into in this run."""
    manual_steps: list[str] = field(default_factory=list)
    """What the user still has to do by hand, in order."""
    complete: bool = False
    """True when the layout the reader expects is in place (key files present)."""


def instructions(corpus: str) -> str:
    """The manual steps and the final layout the reader expects, as printable text."""
    return render_instructions(get_recipe(corpus))


def mirrored_url(mirror: str, corpus: str, name: str) -> str:
    return f"{mirror.rstrip('/')}/{corpus}/{name}"


@dataclass
class _Run:
    recipe: Recipe
    root: Path
    mirror: str | None
    progress: bool
    echo: Echo
    manifest: Manifest
    result: DownloadResult

    @property
    def work(self) -> Path:
        return self.root / WORK_DIR

    def url(self, remote: Remote) -> str:
        if self.mirror is None:
            return remote.url
        return mirrored_url(self.mirror, self.recipe.corpus, remote.name)

    def zenodo_api(self, record: int) -> str:
        if self.mirror is None:
            return zenodo_api_url(record)
        return mirrored_url(self.mirror, self.recipe.corpus, f"zenodo-{record}.json")


def _check_mirror(mirror: str) -> str:
    scheme = urlparse(mirror).scheme.lower()
    if scheme not in ("http", "https", "file"):
        raise MosrmError(
            f"mirror '{mirror}': expected an http://, https:// or file:// base URL; files are "
            f"fetched from <mirror>/<corpus>/<file name>"
        )
    return mirror


def _expected(run: _Run, remote: Remote, rel: str) -> Checksum | None:
    """The checksum this file must match; None when it has none yet (trust on first use)."""
    if remote.checksum is not None:
        return Checksum.parse(remote.checksum, "pinned")
    if remote.zenodo_record is not None:
        entry = run.manifest.entry(rel) or {}
        md5 = run.manifest.recorded(rel, "md5")
        if md5 is not None and str(entry.get("verified_with", "")).startswith("md5 (zenodo"):
            return Checksum("md5", md5, "zenodo")
        api = run.zenodo_api(remote.zenodo_record)
        run.echo(f"{remote.name}: reading its published md5 from the Zenodo record {api}")
        return zenodo_checksum(api, remote.name)
    sha256 = run.manifest.recorded(rel, "sha256")
    return Checksum("sha256", sha256, "tofu") if sha256 is not None else None


def _via(expected: Checksum | None) -> str:
    if expected is None:
        return "sha256 (trust on first use)"
    return f"{expected.algorithm} ({expected.origin})"


def _ensure_file(run: _Run, remote: Remote, rel: str, dest: Path) -> None:
    """`dest` present and verified (or recorded), downloading it if needed."""
    url = run.url(remote)
    if dest.is_file():
        expected = _expected(run, remote, rel)
        digests = file_digests(dest)
        if expected is None:
            run.manifest.record(
                rel,
                url="(found on disk)",
                source=remote.url,
                digests=digests,
                size=dest.stat().st_size,
                via=_via(None),
            )
            run.echo(
                f"{rel}: already present; no published checksum, so its sha256 "
                f"{digests['sha256']} is recorded (trust on first use) and later runs verify it"
            )
            run.result.trusted.append(dest)
            return
        if digests[expected.algorithm] == expected.hexdigest:
            run.echo(f"{rel}: already present, {expected.describe()} verified")
            run.result.verified.append(dest)
            return
        run.echo(f"{rel}: present but does not match {expected.describe()}; downloading it again")
    else:
        expected = _expected(run, remote, rel)
    run.echo(f"{rel}: downloading {url}")
    try:
        digests = download_file(url, dest, expected=expected, progress=run.progress, echo=run.echo)
    except ChecksumMismatch:
        raise
    except DownloadError as exc:
        raise DownloadError(
            f"{exc} (or fetch {remote.name} another way, put it at {dest} and run again: it is "
            f"verified there)"
        ) from None
    run.manifest.record(
        rel,
        url=url,
        source=remote.url,
        digests=digests,
        size=dest.stat().st_size,
        via=_via(expected),
    )
    run.result.fetched.append(dest)
    if expected is None:
        run.result.trusted.append(dest)
        run.echo(
            f"{rel}: no published checksum; recorded sha256 {digests['sha256']} (trust on first "
            f"use): later runs verify against it"
        )
    else:
        run.echo(f"{rel}: {expected.describe()} verified")


def _unpack(run: _Run, archive: Path, name: str, spec: Unpack) -> Path:
    target = run.root / spec.into
    run.echo(f"{name}: unpacking into {target}")
    unpack_archive(archive, target, staging=run.work / f"{name}.staging", spec=spec, echo=run.echo)
    run.result.unpacked.append(target)
    return target


def _remote(run: _Run, remote: Remote) -> None:
    rel = remote.dest if remote.dest is not None else f"{WORK_DIR}/{remote.name}"
    dest = run.root / rel
    if remote.unpack is None:
        _ensure_file(run, remote, rel, dest)
        return
    marker = marker_path(run.work, remote.name)
    done = read_marker(marker)
    if done is not None:
        run.echo(
            f"{remote.name}: already unpacked on {done.get('time', '?')} (verified with "
            f"{done.get('verified_with', '?')} before unpacking); not downloading it again"
        )
        return
    _ensure_file(run, remote, rel, dest)
    _unpack(run, dest, remote.name, remote.unpack)
    entry = run.manifest.entry(rel) or {}
    write_marker(
        marker,
        {
            "archive": remote.name,
            "source": remote.url,
            "sha256": entry.get("sha256"),
            "md5": entry.get("md5"),
            "verified_with": entry.get("verified_with"),
            "time": now(),
        },
    )
    dest.unlink()
    run.echo(f"{remote.name}: unpacked; deleted the archive ({marker.name} records it)")


def _manual_archive(run: _Run, archive: ManualArchive) -> None:
    marker = marker_path(run.work, archive.name)
    if read_marker(marker) is not None:
        return
    for candidate in (run.root / archive.name, run.work / archive.name):
        if candidate.is_file():
            break
    else:
        return
    digests = file_digests(candidate)
    rel = candidate.relative_to(run.root).as_posix()
    run.manifest.record(
        rel,
        url="(placed by hand)",
        source=archive.source,
        digests=digests,
        size=candidate.stat().st_size,
        via="none (placed by hand; no published checksum)",
    )
    _unpack(run, candidate, archive.name, archive.unpack)
    write_marker(
        marker,
        {
            "archive": archive.name,
            "source": archive.source,
            "sha256": digests["sha256"],
            "md5": digests["md5"],
            "verified_with": "none (placed by hand)",
            "time": now(),
        },
    )
    run.echo(
        f"{archive.name}: unpacked (sha256 {digests['sha256']} recorded); you may delete "
        f"{candidate} now"
    )


def _snapshot(run: _Run, repo_id: str) -> None:
    if run.mirror is not None:
        run.echo(
            f"{repo_id}: the mirror does not apply to Hugging Face downloads (set HF_ENDPOINT "
            f"for a Hub mirror)"
        )
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise MosrmError(
            f"{run.recipe.corpus} is downloaded from the Hugging Face Hub ({repo_id}) and needs "
            f"huggingface_hub: pip install huggingface_hub (or pip install 'mosrm-bench[download]')"
        ) from None
    run.echo(
        f"{repo_id}: downloading the Hugging Face dataset into {run.root} (huggingface_hub "
        f"checks each file against the Hub's hashes and skips files already there)"
    )
    try:
        local = snapshot_download(repo_id=repo_id, repo_type="dataset", local_dir=str(run.root))
    except Exception as exc:  # huggingface_hub raises many types; the user needs one line
        raise DownloadError(
            f"https://huggingface.co/datasets/{repo_id}: {type(exc).__name__}: {exc}"
        ) from exc
    run.manifest.record_snapshot(f"hf-dataset:{repo_id}", {"local_dir": str(local)})
    run.result.fetched.append(Path(local))


def download(
    corpus: str,
    data_root: Path,
    *,
    mirror: str | None = None,
    progress: bool = True,
    echo: Echo | None = None,
) -> DownloadResult:
    """Fetch what can be fetched, verify it, unpack it, and say what is left to do by hand.

    Re-running is cheap and safe: verified files and unpacked archives are not fetched again, a
    partial download resumes, and manual steps done since are picked up. `echo` receives every
    message, including the closing summary (complete, or the manual steps).
    """
    if echo is None:  # a library call logs; the CLI hands its own echo (stdout)
        echo = logging.getLogger(__name__).info
    recipe = get_recipe(corpus)
    mirror = mirror or os.environ.get(MIRROR_ENV) or None
    if mirror is not None:
        _check_mirror(mirror)
    root = Path(data_root).expanduser()
    if root.exists() and not root.is_dir():
        raise MosrmError(f"{root}: the data root exists but is not a folder")
    root.mkdir(parents=True, exist_ok=True)
    result = DownloadResult(corpus=corpus, data_root=root)
    run = _Run(recipe, root, mirror, progress, echo, Manifest(root), result)
    for remote in recipe.remotes:
        _remote(run, remote)
    for archive in recipe.manual_archives:
        _manual_archive(run, archive)
    if recipe.hf_dataset is not None:
        _snapshot(run, recipe.hf_dataset)
    result.manual_steps = recipe.check(root)
    result.complete = not result.manual_steps
    if result.complete:
        echo(f"{corpus}: complete: the layout the reader expects is in place under {root}")
    else:
        echo(f"{corpus}: {len(result.manual_steps)} step(s) left to do by hand:")
        for i, step in enumerate(result.manual_steps, start=1):
            echo(f"  {i}. {step}")
        echo(f"Run `mosrm download {corpus} --data-root {root}` again once they are done.")
    return result
