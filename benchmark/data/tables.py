"""The two tables everything flows through: the clip table and the pair table.

Each has one versioned pyarrow schema. Readers produce clip tables, the pair builder turns a clip
table into a pair table, and every later stage (scoring, metrics, leaderboard) reads only these.
Bumping a schema version changes the pair-file hash on purpose: results computed on an older layout
are then recognisably different.

Clip table (one row per audio clip, `CLIP_SCHEMA`):

| column | type | meaning |
|---|---|---|
| clip_id | string, not null | unique within a task; stable across releases (used in cache keys and pair files) |
| corpus | string, not null | corpus name, e.g. `demo`, `bvcc` |
| split | string, not null | `train`, `dev` or `test` (pairs never cross splits) |
| subset | string | finer partition reported separately (e.g. VMC'23 track); null if none |
| audio_path | string, not null | path to the audio, relative to the task's data root (or absolute) |
| mos | float64, not null | mean opinion score, inside the task's declared score range |
| n_ratings | int32 | number of ratings behind `mos`; null if unknown |
| rating_std | float64 | standard deviation of the ratings; null if unknown |
| system_id | string | system / condition key; null = unknown (never "same" as any clip) |
| speaker_id | string | speaker key (metadata only; not a grouping key) |
| content_id | string | content key (same text / same reference); null = unknown |
| sample_rate | int32 | native sample rate of the audio file; null if not probed |
| duration | float64 | seconds; null if not probed |
| ratings | list<float64> | the individual ratings behind `mos` where the corpus publishes them (per-rating rows); null otherwise. Used by the rater-level bootstrap of `benchmark.pairs.reliability` |

Pair table (one row per pair, `PAIR_SCHEMA`): see the column docs in `PAIR_COLUMNS_DOC`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmark.atomic import atomic_path
from benchmark.errors import DataError

CLIP_SCHEMA_VERSION = 2  # 2: `ratings`
PAIR_SCHEMA_VERSION = 3  # 2: `label_reliability`; 3: system_a/_b, content_a/_b

CLIP_SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("corpus", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("subset", pa.string()),
        pa.field("audio_path", pa.string(), nullable=False),
        pa.field("mos", pa.float64(), nullable=False),
        pa.field("n_ratings", pa.int32()),
        pa.field("rating_std", pa.float64()),
        pa.field("system_id", pa.string()),
        pa.field("speaker_id", pa.string()),
        pa.field("content_id", pa.string()),
        pa.field("sample_rate", pa.int32()),
        pa.field("duration", pa.float64()),
        # "element", as Parquet names a list's items: a table read back equals the one written
        pa.field("ratings", pa.list_(pa.field("element", pa.float64()))),
    ],
    metadata={"mosrm.table": "clips", "mosrm.schema_version": str(CLIP_SCHEMA_VERSION)},
)

RELATIONS = ("same_content", "same_system", "cross", "any")
"""Pair relations. `any` ignores grouping keys; it exists for user CSV tasks without keys."""

FIXED_SUBSETS = {
    "dmos_lt_0_2": ("<", 0.2),
    "dmos_le_0_5": ("<=", 0.5),
    "dmos_gt_1_5": (">", 1.5),
}
"""Fixed ΔMOS subsets reported beside the percentile bins (the paper's ΔMOS < 0.2 and ≤ 0.5,
plus an easy subset > 1.5)."""

PAIR_SCHEMA = pa.schema(
    [
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("task", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("subset", pa.string()),
        pa.field("relation", pa.string(), nullable=False),
        pa.field("group_key", pa.string()),
        pa.field("clip_a", pa.string(), nullable=False),
        pa.field("clip_b", pa.string(), nullable=False),
        pa.field("system_a", pa.string()),
        pa.field("system_b", pa.string()),
        pa.field("content_a", pa.string()),
        pa.field("content_b", pa.string()),
        pa.field("mos_a", pa.float64(), nullable=False),
        pa.field("mos_b", pa.float64(), nullable=False),
        pa.field("delta_mos", pa.float64(), nullable=False),
        pa.field("chosen", pa.string(), nullable=False),
        pa.field("delta_bin", pa.int16(), nullable=False),
        pa.field("dmos_lt_0_2", pa.bool_(), nullable=False),
        pa.field("dmos_le_0_5", pa.bool_(), nullable=False),
        pa.field("dmos_gt_1_5", pa.bool_(), nullable=False),
        pa.field("label_reliability", pa.float64()),
    ],
    metadata={"mosrm.table": "pairs", "mosrm.schema_version": str(PAIR_SCHEMA_VERSION)},
)

PAIR_COLUMNS_DOC: dict[str, str] = {
    "pair_id": "stable hash of (task, split, relation, clip ids); unique within a pair file",
    "task": "task name",
    "split": "split both clips belong to (pairs never cross splits)",
    "subset": "subset both clips belong to when the corpus has subsets (e.g. VMC'23 track), else null",
    "relation": "same_content | same_system | cross | any (definitions in benchmark.pairs.build)",
    "group_key": "the shared content id (same_content) or system id (same_system); null otherwise",
    "clip_a": "clip presented first (A/B order randomised by the seed)",
    "clip_b": "clip presented second",
    "system_a": "system id of clip A (null when the corpus has none): intervals generalise over systems",
    "system_b": "system id of clip B",
    "content_a": "content id of clip A (null when the corpus has none)",
    "content_b": "content id of clip B",
    "mos_a": "MOS of clip A",
    "mos_b": "MOS of clip B",
    "delta_mos": "|mos_a - mos_b| (always > min_delta >= 0)",
    "chosen": "'a' or 'b': the clip with the higher MOS",
    "delta_bin": "ΔMOS percentile bin within (task, split), 0 = smallest gaps",
    "dmos_lt_0_2": "ΔMOS < 0.2",
    "dmos_le_0_5": "ΔMOS <= 0.5",
    "dmos_gt_1_5": "ΔMOS > 1.5",
    "label_reliability": "probability that the true (infinite-panel) means are ordered as the "
    "observed MOS are, from the ratings behind each MOS (`benchmark.pairs.reliability`; the estimator is "
    "in the pair file's metadata); null where the corpus gives no rating counts",
}

ORDER_COLUMNS = ("p_a_first", "p_b_first")
"""Optional prediction columns: a pairwise judge's raw answers in each presentation order, checked
by `stats.metrics` (module doc there), written by the scoring loop."""


def _label(source: str | Path | None) -> str:
    return f"{source}: " if source else ""


def conform(table: pa.Table, schema: pa.Schema, source: str | Path | None = None) -> pa.Table:
    """Reorder and cast `table` to `schema`, naming missing columns and failed casts.

    Missing nullable columns are added as nulls, so readers only fill what their corpus has.
    """
    columns = []
    for field in schema:
        if field.name in table.column_names:
            col = table.column(field.name)
            try:
                col = col.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise DataError(
                    f"{_label(source)}column '{field.name}' cannot be read as {field.type}: {exc}"
                ) from None
            if not field.nullable and col.null_count:
                raise DataError(
                    f"{_label(source)}column '{field.name}' has {col.null_count} missing values"
                )
        elif field.nullable:
            col = pa.nulls(table.num_rows, field.type)
        else:
            raise DataError(f"{_label(source)}required column '{field.name}' is missing")
        columns.append(col)
    return pa.Table.from_arrays(columns, schema=schema)


def validate_clips(
    table: pa.Table,
    score_range: tuple[float, float],
    source: str | Path | None = None,
) -> pa.Table:
    """Conform a reader's output to `CLIP_SCHEMA` and check what every later stage relies on.

    Raises `DataError` naming `source` and the offending field and clip ids: duplicate clip ids,
    non-finite or out-of-range MOS, empty ids/paths, and `ratings` that cannot be the ratings
    behind `mos` (see `check_ratings`).
    """
    rounding = mos_rounding(table)
    table = conform(table, CLIP_SCHEMA, source)
    ids = table.column("clip_id")
    counts = pc.value_counts(ids)
    dup = [v["values"].as_py() for v in counts if v["counts"].as_py() > 1]
    if dup:
        raise DataError(
            f"{_label(source)}duplicate clip_id ({len(dup)} ids, e.g. {', '.join(sorted(dup)[:3])})"
        )
    for name in ("clip_id", "audio_path", "split", "corpus"):
        empty = pc.sum(pc.equal(pc.utf8_length(table.column(name)), 0)).as_py() or 0
        if empty:
            raise DataError(f"{_label(source)}column '{name}' has {empty} empty values")
    lo, hi = score_range
    mos = table.column("mos").to_pylist()
    bad = [
        (cid, m)
        for cid, m in zip(ids.to_pylist(), mos, strict=True)
        if not (math.isfinite(m) and lo <= m <= hi)
    ]
    if bad:
        examples = ", ".join(f"{cid}={m}" for cid, m in bad[:3])
        raise DataError(
            f"{_label(source)}field 'mos' outside the declared score range [{lo}, {hi}] "
            f"for {len(bad)} clips (e.g. {examples})"
        )
    check_ratings(table, score_range, rounding, source)
    return table


MOS_ROUNDING_KEY = b"mosrm.mos_rounding"
RATINGS_TOLERANCE = 1e-6
"""|mean(ratings) - mos| allowed per unit of the score range where the MOS is the ratings' mean."""


