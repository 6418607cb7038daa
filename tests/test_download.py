"""`mosrm download`: fetcher, checksums, safe unpacking and per-corpus recipes, all offline.

A local `http.server` in a thread serves generated files (with a Range implementation, and a
variant that ignores Range); file:// URLs cover the local path. Corpus archives are tiny fakes in
the native layouts, served through the mirror mechanism (`<mirror>/<corpus>/<name>`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import re
import subprocess
import sys
import tarfile
import threading
import time
import types
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from benchmark.data import download as dl
from benchmark.data.download import extract, fetch, sources
from benchmark.data.download.extract import Nested, Unpack, unpack_archive
from benchmark.data.download.fetch import Checksum, ChecksumMismatch, DownloadError, download_file
from benchmark.errors import DataError, MosrmError

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------ test server


class FileServer:
    """Serves `files` (URL path -> bytes); logs (path, Range header, status, body bytes)."""

    def __init__(self, *, honour_range: bool = True) -> None:
        self.files: dict[str, bytes] = {}
        self.stall: dict[str, float] = {}  # path -> seconds to hang after the first 10 body bytes
        self.log: list[tuple[str, str | None, int, int]] = []
        self.honour_range = honour_range
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                data = server.files.get(path)
                rng = self.headers.get("Range")
                if data is None:
                    server.log.append((path, rng, 404, 0))
                    self.send_error(404, "Not Found")
                    return
                m = re.fullmatch(r"bytes=(\d+)-", rng) if rng else None
                if m is None or not server.honour_range:
                    self._send(path, rng, 200, data, {})
                    return
                start = int(m.group(1))
                if start >= len(data):
                    server.log.append((path, rng, 416, 0))
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"}
                self._send(path, rng, 206, data[start:], headers)

            def _send(
                self, path: str, rng: str | None, status: int, body: bytes, headers: dict
            ) -> None:
                server.log.append((path, rng, status, len(body)))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if path in server.stall:
                    self.wfile.write(body[:10])
                    self.wfile.flush()
                    time.sleep(server.stall.pop(path))
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def requests_for(self, path: str) -> list[tuple[str, str | None, int, int]]:
        return [r for r in self.log if r[0] == path]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[FileServer]:
    s = FileServer()
    yield s
    s.close()


@pytest.fixture
def lazy_server() -> Iterator[FileServer]:
    s = FileServer(honour_range=False)
    yield s
    s.close()


def payload(n: int = 300_000, seed: int = 0) -> bytes:
    return bytes((i * 31 + seed) % 251 for i in range(n))


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Echo:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, text: str) -> None:
        self.lines.append(text)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


# ----------------------------------------------------------------------------------- fetcher


def test_full_download_verifies_and_renames(server: FileServer, tmp_path: Path) -> None:
    data = payload()
    server.files["/f.bin"] = data
    dest = tmp_path / "out" / "f.bin"
    digests = download_file(
        f"{server.url}/f.bin",
        dest,
        expected=Checksum("md5", md5(data), "pinned"),
        progress=False,
        echo=Echo(),
    )
    assert dest.read_bytes() == data
    assert not dest.with_name("f.bin.part").exists()
    assert digests == {"md5": md5(data), "sha256": sha256(data)}
    assert server.requests_for("/f.bin") == [("/f.bin", None, 200, len(data))]


def test_resume_requests_only_the_remaining_bytes(server: FileServer, tmp_path: Path) -> None:
    data = payload()
    server.files["/f.bin"] = data
    dest = tmp_path / "f.bin"
    dest.with_name("f.bin.part").write_bytes(data[:123_456])
    echo = Echo()
    download_file(
        f"{server.url}/f.bin",
        dest,
        expected=Checksum("sha256", sha256(data), "pinned"),
        progress=False,
        echo=echo,
    )
    assert dest.read_bytes() == data
    assert server.requests_for("/f.bin") == [("/f.bin", "bytes=123456-", 206, len(data) - 123_456)]
    assert "resuming" in echo.text


def test_server_ignoring_range_restarts_cleanly(lazy_server: FileServer, tmp_path: Path) -> None:
    data = payload()
    lazy_server.files["/f.bin"] = data
    dest = tmp_path / "f.bin"
    dest.with_name("f.bin.part").write_bytes(data[:1000])
    echo = Echo()
    download_file(
        f"{lazy_server.url}/f.bin",
        dest,
        expected=Checksum("md5", md5(data), "pinned"),
        progress=False,
        echo=echo,
    )
    assert dest.read_bytes() == data  # not the first 1000 bytes twice
    assert lazy_server.requests_for("/f.bin") == [("/f.bin", "bytes=1000-", 200, len(data))]
    assert "ignored the range request" in echo.text


def test_416_with_a_whole_part_is_verified_without_refetching(
    server: FileServer, tmp_path: Path
) -> None:
    data = payload(5000)
    server.files["/f.bin"] = data
    dest = tmp_path / "f.bin"
    dest.with_name("f.bin.part").write_bytes(data)
    download_file(
        f"{server.url}/f.bin",
        dest,
        expected=Checksum("md5", md5(data), "pinned"),
        progress=False,
        echo=Echo(),
    )
    assert dest.read_bytes() == data
    assert server.requests_for("/f.bin") == [("/f.bin", "bytes=5000-", 416, 0)]


def test_416_with_an_overlong_part_restarts(server: FileServer, tmp_path: Path) -> None:
    data = payload(5000)
    server.files["/f.bin"] = data
    dest = tmp_path / "f.bin"
    dest.with_name("f.bin.part").write_bytes(data + b"junk")
    download_file(
        f"{server.url}/f.bin",
        dest,
        expected=Checksum("md5", md5(data), "pinned"),
        progress=False,
        echo=Echo(),
    )
    assert dest.read_bytes() == data
    assert [r[2] for r in server.requests_for("/f.bin")] == [416, 200]


def test_checksum_mismatch_deletes_the_part_and_names_the_url(
    server: FileServer, tmp_path: Path
) -> None:
    server.files["/f.bin"] = payload()
    dest = tmp_path / "f.bin"
    url = f"{server.url}/f.bin"
    with pytest.raises(ChecksumMismatch, match="checksum mismatch") as info:
        download_file(
            url, dest, expected=Checksum("md5", "0" * 32, "pinned"), progress=False, echo=Echo()
        )
    assert url in str(info.value)
    assert "0" * 32 in str(info.value)
    assert not dest.exists()
    assert not dest.with_name("f.bin.part").exists()


def test_http_404_is_a_clear_error(server: FileServer, tmp_path: Path) -> None:
    url = f"{server.url}/missing.zip"
    with pytest.raises(DownloadError) as info:
        download_file(url, tmp_path / "missing.zip", expected=None, progress=False, echo=Echo())
    assert str(info.value) == f"{url}: HTTP 404 Not Found"
    assert not (tmp_path / "missing.zip").exists()


def test_unreachable_host_is_a_clear_error(tmp_path: Path) -> None:
    s = FileServer()
    url = f"{s.url}/f.bin"
    s.close()  # nothing listens on that port any more
    with pytest.raises(DownloadError, match=re.escape(url) + ": cannot connect"):
        download_file(url, tmp_path / "f.bin", expected=None, progress=False, echo=Echo())


def test_a_stalled_download_times_out_keeps_the_part_and_resumes(
    server: FileServer, tmp_path: Path
) -> None:
    data = payload(5000)
    server.files["/f.bin"] = data
    server.stall["/f.bin"] = 1.5
    dest = tmp_path / "f.bin"
    url = f"{server.url}/f.bin"
    with pytest.raises(
        DownloadError, match=re.escape(url) + r": download interrupted \(timed out\)"
    ):
        download_file(url, dest, expected=None, progress=False, echo=Echo(), timeout=0.3)
    assert dest.with_name("f.bin.part").read_bytes() == data[:10]
    download_file(url, dest, expected=None, progress=False, echo=Echo())
    assert dest.read_bytes() == data
    assert server.requests_for("/f.bin")[-1] == ("/f.bin", "bytes=10-", 206, len(data) - 10)


def test_file_url_download_and_resume(tmp_path: Path) -> None:
    data = payload(50_000)
    src = tmp_path / "src dir" / "f.bin"
    src.parent.mkdir()
    src.write_bytes(data)
    dest = tmp_path / "f.bin"
    dest.with_name("f.bin.part").write_bytes(data[:20_000])
    download_file(
        src.as_uri(),
        dest,
        expected=Checksum("md5", md5(data), "pinned"),
        progress=False,
        echo=Echo(),
    )
    assert dest.read_bytes() == data
    with pytest.raises(DownloadError, match="no such file"):
        download_file(
            (tmp_path / "nope.bin").as_uri(),
            tmp_path / "x",
            expected=None,
            progress=False,
            echo=Echo(),
        )


def test_progress_is_logged_and_can_be_disabled(
    server: FileServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="benchmark.progress")
    server.files["/f.bin"] = payload()
    download_file(f"{server.url}/f.bin", tmp_path / "a", expected=None, progress=False, echo=Echo())
    assert capsys.readouterr().err == "" and caplog.text == ""
    download_file(f"{server.url}/f.bin", tmp_path / "b", expected=None, progress=True, echo=Echo())
    assert capsys.readouterr().err == ""  # the library logs; the CLI shows it (bar or lines)
    assert "done (300000/300000 B" in caplog.text  # the size from Content-Length


def test_checksum_parsing_rejects_malformed_values() -> None:
    assert Checksum.parse("MD5:" + "A" * 32, "pinned") == Checksum("md5", "a" * 32, "pinned")
    for bad in ("md5:abc", "crc32:" + "0" * 8, "0" * 32, "sha256:" + "g" * 64):
        with pytest.raises(DownloadError, match="not of the form"):
            Checksum.parse(bad, "pinned")


# -------------------------------------------------------------------------------- unpacking


def make_zip(path: Path, members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16) | 0
            zf.writestr(info, target)
    return path


def make_tar(
    path: Path,
    members: dict[str, bytes],
    links: dict[str, tuple[bytes, str]] | None = None,
) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, (kind, target) in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = target
            tf.addfile(info)
    return path


@pytest.mark.parametrize("member", ["../evil.txt", "/tmp/abs-evil.txt", "ok/../../evil.txt"])
@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_unpacking_rejects_members_outside_the_root(tmp_path: Path, member: str, kind: str) -> None:
    members = {"top/ok.txt": b"ok", member: b"evil"}
    archive = tmp_path / f"bad.{'zip' if kind == 'zip' else 'tar.gz'}"
    (make_zip if kind == "zip" else make_tar)(archive, members)
    dest = tmp_path / "root" / "data"
    with pytest.raises(DataError, match=re.escape(f"member '{member}'")) as info:
        unpack_archive(
            archive, dest, staging=tmp_path / "root" / "stage", spec=Unpack(), echo=print
        )
    assert str(archive) in str(info.value)
    assert not (tmp_path / "root" / "evil.txt").exists()
    assert not (tmp_path / "evil.txt").exists()
    assert not Path("/tmp/abs-evil.txt").exists()
    assert not (tmp_path / "root" / "stage").exists()
    assert not dest.exists()  # nothing half-unpacked


@pytest.mark.parametrize(
    "links",
    [
        {"top/l": (tarfile.SYMTYPE, "../../outside")},
        {"top/l": (tarfile.SYMTYPE, "/etc/passwd")},
        {"top/l": (tarfile.LNKTYPE, "../outside")},
        {"top/b": (tarfile.SYMTYPE, "."), "top/x": (tarfile.SYMTYPE, "b/..")},
        {"top/l": (tarfile.SYMTYPE, "../sibling")},  # leaves top/, which is stripped
    ],
)
def test_unpacking_rejects_links_pointing_outside(
    tmp_path: Path, links: dict[str, tuple[bytes, str]]
) -> None:
    archive = make_tar(tmp_path / "links.tar.gz", {"top/ok.txt": b"ok"}, links)
    with pytest.raises(DataError, match="member 'top/"):
        unpack_archive(
            archive,
            tmp_path / "data",
            staging=tmp_path / "stage",
            spec=Unpack(strip_top="top"),
            echo=print,
        )
    assert not (tmp_path / "data").exists()


def test_zip_symlink_outside_is_rejected_and_inside_is_kept(tmp_path: Path) -> None:
    bad = make_zip(tmp_path / "bad.zip", {"a.txt": b"a"}, {"l": "../../etc/passwd"})
    with pytest.raises(DataError, match="member 'l'"):
        unpack_archive(bad, tmp_path / "d1", staging=tmp_path / "s", spec=Unpack(), echo=print)
    good = make_zip(tmp_path / "good.zip", {"a.txt": b"a"}, {"l": "a.txt"})
    unpack_archive(good, tmp_path / "d2", staging=tmp_path / "s", spec=Unpack(), echo=print)
    assert (tmp_path / "d2" / "l").is_symlink()
    assert (tmp_path / "d2" / "l").read_bytes() == b"a"


def test_unpacking_strips_the_top_folder_skips_macos_junk_and_merges(tmp_path: Path) -> None:
    archive = make_zip(
        tmp_path / "a.zip",
        {
            "TOP/": b"",
            "TOP/x.txt": b"new",
            "TOP/sub/y.txt": b"y",
            "__MACOSX/TOP/._x.txt": b"junk",
        },
    )
    dest = tmp_path / "data"
    (dest / "sub").mkdir(parents=True)
    (dest / "x.txt").write_bytes(b"old")
    (dest / "keep.txt").write_bytes(b"mine")
    unpack_archive(archive, dest, staging=tmp_path / "s", spec=Unpack(strip_top="TOP"), echo=print)
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == [
        "keep.txt",
        "sub",
        "sub/y.txt",
        "x.txt",
    ]
    assert (dest / "x.txt").read_bytes() == b"new"


def test_unpacking_without_the_expected_top_folder_says_so(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"x.txt": b"x", "y/z.txt": b"z"})
    echo = Echo()
    unpack_archive(
        archive, tmp_path / "d", staging=tmp_path / "s", spec=Unpack(strip_top="TOP"), echo=echo
    )
    assert (tmp_path / "d" / "x.txt").is_file() and (tmp_path / "d" / "y" / "z.txt").is_file()
    assert "no single top folder 'TOP/'" in echo.text


def test_damaged_archive_is_a_data_error(tmp_path: Path) -> None:
    archive = tmp_path / "broken.tar.gz"
    archive.write_bytes(b"\x1f\x8b\x08\x00" + b"garbage" * 10)
    with pytest.raises(DataError, match="cannot unpack"):
        unpack_archive(archive, tmp_path / "d", staging=tmp_path / "s", spec=Unpack(), echo=print)


# ----------------------------------------------------------------------- corpus fixtures


def wav_bytes(write_wav: Callable[..., Path], tmp_path: Path, sr: int, seed: int = 0) -> bytes:
    path = write_wav(tmp_path / "wavs" / f"{sr}-{seed}.wav", seconds=0.05, sr=sr, seed=seed)
    return path.read_bytes()


def tar_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def pin(monkeypatch: pytest.MonkeyPatch, corpus: str, name: str, checksum: str) -> None:
    """Pin a fake archive's md5 in place of the real one (the test archive is not the corpus)."""
    recipe = sources.RECIPES[corpus]
    remotes = tuple(
        dataclasses.replace(r, checksum=checksum) if r.name == name else r for r in recipe.remotes
    )
    monkeypatch.setitem(sources.RECIPES, corpus, dataclasses.replace(recipe, remotes=remotes))


