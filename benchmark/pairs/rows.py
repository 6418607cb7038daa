"""From sampled clip-index pairs to pair-file rows: ids, A/B balance, ΔMOS bins, in bounded memory.

A whole pool of 10^8 pairs (SOMOS train's cross pairs) held as arrays and sorted needs ~5 GB, and
as an Arrow table three times that. So a relation's pairs are either kept in memory (samples up to
`SPILL_ABOVE`) or spilled to 256 bucket files by the top byte of their pair id (16 bytes a pair);
both hand them back bucket by bucket, each bucket sorted by id. Every random choice (which half of
a relation is shown higher-MOS-first) is drawn bucket by bucket in that order, and rows are written
in row groups of exactly `ROW_GROUP`, so the file's bytes do not depend on which form was used.

The ΔMOS bins need every pair of the split before the first row is written: each relation keeps a
histogram of its ΔMOS values (exact integers, nano-MOS), and the bins are computed from the merged
histogram (memory O(distinct ΔMOS values), never O(pairs)).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmark.atomic import atomic_path
from benchmark.data.tables import FIXED_SUBSETS, PAIR_SCHEMA, parquet_options, schema_with_meta
from benchmark.errors import DataError
from benchmark.hashing import sha256_file
from benchmark.pairs.ids import pair_ids

ROW_GROUP = 1 << 20
"""Rows per Parquet row group and per batch built in memory (~60 MB of Arrow at most)."""

RELIABILITY_CHUNK = 1 << 15
"""Pairs per call of the label-reliability estimator: its dozen temporaries then stay in a
core's cache (1.4x faster than a whole row group at once; every value is per pair, so the
result is the same bytes)."""

SPILL_ABOVE = 4_000_000
"""Relations expected to hold more pairs than this are spilled to bucket files."""

BUCKET_BITS = 8
_BUCKETS = 1 << BUCKET_BITS
_SHIFT = np.uint64(64 - BUCKET_BITS)
_ROW = np.dtype([("pid", "<u8"), ("a", "<i4"), ("b", "<i4")])
_HYPERGEOMETRIC_MAX = 10**9  # numpy's limit on ngood / nbad
NANO = 1_000_000_000


class ClipArrays(Protocol):
    """What rows are made from: one split's clips sorted by id, as `pairs._Clips` holds them
    (read-only: a frozen dataclass satisfies it)."""

    @property
    def ids(self) -> np.ndarray: ...

    @property
    def mos(self) -> np.ndarray: ...

    @property
    def q(self) -> np.ndarray: ...

    @property
    def subset(self) -> np.ndarray: ...

    @property
    def subset_names(self) -> np.ndarray: ...

    @property
    def system(self) -> np.ndarray: ...

    @property
    def system_names(self) -> np.ndarray: ...

    @property
    def content(self) -> np.ndarray: ...

    @property
    def content_names(self) -> np.ndarray: ...


def _names(names: np.ndarray, codes: np.ndarray) -> pa.Array:
    """Unit names per pair side; code -1 (no id) is null."""
    return pa.array(names, pa.string()).take(pa.array(codes, pa.int64(), mask=codes < 0))


class _Histogram:
    """Exact counts of integer ΔMOS values, merged lazily so adding a chunk stays cheap.

    Given the clips' MOS (`q`), pairs are counted per (MOS of a, MOS of b) cell while the split
    has at most `GRID_LEVELS` distinct MOS values (MOS are means of a few integer ratings, so
    most do): a count per pair and no sort, where `np.unique` per chunk sorted every pair's ΔMOS
    (a quarter of the work of spilling 2·10^7 pairs). The counts are the same either way.
    """

    GRID_LEVELS = 256

    def __init__(self, q: np.ndarray | None = None) -> None:
        self._parts: list[tuple[np.ndarray, np.ndarray]] = []
        self._q = q
        self._grid: np.ndarray | None = None
        if q is not None and q.size:
            levels, level = np.unique(q, return_inverse=True)
            if levels.size <= self.GRID_LEVELS:
                self._levels, self._level = levels, level.astype(np.int64)
                self._grid = np.zeros(levels.size * levels.size, dtype=np.int64)

    def add_pairs(self, a: np.ndarray, b: np.ndarray) -> None:
        """Count the pairs (a[k], b[k]) of clips of `q`."""
        if self._grid is None:
            assert self._q is not None, "a histogram of pairs needs the clips' MOS"
            self.add(np.abs(self._q[a] - self._q[b]))
            return
        m = self._levels.size
        self._grid += np.bincount(self._level[a] * m + self._level[b], minlength=m * m)

    def add(self, dq: np.ndarray) -> None:
        if dq.size:
            self._parts.append(np.unique(dq, return_counts=True))
            if len(self._parts) > 32:
                self._parts = [self._merged(self._parts)]

    def extend(self, other: _Histogram) -> None:
        self._parts.extend(other._all_parts())

    def _all_parts(self) -> list[tuple[np.ndarray, np.ndarray]]:
        if self._grid is None or not self._grid.any():
            return list(self._parts)
        cells = np.flatnonzero(self._grid)
        i, j = np.divmod(cells, self._levels.size)
        dq = np.abs(self._levels[i] - self._levels[j])
        return [*self._parts, (dq, self._grid[cells])]

    def counts(self) -> tuple[np.ndarray, np.ndarray]:
        return self._merged(self._all_parts())

    @staticmethod
    def _merged(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        """(sorted distinct values, their counts) of parts whose values may repeat."""
        if not parts:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        values, inverse = np.unique(np.concatenate([v for v, _ in parts]), return_inverse=True)
        counts = np.zeros(values.size, dtype=np.int64)
        np.add.at(counts, inverse, np.concatenate([c for _, c in parts]))
        return values, counts


class RelationPairs:
    """One relation's pairs (clip indices a < b), handed back bucket by bucket in pair-id order."""

    def __init__(
        self,
        relation: str,
        salt: int,
        hashes: np.ndarray,
        q: np.ndarray,
        spill_dir: Path | None,
        where: str,
    ) -> None:
        self.relation = relation
        self.n = 0
        self.histogram = _Histogram(q)
        self._salt = salt
        self._hashes = hashes
        self._where = where
        self._spill = spill_dir
        self._files: dict[int, Any] = {}
        self._chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._sorted: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        if spill_dir is not None:
            spill_dir.mkdir(parents=True, exist_ok=True)

    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        if not a.size:
            return
        a = a.astype(np.int32)
        b = b.astype(np.int32)
        pid = pair_ids(self._salt, self._hashes[a], self._hashes[b])
        self.histogram.add_pairs(a, b)
        self.n += int(a.size)
        if self._spill is None:
            self._chunks.append((pid, a, b))
            self._sorted = None
            return
        bucket = (pid >> _SHIFT).astype(np.uint8)  # one byte: numpy's stable sort is a radix sort
        order = np.argsort(bucket, kind="stable")
        rows = np.empty(a.size, dtype=_ROW)
        rows["pid"], rows["a"], rows["b"] = pid[order], a[order], b[order]
        bounds = np.searchsorted(bucket[order], np.arange(_BUCKETS + 1))  # 256 is past the end
        for j in np.flatnonzero(np.diff(bounds)):
            f = self._files.get(int(j))
            if f is None:
                f = self._files[int(j)] = (self._spill / f"{j:03d}.bin").open("ab")
            f.write(rows[bounds[j] : bounds[j + 1]].tobytes())

    def buckets(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(pid, a, b) per non-empty bucket, ascending; the union is the relation sorted by id."""
        if self._spill is not None:
            for f in self._files.values():
                f.flush()
            for j in sorted(self._files):
                rows = np.fromfile(self._spill / f"{j:03d}.bin", dtype=_ROW)
                # ids are unique (`_check` refuses a collision, which any sort puts side by side),
                # so an unstable sort gives the same order, 25% faster than a stable one
                rows = rows[np.argsort(rows["pid"])]
                self._check(rows["pid"])
                yield rows["pid"], rows["a"].astype(np.int64), rows["b"].astype(np.int64)
            return
        if self._sorted is None:
            if self._chunks:
                pid, a, b = (np.concatenate(x) for x in zip(*self._chunks, strict=True))
            else:
                pid, a, b = np.empty(0, np.uint64), np.empty(0, np.int32), np.empty(0, np.int32)
            order = np.argsort(pid)  # unique ids: see the spilled case
            self._sorted = (pid[order], a[order], b[order])
            self._chunks = []
            self._check(self._sorted[0])
        pid, a, b = self._sorted
        edges = np.arange(1, _BUCKETS, dtype=np.uint64) << _SHIFT
        bounds = [0, *np.searchsorted(pid, edges).tolist(), pid.size]
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            if hi > lo:
                yield pid[lo:hi], a[lo:hi].astype(np.int64), b[lo:hi].astype(np.int64)

    def _check(self, pid: np.ndarray) -> None:
        same = np.flatnonzero(pid[1:] == pid[:-1])
        if same.size:
            raise DataError(
                f"pairs{self._where}.{self.relation}: two pairs share the id "
                f"{int(pid[same[0]]):016x} (a 64-bit id collision, odds ~n^2/2^65): report it"
            )

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files = {}


def bin_values(
    values: np.ndarray, counts: np.ndarray, bins: int
) -> tuple[list[float] | None, np.ndarray]:
    """Rank bins from a ΔMOS histogram (`pairs` module doc): a value with r smaller pairs out of n
    goes to band floor(r * bins / n); empty bands are dropped. Returns (edges, bin per value)."""
    n = int(counts.sum())
    if n == 0:
        return None, np.empty(0, dtype=np.int16)
    below = np.cumsum(counts) - counts
    used, idx = np.unique(below * bins // n, return_inverse=True)
    first = np.searchsorted(idx, np.arange(used.size))  # values are sorted, so bands are runs
    edges = [float(v) / NANO for v in values[first].tolist()] + [float(values[-1]) / NANO]
    return edges, idx.astype(np.int16)


class SplitRows:
    """One split's pairs, ready to become rows: relations in name order, each by pair id."""

    def __init__(
        self,
        c: ClipArrays,
        task: str,
        split: str,
        relations: Sequence[RelationPairs],
        ab_rngs: Sequence[Callable[[], np.random.Generator]],
        bins: int,
        workdir: Path | None,
        reliability: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None,
        pool_bins: tuple[list[int], int, int] | None = None,
    ) -> None:
        """`pool_bins` (`pools.pool_band_starts`): the bins of the split's candidate pool; each
        pair goes to the band of its ΔMOS there, so the sample never moves the edges."""
        self.c, self.task, self.split = c, task, split
        self._reliability = reliability
        self.relations = list(relations)
        self._ab_rngs = list(ab_rngs)
        hist = _Histogram()
        for rp in self.relations:
            hist.extend(rp.histogram)
        self._values, counts = hist.counts()
        if pool_bins is None:  # the sample's own ranks (no pool given: tests, old callers)
            self.edges, self._band = bin_values(self._values, counts, bins)
            self._band_starts = self._values[np.flatnonzero(np.diff(self._band)) + 1]
        else:
            starts, smallest, largest = pool_bins
            self._band_starts = np.asarray(starts, dtype=np.int64)
            self.edges = [v / NANO for v in (smallest, *starts, largest)]
            self._band = np.searchsorted(self._band_starts, self._values, side="right").astype(
                np.int16
            )
        self.bin_counts = (
            np.bincount(self._band, weights=counts, minlength=len(self.edges) - 1)
            .astype(np.int64)
            .tolist()
            if self.edges is not None
            else []
        )
        self.n = sum(rp.n for rp in self.relations)
        self._workdir = workdir

    def _ordered(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """(pid, a, b, relation code) in file order with the A/B order applied.

        Exactly half of each relation (±1 when odd) is shown higher-MOS-first, at uniformly random
        positions: a uniform subset of size k/2 drawn bucket by bucket (its hypergeometric share
        of the bucket, then the positions inside it), from a fresh generator on every pass.
        """
        for code, (rp, make_rng) in enumerate(zip(self.relations, self._ab_rngs, strict=True)):
            rng = make_rng()
            left_k = rp.n
            left_s = left_k // 2 + (int(rng.integers(0, 2)) if left_k % 2 else 0)
            for pid, a, b in rp.buckets():
                kj = int(pid.size)
                if left_s == 0 or left_s == left_k or kj == left_k:
                    s = min(left_s, kj)
                else:
                    s = int(rng.hypergeometric(left_s, left_k - left_s, kj))
                swap = np.zeros(kj, dtype=bool)
                if s:
                    swap[rng.permutation(kj)[:s]] = True
                left_s -= s
                left_k -= kj
                yield pid, np.where(swap, b, a), np.where(swap, a, b), np.full(kj, code)

    def index_batches(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """`_ordered` regrouped into chunks of exactly ROW_GROUP rows (the last one shorter)."""
        held: list[tuple[np.ndarray, ...]] = []
        size = 0
        for part in self._ordered():
            held.append(part)
            size += int(part[0].size)
            while size >= ROW_GROUP:
                cat = [np.concatenate(x) for x in zip(*held, strict=True)]
                yield tuple(x[:ROW_GROUP] for x in cat)  # type: ignore[misc]
                rest = tuple(x[ROW_GROUP:] for x in cat)
                held, size = [rest], int(rest[0].size)
        if size:
            yield tuple(np.concatenate(x) for x in zip(*held, strict=True))  # type: ignore[misc]

    def batches(self) -> Iterator[pa.RecordBatch]:
        for pid, a, b, rel_code in self.index_batches():
            yield self._batch(pid, a, b, rel_code)

    def _batch(
        self, pid: np.ndarray, a: np.ndarray, b: np.ndarray, rel_code: np.ndarray
    ) -> pa.RecordBatch:
        c = self.c
        n = int(pid.size)
        dq = np.abs(c.q[a] - c.q[b])
        band = self._bands(dq)
        rel_names = [rp.relation for rp in self.relations]
        n_content = int(c.content_names.size)
        group_idx = np.full(n, -1, dtype=np.int64)
        for code, rel in enumerate(rel_names):
            sel = rel_code == code
            if rel == "same_content":
                group_idx[sel] = c.content[a[sel]]
            elif rel == "same_system":
                group_idx[sel] = n_content + c.system[a[sel]]
        group_names = pa.array(np.concatenate([c.content_names, c.system_names]), pa.string())
        ids = self._ids()
        arrays = {
            "pair_id": hex_ids(pid),
            "task": pa.repeat(pa.scalar(self.task, pa.string()), n),
            "split": pa.repeat(pa.scalar(self.split, pa.string()), n),
            "subset": pa.array(c.subset_names, pa.string()).take(c.subset[a]),
            "relation": pa.array(rel_names, pa.string()).take(rel_code),
            "group_key": group_names.take(pa.array(group_idx, mask=group_idx < 0)),
            "clip_a": ids.take(a),
            "clip_b": ids.take(b),
            "system_a": _names(c.system_names, c.system[a]),
            "system_b": _names(c.system_names, c.system[b]),
            "content_a": _names(c.content_names, c.content[a]),
            "content_b": _names(c.content_names, c.content[b]),
            "mos_a": pa.array(c.mos[a], pa.float64()),
            "mos_b": pa.array(c.mos[b], pa.float64()),
            "delta_mos": pa.array(dq / NANO, pa.float64()),
            "chosen": pa.array(["a", "b"], pa.string()).take(
                (c.q[a] <= c.q[b]).view(np.int8)  # 0: a, 1: b
            ),
            "delta_bin": pa.array(band, pa.int16()),
        }
        for name, (op, threshold) in FIXED_SUBSETS.items():
            arrays[name] = pa.array(flag(dq, op, threshold), pa.bool_())
        if self._reliability is None:
            arrays["label_reliability"] = pa.nulls(n, pa.float64())
        else:
            r = np.empty(n)
            for lo in range(0, n, RELIABILITY_CHUNK):
                part = slice(lo, lo + RELIABILITY_CHUNK)
                r[part] = self._reliability(a[part], b[part], rel_code[part])
            np.round(r, 6, out=r)
            arrays["label_reliability"] = pa.array(r, pa.float64(), mask=np.isnan(r))
        return pa.RecordBatch.from_arrays([arrays[f.name] for f in PAIR_SCHEMA], schema=PAIR_SCHEMA)

    def _bands(self, dq: np.ndarray) -> np.ndarray:
        """The ΔMOS band of each pair (`dq` holds values of the histogram only)."""
        if self._band_starts.size > 16:
            return self._band[np.searchsorted(self._values, dq)]
        band = np.zeros(dq.size, dtype=np.int16)
        for start in self._band_starts.tolist():
            band += dq >= start
        return band

    def _ids(self) -> pa.Array:
        if not hasattr(self, "_id_array"):
            self._id_array = pa.array(self.c.ids, pa.string())
        return self._id_array

    def table(self) -> pa.Table:
        """Every row in memory (small splits, tests); `write` streams instead."""
        return pa.Table.from_batches(list(self.batches()), schema=PAIR_SCHEMA)

    def write(self, path: str | Path, meta: dict[str, Any]) -> str:
        """Write the pair file row group by row group (metadata stored in it, as
        `tables.write_parquet` does); returns its SHA-256, the pair set's id."""
        from concurrent.futures import ThreadPoolExecutor

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        schema = schema_with_meta(PAIR_SCHEMA, meta)
        batches = self.batches()
        # the next batch is built (numpy and Arrow kernels, GIL released) while Parquet encodes
        # this one: the two halves take similar time, so overlapping them nearly halves the wall
        with (
            ThreadPoolExecutor(1, thread_name_prefix="mosrm-pairs") as pool,
            atomic_path(path) as tmp,
            pq.ParquetWriter(tmp, schema, **parquet_options(schema)) as writer,
        ):
            ahead = pool.submit(next, batches, None)
            while (batch := ahead.result()) is not None:
                ahead = pool.submit(next, batches, None)
                writer.write_batch(batch, row_group_size=ROW_GROUP)
        return sha256_file(path)

    def close(self) -> None:
        for rp in self.relations:
            rp.close()
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None


def spill_workdir(parent: str | Path | None) -> Path:
    """A fresh folder for bucket files, on the disk of `parent` (a tmpfs /tmp would hold them in
    memory, which is what spilling avoids), else the system's temporary folder."""
    if parent is not None:
        Path(parent).mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="mosrm-pairs-", dir=parent))


def check_disk(workdir: Path, pairs: int, where: str) -> None:
    """Refuse, before spending minutes, a pool whose bucket files cannot fit on the disk."""
    need = pairs * _ROW.itemsize
    free = shutil.disk_usage(workdir).free
    if need > free:
        raise DataError(
            f"pairs{where}: spilling {pairs:,} pairs needs {need / 2**30:.1f} GiB in {workdir}, "
            f"which has {free / 2**30:.1f} GiB free; free space or ask for a count instead of 'all'"
        )


def hypergeometric_ok(pairs: int) -> bool:
    return pairs < _HYPERGEOMETRIC_MAX


_HEX_PAIRS = np.array(
    [int.from_bytes(f"{i:02x}".encode("ascii"), "little") for i in range(256)], dtype="<u2"
)
"""Byte value -> its two lowercase hex digits, as the uint16 whose little-endian bytes they are."""


def hex_ids(pid: np.ndarray) -> pa.Array:
    """Pair ids as 16-char lowercase hex strings, built from buffers (no Python str per pair)."""
    n = int(pid.size)
    text = _HEX_PAIRS[pid.astype(">u8").view(np.uint8)]  # two ASCII digits per byte
    offsets = np.arange(0, 16 * (n + 1), 16, dtype=np.int64)
    if n and offsets[-1] > np.iinfo(np.int32).max:
        large = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text))
        return large.cast(pa.string())  # raises on overflow rather than writing garbage
    return pa.StringArray.from_buffers(
        n, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(text)
    )


def flag(dq: np.ndarray, op: str, threshold: float) -> np.ndarray:
    t = int(round(threshold * NANO))
    ops: dict[str, Callable[..., np.ndarray]] = {
        "<": np.less,
        "<=": np.less_equal,
        ">": np.greater,
        ">=": np.greater_equal,
    }
    return ops[op](dq, t)
