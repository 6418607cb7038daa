"""What the hostile-submission tests share: source text pasted into the `model.py` they write
(a sandboxed submission can import nothing of the tests), and the harness's order before issue 20,
put back to show that the order cheats had a channel then."""

from __future__ import annotations

from typing import Any


def old_order(monkeypatch: Any) -> None:
    """The harness before issue 20: by length, then clip-table order; judges see the smaller
    (clip id, audio sha256) first (the loop's names, where it looks them up)."""
    import benchmark.scoring.loop as loop

    monkeypatch.setattr(
        loop,
        "send_order",
        lambda units, lengths, keys: sorted(units, key=lambda u: (lengths[u], u)),
    )
    monkeypatch.setattr(loop, "presented_first", lambda info, x, y: info.keys[x] <= info.keys[y])


PROTOCOL_FD = r'''
def protocol_fd():
    """The write end of the protocol pipe: a pipe open for writing that is not stderr's."""
    import fcntl, os, stat

    err = os.fstat(2).st_ino
    for name in sorted(os.listdir("/proc/self/fd"), key=int):
        fd = int(name)
        try:
            st, flags = os.fstat(fd), fcntl.fcntl(fd, fcntl.F_GETFL)
        except OSError:
            continue
        if fd > 2 and stat.S_ISFIFO(st.st_mode) and st.st_ino != err:
            if flags & os.O_ACCMODE == os.O_WRONLY:
                return fd
    raise RuntimeError("no protocol pipe found")
'''

HOLD_MEMORY = r'''
def hold_memory(seconds):
    """Attack #6 of issue 20: 2 x 800 MiB into the private /tmp, then two subprocesses of
    1000 MiB each, held for `seconds`."""
    import subprocess, sys, time

    chunk = b"\1" * (1 << 20)
    for name in ("a", "b"):
        try:
            with open(f"/tmp/{name}", "wb") as f:
                for _ in range(800):
                    f.write(chunk)
        except OSError:
            pass
    hog = "import numpy as np, time; a = np.ones(1000 << 17); time.sleep(60)"
    procs = [subprocess.Popen([sys.executable, "-c", hog]) for _ in range(2)]
    time.sleep(seconds)
    return procs
'''
