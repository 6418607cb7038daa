"""A pairwise reward model (a judge) for mosrm-bench: P(clip a is better than clip b).

Replace `prefer` with your judge. The harness calls it with two `Batch`es (row i of `a` against
row i of `b`; zero-padded mono waveforms at `sample_rate` Hz with their true lengths) and needs a
torch.Tensor of shape [B] in [0, 1]. It asks in both orders and averages, (prefer(a, b) + 1 -
prefer(b, a)) / 2, so a position bias cannot move accuracy, and which clip comes first is fixed by
a hash of the audio, never by the labels. Mask the padding (`batch.mask()`): a row's answer must
not depend on the rows beside it. Runs in a sandbox (no network, read-only folder).
"""

from __future__ import annotations

import torch

from benchmark.models import Batch


class Judge(torch.nn.Module):
    sample_rate = 16000

    def __init__(self, temperature: float = 1.0, frame_ms: float = 25.0) -> None:
        super().__init__()
        self.temperature = float(temperature)
        self.frame = int(self.sample_rate * frame_ms / 1000)

    def _quality(self, batch: Batch) -> torch.Tensor:
        """The example's per-clip feature: mean log energy of the frames inside the clip."""
        x, mask = batch.waveforms.float(), batch.mask()
        if x.shape[1] < self.frame:
            x = torch.nn.functional.pad(x, (0, self.frame - x.shape[1]))
            mask = torch.nn.functional.pad(mask, (0, self.frame - mask.shape[1]))
        frames = x.unfold(1, self.frame, self.frame)
        inside = mask.unfold(1, self.frame, self.frame).all(dim=2)
        energy = frames.pow(2).mean(dim=2).clamp_min(1e-10).log()
        return (energy * inside).sum(dim=1) / inside.sum(dim=1).clamp_min(1)

    @torch.no_grad()
    def prefer(self, a: Batch, b: Batch) -> torch.Tensor:
        return torch.sigmoid((self._quality(a) - self._quality(b)) / self.temperature)
