"""Exact valid-pair pools, counted without enumerating them (stage 2, `benchmark.pairs`).

Why its own module: the pool sizes are the denominators of every sample the builder draws and of
the shortfalls it records, so they are computed once, exactly, in integers: MOS quantised to
nano-units (`NANO`) and pairs per group minus pairs sharing the other key minus pairs with
ΔMOS <= min_delta, plus their overlap (inclusion–exclusion over sorted group keys). The relation
rules are those of `benchmark.pairs.build.RELATION_DEFINITIONS`; `_valid` is their vectorised
test, shared by the draws (`benchmark.pairs.draw`) and the judge triplets. Nothing here draws,
writes or reads a file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from benchmark.pairs.reliability import ClipNoise

NANO = 1_000_000_000
"""MOS quantum: ΔMOS is compared in integer units of 1e-9 so float noise never flips a threshold."""

_NO_KEY = -1
_SPAN_LIMIT = 1 << 62


# ---------------------------------------------------------------------------------------------
# clip arrays


@dataclass(frozen=True)
class _Clips:
    """One split's clips as integer codes, sorted by clip_id so row order never matters."""

    ids: np.ndarray  # object (str), sorted ascending
    mos: np.ndarray  # float64
    q: np.ndarray  # int64, mos in nano-units
    subset: np.ndarray  # int64 codes; null subset is its own code
    subset_names: np.ndarray  # object, index by code
    system: np.ndarray  # int64 codes, -1 = unknown
    system_names: np.ndarray
    content: np.ndarray  # int64 codes, -1 = unknown
    content_names: np.ndarray
    noise: ClipNoise | None = None  # rating noise, for the label reliability (not on subset views)

    @property
    def n(self) -> int:
        return int(self.ids.size)


def _factorize(values: np.ndarray, *, null_is_value: bool) -> tuple[np.ndarray, np.ndarray]:
    """Dense codes in sorted-name order, so codes (and thus sampling) depend only on content."""
    mask = np.array([v is not None for v in values], dtype=bool)
    codes = np.full(values.size, _NO_KEY, dtype=np.int64)
    names, inverse = np.unique(values[mask].astype(str), return_inverse=True)
    codes[mask] = inverse
    names = names.astype(object)
    if null_is_value:
        codes = codes + 1  # null -> 0
        names = np.concatenate([np.array([None], dtype=object), names])
    return codes, names


def _split_clips(clips: pa.Table, split: str, noise: ClipNoise | None = None) -> _Clips:
    """One split's clips sorted by id; `noise` (of the whole table, row-aligned) is carried along."""
    rows = np.flatnonzero(clips.column("split").to_numpy(zero_copy_only=False) == split)
    table = clips.take(rows)
    order = pc.sort_indices(table, sort_keys=[("clip_id", "ascending")]).to_numpy()
    table = table.take(order)
    rows = rows[order]
    mos = table.column("mos").to_numpy().astype(np.float64)
    subset, subset_names = _factorize(
        np.asarray(table.column("subset").to_pylist(), dtype=object), null_is_value=True
    )
    system, system_names = _factorize(
        np.asarray(table.column("system_id").to_pylist(), dtype=object), null_is_value=False
    )
    content, content_names = _factorize(
        np.asarray(table.column("content_id").to_pylist(), dtype=object), null_is_value=False
    )
    return _Clips(
        ids=np.asarray(table.column("clip_id").to_pylist(), dtype=object),
        mos=mos,
        q=np.rint(mos * NANO).astype(np.int64),
        subset=subset,
        subset_names=subset_names,
        system=system,
        system_names=system_names,
        content=content,
        content_names=content_names,
        noise=None if noise is None else noise.take(rows),
    )


def _combine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Group codes for the key pair (a, b); -1 when either is unknown."""
    known = (a >= 0) & (b >= 0)
    out = np.full(a.size, _NO_KEY, dtype=np.int64)
    if known.any():
        width = int(b[known].max()) + 1
        _, inverse = np.unique(a[known] * width + b[known], return_inverse=True)
        out[known] = inverse
    return out


# ---------------------------------------------------------------------------------------------
# counting the valid pool exactly


def _pairs_within(gid: np.ndarray) -> int:
    """Number of unordered pairs sharing a known group code."""
    sizes = np.bincount(gid[gid >= 0]).astype(np.int64)
    return int((sizes * (sizes - 1) // 2).sum())


def _close_within(gid: np.ndarray, q: np.ndarray, md_q: int) -> int:
    """Number of unordered pairs sharing a known group code whose ΔMOS is <= md_q nano-units."""
    return _SortedGroups(gid, q).close(md_q)


def _universe_gid(c: _Clips, relation: str) -> np.ndarray:
    """Group codes whose within-group pairs are the candidates (a superset of the valid pool)."""
    if relation == "same_content":
        return _combine(c.subset, c.content)
    if relation == "same_system":
        return _combine(c.subset, c.system)
    return c.subset


def _available(c: _Clips, relation: str, md_q: int) -> int:
    """Exact size of the valid pool, by inclusion-exclusion over group counts."""
    s = c.subset
    if relation == "any":
        return _pairs_within(s) - _close_within(s, c.q, md_q)
    if relation in ("same_content", "same_system"):
        other = c.system if relation == "same_content" else c.content
        u = _universe_gid(c, relation)
        ub = _combine(u, other)
        return (
            _pairs_within(u)
            - _pairs_within(ub)
            - _close_within(u, c.q, md_q)
            + _close_within(ub, c.q, md_q)
        )
    # cross: all pairs minus |same system ∪ same content ∪ close ΔMOS|
    a = _combine(s, c.system)
    b = _combine(s, c.content)
    ab = _combine(a, c.content)
    union = (
        _pairs_within(a)
        + _pairs_within(b)
        + _close_within(s, c.q, md_q)
        - _pairs_within(ab)
        - _close_within(a, c.q, md_q)
        - _close_within(b, c.q, md_q)
        + _close_within(ab, c.q, md_q)
    )
    return _pairs_within(s) - union


def _same_key(key: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ka = key[a]
    return np.asarray((ka >= 0) & (ka == key[b]))


def _valid(c: _Clips, relation: str, a: np.ndarray, b: np.ndarray, md_q: int) -> np.ndarray:
    """Validity of candidate pairs already drawn from the relation's universe."""
    ok = np.abs(c.q[a] - c.q[b]) > md_q
    if relation in ("same_content", "cross"):
        ok &= ~_same_key(c.system, a, b)
    if relation in ("same_system", "cross"):
        ok &= ~_same_key(c.content, a, b)
    return np.asarray(ok)


