"""`Batch`: what every model receives, zero-padded mono waveforms with their true lengths; and
`PadBuffers`, the memory the scoring loop pads batches into, reused from batch to batch.

A module of its own so that audio decoding (`benchmark.data.audio`) and the models import it without
importing submission loading (`benchmark.scoring.models`, which re-exports it for submitted code).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import torch


@dataclass(frozen=True)
class Batch:
    """Zero-padded mono waveforms with their true lengths, at `sample_rate` Hz."""

    waveforms: torch.Tensor  # float32 [B, T]
    lengths: torch.Tensor  # int64 [B], valid samples per row
    sample_rate: int
    clip_ids: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.clip_ids)

    def mask(self) -> torch.Tensor:
        """Bool [B, T]: True on real samples, False on padding."""
        import torch

        t = torch.arange(self.waveforms.shape[1], device=self.waveforms.device)
        return t[None, :] < self.lengths.to(self.waveforms.device)[:, None]

    def to(self, device: str | torch.device) -> Batch:
        return Batch(
            self.waveforms.to(device, non_blocking=True),
            self.lengths.to(device, non_blocking=True),
            self.sample_rate,
            self.clip_ids,
        )


class PadBuffers:
    """Reused memory for padded batches: batch k is padded into slot k % `slots`.

    A fresh array per batch pays a page fault for every 4 KiB the first time it is written: about
    8 ms for 256 clips of 2.5 s here, 4% of the reference CNN's forward pass. A reused slot is
    already mapped, and `pad_buffers` hands the same memory to the next run of the process. The price is a rule for the caller: batch k must be done with (the model has
    returned and its output was copied) before batch k + `slots` is padded, so a loop that makes
    batches `ahead` in advance needs `ahead` + 1 slots. Every row is rewritten in full (samples,
    then zeros), so nothing of an earlier batch, nor a model's in-place edit of it, shows through.
    """

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        self.slots = slots
        self._slots: list[dict[int, np.ndarray]] = [{} for _ in range(slots)]

    @property
    def nbytes(self) -> int:
        return sum(m.nbytes for slot in self._slots for m in slot.values())

    def pad(
        self, k: int, waves: Sequence[np.ndarray], sr: int, clip_ids: Sequence[str], part: int = 0
    ) -> Batch:
        """`benchmark.data.audio.pad_batch`'s batch (same values, shape and dtype) in batch k's slot.

        `waves` may be read-only views (of the packed store's memory map); `part` tells apart
        the batches made for one k (a pair's two positions)."""
        import numpy as np
        import torch

        if len(waves) != len(clip_ids):
            raise ValueError(f"{len(waves)} waveforms but {len(clip_ids)} clip ids")
        lengths = [int(w.shape[0]) for w in waves]
        width = max(lengths, default=0)
        need = len(waves) * width
        slot = self._slots[k % len(self._slots)]
        memory = slot.get(part)
        if memory is None or memory.size < need:
            memory = slot[part] = np.empty(need, dtype=np.float32)
        out = memory[:need].reshape(len(waves), width)
        for row, (wave, n) in enumerate(zip(waves, lengths, strict=True)):
            out[row, :n] = wave
            out[row, n:] = 0.0
        return Batch(
            waveforms=torch.from_numpy(out),
            lengths=torch.tensor(lengths, dtype=torch.int64),
            sample_rate=int(sr),
            clip_ids=tuple(clip_ids),
        )


_IDLE: list[PadBuffers] = []
_IDLE_LOCK = threading.Lock()
_IDLE_MAX = 2
_IDLE_MAX_BYTES = 64 * 2**20
"""What the process keeps between runs: two rings, of at most 64 MiB each (the reference CNN's
batches of 16 need 4 x 3.5 MB)."""


@contextmanager
def pad_buffers(slots: int) -> Iterator[PadBuffers]:
    """`PadBuffers` of `slots` slots for one run, the memory of an earlier run's when one is idle.

    Runs at the same time (threads) each get their own; a ring comes back to the pool when the
    run ends, however it ends, so a model that raised leaves nothing in use."""
    with _IDLE_LOCK:
        found = next((b for b in _IDLE if b.slots == slots), None)
        if found is not None:
            _IDLE.remove(found)
    buffers = found if found is not None else PadBuffers(slots)
    try:
        yield buffers
    finally:
        if buffers.nbytes <= _IDLE_MAX_BYTES:
            with _IDLE_LOCK:
                _IDLE.append(buffers)
                del _IDLE[:-_IDLE_MAX]
