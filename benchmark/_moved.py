"""Old module paths, from before the package was laid out by stage (CHANGELOG, 0.2.0).

`benchmark.models` and `benchmark.batch` are what submitted code imports (`Batch`, the model
protocols): they stay importable for good, silently. Every other old path (`benchmark.scoring`'s
names, `benchmark.pair_rows`, `benchmark.sandbox`, ...) still imports, as the very module it became,
with a `DeprecationWarning` naming the new path, for one release. Nothing in the package itself may
use an old path (tests/test_layers.py).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from types import ModuleType
from typing import Any

MOVED = {
    "corpora": "data.corpora",
    "download": "data.download",
    "tasks": "data.tasks",
    "tables": "data.tables",
    "audio": "data.audio",
    "audio_cache": "data.audio_cache",
    "packed_audio": "data.packed_audio",
    "safe_yaml": "data.safe_yaml",
    "batch": "data.batch",
    "pair_rows": "pairs.rows",
    "pair_ids": "pairs.ids",
    "triplets": "pairs.triplets",
    "reliability": "pairs.reliability",
    "reuse": "pairs.reuse",
    "score_cache": "scoring.cache",
    "score_journal": "scoring.journal",
    "prefetch": "scoring.prefetch",
    "sharding": "scoring.sharding",
    "models": "scoring.models",
    "sandbox": "scoring.sandbox",
    "smoke": "scoring.smoke",
    "predictions_file": "scoring.predictions_file",
    "model_facts": "scoring.model_facts",
    "trust": "scoring.trust",
    "hub_weights": "scoring.hub_weights",
    "metrics": "stats.metrics",
    "uncertainty": "stats.uncertainty",
    "ceiling": "stats.ceiling",
    "diagnostics": "stats.diagnostics",
    "failures": "results.failures",
    "report": "results.report",
    "hardware": "results.hardware",
    "export": "results.export",
    "card_stats": "cards.stats",
    "card_svg": "cards.svg",
    "card_reliability": "cards.reliability",
}
"""Old module (under `benchmark.`) -> the module it became; a package's submodules follow it."""

SAME_NAME = {
    "benchmark.pairs": (
        "benchmark.pairs.build",
        "benchmark.pairs.pools",
        "benchmark.pairs.draw",
        "benchmark.pairs.priors",
    ),
    "benchmark.scoring": (
        "benchmark.scoring.loop",
        "benchmark.scoring.predictions",
        "benchmark.scoring.config",
        "benchmark.scoring.counts",
        "benchmark.scoring.order",
        "benchmark.scoring.buckets",
        "benchmark.scoring.calls",
    ),
    "benchmark.results": ("benchmark.results.schema",),
    "benchmark.cards": ("benchmark.cards.card",),
}
"""Old modules that are now packages of the same name: their names live on in these modules."""

PERMANENT = {"benchmark.models", "benchmark.batch"}

MOVED_NAMES = {
    "benchmark.validate_results": dict.fromkeys(
        ("build_pair_files", "lock_text", "update_lock"), "benchmark.pairs.lock"
    ),
    "benchmark.pipeline": {
        **dict.fromkeys(
            (
                "CANONICAL_RANGE",
                "LIMIT_LABEL",
                "PreparedTask",
                "last_data_root",
                "limit_pairs",
                "merge_counts",
                "prepare",
                "probe_audio",
                "rescale_to_canonical",
            ),
            "benchmark.pairs.prepare",
        ),
        "PARTIAL_SUFFIX": "benchmark.results.schema",
    },
}
"""Names that left a module that stays: module -> {name: the module that holds it now}."""


def new_name(old: str) -> str | None:
    """The module an old dotted path became, or None if it did not move."""
    head, _, rest = old.removeprefix("benchmark.").partition(".")
    if not old.startswith("benchmark.") or head not in MOVED:
        return None
    return "benchmark." + MOVED[head] + (f".{rest}" if rest else "")


def _warn(old: str, new: str) -> None:
    if old not in PERMANENT:
        warnings.warn(
            f"{old} moved to {new}; the old path goes in the next release",
            DeprecationWarning,
            stacklevel=3,
        )


class _Alias(importlib.abc.Loader):
    """Imports the new module and files it under the old name too (the same module object)."""

    def __init__(self, new: str) -> None:
        self.new = new
        self.module: ModuleType | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        _warn(spec.name, self.new)
        self.module = importlib.import_module(self.new)
        self.spec = self.module.__spec__
        return self.module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = self.spec  # the import system set the old name's spec: put it back


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Any = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        new = new_name(fullname)
        if new is None:
            return None
        return importlib.util.spec_from_loader(fullname, _Alias(new))


def install() -> None:
    """Old paths import (once per interpreter; `benchmark/__init__` calls it)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())


def moved_attribute(module: str, name: str) -> Any:
    """`module.name` for a name that moved out of `module` (`MOVED_NAMES`), with a warning."""
    where = MOVED_NAMES.get(module, {}).get(name)
    if where is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    _warn(f"{module}.{name}", f"{where}.{name}")
    return getattr(importlib.import_module(where), name)


def old_attribute(package: str, name: str) -> Any:
    """`package.name` where `package` was a module before it became a package (`SAME_NAME`):
    the name from the module that holds it now, with a warning; AttributeError otherwise (so
    `from package import submodule` still finds the submodule)."""
    if not name.startswith("__"):
        for where in SAME_NAME[package]:
            module = importlib.import_module(where)
            if hasattr(module, name):
                _warn(f"{package}.{name}", f"{where}.{name}")
                return getattr(module, name)
    raise AttributeError(f"module {package!r} has no attribute {name!r}")
