"""Whole-sandbox limits: a cgroup per sandbox where this machine lets the harness make one.

Per-process rlimits do not bound a sandbox: two processes of 1000 MiB under a 1200 MiB address-space
limit, plus files in the private /tmp (a tmpfs is memory), hold three times the limit. A cgroup
counts all of it (tmpfs pages are charged to the cgroup that wrote them) and the kernel's OOM killer
acts inside it. Which hierarchy is usable is *probed*, not read off the mounts: a test cgroup is
made, its limits written and read back, and removed. In order of preference:

- cgroup v2, where our own cgroup delegates the memory and pids controllers to its children;
- cgroup v1, where the memory and pids hierarchies (and cpu/cpuacct for CPU) are writable;
- none: the sandbox falls back to per-process rlimits, a size cap on its /tmp and a watchdog that
  sums the resident memory of every process in the sandbox's PID namespace (`benchmark.scoring.sandbox.watch`).

`MOSRM_SANDBOX_CGROUP=none` forces the fallback (tests use it; so can an operator who prefers it).
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

FORCE_ENV = "MOSRM_SANDBOX_CGROUP"
"""'none' forces the rlimit fallback; 'v1' or 'v2' restricts the probe to that version."""


@dataclass(frozen=True)
class Hierarchy:
    """Where to make sandbox cgroups: one folder per controller (v1) or one folder (v2)."""

    version: int
    parents: dict[str, Path]  # controller -> the folder new cgroups go into (v2: one, key "")

    @property
    def mechanism(self) -> str:
        return f"cgroup-v{self.version}"


def _own_paths() -> dict[str, str]:
    """controller -> our cgroup path, from /proc/self/cgroup ('' for the v2 unified entry)."""
    out: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for c in controllers.split(",") if controllers else [""]:
                out[c] = path
    return out


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, fs type, super options) of every cgroup mount, from /proc/self/mountinfo."""
    out = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if len(fields) < 5 or len(rfields) < 3 or rfields[0] not in ("cgroup", "cgroup2"):
                continue
            point = fields[4].replace("\\040", " ")
            out.append((point, rfields[0], set(rfields[2].split(","))))
    return out


def _probe_dir(parent: Path, files: dict[str, str]) -> bool:
    """Make a test cgroup under `parent`, write each limit file and read it back, remove it."""
    test = parent / f"mosrm-probe-{os.getpid()}"
    try:
        test.mkdir()
    except OSError:
        return False
    try:
        for name, value in files.items():
            (test / name).write_text(value)
            if (test / name).read_text().split()[0] != value.split()[0]:
                return False
        return True
    except OSError:
        return False
    finally:
        with contextlib.suppress(OSError):
            test.rmdir()


def _v2() -> Hierarchy | None:
    own = _own_paths().get("")
    for point, fstype, _ in _mounts():
        if fstype != "cgroup2" or own is None:
            continue
        parent = Path(point) / own.lstrip("/")
        try:
            delegated = set((parent / "cgroup.subtree_control").read_text().split())
        except OSError:
            continue
        if not {"memory", "pids"} <= delegated:
            continue
        probe = {"memory.max": str(64 << 20), "pids.max": "64", "memory.swap.max": "0"}
        if not (parent / "cgroup.subtree_control").exists() or not _probe_dir(parent, probe):
            continue
        return Hierarchy(2, {"": parent})
    return None


def _v1() -> Hierarchy | None:
    own = _own_paths()
    parents: dict[str, Path] = {}
    for point, fstype, opts in _mounts():
        if fstype != "cgroup":
            continue
        for controller in ("memory", "pids", "cpu", "cpuacct"):
            if controller in opts and controller in own and controller not in parents:
                parents[controller] = Path(point) / own[controller].lstrip("/")
    if "memory" not in parents or "pids" not in parents:
        return None
    if not _probe_dir(parents["memory"], {"memory.limit_in_bytes": str(64 << 20)}):
        return None
    if not _probe_dir(parents["pids"], {"pids.max": "64"}):
        return None
    for controller in ("cpu", "cpuacct"):
        if controller in parents and not _probe_dir(parents[controller], {}):
            del parents[controller]
    return Hierarchy(1, parents)


@functools.cache
def hierarchy() -> Hierarchy | None:
    """The cgroup hierarchy this process can actually make limited cgroups in, or None."""
    force = os.environ.get(FORCE_ENV, "").strip().lower()
    if force == "none":
        return None
    if force in ("", "v2"):
        found = _v2()
        if found is not None or force == "v2":
            return found
    return _v1()


def mechanism() -> str:
    """What bounds a sandbox as a whole here: 'cgroup-v2', 'cgroup-v1' or 'rlimits'."""
    found = hierarchy()
    return "rlimits" if found is None else found.mechanism


_counter = iter(range(1 << 62))