BVCC_WAVS = ("sys64e2f-utt9c183cd.wav", "sys64e2f-utt369d5fb.wav", "sysb1a2c-utt0000aaa.wav")


def bvcc_archive(wav: bytes) -> bytes:
    sets = "main/DATA/sets"
    info = "x,{}_30-39_a_Female_Valid_1_No"
    return tar_bytes(
        {
            "main/README": b"VoiceMOS Challenge main track",
            "main/01_get.py": b"",
            "main/02_gather.py": b"",
            "main/03_preprocess.py": b"",
            f"{sets}/train_mos_list.txt": f"{BVCC_WAVS[0]},4.0\n".encode(),
            f"{sets}/val_mos_list.txt": f"{BVCC_WAVS[1]},2.0\n".encode(),
            f"{sets}/test_mos_list.txt": f"{BVCC_WAVS[2]},4.0\n".encode(),
            f"{sets}/TRAINSET": f"sys64e2f,{BVCC_WAVS[0]},4,{info}\n".encode(),
            f"{sets}/DEVSET": f"sys64e2f,{BVCC_WAVS[1]},2,{info}\n".encode(),
            f"{sets}/TESTSET": f"sysb1a2c,{BVCC_WAVS[2]},4,{info}\n".encode(),
            "main/DATA/mydata_system.csv": b"system_ID,mean\nsys64e2f,3.0\n",
            # the Blizzard clip (BVCC_WAVS[2]) is not in the archive: gathered by hand
            f"main/DATA/wav/{BVCC_WAVS[0]}": wav,
            f"main/DATA/wav/{BVCC_WAVS[1]}": wav,
        }
    )


