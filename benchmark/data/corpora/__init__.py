"""Corpus readers: one small module per native layout, each producing a clip table.

A reader is a class with a `name`, `available(root, options) -> bool` and
`read(root, options, *, labels_only=False) -> pyarrow.Table`. `read` returns a table with (a subset
of) the columns of `benchmark.data.tables.CLIP_SCHEMA`; the caller validates it. `root` is the task's data
root; `options` is the `data.options` mapping of the task YAML. `labels_only=True` means the caller
builds a pair index from metadata alone, so a reader must not require (or check) audio then. Readers
raise `DataError` naming the file, the field and the expected layout for anything malformed, record
deliberately left-out clips with `_native.attach_skips`, and never touch the network.

Readers are looked up lazily by name so that importing `benchmark` stays cheap. Other packages
add readers through the `mosrm.readers` entry-point group (`ENTRY_POINTS`), without editing this
one; a prepared task's reuse check hashes such a reader's source too (`reader_code`).
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


ENTRY_POINTS = "mosrm.readers"
"""The entry-point group through which another package adds readers, without editing this one:
in its pyproject, `[project.entry-points."mosrm.readers"] my_corpus = "my_pkg.reader:MyReader"`,
then `reader: my_corpus` in a task YAML."""


def registered() -> dict[str, str]:
    """Every reader by name: the built-in ones, then those other installed packages add."""
    from importlib.metadata import entry_points

    out = dict(READERS)
    for ep in sorted(entry_points(group=ENTRY_POINTS), key=lambda e: (e.name, e.value)):
        if ep.name in READERS:
            continue  # a built-in name is never taken over (see get_reader for the error)
        out.setdefault(ep.name, ep.value)
    return out


def _target(name: str) -> str:
    if name in READERS:
        return READERS[name]
    from importlib.metadata import entry_points

    found = sorted({ep.value for ep in entry_points(group=ENTRY_POINTS, name=name)})
    if len(found) > 1:
        raise TaskSpecError(
            f"reader '{name}' is registered by more than one installed package ({', '.join(found)}); "
            f"uninstall one (entry-point group '{ENTRY_POINTS}')"
        )
    if not found:
        known = ", ".join(sorted(registered()))
        raise TaskSpecError(f"unknown reader '{name}' (known readers: {known})")
    return found[0]


def get_reader(name: str) -> Reader:
    """The reader called `name`: built in, or added by another package (`ENTRY_POINTS`)."""
    module, _, attr = _target(name).partition(":")
    try:
        return getattr(importlib.import_module(module), attr)()
    except (ImportError, AttributeError) as exc:
        raise TaskSpecError(
            f"reader '{name}' ({module}:{attr}) cannot be loaded: {type(exc).__name__}: {exc}"
        ) from None


def reader_code(name: str) -> list[Path]:
    """The source files of a reader from another package (its top-level package's `.py` files),
    which a prepared task's reuse check hashes; empty for a built-in reader, whose code is this
    package's (`pairs.reuse.code_sha256` covers it)."""
    if name in READERS:
        return []
    import importlib.util

    top = _target(name).partition(":")[0].split(".")[0]
    spec = importlib.util.find_spec(top)
    if spec is None or spec.origin is None:
        return []
    origin = Path(spec.origin)
    if spec.submodule_search_locations:
        roots = [Path(p) for p in spec.submodule_search_locations]
        return sorted(f for r in roots for f in r.rglob("*.py") if "__pycache__" not in f.parts)
    return [origin]
