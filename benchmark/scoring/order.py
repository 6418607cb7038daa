"""The order a model is sent clips and pairs in, and which clip of a pair a judge sees first:
functions of the audio alone (length, then audio SHA-256; a hash of both clips' audio), never of
clip ids, table order or labels (issue 20: an order that carries labels is a channel a submission
can learn from). Also each clip's length and audio key, read once per run.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from benchmark.data.audio import (
    audio_num_frames,
    resolve_audio_path,
)
from benchmark.errors import DataError
from benchmark.scoring.cache import ClipKey, ScoreCache

if TYPE_CHECKING:
    from benchmark.data.packed_audio import PackedClips


@dataclass(frozen=True)
class _ClipInfo:
    ids: list[str]
    paths: list[Path]  # empty when the store serves the clips: no file is touched then
    durations: list[float | None]
    keys: list[ClipKey]
    store: PackedClips | None = None
    """The packed store's slice of these clips, when current (`benchmark.data.packed_audio`)."""


def _clip_info(clips: pa.Table, data_root: Path, cache: ScoreCache) -> _ClipInfo:
    for col in ("clip_id", "audio_path"):
        if col not in clips.column_names:
            raise DataError(f"clip table has no '{col}' column")
    ids = [str(c) for c in clips.column("clip_id").to_pylist()]
    dup = sorted(c for c, n in Counter(ids).items() if n > 1)
    if dup:
        raise DataError(f"clip table has duplicate clip_id ({len(dup)}, e.g. {', '.join(dup[:3])})")
    root = Path(data_root)
    rels = [str(rel) for rel in clips.column("audio_path").to_pylist()]
    if "duration" in clips.column_names:
        durations = clips.column("duration").to_pylist()
    else:
        durations = [None] * len(ids)
    from benchmark.data.packed_audio import open_store

    store = open_store(root, ids, rels)
    if store is not None:  # the manifest vouches for the audio: no file to stat, read or hash
        return _ClipInfo(ids, [], durations, list(zip(ids, store.shas, strict=True)), store)
    paths = [resolve_audio_path(root, rel) for rel in rels]
    missing = [(c, p) for c, p in zip(ids, paths, strict=True) if not p.is_file()]
    if missing:
        examples = "; ".join(f"{p} (clip {c})" for c, p in missing[:3])
        raise DataError(f"{len(missing)} audio files not found under {root}, e.g. {examples}")
    shas = cache.hashes(paths)
    keys = list(zip(ids, shas, strict=True))
    return _ClipInfo(ids, paths, durations, keys)


def _length(info: _ClipInfo, i: int, sample_rate: int) -> int:
    d = info.durations[i]
    if d is not None and math.isfinite(d) and d >= 0:
        return max(1, round(d * sample_rate))
    if info.store is not None:
        return max(1, info.store.num_frames(i, sample_rate))
    return max(1, audio_num_frames(info.paths[i], sample_rate))


# ---------------------------------------------------------------------------------------------
# the order a model is sent its units in: a function of the audio alone (issue 20)


def _tie(clip_id: str) -> str:
    """What orders two clips of identical audio: a hash of the clip id, so that the order says
    nothing about the id, its system or its label (a model sees the same input twice)."""
    return hashlib.sha256(clip_id.encode()).hexdigest()


def _audio_key(info: _ClipInfo, unit: tuple[int, ...]) -> tuple[tuple[str, str], ...]:
    """A unit's place among units of one length: its audio SHA-256s (then `_tie`), sorted, so
    it is the same whichever clip of a pair is presented first."""
    return tuple(sorted((info.keys[c][1], _tie(info.ids[c])) for c in unit))


def send_order(
    units: Sequence[int], lengths: dict[int, int], audio_keys: Sequence[Any]
) -> list[int]:
    """`units` in the order the model is sent them: by length, then by the audio
    (`audio_keys[i]` belongs to `units[i]`).

    A submission sees every clip it is sent, in order, so the order must tell it nothing the
    audio does not: not the clip table's order (clips sorted by id come in system order, and a
    model that mapped each clip's arrival position to a system's mean training MOS beat DNSMOS on
    the demo), not the pair table's, not clip ids. Sorting by length, then by audio SHA-256,
    makes the order a function of the audio alone; it is the same in every run, and the same
    batches are cut from it whatever the process count (`benchmark.scoring.sharding` deals them out).
    """
    keyed = sorted(zip(units, audio_keys, strict=True), key=lambda t: (lengths[t[0]], t[1]))
    return [u for u, _ in keyed]


def presented_first(info: _ClipInfo, x: int, y: int) -> bool:
    """Whether clip `x` is presented first when a judge is asked about clips x and y.

    Picked by a hash of both clips' audio SHA-256s, sorted: symmetric in (x, y), the same for
    every clip id holding that audio, and a coin flip with respect to the canonical (lo, hi) order,
    so the units of one batch come in both orientations and its first call carries no fixed role.
    (While lo came first, a judge answering 1 on odd calls and 0 on even ones won every pair
    whose smaller clip id was the better clip: 57.2% on the demo, and "consistent, unbiased,
    acyclic".) Identical audio: by `_tie`.
    """
    (ix, sx), (iy, sy) = info.keys[x], info.keys[y]
    if sx == sy:
        return _tie(ix) <= _tie(iy)
    low, high = sorted((sx, sy))
    flip = hashlib.sha256(f"{low}:{high}".encode()).digest()[0] & 1
    return sx == (high if flip else low)
