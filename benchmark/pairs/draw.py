"""Uniform draws from an exact pool without materialising it (stage 2, `benchmark.pairs`).

Why its own module: pools reach 10^8 pairs (SOMOS train cross), so a sample is drawn either by
enumerating the candidate universe in bounded chunks with sequential hypergeometric draws (exact,
memory O(`CHUNK`)), or by rejection (a group with probability ∝ C(n_g, 2), a uniform pair in it,
invalid and repeated pairs rejected), whichever `_rejection_pays` says is cheaper. Every draw is
seeded by a SHA-256 of (seed, task, split, relation, purpose) (`_rng`), never Python's `hash()`
nor the row order. Nothing here decides which pairs are valid (`benchmark.pairs.pools`) or writes
rows (`benchmark.pairs.rows`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from benchmark.pairs.pools import _Clips, _valid

ENUMERATE_BELOW = 2_000_000
"""Candidate universes up to this size are always enumerated: cheaper than any bookkeeping."""

CHUNK = 1 << 20
"""Candidate pairs per enumeration chunk / rejection batch; bounds memory to tens of MB."""

_HYPERGEOMETRIC_MAX = 10**9  # numpy's limit on ngood / nbad


# ---------------------------------------------------------------------------------------------
# sampling


@dataclass(frozen=True)
class Chosen:
    """The `picks`-th valid pairs of a chunk whose validity mask is `valid`."""

    valid: np.ndarray
    picks: np.ndarray

    def mask(self) -> np.ndarray:
        """The chosen pairs as a mask: kept in the chunk's (canonical) order, no sort of picks."""
        keep = np.zeros(self.valid.size, dtype=bool)
        keep[np.flatnonzero(self.valid)[self.picks]] = True
        return keep


Keep = np.ndarray | Chosen | None
"""Which pairs of a chunk a sink keeps: a mask, the chosen valid ones, or all (None)."""


def kept(a: np.ndarray, b: np.ndarray, keep: Keep) -> tuple[np.ndarray, np.ndarray]:
    if keep is None:
        return a, b
    mask = keep.mask() if isinstance(keep, Chosen) else keep
    return a[mask], b[mask]


class Sink(Protocol):
    """Where drawn pairs go, chunk by chunk in draw order: the pairs (a[k], b[k]) that `keep`
    keeps. The sink applies `keep`, so that a sink on another thread takes that work off the
    draw's (`_Behind`)."""

    def __call__(self, a: np.ndarray, b: np.ndarray, keep: Keep = None) -> None: ...


@dataclass(frozen=True)
class _Universe:
    """Candidate groups: members[starts[g] : starts[g] + sizes[g]] in ascending clip index."""

    members: np.ndarray
    starts: np.ndarray
    sizes: np.ndarray

    @property
    def candidates(self) -> int:
        return int((self.sizes * (self.sizes - 1) // 2).sum())


def _universe(gid: np.ndarray) -> _Universe:
    idx = np.flatnonzero(gid >= 0)
    order = idx[np.argsort(gid[idx], kind="stable")]
    g = gid[order]
    if g.size == 0:
        empty = np.empty(0, dtype=np.int64)
        return _Universe(empty, empty, empty)
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(g)) + 1, [g.size]])
    sizes = np.diff(bounds)
    keep = sizes >= 2  # a lone clip has no partner and must never be proposed
    members = order[np.repeat(keep, sizes)]
    sizes = sizes[keep]
    new_starts = (np.cumsum(sizes) - sizes).astype(np.int64)
    return _Universe(members.astype(np.int64), new_starts, sizes.astype(np.int64))


def _enumerate(u: _Universe) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """All candidate pairs (a < b by clip index) in canonical order, about CHUNK at a time."""
    n = u.members.size
    if n == 0:
        return
    ends = np.repeat(u.starts + u.sizes, u.sizes)
    partners = ends - np.arange(n) - 1
    cum = np.cumsum(partners)
    p0 = 0
    while p0 < n:
        base = int(cum[p0 - 1]) if p0 else 0
        p1 = max(int(np.searchsorted(cum, base + CHUNK, side="right")), p0 + 1)
        cnt = partners[p0:p1]
        total = int(cnt.sum())
        if total:
            rows = np.repeat(np.arange(p0, p1), cnt)
            offs = np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            yield u.members[rows], u.members[rows + 1 + offs]
        p0 = p1


