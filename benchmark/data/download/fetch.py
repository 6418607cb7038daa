"""The file fetcher behind `mosrm download`: urllib only, resumable, verified before it is trusted.

A download goes to `<name>.part` beside its destination and is renamed only after its checksum
matched, so a file under its final name has always been verified (or, for sources without a
published checksum, recorded). An interrupted download keeps its `.part`; the next run asks the
server for the remaining bytes with an HTTP Range request. Servers that answer 200 (ignoring the
range) are handled by restarting from byte 0; a 416 means the `.part` is already whole or is longer
than the file, and is settled by the total the server reports.

Every failure becomes a `DownloadError` naming the URL, never a urllib traceback: users behind
proxies and mirrors need to know which address failed and whether the partial file was kept.

`<data root>/.mosrm-downloads.json` records, per file, where it came from, its size, sha256 and
md5, which checksum it was verified against (pinned, Zenodo's record API, or trust on first use)
and when.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.error import HTTPError, URLError
from urllib.parse import unquote, urlparse
from urllib.request import Request, url2pathname, urlopen

from benchmark import __version__
from benchmark.atomic import atomic_write_text
from benchmark.errors import DataError, MosrmError

CHUNK = 1 << 20
TIMEOUT_S = 60.0
"""Seconds a connect or a single read may stall before the download is abandoned (resumable)."""
USER_AGENT = f"mosrm-bench/{__version__} (corpus download helper)"
MANIFEST_NAME = ".mosrm-downloads.json"
ALGORITHMS = ("md5", "sha256")
_HEX = {"md5": 32, "sha256": 64}

Echo = Callable[[str], None]


class DownloadError(MosrmError):
    """A download failed (HTTP/network error, checksum mismatch); the message names the URL."""


class ChecksumMismatch(DownloadError):
    """The bytes served differ from the expected checksum (the downloaded file was deleted)."""


@dataclass(frozen=True)
class Checksum:
    """An expected digest and where it came from (said in messages, recorded in the manifest)."""

    algorithm: str
    hexdigest: str
    origin: str
    """'pinned', 'zenodo' (the record's API) or 'tofu' (recorded at first download)."""

    @classmethod
    def parse(cls, text: str, origin: str) -> Checksum:
        """'md5:<hex>' or 'sha256:<hex>' (Zenodo's own notation)."""
        algorithm, sep, digest = text.strip().partition(":")
        algorithm = algorithm.lower()
        digest = digest.lower()
        if (
            not sep
            or algorithm not in _HEX
            or len(digest) != _HEX[algorithm]
            or re.fullmatch(r"[0-9a-f]+", digest) is None
        ):
            raise DownloadError(
                f"checksum '{text}' ({origin}) is not of the form md5:<32 hex> or sha256:<64 hex>"
            )
        return cls(algorithm, digest, origin)

    def describe(self) -> str:
        where = {
            "pinned": "pinned in mosrm-bench",
            "zenodo": "published in the Zenodo record",
            "tofu": "recorded at first download",
        }.get(self.origin, self.origin)
        return f"{self.algorithm} {self.hexdigest} ({where})"


def file_digests(path: Path) -> dict[str, str]:
    """md5 and sha256 of a file in one pass (sources publish either; the manifest keeps both)."""
    hashes = {name: hashlib.new(name) for name in ALGORITHMS}
    try:
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(CHUNK), b""):
                for h in hashes.values():
                    h.update(chunk)
    except OSError as exc:
        raise DownloadError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return {name: h.hexdigest() for name, h in hashes.items()}


def now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class Manifest:
    """`<data root>/.mosrm-downloads.json`: provenance and the checksums later runs verify against.

    Written with a temporary file and a rename, so a crash never leaves half a JSON document (which
    would silently disable trust-on-first-use verification).
    """

    def __init__(self, root: Path) -> None:
        self.path = Path(root) / MANIFEST_NAME
        self.data: dict[str, Any] = {"format": 1, "files": {}, "snapshots": {}}
        if self.path.exists():
            try:
                loaded = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise DataError(
                    f"{self.path}: unreadable download record ({exc}); it holds the checksums "
                    f"recorded at first download: fix or delete it (deleting it means the next "
                    f"run trusts the files it finds again)"
                ) from None
            if not isinstance(loaded, dict) or not isinstance(loaded.get("files", {}), dict):
                raise DataError(
                    f"{self.path}: expected a JSON object with a 'files' mapping "
                    f'({{"format": 1, "files": {{"<path>": {{...}}}}}}); fix or delete it'
                )
            self.data.update(loaded)

    def entry(self, rel: str) -> dict[str, Any] | None:
        found = self.data["files"].get(rel)
        return found if isinstance(found, dict) else None

    def recorded(self, rel: str, algorithm: str) -> str | None:
        entry = self.entry(rel) or {}
        value = entry.get(algorithm)
        return value if isinstance(value, str) and len(value) == _HEX[algorithm] else None

    def record(
        self, rel: str, *, url: str, source: str, digests: dict[str, str], size: int, via: str
    ) -> None:
        self.data["files"][rel] = {
            "url": url,
            "source": source,
            "size": size,
            "sha256": digests["sha256"],
            "md5": digests["md5"],
            "verified_with": via,
            "time": now(),
        }
        self._save()

    def record_snapshot(self, key: str, info: dict[str, Any]) -> None:
        self.data.setdefault("snapshots", {})[key] = {**info, "time": now()}
        self._save()

    def _save(self) -> None:
        try:
            atomic_write_text(self.path, json.dumps(self.data, indent=2, sort_keys=True) + "\n")
        except OSError as exc:
            raise DownloadError(f"{self.path}: cannot write: {exc.strerror or exc}") from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, URLError):
        return f"cannot connect ({exc.reason})"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _open(url: str, headers: dict[str, str], timeout: float) -> Any:
    """urlopen with our User-Agent; HTTPError propagates (callers inspect 416), others wrapped."""
    request = Request(url, headers={"User-Agent": USER_AGENT, **headers})
    try:
        return urlopen(request, timeout=timeout)
    except HTTPError:
        raise
    except (URLError, OSError, http.client.HTTPException, ValueError) as exc:
        raise DownloadError(f"{url}: {_reason(exc)}") from None


