"""Where mosrm keeps what it generates: one home folder, overridable by `MOSRM_HOME`.

Layout under the home folder:
    data/<task>/            default data root of a task (the demo corpus is synthesised here)
    prepared/<task>/        clips.parquet and <split>.parquet pair files
    prepared/.<task>.lock   held while the task is prepared (processes share its audio cache)
    audio/<task>/           the task's audio resampled once to 16 kHz (shared by every pair set)
    scores.sqlite           per-clip score cache shared by all tasks and runs
    models/<fingerprint>.json   what a sandboxed model reported when built (benchmark.scoring.model_facts)
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The mosrm home folder (`$MOSRM_HOME`, else `$XDG_CACHE_HOME/mosrm`, else ~/.cache/mosrm)."""
    env = os.environ.get("MOSRM_HOME")
    if env:
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "mosrm").resolve()


def default_data_root(task: str) -> Path:
    return home() / "data" / task


def prepared_dir(task: str) -> Path:
    return home() / "prepared" / task


def audio_cache_dir(task: str) -> Path:
    return home() / "audio" / task


def score_cache_path() -> Path:
    return home() / "scores.sqlite"