def _draw_by_enumeration(
    c: _Clips,
    relation: str,
    u: _Universe,
    md_q: int,
    target: int | None,
    available: int,
    rng: np.random.Generator,
    sink: Sink,
) -> None:
    """Stream the pool in canonical order into `sink`: all of it or an exact uniform subsample."""
    take_all = target is None or target >= available
    ranks = None
    if not take_all and available >= _HYPERGEOMETRIC_MAX:
        ranks = np.sort(rng.choice(available, size=target, replace=False, shuffle=False))
    need = 0 if take_all or target is None else int(target)
    remaining = available
    found = 0
    for a, b in _enumerate(u):
        m = _valid(c, relation, a, b, md_q)
        k = int(np.count_nonzero(m))
        keep: np.ndarray | Chosen
        if take_all:
            keep = m
        elif ranks is not None:
            lo, hi = np.searchsorted(ranks, [found, found + k])
            keep = Chosen(m, ranks[lo:hi] - found)
        else:
            rest = remaining - k
            if need == 0 or k == 0:
                s = 0
            elif rest == 0:
                s = need
            else:
                s = int(rng.hypergeometric(k, rest, need))
            keep = Chosen(m, rng.choice(k, size=s, replace=False))
            need -= s
        sink(a, b, keep)  # masked on the sink's thread: the draw is this thread's whole job
        found += k
        remaining -= k
        if not take_all and ranks is None and need == 0:
            break
    else:
        if found != available:
            raise RuntimeError(
                f"pair builder bug: {relation} pool counted {available} but enumerated {found}"
            )


def _draw_by_rejection(
    c: _Clips,
    relation: str,
    u: _Universe,
    md_q: int,
    target: int,
    available: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Uniform proposals over the candidate universe; keep the first `target` distinct valid ones."""
    weights = u.sizes * (u.sizes - 1) // 2
    cum = np.cumsum(weights)
    total = int(cum[-1])
    n = np.int64(c.n)
    accepted = np.empty(0, dtype=np.int64)  # sorted, for duplicate checks
    batches: list[np.ndarray] = []
    have = 0
    while have < target:
        need = target - have
        expected = need * total / max(available - have, 1)
        size = int(min(max(expected * 1.2 + 256, 4096), CHUNK))
        g = np.searchsorted(cum, rng.integers(0, total, size), side="right")
        gs, start = u.sizes[g], u.starts[g]
        i = rng.integers(0, gs)
        j = rng.integers(0, gs - 1)
        j += j >= i
        a, b = u.members[start + i], u.members[start + j]
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        m = _valid(c, relation, lo, hi, md_q)
        keys = lo[m] * n + hi[m]
        keys = _fresh(keys, accepted, need)
        batches.append(keys)
        accepted = np.sort(np.concatenate([accepted, keys]))
        have += int(keys.size)
    keys = np.concatenate(batches)
    return keys // n, keys % n


def _fresh(keys: np.ndarray, accepted: np.ndarray, limit: int) -> np.ndarray:
    """The first `limit` of `keys` that are distinct and not in the sorted `accepted`, in draw
    order: what one round of rejection sampling adds (pairs here, triplets in `triplets`)."""
    order = np.argsort(keys, kind="stable")
    ranked = keys[order]
    first = np.ones(ranked.size, dtype=bool)
    first[1:] = ranked[1:] != ranked[:-1]
    keys = keys[np.sort(order[first])]  # distinct, in draw order
    pos = np.minimum(np.searchsorted(accepted, keys), max(accepted.size - 1, 0))
    seen = accepted[pos] == keys if accepted.size else np.zeros(keys.size, dtype=bool)
    return np.asarray(keys[~seen][:limit])


def _rejection_pays(candidates: int, available: int, target: int) -> bool:
    """Rejection costs ~candidates/valid draws per new pair (more as duplicates pile up)."""
    if candidates <= ENUMERATE_BELOW or target >= available:
        return False
    expected_draws = -candidates * math.log1p(-target / available)
    return 4 * expected_draws < candidates


def _rng(seed: int, task: str, split: str, relation: str, purpose: str) -> np.random.Generator:
    material = json.dumps(["mosrm.pairs", int(seed), task, split, relation, purpose]).encode()
    return np.random.default_rng(int.from_bytes(hashlib.sha256(material).digest()[:16], "big"))
