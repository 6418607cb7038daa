"""Seeded samples of MOS-decreasing clip triplets, on which a judge's preference cycles are counted.

A judge that reads two clips at a time need not be transitive: it may prefer x to y, y to z and
z to x. A scalar reward cannot (its scores are ordered); a pairwise judge can, and the paper
reports it (2.83% of triplets after SFT, 0.18% after GRPO/DAPO). `benchmark.stats.diagnostics` counts
cycles on the triplets sampled here.

Definition. In one task and split, a triplet is three clips (x, y, z) with MOS(x) > MOS(y) > MOS(z)
whose three pairs {x, y}, {y, z} and {x, z} are all valid pairs of ONE relation of the task, by
the pair builder's own rules (`benchmark.pairs.build`, whose helpers are reused, not re-derived): same
subset, the relation's key rules (a missing key is never equal to anything), and ΔMOS > min_delta
on the 1e-9 quantum, so the three MOS are strictly decreasing. Each relation's pairs lie inside
one candidate group (the subset, plus the content key for same_content or the system key for
same_system), so a valid triplet lies inside one group too.

Sample. `n` triplets per split (default `DEFAULT_TRIPLETS`, or `$MOSRM_TRIPLETS`), divided evenly
over the task's relations in name order (the remainder to the first ones). Each relation's share
is drawn uniformly without replacement from that relation's pool of valid triplets. A share larger
than its pool takes the whole pool and records a `shortfall`; it is not made up from the other
relations, so every relation's share is the declared one. How a share is drawn:

- candidate triplets are the 3-subsets of each group; up to `ENUMERATE_BELOW` candidates they are
  all enumerated, the valid ones kept, and the share taken as a uniform subset of them (exact);
- above that, by rejection: a group with probability ∝ C(n_g, 3), then three distinct members
  uniformly; invalid and already drawn triplets are rejected, and the first `share` distinct
  accepted ones are a uniform sample of the pool. If the valid rate of the proposals says the pool
  may hold fewer than 4 × the share (or after `MAX_PROPOSALS` proposals), it enumerates instead,
  so a tiny pool is found exactly rather than searched for forever; but not beyond
  `ENUMERATE_AT_MOST` candidates (e.g. cross triplets of a split with only two systems: 5.6e8
  candidates, none valid, a minute to enumerate). There it keeps what the proposals found and
  records a shortfall that says so.

Randomness comes from `pairs._rng(seed, task, split, relation, "triplets")`, the task's own seed,
over clips sorted by clip_id, so the sample never depends on row order or the process. Rows are
sorted by (relation, triplet_id), triplet_id = sha1(task, split, relation, the three clip ids in
ascending order)[:16 hex]. The sample is a pure function of the clip table, the task's relations,
seed and min_delta, and `n`: it is derived when a task is evaluated, byte-identical every time, and
its `sha256` (of a canonical JSON of the rows, not of any file format) is recorded with every
result. `TRIPLET_SAMPLER_VERSION` changes whenever the sampler would draw differently.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from benchmark.errors import DataError
from benchmark.pairs.draw import _fresh, _rng, _Universe, _universe
from benchmark.pairs.pools import NANO, _Clips, _split_clips, _universe_gid, _valid

TRIPLET_SAMPLER_VERSION = 1

DEFAULT_TRIPLETS = 500
TRIPLETS_ENV = "MOSRM_TRIPLETS"

ENUMERATE_BELOW = 2_000_000
"""Candidate triplets up to this many are enumerated: exact and cheaper than any bookkeeping."""

CHUNK = 1 << 20
"""Candidates per enumeration chunk or rejection batch; bounds memory to tens of MB."""

ENUMERATE_AT_MOST = 30_000_000
"""A sparse pool is enumerated exactly only up to this many candidates (a few seconds); above,
rejection keeps what `MAX_PROPOSALS` proposals found and records the shortfall."""

MAX_PROPOSALS = 32 * CHUNK

TRIPLET_SCHEMA = pa.schema(
    [
        pa.field("triplet_id", pa.string(), nullable=False),
        pa.field("task", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("subset", pa.string()),
        pa.field("relation", pa.string(), nullable=False),
        pa.field("clip_x", pa.string(), nullable=False),
        pa.field("clip_y", pa.string(), nullable=False),
        pa.field("clip_z", pa.string(), nullable=False),
        pa.field("mos_x", pa.float64(), nullable=False),
        pa.field("mos_y", pa.float64(), nullable=False),
        pa.field("mos_z", pa.float64(), nullable=False),
    ],
    metadata={"mosrm.table": "triplets", "mosrm.sampler_version": str(TRIPLET_SAMPLER_VERSION)},
)
"""One row per triplet, clip_x the highest MOS and clip_z the lowest."""


def requested_triplets(n: int | None = None) -> int:
    """`n`, else `$MOSRM_TRIPLETS`, else `DEFAULT_TRIPLETS`; a bad value is a one-line error."""
    if n is None:
        raw = os.environ.get(TRIPLETS_ENV)
        if raw is None:
            return DEFAULT_TRIPLETS
        try:
            n = int(raw)
        except ValueError:
            raise DataError(f"{TRIPLETS_ENV}={raw!r}: expected an integer >= 0") from None
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise DataError(f"triplets per task must be an integer >= 0, got {n!r}")
    return n


def sample_triplets(
    clips: pa.Table,
    *,
    task: str,
    split: str,
    relations: Sequence[str],
    seed: int,
    n: int,
    min_delta: float = 0.0,
) -> tuple[pa.Table, dict[str, Any]]:
    """The split's triplet sample (`TRIPLET_SCHEMA`) and its record (module doc).

    The record holds what a result needs to name the sample: seed, requested and sampled counts,
    per-relation shares, pools and methods, any shortfall, the sampler version and the sha256.
    """
    n = requested_triplets(n)
    table = clips.filter(pc.equal(clips.column("split"), split))
    c = _split_clips(table, split)
    if c.n >= 2_000_000:
        raise DataError(f"split '{split}' of task '{task}' has {c.n} clips: too many for triplets")
    md_q = int(round(float(min_delta) * NANO))
    rels = sorted(dict.fromkeys(relations))
    shares = {r: n // len(rels) + (1 if i < n % len(rels) else 0) for i, r in enumerate(rels)}
    parts: list[tuple[str, np.ndarray]] = []
    per_rel: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    for rel in rels:
        rng = _rng(seed, task, split, rel, "triplets")
        tri, info = _sample(c, rel, shares[rel], md_q, rng)
        if "shortfall" in info:
            notes.append(f"{rel}: {info['shortfall']}")
        per_rel[rel] = info
        parts.append((rel, tri))
    out = _rows(c, task, split, parts)
    record: dict[str, Any] = {
        "sampler_version": TRIPLET_SAMPLER_VERSION,
        "seed": int(seed),
        "min_delta": float(min_delta),
        "requested": n,
        "n": out.num_rows,
        "relations": per_rel,
        "sha256": triplets_sha256(out),
    }
    if notes:
        record["shortfall"] = "; ".join(notes)
    return out, record


def triplets_sha256(table: pa.Table) -> str:
    """SHA-256 of the sample's content: (relation, x, y, z) per row, in row order, as JSON."""
    rows = [
        [r, x, y, z]
        for r, x, y, z in zip(
            *(table.column(k).to_pylist() for k in ("relation", "clip_x", "clip_y", "clip_z")),
            strict=True,
        )
    ]
    text = json.dumps(["mosrm.triplets", TRIPLET_SAMPLER_VERSION, rows], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def triplet_edges(table: pa.Table) -> tuple[list[str], list[str]]:
    """The pairs to judge, three per triplet in row order: (x, y), (y, z), (x, z)."""
    x, y, z = (table.column(k).to_pylist() for k in ("clip_x", "clip_y", "clip_z"))
    a: list[str] = []
    b: list[str] = []
    for xi, yi, zi in zip(x, y, z, strict=True):
        a += [xi, yi, xi]
        b += [yi, zi, zi]
    return a, b


# ---------------------------------------------------------------------------------------------
# drawing


def _sample(
    c: _Clips, rel: str, share: int, md_q: int, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, Any]]:
    """`share` valid triplets of `rel` as an (k, 3) array of ascending clip indices."""
    u = _universe(_universe_gid(c, rel))
    sizes = u.sizes
    candidates = int((sizes * (sizes - 1) * (sizes - 2) // 6).sum())
    info: dict[str, Any] = {"target": share, "candidates": candidates}
    tri: np.ndarray | None = None
    if share == 0 or candidates == 0:
        method = "none"
        tri = np.empty((0, 3), dtype=np.int64)
    elif candidates > ENUMERATE_BELOW:
        method = "rejection"
        tri = _by_rejection(c, rel, u, md_q, share, candidates, rng)
        if tri is not None and tri.shape[0] < share:
            info["shortfall"] = (
                f"only {tri.shape[0]} valid triplets found in {MAX_PROPOSALS:,} proposals among "
                f"{candidates:,} candidates, too many to enumerate: the pool is sparse"
            )
    if tri is None:
        method = "enumerate"
        valid = _all_valid(c, rel, u, md_q)
        info["available"] = int(valid.shape[0])
        if share < valid.shape[0]:
            keep = np.sort(rng.choice(valid.shape[0], size=share, replace=False))
            valid = valid[keep]
        elif share > valid.shape[0]:
            info["shortfall"] = (
                f"only {valid.shape[0]} valid triplets, fewer than the share {share}: all taken"
            )
        tri = valid
    info["sampled"] = int(tri.shape[0])
    info["method"] = method
    return tri, info


def _triplet_valid(c: _Clips, rel: str, t: np.ndarray, md_q: int) -> np.ndarray:
    """All three pairs of each triplet valid under `rel` (pairs._valid, the builder's rule)."""
    x, y, z = t[:, 0], t[:, 1], t[:, 2]
    return np.asarray(
        _valid(c, rel, x, y, md_q) & _valid(c, rel, y, z, md_q) & _valid(c, rel, x, z, md_q)
    )


def _enumerate(u: _Universe) -> Iterator[np.ndarray]:
    """Every 3-subset of every group (ascending clip indices), about CHUNK rows at a time."""
    pending: list[np.ndarray] = []
    count = 0
    for start, size in zip(u.starts.tolist(), u.sizes.tolist(), strict=True):
        members = u.members[start : start + size]
        for p in range(size - 2):
            rest = members[p + 1 :]
            j, k = np.triu_indices(rest.size, 1)
            block = np.empty((j.size, 3), dtype=np.int64)
            block[:, 0] = members[p]
            block[:, 1] = rest[j]
            block[:, 2] = rest[k]
            pending.append(block)
            count += j.size
            if count >= CHUNK:
                yield np.concatenate(pending)
                pending, count = [], 0
    if pending:
        yield np.concatenate(pending)


def _all_valid(c: _Clips, rel: str, u: _Universe, md_q: int) -> np.ndarray:
    found = [t[_triplet_valid(c, rel, t, md_q)] for t in _enumerate(u)]
    return np.concatenate(found) if found else np.empty((0, 3), dtype=np.int64)


def _by_rejection(
    c: _Clips,
    rel: str,
    u: _Universe,
    md_q: int,
    share: int,
    candidates: int,
    rng: np.random.Generator,
) -> np.ndarray | None:
    """Uniform distinct valid triplets, or None where enumerating is the better way (module doc).

    Where the universe is too large to enumerate (`ENUMERATE_AT_MOST`), the triplets found in
    `MAX_PROPOSALS` proposals are returned even if fewer than `share` (the caller records it).
    """
    weights = u.sizes * (u.sizes - 1) * (u.sizes - 2) // 6
    cum = np.cumsum(weights)
    n = np.int64(c.n)
    accepted = np.empty(0, dtype=np.int64)  # sorted keys, for duplicate checks
    batches: list[np.ndarray] = []
    have = proposed = valid_seen = 0
    while have < share:
        if proposed >= MAX_PROPOSALS:
            break
        size = int(min(max(64 * (share - have), 65536), CHUNK))
        g = np.searchsorted(cum, rng.integers(0, candidates, size), side="right")
        gs, start = u.sizes[g], u.starts[g]
        i = rng.integers(0, gs)
        j = rng.integers(0, gs - 1)
        j += j >= i
        lo, hi = np.minimum(i, j), np.maximum(i, j)
        k = rng.integers(0, gs - 2)
        k += k >= lo
        k += k >= hi
        t = np.sort(u.members[start[:, None] + np.stack([i, j, k], axis=1)], axis=1)
        ok = _triplet_valid(c, rel, t, md_q)
        proposed += size
        valid_seen += int(ok.sum())
        small = valid_seen * candidates < 4 * share * proposed
        if small and candidates <= ENUMERATE_AT_MOST:
            return None  # the pool may be smaller than 4 x the share: enumerate it exactly
        t = t[ok]
        keys = (t[:, 0] * n + t[:, 1]) * n + t[:, 2]
        keys = _fresh(keys, accepted, share - have)
        batches.append(keys)
        accepted = np.sort(np.concatenate([accepted, keys]))
        have += int(keys.size)
    if have < share and candidates <= ENUMERATE_AT_MOST:
        return None
    keys = np.concatenate(batches) if batches else np.empty(0, dtype=np.int64)
    return np.stack([keys // (n * n), keys // n % n, keys % n], axis=1)


# ---------------------------------------------------------------------------------------------
# rows


def _triplet_ids(task: str, split: str, rel: str, ids: np.ndarray) -> list[str]:
    base = hashlib.sha1(f"{task}\x1f{split}\x1f{rel}\x1f".encode())
    out = []
    for a, b, c in ids.tolist():  # ascending clip index = ascending clip id
        h = base.copy()
        h.update(f"{a}\x1f{b}\x1f{c}".encode())
        out.append(h.hexdigest()[:16])
    return out


def _rows(c: _Clips, task: str, split: str, parts: list[tuple[str, np.ndarray]]) -> pa.Table:
    columns: dict[str, list[Any]] = {f.name: [] for f in TRIPLET_SCHEMA}
    for rel, tri in parts:  # relations in name order already
        tids = _triplet_ids(task, split, rel, c.ids[tri]) if tri.size else []
        for tid, row in sorted(zip(tids, tri.tolist(), strict=True)):
            x, y, z = sorted(row, key=lambda i: -c.q[i])  # MOS strictly decreasing
            columns["triplet_id"].append(tid)
            columns["task"].append(task)
            columns["split"].append(split)
            columns["subset"].append(c.subset_names[c.subset[x]])
            columns["relation"].append(rel)
            for name, i in (("x", x), ("y", y), ("z", z)):
                columns[f"clip_{name}"].append(str(c.ids[i]))
                columns[f"mos_{name}"].append(float(c.mos[i]))
    return pa.Table.from_pydict(columns, schema=TRIPLET_SCHEMA)


def pool_size(clips: pa.Table, *, split: str, relation: str, min_delta: float = 0.0) -> int:
    """Exact number of valid triplets of one relation in a split, by enumeration (tests, cards)."""
    c = _split_clips(clips.filter(pc.equal(clips.column("split"), split)), split)
    md_q = int(round(float(min_delta) * NANO))
    return int(_all_valid(c, relation, _universe(_universe_gid(c, relation)), md_q).shape[0])
