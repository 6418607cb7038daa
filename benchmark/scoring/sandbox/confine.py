"""How one sandbox is started: who it runs as, what it sees, what bounds it. Pure planning plus the
clean-up of what a start made; `benchmark.scoring.sandbox.host` runs the plan.

The layers, outermost first (each one tested by an attack in tests/test_adversarial.py):

- a cgroup for the sandbox as a whole (memory including its /tmp, processes, CPUs) where this
  machine lets the harness make one (`benchmark.scoring.sandbox.cgroups`), else per-process rlimits, a size
  cap on /tmp and a watchdog (`benchmark.scoring.sandbox.watch`);
- a user that is not root outside any namespace: when the harness runs as root, the launcher
  (`benchmark.scoring.sandbox.launch`) drops to `SANDBOX_UID` (nobody, unless `$MOSRM_SANDBOX_UID` says
  otherwise) before bubblewrap starts, after binding the trees the child needs into a private
  staging folder that user can reach; so /proc/sys, /sys and every uid-checked file refuse it, and
  `RLIMIT_NPROC` binds;
- bubblewrap: new user, PID, network, IPC, UTS and cgroup namespaces, no capabilities, no new
  privileges, nested user namespaces disabled, a read-only view of what the child needs, a private
  size-capped /tmp;
- a seccomp filter (`benchmark.scoring.sandbox.seccomp`) refusing the system calls a scorer never needs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.scoring.sandbox import cgroups
from benchmark.scoring.sandbox.seccomp import program

if TYPE_CHECKING:
    from collections.abc import Sequence

    from benchmark.scoring.sandbox.command import SandboxLimits

SANDBOX_UID_ENV = "MOSRM_SANDBOX_UID"
DEFAULT_SANDBOX_UID = 65534  # nobody
LAUNCHER = Path(__file__).with_name("launch.py")


def sandbox_ids() -> tuple[int, int] | None:
    """(uid, gid) the sandbox drops to when the harness is root; None when it is not root (an
    unprivileged user is already what the sandbox needs, and cannot change user anyway)."""
    if os.geteuid() != 0:
        return None
    raw = os.environ.get(SANDBOX_UID_ENV, "").strip()
    uid = int(raw) if raw.isdigit() else DEFAULT_SANDBOX_UID
    if uid == 0:
        raise ValueError(f"${SANDBOX_UID_ENV} must not be 0: the sandbox never runs as root")
    return uid, uid


@dataclass
class Launch:
    """A started sandbox's plan: the argv to run, fds to pass, and what to clean up afterwards."""

    argv: list[str]
    pass_fds: tuple[int, ...] = ()
    stage: Path | None = None
    cgroup: cgroups.SandboxCgroup | None = None
    record: dict[str, Any] = field(default_factory=dict)
    _fds: list[int] = field(default_factory=list)
    copies: list[Path] = field(default_factory=list)

    def started(self) -> None:
        """The launcher has the fds now: close this process's copies."""
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []

    def copy(self, tree: Path) -> Path:
        """A copy of `tree` that every user can read (files 0644, folders 0755, symlinks kept),
        removed by `cleanup`."""
        from benchmark.paths import home

        parent = home() / "sandbox-copies"
        parent.mkdir(parents=True, exist_ok=True)
        made = Path(tempfile.mkdtemp(prefix="copy-", dir=parent))
        self.copies.append(made)
        dest = made / "tree"
        if tree.is_dir():
            shutil.copytree(tree, dest, symlinks=True)
        else:
            shutil.copy2(tree, dest)
        for path in [dest, *dest.rglob("*")] if dest.is_dir() else [dest]:
            if not path.is_symlink():
                os.chmod(path, 0o755 if path.is_dir() else 0o644)
        os.chmod(made, 0o755)
        return dest

    def cleanup(self) -> None:
        self.started()
        for made in self.copies:
            shutil.rmtree(made, ignore_errors=True)
        self.copies = []
        if self.cgroup is not None:
            self.cgroup.remove()
            self.cgroup = None
        if self.stage is not None:
            with contextlib.suppress(OSError):
                self.stage.rmdir()  # its tmpfs lived in the launcher's own mount namespace
            self.stage = None


def _rlimits(limits: SandboxLimits, device: str) -> dict[str, tuple[int, int]]:
    mb = 1 << 20
    out: dict[str, tuple[int, int]] = {"core": (0, 0)}
    if limits.memory_mb is not None and not device.startswith("cuda"):
        # CUDA reserves address space far beyond real use: there only the cgroup counts memory
        out["as"] = (limits.memory_mb * mb, limits.memory_mb * mb)
    if limits.cpu_seconds is not None:
        # soft < hard, so the kernel sends SIGXCPU (reported as such) before SIGKILL
        out["cpu"] = (limits.cpu_seconds, limits.cpu_seconds + 5)
    if limits.file_mb is not None:
        out["fsize"] = (limits.file_mb * mb, limits.file_mb * mb)
    if limits.processes is not None:
        out["nproc"] = (limits.processes, limits.processes)
    return out