# ---------------------------------------------------------------------------------------------
# the pool's ΔMOS ranks: where the bins start


class _SortedGroups:
    """One grouping's clips sorted by (group, MOS) once, so that the pairs within a group whose
    ΔMOS is <= t can be counted for many t without sorting again."""

    def __init__(self, gid: np.ndarray, q: np.ndarray) -> None:
        keep = gid >= 0
        g = gid[keep].astype(np.int64)
        v = q[keep].astype(np.int64)
        self.segments: list[np.ndarray] = []
        self.range = 0
        if g.size < 2:
            return
        v = v - v.min()
        self.range = int(v.max())
        span = 2 * self.range + 1  # t is clipped to the range, so keys of groups never meet
        if (int(g.max()) + 1) * span < _SPAN_LIMIT:
            self.segments = [np.sort(g * span + v)]
            return
        order = np.lexsort((v, g))
        g, v = g[order], v[order]
        self.segments = np.split(v, np.flatnonzero(np.diff(g)) + 1)

    def close(self, t: int) -> int:
        """Pairs within a group with ΔMOS <= t."""
        total = 0
        t = min(t, self.range)
        for key in self.segments:
            hi = np.searchsorted(key, key + t, side="right")
            total += int((hi - np.arange(key.size) - 1).sum())
        return total


class PoolRanks:
    """How many of a split's candidate pairs (the valid pools of the given relations, pooled)
    have ΔMOS <= t, exactly, by the same inclusion–exclusion as `_available`."""

    def __init__(self, c: _Clips, relations: list[str], md_q: int) -> None:
        self.md_q = md_q
        groups: dict[str, np.ndarray] = {"s": c.subset}
        terms: list[tuple[int, str]] = []
        for relation in relations:
            if relation == "any":
                terms.append((1, "s"))
            elif relation in ("same_content", "same_system"):
                other = c.system if relation == "same_content" else c.content
                u = _universe_gid(c, relation)
                groups[f"{relation}:u"] = u
                groups[f"{relation}:ub"] = _combine(u, other)
                terms += [(1, f"{relation}:u"), (-1, f"{relation}:ub")]
            else:
                a = _combine(c.subset, c.system)
                b = _combine(c.subset, c.content)
                groups.update({"a": a, "b": b, "ab": _combine(a, c.content)})
                terms += [(1, "s"), (-1, "a"), (-1, "b"), (1, "ab")]
        self._sorted = {k: _SortedGroups(v, c.q) for k, v in groups.items()}
        self._terms = terms
        self.total = sum(_available(c, r, md_q) for r in relations)
        self._above_md = self._close(md_q)
        span = int(c.q.max() - c.q.min()) if c.q.size else 0
        self.max_delta = max(span, md_q)

    def _close(self, t: int) -> int:
        return sum(sign * self._sorted[k].close(t) for sign, k in self._terms)

    def at_most(self, t: int) -> int:
        """Candidate pairs with ΔMOS <= t (t >= min_delta; 0 at min_delta itself)."""
        return self._close(max(t, self.md_q)) - self._above_md

    def first_reaching(self, m: int) -> int | None:
        """The smallest ΔMOS t with at_most(t) >= m: a ΔMOS of the pool (None past its size)."""
        if m > self.total:
            return None
        lo, hi = self.md_q + 1, self.max_delta
        while lo < hi:
            mid = (lo + hi) // 2
            if self.at_most(mid) >= m:
                hi = mid
            else:
                lo = mid + 1
        return lo


def pool_band_starts(
    c: _Clips, relations: list[str], md_q: int, bins: int
) -> tuple[list[int], int, int] | None:
    """The ΔMOS bins of a split by rank in its candidate pool (`benchmark.pairs` module doc):
    band k starts at the first pool ΔMOS with at least ceil(k * n / bins) pool pairs below it;
    bands a tie leaves empty are dropped. Returns (starts of bands 1.., smallest, largest pool
    ΔMOS) in nano-MOS, or None for an empty pool. The sample never moves them."""
    ranks = PoolRanks(c, relations, md_q)
    n = ranks.total
    if n == 0:
        return None
    smallest = ranks.first_reaching(1)
    largest = ranks.first_reaching(n)
    assert smallest is not None and largest is not None
    starts: list[int] = []
    for k in range(1, bins):
        need = -(-k * n // bins)  # ceil
        reached = ranks.first_reaching(need)  # the value whose pairs bring the count to `need`
        if reached is None:
            continue
        begin = ranks.first_reaching(ranks.at_most(reached) + 1)  # the next pool ΔMOS
        if begin is not None and (not starts or begin > starts[-1]):
            starts.append(begin)
    return starts, smallest, largest
