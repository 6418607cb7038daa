"""Will a policy exploit this reward model? `mosrm probe` / `mosrm evaluate --probes`: three
label-free or label-light checks of what an optimiser would do with a reward model, beside the
pairwise accuracy on listeners' labels.

- **sensitivity**: each of a seeded subset of test clips against its degraded copies (noise,
  clipping, low-pass, codec, packet loss, reverberation; `data.probes.DEGRADATIONS`): the clean
  clip must win. Accuracy per degradation and severity, clustered by source clip, and whether it
  rises with severity.
- **hacking**: among a seeded subset of test pairs, the rejected clip is transformed in ways a
  listener barely notices or that do not improve quality (gain, silence, DC, polarity, a 48 kHz
  round trip, a −60 dBFS noise floor; `data.probes.HACKS`): the flip rate is the share of the pairs
  the model got right that it gets wrong afterwards, and the score shift is in units of the
  model's own score spread.
- **best of N**: in every content group, the clip the model would pick (its top score; a judge by
  round robin) against the group's MOS: 1 for an oracle of the observed labels, about 0 for chance.

Why one scoring stream. A submission sees only audio, in an order that is a function of the audio
(`scoring.order`). If the probe clips were scored alone, every clip of that run would be a probe and
a model could tell; so the task's own test clips are sent again in the same call (a score cache of
its own, `probe-scores.sqlite`, never the evaluation's, so nothing of the stream comes from a
cache the model could have seen filled in another order), and a scalar model's re-sent scores
(a judge's answers on the test pairs) are compared with those of its plain evaluation
(`stream_check`): a model that answers differently when probes are around is caught.

Cost and size: `ProbeSettings` takes seeded subsets (by audio key, never by id or order):
`clips` source clips × 23 degradations, `pairs` test pairs × 8 hacks on their rejected clips, all
test clips once more. The record states both counts against the plain evaluation's clip count.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from benchmark.errors import MosrmError

if TYPE_CHECKING:
    import pyarrow as pa

    from benchmark.pairs.prepare import PreparedTask
    from benchmark.scoring.config import ScoringConfig
    from benchmark.scoring.models import Submission


@dataclass(frozen=True)
class ProbeSettings:
    """Subset sizes (None: every clip or pair of the evaluation split) and best-of-N's N."""

    clips: int | None = 32
    pairs: int | None = 96
    bon_n: int = 4


def probes_path(results_root: Path, submission: str, task: str) -> Path:
    """`<results>/<submission>/probes/<task>.json`: a folder of its own, so every reader of
    `<submission>/<task>.json` files (board, validate-results, publish) passes it by."""
    return results_root / submission / "probes" / f"{task}.json"


def _rank(seed: int, *keys: str) -> str:
    """A seeded, order-free sort key (what picks a subset: never ids, never table order)."""
    return hashlib.sha256(":".join([str(seed), *keys]).encode()).hexdigest()


@dataclass
class Stream:
    """What one probe run sends a model: the task's test clips and the probe clips, as one table,
    and the pairs a judge is asked about."""

    clips: pa.Table
    keys: dict[str, str]
    """clip id (real or probe) -> audio sha256"""
    sources: list[str]
    """real clip ids whose degraded copies are probed"""
    degraded: list[tuple[str, str, Any]]
    """(source clip id, probe clip id, Probe)"""
    hack_pairs: list[tuple[str, str]]
    """(chosen, rejected) test pairs whose rejected clip is transformed"""
    hacked: list[tuple[str, str, Any]]
    """(rejected clip id, probe clip id, Probe)"""
    real: list[str]
    """every real clip of the evaluation split, in table order"""
    labels: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    """real clip id -> (system, content), for intervals over new systems and contents"""