CLUSTERS = (
    b"wav_name,transcription,track,cluster,reference\n"
    b"sys64e2f-utt9c183cd.wav,h aw,main,0,h aw\n"
    b"sys64e2f-utt369d5fb.wav,n aw,main,1,n aw\n"
)


def test_bvcc_end_to_end_against_a_mirror(
    server: FileServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    write_wav: Callable[..., Path],
) -> None:
    wav = wav_bytes(write_wav, tmp_path, 16000)
    archive = bvcc_archive(wav)
    server.files["/mirror/bvcc/main.tar.gz"] = archive
    server.files["/mirror/bvcc/transcriptions_clustered.csv"] = CLUSTERS
    pin(monkeypatch, "bvcc", "main.tar.gz", f"md5:{md5(archive)}")
    root = tmp_path / "bvcc-main"
    echo = Echo()

    result = dl.download("bvcc", root, mirror=f"{server.url}/mirror/", progress=False, echo=echo)

    for rel in (
        "DATA/sets/train_mos_list.txt",
        "DATA/sets/TRAINSET",
        "DATA/mydata_system.csv",
        f"DATA/wav/{BVCC_WAVS[0]}",
        "01_get.py",
        "transcriptions_clustered.csv",
    ):
        assert (root / rel).is_file(), rel
    assert not (root / "main").exists()  # top folder stripped: the root is main/
    assert not (root / ".mosrm-downloads" / "main.tar.gz").exists()  # deleted once unpacked
    assert result.unpacked == [root]
    assert result.fetched == [
        root / ".mosrm-downloads" / "main.tar.gz",
        root / "transcriptions_clustered.csv",
    ]
    assert result.trusted == [root / "transcriptions_clustered.csv"]
    assert result.complete is False
    assert len(result.manual_steps) == 1
    step = result.manual_steps[0]
    assert "1 of the 3 wavs" in step and BVCC_WAVS[2] in step and "01_get.py" in step
    assert "blizzard/data.html" in step
    assert "1 step(s) left to do by hand" in echo.text

    # The user runs the Blizzard scripts; the next run fetches nothing and reports complete.
    (root / "DATA" / "wav" / BVCC_WAVS[2]).write_bytes(wav)
    server.log.clear()
    again = dl.download("bvcc", root, mirror=f"{server.url}/mirror", progress=False, echo=echo)
    assert again.complete is True and again.manual_steps == []
    assert again.fetched == [] and again.verified == [root / "transcriptions_clustered.csv"]
    assert server.log == []
    # and the BVCC reader reads exactly what the download produced
    from benchmark.data.corpora.bvcc import BvccReader

    clips = BvccReader().read(root, {}).to_pylist()
    assert sorted(c["clip_id"] + ".wav" for c in clips) == sorted(BVCC_WAVS)
    assert {c["split"] for c in clips} == {"train", "dev", "test"}


