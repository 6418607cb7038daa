"""The pair builder: the paper's protocol for turning a clip table into preference pairs.

Relation definitions (also in `RELATION_DEFINITIONS`, which the CLI and README show verbatim):

- A missing key (null `system_id` or `content_id`) means "unknown": it never counts as *equal* to
  any clip's key, and counts as *different*.
- `same_content`: `content_id` equal (non-null) AND `system_id` different, so a same-content pair
  never shares its system. `group_key` = the content id.
- `same_system`: `system_id` equal (non-null) AND `content_id` different. `group_key` = the system
  id. A clip without a content key still joins same-system pairs (BVCC clips missing from the
  cluster file and SingMOS clips have no content key).
- `cross`: `system_id` different AND `content_id` different. `group_key` = null.
- `any`: every pair within the split regardless of keys (for user CSV tasks without keys).
  `group_key` = null.
- For all relations: both clips are in the same split and the same `subset` (null == null, so
  pairs never cross e.g. VMC'23 tracks), ΔMOS = |mos_a - mos_b| > `min_delta` (default 0, so equal
  MOS never pairs), and a pair {x, y} appears at most once per relation.

ΔMOS and float noise: MOS values are quantised to integer nano-units (round(mos * 1e9)) and ΔMOS is
their exact integer difference, i.e. |mos_a - mos_b| rounded to 1e-9 (up to one nano-unit). Without
this, 3.4 - 3.2 = 0.19999999999999973 would land in the "ΔMOS < 0.2" subset and pass a
`min_delta` of 0.2. Integers also make the pool counts below exact. `delta_mos` stores the
quantised value, so downstream threshold comparisons on the column agree with the flags.

Sampling, per (split, relation): the target count is drawn uniformly without replacement from the
exact valid pool, or the whole pool for "all" (and, with a recorded `shortfall`, when the pool is
smaller than the target). Pools are large (TMHINT-QI train: ~69M cross candidates), so no stage
materialises every candidate pair:

- the pool size is counted, not enumerated: pairs per group minus pairs sharing the other key minus
  pairs with ΔMOS <= min_delta, plus their overlap (inclusion-exclusion over sorted group keys);
- small candidate universes, or targets that are a large fraction of the pool, are enumerated in
  bounded chunks and subsampled by sequential hypergeometric draws (exact, memory O(chunk));
- otherwise rejection sampling: a group with probability ∝ C(n_g, 2), then a uniform pair inside
  it (for cross/any the "group" is the subset), rejecting invalid and already-drawn pairs. The
  first `target` distinct accepted pairs are a uniform sample of the valid pool.

Everything random comes from numpy Generators seeded by a SHA-256 of (seed, task, split, relation,
purpose), so results never depend on Python's per-process `hash()` nor on the input row order
(clips are sorted by `clip_id` first). A/B order is balanced: exactly half the pairs of each
relation (±1 for odd counts) are presented higher-MOS-first, at random positions, so a model with
a pure position bias scores exactly chance. Rows are sorted by (relation, pair_id), so the same
inputs and seed give a byte-identical Parquet file. Pair ids (`pair_ids`), the A/B draw, bins and
rows are made by `pair_rows`, which streams pools too large for memory through bucket files.

ΔMOS bins: per task and split, over all relations of the split, by rank: a pair whose ΔMOS exceeds
r of the split's n pairs' ΔMOS goes to band floor(r * bins / n), so with distinct ΔMOS the bins are equal to ±1 pair. Tied ΔMOS share r, so a tie is never split
across bins (the same ΔMOS is the same difficulty). Discrete rating scales tie many Δ values
(TMHINT-QI train: 1–2 ratings per clip) and a tie may cover a whole band, leaving it empty: empty
bands are dropped and the rest renumbered 0, 1, …, so a split may get fewer bins than requested
(all Δ equal: one bin) and no bin is ever empty. `bin_edges[i]` is the smallest ΔMOS of bin i and
the last edge the largest ΔMOS: bin i holds edges[i] <= Δ < edges[i+1], the last bin closed.
`bins` in the metadata is the number made, `bins_requested` the task's; the card and results say
so. A split with no pairs has `bin_edges` = null.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from benchmark.data.tables import (
    PAIR_SCHEMA,
    PAIR_SCHEMA_VERSION,
    RELATIONS,
    conform,
    write_parquet,
)
from benchmark.errors import DataError
from benchmark.hashing import sha256_file
from benchmark.pairs.ids import PAIR_ID_VERSION, clip_hashes, salt
from benchmark.pairs.reliability import ESTIMATORS, ClipNoise, clip_noise
from benchmark.pairs.rows import (
    SPILL_ABOVE,
    RelationPairs,
    SplitRows,
    check_disk,
    hypergeometric_ok,
    spill_workdir,
)

log = logging.getLogger(__name__)

RELATION_DEFINITIONS_VERSION = 1

_COMMON_RULES = (
    "; like every relation: both clips in the same split and the same subset (null subset == null "
    "subset), |mos_a - mos_b| rounded to 1e-9 > min_delta (default 0: equal MOS never pairs), and "
    "each unordered pair at most once"
)

RELATION_DEFINITIONS: dict[str, str] = {
    "same_content": (
        "content_id equal (non-null) AND system_id different (a missing system_id is unknown: "
        "never equal, always different), so a same-content pair never shares its system; "
        "group_key = the content id" + _COMMON_RULES
    ),
    "same_system": (
        "system_id equal (non-null) AND content_id different (a missing content_id is unknown: "
        "never equal, always different, so clips without a content key still join); "
        "group_key = the system id" + _COMMON_RULES
    ),
    "cross": (
        "system_id different AND content_id different (a missing key is unknown: never equal, "
        "always different); group_key = null" + _COMMON_RULES
    ),
    "any": "every pair regardless of keys (for tasks without keys); group_key = null"
    + _COMMON_RULES,
}
"""Exact pair-relation definitions, one per relation in `tables.RELATIONS`, shown to users verbatim."""

assert set(RELATION_DEFINITIONS) == set(RELATIONS)  # one definition per relation

RELATION_DEFINITIONS_SHA256 = hashlib.sha256(
    json.dumps(
        [RELATION_DEFINITIONS_VERSION, RELATION_DEFINITIONS], sort_keys=True, ensure_ascii=False
    ).encode()
).hexdigest()

NANO = 1_000_000_000
"""MOS quantum: ΔMOS is compared in integer units of 1e-9 so float noise never flips a threshold."""

ENUMERATE_BELOW = 2_000_000
"""Candidate universes up to this size are always enumerated: cheaper than any bookkeeping."""

CHUNK = 1 << 20
"""Candidate pairs per enumeration chunk / rejection batch; bounds memory to tens of MB."""

MAX_PAIRS_ENV = "MOSRM_MAX_PAIRS"
MAX_PAIRS_DEFAULT = 20_000_000
"""A memory guard, not a size limit: a sample drawn by rejection is held in memory (~60 bytes a
pair) and is refused above this. Whole pools and enumerated samples stream to bucket files
(`pair_rows`) and are not limited: SOMOS train alone has ~10^8 valid cross pairs."""


def max_pairs() -> int:
    import os

    raw = os.environ.get(MAX_PAIRS_ENV)
    if raw is None:
        return MAX_PAIRS_DEFAULT
    try:
        return max(1, int(raw))
    except ValueError:
        raise DataError(f"{MAX_PAIRS_ENV}={raw!r}: expected an integer") from None


_HYPERGEOMETRIC_MAX = 10**9  # numpy's limit on ngood / nbad
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
    keep = gid >= 0
    g = gid[keep].astype(np.int64)
    v = q[keep]
    if g.size < 2:
        return 0
    v = v - v.min()
    span = int(v.max()) + md_q + 1
    if (int(g.max()) + 1) * span < _SPAN_LIMIT:
        key = np.sort(g * span + v)
        hi = np.searchsorted(key, key + md_q, side="right")
        return int((hi - np.arange(key.size) - 1).sum())
    total = 0  # composite key would overflow int64: count group by group
    order = np.lexsort((v, g))
    g, v = g[order], v[order]
    bounds = np.flatnonzero(np.diff(g)) + 1
    for seg in np.split(v, bounds):
        hi = np.searchsorted(seg, seg + md_q, side="right")
        total += int((hi - np.arange(seg.size) - 1).sum())
    return total


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


# ---------------------------------------------------------------------------------------------
# rows, bins, metadata


def _target(split: str, relation: str, value: object) -> int | None:
    """None = the whole pool ("all")."""
    if value == "all":
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise DataError(
            f"pairs.{split}.{relation}: count must be an integer or 'all', got {value!r}"
        )
    if value < 0:
        raise DataError(f"pairs.{split}.{relation}: count must be >= 0, got {value}")
    return int(value)


def _check_arguments(
    clips: pa.Table,
    relations: Sequence[str],
    counts: Mapping[str, Mapping[str, int | Literal["all"]]],
    min_delta: float,
    bins: int,
) -> tuple[list[str], set[str]]:
    rels = list(dict.fromkeys(relations))
    unknown = [r for r in rels if r not in RELATIONS]
    if unknown:
        raise DataError(
            f"unknown pair relation {', '.join(map(repr, unknown))} (known: {', '.join(RELATIONS)})"
        )
    for split, per_rel in counts.items():
        for rel in per_rel:
            if rel not in RELATIONS:
                raise DataError(
                    f"pairs.{split}.{rel}: unknown pair relation (known: {', '.join(RELATIONS)})"
                )
            if rel not in rels:
                raise DataError(f"pairs.{split}.{rel}: relation not listed in 'relations'")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise DataError(f"bins must be an integer >= 1, got {bins!r}")
    if not (isinstance(min_delta, int | float) and math.isfinite(min_delta) and min_delta >= 0):
        raise DataError(f"min_delta must be a finite number >= 0, got {min_delta!r}")
    present = set(pc.unique(clips.column("split")).to_pylist())
    return rels, present


def build_pair_sets(
    clips: pa.Table,
    *,
    task: str,
    relations: Sequence[str],
    counts: Mapping[str, Mapping[str, int | Literal["all"]]],
    seed: int,
    min_delta: float = 0.0,
    bins: int = 5,
    balance_subsets: bool = False,
    workdir: str | Path | None = None,
    reliability: str = "closed_form",
) -> dict[str, tuple[SplitRows, dict[str, Any]]]:
    """Sample each split's pairs per relation; returns split -> (rows to write, metadata).

    `clips` must already be a validated clip table. `counts[split][relation]` is a target count or
    "all"; relations listed in `relations` but absent from a split's counts get target 0 (their
    pool size is still reported). Splits of the clip table not named in `counts` are skipped.
    With `balance_subsets`, each count is divided evenly over the split's subsets (see
    `_sample_per_subset`); otherwise pairs are drawn from the union of the subsets' pools.

    Rows are not materialised: `SplitRows.write` streams them to a pair file, `.table()` builds
    them in memory. Large relations are spilled to bucket files in a folder made under `workdir`
    (default: the system's temporary folder); call `.close()` on each `SplitRows` when done.
    `reliability` names the estimator of the `label_reliability` column (`benchmark.pairs.reliability`).
    """
    rels, present = _check_arguments(clips, relations, counts, min_delta, bins)
    if reliability not in ESTIMATORS:
        raise DataError(
            f"reliability: unknown estimator '{reliability}' (known: {', '.join(ESTIMATORS)})"
        )
    noise = clip_noise(clips)
    md_q = int(round(float(min_delta) * NANO))
    out: dict[str, tuple[SplitRows, dict[str, Any]]] = {}
    try:
        for split in sorted(counts):
            if split not in present:
                raise DataError(
                    f"pairs.{split}: the clip table has no clips in split '{split}' "
                    f"(splits present: {', '.join(sorted(present)) or 'none'})"
                )
            targets = {r: _target(split, r, counts[split].get(r, 0)) for r in rels}
            out[split] = _build_split(
                _split_clips(clips, split, noise),
                task,
                split,
                rels,
                targets,
                seed,
                md_q,
                min_delta,
                bins,
                balance_subsets,
                workdir,
                reliability,
            )
    except BaseException:
        for rows, _ in out.values():
            rows.close()
        raise
    return out


def build_pairs(
    clips: pa.Table,
    *,
    task: str,
    relations: Sequence[str],
    counts: Mapping[str, Mapping[str, int | Literal["all"]]],
    seed: int,
    min_delta: float = 0.0,
    bins: int = 5,
    balance_subsets: bool = False,
    reliability: str = "closed_form",
) -> dict[str, tuple[pa.Table, dict[str, Any]]]:
    """`build_pair_sets` with every split's rows as an in-memory table (small pair sets, tests)."""
    built = build_pair_sets(
        clips,
        task=task,
        relations=relations,
        counts=counts,
        seed=seed,
        min_delta=min_delta,
        bins=bins,
        balance_subsets=balance_subsets,
        reliability=reliability,
    )
    out: dict[str, tuple[pa.Table, dict[str, Any]]] = {}
    for split, (rows, meta) in built.items():
        try:
            out[split] = (rows.table(), meta)
        finally:
            rows.close()
    return out


def _sample(
    c: _Clips,
    task: str,
    split: str,
    rel: str,
    target: int | None,
    md_q: int,
    rng: np.random.Generator,
    sink: Sink,
    where: str = "",
) -> dict[str, Any]:
    """Draw `target` pairs (None = all) of one relation uniformly from the valid pool of `c`."""
    available = _available(c, rel, md_q)
    u = _universe(_universe_gid(c, rel))
    info: dict[str, Any] = {
        "target": "all" if target is None else target,
        "available": available,
        "candidates": u.candidates,
    }
    take = available if target is None else min(target, available)
    if not hypergeometric_ok(take):
        raise DataError(
            f"pairs.{split}.{rel}{where}: {take:,} pairs in one relation, above the 10^9 this "
            "builder supports; ask for a smaller count"
        )
    if target == 0:
        method = "none"
    elif target is None or target >= available:
        method = "all"
        _draw_by_enumeration(c, rel, u, md_q, None, available, rng, sink)
    elif _rejection_pays(u.candidates, available, target):
        limit = max_pairs()
        if target > limit:
            raise DataError(
                f"pairs.{split}.{rel}{where}: a sample of {target:,} pairs from a pool of "
                f"{available:,} is drawn in memory (~{target * 60 / 2**30:.1f} GiB), above the "
                f"guard of {limit:,}; set {MAX_PAIRS_ENV}=N if this machine has the memory"
            )
        method = "rejection"
        a, b = _draw_by_rejection(c, rel, u, md_q, target, available, rng)
        for lo in range(0, int(a.size), CHUNK):
            sink(a[lo : lo + CHUNK], b[lo : lo + CHUNK])
    else:
        method = "enumerate"
        _draw_by_enumeration(c, rel, u, md_q, target, available, rng, sink)
    if target is not None and target > available:
        info["shortfall"] = (
            f"only {available} valid {rel} pairs in split '{split}'{where}, fewer than the "
            f"target {target}: all {available} taken"
        )
    info["sampled"] = take
    info["method"] = method
    return info


def _subset_view(c: _Clips, code: int) -> tuple[_Clips, np.ndarray]:
    """The clips of one subset (still sorted by clip_id) and their indices in `c`."""
    idx = np.flatnonzero(c.subset == code)
    view = _Clips(
        ids=c.ids[idx],
        mos=c.mos[idx],
        q=c.q[idx],
        subset=c.subset[idx],
        subset_names=c.subset_names,
        system=c.system[idx],
        system_names=c.system_names,
        content=c.content[idx],
        content_names=c.content_names,
    )
    return view, idx


def _sample_per_subset(
    c: _Clips,
    task: str,
    split: str,
    rel: str,
    target: int | None,
    seed: int,
    md_q: int,
    sink: Sink,
) -> dict[str, Any]:
    """`balance_subsets`: the target split evenly over the split's subsets, each sampled apart.

    Subsets are taken in name order (null first); the remainder of an uneven division goes to the
    first ones. A subset's shortfall is recorded, not made up from the others, so every subset's
    share stays the declared one.
    """
    codes = sorted(
        np.unique(c.subset).tolist(),
        key=lambda k: (c.subset_names[k] is not None, str(c.subset_names[k])),
    )
    k = len(codes)
    shares: list[int | None]
    if target is None:
        shares = [None] * k
    else:
        shares = [target // k + (1 if i < target % k else 0) for i in range(k)]
    per_subset: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    for code, share in zip(codes, shares, strict=True):
        name = c.subset_names[code]
        label = "null" if name is None else str(name)
        view, idx = _subset_view(c, code)
        rng = _rng(seed, task, split, rel, f"sample/subset={label}")

        def mapped(a: np.ndarray, b: np.ndarray, keep: Keep = None, idx: np.ndarray = idx) -> None:
            a, b = kept(a, b, keep)
            sink(idx[a], idx[b])

        info = _sample(
            c=view,
            task=task,
            split=split,
            rel=rel,
            target=share,
            md_q=md_q,
            rng=rng,
            sink=mapped,
            where=f" subset '{label}'",
        )
        per_subset[label] = info
        if "shortfall" in info:
            notes.append(info["shortfall"])
    info = {
        "target": "all" if target is None else target,
        "available": sum(i["available"] for i in per_subset.values()),
        "candidates": sum(i["candidates"] for i in per_subset.values()),
        "sampled": sum(i["sampled"] for i in per_subset.values()),
        "method": "per-subset",
        "subsets": per_subset,
    }
    if notes:
        info["shortfall"] = "; ".join(notes)
    return info


def _expected(c: _Clips, rel: str, target: int | None, md_q: int) -> int:
    """How many pairs a relation will hold (to choose memory or bucket files before drawing)."""
    if target == 0:
        return 0
    available = _available(c, rel, md_q)
    return available if target is None else min(target, available)


class _Behind:
    """A sink that runs `add` on one worker thread, in call order, at most `depth` chunks behind
    the caller: hashing, bucketing and spilling the drawn pairs overlap with drawing the next
    chunk (the draw is otherwise one core's work). Leaving the block waits for every chunk and
    raises the first error; the chunks handed over are never written to by the samplers."""

    def __init__(self, add: Callable[[np.ndarray, np.ndarray], None], depth: int = 2) -> None:
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        self._add, self._depth = add, depth
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="mosrm-draw")
        self._pending: deque[Any] = deque()

    def __call__(self, a: np.ndarray, b: np.ndarray, keep: Keep = None) -> None:
        while len(self._pending) >= self._depth:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self._run, a, b, keep))

    def _run(self, a: np.ndarray, b: np.ndarray, keep: Keep) -> None:
        self._add(*kept(a, b, keep))

    def __enter__(self) -> _Behind:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        try:
            while self._pending and kind is None:  # after an error, only stop the worker
                self._pending.popleft().result()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


