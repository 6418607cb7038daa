"""`mosrm validate`'s smoke run: the submission scores a tiny generated task, through the real loop.

Loading a spec proves little: a model that returns shape [B, 1], NaN, or scores that move with
batch size (it reads the zero padding) used to validate and then fail, or worse, succeed wrongly, in
`evaluate`. Here it runs on 12 generated clips of different lengths, in its sandbox, once at batch
size 1 and once batched, with throw-away score caches, so every such problem surfaces in seconds
with the folder and the function named.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmark.errors import SubmissionError

if TYPE_CHECKING:
    import pyarrow as pa

    from benchmark.scoring.models import Submission

RATE = 16000
N_CLIPS = 12
ATOL = 1e-4
RTOL = 1e-4
"""Batch 1 vs N may differ by float noise (another BLAS path), never by what padding adds."""


@dataclass(frozen=True)
class SmokeReport:
    clips: int
    batch_size: int
    max_abs_diff: float
    clips_per_second: float

    def describe(self) -> str:
        return (
            f"smoke run on {self.clips} generated clips: outputs finite and of shape [B], "
            f"batch 1 vs {self.batch_size} agree (max |Δ| {self.max_abs_diff:.2g}), "
            f"{self.clips_per_second:.0f} clips/s"
        )


def mock_task(folder: Path, n: int = N_CLIPS, seed: int = 0) -> tuple[pa.Table, pa.Table]:
    """`n` (>= 2) tones of 0.2–1.5 s, noise at different levels; every pair of the first six."""
    import itertools

    import soundfile as sf

    from benchmark.data.tables import CLIP_SCHEMA, PAIR_SCHEMA, from_rows

    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        seconds = 0.2 + 1.3 * i / (n - 1)
        t = np.arange(int(seconds * RATE)) / RATE
        x = 0.3 * np.sin(2 * np.pi * (150 + 40 * i) * t) + 0.02 * (1 + i % 4) * rng.normal(
            size=t.size
        )
        path = folder / f"clip{i:02d}.wav"
        sf.write(path, x.astype(np.float32), RATE, subtype="PCM_16")
        rows.append(
            {
                "clip_id": f"clip{i:02d}",
                "corpus": "smoke",
                "split": "test",
                "audio_path": path.name,
                "mos": 1.0 + 4.0 * i / (n - 1),
                "sample_rate": RATE,
                "duration": seconds,
            }
        )
    clips = from_rows(rows, CLIP_SCHEMA)
    pairs = []
    for a, b in itertools.combinations(range(min(6, n)), 2):
        pairs.append(
            {
                "pair_id": f"p{a}{b}",
                "task": "smoke",
                "split": "test",
                "relation": "any",
                "clip_a": f"clip{a:02d}",
                "clip_b": f"clip{b:02d}",
                "mos_a": rows[a]["mos"],
                "mos_b": rows[b]["mos"],
                "delta_mos": abs(rows[a]["mos"] - rows[b]["mos"]),
                "chosen": "b",
                "delta_bin": 0,
                "dmos_lt_0_2": False,
                "dmos_le_0_5": False,
                "dmos_gt_1_5": False,
            }
        )
    return clips, from_rows(pairs, PAIR_SCHEMA)


def smoke_run(submission: Submission, *, batch_size: int = 8) -> SmokeReport:
    """Score the mock task at batch 1 and `batch_size`; SubmissionError naming the folder if bad."""
    from benchmark.scoring.config import ScoringConfig
    from benchmark.scoring.loop import score_clips, score_pairs

    with tempfile.TemporaryDirectory(prefix="mosrm-smoke-") as tmp:
        root = Path(tmp)
        clips, pairs = mock_task(root)
        runs: list[np.ndarray] = []
        elapsed = 0.0
        for size in (1, batch_size):
            config = ScoringConfig(max_batch_size=size, device="cpu", progress=False)
            cache = root / f"cache-{size}.sqlite"
            start = time.perf_counter()
            try:
                if submission.spec.kind == "pairwise":
                    out = score_pairs(
                        submission.model,
                        pairs,
                        clips,
                        root,
                        fingerprint=submission.fingerprint,
                        config=config,
                        cache_path=cache,
                    )
                else:
                    got = score_clips(
                        submission.model,
                        clips,
                        root,
                        fingerprint=submission.fingerprint,
                        config=config,
                        cache_path=cache,
                    )
                    out = np.array(list(got.values()), dtype=np.float64)
            except SubmissionError as exc:
                text = str(exc).replace(f"model {submission.fingerprint}", "model")
                text = text.removeprefix(f"{submission.folder}: ")
                raise SubmissionError(
                    f"{submission.folder}: smoke run at batch size {size}: {text}"
                ) from None
            if size == batch_size:
                elapsed = time.perf_counter() - start
            runs.append(out)
    diff = np.abs(runs[0] - runs[1])
    bad = diff > ATOL + RTOL * np.abs(runs[0])
    if bad.any():
        i = int(np.argmax(diff))
        what = "pair" if submission.spec.kind == "pairwise" else "clip"
        raise SubmissionError(
            f"{submission.folder}: scores change with batch size (batch 1 vs {batch_size}, max "
            f"|Δ| = {diff[i]:.3g} on {what} {i} of the smoke task): the model reads the zero "
            "padding; mask it with batch.lengths or batch.mask()"
        )
    n = len(runs[1]) if submission.spec.kind != "pairwise" else N_CLIPS
    return SmokeReport(
        clips=N_CLIPS,
        batch_size=batch_size,
        max_abs_diff=float(diff.max(initial=0.0)),
        clips_per_second=n / elapsed if elapsed > 0 else float("inf"),
    )
