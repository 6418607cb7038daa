"""The board on the Hugging Face Hub (`mosrm publish`): results, site and card in one commit.

A board is citable when its numbers can be fetched and rebuilt elsewhere, so what goes up is the
board's own inputs (each `<submission>/<task>.json` with the predictions and triplet answers it was
computed from, run records and failure records), the static site built from them, and the board's
Markdown as the repo's README.md under a Hub card header. Nothing else: quick runs
(`.partial.*`), results on non-evaluation splits (`@split`), caches, hidden and stray files are
left out and listed as such; audio, symlinks and anything that is not a plain file are refused,
so a link cannot carry a file from outside the folders up to the Hub.

Everything that will be uploaded is decided first, without the network, as a `Manifest` (path in
the repo, size, SHA-256, sorted): `--dry-run` prints it, and `publish` hands exactly those bytes to
one `HfApi.create_commit` call. The repo is not created here (that would be a second call the
dry-run cannot vouch for): it must exist, and a missing one is a one-line error. Files already in
the repo that the manifest does not name (say a submission removed since the last publish) stay
there: listing them would need the network, which the dry-run never uses.

Layout in the repo:

    dataset:  README.md (card), results/<submission>/<task>.*, site/…
    space:    README.md (card: `sdk: static`), index.html and the rest of the site at the root
              (a static Space serves index.html from there), results/<submission>/<task>.*
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark import HARNESS_VERSION
from benchmark.errors import MosrmError

REPO_TYPES = ("dataset", "space")
CARD = "README.md"
RESULTS_DIR = "results"
SITE_DIR = "site"
SITE_INDEX = "index.html"

_REPO_ID = re.compile(r"^\w(?:[\w.-]{0,94}\w)?/\w(?:[\w.-]{0,94}\w)?$", re.ASCII)
_RESULT_FILE = re.compile(
    r"^(?P<task>[a-z0-9][a-z0-9_-]{0,63})"
    r"(?P<kind>\.json|\.run\.json|\.predictions\.parquet|\.triplets\.parquet|\.failed\.json)$"
)
"""A board input: `<task>` as `tasks.TaskSpec.name` allows, then one of the harness's suffixes."""
_COMPANIONS = (".run.json", ".predictions.parquet", ".triplets.parquet")
"""Files that belong to a `<task>.json` and mean nothing to the board without it."""
AUDIO_SUFFIXES = frozenset(
    {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".aif", ".aiff", ".wma", ".webm"}
)
_TRUE = frozenset({"1", "on", "yes", "true"})
_BUGS = (TypeError, AttributeError, NameError, AssertionError)
"""Raised by code, not by the Hub or the network: never turned into a one-line user error."""


@dataclass(frozen=True)
class ManifestEntry:
    """One file of the commit: where it goes, where it comes from and what its bytes are."""

    path_in_repo: str
    source: Path
    """The local file (for the card: the board Markdown it wraps)."""
    size: int
    sha256: str
    content: bytes | None = None
    """The bytes when generated here (the card); None: the bytes of `source`."""


@dataclass(frozen=True)
class Manifest:
    """Exactly what one publish uploads, sorted by path in the repo, plus what it leaves out."""

    repo_type: str
    entries: tuple[ManifestEntry, ...]
    skipped: tuple[tuple[Path, str], ...]
    """(local file or folder, why it is not uploaded), sorted."""

    @property
    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries)

    def describe(self, repo_id: str, revision: str | None = None) -> list[str]:
        """The dry-run listing: the repo, every file with its size and path in the repo, the total,
        then what is left out and why."""
        lines = [f"{self.repo_type} repo {repo_id}, revision {revision or 'main'}:"]
        width = max(len(f"{e.size:,}") for e in self.entries)
        for e in self.entries:
            note = f"  (card + {e.source})" if e.content is not None else ""
            lines.append(f"  {e.size:>{width},} B  {e.sha256[:12]}  {e.path_in_repo}{note}")
        lines.append(
            f"total: {len(self.entries)} files, {self.total_bytes:,} bytes "
            f"({_human(self.total_bytes)}), in one commit"
        )
        if self.skipped:
            lines.append(f"not uploaded ({len(self.skipped)}):")
            lines += [f"  {path}: {why}" for path, why in self.skipped]
        return lines


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def check_repo_id(repo_id: str) -> str:
    """`repo_id` if it reads ORG/NAME as the Hub allows (letters, digits, `-`, `_`, `.`), else a
    one-line error: a typo must fail here, not after the files are hashed and sent."""
    if (
        not _REPO_ID.match(repo_id)
        or "--" in repo_id
        or ".." in repo_id
        or repo_id.endswith(".git")
    ):
        raise MosrmError(
            f"--repo-id {repo_id!r}: expected ORG/NAME (letters, digits, '-', '_', '.'; "
            "no '--' or '..'; at most 96 characters each side)"
        )
    return repo_id


