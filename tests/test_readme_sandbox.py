"""The user guide's 'Your code runs in a sandbox' states the sandbox's limits and defaults as numbers: each one
is checked here against the code, so the table cannot drift from what the harness enforces. (The
measured numbers in that table come from the attack tests named beside them.)"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from benchmark.scoring.sandbox import SandboxLimits, host, protocol, seccomp
from benchmark.scoring.sandbox.watch import Watch

README = Path(__file__).resolve().parents[1] / "docs" / "user-guide.md"


def _section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("**Your code runs in a sandbox.**")
    return text[start : text.index("`mosrm validate submissions/my-rm`", start)]


def test_the_documented_limits_are_the_enforced_ones():
    s = _section()
    d = SandboxLimits()
    assert f"{len(seccomp.DENIED)} calls a scorer never needs fail with EPERM" in s
    assert "uid/gid 65534" in s
    assert f"`--memory-mb`, default {d.memory_mb}" in s
    assert f"`--processes` (default {d.processes}" in s
    assert f"{d.file_mb // 1024} GiB per written file" in s
    assert f"(`--startup-timeout`, {d.startup_timeout:g} s)" in s
    assert f"(`--call-timeout`, {d.call_timeout:g} s)" in s
    assert f"{d.budget_base_s:g} s + {d.budget_per_unit_s:g} s per clip" in s
    assert f"frame headers ≤ {protocol.MAX_REPLY_HEADER >> 10} KiB" in s
    assert f"JSON nested ≤ {protocol.REPLY_DEPTH} deep" in s
    assert f"stderr read in {host.STDERR_CHUNK >> 10} KiB chunks" in s
    assert f"its last {host.STDERR_LINES} lines × {host.STDERR_LINE_CHARS} characters kept" in s
    interval = inspect.signature(Watch).parameters["interval"].default
    assert f"every {interval:g} s" in s
    assert re.search(r"`<f4`/`<f8`", s) and set(protocol.REPLY_DTYPES) == {"<f4", "<f8"}
