"""What a training run sees: prepared tasks' pairs and clips, through the scorer's own audio path.

A model trained on audio decoded one way and scored on audio decoded another learns the difference.
So clips come from the task's prepared 16 kHz cache through `benchmark.data.audio.load_audio` and
`pad_batch`, exactly as `benchmark.scoring.loop` feeds them. The order of examples is a pure function
of (seed, epoch), so an interrupted run resumes on the very batches it would have seen, and every
rank of a torchrun job derives the same global batches and takes its own slice of each.
Balance across corpora (the paper trains one model on five): each epoch draws the same number of
examples from every task.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmark.errors import MosrmError

if TYPE_CHECKING:
    import pyarrow as pa

    from benchmark.data.batch import Batch
    from benchmark.pairs.prepare import PreparedTask


@dataclass
class TaskData:
    """One task's training material: train/dev pairs as arrays, and where its audio lives."""

    name: str
    audio_base: Path
    paths: dict[str, str]  # clip_id -> audio path (relative to audio_base or absolute)
    mos: dict[str, float]  # clip_id -> MOS on the canonical 1–5 scale
    train: dict[str, np.ndarray]  # chosen, rejected (clip ids), delta_bin
    dev: dict[str, np.ndarray] = field(default_factory=dict)
    train_clips: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))

    @classmethod
    def of(
        cls, prepared: PreparedTask, train_split: str = "train", dev_split: str = "dev"
    ) -> TaskData:
        name = prepared.task.name
        if train_split not in prepared.pair_files:
            raise MosrmError(
                f"task '{name}' has no '{train_split}' pairs to train on (splits: "
                f"{', '.join(prepared.pair_files) or 'none'})"
            )
        clips = prepared.clips
        ids = clips.column("clip_id").to_pylist()
        train = _pair_arrays(prepared.pairs(train_split))
        if train["chosen"].size == 0:
            raise MosrmError(f"task '{name}': the '{train_split}' split has no pairs")
        dev = _pair_arrays(prepared.pairs(dev_split)) if dev_split in prepared.pair_files else {}
        split = np.asarray(clips.column("split").to_pylist(), dtype=object)
        return cls(
            name=name,
            audio_base=prepared.audio_base,
            paths=dict(zip(ids, clips.column("audio_path").to_pylist(), strict=True)),
            mos=dict(zip(ids, clips.column("mos").to_pylist(), strict=True)),
            train=train,
            dev=dev,
            train_clips=np.asarray(sorted(np.asarray(ids, dtype=object)[split == train_split])),
        )


def _pair_arrays(pairs: pa.Table) -> dict[str, np.ndarray]:
    a = np.asarray(pairs.column("clip_a").to_pylist(), dtype=object)
    b = np.asarray(pairs.column("clip_b").to_pylist(), dtype=object)
    first = np.asarray(pairs.column("chosen").to_pylist(), dtype=object) == "a"
    return {
        "chosen": np.where(first, a, b),
        "rejected": np.where(first, b, a),
        "delta_bin": pairs.column("delta_bin").to_numpy().astype(np.int64),
        "pair_id": np.asarray(pairs.column("pair_id").to_pylist(), dtype=object),
    }


