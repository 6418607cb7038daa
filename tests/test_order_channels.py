"""Nothing to learn from the order (issue 20, point 3).

A submission sees every clip it is sent, in order, and a judge sees which clip of a pair comes
first and how many calls it has had. Both must be functions of the audio alone
(`scoring.send_order`, `scoring.presented_first`), else a model that never looks at the audio
learns labels from them. On the demo, two such cheats of the issue:

- #2, a scalar model that maps each clip's arrival position inside its run of equal lengths to
  a system's mean training MOS (learnt on the training split, through the harness, as a cheater
  with the public training labels would), with its arrival count as a tie-break;
- #3, a judge that answers 1 on odd calls and 0 on even ones;

score no better than the better of the two length-only shortcuts (longer wins, shorter wins; ties
half), overall and per relation, and the diagnostics do not show #3 as a perfect judge. "No
better" is "not significantly better": the cheat's clip-clustered 95% interval reaches down to
the shortcut. A cheat without a channel is a coin per clip or pair, whose point estimate lands
above a shortcut as often as not where that shortcut is near 50% (same_content here), and where
it lands depends on the audio bytes (espeak-ng and ffmpeg versions). Each test also puts the
harness's old order back (`_old_order`) and checks that the same assertion then fails, so the
test has teeth.

The demo is synthesised and prepared once for the module (~15 s on 2 cores); the rest takes a
few seconds.
"""

from __future__ import annotations

import collections
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import torch

import benchmark.scoring.loop as scoring
from benchmark.data.batch import Batch
from benchmark.data.tasks import Task, load_task_file
from benchmark.pairs.prepare import PreparedTask, prepare
from benchmark.scoring.config import ScoringConfig
from benchmark.scoring.loop import judge_pairs, score_clips
from benchmark.scoring.models import Submission, SubmissionSpec
from benchmark.scoring.predictions import predict, with_scores
from benchmark.stats.diagnostics import diagnose
from benchmark.stats.metrics import aggregate
from tests.hostile import old_order

REPO = Path(__file__).resolve().parents[1]
CONFIG = ScoringConfig(progress=False)
RELATIONS = ("same_content", "same_system", "cross")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Task, PreparedTask]]:
    """The demo task, synthesised and prepared once for the module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MOSRM_HOME", str(tmp_path_factory.mktemp("order-home")))
        task = load_task_file(REPO / "benchmark" / "shipped" / "tasks" / "demo.yaml")
        yield task, prepare(task, reuse=True)


# ---------------------------------------------------------------- models


class PositionRecorder:
    """Records (clip id, position inside the current run of equal lengths) as clips arrive."""

    sample_rate = 16000

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []
        self.last = -1
        self.pos = 0

    def score(self, batch: Batch) -> torch.Tensor:
        for cid, n in zip(batch.clip_ids, batch.lengths.tolist(), strict=True):
            self.pos = self.pos + 1 if n == self.last else 0
            self.last = n
            self.seen.append((cid, self.pos))
        return torch.zeros(len(batch), dtype=torch.float64)


class PositionCheat:
    """Cheat #2: never looks at the samples, nor at clip ids; the score of a clip is the mean
    training MOS of the system found at its position inside the current run of equal lengths,
    minus a tiny arrival count (so that it never ties)."""

    sample_rate = 16000

    def __init__(self, table: dict[int, float], default: float) -> None:
        self.table = table
        self.default = default
        self.last = -1
        self.pos = 0
        self.sent = 0

    def score(self, batch: Batch) -> torch.Tensor:
        out = []
        for n in batch.lengths.tolist():
            self.pos = self.pos + 1 if n == self.last else 0
            self.last = n
            self.sent += 1
            out.append(self.table.get(self.pos, self.default) - 1e-6 * self.sent)
        return torch.tensor(out, dtype=torch.float64)


class OddEvenJudge:
    """Cheat #3: 1 on odd calls, 0 on even ones."""

    sample_rate = 16000

    def __init__(self) -> None:
        self.calls = 0

    def prefer(self, a: Batch, b: Batch) -> torch.Tensor:
        self.calls += 1
        return torch.full((len(a),), 1.0 if self.calls % 2 else 0.0, dtype=torch.float64)


def _audio(batch: Batch) -> tuple[str, ...]:
    """What a model can tell the rows of a batch apart by: their samples (every 16th, with the
    length, hashed: enough to tell the demo's clips apart, and cheap)."""
    rows = zip(batch.waveforms, batch.lengths.tolist(), strict=True)
    return tuple(
        hashlib.sha256(w[:n:16].numpy().tobytes() + n.to_bytes(8, "little")).hexdigest()[:16]
        for w, n in rows
    )