def test_bvcc_real_pinned_md5_rejects_a_different_archive(
    server: FileServer, tmp_path: Path, write_wav: Callable[..., Path]
) -> None:
    server.files["/bvcc/main.tar.gz"] = bvcc_archive(wav_bytes(write_wav, tmp_path, 16000))
    root = tmp_path / "root"
    with pytest.raises(ChecksumMismatch, match="checksum mismatch") as info:
        dl.download("bvcc", root, mirror=server.url, progress=False, echo=Echo())
    message = str(info.value)
    assert f"{server.url}/bvcc/main.tar.gz" in message
    assert "fc880c2a208c3285a47bd9a64f34eb11 (pinned in mosrm-bench)" in message
    assert not (root / ".mosrm-downloads" / "main.tar.gz.part").exists()
    assert not (root / "DATA").exists()


def nisqa_archive(wav: bytes) -> bytes:
    header = "db,con,file,filename_deg,mos\n"
    members = {"NISQA_Corpus/NISQA_corpus_file.csv": header.encode()}
    for db in sources.NISQA_DBS:
        members[f"NISQA_Corpus/{db}/{db}_file.csv"] = f"{header}{db},1,c1,c1.wav,3.2\n".encode()
        members[f"NISQA_Corpus/{db}/deg/c1.wav"] = wav
    members["__MACOSX/NISQA_Corpus/._NISQA_corpus_file.csv"] = b"junk"
    return zip_bytes(members)


