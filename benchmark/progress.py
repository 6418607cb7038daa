"""Progress of long steps (scoring, resampling, training, downloads), designed once.

A terminal gets a live bar (tqdm). Anything else (a log file, CI, a notebook's captured stderr)
gets two lines per step through `logging` (logger `benchmark.progress`): when it starts and when
it ends, with the count and the time, instead of a bar redrawn into a file. The library never
writes to the terminal itself: without the CLI (which attaches a handler, `-v` for more,
`--quiet` for none) those lines go wherever the caller's logging sends them, nowhere by default.
`quiet()` also silences the bars of the libraries underneath (Hugging Face downloads,
transformers, anything on tqdm).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)

QUIET_ENV = {
    "TQDM_DISABLE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
}
"""What silences the bars and advice of the libraries underneath, read when they are imported."""


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """No bars from here or from the libraries underneath while the block runs: the environment
    they read when imported (and a sandboxed child inherits, `scoring.sandbox.command`), and the
    switches of those already imported, which read it once ("Loading weights" of transformers)."""
    saved = {key: os.environ.get(key) for key in QUIET_ENV}
    os.environ.update(QUIET_ENV)
    restore = _silence_imported()
    try:
        yield
    finally:
        restore()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _silence_imported() -> Any:
    """Turn off the bars of Hugging Face libraries already imported; returns the undo."""
    undo = []
    hub = sys.modules.get("huggingface_hub.utils")
    if hub is not None and not hub.are_progress_bars_disabled():
        hub.disable_progress_bars()
        undo.append(hub.enable_progress_bars)
    tf = sys.modules.get("transformers.utils.logging")
    if tf is not None and tf.is_progress_bar_enabled():
        tf.disable_progress_bar()
        undo.append(tf.enable_progress_bar)

    def restore() -> None:
        for fn in undo:
            fn()

    return restore


class _Null:
    """A step nobody watches."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **values: Any) -> None:
        pass

    def close(self) -> None:
        pass


class _Lines:
    """A step reported as a line when it starts and a line when it ends."""

    def __init__(self, total: int | None, desc: str, unit: str, initial: int) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.n = initial
        self.postfix = ""
        self.started = time.perf_counter()
        self.closed = False
        of = "" if total is None else f" of {total}"
        log.info("%s: started (%d%s %s)", desc, initial, of, unit)

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        of = "" if self.total is None else f"/{self.total}"
        extra = f", {self.postfix}" if self.postfix else ""
        seconds = time.perf_counter() - self.started
        log.info("%s: done (%d%s %s in %.1f s%s)", self.desc, self.n, of, self.unit, seconds, extra)


def bar(
    total: int | None,
    desc: str,
    unit: str,
    *,
    enabled: bool = True,
    initial: int = 0,
    **tqdm_options: Any,
) -> Any:
    """A progress reporter with tqdm's `update`, `set_postfix` and `close`: a bar on a terminal,
    two log lines elsewhere, nothing when not `enabled` or after `quiet()`."""
    if not enabled or os.environ.get("TQDM_DISABLE") == "1":
        return _Null()
    if sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(
            total=total, desc=desc, unit=unit, initial=initial, file=sys.stderr, **tqdm_options
        )
    return _Lines(total, desc, unit, initial)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time (a redirected or captured stream too)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


@contextlib.contextmanager
def to_terminal(level: int, *, silent: bool = False) -> Iterator[None]:
    """The CLI's logging for one command: the package's messages to stderr at `level`, as plain
    lines (and with `silent`, `quiet()` for the libraries' bars); all taken down afterwards, so a
    process that also uses the Python API (a notebook, a test run) keeps its own logging."""
    logger = logging.getLogger("benchmark")
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        with quiet() if silent else contextlib.nullcontext():
            yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