class AudioRecorder:
    """Records every call as the audio of its batches: all a sandboxed model receives."""

    sample_rate = 16000

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[str, ...], ...]] = []

    def score(self, batch: Batch) -> torch.Tensor:
        self.calls.append((_audio(batch),))
        return torch.zeros(len(batch), dtype=torch.float64)

    def prefer(self, a: Batch, b: Batch) -> torch.Tensor:
        self.calls.append((_audio(a), _audio(b)))
        rms_a = (a.waveforms.double() ** 2).sum(1) / a.lengths
        rms_b = (b.waveforms.double() ** 2).sum(1) / b.lengths
        # a position-biased but otherwise honest judge: both raw answers must land right
        return 0.2 + 0.7 * (rms_a > rms_b).double()


# ---------------------------------------------------------------- helpers


def _submission(name: str, kind: str, model: Any, tmp_path: Path) -> Submission:
    spec = SubmissionSpec(name=name, display_name=name, kind=kind, entry="model.py:build")
    return Submission(spec, tmp_path, model, f"{name}-fingerprint")


def _cells(pred: pa.Table, bins: int) -> dict[str, dict[str, Any]]:
    m = aggregate(pred, bins=bins)
    return {"overall": m["overall"], **m["by_relation"]}


def _length_shortcuts(prepared: PreparedTask) -> dict[str, float]:
    """Per cell, the better tie-half accuracy of "longer wins" and "shorter wins"."""
    pairs = prepared.pairs("test")
    bins = int(prepared.pair_meta["test"]["bins"])
    frames = {
        r["clip_id"]: round(r["duration"] * 16000)
        for r in prepared.clips.select(["clip_id", "duration"]).to_pylist()
    }
    la = np.array([frames[c] for c in pairs.column("clip_a").to_pylist()], dtype=np.float64)
    lb = np.array([frames[c] for c in pairs.column("clip_b").to_pylist()], dtype=np.float64)
    longer = _cells(with_scores(pairs, la, lb), bins)
    shorter = _cells(with_scores(pairs, -la, -lb), bins)
    return {k: max(longer[k]["tie_half_accuracy"], shorter[k]["tie_half_accuracy"]) for k in longer}


def _beats(cells: dict[str, dict[str, Any]], best: dict[str, float]) -> list[str]:
    """The cells where a model is significantly better than the better length shortcut on these
    systems (the systems-fixed interval: the narrower one, so "never beats" is the stronger
    claim, and the question is what the model learnt on these pairs, not on new systems)."""
    assert set(cells) == {"overall", *RELATIONS}
    return [k for k, c in cells.items() if c["ci_low_systems_fixed"] > best[k]]


def _position_cheat(prepared: PreparedTask, tmp_path: Path) -> PositionCheat:
    """Cheat #2, taught on the training split: the harness sends it the training clips, it
    notes each one's position inside its run of equal lengths, and the public training labels
    say which system sits at each position most often, and that system's mean MOS."""
    train = prepared.pairs("train")
    used = set(train.column("clip_a").to_pylist()) | set(train.column("clip_b").to_pylist())
    rows = [r for r in prepared.clips.to_pylist() if r["clip_id"] in used]
    recorder = PositionRecorder()
    score_clips(
        recorder,
        prepared.clips.filter(pa.array([r["clip_id"] in used for r in prepared.clips.to_pylist()])),
        prepared.audio_base,
        fingerprint="position-recorder",
        config=CONFIG,
        cache_path=tmp_path / "recorder.sqlite",
    )
    system = {r["clip_id"]: r["system_id"] for r in rows}
    by_system = collections.defaultdict(list)
    for r in rows:
        by_system[r["system_id"]].append(r["mos"])
    mean = {s: float(np.mean(v)) for s, v in by_system.items()}
    at = collections.defaultdict(list)
    for cid, pos in recorder.seen:
        at[pos].append(system[cid])
    table = {pos: mean[collections.Counter(s).most_common(1)[0][0]] for pos, s in at.items()}
    return PositionCheat(table, float(np.mean([r["mos"] for r in rows])))