def fetch_json(url: str, *, timeout: float = TIMEOUT_S) -> Any:
    """A small JSON document (a Zenodo record), over http(s) or file://."""
    if url.startswith("file:"):
        path = _local_path(url)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise DownloadError(f"{url}: cannot read: {exc.strerror or exc}") from None
    else:
        try:
            with _open(url, {"Accept": "application/json"}, timeout) as resp:
                raw = resp.read()
        except HTTPError as exc:
            exc.close()
            raise DownloadError(f"{url}: {_reason(exc)}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise DownloadError(f"{url}: {_reason(exc)}") from None
    try:
        return json.loads(raw)
    except ValueError:
        raise DownloadError(f"{url}: the answer is not JSON (starts with {raw[:60]!r})") from None


def zenodo_checksum(api_url: str, filename: str, *, timeout: float = TIMEOUT_S) -> Checksum:
    """The md5 Zenodo publishes for `filename` in the record JSON at `api_url`.

    Both shapes Zenodo has served are accepted: `files` as a list of entries, or as
    `{"entries": {...}}`; each entry names its file by `key` (or `filename`) and carries
    `checksum: "md5:<hex>"`.
    """
    record = fetch_json(api_url, timeout=timeout)
    files: Any = record.get("files") if isinstance(record, dict) else None
    if isinstance(files, dict):
        files = files.get("entries", files)
    if isinstance(files, dict):
        files = list(files.values())
    names: list[str] = []
    for entry in files if isinstance(files, list) else []:
        if not isinstance(entry, dict):
            continue
        key = entry.get("key") or entry.get("filename")
        names.append(str(key))
        if key == filename:
            checksum = entry.get("checksum")
            if not isinstance(checksum, str):
                break
            if ":" not in checksum:
                checksum = f"md5:{checksum}"
            return Checksum.parse(checksum, "zenodo")
    listed = ", ".join(names) if names else "none"
    raise DownloadError(
        f"{api_url}: the Zenodo record lists no checksum for '{filename}' "
        f"(files listed: {listed}); "
        f'expected {{"files": [{{"key": "{filename}", "checksum": "md5:<hex>"}}]}}'
    )


def _local_path(url: str) -> Path:
    parsed = urlparse(url)
    if parsed.netloc not in ("", "localhost"):
        raise DownloadError(f"{url}: file:// URLs must name a local path (file:///abs/path)")
    return Path(url2pathname(unquote(parsed.path)))


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total) from 'bytes 100-199/200' or 'bytes */200'."""
    if not value:
        return None, None
    m = re.fullmatch(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*", value)
    if m is None:
        return None, None
    start = int(m.group(1)) if m.group(1) is not None else None
    total = int(m.group(2)) if m.group(2) != "*" else None
    return start, total


def _progress_bar(name: str, total: int | None, initial: int, enabled: bool) -> Any:
    from benchmark.progress import bar

    return bar(
        total,
        name,
        "B",
        enabled=enabled,
        initial=initial,
        unit_scale=True,
        unit_divisor=1024,
        leave=False,
    )


def _copy(src: BinaryIO, part: Path, mode: str, url: str, bar: Any) -> int:
    """Stream `src` into `part`; a stall or reset keeps the .part for the next run to resume."""
    written = 0
    # read1 returns what has arrived (at most one socket read), so a stall loses no received bytes
    read = getattr(src, "read1", src.read)
    try:
        out = part.open(mode)
    except OSError as exc:
        raise DownloadError(f"{part}: cannot write: {exc.strerror or exc}") from None
    with out:
        while True:
            try:
                chunk = read(CHUNK)
            except (OSError, http.client.HTTPException) as exc:
                out.flush()
                raise DownloadError(
                    f"{url}: download interrupted ({_reason(exc)}); the partial file {part} "
                    f"is kept: run the command again to resume"
                ) from None
            if not chunk:
                return written
            try:
                out.write(chunk)
            except OSError as exc:
                raise DownloadError(
                    f"{part}: cannot write ({exc.strerror or exc}) after {written} bytes of {url}; "
                    f"free some space and run the command again to resume"
                ) from None
            written += len(chunk)
            bar.update(len(chunk))


def _stream_file_url(url: str, part: Path, *, progress: bool, echo: Echo) -> None:
    """file:// sources resume by seeking: the local equivalent of a Range request."""
    src = _local_path(url)
    if not src.is_file():
        raise DownloadError(f"{url}: no such file ({src})")
    size = src.stat().st_size
    offset = part.stat().st_size if part.exists() else 0
    if offset > size:
        echo(f"{part.name}: longer than the source ({offset} > {size} bytes); restarting")
        offset = 0
    bar = _progress_bar(part.name.removesuffix(".part"), size, offset, progress)
    try:
        with src.open("rb") as f:
            f.seek(offset)
            _copy(f, part, "ab" if offset else "wb", url, bar)
    except OSError as exc:
        raise DownloadError(f"{url}: cannot read: {exc.strerror or exc}") from None
    finally:
        bar.close()