class LabelPriors:
    """Per (relation, subset): the sums behind the prior variance τ² of true differences.

    Filled as pairs are drawn (every pair of a relation is seen once, whichever way it is stored),
    so the prior never needs a second pass over a spilled pool.
    """

    def __init__(self, c: _Clips, rels: int) -> None:
        self.c = c
        size = (rels, int(c.subset_names.size))
        self.d2, self.se2, self.count = np.zeros(size), np.zeros(size), np.zeros(size, np.int64)
        # per clip, once: its mean's variance (NaN unknown); the hot path below only gathers
        self._u = None if c.noise is None else c.noise.var / c.noise.n
        self._all_known = self._u is not None and bool(np.isfinite(self._u).all())
        self._one_subset = np.unique(c.subset).size <= 1

    def add(self, code: int, a: np.ndarray, b: np.ndarray) -> None:
        if self._u is None or not a.size:
            return
        mos = self.c.mos
        u = self._u[a] + self._u[b]
        d = mos[a] - mos[b]
        if self._all_known and self._one_subset:  # the common case: plain sums
            j = int(self.c.subset[a[0]])
            self.d2[code, j] += float(np.dot(d, d))
            self.se2[code, j] += float(u.sum())
            self.count[code, j] += int(a.size)
            return
        known = np.isfinite(u)
        if not known.any():
            return
        sub = self.c.subset[a[known]]
        width = self.d2.shape[1]
        d = d[known]
        self.d2[code] += np.bincount(sub, weights=d * d, minlength=width)
        self.se2[code] += np.bincount(sub, weights=u[known], minlength=width)
        self.count[code] += np.bincount(sub, minlength=width)

    def tau2(self) -> np.ndarray:
        from benchmark.pairs.reliability import prior_var

        out = np.full(self.d2.shape, np.nan)
        for i, j in np.ndindex(out.shape):
            out[i, j] = prior_var(
                float(self.d2[i, j]), float(self.se2[i, j]), int(self.count[i, j])
            )
        return out

    def reliability(
        self, estimator: str, seed: int
    ) -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None:
        """The column's values for rows (a, b, relation code); None when no clip has a count."""
        noise = self.c.noise
        if noise is None or not int(self.count.sum()):
            return None
        from benchmark.pairs.reliability import bootstrap, bootstrap_means, closed_form

        tau2 = self.tau2()
        means: list[np.ndarray] = []

        def values(a: np.ndarray, b: np.ndarray, rel: np.ndarray) -> np.ndarray:
            prior = tau2[rel, self.c.subset[a]]
            if estimator == "closed_form":
                return closed_form(noise, a, b, prior)
            if not means:
                means.append(bootstrap_means(noise, seed=seed))
            return bootstrap(noise, a, b, prior, means=means[0])

        return values

    def describe(self, estimator: str, rel_names: Sequence[str]) -> dict[str, Any]:
        from benchmark.pairs.reliability import describe

        noise = self.c.noise
        if noise is None or not int(self.count.sum()):
            return {
                "estimator": None,
                "note": "no clip of this split has both a rating count and a spread",
            }
        tau2 = self.tau2()
        prior: dict[str, dict[str, float]] = {}
        for i, rel in enumerate(rel_names):
            for j, name in enumerate(self.c.subset_names.tolist()):
                if self.count[i, j]:
                    label = "null" if name is None else str(name)
                    prior.setdefault(rel, {})[label] = round(float(np.sqrt(tau2[i, j])), 6)
        return {
            **describe(noise, estimator),
            "pairs_rated": int(self.count.sum()),
            "prior_sd": prior,
        }


