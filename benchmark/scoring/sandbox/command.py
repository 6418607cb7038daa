"""What a sandbox is: its limits (`SandboxLimits`) and the bubblewrap command line that confines one
submission folder. Below both the launch plan (`confine`) and the harness side (`host`), which
both use them; it starts nothing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmark.progress import QUIET_ENV


@dataclass(frozen=True)
class SandboxLimits:
    """Per-submission limits; None leaves one unset (see `benchmark.scoring.sandbox.confine`).

    `memory_mb` bounds the sandbox as a whole (its processes and its /tmp) where a cgroup can be
    made (`benchmark.scoring.sandbox.cgroups`), and each process's address space (RLIMIT_AS) besides; on
    CUDA, where drivers reserve huge address ranges, only the cgroup counts it. `processes` caps
    processes and threads (pids cgroup, and RLIMIT_NPROC, which binds because the sandbox never runs
    as root). `cpus` caps the CPUs it may use at once (cgroup cpu quota), `cpu_seconds` each
    process's CPU time (RLIMIT_CPU); `tmp_mb` sizes the private /tmp (default: `memory_mb`).
    The total time a (submission, task) may take is its budget (`benchmark.scoring.sandbox.budget`).
    """

    memory_mb: int | None = 16384
    cpu_seconds: int | None = None
    file_mb: int | None = 1024
    processes: int | None = 512
    startup_timeout: float = 300.0
    call_timeout: float = 600.0
    cpus: float | None = None
    tmp_mb: int | None = None
    budget_base_s: float | None = 120.0
    """None: no total budget per (submission, task) (`benchmark.scoring.sandbox.budget`)."""
    budget_per_unit_s: float = 2.0
    budget_cpu_factor: float | None = None
    """CPU seconds of budget per wall second; None: the CPUs it may use (`cpus`, or all)."""


def python_roots() -> list[Path]:
    """What the child needs to run Python with this environment's packages, and nothing else."""
    import benchmark

    roots = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()}
    roots.add(Path(benchmark.__file__).resolve().parent)  # an editable install points here
    for entry in sys.path:  # package folders a .pth file adds (a shared or layered environment)
        path = Path(entry or ".").resolve()
        if path.name in ("site-packages", "dist-packages") and path.is_dir():
            roots.add(path)
    return sorted(roots)


def bwrap_command(
    exe: str,
    folder: Path,
    device: str,
    extra_ro: Sequence[Path] = (),
    *,
    staged: dict[str, str] | None = None,
    tmp_size: int | None = None,
) -> list[str]:
    """The bubblewrap command line for one submission folder (see the module docstring);
    `extra_ro`: more folders visible read-only at their own path (hub weights the harness
    fetched for a module entry: `benchmark.scoring.hub_weights`). `staged` maps a tree to where the
    launcher bound it for a sandbox user that cannot reach the original (`benchmark.scoring.sandbox.launch`);
    `tmp_size` caps the private /tmp in bytes."""
    staged = staged or {}
    cmd = [exe, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent"]
    cmd += ["--new-session", "--cap-drop", "ALL", "--proc", "/proc", "--dev", "/dev"]
    if tmp_size is not None:
        cmd += ["--size", str(tmp_size)]
    cmd += ["--tmpfs", "/tmp", "--chdir", "/tmp"]
    for top in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        p = Path(top)
        if p.is_symlink():
            cmd += ["--symlink", os.readlink(p), top]
        elif p.is_dir():
            cmd += ["--ro-bind", top, top]
    for f in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime", "/etc/passwd", "/etc/group"):
        if Path(f).exists():
            cmd += ["--ro-bind", f, f]
    for tree in [*python_roots(), folder, *extra_ro]:
        cmd += ["--ro-bind", staged.get(str(tree), str(tree)), str(tree)]
    if device.startswith("cuda"):
        for node in sorted(Path("/dev").glob("nvidia*")):
            cmd += ["--dev-bind", str(node), str(node)]
        cmd += ["--ro-bind-try", "/proc/driver/nvidia", "/proc/driver/nvidia"]
        cmd += ["--ro-bind", "/sys", "/sys"]
    env = {"HOME": "/tmp", "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    for key in (
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "CUDA_VISIBLE_DEVICES",
        "LANG",
        *QUIET_ENV,  # `--quiet`: the child's libraries stay quiet too (`benchmark.progress`)
    ):
        if key in os.environ:
            env[key] = os.environ[key]
    cmd += ["--clearenv"]
    for key, value in sorted(env.items()):
        cmd += ["--setenv", key, value]
    return cmd
