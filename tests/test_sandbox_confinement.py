"""Who the sandbox runs as and what bounds it as a whole, each shown by an attack.

- no root: the child's uid outside every namespace is not 0 even when the harness is root, and
  /proc/sys, /proc/sysrq-trigger and /sys refuse writes (attack #1 of issue 20);
- no new privileges, no capabilities, and a seccomp filter refusing ptrace, mount, bpf, ...;
- whole-sandbox memory (attack #6: files in /tmp plus two big subprocesses) under the cgroup this
  machine offers and under the forced rlimit fallback;
- a time budget per (submission, task) that a busy-waiting model (attack #7) cannot stretch, that a
  resumed run does not reset, and a CPU budget.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch
import yaml

from benchmark.errors import SubmissionError
from benchmark.scoring.models import Batch, load_submission
from benchmark.scoring.sandbox import SandboxLimits, cgroups
from benchmark.scoring.sandbox.seccomp import program
from tests.hostile import HOLD_MEMORY
from tests.sandbox_required import sandbox_needed

pytestmark = sandbox_needed()

ATTACKS = r"""
import ctypes, os, subprocess, sys, time

import numpy as np
import torch

libc = ctypes.CDLL(None, use_errno=True)


def _syscall(nr, *args):
    res = libc.syscall(nr, *[ctypes.c_long(a) for a in args])
    return 0.0 if res == -1 and ctypes.get_errno() == 1 else 1.0  # 0: refused with EPERM


def _write_back(path):
    try:
        with open(path) as f:
            old = f.read()
        with open(path, "w") as f:
            f.write(old)
        return 1.0
    except OSError:
        return 0.0


def _open_write(path):
    try:
        open(path, "w").close()
        return 1.0
    except OSError:
        return 0.0


def _status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return line.split()[1]
    return ""


HOLD_MEMORY


class Model:
    sample_rate = 16000

    def __init__(self, mode, numbers=None):
        self.mode = mode
        self.numbers = numbers or {}
        if mode == "root_at_build":  # attack #1, as it was done: in build()
            self.flags = [
                _write_back("/proc/sys/kernel/core_pattern"),
                _write_back("/proc/sys/vm/swappiness"),
            ]

    def score(self, batch):
        n, m = len(batch), self.mode
        if m == "root_at_build":
            out = self.flags + [
                _open_write("/proc/sysrq-trigger"),
                _open_write("/sys/kernel/uevent_helper"),
                _open_write("/proc/sys/kernel/modprobe"),
                float(_status("NoNewPrivs")),
                float(int(_status("CapEff"), 16) != 0),
                float(os.getuid()),
            ]
            return torch.tensor(out, dtype=torch.float64)
        if m == "syscalls":
            return torch.tensor(
                [_syscall(nr, *args) for nr, args in self.numbers["calls"]], dtype=torch.float64
            )
        if m == "memory":  # attack #6
            hold_memory(20)
            return torch.zeros(n, dtype=torch.float64)
        if m == "shared":  # the batches' shared memory: read-only, sealed, private per request
            import mmap

            fds = [int(f) for f in os.listdir("/proc/self/fd")]
            names = {f: os.readlink(f"/proc/self/fd/{f}") for f in fds if os.path.exists(f"/proc/self/fd/{f}")}
            memfd = [f for f, name in names.items() if "mosrm-batches" in name]
            got = [float(len(memfd))]
            for attack in (
                lambda f: os.ftruncate(f, 0),
                lambda f: os.write(f, b"x"),
                lambda f: mmap.mmap(f, 4096),  # shared and writable
                lambda f: os.open(f"/proc/self/fd/{f}", os.O_RDWR),
            ):
                try:
                    attack(memfd[0])
                    got.append(1.0)
                except OSError:
                    got.append(0.0)
            rms = (batch.waveforms.double().pow(2).sum(1) / batch.lengths).sqrt()
            batch.waveforms.mul_(0)  # scribbles on its own copy only
            return torch.tensor(got + [0.0] * (n - len(got) - 1) + [float(rms.sum())], dtype=torch.float64)
        if m == "busy":  # attack #7: just under the per-call timeout, every call
            until = time.monotonic() + float(self.numbers["seconds"])
            while time.monotonic() < until:
                pass
            return torch.zeros(n, dtype=torch.float64)
        return batch.lengths.double()


