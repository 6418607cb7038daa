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
smaller than the target). No stage materialises every candidate pair (TMHINT-QI train: ~69M cross
candidates): pools are counted by inclusion–exclusion (`benchmark.pairs.pools`) and drawn by
chunked enumeration or rejection (`benchmark.pairs.draw`); the label-reliability prior is summed
as pairs are drawn (`benchmark.pairs.priors`). This module chooses targets, runs those per split
and subset, and writes the rows and metadata.

Everything random comes from numpy Generators seeded by a SHA-256 of (seed, task, split, relation,
purpose), so results never depend on Python's per-process `hash()` nor on the input row order
(clips are sorted by `clip_id` first). A/B order is balanced: exactly half the pairs of each
relation (±1 for odd counts) are presented higher-MOS-first, at random positions, so a model with
a pure position bias scores exactly chance. Rows are sorted by (relation, pair_id), so the same
inputs and seed give a byte-identical Parquet file. Pair ids (`pair_ids`), the A/B draw, bins and
rows are made by `pair_rows`, which streams pools too large for memory through bucket files.

ΔMOS bins: per task and split, over all relations of the split, by rank in the split's *candidate
pool* (every valid pair of the relations built, counted exactly by `pools.PoolRanks`, never
enumerated): a ΔMOS with r pool pairs below it out of n goes to band floor(r * bins / n), so the
pool's bins are equal to ±1 pair and the sample drawn from it never moves an edge (ranks of the
sampled pairs did: redrawing pairs moved the edges, and that randomness was not in any interval).
Tied ΔMOS share r, so a tie is never split across bins (the same ΔMOS is the same difficulty).
Discrete rating scales tie many Δ values (TMHINT-QI train: 1–2 ratings per clip) and a tie may cover
a whole band, leaving it empty in the pool: such bands are dropped and the rest renumbered 0, 1, …,
so a split may get fewer bins than requested (all Δ equal: one bin). A sample smaller than its pool
may leave a bin with few or no pairs; its cells then say n = 0 rather than move the edges.
`bin_edges[i]` is the smallest pool ΔMOS of bin i and the last edge the largest pool ΔMOS: bin i
holds edges[i] <= Δ < edges[i+1], the last bin closed. `bins` in the metadata is the number made,
`bins_requested` the task's, `bin_edges_from` "candidate pool"; the card and results say
so. A split with no pairs has `bin_edges` = null.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

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
from benchmark.pairs import draw  # by module: CHUNK and the draw policy are read at call time
from benchmark.pairs.draw import (
    Keep,
    Sink,
    _draw_by_enumeration,
    _draw_by_rejection,
    _rng,
    _universe,
    kept,
)
from benchmark.pairs.ids import PAIR_ID_VERSION, clip_hashes, salt
from benchmark.pairs.pools import (
    NANO,
    _available,
    _Clips,
    _split_clips,
    _universe_gid,
    pool_band_starts,
)
from benchmark.pairs.priors import LabelPriors
from benchmark.pairs.reliability import ESTIMATORS, clip_noise
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
    elif draw._rejection_pays(u.candidates, available, target):
        limit = max_pairs()
        if target > limit:
            raise DataError(
                f"pairs.{split}.{rel}{where}: a sample of {target:,} pairs from a pool of "
                f"{available:,} is drawn in memory (~{target * 60 / 2**30:.1f} GiB), above the "
                f"guard of {limit:,}; set {MAX_PAIRS_ENV}=N if this machine has the memory"
            )
        method = "rejection"
        a, b = _draw_by_rejection(c, rel, u, md_q, target, available, rng)
        for lo in range(0, int(a.size), draw.CHUNK):
            sink(a[lo : lo + draw.CHUNK], b[lo : lo + draw.CHUNK])
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
        pool_bins = pool_band_starts(c, rel_names, md_q, bins)
        if pool_bins is None and any(rp.n for rp in relations):
            raise RuntimeError(f"pair builder bug: {split} drew pairs from an empty pool")
        rows = SplitRows(c, task, split, relations, ab, bins, spill, label, pool_bins)
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
        "bin_edges_from": "candidate pool",
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
