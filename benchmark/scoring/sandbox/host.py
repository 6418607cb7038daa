"""The harness side of the sandbox: start the child under bubblewrap, talk to it, enforce limits.

A leaderboard operator runs code from strangers. The child runs as an unprivileged user (never
root, even when the harness is), with no new privileges and a seccomp filter
(`benchmark.scoring.sandbox.confine`, `launch`, `seccomp`). It sees the Python environment, this package
and its own submission folder read-only, a private /tmp and /dev, no network, no other process,
nothing of `$MOSRM_HOME` (labels, pair files, score cache) or of the home folder. It gets
waveforms and lengths over a pipe, never clip ids, and returns numbers, every frame checked
against what was asked before anything is allocated (`benchmark.scoring.sandbox.protocol`); only this
process touches the cache and the results. Memory, processes and CPUs are bounded for the
sandbox as a whole (`cgroups`, else rlimits and the `watch`), every call has a deadline, and
all of a (submission, task)'s calls share a time budget (`budget`). Any misbehaviour ends the
child and everything it started, and raises one `SubmissionError` line naming the folder and
the reason.

Why one file of ~610 lines: the child's life (start, every call, each limit, the end) is one
state machine with one lock, and what may happen between a deadline, a budget charge and a kill is
only checkable when read in one place; the pieces that stand alone (command line, confinement,
seccomp, cgroups, watch, budget, protocol) are already their own modules.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import functools
import os
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmark.errors import SubmissionError
from benchmark.scoring.sandbox.budget import Budget, BudgetPolicy
from benchmark.scoring.sandbox.command import (  # noqa: F401 - part of this module's interface
    SandboxLimits,
    bwrap_command,
    python_roots,
)
from benchmark.scoring.sandbox.confine import Launch, plan
from benchmark.scoring.sandbox.procs import descendants, stat
from benchmark.scoring.sandbox.protocol import (
    MAX_REPLY_HEADER,
    REPLY_DEPTH,
    ProtocolError,
    check_reply,
    encode,
    frames,
    header_length,
    parse_header,
    shared_frames,
)
from benchmark.scoring.sandbox.shared import SharedBatches
from benchmark.scoring.sandbox.watch import Watch

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    import torch

    from benchmark.data.batch import Batch
    from benchmark.scoring.spec import SubmissionSpec


F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
PIPE_BYTES = 1 << 20

STDERR_CHUNK = 64 << 10
"""The child's stderr is read in chunks of this size, never by line: a "line" may be gigabytes."""
STDERR_LINES = 40
STDERR_LINE_CHARS = 300
"""What is kept of the child's stderr, for failure messages: its last lines, each cut; the rest
is read and dropped, so the child never blocks on a full pipe and the harness's memory stays flat
(at most `STDERR_LINES` × `STDERR_LINE_CHARS` characters kept, one chunk in flight)."""


@functools.cache
def bubblewrap() -> str | None:
    """Path of a bwrap that can start a sandbox here as `mosrm` does, else None.

    Probed through the real start path (launcher, dropping root, namespaces, seccomp filter), so
    a machine where any of it fails says so before a submission is scored, not in the middle."""
    exe = shutil.which("bwrap")
    if exe is None:
        return None
    from benchmark.scoring.sandbox.confine import launcher_works

    return exe if launcher_works(exe) else None