def _old_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness before issue 20 (`tests.hostile.old_order`)."""
    old_order(monkeypatch)


# ---------------------------------------------------------------- the cheats on the demo


def test_position_cheat_learns_nothing_from_the_order(demo, tmp_path, monkeypatch):
    task, prepared = demo
    best = _length_shortcuts(prepared)
    bins = int(prepared.pair_meta["test"]["bins"])
    pairs = prepared.pairs("test")

    def run(where: str) -> dict[str, dict[str, Any]]:
        cheat = _position_cheat(prepared, tmp_path / where)
        sub = _submission("cheat-position", "scalar", cheat, tmp_path)
        pred = predict(
            sub, pairs, prepared.clips, prepared.audio_base, config=CONFIG,
            cache_path=tmp_path / where / "cache.sqlite",
        )  # fmt: skip
        return _cells(pred, bins)

    cells = run("now")
    assert _beats(cells, best) == [], {k: (c["accuracy"], c["ci_low"]) for k, c in cells.items()}
    # the same cheat against the old order (by length, then clip-table order) beat them
    with monkeypatch.context() as m:
        _old_order(m)
        assert "overall" in _beats(run("old"), best)


def test_odd_even_judge_learns_nothing_and_is_not_a_perfect_judge(demo, tmp_path, monkeypatch):
    task, prepared = demo
    best = _length_shortcuts(prepared)
    bins = int(prepared.pair_meta["test"]["bins"])
    pairs = prepared.pairs("test")

    def run(where: str) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
        sub = _submission("cheat-odd-even", "pairwise", OddEvenJudge(), tmp_path)
        cache = tmp_path / where / "cache.sqlite"
        cache.parent.mkdir()
        pred = predict(
            sub, pairs, prepared.clips, prepared.audio_base, config=CONFIG, cache_path=cache
        )
        block, _ = diagnose(
            sub, pred, prepared.clips, prepared.audio_base, task=task.spec.name, split="test",
            relations=list(task.spec.relations), seed=task.spec.seed,
            min_delta=task.spec.min_delta, config=CONFIG, cache_path=cache,
        )  # fmt: skip
        return _cells(pred, bins), block

    cells, block = run("now")
    assert _beats(cells, best) == [], {k: (c["accuracy"], c["ci_low"]) for k, c in cells.items()}
    # Its verdict on a pair is now a hash of the pair's audio: consistent in both orders and
    # unbiased (it prefers the clip shown first in call 1, whichever order it is asked in), but
    # no order of the clips agrees with it: its preferences cycle (a random tournament's ~25%).
    assert block["cycle_rate_ci"][0] > 0.1, block
    # against the old presentation it looked perfect: consistent, unbiased, acyclic
    with monkeypatch.context() as m:
        _old_order(m)
        old_cells, old_block = run("old")
    assert _beats(old_cells, best) != []
    assert old_block["position_consistency"] == 1.0 and old_block["first_position_bias"] == 0.0
    assert old_block["cycle_rate"] == 0.0


# ---------------------------------------------------------------- the order, directly


def _renamed(clips: pa.Table, seed: int) -> tuple[pa.Table, dict[str, str]]:
    """`clips` with its rows shuffled and every clip id renamed, in the reverse of its order."""
    ids = clips.column("clip_id").to_pylist()
    rename = {c: f"r{len(ids) - i:05d}" for i, c in enumerate(sorted(ids))}
    order = np.random.default_rng(seed).permutation(len(ids))
    shuffled = clips.take(pa.array(order))
    col = pa.array([rename[c] for c in shuffled.column("clip_id").to_pylist()], pa.string())
    return shuffled.set_column(shuffled.column_names.index("clip_id"), "clip_id", col), rename


def _test_clips(prepared: PreparedTask) -> pa.Table:
    return prepared.clips.filter(
        pa.array([s == "test" for s in prepared.clips.column("split").to_pylist()])
    )


@pytest.mark.parametrize("batch_size", [16, 5])
def test_scalar_send_order_depends_on_the_audio_alone(demo, tmp_path, batch_size):
    _, prepared = demo
    clips = _test_clips(prepared)
    config = ScoringConfig(progress=False, max_batch_size=batch_size)
    seen = []
    for i, table in enumerate(
        [clips, clips.take(pa.array(np.arange(clips.num_rows)[::-1])), _renamed(clips, 1)[0]]
    ):
        model = AudioRecorder()
        score_clips(
            model, table, prepared.audio_base, fingerprint="recorder", config=config,
            cache_path=tmp_path / f"{i}.sqlite",
        )  # fmt: skip
        seen.append(model.calls)
    assert len(seen[0]) >= clips.num_rows // batch_size
    assert seen[1] == seen[0]  # rows reversed: the same batches in the same order
    assert seen[2] == seen[0]  # rows shuffled, ids renamed in reverse order: the same


def test_judge_presentation_depends_on_the_audio_alone(demo, tmp_path):
    _, prepared = demo
    pairs = prepared.pairs("test").slice(0, 1000)  # any subset will do; each run costs ~3 s
    a = pairs.column("clip_a").to_pylist()
    b = pairs.column("clip_b").to_pylist()
    clips = _test_clips(prepared)
    renamed, rename = _renamed(clips, 2)
    perm = np.random.default_rng(3).permutation(len(a))
    runs = {
        "as is": (a, b, clips),
        "a and b swapped": (b, a, clips),
        "rows shuffled, ids renamed": (
            [rename[a[i]] for i in perm], [rename[b[i]] for i in perm], renamed
        ),
    }  # fmt: skip
    calls, judged = {}, {}
    for i, (name, (xs, ys, table)) in enumerate(runs.items()):
        model = AudioRecorder()
        judged[name] = judge_pairs(
            model, xs, ys, table, prepared.audio_base, fingerprint="judge", config=CONFIG,
            cache_path=tmp_path / f"{i}.sqlite",
        )  # fmt: skip
        calls[name] = model.calls
    first = calls["as is"]
    assert calls["a and b swapped"] == first and calls["rows shuffled, ids renamed"] == first
    # each batch is asked twice, the second time with its two sides swapped
    assert all(c[0] == d[1] and c[1] == d[0] for c, d in zip(first[::2], first[1::2], strict=True))
    # a and b swapped: the same answers, read from the other side
    one, two = judged["as is"], judged["a and b swapped"]
    assert np.array_equal(two.p, 1.0 - one.p)
    assert np.array_equal(two.a_first, one.b_first) and np.array_equal(two.b_first, one.a_first)
    three = judged["rows shuffled, ids renamed"]
    assert np.array_equal(three.p, one.p[perm]) and np.array_equal(three.a_first, one.a_first[perm])


class Loudness:
    """Mean square per clip, as `AudioRecorder.prefer` computes it."""

    sample_rate = 16000

    def score(self, batch: Batch) -> torch.Tensor:
        return (batch.waveforms.double() ** 2).sum(1) / batch.lengths


def test_first_presented_is_hash_chosen_and_raw_answers_land_right(demo, tmp_path):
    """Presentation is symmetric in (a, b), call 1 of a batch mixes the orientations (the
    smaller clip key comes first in about half of the units, not all), and each raw answer is
    stored as the orientation it was asked in (p_a_first is the judge's prefer(a, b), whichever
    clip it was shown first), in a fresh run and from the cache alike."""
    _, prepared = demo
    pairs = prepared.pairs("test")
    a = pairs.column("clip_a").to_pylist()
    b = pairs.column("clip_b").to_pylist()
    clips = _test_clips(prepared)
    with scoring.open_cache(tmp_path / "hashes.sqlite") as cache:
        info = scoring._clip_info(clips, prepared.audio_base, cache)
    index = {cid: i for i, cid in enumerate(info.ids)}
    lo_first = []
    a_is_lo = [info.keys[index[x]] <= info.keys[index[y]] for x, y in zip(a, b, strict=True)]
    for x, y in zip(a, b, strict=True):
        ix, iy = index[x], index[y]
        assert info.keys[ix][1] != info.keys[iy][1]  # the demo has no identical audio in a pair
        assert scoring.presented_first(info, ix, iy) != scoring.presented_first(info, iy, ix)
        lo, hi = sorted((ix, iy), key=lambda i: info.keys[i])
        lo_first.append(scoring.presented_first(info, lo, hi))
    assert 0.4 < np.mean(lo_first) < 0.6

    loud = score_clips(
        Loudness(), clips, prepared.audio_base, fingerprint="loudness", config=CONFIG,
        cache_path=tmp_path / "loudness.sqlite",
    )  # fmt: skip
    la = torch.tensor([loud[c] for c in a], dtype=torch.float64)
    lb = torch.tensor([loud[c] for c in b], dtype=torch.float64)
    want_a_first = (0.2 + 0.7 * (la > lb).double()).numpy()
    want_b_first = (0.2 + 0.7 * (lb > la).double()).numpy()
    cache_path = tmp_path / "judge.sqlite"
    for _ in ("fresh", "cached"):
        judged = judge_pairs(
            AudioRecorder(), a, b, clips, prepared.audio_base, fingerprint="judge",
            config=CONFIG, cache_path=cache_path,
        )  # fmt: skip
        assert np.array_equal(judged.a_first, want_a_first)
        assert np.array_equal(judged.b_first, want_b_first)
        # P(a better) is THE order average of the canonical (lo, hi) pair's answers
        want_p = [
            scoring.order_average(f, r) if a_lo else 1.0 - scoring.order_average(r, f)
            for f, r, a_lo in zip(want_a_first, want_b_first, a_is_lo, strict=True)
        ]
        assert judged.p.tobytes() == np.array(want_p, dtype=np.float64).tobytes()
