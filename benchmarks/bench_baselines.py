"""Forward time of the reference scalar model (default log-mel config) on CPU.

16 clips of 3 s at 16 kHz, one batch, under inference mode: the harness's default batch size at
a typical clip length. Target: well under 100 ms on the 2-core machine. Run with `make bench`.
"""

from __future__ import annotations

import torch

from benchmark.baselines.scalar import ScalarRewardModel
from benchmark.scoring.models import Batch


def test_logmel_scalar_forward_16x3s(benchmark) -> None:
    model = ScalarRewardModel().eval()
    g = torch.Generator().manual_seed(0)
    batch = Batch(
        0.1 * torch.randn(16, 48000, generator=g),
        torch.full((16,), 48000, dtype=torch.int64),
        16000,
        tuple(f"c{i}" for i in range(16)),
    )

    def forward() -> torch.Tensor:
        with torch.inference_mode():
            return model.score(batch)

    out = benchmark(forward)
    assert out.shape == (16,)
    benchmark.extra_info["parameters"] = sum(p.numel() for p in model.parameters())
