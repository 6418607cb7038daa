"""Hostile submissions against the bubblewrap sandbox: each is contained or ends as a named failure.

One `model.py` holds every misbehaviour, chosen by `params.mode`; the secret, the listening socket
and the would-be victim files live outside the submission folder, where the harness keeps labels,
pair files and the score cache.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
import torch
import yaml

from benchmark.errors import SubmissionError
from benchmark.scoring.models import Batch, load_submission
from benchmark.scoring.sandbox import SandboxLimits
from benchmark.scoring.sandbox.host import bwrap_command
from tests.sandbox_required import sandbox_needed

pytestmark = sandbox_needed()

HOSTILE = """
import os, socket, sys, time

import numpy as np
import torch

MODE = None


class Model:
    sample_rate = 16000

    def __init__(self, mode, port=None):
        self.mode, self.port = mode, port
        # a hard-coded path, as a cheater would write it (params may not name outside paths)
        here = os.path.join(os.path.dirname(__file__), "target.txt")
        self.target = open(here).read() if os.path.exists(here) else None

    def score(self, batch):
        n = len(batch)
        m = self.mode
        if m == "ok":
            return batch.lengths.double()
        if m == "ids":
            return torch.tensor([float(i) for i in batch.clip_ids], dtype=torch.float64)
        if m == "read":  # look the labels up, as a cheater would
            try:
                return torch.full((n,), float(len(open(self.target).read())), dtype=torch.float64)
            except OSError:
                return torch.zeros(n, dtype=torch.float64)
        if m == "write":
            done = []
            for path in (self.target, os.path.join(os.path.dirname(__file__), "pwned")):
                try:
                    with open(path, "w") as f:
                        f.write("x")
                    done.append(1.0)
                except OSError:
                    done.append(0.0)
            return torch.tensor(done + [0.0] * (n - 2), dtype=torch.float64)
        if m == "socket":
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
                return torch.ones(n, dtype=torch.float64)
            except OSError:
                return torch.zeros(n, dtype=torch.float64)
        if m == "env":
            seen = [k for k in os.environ if "MOSRM" in k]
            procs = [p for p in os.listdir("/proc") if p.isdigit()]
            return torch.tensor([float(len(seen)), float(len(procs))] + [0.0] * (n - 2))
        if m == "sleep":
            time.sleep(3600)
        if m == "stubborn":  # swallows interrupts and keeps going
            while True:
                try:
                    time.sleep(0.1)
                except BaseException:
                    pass
        if m == "memory":
            np.ones((4 << 30) // 8)  # 4 GiB
        if m == "cpu":
            while True:
                pass
        if m == "exit0":
            raise SystemExit(0)
        if m == "hard_exit":
            os._exit(0)
        if m == "raise":
            raise ValueError("bad clip")
        if m == "nan":
            return torch.full((n,), float("nan"))
        if m == "shape":
            return torch.zeros(n, 1)
        if m == "list":  # B numbers, but not the Tensor[B] of the contract
            return [float(x) for x in batch.lengths]
        raise AssertionError(m)


def build(mode="ok", **kw):
    if mode == "exit_at_build":
        sys.exit(3)
    return Model(mode, **kw)
"""


def _folder(
    tmp_path: Path, mode: str, name: str = "hostile", target: Path | None = None, **params: object
) -> Path:
    folder = tmp_path / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.py").write_text(HOSTILE)
    if target is not None:
        (folder / "target.txt").write_text(str(target))
    spec = {
        "name": name,
        "display_name": name,
        "kind": "scalar",
        "entry": "model.py:build",
        "params": {"mode": mode, **params},
    }
    (folder / "submission.yaml").write_text(yaml.safe_dump(spec))
    return folder


def _batch(n: int = 3) -> Batch:
    return Batch(torch.rand(n, 800), torch.tensor([800, 400, 200][:n]), 16000, ("x", "y", "z")[:n])


def _score(folder: Path, limits: SandboxLimits | None = None) -> list[float]:
    sub = load_submission(folder, limits=limits)
    try:
        return sub.model.score(_batch()).tolist()
    finally:
        sub.close()


def test_a_good_model_runs_and_sees_only_opaque_ids(tmp_path):
    assert _score(_folder(tmp_path, "ok")) == [800.0, 400.0, 200.0]
    sub = load_submission(_folder(tmp_path / "b", "ids"))
    first = sub.model.score(_batch()).tolist()
    second = sub.model.score(_batch()).tolist()
    sub.close()
    assert first == [0.0, 1.0, 2.0] and second == [3.0, 4.0, 5.0]  # never "x", "y", "z"


def test_labels_outside_the_folder_are_invisible(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / "prepared" / "demo").mkdir(parents=True)
    labels = home / "prepared" / "demo" / "clips.parquet"
    labels.write_text("the true MOS of every clip")
    monkeypatch.setenv("MOSRM_HOME", str(home))
    assert _score(_folder(tmp_path / "s", "read", target=labels)) == [0.0, 0.0, 0.0]
    # nor does it learn where they are, nor see the harness's processes
    assert _score(_folder(tmp_path / "e", "env"))[:2] == [0.0, 2.0]  # bwrap's init and itself


def test_writes_outside_and_inside_its_folder_fail(tmp_path):
    victim = tmp_path / "scores.sqlite"
    victim.write_text("cache")
    folder = _folder(tmp_path / "w", "write", target=victim)
    outside, inside, _ = _score(folder)
    # the harness's file is untouched: outside the folder the child only has a private tmpfs
    # (a write there may "succeed" and vanishes with the child); its own folder is read-only
    assert victim.read_text() == "cache"
    assert inside == 0.0 and not (folder / "pwned").exists()


def test_no_network_not_even_loopback(tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    try:
        port = server.getsockname()[1]
        assert _score(_folder(tmp_path, "socket", port=port)) == [0.0, 0.0, 0.0]
    finally:
        server.close()


@pytest.mark.parametrize(
    ("mode", "limits", "reason"),
    [
        ("sleep", SandboxLimits(call_timeout=2), r"score\(\) took longer than 2 s \(timeout\)"),
        ("stubborn", SandboxLimits(call_timeout=2), r"timeout"),
        ("memory", SandboxLimits(memory_mb=2048), r"score\(\) raised MemoryError"),
        ("cpu", SandboxLimits(cpu_seconds=8, call_timeout=60), r"died \(CPU time limit\)"),
        ("exit0", None, r"score\(\) raised SystemExit"),
        ("hard_exit", None, r"exited with status 0"),
        ("raise", None, r"score\(\) raised ValueError: bad clip \(model.py:\d+\)"),
        ("exit_at_build", None, r"building the model failed: SystemExit: 3"),
        ("list", None, r"score\(\) returned list, not a torch.Tensor of shape \[B\]"),
    ],
)
def test_misbehaviour_is_a_named_failure(tmp_path, mode, limits, reason):
    folder = _folder(tmp_path, mode)
    start = time.monotonic()
    with pytest.raises(SubmissionError, match=reason) as err:
        _score(folder, limits)
    assert str(err.value).startswith(str(folder))  # names the folder, not only a fingerprint
    assert time.monotonic() - start < 30


def test_the_child_is_gone_after_a_timeout(tmp_path):
    sub = load_submission(_folder(tmp_path, "sleep"), limits=SandboxLimits(call_timeout=1))
    sub.model.sample_rate  # noqa: B018 - start it
    pid = sub.model._proc.pid
    with pytest.raises(SubmissionError, match="timeout"):
        sub.model.score(_batch())
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


def test_command_binds_only_what_the_child_needs(tmp_path):
    cmd = bwrap_command("bwrap", tmp_path, "cpu")
    binds = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--ro-bind"]
    assert str(tmp_path) in binds and "--unshare-all" in cmd and "--clearenv" in cmd
    home = os.environ.get("MOSRM_HOME", "")
    assert all(not home or not b.startswith(home) for b in binds)
    assert not any(b in ("/", "/root", "/home", "/work") for b in binds)


def test_editing_any_file_of_the_folder_means_rescoring(tmp_path):
    """A sibling module the model imports: edit it, and the next evaluation scores anew."""
    from benchmark.scoring.config import ScoringConfig
    from benchmark.scoring.loop import score_clips
    from benchmark.scoring.smoke import mock_task

    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "helper.py").write_text("OFFSET = 1.0\n")
    (folder / "model.py").write_text(
        "import helper\n"
        "class M:\n"
        "    sample_rate = 16000\n"
        "    def score(self, batch):\n"
        "        return batch.lengths.double() * 0 + helper.OFFSET\n"
        "def build():\n"
        "    return M()\n"
    )
    spec = {"name": "sub", "display_name": "s", "kind": "scalar", "entry": "model.py:build"}
    (folder / "submission.yaml").write_text(yaml.safe_dump(spec))
    data = tmp_path / "data"
    data.mkdir()
    clips, _ = mock_task(data, n=4)
    config = ScoringConfig(progress=False, device="cpu")
    cache = tmp_path / "cache.sqlite"

    def scores() -> set[float]:
        sub = load_submission(folder)
        try:
            got = score_clips(
                sub.model, clips, data, fingerprint=sub.fingerprint, config=config, cache_path=cache
            )
        finally:
            sub.close()
        return set(got.values())

    assert scores() == {1.0}
    (folder / "helper.py").write_text("OFFSET = 2.0\n")
    assert scores() == {2.0}  # not the cached 1.0


def test_without_bubblewrap_code_is_refused_unless_the_user_says_so(tmp_path, monkeypatch):
    import benchmark.scoring.sandbox.host as host

    folder = _folder(tmp_path, "ok")
    monkeypatch.setattr("benchmark.scoring.sandbox.bubblewrap", lambda: None)
    monkeypatch.setattr(host, "bubblewrap", lambda: None)
    with pytest.raises(SubmissionError, match=r"bubblewrap.*--unsafe-no-sandbox"):
        load_submission(folder)
    sub = load_submission(folder, unsandboxed=True)  # a separate, limited, unconfined process
    try:
        assert sub.model.score(_batch()).tolist() == [800.0, 400.0, 200.0]
    finally:
        sub.close()


THREADS = """
import threading, time

import torch


class M:
    sample_rate = 16000

    def score(self, batch):
        started = 0
        try:
            for _ in range(200):
                threading.Thread(target=time.sleep, args=(5,), daemon=True).start()
                started += 1
        except RuntimeError:
            pass
        return torch.full((len(batch),), float(started), dtype=torch.float64)


def build():
    return M()
"""


def test_process_limit_caps_threads_and_forks(tmp_path):
    """Binds as root too: the sandbox's user is never root (`benchmark.scoring.sandbox.confine`)."""
    folder = tmp_path / "threads"
    folder.mkdir()
    (folder / "model.py").write_text(THREADS)
    spec = {"name": "threads", "display_name": "t", "kind": "scalar", "entry": "model.py:build"}
    (folder / "submission.yaml").write_text(yaml.safe_dump(spec))
    started = _score(folder, SandboxLimits(processes=64))[0]
    assert 0 < started < 64
