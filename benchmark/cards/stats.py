"""A data card's numbers (`benchmark.cards.card`), all recomputed from the prepared clip table and the
pair files on disk, which must match the builder's metadata and their recorded sha256: a stale
folder is refused, not described. Only what the files cannot tell comes from the metadata
(targets, pool sizes, bin edges)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.cards.reliability import SplitReliability
from benchmark.data.tables import FIXED_SUBSETS
from benchmark.errors import MosrmError
from benchmark.pairs.prepare import CANONICAL_RANGE

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from benchmark.data.corpora._native import Skip
    from benchmark.data.tasks import Task
    from benchmark.pairs.prepare import PreparedTask

HIST_BIN_WIDTH = 0.1
"""Width of the histogram bars in MOS: fixed (not percentile) so cards of different tasks compare."""
HIST_MAX = CANONICAL_RANGE[1] - CANONICAL_RANGE[0]
"""Largest possible ΔMOS: every task is rescaled to the canonical 1–5 range before pairing."""

SPLIT_ORDER = ("train", "dev", "test")


@dataclass
class ClipStats:
    n: int
    systems: int
    no_system: int
    contents: int
    no_content: int
    speakers: int
    no_speaker: int
    rates: dict[int, int] | None  # None: not probed
    seconds: float | None  # None: not probed
    mos_mean: float
    mos_min: float
    mos_max: float
    ratings: list[int]  # known n_ratings values
    no_ratings: int
    subsets: dict[str | None, int]


@dataclass
class PairStats:
    file_name: str
    sha256: str
    meta: dict[str, Any]
    n: int
    relations: list[str]  # display order
    by_relation: dict[str, int]
    by_bin: dict[str, list[int]]  # relation -> pairs per ΔMOS percentile bin
    fixed: dict[str, dict[str, int]]  # relation -> fixed-subset flag -> pairs
    by_subset: dict[str | None, dict[str, int]]  # subset -> relation -> pairs
    hist: dict[str, list[int]]  # relation -> pairs per fixed-width histogram bar


@dataclass
class CardData:
    labels_only: bool
    splits: list[str]
    clips: dict[str, ClipStats]
    pairs: dict[str, PairStats]
    skips: list[Skip] = field(default_factory=list)
    reliability: dict[str, SplitReliability] = field(default_factory=dict)

    @property
    def total_pairs(self) -> int:
        return sum(p.n for p in self.pairs.values())


def ordered_splits(names: Any) -> list[str]:
    """train, dev, test first (the order readers think in), then any other split by name."""

    def key(s: str) -> tuple[int, str]:
        return (SPLIT_ORDER.index(s) if s in SPLIT_ORDER else len(SPLIT_ORDER), s)

    return sorted(set(names), key=key)


def display_relations(task: Task, present: Any) -> list[str]:
    """The task's declared relation order, then anything else the files hold (sorted)."""
    present = set(present)
    declared = [r for r in task.spec.relations if r in present]
    return declared + sorted(present - set(declared))


def _clip_stats(clips: pa.Table) -> dict[str, ClipStats]:
    cols = {name: clips.column(name).to_pylist() for name in clips.column_names}
    by_split: dict[str, list[int]] = {}
    for i, split in enumerate(cols["split"]):
        by_split.setdefault(split, []).append(i)
    out: dict[str, ClipStats] = {}
    for split, rows in by_split.items():

        def values(name: str, rows: list[int] = rows) -> list[Any]:
            return [cols[name][i] for i in rows]

        def distinct(name: str) -> tuple[int, int]:
            vals = values(name)
            return len({v for v in vals if v is not None}), sum(v is None for v in vals)

        systems, no_system = distinct("system_id")
        contents, no_content = distinct("content_id")
        speakers, no_speaker = distinct("speaker_id")
        rates_raw = values("sample_rate")
        rates = None if any(r is None for r in rates_raw) else dict(Counter(rates_raw))
        durations = values("duration")
        seconds = None if any(d is None for d in durations) else math.fsum(durations)
        mos = values("mos")
        ratings = [int(r) for r in values("n_ratings") if r is not None]
        out[split] = ClipStats(
            n=len(rows),
            systems=systems,
            no_system=no_system,
            contents=contents,
            no_content=no_content,
            speakers=speakers,
            no_speaker=no_speaker,
            rates=rates,
            seconds=seconds,
            mos_mean=math.fsum(mos) / len(mos),
            mos_min=min(mos),
            mos_max=max(mos),
            ratings=sorted(ratings),
            no_ratings=len(rows) - len(ratings),
            subsets=dict(Counter(values("subset"))),
        )
    return out


def _encode(column: pa.ChunkedArray) -> tuple[list[Any], np.ndarray]:
    """(distinct values, integer code per row); nulls are a value of their own."""
    import pyarrow.compute as pc

    enc = pc.dictionary_encode(column.combine_chunks(), null_encoding="encode")
    return enc.dictionary.to_pylist(), enc.indices.to_numpy(zero_copy_only=False)


def stale(task: Task, path: Path, why: str) -> MosrmError:
    return MosrmError(
        f"{path}: {why}; the prepared pair files are out of date or were modified, "
        f"run `mosrm prepare {task.name}` again before `mosrm card {task.name}`"
    )