def zenodo_record(name: str, data: bytes) -> bytes:
    entry = {"key": name, "size": len(data), "checksum": f"md5:{md5(data)}"}
    return json.dumps({"id": 4728081, "files": [entry]}).encode()


def test_nisqa_end_to_end_verifies_against_the_mirrored_zenodo_record(
    server: FileServer, tmp_path: Path, write_wav: Callable[..., Path]
) -> None:
    archive = nisqa_archive(wav_bytes(write_wav, tmp_path, 48000))
    server.files["/nisqa/NISQA_Corpus.zip"] = archive
    server.files["/nisqa/zenodo-4728081.json"] = zenodo_record("NISQA_Corpus.zip", archive)
    root = tmp_path / "NISQA_Corpus"
    echo = Echo()
    result = dl.download("nisqa", root, mirror=server.url, progress=False, echo=echo)
    assert result.complete is True and result.manual_steps == []
    for db in sources.NISQA_DBS:
        assert (root / db / f"{db}_file.csv").is_file()
        assert (root / db / "deg" / "c1.wav").is_file()
    assert not (root / "__MACOSX").exists()
    assert f"md5 {md5(archive)} (published in the Zenodo record) verified" in echo.text
    assert len(server.requests_for("/nisqa/zenodo-4728081.json")) == 1
    entry = json.loads((root / ".mosrm-downloads.json").read_text())["files"][
        ".mosrm-downloads/NISQA_Corpus.zip"
    ]
    assert entry["url"] == f"{server.url}/nisqa/NISQA_Corpus.zip"
    assert entry["source"] == "https://zenodo.org/records/4728081/files/NISQA_Corpus.zip?download=1"
    assert entry["size"] == len(archive)
    assert entry["md5"] == md5(archive) and entry["sha256"] == sha256(archive)
    assert entry["verified_with"] == "md5 (zenodo)" and entry["time"].endswith("Z")


def test_nisqa_zenodo_record_without_the_file_is_an_error(
    server: FileServer, tmp_path: Path
) -> None:
    server.files["/nisqa/NISQA_Corpus.zip"] = b"zip"
    server.files["/nisqa/zenodo-4728081.json"] = zenodo_record("other.zip", b"x")
    with pytest.raises(DownloadError, match="lists no checksum for 'NISQA_Corpus.zip'") as info:
        dl.download("nisqa", tmp_path / "r", mirror=server.url, progress=False, echo=Echo())
    assert f"{server.url}/nisqa/zenodo-4728081.json" in str(info.value)
    assert "other.zip" in str(info.value)
    assert server.requests_for("/nisqa/NISQA_Corpus.zip") == []  # nothing fetched unverifiable


def test_a_crash_while_unpacking_never_looks_complete(
    server: FileServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    write_wav: Callable[..., Path],
) -> None:
    archive = nisqa_archive(wav_bytes(write_wav, tmp_path, 48000))
    server.files["/nisqa/NISQA_Corpus.zip"] = archive
    server.files["/nisqa/zenodo-4728081.json"] = zenodo_record("NISQA_Corpus.zip", archive)
    root = tmp_path / "NISQA_Corpus"
    real_move = extract._merge_move
    moved: list[Path] = []

    def crash_after_three(src: Path, dst: Path) -> None:
        if len(moved) == 3:
            raise KeyboardInterrupt
        moved.append(dst)
        real_move(src, dst)

    monkeypatch.setattr(extract, "_merge_move", crash_after_three)
    with pytest.raises(KeyboardInterrupt):
        dl.download("nisqa", root, mirror=server.url, progress=False, echo=Echo())
    assert len(moved) == 3  # part of the tree is in place ...
    assert not (root / ".mosrm-downloads" / "NISQA_Corpus.zip.unpacked.json").exists()
    assert not (root / ".mosrm-downloads" / "NISQA_Corpus.zip.staging").exists()

    monkeypatch.setattr(extract, "_merge_move", real_move)
    server.log.clear()
    result = dl.download("nisqa", root, mirror=server.url, progress=False, echo=Echo())
    # ... and the next run unpacks again from the kept, re-verified archive without refetching.
    assert result.complete is True
    assert result.verified == [root / ".mosrm-downloads" / "NISQA_Corpus.zip"]
    assert result.fetched == [] and server.log == []
    assert (root / ".mosrm-downloads" / "NISQA_Corpus.zip.unpacked.json").is_file()


