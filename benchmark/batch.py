"""`Batch`: what every model receives, zero-padded mono waveforms with their true lengths.

A module of its own so that audio decoding (`benchmark.audio`) and the models import it without
importing submission loading (`benchmark.models`, which re-exports it for submitted code).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