def _stderr_line(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").rstrip()[:STDERR_LINE_CHARS]


def _running(pid: int, started: int) -> bool:
    """Whether that process (not another that reused its pid) exists and is not a zombie."""
    st = stat(pid)
    return st is not None and st.start == started and st.state not in ("Z", "X")


def _end(proc: subprocess.Popen[bytes], known: Sequence[tuple[int, int]] = ()) -> None:
    """Kill `proc`, its process group and every process below it, and wait until all are gone.

    The sandboxed child runs in a session of its own below bubblewrap, so killing `proc`'s group
    alone would leave it to die of its parent's death a moment later, and a child that forked and
    ignores signals could still be running when the next submission starts. The tree is read
    while `proc` is alive and not reaped (its pid cannot name another process then); `known`
    adds the tree as it was seen earlier, should `proc` be dead already (each process checked by
    its start time, so a reused pid is never killed). Killing bubblewrap's init in the sandbox's
    PID namespace ends every process in it, and it exits only once they are gone."""
    tree = descendants(proc.pid) if proc.poll() is None else []
    tree += [p for p in known if p not in tree]
    for pid, started in tree:
        if _running(pid, started):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    stop = time.monotonic() + 5.0
    while any(_running(*p) for p in tree) and time.monotonic() < stop:
        time.sleep(0.005)


class SandboxedModel:
    """A reward model whose code runs in a sandboxed child; duck-types the model protocols.

    Started on first use (reading `sample_rate` builds the model); `close()` ends the child.
    Given `known_sample_rate` (and `known_parameters`), what this very folder's model reported
    when it was last built (`benchmark.scoring.model_facts`), reading them does not start the child: a
    fully cached evaluation never does. A started child must then report that same rate.
    `on_start(sample_rate, parameters)` is told what each start reported.
    """

    runs_elsewhere = True
    """The model computes in the child: the scoring loop's process is free to read ahead."""

    def __init__(
        self,
        folder: Path,
        spec: SubmissionSpec,
        *,
        limits: SandboxLimits | None = None,
        sandbox: bool = True,
        known_sample_rate: int | None = None,
        known_parameters: int | None = None,
        on_start: Callable[[int, int | None], None] | None = None,
        params: dict[str, Any] | None = None,
        extra_ro: Sequence[Path] = (),
    ) -> None:
        self.folder = Path(folder).resolve()
        self.spec = spec
        self.limits = limits or SandboxLimits()
        self.sandbox = sandbox
        self.device = "cpu"
        self.bf16 = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._shared: SharedBatches | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self._stderr_lock = threading.Lock()
        self._stderr_partial = b""  # the start of a line not yet ended, cut
        self._drained: threading.Event | None = None  # set when the drain reaches end of file
        self._tree: list[tuple[int, int]] = []  # the child's processes, seen at start-up
        self._sample_rate: int | None = None
        self._known_sample_rate = known_sample_rate
        self.parameters_count: int | None = known_parameters
        self._on_start = on_start
        self.calls = 0
        # a module entry's params as the harness resolved them (folder files absolute, hub ids
        # replaced by fetched snapshots, bound read-only: `extra_ro`); None: the spec's own
        self.params = spec.params if params is None else params
        self.extra_ro = tuple(Path(p) for p in extra_ro)
        self._launch: Launch | None = None
        self._watch: Watch | None = None
        self._cpu_mark = 0.0
        self._by_budget = False
        self.confinement: dict[str, Any] = {}
        """How the last start was confined (`confine.plan`'s record, then the usage measured)."""
        self.budget: Budget | None = None
        self.last_budget: dict[str, float] | None = None
        base = self.limits.budget_base_s
        self.budget_policy = BudgetPolicy(
            base_s=base or 0.0,
            per_unit_s=self.limits.budget_per_unit_s,
            cpu_factor=self.limits.budget_cpu_factor,
            enabled=base is not None,
        )

    # -- model protocol -------------------------------------------------------------------------

    @property
    def sample_rate(self) -> int:
        if self._sample_rate is None and self._known_sample_rate is not None:
            return self._known_sample_rate
        self._start()
        assert self._sample_rate is not None
        return self._sample_rate

    def to(self, device: str | torch.device) -> SandboxedModel:
        """Chooses where the child runs the model; must come before the first call."""
        device = str(device)
        if self._proc is not None and device != self.device:
            self.close()
        self.device = device
        return self

    def score(self, batch: Batch) -> torch.Tensor:
        return self._call("score", [batch])

    def prefer(self, a: Batch, b: Batch) -> torch.Tensor:
        return self._call("prefer", [a, b])

    # -- life cycle -----------------------------------------------------------------------------

    def _fail(self, reason: str) -> SubmissionError:
        """End the child (everything it started, at once: it has failed or broken the protocol,
        so it is not asked to stop) and return the one-line error naming the folder."""
        self.close(kill=True)
        drained = self._drained
        if drained is not None:
            drained.wait(1.0)  # the child is gone: what it wrote last is read in a moment
        with self._stderr_lock:
            lines = [*self._stderr, _stderr_line(self._stderr_partial)]
        tail = " | ".join(line for line in lines if line.strip())[-600:]
        more = f" (stderr: {tail})" if tail else ""
        return SubmissionError(f"{self.folder}: {reason}{more}")

    def _start(self) -> None:
        if self._proc is not None:
            return
        child = [sys.executable, "-I", "-B", "-m", "benchmark.scoring.sandbox.child"]
        exe = None
        if self.sandbox:
            exe = bubblewrap()
            if exe is None:
                raise SubmissionError(
                    f"{self.folder}: bubblewrap (bwrap) is not available, so the submission's "
                    "code cannot be sandboxed; install it (apt-get install bubblewrap) or pass "
                    "--unsafe-no-sandbox to run it unconfined with your user's permissions"
                )
        try:
            self._launch = plan(
                child,
                self.limits,
                bwrap=exe,
                folder=self.folder,
                device=self.device,
                extra_ro=self.extra_ro,
            )
        except (OSError, ValueError) as exc:
            raise SubmissionError(f"{self.folder}: cannot set up the sandbox: {exc}") from None
        self.confinement = dict(self._launch.record)
        self._shared = SharedBatches.create()
        shared_fds = () if self._shared is None else (self._shared.child_fd,)
        self._proc = subprocess.Popen(
            self._launch.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            cwd="/",
            pass_fds=(*self._launch.pass_fds, *shared_fds),
        )
        self._launch.started()
        self._watch = Watch(
            self._proc.pid,
            self._launch.cgroup,
            memory_bytes=None if self.limits.memory_mb is None else self.limits.memory_mb << 20,
        )
        self._watch.cpu_limit = self._cpu_limit
        self._cpu_mark = 0.0
        threading.Thread(target=self._drain, args=(self._proc,), daemon=True).start()
        for stream in (self._proc.stdin, self._proc.stdout):
            assert stream is not None
            with contextlib.suppress(OSError):  # fewer wake-ups per batch; 64 KiB otherwise
                fcntl.fcntl(stream.fileno(), F_SETPIPE_SZ, PIPE_BYTES)
        assert self._proc.stdin is not None
        os.set_blocking(self._proc.stdin.fileno(), False)
        setup = {
            "folder": str(self.folder),
            "entry": self.spec.entry,
            "kind": self.spec.kind,
            "params": self.params,
            "weights": self.spec.weights,
            "device": self.device,
            "bf16": self.bf16,
            "shared_memory": None
            if self._shared is None
            else {"fd": self._shared.child_fd, "bytes": self._shared.size},
        }
        deadline, self._by_budget = self._deadline(self.limits.startup_timeout)
        began = time.monotonic()
        try:
            self._send(frames(setup), deadline, "start-up")
            head, _ = self._receive(deadline, "start-up")
        finally:
            self._account(time.monotonic() - began)
        if not head.get("ok"):
            raise self._fail(f"building the model failed: {head.get('error')}")
        rate = int(head["sample_rate"])
        known = self._known_sample_rate
        if known is not None and rate != known:
            raise self._fail(
                f"the model reports sample_rate {rate}, but {known} when this same folder was "
                "built before; a model's sample rate must not change from run to run"
            )
        self._sample_rate = rate
        count = head.get("parameters")
        self.parameters_count = count if isinstance(count, int) else None
        if self._on_start is not None:
            self._on_start(rate, self.parameters_count)

    def _drain(self, proc: subprocess.Popen[bytes]) -> None:
        """Read the child's stderr to its end in bounded chunks, keeping only its last lines
        (each cut) and dropping the rest; closes the pipe at the end."""
        assert proc.stderr is not None
        drained = self._drained = threading.Event()
        with self._stderr_lock:
            self._stderr_partial = b""
        fd = proc.stderr.fileno()
        cut = 4 * STDERR_LINE_CHARS  # bytes: a character is at most 4 in UTF-8
        try:
            while chunk := os.read(fd, STDERR_CHUNK):
                done, newline, rest = chunk.rpartition(b"\n")
                with self._stderr_lock:
                    if not newline:  # no line ends here: keep only a line's first bytes
                        if len(self._stderr_partial) < cut:
                            self._stderr_partial = (self._stderr_partial + rest)[:cut]
                        continue
                    lines = done.rsplit(b"\n", STDERR_LINES)  # the chunk's last lines, at most
                    lines[0] = (self._stderr_partial + lines[0][:cut])[:cut]
                    if len(lines) > STDERR_LINES:
                        del lines[0]
                    self._stderr.extend(_stderr_line(line) for line in lines)
                    self._stderr_partial = rest[:cut]
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                proc.stderr.close()
            drained.set()

    # -- whole-sandbox limits and the budget ----------------------------------------------------

    @contextlib.contextmanager
    def budget_scope(self, task: str, units: int, fingerprint: str) -> Iterator[Budget | None]:
        """Count every start and call inside the block against (fingerprint, task)'s budget
        (`benchmark.scoring.sandbox.budget`), resumed from what earlier runs spent; a budget already
        spent fails at once."""
        if not self.budget_policy.enabled:
            yield None
            return
        cpus = self.limits.cpus or float(os.cpu_count() or 1)
        budget = Budget.for_task(fingerprint, task, units, self.budget_policy, cpus)
        spent = budget.exhausted()
        if spent is not None:
            raise SubmissionError(
                f"{self.folder}: {spent} on task '{task}' in earlier runs ({budget.describe()}); "
                "raise it with --budget-base-s / --budget-per-unit-s, or remove "
                f"{budget.path} to start afresh"
            )
        self.budget = budget
        self._account()  # CPU spent before the block belongs to no task
        try:
            yield budget
        finally:
            self._account(charge=True)
            budget.save()
            self.budget = None
            self.last_budget = budget.summary()

    def _budget_spent(self) -> str:
        budget = self.budget
        assert budget is not None
        return f"the time budget of this task is spent ({budget.describe()})"

    def _cpu_limit(self) -> float | None:
        """The sandbox's CPU time (as the watch measures it) at which the budget is spent."""
        budget = self.budget
        return None if budget is None else self._cpu_mark + budget.cpu_left

    def _account(self, wall: float = 0.0, *, charge: bool = True) -> None:
        """Charge `wall` seconds and the CPU time used since the last call to the budget."""
        cpu = 0.0
        if self._watch is not None:
            now = self._watch.cpu_now()
            cpu, self._cpu_mark = max(0.0, now - self._cpu_mark), now
        if self.budget is not None and charge:
            self.budget.add(wall, cpu)

    def _deadline(self, seconds: float) -> tuple[float, bool]:
        """(monotonic deadline, whether the budget rather than `seconds` sets it)."""
        left = None if self.budget is None else self.budget.wall_left
        if left is not None and left < seconds:
            return time.monotonic() + max(0.0, left), True
        return time.monotonic() + seconds, False

    def _release(self) -> None:
        """After the child is gone: last usage into the record and budget, cgroup and staging
        folder removed."""
        watch, self._watch = self._watch, None
        if watch is not None:
            usage = watch.stop()
            if self.budget is not None:
                self.budget.add(0.0, max(0.0, usage.cpu_seconds - self._cpu_mark))
            self._cpu_mark = 0.0
            self.confinement["cpu_seconds"] = round(usage.cpu_seconds, 2)
            self.confinement["peak_memory_mb"] = round(watch.peak_memory / (1 << 20), 1)
            if watch.reason is not None:
                self.confinement["stopped"] = watch.reason
        shared, self._shared = self._shared, None
        if shared is not None:
            shared.close()
        launch, self._launch = self._launch, None
        if launch is not None:
            if launch.cgroup is not None and launch.cgroup.oom_killed():
                self.confinement["stopped"] = "memory limit (cgroup)"
            launch.cleanup()

    def describe(self) -> dict[str, Any]:
        """What confined this model in its last start (for the run record): the mechanism, the
        sandbox's user, the filter, the limits, the budget and the usage measured."""
        from benchmark.scoring.sandbox import cgroups
        from benchmark.scoring.sandbox.confine import sandbox_ids
        from benchmark.scoring.sandbox.seccomp import program

        c = self.confinement
        ids = sandbox_ids()
        limits = {
            k: getattr(self.limits, k)
            for k in ("memory_mb", "processes", "cpus", "cpu_seconds", "file_mb", "call_timeout")
        }
        return {
            "started": bool(c),
            "sandboxed": self.sandbox,
            "mechanism": c.get("mechanism", cgroups.mechanism()),
            "uid": c.get("uid", ids[0] if ids is not None and self.sandbox else os.geteuid()),
            "seccomp": c.get("seccomp", self.sandbox and program() is not None),
            "limits": limits,
            "budget": self.last_budget,
            "cpu_seconds": c.get("cpu_seconds"),
            "peak_memory_mb": c.get("peak_memory_mb"),
            "stopped": c.get("stopped"),
        }

    def stop_reason(self) -> str | None:
        """Why a whole-sandbox limit ended the child, if one did (before `_release` forgets)."""
        if self._watch is not None and self._watch.reason is not None:
            return self._watch.reason
        launch = self._launch
        if launch is not None and launch.cgroup is not None and launch.cgroup.oom_killed():
            mb = self.limits.memory_mb
            return f"memory limit: the sandbox as a whole (cgroup) reached {mb} MiB"
        return None

    def close(self, *, kill: bool = False) -> None:
        """End the child: asked to stop (unless `kill`), killed after 2 s if it has not, and in
        any case every process it started killed and waited for before this returns, so none
        outlives it into the next submission's run. Its stderr pipe is closed by the drain."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if not kill:
            with contextlib.suppress(OSError):
                if proc.poll() is None and proc.stdin is not None:
                    proc.stdin.write(encode({"op": "close"}))
                    proc.stdin.flush()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=2)
        _end(proc, self._tree)
        self._tree = []
        for stream in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        self._release()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    # -- transport --------------------------------------------------------------------------------

    def _died(self, what: str) -> SubmissionError:
        assert self._proc is not None
        code = self._proc.poll()
        if code is None:  # its end of the pipe closed, but it runs on
            return self._fail(f"{what}: the model broke the protocol (closed its pipe)")
        stopped = self.stop_reason()
        if stopped == "CPU budget" and self.budget is not None:
            return self._fail(f"{what}: stopped: {self._budget_spent()}")
        if stopped is not None:
            return self._fail(f"{what}: stopped: {stopped}")
        # bubblewrap reports a child killed by signal N as exit status 128 + N
        signum = -code if code < 0 else code - 128 if self.sandbox and code > 128 else None
        if signum is not None:
            try:
                sig = signal.Signals(signum).name
            except ValueError:
                sig = f"signal {signum}"
            why = {"SIGXCPU": "CPU time limit", "SIGKILL": "killed (memory?)"}.get(sig, sig)
            return self._fail(f"{what}: the model process died ({why})")
        return self._fail(f"{what}: the model process exited with status {code}")

    def _send(self, data: list[bytes | memoryview], deadline: float, what: str) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        fd = self._proc.stdin.fileno()
        views = [memoryview(d).cast("B") for d in data]
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_WRITE)
            for view in views:
                while view:
                    left = deadline - time.monotonic()
                    if left <= 0 or not sel.select(left):
                        raise self._timeout(what)
                    try:
                        n = os.write(fd, view)
                    except BlockingIOError:
                        continue
                    except (BrokenPipeError, ConnectionResetError):
                        with contextlib.suppress(subprocess.TimeoutExpired):
                            self._proc.wait(timeout=5)
                        raise self._died(what) from None
                    view = view[n:]

    def _read(self, n: int, deadline: float, what: str) -> bytearray:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        out = bytearray(n)
        view = memoryview(out)
        got = 0
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while got < n:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise self._timeout(what)
                k = os.readv(fd, [view[got:]])
                if not k:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self._proc.wait(timeout=5)
                    cut = f": the reply was cut short after {got} of {n} bytes" if got else ""
                    raise self._died(what + cut)
                got += k
        return out

    def _receive(
        self, deadline: float, what: str, shape: tuple[int, ...] | None = None
    ) -> tuple[dict[str, Any], list[np.ndarray]]:
        """The child's reply, checked against what was asked before anything is allocated for
        it: the start-up reply (`shape` None) or one float array of `shape` (`check_reply`).
        A failure reply comes back with no array and its `error` cut to one line. Any violation
        ends the child and is one `SubmissionError` line."""
        try:
            prefix = self._read(8, deadline, what)
            if shape is None:  # the child runs and writes: its processes are all there to see
                assert self._proc is not None
                self._tree = descendants(self._proc.pid)
            size = header_length(prefix, MAX_REPLY_HEADER)
            head = parse_header(self._read(size, deadline, what), REPLY_DEPTH)
            dtype, nbytes = check_reply(head, shape)
            if dtype is None:
                return head, []
            body = self._read(nbytes, deadline, what)
            return head, [np.frombuffer(body, dtype=dtype).reshape(shape)]
        except SubmissionError:
            raise
        except ProtocolError as exc:
            raise self._fail(f"{what}: bad reply from the model ({exc})") from None
        except Exception as exc:  # a check that missed something: still one line, child ended
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
            raise self._fail(f"{what}: bad reply from the model ({reason})") from None

    def _timeout(self, what: str) -> SubmissionError:
        assert self._proc is not None  # _fail kills it, and everything below it
        if self._by_budget and self.budget is not None:
            return self._fail(f"{what}: {self._budget_spent()} (timeout)")
        limit = self.limits.startup_timeout if what == "start-up" else self.limits.call_timeout
        return self._fail(f"{what} took longer than {limit:g} s (timeout)")

    def _call(self, op: str, batches: list[Batch]) -> torch.Tensor:
        import torch

        self._start()
        arrays: list[np.ndarray] = []
        for b in batches:
            arrays.append(b.waveforms.detach().to("cpu", torch.float32).numpy())
            arrays.append(b.lengths.detach().to("cpu", torch.int64).numpy())
        what = f"{op}()"
        deadline, self._by_budget = self._deadline(self.limits.call_timeout)
        began = time.monotonic()
        shared = self._shared
        if shared is not None and shared.fits(arrays):
            shared.write(arrays)  # only the header goes through the pipe (`sandbox.shared`)
            message = shared_frames({"op": op}, *arrays)
        else:
            message = frames({"op": op}, *arrays)
        try:
            self._send(message, deadline, what)
            # one score (or preference) per clip (or pair) of the batch: nothing else is accepted
            head, out = self._receive(deadline, what, (len(arrays[1]),))
        finally:
            self._account(time.monotonic() - began)
        if not head["ok"]:
            raise self._fail(f"{what} raised {head['error']}")
        self.calls += 1
        return torch.from_numpy(out[0].astype(np.float64))
