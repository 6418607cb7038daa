"""The harness side of the sandbox: start the child under bubblewrap, talk to it, enforce time.

A leaderboard operator runs code from strangers. The child sees the Python environment, this
package and its own submission folder read-only, a private /tmp and /dev, no network, no other
process, nothing of `$MOSRM_HOME` (labels, pair files, score cache) or of the home folder. It gets
waveforms and lengths over a pipe, never clip ids, and returns numbers; only this process touches
the cache and the results. Every call has a wall-clock deadline, and the child's rlimits cap
memory, CPU time, file size and processes. Any misbehaviour ends the child and raises a
`SubmissionError` naming the folder and the reason.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import functools
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmark.errors import SubmissionError
from benchmark.sandbox.protocol import decode_arrays, encode, frames, header_length

if TYPE_CHECKING:
    from collections.abc import Callable

    import torch

    from benchmark.batch import Batch
    from benchmark.models import SubmissionSpec


F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
PIPE_BYTES = 1 << 20


@dataclass(frozen=True)
class SandboxLimits:
    """Per-submission limits; None leaves one unset. Memory is address space (RLIMIT_AS) on the
    CPU; on CUDA, where drivers reserve huge address ranges, it is not applied. `processes`
    (RLIMIT_NPROC, threads included) binds only when the harness runs as a non-root user: the
    kernel exempts root. The PID namespace still keeps the child's processes apart, and they all
    die with it."""

    memory_mb: int | None = 16384
    cpu_seconds: int | None = None
    file_mb: int | None = 1024
    processes: int | None = 512
    startup_timeout: float = 300.0
    call_timeout: float = 600.0


@functools.cache
def bubblewrap() -> str | None:
    """Path of a bwrap that can build the namespaces we need here, else None."""
    exe = shutil.which("bwrap")
    if exe is None:
        return None
    probe = [exe, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"]
    try:
        ok = subprocess.run(probe, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return exe if ok else None


def _python_roots() -> list[Path]:
    """What the child needs to run Python with this environment's packages, and nothing else."""
    import benchmark

    roots = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()}
    roots.add(Path(benchmark.__file__).resolve().parent)  # an editable install points here
    return sorted(roots)