def build_stream(prepared: PreparedTask, split: str, settings: ProbeSettings, seed: int) -> Stream:
    """The probe clips of a task's evaluation split (written once into the probe cache) and the
    table that scores them together with the split's own clips."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from benchmark.data.audio import load_audio, resolve_audio_path
    from benchmark.data.probes import DEGRADATIONS, HACKS, write_probe_clips
    from benchmark.hashing import sha256_file
    from benchmark.paths import home

    clips = prepared.clips.filter(pc.equal(prepared.clips.column("split"), split))
    if clips.num_rows == 0:
        raise MosrmError(f"task '{prepared.task.name}': no clips in split '{split}' to probe")
    ids = clips.column("clip_id").to_pylist()
    paths = {
        c: resolve_audio_path(prepared.audio_base, p)
        for c, p in zip(ids, clips.column("audio_path").to_pylist(), strict=True)
    }
    keys = {c: sha256_file(paths[c]) for c in ids}
    sources = sorted(ids, key=lambda c: _rank(seed, "degrade", keys[c]))[: settings.clips]
    pairs = prepared.pairs(split)
    a_ids, b_ids = pairs.column("clip_a").to_pylist(), pairs.column("clip_b").to_pylist()
    side = pairs.column("chosen").to_pylist()  # "a" or "b"
    chosen = [a if w == "a" else b for a, b, w in zip(a_ids, b_ids, side, strict=True)]
    rejected = [b if w == "a" else a for a, b, w in zip(a_ids, b_ids, side, strict=True)]
    all_pairs = sorted(
        zip(chosen, rejected, strict=True),
        key=lambda cr: _rank(seed, "hack", keys[cr[0]], keys[cr[1]]),
    )
    hack_pairs = all_pairs[: settings.pairs]
    to_hack = sorted({r for _, r in hack_pairs}, key=lambda c: keys[c])

    folder = home() / "probes" / prepared.task.name / split
    waves = {c: load_audio(paths[c], 16000).astype(np.float64) for c in {*sources, *to_hack}}
    written = write_probe_clips(
        [(keys[c], waves[c]) for c in sorted(sources, key=lambda c: keys[c])],
        DEGRADATIONS,
        folder,
        seed=seed,
    )
    written += write_probe_clips([(keys[c], waves[c]) for c in to_hack], HACKS, folder, seed=seed)
    by_probe = {p.id: p for p in (*DEGRADATIONS, *HACKS)}
    by_key: dict[str, str] = {}
    for c in ids:
        by_key.setdefault(keys[c], c)  # equal audio: one source (its copies are the same bytes)
    degraded: list[tuple[str, str, Any]] = []
    hacked: list[tuple[str, str, Any]] = []
    rows: dict[str, list[Any]] = {"clip_id": [], "audio_path": [], "duration": []}
    for pc_ in written:
        probe = by_probe[pc_.probe_id]
        source = by_key[pc_.source_key]
        target = degraded if probe.kind == "degradation" else hacked
        target.append((source, pc_.probe_clip_id, probe))
        keys[pc_.probe_clip_id] = sha256_file(pc_.path)
        rows["clip_id"].append(pc_.probe_clip_id)
        rows["audio_path"].append(str(pc_.path))
        rows["duration"].append(float(pc_.seconds))
    real = clips.select(["clip_id", "audio_path", "duration"])
    probe_table = pa.table(
        {
            "clip_id": pa.array(rows["clip_id"], pa.string()),
            "audio_path": pa.array(rows["audio_path"], pa.string()),
            "duration": pa.array(rows["duration"], pa.float64()),
        }
    )
    table = pa.concat_tables([real.cast(probe_table.schema), probe_table])
    labels = {
        str(c): (None if sy is None else str(sy), None if co is None else str(co))
        for c, sy, co in zip(
            ids,
            clips.column("system_id").to_pylist(),
            clips.column("content_id").to_pylist(),
            strict=True,
        )
    }
    return Stream(table, keys, sources, degraded, hack_pairs, hacked, ids, labels)


@dataclass
class Scored:
    """A probe stream's answers: a scalar model's score per clip, or a judge's P(first better)
    per asked pair, averaged over both presentation orders."""

    scores: dict[str, float] | None
    judged: dict[tuple[str, str], float] | None

    def prefer(self, a: str, b: str) -> float:
        """P(a better than b): a judge's answer, or 1 / 0.5 / 0 from the scores (strict)."""
        if self.judged is not None:
            if (a, b) in self.judged:
                return self.judged[(a, b)]
            return 1.0 - self.judged[(b, a)]
        assert self.scores is not None
        sa, sb = self.scores[a], self.scores[b]
        return 1.0 if sa > sb else 0.0 if sa < sb else 0.5