def _build_split(
    c: _Clips,
    task: str,
    split: str,
    rels: list[str],
    targets: dict[str, int | None],
    seed: int,
    md_q: int,
    min_delta: float,
    bins: int,
    balance_subsets: bool = False,
    workdir: str | Path | None = None,
    reliability: str = "closed_form",
) -> tuple[SplitRows, dict[str, Any]]:
    per_rel: dict[str, dict[str, Any]] = {}
    priors = LabelPriors(c, rels=len(rels))
    shortfall: dict[str, str] = {}
    hashes = clip_hashes(c.ids)
    rel_names = sorted(rels)  # rows come out in (relation, pair_id) order without a final sort
    spill: Path | None = None
    relations: list[RelationPairs] = []
    try:
        for rel in rel_names:
            target = targets[rel]
            where = f".{split}"
            folder = None
            expected = _expected(c, rel, target, md_q)
            if expected > SPILL_ABOVE:
                spill = spill or spill_workdir(workdir)
                check_disk(spill, expected, where)
                folder = spill / rel
            rp = RelationPairs(rel, salt(task, split, rel), hashes, c.q, folder, where)
            relations.append(rp)
            code = len(relations) - 1

            def add(a: np.ndarray, b: np.ndarray, rp: RelationPairs = rp, code: int = code) -> None:
                rp.add(a, b)
                priors.add(code, a, b)

            with _Behind(add) as sink:
                if balance_subsets and np.unique(c.subset).size > 1:
                    info = _sample_per_subset(c, task, split, rel, target, seed, md_q, sink)
                else:
                    rng = _rng(seed, task, split, rel, "sample")
                    info = _sample(c, task, split, rel, target, md_q, rng, sink)
            if rp.n != info["sampled"]:
                raise RuntimeError(f"pair builder bug: {rel} sampled {info['sampled']}, got {rp.n}")
            if "shortfall" in info:
                shortfall[rel] = info["shortfall"]
                log.info("task %s: %s", task, info["shortfall"])  # callers print meta["shortfall"]
            per_rel[rel] = info
        ab = [functools.partial(_rng, seed, task, split, rel, "ab") for rel in rel_names]
        label = priors.reliability(reliability, seed)
        rows = SplitRows(c, task, split, relations, ab, bins, spill, label)
    except BaseException:
        for rp in relations:
            rp.close()
        if spill is not None:
            shutil.rmtree(spill, ignore_errors=True)
        raise
    made = bins if rows.edges is None else len(rows.edges) - 1
    subsets = sorted(
        {s for s in c.subset_names[np.unique(c.subset)]}, key=lambda s: (s is not None, s)
    )
    meta: dict[str, Any] = {
        "task": task,
        "split": split,
        "seed": int(seed),
        "min_delta": float(min_delta),
        "delta_quantum": 1.0 / NANO,
        "bins": made,
        "bins_requested": bins,
        "bin_edges": rows.edges,
        "bin_counts": rows.bin_counts if rows.edges is not None else [0] * bins,
        "n_clips": c.n,
        "n_pairs": rows.n,
        "subsets": subsets,
        "balance_subsets": bool(balance_subsets),
        "relations": per_rel,
        "pair_schema_version": PAIR_SCHEMA_VERSION,
        "pair_id_version": PAIR_ID_VERSION,
        "relation_definitions_version": RELATION_DEFINITIONS_VERSION,
        "relation_definitions_sha256": RELATION_DEFINITIONS_SHA256,
        "label_reliability": priors.describe(reliability, rel_names),
    }
    if shortfall:
        meta["shortfall"] = shortfall
    return rows, meta


def write_pairs(table: pa.Table, meta: dict[str, Any], path: str | Path) -> str:
    """Write a pair file (metadata stored in the file) and return its SHA-256, the pair set's id."""
    path = Path(path)
    write_parquet(conform(table, PAIR_SCHEMA, path), path, meta)
    return sha256_file(path)