def bwrap_command(exe: str, folder: Path, device: str) -> list[str]:
    """The bubblewrap command line for one submission folder (see the module docstring)."""
    cmd = [exe, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--chdir", "/tmp"]
    for top in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        p = Path(top)
        if p.is_symlink():
            cmd += ["--symlink", os.readlink(p), top]
        elif p.is_dir():
            cmd += ["--ro-bind", top, top]
    for f in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime", "/etc/passwd", "/etc/group"):
        if Path(f).exists():
            cmd += ["--ro-bind", f, f]
    for root in _python_roots():
        cmd += ["--ro-bind", str(root), str(root)]
    cmd += ["--ro-bind", str(folder), str(folder)]
    if device.startswith("cuda"):
        for node in sorted(Path("/dev").glob("nvidia*")):
            cmd += ["--dev-bind", str(node), str(node)]
        cmd += ["--ro-bind-try", "/proc/driver/nvidia", "/proc/driver/nvidia"]
        cmd += ["--ro-bind", "/sys", "/sys"]
    env = {"HOME": "/tmp", "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "LANG"):
        if key in os.environ:
            env[key] = os.environ[key]
    cmd += ["--clearenv"]
    for key, value in sorted(env.items()):
        cmd += ["--setenv", key, value]
    return cmd


class SandboxedModel:
    """A reward model whose code runs in a sandboxed child; duck-types the model protocols.

    Started on first use (reading `sample_rate` builds the model); `close()` ends the child.
    Given `known_sample_rate` (and `known_parameters`), what this very folder's model reported
    when it was last built (`benchmark.model_facts`), reading them does not start the child: a
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
    ) -> None:
        self.folder = Path(folder).resolve()
        self.spec = spec
        self.limits = limits or SandboxLimits()
        self.sandbox = sandbox
        self.device = "cpu"
        self.bf16 = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=40)
        self._sample_rate: int | None = None
        self._known_sample_rate = known_sample_rate
        self.parameters_count: int | None = known_parameters
        self._on_start = on_start
        self.calls = 0

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
        tail = " | ".join(line for line in self._stderr if line.strip())[-600:]
        self.close()
        more = f" (stderr: {tail})" if tail else ""
        return SubmissionError(f"{self.folder}: {reason}{more}")

    def _start(self) -> None:
        if self._proc is not None:
            return
        child = [sys.executable, "-I", "-m", "benchmark.sandbox.child"]
        if self.sandbox:
            exe = bubblewrap()
            if exe is None:
                raise SubmissionError(
                    f"{self.folder}: bubblewrap (bwrap) is not available, so the submission's "
                    "code cannot be sandboxed; install it (apt-get install bubblewrap) or pass "
                    "--unsafe-no-sandbox to run it unconfined with your user's permissions"
                )
            child = [*bwrap_command(exe, self.folder, self.device), *child]
        self._proc = subprocess.Popen(
            child,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            cwd="/tmp",
        )
        threading.Thread(target=self._drain, args=(self._proc,), daemon=True).start()
        for stream in (self._proc.stdin, self._proc.stdout):
            assert stream is not None
            with contextlib.suppress(OSError):  # fewer wake-ups per batch; 64 KiB otherwise
                fcntl.fcntl(stream.fileno(), F_SETPIPE_SZ, PIPE_BYTES)
        assert self._proc.stdin is not None
        os.set_blocking(self._proc.stdin.fileno(), False)
        limits = asdict(self.limits)
        if self.device.startswith("cuda"):
            limits["memory_mb"] = None  # CUDA reserves address space far beyond real use
        setup = {
            "folder": str(self.folder),
            "entry": self.spec.entry,
            "kind": self.spec.kind,
            "params": self.spec.params,
            "weights": self.spec.weights,
            "device": self.device,
            "bf16": self.bf16,
            "limits": limits,
        }
        deadline = time.monotonic() + self.limits.startup_timeout
        self._send(frames(setup), deadline, "start-up")
        head, _ = self._receive(deadline, "start-up")
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
        assert proc.stderr is not None
        for line in iter(proc.stderr.readline, b""):
            self._stderr.append(line.decode("utf-8", "replace").rstrip()[:300])

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            if proc.poll() is None and proc.stdin is not None:
                proc.stdin.write(encode({"op": "close"}))
                proc.stdin.flush()
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()

    # -- transport --------------------------------------------------------------------------------

    def _died(self, what: str) -> SubmissionError:
        assert self._proc is not None
        code = self._proc.poll()
        if code is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            return self._fail(f"{what}: the model broke the protocol")
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
                    raise self._died(what)
                got += k
        return out

    def _receive(self, deadline: float, what: str) -> tuple[dict[str, Any], list[np.ndarray]]:
        try:
            size = header_length(self._read(8, deadline, what))
            head = json.loads(self._read(size, deadline, what))
            if not isinstance(head, dict) or not isinstance(head.get("nbytes"), int):
                raise ValueError("malformed header")
            body = self._read(head["nbytes"], deadline, what)
            return head, decode_arrays(head, body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise self._fail(f"{what}: the model broke the protocol ({exc})") from None

    def _timeout(self, what: str) -> SubmissionError:
        assert self._proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        limit = self.limits.startup_timeout if what == "start-up" else self.limits.call_timeout
        return self._fail(f"{what} took longer than {limit:g} s (timeout)")

    def _call(self, op: str, batches: list[Batch]) -> torch.Tensor:
        import torch

        self._start()
        arrays: list[np.ndarray] = []
        for b in batches:
            arrays.append(b.waveforms.detach().to("cpu", torch.float32).numpy())
            arrays.append(b.lengths.detach().to("cpu", torch.int64).numpy())
        deadline = time.monotonic() + self.limits.call_timeout
        what = f"{op}()"
        self._send(frames({"op": op}, *arrays), deadline, what)
        head, out = self._receive(deadline, what)
        if not head.get("ok"):
            raise self._fail(f"{what} raised {head.get('error')}")
        if len(out) != 1:
            raise self._fail(f"{what}: expected one array back, got {len(out)}")
        self.calls += 1
        return torch.from_numpy(out[0].astype(np.float64))