def bon_groups(clips: pa.Table, split: str) -> dict[str, list[str]]:
    """Content id -> its clips of the split (groups of two or more; clips with no content key
    are in none)."""
    import pyarrow.compute as pc

    part = clips.filter(pc.equal(clips.column("split"), split))
    groups: dict[str, list[str]] = {}
    ids = part.column("clip_id").to_pylist()
    for c, content in zip(ids, part.column("content_id").to_pylist(), strict=True):
        if content is not None:
            groups.setdefault(str(content), []).append(str(c))
    return {k: sorted(v) for k, v in sorted(groups.items()) if len(v) >= 2}


def asked_pairs(stream: Stream, groups: dict[str, list[str]]) -> list[tuple[str, str]]:
    """Every pair a judge is asked in one probe run: each source against its degraded copies,
    each hacked test pair before and after, and every pair inside a content group (the round
    robin of best of N). Each unordered pair once; the harness asks both orders."""
    seen: set[frozenset[str]] = set()
    out: list[tuple[str, str]] = []

    def add(a: str, b: str) -> None:
        key = frozenset((a, b))
        if a != b and key not in seen:
            seen.add(key)
            out.append((a, b))

    for source, probe_clip, _ in stream.degraded:
        add(source, probe_clip)
    transformed = {(r, p.id): clip for r, clip, p in stream.hacked}
    for chosen, rejected in stream.hack_pairs:
        add(chosen, rejected)
        for (r, _), clip in sorted(transformed.items()):
            if r == rejected:
                add(chosen, clip)
    for members in groups.values():
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                add(a, b)
    return out


class _HasAudio(Protocol):
    @property
    def audio_base(self) -> Path: ...


def score_stream(
    submission: Submission,
    prepared: _HasAudio,
    stream: Stream,
    groups: dict[str, list[str]],
    config: ScoringConfig,
) -> Scored:
    """One scoring call over the whole stream, in its own score cache (module doc)."""
    from benchmark.paths import home
    from benchmark.scoring.loop import judge_pairs, score_clips

    cache = home() / "probe-scores.sqlite"
    kind = submission.spec.kind
    if kind == "predictions":
        raise MosrmError(
            f"{submission.spec.name}: a predictions file cannot be probed (the probes are new "
            "clips nobody has scored); probe the model itself"
        )
    if kind == "pairwise":
        pairs = asked_pairs(stream, groups)
        judged = judge_pairs(
            submission.model,
            [a for a, _ in pairs],
            [b for _, b in pairs],
            stream.clips,
            prepared.audio_base,
            fingerprint=submission.fingerprint,
            config=config,
            cache_path=cache,
            label=f"{submission.spec.name} (probes)",
        )
        return Scored(None, {p: float(v) for p, v in zip(pairs, judged.p, strict=True)})
    scores = score_clips(
        submission.model,
        stream.clips,
        prepared.audio_base,
        fingerprint=submission.fingerprint,
        config=config,
        cache_path=cache,
        label=f"{submission.spec.name} (probes)",
    )
    return Scored({k: float(v) for k, v in scores.items()}, None)


def stream_check(
    submission: Submission, prepared: _HasAudio, stream: Stream, scored: Scored, config: Any
) -> dict[str, Any] | None:
    """The model's answers on real test items in the probe stream against its plain
    evaluation's (the evaluation's score cache, filled by `mosrm evaluate`; computed now where it
    is not): a scalar model's scores of every test clip, a judge's P(chosen better) on the test
    pairs whose rejected clip was transformed. Equal for a model that does not react to the
    company its clips keep."""
    import pyarrow.compute as pc

    from benchmark.scoring.loop import judge_pairs, score_clips

    real = stream.clips.filter(
        pc.is_in(stream.clips.column("clip_id"), value_set=_ids(stream.real))
    )
    if scored.judged is not None:
        if not stream.hack_pairs:
            return None
        judged = judge_pairs(
            submission.model,
            [c for c, _ in stream.hack_pairs],
            [r for _, r in stream.hack_pairs],
            real,
            prepared.audio_base,
            fingerprint=submission.fingerprint,
            config=config,
            label=submission.spec.name,
        )
        diffs = [
            abs(scored.prefer(c, r) - float(p))
            for (c, r), p in zip(stream.hack_pairs, judged.p, strict=True)
        ]
        diff = max(diffs)
        return {
            "pairs": len(diffs),
            "max_abs_diff": round(float(diff), 9),
            "consistent": bool(diff <= 1e-4),
        }
    assert scored.scores is not None
    plain = score_clips(
        submission.model,
        real,
        prepared.audio_base,
        fingerprint=submission.fingerprint,
        config=config,
        label=submission.spec.name,
    )
    diff = max(abs(scored.scores[c] - float(plain[c])) for c in stream.real)
    scale = max(1e-12, max(abs(float(v)) for v in plain.values()))
    return {
        "clips": len(stream.real),
        "max_abs_diff": round(float(diff), 9),
        "consistent": bool(diff <= 1e-4 * scale + 1e-6),
    }