def rng_for(seed: int, *parts: object) -> np.random.Generator:
    """A generator from a SHA-256 of the seed and labels: independent of hash() and of rank."""
    text = "\x1f".join(str(p) for p in (seed, *parts))
    return np.random.default_rng(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big"))


def epoch_plan(
    tasks: list[TaskData],
    *,
    seed: int,
    epoch: int,
    batch: int,
    unit: str = "pair",
    per_task: int | None = None,
) -> list[list[tuple[int, int]]]:
    """The epoch's global batches as (task index, row) lists: equal draws per task, interleaved.

    `unit` is "pair" (BT: rows of the train pairs) or "clip" (MSE: rows of the train clips);
    `per_task` caps the draws per task (a different subset each epoch). A last partial batch is
    dropped, so every rank of a distributed run has equal work.
    """
    sizes = [t.train["chosen"].size if unit == "pair" else t.train_clips.size for t in tasks]
    per_task = min(sizes) if per_task is None else min(per_task, min(sizes))
    if per_task == 0:
        empty = [t.name for t, n in zip(tasks, sizes, strict=True) if n == 0]
        raise MosrmError(f"no training {unit}s in task(s) {', '.join(empty)}")
    order: list[tuple[int, int]] = []
    draws = [
        rng_for(seed, "epoch", epoch, t.name, unit).permutation(n)[:per_task]
        for t, n in zip(tasks, sizes, strict=True)
    ]
    for i in range(per_task):
        order.extend((k, int(d[i])) for k, d in enumerate(draws))
    mix = rng_for(seed, "mix", epoch, unit).permutation(len(order))
    order = [order[j] for j in mix]
    return [order[i : i + batch] for i in range(0, len(order) - batch + 1, batch)]


class AudioStore:
    """Decoded clips, kept in memory up to `max_bytes` (then the oldest are dropped)."""

    def __init__(
        self,
        tasks: list[TaskData],
        sample_rate: int,
        max_seconds: float | None,
        max_bytes: int = 2 << 30,
    ) -> None:
        self.tasks = tasks
        self.sample_rate = sample_rate
        self.max_samples = None if max_seconds is None else int(max_seconds * sample_rate)
        self.max_bytes = max_bytes
        self._cache: dict[tuple[int, str], np.ndarray] = {}
        self._bytes = 0

    def wave(self, task: int, clip_id: str) -> np.ndarray:
        """The clip as the scorer would feed it, cut to its first `max_seconds` for training."""
        from benchmark.data.audio import load_audio, resolve_audio_path

        key = (task, clip_id)
        got = self._cache.get(key)
        if got is None:
            t = self.tasks[task]
            got = load_audio(resolve_audio_path(t.audio_base, t.paths[clip_id]), self.sample_rate)
            if self.max_samples is not None:
                got = got[: self.max_samples]
            self._cache[key] = got
            self._bytes += got.nbytes
            while self._bytes > self.max_bytes and len(self._cache) > 1:
                old = next(iter(self._cache))
                self._bytes -= self._cache.pop(old).nbytes
        return got

    def batch(self, items: list[tuple[int, str]]) -> Batch:
        from benchmark.data.audio import pad_batch

        waves = [self.wave(t, c) for t, c in items]
        return pad_batch(waves, self.sample_rate, [f"{t}:{c}" for t, c in items])


def pair_batch(
    store: AudioStore, tasks: list[TaskData], rows: list[tuple[int, int]], split: str = "train"
) -> tuple[Batch, Batch]:
    """(chosen, rejected) batches for pair rows of `split`."""
    chosen = [(k, str(getattr(tasks[k], split)["chosen"][r])) for k, r in rows]
    rejected = [(k, str(getattr(tasks[k], split)["rejected"][r])) for k, r in rows]
    return store.batch(chosen), store.batch(rejected)


def clip_batch(
    store: AudioStore, tasks: list[TaskData], rows: list[tuple[int, int]]
) -> tuple[Batch, np.ndarray]:
    """A batch of train clips and their MOS targets (MSE)."""
    items = [(k, str(tasks[k].train_clips[r])) for k, r in rows]
    mos = np.array([tasks[k].mos[c] for k, c in items], dtype=np.float32)
    return store.batch(items), mos


def describe(tasks: list[TaskData]) -> dict[str, Any]:
    """What the run trained on, for the submission's `training_data` and its model card."""
    return {
        t.name: {
            "train_pairs": int(t.train["chosen"].size),
            "dev_pairs": int(t.dev.get("chosen", np.empty(0)).size),
            "train_clips": int(t.train_clips.size),
        }
        for t in tasks
    }
