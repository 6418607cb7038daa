"""A sandbox's resource use while it runs, and the limits no per-process rlimit can enforce.

One daemon thread per started sandbox samples, every `interval` seconds, the CPU time and memory
of the sandbox as a whole: from its cgroup when it has one (`benchmark.scoring.sandbox.cgroups`), else by
summing over the processes under the sandbox's launcher (resident memory from /proc/PID/statm, CPU
time from /proc/PID/stat including the children each has reaped, and the bytes held in its private
/tmp). It ends the sandbox when

- the whole sandbox holds more memory than allowed (the fallback only: a cgroup's own limit acts at
  once, while sampling can overshoot by what the sandbox allocates in one interval, which the
  per-process address-space limit and the /tmp size cap bound), or
- the CPU time of this (submission, task) passes its budget (`benchmark.scoring.sandbox.budget`).

The reason is kept, so the harness reports "CPU budget" or "memory (whole sandbox)" rather than an
anonymous kill.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from benchmark.scoring.sandbox.procs import descendants, stat

if TYPE_CHECKING:
    from benchmark.scoring.sandbox.cgroups import SandboxCgroup

_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Usage:
    cpu_seconds: float
    memory_bytes: int


def process_tree(root: int) -> list[int]:
    """`root` and every process descended from it (`procs.descendants`)."""
    return [root, *(pid for pid, _ in descendants(root))]


def tree_usage(root: int) -> Usage:
    """CPU time and memory of the processes under `root`, plus what its private /tmp holds."""
    cpu, memory, tmp_seen = 0.0, 0, False
    for pid in process_tree(root):
        st = stat(pid)
        if st is not None:
            cpu += st.cpu_seconds
        with contextlib.suppress(OSError, ValueError, IndexError):
            memory += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
        if not tmp_seen and pid != root:
            with contextlib.suppress(OSError):
                vfs = os.statvfs(f"/proc/{pid}/root/tmp")
                used = (vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize
                if used >= 0:
                    memory += used
                    tmp_seen = True
    return Usage(cpu, memory)


class Watch:
    """Samples a started sandbox and ends it (SIGKILL to its process group, or its cgroup) when a
    whole-sandbox limit is passed; `reason` then says which."""

    def __init__(
        self,
        root_pid: int,
        cgroup: SandboxCgroup | None,
        *,
        memory_bytes: int | None,
        interval: float = 0.2,
    ) -> None:
        self.root_pid = root_pid
        self.cgroup = cgroup
        self.memory_bytes = memory_bytes if cgroup is None else None  # a cgroup enforces its own
        self.interval = interval
        self.reason: str | None = None
        self.cpu_limit: Callable[[], float | None] = lambda: None
        self.peak_memory = 0
        self._last = Usage(0.0, 0)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="mosrm-sandbox-watch")
        self._thread.start()

    def usage(self) -> Usage:
        """The sandbox's CPU time so far and its current memory."""
        if self.cgroup is not None:
            cpu = self.cgroup.cpu_seconds()
            if cpu is not None:
                peak = self.cgroup.memory_peak_bytes() or 0
                usage = Usage(cpu, peak)
                with self._lock:
                    self._last = usage
                return usage
        usage = tree_usage(self.root_pid)
        with self._lock:
            # a finished process's CPU time leaves the sum unless reaped inside: never go back
            usage = Usage(max(usage.cpu_seconds, self._last.cpu_seconds), usage.memory_bytes)
            self._last = usage
        return usage

    def cpu_now(self) -> float:
        """The CPU time so far, cheaply: read from the cgroup, else the last sample (a scan of
        /proc costs milliseconds, too much for every model call)."""
        if self.cgroup is not None:
            cpu = self.cgroup.cpu_seconds()
            if cpu is not None:
                return cpu
        return self.last().cpu_seconds

    def last(self) -> Usage:
        with self._lock:
            return self._last

    def _kill(self, reason: str) -> None:
        self.reason = reason
        if self.cgroup is not None:
            self.cgroup.kill()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.root_pid, signal.SIGKILL)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                usage = self.usage()
            except OSError:
                continue
            self.peak_memory = max(self.peak_memory, usage.memory_bytes)
            if self.memory_bytes is not None and usage.memory_bytes > self.memory_bytes:
                mib = self.memory_bytes >> 20
                self._kill(f"memory limit: the sandbox as a whole held more than {mib} MiB")
                return
            limit = self.cpu_limit()
            if limit is not None and usage.cpu_seconds > limit:
                self._kill("CPU budget")
                return

    def stop(self) -> Usage:
        """Stop sampling; the last usage seen (read once more while the processes still exist)."""
        with contextlib.suppress(OSError):
            self.usage()
        self._stop.set()
        self._thread.join(timeout=2)
        return self.last()
