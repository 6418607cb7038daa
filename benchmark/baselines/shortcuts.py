"""Shortcut baselines: heuristics that know nothing about quality.

They sit on the leaderboard, per bin, so that nobody mistakes a length or loudness heuristic for a
quality model: a submission that does not clearly beat them on a bin has learnt nothing there.
Each masks padding (uses `batch.lengths`), so batch size never changes a score.

torch is imported only when a score is computed: building one of these (which a cached evaluation
does, for the fingerprint) stays instant.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from benchmark.data.batch import Batch


class RandomModel:
    """Uniform scores derived from (seed, clip id): seeded, and independent of batching and order."""

    def __init__(self, seed: int = 0, sample_rate: int = 16000) -> None:
        self.seed = int(seed)
        self.sample_rate = sample_rate

    def fingerprint(self) -> str:
        return f"random-v1-seed{self.seed}"

    def score(self, batch: Batch) -> torch.Tensor:
        import torch

        values = []
        for cid in batch.clip_ids:
            digest = hashlib.sha256(f"{self.seed}\0{cid}".encode()).digest()
            values.append(int.from_bytes(digest[:8], "big") / 2**64)
        return torch.tensor(values, dtype=torch.float64)


class DurationModel:
    """Longer clip = better (seconds of audio)."""

    def __init__(self, sample_rate: int = 16000) -> None:
        self.sample_rate = sample_rate

    def fingerprint(self) -> str:
        return "duration-v1"

    def score(self, batch: Batch) -> torch.Tensor:
        import torch

        return batch.lengths.to(torch.float64) / float(batch.sample_rate)


class LoudnessModel:
    """Louder clip = better: RMS level in dBFS over the real (unpadded) samples."""

    def __init__(self, sample_rate: int = 16000, floor_db: float = -120.0) -> None:
        self.sample_rate = sample_rate
        self.floor_db = float(floor_db)

    def fingerprint(self) -> str:
        return f"loudness-rms-v1-floor{self.floor_db}"

    def score(self, batch: Batch) -> torch.Tensor:
        import torch

        # Row by row over exactly the real samples: a padded reduction may group the additions
        # differently with the padded width and change the last bit of the score.
        powers = []
        for row, n in zip(batch.waveforms, batch.lengths.tolist(), strict=True):
            x = row[: max(int(n), 1)].to(torch.float64)
            powers.append(torch.dot(x, x) / max(int(n), 1))
        power = torch.stack(powers).cpu()
        db = 10.0 * torch.log10(power.clamp(min=1e-300))
        return db.clamp(min=self.floor_db)
