"""`mosrm publish`: the manifest is exactly the board's files (no partials, caches, strays, links or
audio), `--dry-run` lists it without the network, and the upload is one `create_commit` given
exactly those bytes (benchmark.leaderboard.publish). No test here can reach the network: every
socket and HTTP client send raises."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import huggingface_hub
import huggingface_hub.constants
import huggingface_hub.errors
import pytest
from huggingface_hub import CommitOperationAdd, DatasetCard, HfApi, SpaceCard

from benchmark.cli import main
from benchmark.errors import MosrmError
from benchmark.leaderboard.publish import (
    Manifest,
    check_repo_id,
    publish,
    publish_manifest,
)

T0 = 1_700_000_000
BOARD_MD = "# mosrm-bench leaderboard\n\n| model | accuracy |\n|---|---|\n| alpha | 61.0 |\n"

# what the fixture's results folder holds, relative to it: uploaded / left out
UPLOADED = [
    "alpha/demo.json",
    "alpha/demo.predictions.parquet",
    "alpha/demo.run.json",
    "alpha/demo.triplets.parquet",
    "alpha/toy.failed.json",
    "beta/demo.json",
    "beta/demo.predictions.parquet",
]
LEFT_OUT = {
    "alpha/demo.partial.json": "quick run",
    "alpha/demo.partial.predictions.parquet": "quick run",
    "alpha/demo.min-rel-0.9.json": "reliability-filtered view",
    "alpha/demo.min-rel-0.9.predictions.parquet": "reliability-filtered view",
    "alpha/demo@dev.json": "non-evaluation split",
    "alpha/demo@dev.predictions.parquet": "non-evaluation split",
    "alpha/notes.txt": "not a <submission>/<task> file",
    "alpha/.demo.json.tmp-12-ab": "hidden",
    "beta/old.predictions.parquet": "no old.json beside it",
    "beta/extra/demo.json": "not a <submission>/<task> file",
    ".cache": "hidden",
    "summary.md": "not a <submission>/<task> file",
}
SITE = ["board.csv", "board.json", "index.html", "plots/demo-bins.svg"]


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection attempt fails the test, whatever library makes it."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a test tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    import requests

    monkeypatch.setattr(requests.Session, "send", refuse)
    client = type(huggingface_hub.utils.get_session())  # httpx's Client, whatever it is named
    monkeypatch.setattr(client, "send", refuse)


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """HF_HUB_OFFLINE off (other tests set it, and huggingface_hub reads it once), a test token."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_OIDC_RESOURCE", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))


