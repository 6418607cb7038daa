"""P1 and P2 of issue 12: what the scoring loop costs around the model, and what it saves.

- P2, scorer vs pure forward: `score_clips` (cold score cache, the task's packed audio store, batch
  16) against the same model's forward over the same batches, decoded and padded beforehand.
  Cold as for a new submission: the cache file exists (as `$MOSRM_HOME/scores.sqlite` does) and
  holds none of this model's scores (a new fingerprint every round).
  The loop adds the cache, the store's index, bucketing, validation, a journal append per batch
  (`benchmark.scoring.journal`: a kill loses no finished batch) and the commit at the end; the
  reading and padding of the next batches runs beside the model (`benchmark.scoring.prefetch`). Goal
  ≤ 1.10×.
- P1, scorer vs the naive per-pair loop a researcher would write: for each pair, load both files
  (decode and resample the source audio) and score each clip alone. Goal ≥ 25×.

Both use the reference scalar model (`ScalarRewardModel`, the log-mel CNN of the baselines) on
generated clips of 1.5–3.5 s (the demo's mean is 2.5 s) at 16, 22.05 and 48 kHz, prepared into a
16 kHz cache with its store as `mosrm prepare` does. The two sides of a ratio are timed in
alternation: P2 is the median over rounds of each scorer round against the mean of the forward
passes timed just before and just after it, so that a load burst on a shared machine slows both
sides of a ratio or neither (fastest-of-each-side ratios swung from 0.2× to 2× here under load).
Run with `make bench`; the ratios are in each benchmark's extra_info and printed.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import soundfile as sf
import torch

from benchmark.baselines.scalar import ScalarRewardModel
from benchmark.data.audio import length_buckets, load_audio, pad_batch
from benchmark.data.audio_cache import build_cache
from benchmark.data.batch import Batch
from benchmark.data.packed_audio import open_store
from benchmark.data.tables import CLIP_SCHEMA, PAIR_SCHEMA, from_rows
from benchmark.scoring.config import ScoringConfig
from benchmark.scoring.loop import score_clips
from benchmark.scoring.models import Submission, SubmissionSpec
from benchmark.scoring.predictions import predict

P2_CLIPS = 256
P1_CLIPS = 32  # x 11.7 pairs each: ~375 pairs, ~750 single-clip forwards for the naive loop
PAIRS_PER_CLIP = 11.7  # the demo's test split: 3,000 pairs on 256 clips
BATCH = 16
P2_GOAL = 1.10
P1_GOAL = 25.0
CONFIG = ScoringConfig(max_batch_size=BATCH, progress=False, device="cpu")
P2_DEVICE = os.environ.get("MOSRM_BENCH_DEVICE", "cpu")
P2_BF16 = os.environ.get("MOSRM_BENCH_BF16", "") == "1"
"""P2 on another device (`benchmarks/gpu_scale_check.sh`: cuda, fp32 and bf16 autocast). The goal
is this machine's (2 CPU cores); on a GPU, where the CNN's forward takes a few milliseconds, the
ratio is reported, not asserted."""


def _corpus(root: Path, n: int) -> tuple[pa.Table, pa.Table, Path]:
    """(source clip table, prepared clip table, prepared audio folder) of `n` generated clips."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        sr, channels = ((16000, 1), (22050, 1), (48000, 2))[i % 3]
        seconds = float(rng.uniform(1.5, 3.5))
        x = 0.1 * rng.standard_normal((int(seconds * sr), channels))
        path = root / "data" / f"{i:04d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, x.astype(np.float32), sr, subtype="PCM_16")
        old = path.stat().st_mtime_ns - 3_600 * 1_000_000_000
        os.utime(path, ns=(old, old))
        rows.append(
            {
                "clip_id": f"c{i:04d}",
                "corpus": "bench",
                "split": "test",
                "audio_path": path.name,
                "mos": float(1 + i % 5),
                "duration": seconds,
            }
        )
    clips = from_rows(rows, CLIP_SCHEMA)
    audio = root / "audio"
    prepared = build_cache(clips, root / "data", audio, progress=False)
    ids = prepared.column("clip_id").to_pylist()
    assert open_store(audio, ids, prepared.column("audio_path").to_pylist()) is not None
    return clips, prepared, audio


def _model() -> ScalarRewardModel:
    torch.manual_seed(0)
    return ScalarRewardModel().eval()


