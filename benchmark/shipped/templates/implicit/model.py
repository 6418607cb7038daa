"""An implicit (DPO-style) reward for mosrm-bench: reward = beta * (log pi(x) - log pi_ref(x)).

A policy trained with DPO carries its reward in the ratio of its likelihood to its reference
model's; the harness turns that into a per-clip score and evaluates it like a scalar model.
Replace `policy_logp` and `reference_logp` with your policy's and reference's log-likelihood of
each clip (a torch.Tensor of shape [B] each: sum or mean over the clip's own tokens or frames, as
your training did), and set `beta` to your training's. Mask the padding (`batch.mask()`): a clip's
log-likelihood must not depend on the batch. Runs in a sandbox (no network, read-only folder).
"""

from __future__ import annotations

import math

import torch

from benchmark.models import Batch


class Implicit(torch.nn.Module):
    sample_rate = 16000

    def __init__(self, beta: float = 0.1, frame_ms: float = 25.0) -> None:
        super().__init__()
        self.beta = float(beta)
        self.frame = int(self.sample_rate * frame_ms / 1000)

    def _frame_energies(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        x, mask = batch.waveforms.float(), batch.mask()
        if x.shape[1] < self.frame:
            x = torch.nn.functional.pad(x, (0, self.frame - x.shape[1]))
            mask = torch.nn.functional.pad(mask, (0, self.frame - mask.shape[1]))
        frames = x.unfold(1, self.frame, self.frame)
        inside = mask.unfold(1, self.frame, self.frame).all(dim=2)
        return frames.pow(2).mean(dim=2).clamp_min(1e-10).log(), inside

    def _gaussian_logp(self, batch: Batch, mean: float, std: float) -> torch.Tensor:
        """The example's "model": log-likelihood per frame of the log energies under N(mean, std),
        averaged over the frames inside the clip."""
        e, inside = self._frame_energies(batch)
        logp = -0.5 * ((e - mean) / std) ** 2 - math.log(std * math.sqrt(2 * math.pi))
        return (logp * inside).sum(dim=1) / inside.sum(dim=1).clamp_min(1)

    @torch.no_grad()
    def policy_logp(self, batch: Batch) -> torch.Tensor:
        return self._gaussian_logp(batch, mean=-4.0, std=2.0)  # "prefers" louder frames

    @torch.no_grad()
    def reference_logp(self, batch: Batch) -> torch.Tensor:
        return self._gaussian_logp(batch, mean=-7.0, std=2.0)