class Recorder:
    """Stands in for `HfApi.create_commit`: records each call, returns a commit URL."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.error = error

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def create_commit(api: HfApi, **kwargs: Any) -> Any:
            return self(api, **kwargs)

        monkeypatch.setattr(HfApi, "create_commit", create_commit)

    def __call__(self, api: HfApi, **kwargs: Any) -> Any:
        self.calls.append({"api_token": api.token, **kwargs})
        if self.error is not None:
            raise self.error
        return SimpleNamespace(commit_url=f"https://huggingface.co/{kwargs['repo_id']}/commit/abc")


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    rec = Recorder()
    rec.install(monkeypatch)
    return rec


def _write(path: Path, data: bytes | str, mtime: int = T0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return path


def _board(base: Path) -> tuple[Path, Path, Path]:
    """results/, site/ and the board Markdown as `mosrm run` + `mosrm board` leave them, with every
    kind of file publish must leave out; the site written after the results."""
    results, site = base / "results", base / "board" / "site"  # a workspace's defaults
    for i, rel in enumerate([*UPLOADED, *LEFT_OUT]):
        if rel == ".cache":
            _write(results / rel / "scores.sqlite", b"cache")
        elif rel.endswith(".json"):
            _write(results / rel, f'{{"submission": "{rel.split("/")[0]}", "i": {i}}}\n')
        else:
            _write(results / rel, bytes([i]) * (64 + i))
    for i, rel in enumerate(SITE):
        _write(site / rel, f"<p>{i}</p>\n", T0 + 10)
    _write(site / ".DS_Store", b"x", T0 + 10)
    readme = _write(base / "board" / "README.md", BOARD_MD, T0 + 10)
    return results, site, readme


def _manifest(base: Path, repo_type: str = "dataset", **kw: Any) -> Manifest:
    results, site, readme = _board(base)
    return publish_manifest(results, site, readme, repo_type=repo_type, **kw)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_manifest_is_exactly_the_board_files(tmp_path: Path) -> None:
    m = _manifest(tmp_path)
    results, site = tmp_path / "results", tmp_path / "board" / "site"
    expected = ["README.md", *(f"results/{r}" for r in UPLOADED), *(f"site/{s}" for s in SITE)]
    assert [e.path_in_repo for e in m.entries] == sorted(expected)
    for e in m.entries:
        if e.path_in_repo == "README.md":
            assert e.content is not None and e.source == tmp_path / "board" / "README.md"
            data = e.content
        else:
            root, prefix = (results, "results/") if e.path_in_repo[0] == "r" else (site, "site/")
            assert e.source == root / e.path_in_repo.removeprefix(prefix) and e.content is None
            data = e.source.read_bytes()
        assert (e.size, e.sha256) == (len(data), _sha(data))
    assert m.total_bytes == sum(e.size for e in m.entries)
    skipped = {p: why for p, why in m.skipped}
    assert set(skipped) == {results / r for r in LEFT_OUT} | {site / ".DS_Store"}
    for rel, why in LEFT_OUT.items():
        assert why in skipped[results / rel], rel
    assert [str(p) for p, _ in m.skipped] == sorted(str(p) for p, _ in m.skipped)
    assert _manifest(tmp_path) == m  # the same folders, the same manifest


def test_dataset_card_is_a_valid_hub_card_around_the_board(tmp_path: Path) -> None:
    m = _manifest(tmp_path, task_licenses={"demo": "Apache-2.0 (generated)", "toy": "apache-2.0"})
    text = next(e.content for e in m.entries if e.path_in_repo == "README.md").decode()
    card = DatasetCard(text)
    assert card.data.license == "apache-2.0"
    assert card.data.pretty_name and "leaderboard" in card.data.tags
    assert BOARD_MD.rstrip("\n") in card.text
    assert "tasks: demo, toy" in card.text
    other = _manifest(tmp_path / "b", task_licenses={"demo": "Apache-2.0", "toy": "CC-BY-4.0"})
    text = next(e.content for e in other.entries if e.path_in_repo == "README.md").decode()
    assert DatasetCard(text).data.license == "other"  # two corpora, two terms


def test_space_serves_the_site_from_the_root(tmp_path: Path) -> None:
    m = _manifest(tmp_path, repo_type="space")
    paths = [e.path_in_repo for e in m.entries]
    assert paths == sorted(["README.md", *SITE, *(f"results/{r}" for r in UPLOADED)])
    text = next(e.content for e in m.entries if e.path_in_repo == "README.md").decode()
    card = SpaceCard(text)
    assert (card.data.sdk, card.data.app_file) == ("static", "index.html")
    assert card.data.license == "other"  # no task licences given
    _write(tmp_path / "board" / "site" / "README.md", "x", T0 + 10)
    results, site, readme = _board(tmp_path / "again")
    _write(tmp_path / "again" / "board" / "site" / "README.md", "x", T0 + 10)
    with pytest.raises(MosrmError, match=r"site/README\.md: would be uploaded as 'README\.md'"):
        publish_manifest(results, site, readme, repo_type="space")
    assert publish_manifest(results, site, readme).entries  # a dataset keeps it under site/


@pytest.mark.parametrize("where", ["results", "site", "results-dir", "site-dir"])
def test_a_symlink_is_refused(tmp_path: Path, where: str) -> None:
    results, site, readme = _board(tmp_path)
    outside = _write(tmp_path / "secret.txt", "not for the Hub")
    if where == "results":
        link = results / "alpha" / "demo.run.json"
        link.unlink()
        link.symlink_to(outside)
    elif where == "site":
        (link := site / "plots" / "other.svg").symlink_to(outside)
    elif where == "results-dir":
        (link := results / "gamma").symlink_to(tmp_path, target_is_directory=True)
    else:
        (link := site / "data").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(MosrmError, match=f"^{re.escape(str(link))}: a symlink in the .* folder"):
        publish_manifest(results, site, readme)


@pytest.mark.parametrize("rel", ["results/alpha/clip.wav", "site/plots/clip.flac"])
def test_audio_is_refused(tmp_path: Path, rel: str) -> None:
    results, site, readme = _board(tmp_path)
    path = _write((results.parent if rel.startswith("results") else site.parent) / rel, b"RIFF", T0)
    with pytest.raises(
        MosrmError, match=f"^{re.escape(str(path))}: audio in the .* never published"
    ):
        publish_manifest(results, site, readme)


def test_a_result_marked_partial_is_refused(tmp_path: Path) -> None:
    results, site, readme = _board(tmp_path)
    path = _write(results / "beta" / "demo.json", '{"partial": {"limit": 5}}')
    with pytest.raises(MosrmError, match=f"^{re.escape(str(path))}: field 'partial' is set"):
        publish_manifest(results, site, readme)


def test_a_result_marked_filtered_is_refused(tmp_path: Path) -> None:
    results, site, readme = _board(tmp_path)
    path = _write(results / "beta" / "demo.json", '{"reliability_filter": {"min": 0.9}}')
    with pytest.raises(
        MosrmError, match=f"^{re.escape(str(path))}: field 'reliability_filter' is set"
    ):
        publish_manifest(results, site, readme)


def test_a_missing_or_stale_board_is_refused(tmp_path: Path) -> None:
    results, site, readme = _board(tmp_path)
    _write(results / "beta" / "demo.json", '{"newer": true}', T0 + 20)
    with pytest.raises(MosrmError, match=r"is older than .*beta/demo\.json.*run `mosrm board`"):
        publish_manifest(results, site, readme)
    os.utime(site / "index.html", (T0 + 30, T0 + 30))
    with pytest.raises(MosrmError, match=r"README\.md is older than .*run `mosrm board`"):
        publish_manifest(results, site, readme)
    os.utime(readme, (T0 + 30, T0 + 30))
    assert publish_manifest(results, site, readme).entries
    (site / "index.html").unlink()
    with pytest.raises(MosrmError, match=r"index\.html: no site to publish: run `mosrm board`"):
        publish_manifest(results, site, readme)
    with pytest.raises(MosrmError, match=r"absent: no such folder \(results folder\)"):
        publish_manifest(tmp_path / "absent", site, readme)
    (tmp_path / "empty").mkdir()
    with pytest.raises(MosrmError, match=r"empty: no results to publish"):
        publish_manifest(tmp_path / "empty", site, readme)


def test_upload_is_one_create_commit_with_exactly_the_manifest(
    tmp_path: Path, online: None, recorder: Recorder
) -> None:
    m = _manifest(tmp_path)
    info = publish(m, "org/board", "dataset", revision="v1", commit_message="msg")
    assert info.commit_url.endswith("/commit/abc")
    assert len(recorder.calls) == 1
    call = recorder.calls[0]
    ops = call.pop("operations")
    assert call == {
        "api_token": "hf_test_token",
        "repo_id": "org/board",
        "repo_type": "dataset",
        "revision": "v1",
        "commit_message": "msg",
        "token": "hf_test_token",
    }
    assert all(type(op) is CommitOperationAdd for op in ops)
    assert [op.path_in_repo for op in ops] == [e.path_in_repo for e in m.entries]
    for op, e in zip(ops, m.entries, strict=True):
        sent = op.path_or_fileobj
        assert isinstance(sent, bytes) and _sha(sent) == e.sha256
        assert sent == (e.content if e.content is not None else e.source.read_bytes())


def test_the_token_comes_from_the_login_file(
    tmp_path: Path, online: None, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = _manifest(tmp_path)
    monkeypatch.delenv("HF_TOKEN")
    token_file = _write(tmp_path / "hf" / "token", "hf_from_login\n")
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(token_file))
    publish(m, "org/board", "dataset")
    assert recorder.calls[0]["token"] == "hf_from_login"


def test_no_token_is_refused(
    tmp_path: Path, online: None, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = _manifest(tmp_path)
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(MosrmError, match=r"no Hugging Face token .*org/board: .*hf auth login"):
        publish(m, "org/board", "dataset")
    assert recorder.calls == []


@pytest.mark.parametrize("how", ["env", "read-at-import"])
def test_offline_is_refused(
    tmp_path: Path, online: None, recorder: Recorder, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    m = _manifest(tmp_path)
    if how == "env":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(MosrmError, match=r"^HF_HUB_OFFLINE is set: not uploading to dataset repo"):
        publish(m, "org/board", "dataset")
    assert recorder.calls == []


@pytest.mark.parametrize(
    "repo_id", ["board", "org/", "/board", "a/b/c", "org/bo ard", "org--x/b", "org/b..c", "o/-b"]
)
def test_a_bad_repo_id_is_refused(tmp_path: Path, online: None, recorder: Recorder, repo_id: str):
    with pytest.raises(MosrmError, match=r"--repo-id .*expected ORG/NAME"):
        check_repo_id(repo_id)
    m = _manifest(tmp_path)
    with pytest.raises(MosrmError, match=r"expected ORG/NAME"):
        publish(m, repo_id, "dataset")
    assert recorder.calls == []
    assert check_repo_id("my-org/mosrm_bench.board") == "my-org/mosrm_bench.board"


def test_a_changed_file_or_another_repo_type_is_refused(
    tmp_path: Path, online: None, recorder: Recorder
) -> None:
    m = _manifest(tmp_path)
    with pytest.raises(MosrmError, match=r"built for a dataset repo, not a space"):
        publish(m, "org/board", "space")
    (tmp_path / "results" / "beta" / "demo.json").write_text("{}")
    with pytest.raises(MosrmError, match=r"beta/demo\.json: changed since the manifest"):
        publish(m, "org/board", "dataset")
    assert recorder.calls == []


def _http_error(cls: type[Exception], status: int) -> Exception:
    import huggingface_hub.utils

    httpx = huggingface_hub.utils.httpx  # the HTTP client module huggingface_hub uses
    request = httpx.Request("POST", "https://huggingface.co/api/datasets/org/board/commit/main")
    return cls("boom\nsecond line", response=httpx.Response(status, request=request))


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (
            lambda: _http_error(huggingface_hub.errors.RepositoryNotFoundError, 404),
            r"^dataset repo org/board not found, .*create it first",
        ),
        (
            lambda: _http_error(huggingface_hub.errors.HfHubHTTPError, 403),
            r"^dataset repo org/board: the Hub refused your token \(HTTP 403\).*write access",
        ),
        (
            lambda: _http_error(huggingface_hub.errors.HfHubHTTPError, 500),
            r"^dataset repo org/board: the Hub refused the upload \(HTTP 500\): boom second line",
        ),
        (
            lambda: ConnectionError("no route to host"),
            r"^dataset repo org/board: could not reach the Hub \(ConnectionError: no route to ",
        ),
        (
            lambda: huggingface_hub.utils.httpx.ConnectError("[Errno 101] unreachable"),
            r"^dataset repo org/board: could not reach the Hub \(ConnectError: \[Errno 101\]",
        ),
        (
            lambda: ValueError("Invalid revision"),
            r"^dataset repo org/board: upload failed \(ValueError: Invalid revision\)$",
        ),
    ],
)
def test_hub_errors_become_one_line(
    tmp_path: Path, online: None, monkeypatch: pytest.MonkeyPatch, make: Any, expected: str
) -> None:
    rec = Recorder(error=make())
    rec.install(monkeypatch)
    m = _manifest(tmp_path)
    with pytest.raises(MosrmError, match=expected) as info:
        publish(m, "org/board", "dataset")
    assert "\n" not in str(info.value) and len(rec.calls) == 1


def test_cli_dry_run_lists_the_repo_and_every_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], recorder: Recorder
) -> None:
    _board(tmp_path)  # results/, board/{site,README.md}: the defaults of the workspace --repo
    args = ["--repo", str(tmp_path), "publish", "--repo-id", "org/board", "--dry-run"]
    assert main(args) == 0
    out = capsys.readouterr().out.splitlines()
    m = _manifest(tmp_path / "again")
    assert out[0] == "dataset repo org/board, revision main:"
    listed = out[1 : 1 + len(m.entries)]
    for line, e in zip(listed, m.entries, strict=True):
        size, unit, sha, path = line.split()[:4]
        assert (int(size.replace(",", "")), unit, path) == (e.size, "B", e.path_in_repo)
        if e.content is None:
            assert sha == e.sha256[:12]
    assert out[1 + len(m.entries)].startswith(f"total: {len(m.entries)} files, ")
    assert f"{m.total_bytes:,} bytes" in out[1 + len(m.entries)]
    assert any("demo.partial.json: quick run" in line for line in out)
    assert out[-1] == "dry run: nothing uploaded, no network used"
    assert recorder.calls == []


def test_cli_publishes_and_names_the_commit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], online: None, recorder: Recorder
) -> None:
    _board(tmp_path)
    args = ["--repo", str(tmp_path), "publish", "--repo-id", "org/board", "--repo-type", "space"]
    assert main([*args, "--message", "board of today"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("published: https://")
    (call,) = recorder.calls
    assert (call["repo_type"], call["commit_message"]) == ("space", "board of today")
    assert "index.html" in [op.path_in_repo for op in call["operations"]]
    assert main(["--repo", str(tmp_path), "publish", "--repo-id", "org"]) == 2
    assert "expected ORG/NAME" in capsys.readouterr().err


def test_the_older_summary_md_is_the_card_when_there_is_no_board_readme(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results, site, readme = _board(tmp_path)
    readme.unlink()
    _write(results / "summary.md", BOARD_MD, T0 + 10)
    assert main(["--repo", str(tmp_path), "publish", "--repo-id", "org/b", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"README.md  (card + {results / 'summary.md'})" in out
    assert "summary.md: not a" not in out  # it is uploaded, as the card


def test_overlapping_folders_are_refused(tmp_path: Path) -> None:
    results, site, readme = _board(tmp_path)
    with pytest.raises(MosrmError, match=r"the site folder and the results folder .* overlap"):
        publish_manifest(results, results.parent, readme)


def test_a_bug_keeps_its_traceback(
    tmp_path: Path, online: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    Recorder(error=TypeError("create_commit() got an unexpected keyword")).install(monkeypatch)
    with pytest.raises(TypeError, match="unexpected keyword"):
        publish(_manifest(tmp_path), "org/board", "dataset")


def test_only_and_exclude_choose_submissions_and_list_the_rest(tmp_path: Path) -> None:
    results, site, readme = _board(tmp_path)
    m = publish_manifest(results, site, readme, exclude=["beta"])
    uploaded = {e.path_in_repo for e in m.entries}
    assert "results/alpha/demo.json" in uploaded
    assert not any(p.startswith("results/beta/") for p in uploaded)
    skipped = {p: why for p, why in m.skipped}
    for rel in ("beta/demo.json", "beta/demo.predictions.parquet"):
        assert "not selected (--only / --exclude)" in skipped[results / rel]
    assert any("not uploaded" in line for line in m.describe("org/board"))
    assert {
        e.path_in_repo for e in publish_manifest(results, site, readme, only=["alpha"]).entries
    } == uploaded
    with pytest.raises(MosrmError, match=r"--only: no submission gamma in"):
        publish_manifest(results, site, readme, only=["gamma"])
    # a board that still shows a left-out submission is not the board of what is published
    board = {"tasks": [{"rows": [{"submission": "alpha"}, {"submission": "beta"}]}]}
    _write(site / "board.json", json.dumps(board), T0 + 10)
    with pytest.raises(MosrmError, match=r"the board shows beta, whose results are left out"):
        publish_manifest(results, site, readme, exclude=["beta"])
    assert publish_manifest(results, site, readme).entries  # all of them: the board fits


# -- a trained model folder to a model repo (`mosrm publish --model`) ------------------------------


def _trained_folder(tmp_path: Path) -> Path:
    """A committed reference model's folder, with what a training leaves beside it."""
    import shutil

    from benchmark.scoring.trust import REFERENCE

    folder = tmp_path / "demo-bt"
    shutil.copytree(REFERENCE / "demo-bt", folder)
    _write(folder / "checkpoint" / "state.json", "{}")
    _write(folder / ".cache" / "x", "y")
    return folder


