"""`mosrm export-pairs`: the prepared pairs and clip metadata as a Parquet dataset that Hugging Face
`datasets` loads offline, row for row the harness's pair files, byte-reproducible (benchmark.results.export)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from benchmark.cli import main
from benchmark.data.tasks import load_task_file
from benchmark.pairs.prepare import PreparedTask, prepare
from tests.toy_task import settle, write_toy_repo


@pytest.fixture(autouse=True)
def _offline_hf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`datasets` must never reach the network, and keeps its cache in the test's folder."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf" / "datasets"))


def _load(path: str, *args: Any, **kw: Any) -> Any:
    import datasets

    cache = os.environ["HF_DATASETS_CACHE"]
    return datasets.load_dataset(path, *args, cache_dir=cache, **kw)


def _two_split_repo(base: Path) -> Path:
    """The toy task with clips of sentences 0-1 in a `train` split and the rest in `test`."""
    repo = write_toy_repo(base)
    data = base / "data"
    lines = (data / "scores.csv").read_text().splitlines()
    rows = [lines[0]]
    for line in lines[1:]:
        fields = line.split(",")
        if fields[3] in ("sent0", "sent1"):
            fields[4] = "train"
        rows.append(",".join(fields))
    (data / "scores.csv").write_text("\n".join(rows) + "\n")
    settle(data)
    path = repo / "tasks" / "toy.yaml"
    spec = yaml.safe_load(path.read_text())
    spec["data"]["options"]["columns"]["split"] = "split"
    spec["pairs"] = {"train": {"same_system": 10, "cross": 12}, "test": spec["pairs"]["test"]}
    path.write_text(yaml.safe_dump(spec))
    return repo


def _prepare(repo: Path, name: str = "toy", **kw: Any) -> PreparedTask:
    return prepare(load_task_file(repo / "tasks" / f"{name}.yaml"), progress=False, **kw)


def _export(repo: Path, out: Path, *names: str) -> None:
    args = ["--repo", str(repo), "export-pairs", *(names or ["--all"]), str(out)]
    assert main(args) == 0


def _front_matter(card: Path) -> dict[str, Any]:
    text = card.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_export_loads_with_datasets_row_for_row(tmp_path: Path) -> None:
    repo = _two_split_repo(tmp_path)
    prepared = _prepare(repo)  # resampled: the clip table points into the audio cache
    assert set(prepared.pair_files) == {"train", "test"}
    out = tmp_path / "export"
    _export(repo, out, "toy")

    by_config = _load(str(out), "toy")
    by_default = _load(str(out))  # the card marks the first task's pairs as the default config
    assert set(by_config) == set(by_default) == {"train", "test"}
    for split, path in prepared.pair_files.items():
        harness = pq.read_table(path)
        rows = harness.to_pylist()
        assert by_config[split].column_names == harness.column_names
        assert by_config[split].to_list() == rows
        assert by_default[split].to_list() == rows
        one = _load("parquet", data_files={split: str(out / "toy" / f"{split}.parquet")})
        assert one[split].to_list() == rows
        # the exported file is the harness's pair file: its hash is the one results record
        digest = hashlib.sha256((out / "toy" / f"{split}.parquet").read_bytes()).hexdigest()
        assert digest == prepared.pair_sha256[split]
        assert digest in (out / "README.md").read_text()
        assert rows and {"pair_id", "clip_a", "clip_b", "chosen", "delta_mos"} <= set(rows[0])

    clips = _load(str(out), "toy-clips")["clips"].to_list()
    ours = prepared.clips.to_pylist()
    assert [c["clip_id"] for c in clips] == [c["clip_id"] for c in ours]
    for exported, harness in zip(clips, ours, strict=True):
        # the corpus-relative path (the CSV's), not the audio cache's
        assert exported["audio_path"] == harness["clip_id"]
        assert harness["audio_path"].startswith("audio-16k/")
        assert {k: v for k, v in exported.items() if k != "audio_path"} == {
            k: v for k, v in harness.items() if k != "audio_path"
        }
    assert {c["split"] for c in clips} == {"train", "test"}


def test_export_is_byte_identical_and_holds_no_audio_or_local_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = _two_split_repo(tmp_path)
    _prepare(repo)
    first, second = tmp_path / "a", tmp_path / "b"
    _export(repo, first, "toy")
    _prepare(repo)  # rebuilt from scratch: same pairs, same bytes
    _export(repo, second, "toy")
    (first / "toy" / "old.parquet").write_bytes(b"a split an earlier export had")
    _export(repo, first, "toy")  # over an earlier export: stale files go
    assert _files(first) == _files(second)
    assert sorted(_files(first)) == [
        "README.md",
        "toy/clips.parquet",
        "toy/test.parquet",
        "toy/train.parquet",
    ]

    local = (str(tmp_path), os.environ["MOSRM_HOME"], str(Path.home()))
    assert not any(s in (first / "README.md").read_text() for s in local)
    for path in (first / "toy").glob("*.parquet"):
        table = pq.read_table(path)
        assert not any(pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)
                       for f in table.schema)  # fmt: skip
        meta = b"".join(k + v for k, v in (table.schema.metadata or {}).items()).decode()
        assert not any(s in meta for s in local), path
        for name in table.column_names:
            for value in table.column(name).to_pylist():
                if isinstance(value, str):
                    assert not value.startswith("/") and "audio-16k" not in value, (name, value)
                    assert not any(s in value for s in local), (name, value)


def test_card_front_matter_lists_every_config_split_and_licence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _two_split_repo(tmp_path)
    spec = yaml.safe_load((repo / "tasks" / "toy.yaml").read_text())
    synth = {**spec, "name": "synth", "license": "Apache-2.0 (generated here)", "synthetic": True}
    synth["url"] = "https://example.org/synth"
    synth["pairs"] = {"test": {"cross": 20}}
    (repo / "tasks" / "synth.yaml").write_text(yaml.safe_dump(synth))
    (repo / "tasks" / "unprepared.yaml").write_text(yaml.safe_dump({**synth, "name": "unprepared"}))
    _prepare(repo, labels_only=True)
    _prepare(repo, "synth", labels_only=True)
    out = tmp_path / "export"
    _export(repo, out)  # --all: every prepared task
    assert "skip unprepared: not prepared" in capsys.readouterr().out

    head = _front_matter(out / "README.md")
    assert head["license"] == "other"  # CC0 and Apache-2.0: one licence per corpus in the body
    assert "synthetic" in head["tags"]
    configs = {c["config_name"]: c for c in head["configs"]}
    assert set(configs) == {"synth", "synth-clips", "toy", "toy-clips"}
    splits = {n: {f["split"]: f["path"] for f in c["data_files"]} for n, c in configs.items()}
    assert splits == {
        "synth": {"test": "synth/test.parquet"},
        "synth-clips": {"clips": "synth/clips.parquet"},
        "toy": {"train": "toy/train.parquet", "test": "toy/test.parquet"},
        "toy-clips": {"clips": "toy/clips.parquet"},
    }
    assert [c.get("default", False) for c in head["configs"]] == [True, False, False, False]
    for name, files in splits.items():
        loaded = _load(str(out), name)
        assert set(loaded) == set(files)
    body = (out / "README.md").read_text().split("---\n", 2)[2]
    rows = {line.split(" | ")[0].lstrip("| "): line for line in body.splitlines() if "|" in line}
    assert "CC0" in rows["toy"] and "see the corpus's terms" in rows["toy"]
    assert (
        "Apache-2.0 (generated here)" in rows["synth"]
        and "https://example.org/synth" in rows["synth"]
    )
    assert "**yes**" in rows["synth"] and "| no |" in rows["toy"]

    _export(repo, tmp_path / "one", "synth")
    assert _front_matter(tmp_path / "one" / "README.md")["license"] == "apache-2.0"


def test_audio_paths_become_corpus_relative_or_empty(tmp_path: Path) -> None:
    repo = write_toy_repo(tmp_path)
    data = tmp_path / "data"
    lines = (data / "scores.csv").read_text().splitlines()
    lines[1] = lines[1].replace("wav/s0_c0.wav", str(data / "wav" / "s0_c0.wav"), 1)
    lines[2] = lines[2].replace("wav/s0_c1.wav", "/elsewhere/s0_c1.wav", 1)
    (data / "scores.csv").write_text("\n".join(lines) + "\n")
    settle(data)
    prepared = _prepare(repo, labels_only=True)
    out = tmp_path / "export"
    _export(repo, out, "toy")
    paths = dict(
        zip(
            prepared.clips.column("clip_id").to_pylist(),
            pq.read_table(out / "toy" / "clips.parquet").column("audio_path").to_pylist(),
            strict=True,
        )
    )
    absolute = [c for c in paths if c.startswith("/")]
    assert len(absolute) == 2 and paths[str(data / "wav" / "s0_c0.wav")] == "wav/s0_c0.wav"
    assert paths["/elsewhere/s0_c1.wav"] is None
    assert paths["wav/s0_c2.wav"] == "wav/s0_c2.wav"
    assert "1 clip(s) of `toy` lie outside its corpus root" in (out / "README.md").read_text()


def test_unprepared_or_changed_task_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = write_toy_repo(tmp_path)
    out = tmp_path / "export"
    assert main(["--repo", str(repo), "export-pairs", "toy", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "task 'toy' is not prepared" in err
    assert not out.exists()
    assert main(["--repo", str(repo), "export-pairs", "--all", str(out)]) == 2
    assert "no task is prepared" in capsys.readouterr().err
    assert main(["--repo", str(repo), "export-pairs", "--all", "toy", str(out)]) == 2
    assert "either one TASK or --all" in capsys.readouterr().err

    prepared = _prepare(repo, labels_only=True)
    with prepared.pair_files["test"].open("ab") as f:
        f.write(b"\0")
    assert main(["--repo", str(repo), "export-pairs", "toy", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(prepared.pair_files["test"]) in err
    assert not out.exists()