def check_repo_type(repo_type: str, allowed: tuple[str, ...] = REPO_TYPES) -> str:
    if repo_type not in allowed:
        raise MosrmError(f"--repo-type {repo_type!r}: expected one of {', '.join(allowed)}")
    return repo_type


def hub_offline() -> bool:
    """Whether `HF_HUB_OFFLINE` asks for no network: as set now, or as huggingface_hub read it when
    it was imported (it reads the variable once)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE:
        return True
    import sys

    hub = sys.modules.get("huggingface_hub.constants")
    return bool(getattr(hub, "HF_HUB_OFFLINE", False))


def results_license(task_names: set[str], task_licenses: Mapping[str, str]) -> str:
    """The card's `license`: the one Hub licence id of every task's corpus, else `other` (results
    derive from the corpora's labels, so their terms apply)."""
    from benchmark.results.export import hub_license

    ids = {hub_license(task_licenses[t]) if t in task_licenses else None for t in task_names}
    only = ids.pop() if len(ids) == 1 else None
    return only if only is not None else "other"


def default_readme(leaderboard_dir: Path, results_root: Path) -> Path:
    """The board's Markdown: `leaderboard/README.md` where `mosrm board` writes it, else the older
    `<results>/summary.md`."""
    for path in (leaderboard_dir / "README.md", results_root / "summary.md"):
        if path.is_file():
            return path
    return leaderboard_dir / "README.md"


def publish_manifest(
    results_root: str | Path,
    site_dir: str | Path,
    readme: str | Path,
    *,
    repo_type: str = "dataset",
    task_licenses: Mapping[str, str] | None = None,
    only: Collection[str] | None = None,
    exclude: Collection[str] | None = None,
) -> Manifest:
    """Every file one publish uploads (see the module docstring), checked and hashed, no network.

    `only` / `exclude` choose the submissions (folders of the results) to upload; the others are
    listed as left out. The site and Markdown must then be the board of exactly those: one that
    still shows a left-out submission is refused, with the command that rebuilds it.

    Refused with one line: a symlink, audio or non-plain file in either folder; a `<task>.json`
    marked partial; no results; a missing site or Markdown, or one older than a result it should
    show (run `mosrm board`); a site file that would land on the card or the results in a Space.
    """
    from benchmark.hashing import sha256_file

    check_repo_type(repo_type)
    results_root, site_dir, readme = Path(results_root), Path(site_dir), Path(readme)
    a, b = results_root.resolve(), site_dir.resolve()
    if a.is_relative_to(b) or b.is_relative_to(a):
        raise MosrmError(
            f"{site_dir}: the site folder and the results folder {results_root} overlap; give "
            "each its own folder (--site, --results)"
        )
    skipped: list[tuple[Path, str]] = []
    chosen = _chooser(results_root, only, exclude)
    results = _result_files(results_root, skipped, chosen)
    if not results:
        raise MosrmError(f"{results_root}: no results to publish (run `mosrm run` or `evaluate`)")
    if not (site_dir / SITE_INDEX).is_file():
        raise MosrmError(f"{site_dir / SITE_INDEX}: no site to publish: run `mosrm board` first")
    if not readme.is_file():
        raise MosrmError(f"{readme}: no board Markdown to publish: run `mosrm board` first")
    site = _site_files(site_dir, skipped)
    _check_fresh(results, [site_dir / SITE_INDEX, readme])
    _check_board_shows_only(site_dir, {p.parent.name for p in results}, results_root)

    site_prefix = f"{SITE_DIR}/" if repo_type == "dataset" else ""
    placed = [(f"{RESULTS_DIR}/{_posix(p, results_root)}", p) for p in results]
    for path in site:
        where = site_prefix + _posix(path, site_dir)
        if where == CARD or where.startswith(f"{RESULTS_DIR}/"):
            raise MosrmError(
                f"{path}: would be uploaded as '{where}', which the card or the results take in a "
                f"{repo_type} repo; rename it in the site"
            )
        placed.append((where, path))
    entries = [ManifestEntry(where, p, p.stat().st_size, sha256_file(p)) for where, p in placed]
    tasks = {_task_of(p) for p in results}
    licence = results_license(tasks, task_licenses or {})
    card = repo_card(readme, repo_type, licence, sorted(tasks)).encode("utf-8")
    entries.append(ManifestEntry(CARD, readme, len(card), _sha256(card), card))
    entries.sort(key=lambda e: e.path_in_repo)
    card_source = readme.resolve()
    skipped = [s for s in skipped if s[0].resolve() != card_source]  # summary.md: it is the card
    skipped.sort(key=lambda s: str(s[0]))
    return Manifest(repo_type, tuple(entries), tuple(skipped))


def _task_of(result_file: Path) -> str:
    match = _RESULT_FILE.match(result_file.name)
    if match is None:
        raise AssertionError(f"{result_file} is not a results file")
    return match["task"]


def _posix(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _walk(root: Path, what: str) -> list[tuple[Path, bool]]:
    """(path, hidden) of every plain file under `root`, sorted; hidden folders are returned as one
    entry. A symlink, audio or any other kind of file is refused, naming it."""
    if not root.is_dir():
        raise MosrmError(f"{root}: no such folder ({what})")
    out: list[tuple[Path, bool]] = []
    for folder, dirs, files in os.walk(root):
        base = Path(folder)
        for name in sorted(dirs):
            if (base / name).is_symlink():
                raise MosrmError(
                    f"{base / name}: a symlink in the {what}; publish follows no links (copy "
                    "the files in, or remove it)"
                )
            if name.startswith("."):
                out.append((base / name, True))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = base / name
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                raise MosrmError(
                    f"{path}: a symlink in the {what}; publish follows no links (copy the file "
                    "in, or remove it)"
                )
            if not stat.S_ISREG(mode):
                raise MosrmError(f"{path}: not a plain file ({what}); remove it")
            if path.suffix.lower() in AUDIO_SUFFIXES:
                raise MosrmError(
                    f"{path}: audio in the {what}; audio is never published (the corpora's "
                    "licences forbid it): move it out"
                )
            out.append((path, name.startswith(".")))
    return sorted(out)


def _chooser(
    root: Path, only: Collection[str] | None, exclude: Collection[str] | None
) -> Callable[[str], bool]:
    """Whether a submission folder is published; a name that is no folder of `root` is an error
    (a typo must not publish everything)."""
    present = {p.name for p in root.iterdir() if p.is_dir()} if root.is_dir() else set()
    for flag, names in (("--only", only), ("--exclude", exclude)):
        unknown = sorted(set(names or ()) - present)
        if unknown:
            raise MosrmError(f"{flag}: no submission {', '.join(unknown)} in {root}")
    return lambda name: (only is None or name in only) and name not in (exclude or ())


def _check_board_shows_only(site_dir: Path, published: set[str], results_root: Path) -> None:
    """The board uploaded must not show a submission whose results are left out."""
    path = site_dir / "board.json"
    if not path.is_file():
        return
    try:
        board = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # `_site_files` uploads it as it is; the board is the site's business
    shown = {
        str(r.get("submission"))
        for t in board.get("tasks", [])
        for r in t.get("rows", []) + t.get("failed", [])
    }
    extra = sorted(shown - published)
    if extra:
        raise MosrmError(
            f"{site_dir}: the board shows {', '.join(extra)}, whose results are left out of this "
            f"publish: build the board from the published results only (copy those folders of "
            f"{results_root} to a new folder and run `mosrm board --results NEW`), then publish "
            "with --results NEW"
        )


def _result_files(
    root: Path, skipped: list[tuple[Path, str]], chosen: Callable[[str], bool] | None = None
) -> list[Path]:
    """The board's inputs in `root`: `<submission>/<task>.json` and its companions, failure records.
    Everything else goes to `skipped` with the reason, as do submissions not `chosen`."""
    from benchmark.stats.ceiling import is_filtered_name

    kept: list[Path] = []
    for path, hidden in _walk(root, "results folder"):
        rel = path.relative_to(root).parts
        name = path.name
        if hidden:
            skipped.append((path, "hidden (temporary file or cache)"))
        elif len(rel) in (2, 3) and chosen is not None and not chosen(rel[0]):
            skipped.append((path, "submission not selected (--only / --exclude)"))
        elif len(rel) == 3 and rel[1] == "probes" and _RESULT_FILE.match(name) is not None:
            # the board's robustness tables read `<submission>/probes/<task>.json`
            task = name.removesuffix(".json")
            if name.endswith(".json") and (root / rel[0] / f"{task}.json").is_file():
                kept.append(path)
            else:
                skipped.append((path, "probes without the result they belong to"))
        elif len(rel) != 2:
            skipped.append((path, "not a <submission>/<task> file the board reads"))
        elif ".partial." in name:
            skipped.append((path, "quick run (--limit), never on the board"))
        elif is_filtered_name(name):
            skipped.append(
                (path, "reliability-filtered view (--min-reliability), never on the board")
            )
        elif "@" in name:
            skipped.append((path, "result on a non-evaluation split, not on the board"))
        elif (m := _RESULT_FILE.match(name)) is None:
            skipped.append((path, "not a <submission>/<task> file the board reads"))
        elif m.group("kind") in _COMPANIONS and not (path.parent / f"{m['task']}.json").is_file():
            skipped.append((path, f"no {m['task']}.json beside it, so the board does not read it"))
        else:
            if m.group("kind") == ".json":
                _check_result(path)
            kept.append(path)
    return kept


def _check_result(path: Path) -> None:
    try:
        record: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise MosrmError(f"{path}: unreadable results file ({exc})") from None
    if not isinstance(record, dict):
        raise MosrmError(f"{path}: results file is not a JSON object")
    if record.get("partial") is not None:
        raise MosrmError(
            f"{path}: field 'partial' is set: a quick run's results are never published; rerun "
            "the task without --limit"
        )
    if record.get("reliability_filter") is not None:
        raise MosrmError(
            f"{path}: field 'reliability_filter' is set: a filtered view's results are never "
            "published; rerun the task without --min-reliability"
        )


def _site_files(root: Path, skipped: list[tuple[Path, str]]) -> list[Path]:
    kept: list[Path] = []
    for path, hidden in _walk(root, "site folder"):
        if hidden:
            skipped.append((path, "hidden"))
        else:
            kept.append(path)
    return kept


def _check_fresh(results: list[Path], built: list[Path]) -> None:
    """Refuse a site page or Markdown written before the newest result: it would not show it.

    `mosrm board` rewrites both on every run, so they are newer than every result it read. Other
    site files (plots) are not compared: a board may keep an unchanged file as it was. A fresh
    checkout sets mtimes in checkout order, so this can ask for a rebuild that changes nothing;
    that is cheap, and uploading a board that misses a result is not.
    """
    newest = max(results, key=lambda p: p.stat().st_mtime_ns)
    oldest = min(built, key=lambda p: p.stat().st_mtime_ns)
    if oldest.stat().st_mtime_ns < newest.stat().st_mtime_ns:
        raise MosrmError(
            f"{oldest} is older than {newest}: the board does not show the latest results; run "
            "`mosrm board` first"
        )


def front_matter(repo_type: str, license_id: str) -> dict[str, Any]:
    """The card's YAML header: a dataset's (licence, name, tags; no viewer, the files are not one
    table) or a static Space's (`sdk: static`, served from `index.html`)."""
    tags = ["leaderboard", "speech", "speech-quality", "mos", "reward-modeling", "mosrm-bench"]
    if repo_type == "space":
        return {
            "title": "mosrm-bench leaderboard",
            "emoji": "📊",
            "colorFrom": "blue",
            "colorTo": "green",
            "sdk": "static",
            "app_file": SITE_INDEX,
            "pinned": False,
            "license": license_id,
            "short_description": "Speech-quality reward models, by ΔMOS bin",
            "tags": tags,
        }
    return {
        "pretty_name": "mosrm-bench leaderboard results",
        "license": license_id,
        "tags": tags,
        "viewer": False,
    }


def repo_card(readme: Path, repo_type: str, license_id: str, tasks: list[str]) -> str:
    """README.md of the repo: the card header, the board's Markdown unchanged, then what the repo
    holds. Deterministic: the same Markdown gives the same card."""
    import yaml

    try:
        board = readme.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MosrmError(f"{readme}: unreadable board Markdown ({exc})") from None
    if board.startswith("---"):
        raise MosrmError(
            f"{readme}: already starts with a YAML header ('---'); publish writes the card's own"
        )
    header = yaml.safe_dump(
        front_matter(repo_type, license_id), sort_keys=False, allow_unicode=True
    )
    site = "the site, at the root (`index.html`)" if repo_type == "space" else "`site/`: the site"
    footer = [
        "",
        "## Files in this repository",
        "",
        f"Published by `mosrm publish` (mosrm-bench harness {HARNESS_VERSION}), tasks: "
        f"{', '.join(tasks)}.",
        "",
        f"- `{RESULTS_DIR}/<submission>/<task>.json`: one results record per submission and task; "
        "`.predictions.parquet` beside it holds the per-pair predictions every number is "
        "recomputed from (`.triplets.parquet`: a judge's answers on the cycle-rate triplets, "
        "`.run.json`: the run record, `.failed.json`: a failed latest attempt).",
        f"- {site}, built by `mosrm board` from these results alone.",
        "",
        "Results derive from each corpus's ratings, so each corpus's terms apply; no audio is "
        "included.",
        "",
    ]
    return "---\n" + header + "---\n\n" + board.rstrip("\n") + "\n" + "\n".join(footer)


def publish(
    manifest: Manifest,
    repo_id: str,
    repo_type: str,
    token: str | None = None,
    revision: str | None = None,
    commit_message: str = "mosrm publish: leaderboard results and site",
) -> Any:
    """Upload exactly the manifest's files to an existing Hub repo in one `create_commit` call;
    return its `CommitInfo`.

    Refused before any network: a bad repo id or type, a repo type other than the manifest's (the
    card and layout depend on it), `HF_HUB_OFFLINE`, no token (`HF_TOKEN` or `hf auth login`), a
    file changed since the manifest was built (the bytes sent are the bytes hashed). Hub and
    connection errors become one line naming the repo.
    """
    check_repo_id(repo_id)
    check_repo_type(repo_type, (*REPO_TYPES, "model"))  # a model: `publish_model`
    if repo_type != manifest.repo_type:
        raise MosrmError(
            f"the manifest was built for a {manifest.repo_type} repo, not a {repo_type}: rebuild it"
        )
    where = f"{repo_type} repo {repo_id}"
    if hub_offline():
        raise MosrmError(
            f"HF_HUB_OFFLINE is set: not uploading to {where} (unset it to publish; --dry-run "
            "lists the files without the network)"
        )
    from huggingface_hub import CommitOperationAdd, HfApi, get_token

    if token is None:
        try:
            token = get_token()
        except Exception as exc:  # an OIDC exchange that failed; the user needs one line
            raise MosrmError(f"no Hugging Face token for {where}: {_one_line(exc)}") from None
    if not token:
        raise MosrmError(
            f"no Hugging Face token to publish to {where}: log in with `hf auth login` (or "
            "`huggingface-cli login`), or set HF_TOKEN to a token with write access"
        )
    operations = [
        CommitOperationAdd(path_in_repo=e.path_in_repo, path_or_fileobj=_verified_bytes(e))
        for e in manifest.entries
    ]
    try:
        return HfApi(token=token).create_commit(
            repo_id=repo_id,
            repo_type=repo_type,
            revision=revision,
            operations=operations,
            commit_message=commit_message,
            token=token,
        )
    except _BUGS:
        raise  # a bug here or in huggingface_hub: keep the trace
    except (
        Exception
    ) as exc:  # the Hub and its HTTP client raise many types; the user needs one line
        raise MosrmError(_hub_error(exc, where, revision)) from None


def _verified_bytes(entry: ManifestEntry) -> bytes:
    """The entry's bytes, checked against its manifest hash: a file rewritten after the dry-run
    listing (a `mosrm board` running meanwhile) is refused, not uploaded unseen."""
    if entry.content is not None:
        return entry.content
    try:
        if entry.source.is_symlink():
            raise MosrmError(f"{entry.source}: became a symlink since the manifest was built")
        data = entry.source.read_bytes()
    except OSError as exc:
        raise MosrmError(f"{entry.source}: unreadable ({exc.strerror or exc})") from None
    if len(data) != entry.size or _sha256(data) != entry.sha256:
        raise MosrmError(
            f"{entry.source}: changed since the manifest was built; rerun `mosrm publish`"
        )
    return data


def _one_line(exc: BaseException) -> str:
    from benchmark.results.failures import one_line

    return one_line(str(exc) or type(exc).__name__, 300)


def _hub_error(exc: Exception, where: str, revision: str | None) -> str:
    from huggingface_hub.utils import (
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(exc, RepositoryNotFoundError):
        return (
            f"{where} not found, or your token cannot see it: create it first on "
            "huggingface.co (a Space with the static SDK), `mosrm publish` does not create repos"
        )
    if isinstance(exc, RevisionNotFoundError):
        return f"{where}: no branch or revision '{revision}'"
    if isinstance(exc, HfHubHTTPError):
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
        if status in (401, 403):
            return (
                f"{where}: the Hub refused your token (HTTP {status}); it needs write access "
                "(`hf auth login` with a write token, or HF_TOKEN)"
            )
        return f"{where}: the Hub refused the upload (HTTP {status}): {_one_line(exc)}"
    kind = type(exc).__name__
    if isinstance(exc, OSError) or kind.endswith(("ConnectError", "Timeout", "TimeoutException")):
        return f"{where}: could not reach the Hub ({kind}: {_one_line(exc)}); check the connection"
    return f"{where}: upload failed ({kind}: {_one_line(exc)})"