def attach_mos_rounding(table: pa.Table, rounding: float) -> pa.Table:
    """Record that the reader kept a published MOS printed rounded: it may differ from the mean
    of its `ratings` by up to `rounding` (half a unit of the last printed digit), which
    `validate_clips` then allows. Readers that take the MOS as the ratings' mean record nothing."""
    meta = dict(table.schema.metadata or {})
    meta[MOS_ROUNDING_KEY] = repr(float(rounding)).encode()
    return table.replace_schema_metadata(meta)


def mos_rounding(table: pa.Table) -> float:
    raw = (table.schema.metadata or {}).get(MOS_ROUNDING_KEY)
    return float(raw) if raw else 0.0


def check_ratings(
    table: pa.Table,
    score_range: tuple[float, float],
    rounding: float = 0.0,
    source: str | Path | None = None,
) -> None:
    """Where `ratings` is given: at least one rating, as many as `n_ratings` (when known), each
    finite and inside the score range, and their mean equal to `mos` within
    `RATINGS_TOLERANCE * (hi - lo)` (or the reader's declared `rounding`, if larger).

    The ratings feed the rater-level bootstrap of label reliability: a list that is not the
    panel behind the MOS would give a confident reliability for a label it does not describe.
    """
    lo, hi = score_range
    tolerance = max(RATINGS_TOLERANCE * (hi - lo), rounding)
    first: tuple[str, str] | None = None
    count = 0
    columns = ("clip_id", "ratings", "n_ratings", "mos")
    for cid, ratings, n, m in zip(*(table.column(c).to_pylist() for c in columns), strict=True):
        if ratings is None:
            continue
        problem = _ratings_problem(ratings, n, m, lo, hi, tolerance)
        if problem is not None:
            count += 1
            first = first or (cid, problem)
    if first is not None:
        raise DataError(
            f"{_label(source)}column 'ratings' of clip '{first[0]}' {first[1]} ({count} clip(s) "
            f"so; expected the individual ratings behind mos, or null)"
        )


