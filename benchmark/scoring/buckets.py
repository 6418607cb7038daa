"""Batches of decoded audio, in the loop's order: a bucket of units is read (from the packed store
or file by file), padded, and handed over, made ahead in a background thread or in DataLoader
workers (`_read_ahead`); the order and contents never depend on which. Runs no model.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from benchmark.data.audio import (
    load_audio,
    pad_batch,
)
from benchmark.data.batch import Batch, PadBuffers
from benchmark.errors import DataError

if TYPE_CHECKING:
    from benchmark.data.packed_audio import PackedClips


@dataclass(frozen=True)
class _Loaded:
    """One bucket decoded: a Batch per position (1 for clips, 2 for pairs), or the DataError text.

    Errors travel as values because the DataLoader would re-raise a worker's exception with the
    worker's traceback pasted into the message.
    """

    bucket: int
    batches: tuple[Batch, ...] | None
    error: str | None


class _BucketDataset:
    """Item k = bucket k, decoded and padded; each clip decoded once per bucket.

    Clip i comes from the packed store when there is one (`store`), else from its file.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        clip_ids: Sequence[str],
        units: Sequence[tuple[int, ...]],
        buckets: Sequence[Sequence[int]],
        sample_rate: int,
        store: PackedClips | None = None,
        buffers: PadBuffers | None = None,
    ) -> None:
        self.paths = list(paths)
        self.clip_ids = list(clip_ids)
        self.units = list(units)
        self.buckets = [list(b) for b in buckets]
        self.sample_rate = sample_rate
        self.store = store
        self.buffers = buffers  # in-process only: bucket k reuses the memory of bucket k - slots

    def _wave(self, c: int) -> np.ndarray:
        if self.store is not None:
            return self.store.wave(c, self.sample_rate)
        return load_audio(self.paths[c], self.sample_rate)

    def __len__(self) -> int:
        return len(self.buckets)

    def __getitem__(self, k: int) -> _Loaded:
        members = [self.units[u] for u in self.buckets[k]]
        waves: dict[int, np.ndarray] = {}
        try:
            for unit in members:
                for c in unit:
                    if c not in waves:
                        waves[c] = self._wave(c)
        except DataError as exc:
            return _Loaded(k, None, str(exc))
        batches = []
        for pos in range(len(members[0])):
            column = [waves[unit[pos]] for unit in members]
            ids = [self.clip_ids[unit[pos]] for unit in members]
            if self.buffers is None:
                batches.append(pad_batch(column, self.sample_rate, ids))
            else:
                batches.append(self.buffers.pad(k, column, self.sample_rate, ids, part=pos))
        return _Loaded(k, tuple(batches), None)


def _identity(x: _Loaded) -> _Loaded:
    return x


def _pinned(loaded: _Loaded) -> _Loaded:
    """`loaded` in page-locked memory, so the copy to the GPU can overlap the model's work."""
    if loaded.batches is None:
        return loaded
    batches = tuple(
        Batch(b.waveforms.pin_memory(), b.lengths.pin_memory(), b.sample_rate, b.clip_ids)
        for b in loaded.batches
    )
    return _Loaded(loaded.bucket, batches, None)


def _decoded(dataset: _BucketDataset, num_workers: int, pin: bool) -> Iterator[_Loaded]:
    """The buckets in order: in this thread, or from `num_workers` DataLoader processes."""
    if num_workers > 0:
        from torch.utils.data import DataLoader

        source: Iterable[_Loaded] = DataLoader(
            dataset,  # type: ignore[arg-type]
            batch_size=None,
            shuffle=False,
            num_workers=num_workers,
            collate_fn=_identity,  # type: ignore[arg-type]  # batch_size=None: items, not lists
        )
    else:
        source = (dataset[k] for k in range(len(dataset)))
    for loaded in source:
        yield _pinned(loaded) if pin else loaded


def _iter_buckets(
    dataset: _BucketDataset, num_workers: int, prefetch: int = 0, pin: bool = False
) -> Generator[_Loaded, None, None]:
    """Decoded buckets in order, made `prefetch` ahead in a background thread; a bucket that
    failed to decode raises its one-line `DataError` here, in the loop's thread."""
    from benchmark.scoring.prefetch import prefetched

    with closing(prefetched(_decoded(dataset, num_workers, pin), prefetch)) as loaded_buckets:
        for loaded in loaded_buckets:
            if loaded.error is not None:
                raise DataError(loaded.error)
            yield loaded


# ---------------------------------------------------------------------------------------------
# shared plumbing