def test_p2_scorer_vs_pure_forward(benchmark, tmp_path: Path) -> None:
    _, clips, audio = _corpus(tmp_path, P2_CLIPS)
    config = ScoringConfig(max_batch_size=BATCH, progress=False, device=P2_DEVICE, bf16=P2_BF16)
    device = torch.device(P2_DEVICE)
    model = _model().to(device)
    # the scorer's own batches (durations given: the same length buckets), decoded beforehand
    store = open_store(
        audio, clips.column("clip_id").to_pylist(), clips.column("audio_path").to_pylist()
    )
    assert store is not None
    ids = clips.column("clip_id").to_pylist()
    lengths = [max(1, round(d * 16000)) for d in clips.column("duration").to_pylist()]
    batches = [
        pad_batch([np.array(store.wave(i, 16000)) for i in b], 16000, [ids[i] for i in b]).to(
            device
        )
        for b in length_buckets(lengths, BATCH, CONFIG.max_batch_samples)
    ]
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if P2_BF16 and device.type == "cuda"
        else contextlib.nullcontext()
    )

    def forward() -> list[torch.Tensor]:
        with torch.inference_mode(), autocast:
            out = [model.score(b) for b in batches]
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return out

    counter = itertools.count()
    forward_s: list[float] = []

    cache = tmp_path / "scores.sqlite"

    def setup() -> tuple[tuple, dict]:
        started = time.perf_counter()
        forward()
        forward_s.append(time.perf_counter() - started)
        return (f"p2-{next(counter)}",), {}

    def scorer(fingerprint: str) -> dict[str, float]:
        return score_clips(
            model, clips, audio, fingerprint=fingerprint, config=config, cache_path=cache
        )

    forward()  # warm-up: first-call allocations are nobody's cost
    scorer("warm-up")
    scores = benchmark.pedantic(scorer, setup=setup, rounds=15, iterations=1)
    setup()  # the forward pass after the last round
    pure = forward()
    by_batch = [scores[c] for b in batches for c in b.clip_ids]
    np.testing.assert_allclose(by_batch, torch.cat(pure).double().cpu().numpy(), rtol=1e-6)
    scorer_s = benchmark.stats.stats.data
    paired = [s / ((forward_s[i] + forward_s[i + 1]) / 2) for i, s in enumerate(scorer_s)]
    ratio = float(np.median(paired))
    benchmark.extra_info.update(
        {
            "clips": P2_CLIPS,
            "batch": BATCH,
            "scorer_ms_median": round(float(np.median(scorer_s)) * 1000, 1),
            "forward_ms_median": round(float(np.median(forward_s)) * 1000, 1),
            "ratio": round(ratio, 3),
            "ratio_of_minima": round(min(scorer_s) / min(forward_s), 3),
            "goal": P2_GOAL,
            "device": P2_DEVICE,
            "bf16": P2_BF16,
        }
    )
    print(
        f"\nP2 ({P2_DEVICE}{', bf16' if P2_BF16 else ''}) scorer {np.median(scorer_s) * 1000:.0f} ms vs pure forward "
        f"{np.median(forward_s) * 1000:.0f} ms (medians) on {P2_CLIPS} clips, batch {BATCH}: "
        f"{ratio:.3f}x (median of paired rounds; ratio of minima {min(scorer_s) / min(forward_s):.3f}x)"
    )
    if device.type == "cpu":
        assert ratio <= P2_GOAL, f"P2 scorer/forward {ratio:.3f}x > {P2_GOAL}"


def _pairs(ids: list[str], n_pairs: int) -> pa.Table:
    rng = np.random.default_rng(1)
    rows = []
    seen: set[tuple[str, str]] = set()
    while len(rows) < n_pairs:
        a, b = (ids[int(k)] for k in rng.choice(len(ids), size=2, replace=False))
        if (a, b) in seen or (b, a) in seen:
            continue
        seen.add((a, b))
        rows.append(
            {
                "pair_id": f"p{len(rows)}",
                "task": "bench",
                "split": "test",
                "relation": "cross",
                "clip_a": a,
                "clip_b": b,
                "mos_a": 1.0,
                "mos_b": 2.0,
                "delta_mos": 1.0,
                "chosen": "b",
                "delta_bin": 0,
                "dmos_lt_0_2": False,
                "dmos_le_0_5": False,
                "dmos_gt_1_5": False,
            }
        )
    return from_rows(rows, PAIR_SCHEMA)


