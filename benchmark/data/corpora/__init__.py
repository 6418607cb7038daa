"""Corpus readers: one small module per native layout, each producing a clip table.

A reader is a class with a `name`, `available(root, options) -> bool` and
`read(root, options, *, labels_only=False) -> pyarrow.Table`. `read` returns a table with (a subset
of) the columns of `benchmark.data.tables.CLIP_SCHEMA`; the caller validates it. `root` is the task's data
root; `options` is the `data.options` mapping of the task YAML. `labels_only=True` means the caller
builds a pair index from metadata alone, so a reader must not require (or check) audio then. Readers
raise `DataError` naming the file, the field and the expected layout for anything malformed, record
deliberately left-out clips with `_native.attach_skips`, and never touch the network.

Readers are looked up lazily by name so that importing `benchmark` stays cheap.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from benchmark.errors import TaskSpecError


class Reader(Protocol):
    name: str

    def available(self, root: Path, options: dict[str, Any]) -> bool:
        """Whether the corpus metadata is present under `root` (cheap; no audio decoding)."""
        ...

    def read(self, root: Path, options: dict[str, Any], *, labels_only: bool = False) -> pa.Table:
        """The clip table of the corpus under `root`."""
        ...


READERS: dict[str, str] = {
    "demo": "benchmark.data.corpora.demo:DemoReader",
    "csv": "benchmark.data.corpora.csv_reader:CsvReader",
    "bvcc": "benchmark.data.corpora.bvcc:BvccReader",
    "nisqa": "benchmark.data.corpora.nisqa:NisqaReader",
    "singmos": "benchmark.data.corpora.singmos:SingmosReader",
    "somos": "benchmark.data.corpora.somos:SomosReader",
    "tmhint_qi": "benchmark.data.corpora.tmhint_qi:TmhintQiReader",
    "vmc23": "benchmark.data.corpora.vmc23:Vmc23Reader",
}


def get_reader(name: str) -> Reader:
    try:
        target = READERS[name]
    except KeyError:
        known = ", ".join(sorted(READERS))
        raise TaskSpecError(f"unknown reader '{name}' (known readers: {known})") from None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)()
