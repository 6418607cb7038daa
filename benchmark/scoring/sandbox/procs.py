"""The processes below a sandbox's launcher, read from /proc: one reader for the watch (which sums
their CPU time and memory) and for the host (which kills every one of them at the end)."""

from __future__ import annotations

import os
from dataclasses import dataclass

_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStat:
    ppid: int
    state: str
    start: int
    """Start time in clock ticks since boot: with the pid, names one process even if the pid is
    reused later."""
    cpu_seconds: float
    """CPU time of the process and of the children it has reaped."""


def stat(pid: int) -> ProcStat | None:
    """The process's /proc/PID/stat, or None if there is no such process (any more)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
        fields = raw[raw.rindex(b")") + 2 :].split()
        ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
        return ProcStat(int(fields[1]), fields[0].decode(), int(fields[19]), ticks / _TICK)
    except (OSError, ValueError, IndexError):
        return None


def descendants(root: int) -> list[tuple[int, int]]:
    """(pid, start time) of every process below `root`, parents before children (orphans inside
    a PID namespace are re-parented to its init, which is below the launcher, so none escapes)."""
    children: dict[int, list[tuple[int, int]]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (st := stat(int(name))) is not None:
            children.setdefault(st.ppid, []).append((int(name), st.start))
    found, todo = [], [root]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += [pid for pid, _ in kids]
    return found