def test_p1_scorer_vs_naive_per_pair_loop(benchmark, tmp_path: Path) -> None:
    sources, clips, audio = _corpus(tmp_path, P1_CLIPS)
    ids = clips.column("clip_id").to_pylist()
    pairs = _pairs(ids, round(P1_CLIPS * PAIRS_PER_CLIP))
    model = _model()
    spec = SubmissionSpec(name="p1", display_name="P1", kind="scalar", entry="m.py:build")
    submission = Submission(spec=spec, folder=tmp_path, model=model, fingerprint="p1")
    source_of = dict(zip(ids, sources.column("audio_path").to_pylist(), strict=True))

    def naive() -> tuple[list[float], list[float]]:
        """What a researcher writes first: per pair, load both files and score each alone."""
        score_a, score_b = [], []
        with torch.inference_mode():
            a_ids, b_ids = pairs.column("clip_a").to_pylist(), pairs.column("clip_b").to_pylist()
            for a, b in zip(a_ids, b_ids, strict=True):
                for cid, out in ((a, score_a), (b, score_b)):
                    wave = torch.from_numpy(load_audio(tmp_path / "data" / source_of[cid], 16000))
                    batch = Batch(wave[None], torch.tensor([wave.shape[0]]), 16000, (cid,))
                    out.append(float(model.score(batch)[0]))
        return score_a, score_b

    counter = itertools.count()
    naive_s: list[float] = []
    naive_scores: list[tuple[list[float], list[float]]] = []

    def setup() -> tuple[tuple, dict]:
        if not naive_s:  # seconds a round, and far from the goal: one round is enough
            started = time.perf_counter()
            naive_scores.append(naive())
            naive_s.append(time.perf_counter() - started)
        return (tmp_path / f"cold-{next(counter)}.sqlite",), {}

    def scorer(cache: Path) -> pa.Table:
        return predict(submission, pairs, clips, audio, config=CONFIG, cache_path=cache)

    pred = benchmark.pedantic(scorer, setup=setup, rounds=5, iterations=1)
    want_a, want_b = naive_scores[0]
    np.testing.assert_allclose(pred.column("score_a").to_numpy(), want_a, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pred.column("score_b").to_numpy(), want_b, rtol=1e-5, atol=1e-6)
    ratio = min(naive_s) / benchmark.stats.stats.median  # the median: noise must not help it
    benchmark.extra_info.update(
        {
            "clips": P1_CLIPS,
            "pairs": pairs.num_rows,
            "scorer_ms": round(benchmark.stats.stats.median * 1000, 1),
            "naive_ms": round(min(naive_s) * 1000, 1),
            "ratio": round(ratio, 1),
            "goal": P1_GOAL,
        }
    )
    print(
        f"\nP1 naive per-pair loop {min(naive_s) * 1000:.0f} ms vs scorer "
        f"{benchmark.stats.stats.median * 1000:.0f} ms ({pairs.num_rows} pairs on {P1_CLIPS} "
        f"clips): {ratio:.1f}x"
    )
    assert ratio >= P1_GOAL, f"P1 naive/scorer {ratio:.1f}x < {P1_GOAL}"


def test_p2_prefetch_gain(benchmark, tmp_path: Path, monkeypatch) -> None:
    """The scorer with the background reader on, each round against the mean of rounds with it
    off just before and just after (the store in all): what the overlap is worth on this
    machine. Reported, not asserted. The reader is forced on: the loop leaves it off where the
    model's threads take every core (`scoring._read_ahead`), which is this measurement's
    question. (Timing "off" only before each "on" favoured "on", which ran warm: 1.00-1.04x.)"""
    import benchmark.scoring.loop as scoring

    monkeypatch.setattr(scoring, "_usable_cpus", lambda: 1 << 20)
    _, clips, audio = _corpus(tmp_path, P2_CLIPS)
    model = _model()
    cache = tmp_path / "scores.sqlite"
    counter = itertools.count()
    off_s: list[float] = []

    def run(prefetch: int) -> dict[str, float]:
        config = ScoringConfig(
            max_batch_size=BATCH, progress=False, device="cpu", prefetch=prefetch
        )
        fingerprint = f"p2-{next(counter)}"
        return score_clips(
            model, clips, audio, fingerprint=fingerprint, config=config, cache_path=cache
        )

    def setup() -> tuple[tuple, dict]:
        started = time.perf_counter()
        run(0)
        off_s.append(time.perf_counter() - started)
        return (2,), {}

    run(2)
    benchmark.pedantic(run, setup=setup, rounds=11, iterations=1)
    setup()  # the "off" round after the last "on" one
    on_s = benchmark.stats.stats.data
    gain = float(np.median([(off_s[i] + off_s[i + 1]) / 2 / on for i, on in enumerate(on_s)]))
    benchmark.extra_info.update(
        {
            "prefetch_off_ms_median": round(float(np.median(off_s)) * 1000, 1),
            "prefetch_on_ms_median": round(float(np.median(on_s)) * 1000, 1),
            "off_over_on": round(gain, 3),
        }
    )
    print(f"\nP2 prefetch off/on: {gain:.3f}x (median of paired rounds, reader forced on)")
