"""The one batched scoring loop of the harness: clips in, cached scores out.

Nothing else in the harness runs a model on audio. Keeping a single loop means one place enforces
what makes results trustworthy and cheap:

- each unique clip (or unordered pair, for pairwise judges) is run through the model once, however
  many pairs use it;
- clips are decoded one by one (`benchmark.data.audio.load_audio`) and grouped by length
  (`length_buckets`), so padding stays small and a model that masks padding gets bit-identical
  scores whatever the batch size;
- the order a model is sent clips (or pairs) in is a function of their audio alone: by length,
  then by audio SHA-256 (`send_order`), never the clip table's or the pair table's order nor the
  clip ids, so a submission learns nothing from it that the audio does not tell (issue 20);
- a prepared task's clips come from its packed store (`benchmark.data.packed_audio`: slices of one
  memory map, keyed by the audio SHA-256 its manifest records), so scoring reads and hashes no
  per-clip file; other audio is decoded and hashed (memoised) file by file;
- the next batches are read and padded in a background thread while the model runs the current
  one (`benchmark.scoring.prefetch`; pinned memory and non-blocking copies on CUDA), so the model does not
  wait for audio, when a core is free for that thread (`_read_ahead`); batches, their order and
  the order of cache commits are the same as without it;
- under torchrun (`mosrm evaluate --nproc N`), the ranks split these very batches between them and
  pool their scores (`benchmark.scoring.sharding`), so N processes give the bytes one process gives;
- every score lands in a SQLite cache keyed by (model fingerprint, clip id + audio SHA-256,
  preprocessing); each finished batch is journaled (one append, `benchmark.scoring.journal`) before
  the next one starts and committed to SQLite every few seconds and at the end, so a killed run
  resumes where it stopped and gives exactly the numbers an uninterrupted run would have, and
  other tasks over the same audio reuse the scores (`benchmark.scoring.cache`: its schema, and why
  a process keeps it open between runs);
- model output is validated (shape [B], finite) before anything is cached, and a bad output is a
  `SubmissionError` naming the model fingerprint and the clips;
- pairwise judges are always asked in both presentation orders and averaged,
  P = (prefer(a, b) + 1 - prefer(b, a)) / 2 (`order_average`), so position bias cannot move their
  accuracy. Which clip of a pair is shown first in a batch's first call is picked by a hash of
  both clips' audio (`presented_first`): symmetric in the two, blind to clip ids, and mixed
  within a batch, so neither the order nor the count of calls tells a judge which clip is which.
  Both raw answers are kept (cache and predictions, as prefer(lo, hi) and prefer(hi, lo) of the
  canonical pair), because the average hides the bias it cancels: `benchmark.stats.diagnostics`
  reports position consistency and first-position bias from them.

`preprocessing` is the sorted-key JSON of `preprocessing_config(model.sample_rate)`, plus
`"autocast": "bf16"` when bf16 autocast was in effect (it changes the numbers).

How many units came from the cache and how many the model computed is told to whoever opened a
`count_cache_use()` block (the pipeline, for the run record): a cached rerun's throughput measures
the cache, not the model.

This module is the loop itself, as named steps: plan the units (`_plan_pairs` for a judge, one
unit per clip otherwise) → read the cache (`_Stored.read`: the cache, the journal and the torchrun
ranks' agreement behind one interface) → load the model only if something is missing
(`calls._prepare_model`) → plan batches (`_plan_batches`) → run the missing units
(`_run_batches`, shared between ranks under torchrun) → persist each batch (`_Stored.write`) →
assemble the answer in the caller's order (`_judgements` for a judge). Its parts live beside it,
each with one job: calling the model and checking what it returns (`scoring.calls`), the run's
config and device (`scoring.config`), the order units are sent in (`scoring.order`), batches read
ahead (`scoring.buckets`), the cache-use counts (`scoring.counts`), and the predictions table
built from the scores (`scoring.predictions.predict`, which the pipeline calls).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import closing, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from benchmark.data.audio import (
    length_buckets,
)
from benchmark.data.batch import Batch, pad_buffers
from benchmark.errors import DataError, SubmissionError
from benchmark.scoring.buckets import _BucketDataset, _iter_buckets
from benchmark.scoring.cache import (  # noqa: F401  (CACHE_SCHEMA_VERSION, cache_error: re-exported)
    CACHE_SCHEMA_VERSION,
    ClipKey,
    ScoreCache,
    cache_error,
    open_cache,
)
from benchmark.scoring.calls import _prepare_model, _run_model, _sample_rate, _validate
from benchmark.scoring.config import (  # noqa: F401 - ScoringConfig & co. keep this path too
    ScoringConfig,
    _bf16,
    _cache_prep,
    _elsewhere,
    _read_ahead,
    effective_preprocessing,
    resolve_device,
)
from benchmark.scoring.counts import CacheCounts, _count, count_cache_use  # noqa: F401
from benchmark.scoring.order import (
    _audio_key,
    _clip_info,
    _ClipInfo,
    _length,
    presented_first,
    send_order,
)

if TYPE_CHECKING:
    import torch


def _progress(total: int, desc: str, unit: str, enabled: bool) -> Any:
    from benchmark.progress import bar

    return bar(total, desc, unit, enabled=enabled)


def _bar_desc(verb: str, label: str | None) -> str:
    """The progress bar's description: "scoring <submission>", never the fingerprint.

    The fingerprint keys the cache but means nothing to a reader watching several submissions
    run; the label is the caller's display-safe name (a submission's `spec.name`).
    """
    if not label:
        return verb
    from benchmark.escape import display_name

    return f"{verb} {display_name(label, 60)}"


def _autocast(device: torch.device, bf16: bool) -> Any:
    import torch

    if bf16 and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def _plan_batches(
    units: Sequence[tuple[int, ...]],
    todo: list[int],
    info: _ClipInfo,
    sample_rate: int,
    config: ScoringConfig,
) -> tuple[list[int], list[int], list[list[int]]]:
    """The `todo` units in `send_order` (a function of their audio alone), their lengths in
    samples (a pair's: its longer clip), and the length buckets they are batched in
    (`length_buckets` keeps the send order within a length, as its ties go by index)."""
    clip_lengths: dict[int, int] = {}
    for u in todo:
        for c in units[u]:
            if c not in clip_lengths:
                clip_lengths[c] = _length(info, c, sample_rate)
    unit_length = {u: max(clip_lengths[c] for c in units[u]) for u in todo}
    todo = send_order(todo, unit_length, [_audio_key(info, units[u]) for u in todo])
    lengths = [unit_length[u] for u in todo]
    buckets = [
        [todo[j] for j in b]
        for b in length_buckets(lengths, config.max_batch_size, config.max_batch_samples)
    ]
    return todo, lengths, buckets


def _run_units(
    units: Sequence[tuple[int, ...]],
    todo: list[int],
    info: _ClipInfo,
    sample_rate: int,
    config: ScoringConfig,
    step: Callable[[list[Batch], list[int]], list[tuple[Any, Any]]],
    put: Callable[[list[tuple[Any, Any]]], None],
    have: dict[Any, Any],
    desc: str,
    unit_name: str,
    elsewhere: bool = False,
) -> None:
    """Run the `todo` units (a clip, or a pair of clips in presentation order) through `step`:
    plan their batches (`_plan_batches`), share them out between torchrun ranks if any
    (`benchmark.scoring.sharding`), then run this process's batches (`_run_batches`), each
    bucket's results `put` (persisted) before the next one starts."""
    todo, lengths, buckets = _plan_batches(units, todo, info, sample_rate, config)
    from benchmark.scoring.sharding import active

    group = active()  # torchrun: ranks share out these very batches (benchmark.scoring.sharding)
    if group is not None and group.batches is None:
        size = dict(zip(todo, lengths, strict=True))

        def part(share: list[int], record: Callable[[list[tuple[Any, Any]]], None]) -> None:
            _run_units(
                units, share, info, sample_rate, config, step, record, have, desc, unit_name,
                elsewhere,
            )  # fmt: skip

        group.run(buckets, [sum(size[u] for u in b) for b in buckets], part, have, put)
        return
    if group is not None:
        assert group.batches is not None  # this rank's share, set by group.run above
        buckets = group.batches
    _run_batches(units, buckets, len(todo), info, sample_rate, config, step, put, have,
                 desc, unit_name, elsewhere)  # fmt: skip


def _run_batches(
    units: Sequence[tuple[int, ...]],
    buckets: list[list[int]],
    total: int,
    info: _ClipInfo,
    sample_rate: int,
    config: ScoringConfig,
    step: Callable[[list[Batch], list[int]], list[tuple[Any, Any]]],
    put: Callable[[list[tuple[Any, Any]]], None],
    have: dict[Any, Any],
    desc: str,
    unit_name: str,
    elsewhere: bool,
) -> None:
    """Decode and pad each bucket once (read ahead in a thread when a core is free), run `step`
    on its batches on the device (under autocast when asked), `put` its results and add them to
    `have`."""
    import torch

    device = resolve_device(config)
    bf16 = config.bf16 and device.type == "cuda"
    # padding reuses memory: inline, batch k is done with before batch k + 1 is padded; with the
    # reader thread, one batch is in the model's hands while `ahead` wait and one more is being
    # padded (DataLoader workers pad in their own memory)
    in_process = config.num_workers == 0
    ahead = _read_ahead(config, device, elsewhere)
    with pad_buffers(ahead + 2 if ahead else 1) if in_process else nullcontext() as buffers:
        dataset = _BucketDataset(
            info.paths, info.ids, units, buckets, sample_rate, info.store, buffers
        )
        bar = _progress(total, desc, unit_name, config.progress)
        try:
            pin = device.type == "cuda"
            loaded_buckets = _iter_buckets(dataset, config.num_workers, ahead, pin)
            # closing: a model error stops and joins the prefetch thread before it propagates
            with torch.inference_mode(), closing(loaded_buckets):
                for loaded in loaded_buckets:
                    assert loaded.batches is not None
                    batches = [b.to(device) for b in loaded.batches]
                    with _autocast(device, bf16):
                        items = step(batches, buckets[loaded.bucket])
                    put(items)
                    have.update(items)
                    bar.update(len(items))
        finally:
            bar.close()


@dataclass(frozen=True)
class _Stored:
    """The score cache as one scoring call sees it: one (fingerprint, preprocessing) and one kind
    of unit. Reading pools the torchrun ranks' hits so all compute the same units and counts
    what was found for the run record; writing journals then commits (`ScoreCache`)."""

    cache: ScoreCache
    fingerprint: str
    prep: str
    kind: str  # "clip" or "pair"

    def read(self, keys: Sequence[Any]) -> dict[Any, Any]:
        get = self.cache.get_clips if self.kind == "clip" else self.cache.get_pairs
        have: dict[Any, Any] = get(self.fingerprint, self.prep, keys)
        _agree_cached(f"{self.kind}s {self.fingerprint} {self.prep}", keys, have, self.write)
        _count(self.kind, len(keys), sum(1 for k in keys if k not in have))
        return have

    def write(self, items: list[Any]) -> None:
        if self.kind == "clip":
            self.cache.put_clips(self.fingerprint, self.prep, items)
        else:
            self.cache.put_pairs(self.fingerprint, self.prep, items)


def _score_missing(
    model: Any,
    units: Sequence[tuple[int, ...]],
    keys: Sequence[Any],
    info: _ClipInfo,
    sample_rate: int,
    config: ScoringConfig,
    store: _Stored,
    make_step: Callable[[Any], Callable[[list[Batch], list[int]], list[tuple[Any, Any]]]],
    desc: str,
) -> dict[Any, Any]:
    """Read the cache → load the model (only if something is missing) → run the missing units →
    persist them; returns every unit's value by cache key. Shared by clips and pairs."""
    have = store.read(keys)
    todo = [u for u, k in enumerate(keys) if k not in have]
    if todo:
        fingerprint = store.fingerprint
        model, _ = _prepare_model(model, resolve_device(config), fingerprint)
        _run_units(units, todo, info, sample_rate, config, make_step(model), store.write, have,
                   desc, store.kind, _elsewhere(model))  # fmt: skip
    return have


# ---------------------------------------------------------------------------------------------
# public entry points


def score_clips(
    model: Any,
    clips: pa.Table,
    data_root: Path,
    *,
    fingerprint: str,
    config: ScoringConfig = ScoringConfig(),
    cache_path: Path | None = None,
    label: str | None = None,
) -> dict[str, float]:
    """Score every clip of `clips` with a scalar model, reusing and filling the score cache.

    Returns {clip_id: score} in table order. Only clips missing from the cache reach the model.
    `label` names the model in the progress bar (e.g. the submission's name).
    """
    if not fingerprint:
        raise ValueError("a model fingerprint is required (it keys the score cache)")
    with open_cache(cache_path) as cache:
        info = _clip_info(clips, data_root, cache)
        if not info.ids:
            return {}
        sr = _sample_rate(model, fingerprint)
        if not callable(getattr(model, "score", None)):
            raise SubmissionError(f"model {fingerprint}: scalar model has no score()")
        keys = info.keys

        def make_step(model: Any) -> Callable[[list[Batch], list[int]], list[tuple[Any, Any]]]:
            def step(batches: list[Batch], members: list[int]) -> list[tuple[Any, Any]]:
                (batch,) = batches
                ids = list(batch.clip_ids)
                out = _run_model(model.score, (batch,), "score()", fingerprint, ids)
                values = _validate(out, len(ids), "score()", fingerprint, ids)
                return [(keys[i], v) for i, v in zip(members, values.tolist(), strict=True)]

            return step

        store = _Stored(cache, fingerprint, _cache_prep(sr, _bf16(config)), "clip")
        units = [(i,) for i in range(len(info.ids))]
        desc = _bar_desc("scoring", label)
        have = _score_missing(model, units, keys, info, sr, config, store, make_step, desc)
        return {cid: have[key] for cid, key in zip(info.ids, keys, strict=True)}


@dataclass(frozen=True)
class PairJudgements:
    """A pairwise judge's answers per row (pair (a, b)), float64 arrays of equal length.

    `p` is the harness's decision value, P(a better) averaged over both presentation orders;
    `a_first` = prefer(a, b) and `b_first` = prefer(b, a) are the raw answers it was built from.
    """

    p: np.ndarray
    a_first: np.ndarray
    b_first: np.ndarray


def order_average(p_lo_hi: float, p_hi_lo: float) -> float:
    """P(lo better) from prefer(lo, hi) and prefer(hi, lo): THE order-averaging expression.

    Written once so that a cached pair and a freshly judged one give the same float64.
    """
    return (p_lo_hi + 1.0 - p_hi_lo) / 2.0


def score_pairs(
    model: Any,
    pairs: pa.Table,
    clips: pa.Table,
    data_root: Path,
    *,
    fingerprint: str,
    config: ScoringConfig = ScoringConfig(),
    cache_path: Path | None = None,
) -> np.ndarray:
    """P(clip_a better than clip_b) per row of `pairs` from a pairwise judge, both orders averaged.

    Each unordered pair is judged once and averaged as its canonical pair (lo, hi) (`judge_pairs`),
    so P(b over a) is exactly 1 - P(a over b) and a result never depends on which order the cache
    was filled in.
    """
    a_ids, b_ids = _pair_ids(pairs)
    return judge_pairs(
        model,
        a_ids,
        b_ids,
        clips,
        data_root,
        fingerprint=fingerprint,
        config=config,
        cache_path=cache_path,
    ).p


@dataclass(frozen=True)
class _PairUnits:
    """The unordered pairs a judge is asked about, planned from the rows: each once, as its
    canonical (lo, hi), lo the smaller (clip id, audio sha256)."""

    units: list[tuple[int, int]]  # canonical (lo, hi) clip indices
    keys: list[tuple[Any, Any]]  # their cache keys
    shown: list[tuple[int, int]]  # as presented first: the clip `presented_first` picks, first
    rows: list[tuple[int, bool]]  # per row: (unit, clip_a is the canonical lo)


def _plan_pairs(info: _ClipInfo, a_ids: Sequence[str], b_ids: Sequence[str]) -> _PairUnits:
    index = {cid: i for i, cid in enumerate(info.ids)}
    units: list[tuple[int, int]] = []
    unit_of: dict[tuple[int, int], int] = {}
    rows: list[tuple[int, bool]] = []
    for a, b in zip(a_ids, b_ids, strict=True):
        ia, ib = index[a], index[b]
        a_lo = info.keys[ia] <= info.keys[ib]
        unit = (ia, ib) if a_lo else (ib, ia)
        if unit not in unit_of:
            unit_of[unit] = len(units)
            units.append(unit)
        rows.append((unit_of[unit], a_lo))
    keys = [(info.keys[lo], info.keys[hi]) for lo, hi in units]
    shown = [(lo, hi) if presented_first(info, lo, hi) else (hi, lo) for lo, hi in units]
    return _PairUnits(units, keys, shown, rows)


def _judgements(plan: _PairUnits, have: dict[Any, Any]) -> PairJudgements:
    """Per row, P(a better) (the `order_average` of the canonical pair, flipped when a is hi) and
    the two raw answers in the row's own orientation."""
    m = len(plan.rows)
    p, a_first, b_first = (np.empty(m, dtype=np.float64) for _ in range(3))
    for r, (u, a_lo) in enumerate(plan.rows):
        p_lo_hi, p_hi_lo = have[plan.keys[u]]
        p_lo = order_average(p_lo_hi, p_hi_lo)
        p[r] = p_lo if a_lo else 1.0 - p_lo
        a_first[r], b_first[r] = (p_lo_hi, p_hi_lo) if a_lo else (p_hi_lo, p_lo_hi)
    return PairJudgements(p, a_first, b_first)


def judge_pairs(
    model: Any,
    a_ids: Sequence[str],
    b_ids: Sequence[str],
    clips: pa.Table,
    data_root: Path,
    *,
    fingerprint: str,
    config: ScoringConfig = ScoringConfig(),
    cache_path: Path | None = None,
    label: str | None = None,
) -> PairJudgements:
    """Both presentation orders and their average for each pair (a_ids[i], b_ids[i]).

    Each unordered pair is judged once, in both orders: first with the clip `presented_first`
    picks (a hash of both clips' audio) shown first, then swapped. The answers are stored and
    averaged as those of the canonical pair (lo, hi), lo the smaller (clip id, audio sha256):
    (prefer(lo, hi), prefer(hi, lo)), whichever was asked first, and P(lo better) is their
    `order_average`. The cache holds both answers, so pairs judged for any purpose (the pair
    table, the diagnostics' triplets) are never judged twice. `label` names the model in the
    progress bar.
    """

    if not fingerprint:
        raise ValueError("a model fingerprint is required (it keys the score cache)")
    if len(a_ids) != len(b_ids):
        raise ValueError(f"{len(a_ids)} clip_a ids but {len(b_ids)} clip_b ids")
    a_ids, b_ids = [str(c) for c in a_ids], [str(c) for c in b_ids]
    if not a_ids:
        empty = np.zeros(0, dtype=np.float64)
        return PairJudgements(empty, empty.copy(), empty.copy())
    used = _used_clips(clips, a_ids + b_ids)
    with open_cache(cache_path) as cache:
        info = _clip_info(used, data_root, cache)
        sr = _sample_rate(model, fingerprint)
        if not callable(getattr(model, "prefer", None)):
            raise SubmissionError(f"model {fingerprint}: pairwise model has no prefer()")
        plan = _plan_pairs(info, a_ids, b_ids)

        def make_step(model: Any) -> Callable[[list[Batch], list[int]], list[tuple[Any, Any]]]:
            def step(batches: list[Batch], members: list[int]) -> list[tuple[Any, Any]]:
                first, second = batches  # per unit, its hash-chosen clip first (`plan.shown`)
                ids = [f"{x}|{y}" for x, y in zip(first.clip_ids, second.clip_ids, strict=True)]
                n = len(ids)
                fwd = _run_model(model.prefer, (first, second), "prefer(a, b)", fingerprint, ids)
                rev = _run_model(model.prefer, (second, first), "prefer(b, a)", fingerprint, ids)
                p_fwd = _validate(fwd, n, "prefer(a, b)", fingerprint, ids, prob=True)
                p_rev = _validate(rev, n, "prefer(b, a)", fingerprint, ids, prob=True)
                # the cache's (prefer(lo, hi), prefer(hi, lo)), whichever was presented first
                return [
                    (
                        plan.keys[u],
                        (float(f), float(r))
                        if plan.shown[u] == plan.units[u]
                        else (float(r), float(f)),
                    )
                    for u, f, r in zip(members, p_fwd, p_rev, strict=True)
                ]

            return step

        store = _Stored(cache, fingerprint, _cache_prep(sr, _bf16(config)), "pair")
        desc = _bar_desc("judging", label)
        have = _score_missing(model, plan.shown, plan.keys, info, sr, config, store, make_step,
                              desc)  # fmt: skip
        return _judgements(plan, have)


def _agree_cached(
    what: str, keys: Sequence[Any], have: dict[Any, Any], put: Callable[[list[Any]], None]
) -> None:
    """Under torchrun, pool the ranks' cache hits so all compute the same units (no-op alone)."""
    from benchmark.scoring.sharding import active

    group = active()
    if group is not None:
        group.agree_cached(what, keys, have, put)


def _pair_ids(pairs: pa.Table) -> tuple[list[str], list[str]]:
    for col in ("clip_a", "clip_b"):
        if col not in pairs.column_names:
            raise DataError(f"pair table has no '{col}' column")
    return (
        [str(c) for c in pairs.column("clip_a").to_pylist()],
        [str(c) for c in pairs.column("clip_b").to_pylist()],
    )


def _used_clips(clips: pa.Table, ids: Sequence[str]) -> pa.Table:
    """The rows of `clips` the pairs use (each once), or DataError naming unknown clip ids."""
    import pyarrow.compute as pc

    wanted = sorted(set(ids))
    known = set(clips.column("clip_id").to_pylist())
    missing = [c for c in wanted if c not in known]
    if missing:
        raise DataError(
            f"pairs use {len(missing)} clip ids absent from the clip table, "
            f"e.g. {', '.join(missing[:5])}"
        )
    mask = pc.is_in(clips.column("clip_id"), value_set=pa.array(wanted, type=pa.string()))
    return clips.filter(mask)