def _pair_stats(task: Task, prepared: PreparedTask, split: str) -> PairStats:
    import numpy as np
    import pyarrow.parquet as pq

    from benchmark.hashing import sha256_file
    from benchmark.pairs.pools import NANO

    path = prepared.pair_files[split]
    meta = prepared.pair_meta.get(split)
    recorded = prepared.pair_sha256.get(split)
    if meta is None or recorded is None:
        raise stale(task, path, f"no metadata or sha256 recorded for split '{split}'")
    try:
        actual = sha256_file(path)
        table = pq.read_table(
            path, columns=["relation", "subset", "delta_mos", "delta_bin", *FIXED_SUBSETS]
        )
    except OSError as exc:
        raise MosrmError(f"{path}: cannot read the pair file: {exc}") from None
    if actual != recorded:
        raise stale(task, path, f"sha256 {actual} differs from the recorded {recorded}")
    if meta.get("task_version", task.spec.version) != task.spec.version:
        raise stale(
            task,
            path,
            f"built for task version {meta.get('task_version')}, "
            f"the task YAML is version {task.spec.version}",
        )

    rel_names, rel_codes = _encode(table.column("relation"))
    sub_names, sub_codes = _encode(table.column("subset"))
    delta = table.column("delta_mos").to_numpy()
    dbin = table.column("delta_bin").to_numpy().astype(np.int64)
    flags = {name: table.column(name).to_numpy(zero_copy_only=False) for name in FIXED_SUBSETS}
    bins = int(meta.get("bins", task.spec.bins))
    relations = display_relations(task, set(rel_names) | set(meta.get("relations", {})))

    width_q = round(HIST_BIN_WIDTH * NANO)
    n_bars = round(HIST_MAX / HIST_BIN_WIDTH)
    # ΔMOS is stored quantised to 1e-9; integer nano-units put 0.3 in the bar [0.3, 0.4), not below
    bar = np.minimum(np.rint(delta * NANO).astype(np.int64) // width_q, n_bars - 1)

    by_relation: dict[str, int] = {}
    by_bin: dict[str, list[int]] = {}
    fixed: dict[str, dict[str, int]] = {}
    hist: dict[str, list[int]] = {}
    code = {name: i for i, name in enumerate(rel_names)}
    for rel in relations:
        mask = rel_codes == code[rel] if rel in code else np.zeros(table.num_rows, dtype=bool)
        by_relation[rel] = int(mask.sum())
        by_bin[rel] = np.bincount(dbin[mask], minlength=bins).astype(int).tolist()
        fixed[rel] = {name: int(flags[name][mask].sum()) for name in FIXED_SUBSETS}
        hist[rel] = np.bincount(bar[mask], minlength=n_bars).astype(int).tolist()
    by_subset: dict[str | None, dict[str, int]] = {}
    for sub_code, sub in enumerate(sub_names):
        in_sub = sub_codes == sub_code
        by_subset[sub] = {
            rel: int((in_sub & (rel_codes == code[rel])).sum()) for rel in relations if rel in code
        }

    n = table.num_rows
    if int(meta.get("n_pairs", n)) != n:
        raise stale(task, path, f"{n} pairs in the file, the metadata says {meta['n_pairs']}")
    for rel, info in meta.get("relations", {}).items():
        if int(info.get("sampled", by_relation.get(rel, 0))) != by_relation.get(rel, 0):
            raise stale(
                task,
                path,
                f"{by_relation.get(rel, 0)} {rel} pairs in the file, "
                f"the metadata says {info.get('sampled')}",
            )
    totals = [sum(by_bin[r][i] for r in relations) for i in range(bins)]
    if "bin_counts" in meta and list(meta["bin_counts"]) != totals:
        raise stale(task, path, f"ΔMOS bin counts {totals} differ from {meta['bin_counts']}")
    return PairStats(
        file_name=path.name,
        sha256=recorded,
        meta=meta,
        n=n,
        relations=relations,
        by_relation=by_relation,
        by_bin=by_bin,
        fixed=fixed,
        by_subset=by_subset,
        hist=hist,
    )


def collect(task: Task, prepared: PreparedTask) -> CardData:
    if prepared.task.name != task.name:
        raise MosrmError(
            f"card for task '{task.name}' was given the prepared data of '{prepared.task.name}'"
        )
    clips = _clip_stats(prepared.clips)
    pairs = {split: _pair_stats(task, prepared, split) for split in sorted(prepared.pair_files)}
    published = task.spec.card.published_clips if task.spec.card else {}
    splits = ordered_splits([*clips, *pairs, *task.spec.pairs, *published])
    from benchmark.cards.reliability import collect

    reliability = {
        split: collect(
            prepared.pair_files[split],
            prepared.clips,
            p.meta,
            bins=int(p.meta.get("bins", task.spec.bins)),
            seed=task.spec.seed,
        )
        for split, p in pairs.items()
    }
    return CardData(
        labels_only=prepared.labels_only,
        splits=splits,
        clips=clips,
        pairs=pairs,
        skips=list(prepared.skips),
        reliability=reliability,
    )


def edge_text(x: float) -> str:
    """A ΔMOS bin edge as shown (three decimals), in the Markdown and the SVG alike."""
    return f"{x:.3f}"