def test_somos_end_to_end_unpacks_the_inner_audio_zip(
    server: FileServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    write_wav: Callable[..., Path],
) -> None:
    wav = wav_bytes(write_wav, tmp_path, 24000)
    audios = zip_bytes({"audios/novel_2007_0098_015.wav": wav, "audios/booksent_0001_000.wav": wav})
    clean = "training_files/split1/clean"
    archive = zip_bytes(
        {
            "audios.zip": audios,
            f"{clean}/TRAINSET": b"systemId,utteranceId,choice,listenerId\n",
            f"{clean}/VALIDSET": b"systemId,utteranceId,choice,listenerId\n",
            f"{clean}/TESTSET": b"systemId,utteranceId,choice,listenerId\n",
            f"{clean}/train_mos_list.txt": b"utteranceId,mean\n",
            "raw_scores_with_metadata/raw_scores.tsv": b"utteranceId\tchoice\n",
        }
    )
    server.files["/m/somos/somos.zip"] = archive
    pin(monkeypatch, "somos", "somos.zip", f"md5:{md5(archive)}")
    root = tmp_path / "somos"
    result = dl.download("somos", root, mirror=f"{server.url}/m", progress=False, echo=Echo())
    assert result.complete is True
    assert (root / "audios" / "novel_2007_0098_015.wav").read_bytes() == wav
    assert (root / clean / "TRAINSET").is_file()
    assert not (root / "audios.zip").exists()
    assert not (root / ".mosrm-downloads" / "somos.zip").exists()


def vmc23_answers() -> dict[str, bytes]:
    return {
        "track1_answer.txt": b"VoiceMOS2023Track1-A-AD_test_0026,4.42105263157895\n",
        "track2_answer.txt": b"VoiceMOS2023Track2-B01-SF1-CDF1-30001,2.857142857142857\n",
        "track3_answer.txt": b"VoiceMOS2023Track3-CMGAN_snr-2_babble_TMHINT_b2_21_02,1.14\n",
    }


def test_vmc23_end_to_end_answers_fetched_track_zips_by_hand(
    server: FileServer, tmp_path: Path, write_wav: Callable[..., Path]
) -> None:
    for name, data in vmc23_answers().items():
        server.files[f"/vmc23/{name}"] = data
    root = tmp_path / "vmc23"
    first = dl.download("vmc23", root, mirror=server.url, progress=False, echo=Echo())
    assert first.complete is False
    assert sorted(p.name for p in first.fetched) == sorted(vmc23_answers())
    assert first.trusted == first.fetched
    assert len(first.manual_steps) == 3
    assert "VoiceMOS2023Track1.zip" in first.manual_steps[0]
    assert "dropbox.com/s/c83l67bkeh9p49k" in first.manual_steps[0]
    assert "188FJiCBT0RSI6-q4ICJPfGqmR22_9Kd2" in first.manual_steps[1]

    tracks = {
        "VoiceMOS2023Track1.zip": (
            "VoiceMOS2023Track1",
            "VoiceMOS2023Track1-A-AD_test_0026",
            22050,
        ),
        "VoiceMOS_2023_track2.zip": (
            "VoiceMOS_2023_track2",
            "VoiceMOS2023Track2-B01-SF1-CDF1-30001",
            24000,
        ),
        "VoiceMOS_2023_track3.zip": (
            "VoiceMOS_2023_track3",
            "VoiceMOS2023Track3-CMGAN_snr-2_babble_TMHINT_b2_21_02",
            16000,
        ),
    }
    for zip_name, (top, sample, sr) in tracks.items():
        wav = wav_bytes(write_wav, tmp_path, sr)
        members = {f"{top}/{sample}.wav": wav, f"__MACOSX/{top}/._{sample}.wav": b"junk"}
        (root / zip_name).write_bytes(zip_bytes(members))
    server.log.clear()
    echo = Echo()
    second = dl.download("vmc23", root, mirror=server.url, progress=False, echo=echo)
    assert second.complete is True and second.manual_steps == []
    assert second.fetched == [] and server.log == []
    assert sorted(p.name for p in second.verified) == sorted(vmc23_answers())
    assert second.unpacked == [root / "track1", root / "track2", root / "track3"]
    for i, (_, sample, _) in enumerate(tracks.values(), start=1):
        assert (root / f"track{i}" / f"{sample}.wav").is_file()
    assert not (root / "__MACOSX").exists() and not (root / "track1" / "__MACOSX").exists()
    assert "you may delete" in echo.text


def test_tofu_recording_and_later_verification_failure(server: FileServer, tmp_path: Path) -> None:
    for name, data in vmc23_answers().items():
        server.files[f"/vmc23/{name}"] = data
    root = tmp_path / "vmc23"
    echo = Echo()
    dl.download("vmc23", root, mirror=server.url, progress=False, echo=echo)
    record = json.loads((root / ".mosrm-downloads.json").read_text())["files"]
    original = vmc23_answers()["track1_answer.txt"]
    assert record["track1_answer.txt"]["sha256"] == sha256(original)
    assert record["track1_answer.txt"]["verified_with"] == "sha256 (trust on first use)"
    assert record["track1_answer.txt"]["source"].startswith(
        "https://raw.githubusercontent.com/unilight/sheet/610f45b8"
    )
    assert "trust on first use" in echo.text

    # A locally damaged file is fetched again and checked against the record.
    (root / "track1_answer.txt").write_bytes(b"edited\n")
    server.log.clear()
    again = dl.download("vmc23", root, mirror=server.url, progress=False, echo=Echo())
    assert again.fetched == [root / "track1_answer.txt"] and again.trusted == []
    assert (root / "track1_answer.txt").read_bytes() == original

    # Upstream bytes that differ from what was trusted first are refused.
    server.files["/vmc23/track1_answer.txt"] = b"VoiceMOS2023Track1-A-AD_test_0026,1.0\n"
    (root / "track1_answer.txt").unlink()
    with pytest.raises(DownloadError, match="recorded at first download") as info:
        dl.download("vmc23", root, mirror=server.url, progress=False, echo=Echo())
    assert f"{server.url}/vmc23/track1_answer.txt" in str(info.value)
    assert not (root / "track1_answer.txt").exists()
    assert not (root / "track1_answer.txt.part").exists()