def tmp_bytes(limits: SandboxLimits) -> int | None:
    """The size cap of the sandbox's private /tmp: `tmp_mb`, else its memory limit."""
    mb = limits.tmp_mb if limits.tmp_mb is not None else limits.memory_mb
    return None if mb is None else mb << 20


def plan(
    child: Sequence[str],
    limits: SandboxLimits,
    *,
    bwrap: str | None,
    folder: Path,
    device: str,
    extra_ro: Sequence[Path] = (),
) -> Launch:
    """The launcher command for `child` (a Python command line): confined by bubblewrap when
    `bwrap` is given, else only bounded (`--unsafe-no-sandbox`: the user's own permissions)."""
    from benchmark.scoring.sandbox.command import bwrap_command

    ids = sandbox_ids()
    hier = cgroups.hierarchy()
    launch = Launch(argv=[])
    spec: dict[str, Any] = {"rlimits": _rlimits(limits, device)}
    record: dict[str, Any] = {
        "mechanism": "rlimits" if hier is None else hier.mechanism,
        "sandboxed": bwrap is not None,
    }
    try:
        if hier is not None:
            launch.cgroup = cgroups.SandboxCgroup.create(
                hier, limits.memory_mb, limits.processes, limits.cpus
            )
            spec["cgroup_procs"] = launch.cgroup.procs_files
        if bwrap is None:
            spec["argv"] = list(child)
            record.update(uid=os.geteuid(), seccomp=False)
        else:
            staged: dict[str, str] = {}
            if ids is not None:
                launch.stage = Path(tempfile.mkdtemp(prefix="mosrm-stage-"))
                os.chmod(launch.stage, 0o755)
                trees = sorted({str(p) for p in _readable_trees(folder, extra_ro)})
                sources = {}
                for t in trees:
                    sources[t] = t
                    if t in {str(p) for p in (folder, *extra_ro)} and not world_readable(Path(t)):
                        # e.g. weights saved 0600 by root: the sandbox's user reads a copy
                        sources[t] = str(launch.copy(Path(t)))
                record["copied"] = sorted(t for t in trees if sources[t] != t)
                spec["stage"] = str(launch.stage)
                spec["binds"] = [[sources[t], f"t{i}"] for i, t in enumerate(trees)]
                staged = {t: str(launch.stage / f"t{i}") for i, t in enumerate(trees)}
                spec["uid"], spec["gid"] = ids
            filt = program()
            cmd = bwrap_command(
                bwrap,
                folder,
                device,
                extra_ro,
                staged=staged,
                tmp_size=tmp_bytes(limits),
            )
            if filt is not None:
                r, w = os.pipe()
                os.write(w, filt)  # a few hundred bytes: fits the pipe's buffer
                os.close(w)
                launch._fds.append(r)
                launch.pass_fds = (r,)
                cmd += ["--seccomp", str(r)]
            spec["argv"] = [*cmd, *child]
            record.update(
                uid=ids[0] if ids is not None else os.geteuid(),
                seccomp=filt is not None,
            )
    except BaseException:
        launch.cleanup()
        raise
    launch.argv = [sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(spec)]
    launch.record = record
    return launch


def world_readable(tree: Path) -> bool:
    """Whether a user that is neither the owner nor in the group can read all of `tree`."""
    import stat

    def ok(path: Path) -> bool:
        try:
            mode = path.stat().st_mode
        except OSError:
            return False
        need = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
        return mode & need == need

    if not ok(tree):
        return False
    if tree.is_dir():
        for dirpath, dirnames, filenames in os.walk(tree):
            for name in (*dirnames, *filenames):
                if not ok(Path(dirpath) / name):
                    return False
    return True


def _readable_trees(folder: Path, extra_ro: Sequence[Path]) -> list[Path]:
    from benchmark.scoring.sandbox.command import python_roots

    return [*python_roots(), folder, *extra_ro]


def launcher_works(bwrap: str) -> bool:
    """Whether the real start path (launcher, staging, dropping root, bubblewrap with its
    namespaces and the seccomp filter) runs a trivial command here."""
    import subprocess

    from benchmark.scoring.sandbox.command import SandboxLimits

    folder = Path(tempfile.mkdtemp(prefix="mosrm-probe-"))
    os.chmod(folder, 0o755)
    launch = plan(
        [sys.executable, "-I", "-S", "-c", "pass"],
        SandboxLimits(),
        bwrap=bwrap,
        folder=folder,
        device="cpu",
    )
    try:
        done = subprocess.run(
            launch.argv, pass_fds=launch.pass_fds, capture_output=True, timeout=60, cwd="/"
        )
        return done.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
    finally:
        launch.cleanup()
        shutil.rmtree(folder, ignore_errors=True)
