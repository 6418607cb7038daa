"""`make bench` ends with what each benchmark measured (its `extra_info`: ratios, seconds, peak
memory), one line per benchmark, so the Performance table of the README can be read off one run
instead of pytest-benchmark's timing columns alone."""

from __future__ import annotations

import json
from typing import Any


def pytest_terminal_summary(terminalreporter: Any, config: Any) -> None:
    session = getattr(config, "_benchmarksession", None)
    rows = [
        (b.name, b.extra_info)
        for b in (getattr(session, "benchmarks", None) or [])
        if getattr(b, "extra_info", None)
    ]
    if not rows:
        return
    terminalreporter.section("measured (extra_info)")
    for name, info in sorted(rows):
        text = json.dumps(info, sort_keys=True, ensure_ascii=False, default=str)
        terminalreporter.write_line(f"{name}: {text}")
