"""Waveforms handed to the sandbox through shared memory instead of the pipe.

A batch is megabytes of float32 samples; through a pipe it is copied twice (into the kernel and
out again) in 64 KiB-1 MiB writes, which cost about 8% of a small model's time here. The harness
instead writes the batch into a memory file (`memfd`) that the child maps, and only the header
goes through the pipe.

What the child could do with it, and why that gains it nothing:
- it gets the file read-only (a second, read-only open of it) with mode 0400, so it can neither
  write into what the harness writes next nor reopen it for writing (where the harness runs as
  another user than the sandbox's, as root does); and the file is sealed against shrinking and
  growing, so no resize (which would make the harness's own writes fault) is possible by any
  route. Were it to write there anyway, it would only change its own next inputs;
- it maps each request privately (copy-on-write): a model that writes into its waveforms writes
  into its own copy, and the mapping of a request is gone once the model drops its arrays;
- the harness never reads the memory back, so nothing in it can reach a score.
A batch larger than the memory, or a machine without `memfd` sealing, goes through the pipe.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
from collections.abc import Sequence

import numpy as np

SIZE = 128 << 20
"""Bytes of shared memory per sandbox (pages are only allocated as a batch touches them)."""


class SharedBatches:
    """The harness's side: a sealed memory file it writes batches into."""

    def __init__(self, size: int = SIZE) -> None:
        self.size = size
        fd = os.memfd_create("mosrm-batches", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            os.ftruncate(fd, size)
            seals = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
            self._map = mmap.mmap(fd, size)
            # nobody opens it for writing again (through /proc/PID/fd/N): only the owner may
            # change that, which the sandbox's user is not when the harness runs as root
            os.fchmod(fd, 0o400)
            # what the child gets: the same memory, opened again read-only
            self.child_fd = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)
        finally:
            os.close(fd)
        self._bytes = np.frombuffer(self._map, dtype=np.uint8)

    @classmethod
    def create(cls) -> SharedBatches | None:
        """None where this kernel or Python has no sealable `memfd` (the pipe carries batches)."""
        try:
            return cls()
        except (AttributeError, OSError):
            return None

    def fits(self, arrays: Sequence[np.ndarray]) -> bool:
        return 0 < sum(a.nbytes for a in arrays) <= self.size

    def write(self, arrays: Sequence[np.ndarray]) -> None:
        """The arrays, back to back from offset 0, in the layout `protocol.decode_arrays` reads."""
        offset = 0
        for a in arrays:
            raw = np.ascontiguousarray(a).reshape(-1).view(np.uint8)
            self._bytes[offset : offset + raw.size] = raw
            offset += raw.size

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.child_fd)
        del self._bytes
        with contextlib.suppress(BufferError, ValueError):
            self._map.close()


def child_view(fd: int, size: int, nbytes: int) -> memoryview:
    """The child's side: a private (copy-on-write) mapping of the first `nbytes` of the shared
    memory, for one request's arrays; `nbytes` is checked against `size` by the caller."""
    mapped = mmap.mmap(fd, nbytes, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    return memoryview(mapped)
