"""A scalar reward model for mosrm-bench: one number per clip, higher = better.

Replace the body of `score` with your model's forward pass. The harness calls it with a `Batch`:
zero-padded mono waveforms at `sample_rate` Hz (float32 [B, T]) with their true `lengths`. It must
return a torch.Tensor of shape [B], and a clip's score must not depend on the padding or on which
clips share its batch: use `batch.mask()` (`mosrm validate` scores at batch size 1 and 8 and
compares). The folder runs in a sandbox (no network, read-only): load weights from a file in this
folder (`weights: model.safetensors` in submission.yaml passes its path as `weights_path`).
"""

from __future__ import annotations

import torch

from benchmark.models import Batch


class Model(torch.nn.Module):
    sample_rate = 16000  # the harness resamples every clip to this rate before scoring

    def __init__(self, frame_ms: float = 25.0, weights_path: str | None = None) -> None:
        super().__init__()
        self.frame = int(self.sample_rate * frame_ms / 1000)
        if weights_path is not None:  # e.g. from safetensors.torch import load_file
            raise NotImplementedError("load your weights here")

    @torch.no_grad()
    def score(self, batch: Batch) -> torch.Tensor:
        x = batch.waveforms.float()  # [B, T], zeros after each clip's end
        mask = batch.mask()  # [B, T], True on real samples
        if x.shape[1] < self.frame:  # a batch of very short clips: one (partial) frame
            x = torch.nn.functional.pad(x, (0, self.frame - x.shape[1]))
            mask = torch.nn.functional.pad(mask, (0, self.frame - mask.shape[1]))
        # the example: mean log energy of the 25 ms frames that lie inside the clip (a loudness
        # heuristic, a stand-in and no quality model: on the demo it is below chance); frames
        # are counted from each clip's own start and padding never enters, so the batch
        # cannot move a score
        frames = x.unfold(1, self.frame, self.frame)  # [B, F, frame]
        inside = mask.unfold(1, self.frame, self.frame).all(dim=2)  # [B, F]
        energy = frames.pow(2).mean(dim=2).clamp_min(1e-10).log()
        return (energy * inside).sum(dim=1) / inside.sum(dim=1).clamp_min(1)
