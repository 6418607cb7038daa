"""A clip table rated by simulated listeners (integer votes, 1-5), for the reliability and
ceiling tests: each clip's true mean uniform in [1.5, 4.5], votes around it with SD 0.8."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from benchmark.data.tables import CLIP_SCHEMA, conform


def rated_clips(
    n: int, seed: int, votes_per_clip: int | None = None, subsets: bool = False
) -> pa.Table:
    """`n` clips, each with `votes_per_clip` votes (None: 4-8, drawn per clip); two tracks with
    `subsets`; systems and contents cycle over 6 and 10 ids."""
    rng = np.random.default_rng(seed)
    votes = []
    for _ in range(n):
        mean = rng.uniform(1.5, 4.5)
        size = rng.integers(4, 9) if votes_per_clip is None else votes_per_clip
        votes.append(np.clip(np.rint(rng.normal(mean, 0.8, size)), 1, 5))
    rows = {
        "clip_id": [f"c{i:03d}" for i in range(n)],
        "corpus": ["t"] * n,
        "split": ["test"] * n,
        "audio_path": [f"{i}.wav" for i in range(n)],
        "mos": [float(v.mean()) for v in votes],
        "n_ratings": [len(v) for v in votes],
        "rating_std": [float(v.std(ddof=1)) for v in votes],
        "system_id": [f"s{i % 6}" for i in range(n)],
        "content_id": [f"t{i % 10}" for i in range(n)],
        "subset": [("track1" if i % 2 else "track2") if subsets else None for i in range(n)],
        "ratings": [v.tolist() for v in votes],
    }
    return conform(pa.table(rows), CLIP_SCHEMA)