def test_publish_model_uploads_the_folder_but_its_resume_state_in_one_commit(
    tmp_path: Path, online: None, recorder: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _trained_folder(tmp_path)
    args = ["publish", "--model", str(folder), "--repo-id", "org/demo-bt"]
    assert main([*args, "--dry-run"]) == 0
    listing = capsys.readouterr().out
    assert "model repo org/demo-bt" in listing and "nothing uploaded" in listing
    assert "checkpoint: resume state, not the model" in listing
    assert recorder.calls == []
    assert main(args) == 0
    (call,) = recorder.calls
    assert call["repo_type"] == "model" and call["repo_id"] == "org/demo-bt"
    sent = {op.path_in_repo: op.path_or_fileobj for op in call["operations"]}
    want = sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and not p.relative_to(folder).as_posix().startswith(("checkpoint/", "."))
    )
    assert sorted(set(sent) - {"README.md"}) == want
    for rel in want:  # the bytes sent are the folder's
        assert sent[rel] == (folder / rel).read_bytes(), rel
    card = sent["README.md"].decode()
    assert card.startswith("---\nlibrary_name: mosrm-bench\n")
    assert (folder / "card.md").read_text().strip() in card and "mosrm evaluate" in card
    assert "trained-on:demo" in card


def test_publish_model_refuses_pickles_and_non_submissions(
    tmp_path: Path, online: None, recorder: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _trained_folder(tmp_path)
    _write(folder / "encoder" / "pytorch_model.bin", b"\x80\x04pickle")
    assert main(["publish", "--model", str(folder), "--repo-id", "org/x"]) != 0
    err = capsys.readouterr().err.strip()
    assert "a pickle file in the model folder" in err and len(err.splitlines()) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["publish", "--model", str(empty), "--repo-id", "org/x", "--dry-run"]) != 0
    assert "not a submission folder" in capsys.readouterr().err
    assert recorder.calls == []