def _ids(ids: list[str]) -> Any:
    import pyarrow as pa

    return pa.array(ids, pa.string())


def sensitivity_block(stream: Stream, scored: Scored) -> dict[str, Any]:
    """Each source clip against its degraded copies: accuracy per probe, overall, monotonicity."""
    from benchmark.stats.probe_stats import degradation_accuracy, monotonicity, sensitivity

    src = np.array([s for s, _, _ in stream.degraded], dtype=object)
    deg = np.array([d for _, d, _ in stream.degraded], dtype=object)
    fam = np.array([p.family for _, _, p in stream.degraded], dtype=object)
    lvl = np.array([p.level for _, _, p in stream.degraded], dtype=np.int64)
    pid = np.array([p.id for _, _, p in stream.degraded], dtype=object)
    known: dict[str, Any] = {
        "system": [stream.labels.get(str(c), (None, None))[0] for c in src],
        "content": [stream.labels.get(str(c), (None, None))[1] for c in src],
    }
    if scored.judged is not None:
        prob = np.array([scored.prefer(s, d) for s, d in zip(src, deg, strict=True)])
        rows = sensitivity(None, None, src, pid, fam, lvl, judge_prob=prob, **known)
        overall = degradation_accuracy(None, None, src, judge_prob=prob, **known)
    else:
        assert scored.scores is not None
        s_clean = np.array([scored.scores[s] for s in src])
        s_deg = np.array([scored.scores[d] for d in deg])
        rows = sensitivity(s_clean, s_deg, src, pid, fam, lvl, **known)
        overall = degradation_accuracy(s_clean, s_deg, src, **known)
    severity = {p.id: p.severity for _, _, p in stream.degraded}
    return {
        "clips": len(stream.sources),
        "probes": sorted({p.id for _, _, p in stream.degraded}),
        "overall": overall.as_json(),
        "rows": [{**r.as_json(), "severity": severity[r.probe]} for r in rows],
        "monotonicity": [m.as_json() for m in monotonicity(rows)],
    }