def test_tofu_records_a_file_found_on_disk(server: FileServer, tmp_path: Path) -> None:
    root = tmp_path / "vmc23"
    root.mkdir()
    for name, data in vmc23_answers().items():
        (root / name).write_bytes(data)
    result = dl.download("vmc23", root, mirror=server.url, progress=False, echo=Echo())
    assert sorted(p.name for p in result.trusted) == sorted(vmc23_answers())
    assert result.fetched == [] and server.log == []
    entry = json.loads((root / ".mosrm-downloads.json").read_text())["files"]["track2_answer.txt"]
    assert entry["url"] == "(found on disk)"


def test_mirror_from_the_environment(
    server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, data in vmc23_answers().items():
        server.files[f"/env/vmc23/{name}"] = data
    monkeypatch.setenv(dl.MIRROR_ENV, f"{server.url}/env")
    result = dl.download("vmc23", tmp_path / "r", progress=False, echo=Echo())
    assert len(result.fetched) == 3
    assert {r[0] for r in server.log} == {f"/env/vmc23/{n}" for n in vmc23_answers()}


def test_file_mirror(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror dir"
    (mirror / "vmc23").mkdir(parents=True)
    for name, data in vmc23_answers().items():
        (mirror / "vmc23" / name).write_bytes(data)
    root = tmp_path / "r"
    result = dl.download("vmc23", root, mirror=mirror.as_uri() + "/", progress=False, echo=Echo())
    assert len(result.fetched) == 3
    assert (root / "track3_answer.txt").read_bytes() == vmc23_answers()["track3_answer.txt"]


def test_bad_mirror_and_missing_mirror_file(server: FileServer, tmp_path: Path) -> None:
    with pytest.raises(MosrmError, match="expected an http://, https:// or file:// base URL"):
        dl.download("vmc23", tmp_path, mirror="ftp://example.org/x", progress=False, echo=Echo())
    with pytest.raises(
        DownloadError, match=re.escape(f"{server.url}/vmc23/track1_answer.txt")
    ) as info:
        dl.download("vmc23", tmp_path / "r", mirror=server.url, progress=False, echo=Echo())
    assert "HTTP 404" in str(info.value)
    assert f"put it at {tmp_path / 'r' / 'track1_answer.txt'} and run again" in str(info.value)


def test_tmhint_qi_is_manual_and_completes_once_the_layout_is_there(
    tmp_path: Path, write_wav: Callable[..., Path]
) -> None:
    root = tmp_path / "tmhint"
    echo = Echo()
    result = dl.download("tmhint_qi", root, progress=False, echo=echo)
    assert result.complete is False
    assert result.fetched == [] and result.unpacked == []
    (step,) = result.manual_steps
    assert "https://drive.google.com/file/d/1TMDiz6dnS76hxyeAcCQxeSqqEOH4UDN0" in step
    assert str(root / "TMHINTQI.zip") in step and "raw_data.csv" in step
    assert step in echo.text

    (root / "raw_data.csv").write_text(
        "idx,method,uttr,snr,noise,quality_score,intelligibility_score,file_name\n"
        "0,DDAE,1,-2,babble,3,1,DDAE_snr-2_babble_TMHINT_b2_21_02\n"
    )
    write_wav(root / "train" / "DDAE_snr-2_babble_TMHINT_g1_01_01.wav", seconds=0.05)
    write_wav(root / "test" / "DDAE_snr-2_babble_TMHINT_b2_21_02.wav", seconds=0.05)
    done = dl.download("tmhint_qi", root, progress=False, echo=Echo())
    assert done.complete is True and done.manual_steps == []


def test_tmhint_qi_zip_dropped_in_by_hand_is_unpacked(
    tmp_path: Path, write_wav: Callable[..., Path]
) -> None:
    wav = wav_bytes(write_wav, tmp_path, 16000)
    root = tmp_path / "tmhint"
    root.mkdir()
    (root / "TMHINTQI.zip").write_bytes(
        zip_bytes(
            {
                "TMHINTQI/raw_data.csv": b"idx,method,uttr,snr,noise,quality_score,"
                b"intelligibility_score,file_name\n",
                "TMHINTQI/train/DDAE_snr-2_babble_TMHINT_g1_01_01.wav": wav,
                "TMHINTQI/test/DDAE_snr-2_babble_TMHINT_b2_21_02.wav": wav,
                "__MACOSX/TMHINTQI/._raw_data.csv": b"junk",
            }
        )
    )
    result = dl.download("tmhint_qi", root, progress=False, echo=Echo())
    assert result.complete is True and result.unpacked == [root]
    assert (root / "raw_data.csv").is_file() and (root / "test").is_dir()
    assert not (root / "TMHINTQI").exists() and not (root / "__MACOSX").exists()
    assert (root / "TMHINTQI.zip").is_file()  # the user's file is left alone
    again = dl.download("tmhint_qi", root, progress=False, echo=Echo())
    assert again.unpacked == []  # the marker makes unpacking idempotent


class FakeHub:
    """Stands in for huggingface_hub.snapshot_download: writes a tiny SingMOS snapshot."""

    def __init__(self, wav: bytes, error: Exception | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.wav = wav
        self.error = error

    def snapshot_download(self, **kwargs: Any) -> str:
        self.calls.append(kwargs)
        if self.error is not None:
            raise self.error
        root = Path(kwargs["local_dir"])
        (root / "info").mkdir(parents=True, exist_ok=True)
        (root / "info" / "split.json").write_text('{"singmos": {"train": ["sys0001-utt0001"]}}')
        (root / "info" / "score.json").write_text('{"utterance": {}}')
        (root / "wavs").mkdir(exist_ok=True)
        (root / "wavs" / "sys0001-utt0001.wav").write_bytes(self.wav)
        return str(root)

    def module(self) -> types.ModuleType:
        mod = types.ModuleType("huggingface_hub")
        mod.snapshot_download = self.snapshot_download  # type: ignore[attr-defined]
        return mod


def test_singmos_with_a_fake_huggingface_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_wav: Callable[..., Path]
) -> None:
    hub = FakeHub(wav_bytes(write_wav, tmp_path, 16000))
    monkeypatch.setitem(sys.modules, "huggingface_hub", hub.module())
    root = tmp_path / "singmos"
    result = dl.download("singmos", root, progress=False, echo=Echo())
    assert hub.calls == [
        {"repo_id": "TangRain/SingMOS", "repo_type": "dataset", "local_dir": str(root)}
    ]
    assert result.complete is True and result.fetched == [root]
    assert (root / "wavs" / "sys0001-utt0001.wav").is_file()
    record = json.loads((root / ".mosrm-downloads.json").read_text())
    assert record["snapshots"]["hf-dataset:TangRain/SingMOS"]["local_dir"] == str(root)


def test_singmos_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails
    with pytest.raises(MosrmError, match="pip install huggingface_hub"):
        dl.download("singmos", tmp_path / "a", progress=False, echo=Echo())
    hub = FakeHub(b"", error=OSError("offline"))
    monkeypatch.setitem(sys.modules, "huggingface_hub", hub.module())
    with pytest.raises(DownloadError, match="datasets/TangRain/SingMOS: OSError: offline"):
        dl.download("singmos", tmp_path / "b", progress=False, echo=Echo())


def test_unknown_corpus_lists_the_known_ones(tmp_path: Path) -> None:
    known = "bvcc, nisqa, singmos, somos, tmhint_qi, vmc23"
    with pytest.raises(MosrmError, match=f"unknown corpus 'bvc' \\(known corpora: {known}\\)"):
        dl.download("bvc", tmp_path, echo=Echo())
    with pytest.raises(MosrmError, match="known corpora"):
        dl.instructions("nope")
    assert dl.CORPORA == tuple(sources.RECIPES)


@pytest.mark.parametrize(
    ("corpus", "needles"),
    [
        ("bvcc", ("01_get.py", "DATA/sets/TRAINSET", "transcriptions_clustered.csv", "Blizzard")),
        ("nisqa", ("NISQA_TRAIN_SIM", "4728081", "NISQA_Corpus/")),
        ("singmos", ("TangRain/SingMOS", "info/score.json", "huggingface_hub")),
        ("somos", ("7378801", "audios.zip", "training_files/split1")),
        ("tmhint_qi", ("1TMDiz6dnS76hxyeAcCQxeSqqEOH4UDN0", "raw_data.csv", "TMHINTQI/")),
        ("vmc23", ("track3_answer.txt", "listener_wise_answer.csv", "VoiceMOS2023Track1.zip")),
    ],
)
def test_instructions_give_steps_and_the_layout(corpus: str, needles: tuple[str, ...]) -> None:
    text = dl.instructions(corpus)
    assert "Final layout (point --data-root here):" in text
    for needle in needles:
        assert needle in text


def test_data_root_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(MosrmError, match="not a folder"):
        dl.download("tmhint_qi", tmp_path / "f", echo=Echo())


def test_corrupt_download_record_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / ".mosrm-downloads.json").write_text("{not json")
    with pytest.raises(DataError, match=r"\.mosrm-downloads\.json: unreadable download record"):
        dl.download("vmc23", tmp_path, mirror="file:///nonexistent", echo=Echo())


def test_nested_spec_is_optional(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"x.txt": b"x"})
    echo = Echo()
    spec = Unpack(nested=(Nested("audios.zip", Unpack(into="audios")),))
    unpack_archive(archive, tmp_path / "d", staging=tmp_path / "s", spec=spec, echo=echo)
    assert "holds no audios.zip" in echo.text


def test_import_does_no_network_io() -> None:
    code = (
        "import socket\n"
        "def refuse(*a, **k):\n"
        "    raise AssertionError('network access at import time')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "socket.getaddrinfo = refuse\n"
        "import sys, benchmark.data.download\n"
        "assert 'huggingface_hub' not in sys.modules\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_fetch_json_reports_non_json(server: FileServer) -> None:
    server.files["/r.json"] = b"<html>rate limited</html>"
    with pytest.raises(DownloadError, match="is not JSON"):
        fetch.fetch_json(f"{server.url}/r.json")