def _stream_http(
    url: str, part: Path, *, progress: bool, echo: Echo, timeout: float, retried: bool = False
) -> None:
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        resp = _open(url, headers, timeout)
    except HTTPError as exc:
        total = _content_range(exc.headers.get("Content-Range") if exc.headers else None)[1]
        exc.close()
        if exc.code == 416 and offset and not retried:
            if total == offset:
                return  # the .part already holds every byte; verification decides
            echo(
                f"{part.name}: the server cannot resume at byte {offset} (HTTP 416, file size "
                f"{total if total is not None else 'unknown'}); restarting from the beginning"
            )
            part.unlink()
            _stream_http(url, part, progress=progress, echo=echo, timeout=timeout, retried=True)
            return
        raise DownloadError(f"{url}: {_reason(exc)}") from None
    with resp:
        status = getattr(resp, "status", None) or resp.getcode()
        length = resp.headers.get("Content-Length")
        remaining = int(length) if length and length.isdigit() else None
        mode = "wb"
        if offset and status == 206:
            start, _ = _content_range(resp.headers.get("Content-Range"))
            if start is not None and start != offset:
                if retried:
                    raise DownloadError(
                        f"{url}: asked to resume at byte {offset}, the server sent bytes from "
                        f"{start}; delete {part} and try again"
                    )
                echo(f"{part.name}: the server resumed at the wrong byte; restarting")
                part.unlink()
                resp.close()
                _stream_http(url, part, progress=progress, echo=echo, timeout=timeout, retried=True)
                return
            mode = "ab"
        elif offset:
            echo(
                f"{part.name}: the server ignored the range request (HTTP {status}); "
                f"downloading again from the beginning"
            )
            offset = 0
        total = offset + remaining if remaining is not None else None
        bar = _progress_bar(part.name.removesuffix(".part"), total, offset, progress)
        try:
            written = _copy(resp, part, mode, url, bar)
        finally:
            bar.close()
    if remaining is not None and written < remaining:
        raise DownloadError(
            f"{url}: the connection closed after {offset + written} of {total} bytes; the "
            f"partial file {part} is kept: run the command again to resume"
        )


def download_file(
    url: str,
    dest: Path,
    *,
    expected: Checksum | None,
    progress: bool,
    echo: Echo,
    timeout: float = TIMEOUT_S,
) -> dict[str, str]:
    """Fetch `url` to `dest` via `dest.part` (resumed if present); verify; rename; return digests.

    With `expected=None` nothing is verified here: the caller records the digests (trust on first
    use). On a mismatch the .part is deleted (resuming from corrupt bytes would never succeed).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    scheme = urlparse(url).scheme.lower()
    if part.exists():
        echo(f"{dest.name}: resuming a partial download ({part.stat().st_size} bytes so far)")
    if scheme == "file":
        _stream_file_url(url, part, progress=progress, echo=echo)
    elif scheme in ("http", "https"):
        _stream_http(url, part, progress=progress, echo=echo, timeout=timeout)
    else:
        raise DownloadError(f"{url}: unsupported URL scheme (use http://, https:// or file://)")
    digests = file_digests(part)
    if expected is not None and digests[expected.algorithm] != expected.hexdigest:
        part.unlink(missing_ok=True)
        raise ChecksumMismatch(
            f"{url}: checksum mismatch: expected {expected.describe()}, got "
            f"{expected.algorithm} {digests[expected.algorithm]}; deleted the downloaded file "
            f"{part}. The source (or mirror) serves different bytes than the published file"
        )
    os.replace(part, dest)
    return digests