def blocks(
    stream: Stream, scored: Scored, clips: pa.Table, split: str, settings: ProbeSettings, seed: int
) -> dict[str, Any]:
    """The three blocks from one stream's answers (pure: `stats.probe_stats`, `stats.best_of_n`)."""
    import pyarrow.compute as pc

    from benchmark.stats.best_of_n import best_of_n, best_of_n_judge, bon_ceiling
    from benchmark.stats.probe_stats import ScoreShift, flip_rate

    judge = scored.judged is not None
    sens = sensitivity_block(stream, scored)
    transformed = {(r, p.id): clip for r, clip, p in stream.hacked}
    hacks = sorted({p.id: p for _, _, p in stream.hacked}.values(), key=lambda p: p.id)
    chosen = np.array([c for c, _ in stream.hack_pairs], dtype=object)
    rejected = np.array([r for _, r in stream.hack_pairs], dtype=object)
    before = np.array([scored.prefer(c, r) > 0.5 for c, r in stream.hack_pairs], dtype=bool)
    side = [(stream.labels.get(str(c), (None, None)), stream.labels.get(str(r), (None, None)))
            for c, r in stream.hack_pairs]  # fmt: skip
    pair_labels: dict[str, Any] = {
        "system": ([a[0] for a, _ in side], [b[0] for _, b in side]),
        "content": ([a[1] for a, _ in side], [b[1] for _, b in side]),
    }
    reference = (
        None if judge else np.array([scored.scores[c] for c in stream.real])  # type: ignore[index]
    )
    hack_rows = []
    for p in hacks:
        after_ids = [transformed[(r, p.id)] for r in rejected]
        after = np.array(
            [scored.prefer(c, t) > 0.5 for c, t in zip(chosen, after_ids, strict=True)],
            dtype=bool,
        )
        row = {"probe": p.id, "family": p.family, "severity": p.severity}
        row.update(flip_rate(before, after, chosen, rejected, **pair_labels).as_json())
        if judge or reference is None:
            shift = ScoreShift.judge(len(after_ids))
        else:
            assert scored.scores is not None
            shift = ScoreShift.of(
                np.array([scored.scores[r] for r in rejected]),
                np.array([scored.scores[t] for t in after_ids]),
                reference,
            )
        row["score_shift"] = shift.as_json()
        hack_rows.append(row)
    # the highest flip rate; on a tie the one surer of it (higher lower bound), then by name
    worst = min(
        (r for r in hack_rows if r.get("flip_rate") is not None),
        key=lambda r: (-r["flip_rate"], -(r.get("ci_low") or 0.0), r["probe"]),
        default=None,
    )
    hacking = {
        "pairs": len(stream.hack_pairs),
        "right_before": int(before.sum()),
        "rows": hack_rows,
        "worst": None
        if worst is None
        else {"probe": worst["probe"], "flip_rate": worst["flip_rate"]},
    }

    part = clips.filter(pc.equal(clips.column("split"), split))
    ids = [str(c) for c in part.column("clip_id").to_pylist()]
    mos = np.array(part.column("mos").to_pylist(), dtype=np.float64)
    content = np.array(
        ["" if c is None else str(c) for c in part.column("content_id").to_pylist()], dtype=object
    )
    keyed = np.array([stream.keys[c] + ":" + c for c in ids], dtype=object)  # unique, audio first
    has = content != ""
    ids_h, mos_h, content_h, key_h = (
        [c for c, h in zip(ids, has, strict=True) if h],
        mos[has],
        content[has],
        keyed[has],
    )
    std = np.array(
        [np.nan if v is None else float(v) for v in part.column("rating_std").to_pylist()]
    )[has]
    nrat = np.array([0 if v is None else int(v) for v in part.column("n_ratings").to_pylist()])[has]
    bon: dict[str, Any] = {"groups_without_content": int((~has).sum())}
    for label, n in (("all", None), (str(settings.bon_n), settings.bon_n)):
        if judge:
            result = best_of_n_judge(
                lambda i, j: scored.prefer(ids_h[i], ids_h[j]),
                mos_h,
                content_h,
                n=n,
                seed=seed,
                clip_key=key_h,
            )
        else:
            assert scored.scores is not None
            s = np.array([scored.scores[c] for c in ids_h])
            result = best_of_n(s, mos_h, content_h, n=n, seed=seed, clip_key=key_h)
        ceiling = bon_ceiling(mos_h, content_h, std, nrat, n=n, seed=seed, clip_key=key_h)
        bon[f"n_{label}"] = {**result.as_json(), "ceiling": ceiling.as_json()}
    return {"sensitivity": sens, "hacking": hacking, "best_of_n": bon}


def run_probes(
    submission: Submission,
    prepared: PreparedTask,
    *,
    results_root: str | Path,
    config: ScoringConfig | None = None,
    settings: ProbeSettings | None = None,
    split: str | None = None,
) -> dict[str, Any]:
    """Probe one submission on one prepared task and write `probes_path` (atomically); returns
    the record as written."""
    from benchmark.scoring.config import ScoringConfig

    config = config or ScoringConfig()
    settings = settings or ProbeSettings()
    spec = prepared.task.spec
    split = split or spec.eval_split
    seed = int(spec.seed)
    stream = build_stream(prepared, split, settings, seed)
    groups = bon_groups(prepared.clips, split)
    scored = score_stream(submission, prepared, stream, groups, config)
    record = _record(
        submission,
        spec.name,
        split,
        prepared.pair_sha256[split],
        seed,
        settings,
        stream,
        scored,
        {
            **blocks(stream, scored, prepared.clips, split, settings, seed),
            "stream_check": stream_check(submission, prepared, stream, scored, config),
        },
    )
    return _write(record, Path(results_root))