def test_publish_carries_the_probe_records_the_robustness_tables_read(tmp_path: Path) -> None:
    """The board's robustness tables are built from `<submission>/probes/<task>.json`: a
    published results folder must hold them, or the published board would not re-derive."""
    import shutil

    from benchmark.leaderboard.publish import publish_manifest

    board = Path(__file__).resolve().parents[1] / "leaderboard"
    results, site = tmp_path / "results", tmp_path / "site"
    shutil.copytree(board / "results", results)
    shutil.copytree(board / "site", site)
    readme = _write(tmp_path / "README.md", (board / "README.md").read_text(), mtime=T0 + 10)
    for p in results.rglob("*"):
        os.utime(p, (T0, T0))
    for p in site.rglob("*"):
        os.utime(p, (T0 + 10, T0 + 10))
    (results / "orphan" / "probes").mkdir(parents=True)
    _write(results / "orphan" / "probes" / "demo.json", "{}", mtime=T0)
    manifest = publish_manifest(results, site, readme)
    sent = {e.path_in_repo for e in manifest.entries}
    probes = sorted(p.relative_to(results).as_posix() for p in results.glob("*/probes/demo.json"))
    assert len(probes) == 12
    assert {f"results/{p}" for p in probes if not p.startswith("orphan/")} <= sent
    assert "results/orphan/probes/demo.json" not in sent
    assert any("probes without the result" in why for _, why in manifest.skipped)
