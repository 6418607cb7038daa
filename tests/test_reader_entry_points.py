"""A corpus reader added by another package, through the `mosrm.readers` entry-point group, without
editing this one (issue 21): found by name, used to prepare a task, and its code covered by the
prepared task's reuse check (an edit to it rebuilds the pairs; no edit reuses them)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
import yaml

from benchmark.data.corpora import READERS, get_reader, reader_code, registered
from benchmark.data.tasks import load_task_file
from benchmark.errors import TaskSpecError
from benchmark.pairs.prepare import prepare
from tests.toy_task import settle, write_wav

READER = '''
import pyarrow as pa

from benchmark.data.corpora.csv_reader import CsvReader

VERSION = {version}


class ToyReader:
    """A third party's reader: the CSV reader's table, under another name."""

    name = "toy_corpus"

    def available(self, root, options):
        return CsvReader().available(root, options)

    def read(self, root, options, *, labels_only=False):
        return CsvReader().read(root, options, labels_only=labels_only)
'''


def _distribution(site: Path, version: int = 1) -> Path:
    """An installed package `mosrm_toy_reader` registering the reader `toy_corpus`."""
    package = site / "mosrm_toy_reader"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(READER.format(version=version))
    info = site / "mosrm_toy_reader-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mosrm-toy-reader\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[mosrm.readers]\ntoy_corpus = mosrm_toy_reader:ToyReader\n"
    )
    return package / "__init__.py"


def _reader_hash(manifest: str) -> str | None:
    import json

    def find(node: object) -> str | None:
        if isinstance(node, dict):
            if "reader_code_sha256" in node:
                return node["reader_code_sha256"]
            return next((h for v in node.values() if (h := find(v)) is not None), None)
        return None

    return find(json.loads(manifest))


def _task(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    rows = ["wav,mos,system,sentence"]
    for s in range(3):
        for c in range(4):
            name = f"wav/s{s}_c{c}.wav"
            write_wav(data / name, seconds=0.3 + 0.05 * c, seed=4 * s + c, amp=0.1 + 0.05 * s)
            rows.append(f"{name},{1.5 + s + 0.1 * c},sys{s},sent{c}")
    (data / "scores.csv").write_text("\n".join(rows) + "\n")
    settle(data)
    columns = {"audio": "wav", "score": "mos", "system": "system", "content": "sentence"}
    spec = {
        "name": "toy3p",
        "version": 1,
        "description": "a task read by a third party's reader",
        "reader": "toy_corpus",
        "data": {"root": str(data), "options": {"file": "scores.csv", "columns": columns}},
        "pairs": {"test": {"same_content": 6, "same_system": 8, "cross": 10}},
        "bins": 2,
        "seed": 1,
        "license": "CC0",
        "citation": "none",
    }
    path = tmp_path / "toy3p.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site-packages"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("mosrm_toy_reader", None)


def test_a_reader_from_an_entry_point_prepares_a_task_and_its_code_keys_reuse(tmp_path, site):
    source = _distribution(site)
    assert "toy_corpus" in registered() and "toy_corpus" not in READERS
    assert type(get_reader("toy_corpus")).__name__ == "ToyReader"
    assert reader_code("toy_corpus") == [source] and reader_code("csv") == []

    task = load_task_file(_task(tmp_path))
    first = prepare(task, reuse=True)
    assert first.clips.num_rows == 12 and first.pairs("test").num_rows > 0
    manifest = (first.folder / "manifest.json").read_text()
    assert '"reader_code_sha256": "' in manifest

    again = prepare(task, reuse=True)  # nothing changed: reused, same files
    assert again.pair_sha256 == first.pair_sha256
    assert (again.folder / "manifest.json").stat().st_mtime_ns == (
        first.folder / "manifest.json"
    ).stat().st_mtime_ns

    time.sleep(0.01)
    _distribution(site, version=2)  # the third party edits its reader
    old = time.time() - 60
    os.utime(source, (old, old))
    rebuilt = prepare(task, reuse=True)
    after = (rebuilt.folder / "manifest.json").read_text()
    assert after != manifest  # not reused: rebuilt, because the reader's code hash changed
    hashes = [_reader_hash(m) for m in (manifest, after)]
    assert None not in hashes and hashes[0] != hashes[1]
    assert rebuilt.pair_sha256 == first.pair_sha256  # same data, same pairs


def test_an_unknown_or_broken_reader_is_one_line(tmp_path, site):
    with pytest.raises(TaskSpecError, match=r"unknown reader 'nope' \(known readers: .*csv"):
        get_reader("nope")
    _distribution(site)
    (site / "mosrm_toy_reader" / "__init__.py").write_text("raise ImportError('no such thing')\n")
    with pytest.raises(
        TaskSpecError, match=r"reader 'toy_corpus' .* cannot be loaded: ImportError"
    ):
        get_reader("toy_corpus")