def _ratings_problem(
    ratings: list[float | None], n: int | None, mos: float, lo: float, hi: float, tolerance: float
) -> str | None:
    if not ratings:
        return "is an empty list (null is how a clip without known ratings is written)"
    for r in ratings:
        if r is None or not math.isfinite(r) or not lo <= r <= hi:
            return f"holds {r}, not a finite rating inside the score range [{lo:g}, {hi:g}]"
    if n is not None and len(ratings) != n:
        return f"has {len(ratings)} ratings but n_ratings is {n}"
    mean = math.fsum(ratings) / len(ratings)  # type: ignore[arg-type]  # no None left
    if abs(mean - mos) > tolerance:
        return f"averages {mean!r} but mos is {mos!r} (tolerance {tolerance:g})"
    return None


def parquet_options(schema: pa.Schema) -> dict[str, Any]:
    """The writer settings of every table we store: the same settings give the same bytes.

    Min/max statistics are kept for numeric and boolean columns only: on string columns (pair and
    clip ids) they cost a fifth of the write time of a pair file and no reader here uses them.
    """
    return {
        "compression": "zstd",
        "use_dictionary": True,
        "write_statistics": [
            f.name
            for f in schema
            if not (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
        ],
        "store_schema": True,
    }


def schema_with_meta(schema: pa.Schema, metadata: Mapping[str, Any] | None) -> pa.Schema:
    """`schema` with extra metadata as sorted JSON under `mosrm.meta` (what `read_meta` reads)."""
    meta = dict(schema.metadata or {})
    if metadata is not None:
        meta[b"mosrm.meta"] = json.dumps(metadata, sort_keys=True, separators=(",", ":")).encode()
    return schema.with_metadata(meta)


def write_parquet(
    table: pa.Table, path: str | Path, metadata: Mapping[str, Any] | None = None
) -> None:
    """Write a table so that identical content gives byte-identical files.

    Extra metadata is stored as sorted JSON under `mosrm.meta`. The file is written beside its
    destination and renamed, so a crash never leaves a half-written table behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = table.replace_schema_metadata(schema_with_meta(table.schema, metadata).metadata)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, **parquet_options(table.schema))


def read_parquet(path: str | Path) -> pa.Table:
    """A whole Parquet file: the table `pq.read_table` gives for one file, schema metadata and
    all, but read without `pyarrow.dataset`, whose import (it pulls in pandas) took longer than
    reading a task's clip table and pair file in a cached `mosrm evaluate`."""
    with pq.ParquetFile(path) as f:
        return f.read()


def read_meta(path: str | Path) -> dict[str, Any]:
    """The `mosrm.meta` JSON stored by `write_parquet` (empty if none)."""
    raw = (pq.read_schema(path).metadata or {}).get(b"mosrm.meta")
    return json.loads(raw) if raw else {}


def from_rows(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """Build a table of `schema` from dict rows (missing keys become nulls)."""
    return pa.Table.from_pylist([dict(r) for r in rows], schema=schema)