def build(mode, numbers=None):
    return Model(mode, numbers)
"""
ATTACKS = ATTACKS.replace("\nHOLD_MEMORY\n", HOLD_MEMORY)


def _folder(root: Path, mode: str, **numbers: object) -> Path:
    folder = root / f"sub-{mode.replace('_', '-')}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.py").write_text(ATTACKS)
    spec = {
        "name": folder.name,
        "display_name": mode,
        "kind": "scalar",
        "entry": "model.py:build",
        "params": {"mode": mode, "numbers": numbers},
    }
    (folder / "submission.yaml").write_text(yaml.safe_dump(spec))
    return folder


def _batch(n: int = 8) -> Batch:
    return Batch(torch.rand(n, 800), torch.full((n,), 800), 16000, tuple(map(str, range(n))))


def test_the_child_is_not_root_outside_and_proc_sys_refuses_it(tmp_path: Path) -> None:
    sub = load_submission(_folder(tmp_path, "root_at_build"))
    try:
        out = sub.model.score(_batch()).tolist()
        pid = sub.model._proc.pid
        from benchmark.scoring.sandbox.watch import process_tree

        uids = {
            int(Path(f"/proc/{p}/status").read_text().split("Uid:")[1].split()[1])
            for p in process_tree(pid)[1:]
        }
    finally:
        sub.close()
    core_pattern, swappiness, sysrq, uevent, modprobe, no_new_privs, caps, _ = out
    assert (core_pattern, swappiness, sysrq, uevent, modprobe) == (0.0,) * 5
    assert no_new_privs == 1.0 and caps == 0.0
    assert 0 not in uids, uids  # the launcher's user outside every namespace (bwrap and its child)
    if os.geteuid() == 0:
        assert uids == {65534}


SECCOMP_CALLS = {
    "x86_64": [
        (101, [0, 0, 0, 0]),  # ptrace(PTRACE_TRACEME)
        (165, [0, 0, 0, 0, 0]),  # mount
        (321, [0, 0, 0]),  # bpf
        (298, [0, 0, 0, 0, 0]),  # perf_event_open
        (323, [0]),  # userfaultfd
        (425, [1, 0]),  # io_uring_setup
        (250, [0, 0, 0, 0, 0]),  # keyctl
        (272, [0x10000000]),  # unshare(CLONE_NEWUSER)
        (56, [0x40000000 | 17, 0, 0, 0, 0]),  # clone(CLONE_NEWNET | SIGCHLD)
        (39, []),  # getpid: allowed
    ],
    "aarch64": [
        (117, [0, 0, 0, 0]),
        (40, [0, 0, 0, 0, 0]),
        (280, [0, 0, 0]),
        (241, [0, 0, 0, 0, 0]),
        (282, [0]),
        (425, [1, 0]),
        (219, [0, 0, 0, 0, 0]),
        (97, [0x10000000]),
        (220, [0x40000000 | 17, 0, 0, 0, 0]),
        (172, []),
    ],
}


@pytest.mark.skipif(program() is None, reason="no seccomp table for this architecture")
def test_seccomp_refuses_what_a_scorer_never_needs(tmp_path: Path) -> None:
    import platform

    calls = SECCOMP_CALLS[platform.machine()]
    sub = load_submission(_folder(tmp_path, "syscalls", calls=calls))
    try:
        out = sub.model.score(_batch(len(calls))).tolist()
    finally:
        sub.close()
    assert out[:-1] == [0.0] * (len(calls) - 1)  # each refused with EPERM
    assert out[-1] == 1.0  # an ordinary call still works


@pytest.mark.parametrize("force", ["", "none"], ids=["as-probed", "rlimit-fallback"])
def test_whole_sandbox_memory_stops_files_in_tmp_plus_subprocesses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, force: str
) -> None:
    monkeypatch.setenv(cgroups.FORCE_ENV, force)
    cgroups.hierarchy.cache_clear()
    try:
        expected = cgroups.mechanism()
        sub = load_submission(_folder(tmp_path, "memory"), limits=SandboxLimits(memory_mb=1200))
        start = time.monotonic()
        with pytest.raises(SubmissionError, match="memory limit") as err:
            sub.model.score(_batch())
        record = sub.model.describe()
        sub.close()
    finally:
        cgroups.hierarchy.cache_clear()
    assert time.monotonic() - start < 20, "stopped while it held the memory, not after"
    assert record["mechanism"] == expected
    if force == "none":
        assert expected == "rlimits"
    assert "\n" not in str(err.value)


def test_a_busy_waiting_model_is_stopped_by_the_task_budget_which_a_rerun_keeps(
    tmp_path: Path,
) -> None:
    limits = SandboxLimits(call_timeout=3, budget_base_s=5, budget_per_unit_s=0)
    folder = _folder(tmp_path, "busy", seconds=2.5)  # each call just under the per-call timeout
    sub = load_submission(folder, limits=limits)
    start = time.monotonic()
    calls = 0
    with pytest.raises(SubmissionError, match="time budget of this task is spent"):
        with sub.model.budget_scope("toy", 8, sub.fingerprint):
            for _ in range(100):
                sub.model.score(_batch())
                calls += 1
    sub.close()
    took = time.monotonic() - start
    assert calls <= 2 and took < 5 + 3  # the budget, not 100 calls x 2.5 s
    # a resumed run goes on from what was spent: here, nothing is left
    again = load_submission(folder, limits=limits)
    start = time.monotonic()
    with pytest.raises(SubmissionError, match=r"spent on task 'toy' in earlier runs"):
        with again.model.budget_scope("toy", 8, again.fingerprint):
            again.model.score(_batch())
    again.close()
    assert time.monotonic() - start < 1  # refused before the model starts
    # another task has its own budget
    other = load_submission(folder, limits=SandboxLimits(call_timeout=10, budget_base_s=60))
    with other.model.budget_scope("other", 8, other.fingerprint) as budget:
        other.model.score(_batch())
    other.close()
    assert budget is not None and 2.5 <= budget.spent_wall < 60


def test_cpu_budget(tmp_path: Path) -> None:
    limits = SandboxLimits(
        call_timeout=30, budget_base_s=20, budget_per_unit_s=0, budget_cpu_factor=0.1
    )  # 2 CPU seconds
    sub = load_submission(_folder(tmp_path, "busy", seconds=10), limits=limits)
    start = time.monotonic()
    with pytest.raises(SubmissionError, match="time budget of this task is spent"):
        with sub.model.budget_scope("toy", 8, sub.fingerprint):
            sub.model.score(_batch())
    sub.close()
    assert time.monotonic() - start < 9


def test_batches_in_shared_memory_are_read_only_sealed_and_private(tmp_path: Path) -> None:
    """The child cannot resize, write or remap writable the memory the harness writes batches
    into (`benchmark.scoring.sandbox.shared`); what a model writes into its waveforms stays its own."""
    sub = load_submission(_folder(tmp_path, "shared"))
    batch = _batch(8)
    expected = float((batch.waveforms.double().pow(2).sum(1) / batch.lengths).sqrt().sum())
    try:
        first = sub.model.score(batch).tolist()
        second = sub.model.score(batch).tolist()  # the same audio, after the model zeroed its copy
    finally:
        sub.close()
    assert first[0] >= 1.0, "the shared memory was not used"  # (a mapping holds a dup of it)
    assert first[1:4] == [0.0] * 3, first  # ftruncate, write, a shared writable mapping
    if os.geteuid() == 0:  # the sandbox runs as another user: it cannot reopen it for writing
        assert first[4] == 0.0, first
    assert abs(first[-1] - expected) < 1e-6 * expected
    assert second == first