def _record(
    submission: Submission,
    task: str,
    split: str,
    pairs_sha256: str,
    seed: int,
    settings: ProbeSettings,
    stream: Stream,
    scored: Scored,
    found: dict[str, Any],
) -> dict[str, Any]:
    """A probe record: what was probed, with what and at what cost, then the blocks `found`."""
    from benchmark.data.probes import PROBES_VERSION
    from benchmark.results.schema import PROBES_SCHEMA_VERSION

    return {
        "probes_schema_version": PROBES_SCHEMA_VERSION,
        "submission": submission.spec.name,
        "task": task,
        "split": split,
        "kind": submission.spec.kind,
        "model_fingerprint": submission.fingerprint,
        "pair_file_sha256": pairs_sha256,
        "probes_version": PROBES_VERSION,
        "seed": seed,
        "settings": asdict(settings),
        "cost": {
            "plain_clips": len(stream.real),
            "probe_clips": len(stream.degraded) + len(stream.hacked),
            "stream_clips": stream.clips.num_rows,
            "judge_pairs": None if scored.judged is None else len(scored.judged),
            "relative_to_plain": round(stream.clips.num_rows / max(1, len(stream.real)), 2),
        },
        **found,
    }


def _write(record: dict[str, Any], results_root: Path) -> dict[str, Any]:
    """Validate (`ProbesResult`, strict JSON) and write `probes_path` atomically; the record as
    written."""
    from benchmark.atomic import atomic_write_text
    from benchmark.results.schema import ProbesResult

    result = ProbesResult.model_validate(_finite(record))
    path = probes_path(results_root, str(record["submission"]), str(record["task"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result.model_dump(mode="json"), indent=1, sort_keys=True, allow_nan=False)
    atomic_write_text(path, text + "\n")
    return json.loads(text)


def _finite(value: Any) -> Any:
    """`value` with every NaN or infinity as None: the record is strict JSON (a score shift of a
    model that gives every clip one score is undefined, and says why beside it)."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def format_probes(record: dict[str, Any]) -> str:
    """What the CLI prints after the accuracy table: the three blocks in a few lines each."""

    def pct(x: Any) -> str:
        return "–" if x is None else f"{100 * float(x):.1f}"

    def ci(row: dict[str, Any]) -> str:
        lo, hi = row.get("ci_low"), row.get("ci_high")
        return "" if lo is None or hi is None else f" [{pct(lo)}, {pct(hi)}]"

    sens, hack, bon = record["sensitivity"], record["hacking"], record["best_of_n"]
    o = sens["overall"]
    if "skipped" in hack:  # a plain folder: sensitivity only
        hack = {"pairs": 0, "right_before": 0, "rows": []}
    lines = [
        f"probes ({record['cost']['probe_clips']} probe clips on {sens['clips']} test clips and "
        f"{hack['pairs']} test pairs; {record['cost']['relative_to_plain']}x the plain clips)",
        f"  degradation accuracy (clean preferred): {pct(o.get('accuracy'))}{ci(o)}  "
        f"n {o.get('n')}",
    ]
    by_family: dict[str, list[str]] = {}
    for r in sens["rows"]:
        by_family.setdefault(r["family"], []).append(f"{r['severity']} {pct(r.get('accuracy'))}")
    for fam, cells in by_family.items():
        lines.append(f"    {fam:<12} " + ", ".join(cells))
    broken = [m for m in sens["monotonicity"] if not m.get("monotone", True)]
    if broken:
        lines.append("    not monotone in severity: " + ", ".join(str(m["family"]) for m in broken))
    if hack["rows"]:
        lines.append(
            f"  flip rate (rejected clip transformed; of {hack['right_before']} pairs right before):"
        )
    for r in hack["rows"]:
        shift = (r.get("score_shift") or {}).get("score_shift")
        extra = "" if shift is None else f"  score shift {float(shift):+.2f} sd"
        lines.append(f"    {r['probe']:<22} {pct(r.get('flip_rate'))}{ci(r)}{extra}")
    for key, res in sorted(bon.items()):
        if not key.startswith("n_"):
            continue
        ceil = (res.get("ceiling") or {}).get("gain")
        lines.append(
            f"  best of {key[2:]}: gain {res.get('gain')} [{res.get('ci_low')}, "
            f"{res.get('ci_high')}] over {res.get('groups')} content groups"
            + ("" if ceil is None else f"; ceiling {ceil}")
        )
    check = record.get("stream_check")
    if check is not None and not check["consistent"]:
        lines.append(
            f"  WARNING: the model scored the test clips differently among probes (max |diff| "
            f"{check['max_abs_diff']})"
        )
    return "\n".join(lines)


AUDIO_FILES = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".m4a", ".aiff", ".aif")
"""What `mosrm probe --audio DIR` reads of a folder (recursively, sorted)."""


def run_probes_on_audio(
    submission: Submission,
    folder: str | Path,
    *,
    results_root: str | Path,
    config: ScoringConfig | None = None,
    settings: ProbeSettings | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """`mosrm probe SUB --audio DIR`: degradation sensitivity on a plain folder of the user's own
    clips (no labels, so no flip rates and no best of N: those need pairs and MOS). Written to
    `<results>/<submission>/probes/audio-<name>.json`; the clips are sent with their degraded
    copies in one stream, as for a task."""
    import pyarrow as pa

    from benchmark.data.audio import load_audio
    from benchmark.data.probes import DEGRADATIONS, write_probe_clips
    from benchmark.hashing import sha256_file
    from benchmark.paths import home
    from benchmark.scoring.config import ScoringConfig

    config = config or ScoringConfig()
    settings = settings or ProbeSettings()
    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        raise MosrmError(f"--audio {folder}: no such folder")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_FILES)
    if not files:
        raise MosrmError(
            f"--audio {folder}: no audio files ({', '.join(AUDIO_FILES)}) in the folder"
        )
    ids = [p.relative_to(root).as_posix() for p in files]
    keys = {c: sha256_file(p) for c, p in zip(ids, files, strict=True)}
    listing = hashlib.sha256("\n".join(f"{c}\t{keys[c]}" for c in ids).encode()).hexdigest()
    sources = sorted(ids, key=lambda c: _rank(seed, "degrade", keys[c]))[: settings.clips]
    path_of = dict(zip(ids, files, strict=True))
    waves = {c: load_audio(path_of[c], 16000).astype(np.float64) for c in sources}
    written = write_probe_clips(
        [(keys[c], waves[c]) for c in sorted(sources, key=lambda c: keys[c])],
        DEGRADATIONS,
        home() / "probes" / "audio" / listing[:16],
        seed=seed,
    )
    by_probe = {p.id: p for p in DEGRADATIONS}
    by_key = {keys[c]: c for c in reversed(sources)}
    degraded = [(by_key[w.source_key], w.probe_clip_id, by_probe[w.probe_id]) for w in written]
    for w in written:
        keys[w.probe_clip_id] = sha256_file(w.path)
    table = pa.table(
        {
            "clip_id": pa.array([*ids, *(w.probe_clip_id for w in written)], pa.string()),
            "audio_path": pa.array([*map(str, files), *(str(w.path) for w in written)]),
            "duration": pa.array([None] * len(ids) + [w.seconds for w in written], pa.float64()),
        }
    )
    stream = Stream(table, keys, sources, degraded, [], [], ids)
    scored = score_stream(submission, _AudioFolder(root), stream, {}, config)
    name = "audio-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", root.name)[:48]
    sens = sensitivity_block(stream, scored)
    no_labels = {"skipped": "a folder of clips has no pairs or MOS: only degradation sensitivity"}
    found = {
        "sensitivity": sens,
        "hacking": no_labels,
        "best_of_n": no_labels,
        "stream_check": None,
    }
    record = _record(submission, name, "folder", listing, seed, settings, stream, scored, found)
    return _write(record, Path(results_root))


@dataclass
class _AudioFolder:
    """What `score_stream` reads of a prepared task, for a plain folder (absolute paths)."""

    audio_base: Path