@dataclass
class SandboxCgroup:
    """One sandbox's cgroup(s): limits set at creation, usage read while it runs, killed and removed
    at the end."""

    hier: Hierarchy
    dirs: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def create(
        cls, hier: Hierarchy, memory_mb: int | None, pids: int | None, cpus: float | None
    ) -> SandboxCgroup:
        name = f"mosrm-sandbox-{os.getpid()}-{next(_counter)}"
        made = cls(hier)
        try:
            for controller, parent in hier.parents.items():
                path = parent / name
                path.mkdir()
                made.dirs[controller] = path
            made._limit(memory_mb, pids, cpus)
        except OSError:
            made.remove()
            raise
        return made

    def _write(self, controller: str, name: str, value: str) -> None:
        (self.dirs[controller] / name).write_text(value)

    def _limit(self, memory_mb: int | None, pids: int | None, cpus: float | None) -> None:
        period = 100_000
        # A cgroup competes for CPU as one task of default weight, where its threads outside it
        # would each weigh that much: weighted by the CPUs it may use, the model's threads get
        # the share they would get unconfined beside the harness's own (decoding the next batch)
        width = max(1.0, cpus if cpus is not None else float(os.cpu_count() or 1))
        if self.hier.version == 2:
            with contextlib.suppress(OSError):
                self._write("", "cpu.weight", str(min(10_000, round(100 * width))))
            if memory_mb is not None:
                self._write("", "memory.max", str(memory_mb << 20))
                with contextlib.suppress(OSError):
                    self._write("", "memory.swap.max", "0")
                with contextlib.suppress(OSError):
                    self._write("", "memory.oom.group", "1")
            if pids is not None:
                self._write("", "pids.max", str(pids))
            if cpus is not None:
                with contextlib.suppress(OSError):
                    self._write("", "cpu.max", f"{int(cpus * period)} {period}")
            return
        if memory_mb is not None:
            self._write("memory", "memory.limit_in_bytes", str(memory_mb << 20))
            with contextlib.suppress(OSError):  # only with swap accounting
                self._write("memory", "memory.memsw.limit_in_bytes", str(memory_mb << 20))
            with contextlib.suppress(OSError):
                self._write("memory", "memory.swappiness", "0")
        if pids is not None:
            self._write("pids", "pids.max", str(pids))
        if "cpu" in self.dirs:
            with contextlib.suppress(OSError):
                self._write("cpu", "cpu.shares", str(round(1024 * width)))
        if cpus is not None and "cpu" in self.dirs:
            self._write("cpu", "cpu.cfs_period_us", str(period))
            self._write("cpu", "cpu.cfs_quota_us", str(int(cpus * period)))

    @property
    def procs_files(self) -> list[str]:
        """The files a process writes its pid to, to join every controller's cgroup."""
        return [str(d / "cgroup.procs") for d in self.dirs.values()]

    def _read(self, controller: str, name: str) -> str | None:
        path = self.dirs.get(controller)
        if path is None:
            return None
        try:
            return (path / name).read_text()
        except OSError:
            return None

    def cpu_seconds(self) -> float | None:
        """CPU time used by every process that ever ran in the sandbox (user + system)."""
        if self.hier.version == 2:
            text = self._read("", "cpu.stat")
            for line in (text or "").splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) / 1e6
            return None
        text = self._read("cpuacct", "cpuacct.usage") or self._read("cpu", "cpuacct.usage")
        return None if text is None else int(text) / 1e9

    def memory_peak_bytes(self) -> int | None:
        name = "memory.peak" if self.hier.version == 2 else "memory.max_usage_in_bytes"
        text = self._read("" if self.hier.version == 2 else "memory", name)
        return None if text is None else int(text.split()[0])

    def oom_killed(self) -> bool:
        """Whether the kernel's OOM killer ended a process of this sandbox."""
        if self.hier.version == 2:
            text = self._read("", "memory.events") or ""
        else:
            text = self._read("memory", "memory.oom_control") or ""
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit() and int(value) > 0:
                return True
        return False

    def pids(self) -> list[int]:
        controller = "" if self.hier.version == 2 else "pids"
        text = self._read(controller, "cgroup.procs") or ""
        return [int(p) for p in text.split() if p.isdigit()]

    def kill(self) -> None:
        """SIGKILL every process in the sandbox's cgroup (cgroup.kill where the kernel has it)."""
        if self.hier.version == 2:
            with contextlib.suppress(OSError):
                self._write("", "cgroup.kill", "1")
                return
        for _ in range(50):
            left = self.pids()
            if not left:
                return
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)

    def remove(self) -> None:
        """Kill what is left and remove the cgroup folders (retrying while the kernel lets go)."""
        self.kill()
        for path in self.dirs.values():
            for _ in range(100):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)
        self.dirs = {}
