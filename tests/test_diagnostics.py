"""Judge diagnostics on constructed judges: always "A", always "B", symmetric, position-biased and
one with a planted cycle, each checked against a brute-force recount over the stored predictions
and triplets; the triplet sample against the pair builder's own validity; scalar models by
construction; determinism, kill/resume, the old cache schema, the board and the terminal."""

from __future__ import annotations

import itertools
import json
import shutil
import sqlite3
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from benchmark.data.tables import CLIP_SCHEMA, from_rows
from benchmark.data.tasks import load_task_file
from benchmark.errors import MosrmError, SubmissionError
from benchmark.pairs import triplets as triplets_mod
from benchmark.pairs.build import build_pairs
from benchmark.pairs.prepare import PreparedTask, prepare
from benchmark.pairs.triplets import sample_triplets, triplets_sha256
from benchmark.pipeline import evaluate
from benchmark.results.report import format_result
from benchmark.scoring.cache import ScoreCache
from benchmark.scoring.config import ScoringConfig
from benchmark.scoring.models import Batch, Submission, SubmissionSpec
from benchmark.stats.metrics import PredictionError, aggregate, load_predictions
from tests.toy_task import write_toy_repo

BS4 = ScoringConfig(max_batch_size=4, progress=False)
RELATIONS = ["cross", "same_content", "same_system"]

# ---------------------------------------------------------------- constructed judges


def _rms(batch: Batch) -> torch.Tensor:
    return torch.stack(
        [batch.waveforms[i, :n].double().pow(2).mean().sqrt() for i, n in enumerate(batch.lengths)]
    )


class Recording:
    """Counts calls and records every ordered pair it is asked about."""

    sample_rate = 16000

    def __init__(self) -> None:
        self.calls = 0
        self.asked: list[tuple[str, str]] = []

    def prefer(self, a: Batch, b: Batch) -> torch.Tensor:
        self.calls += 1
        self.asked += list(zip(a.clip_ids, b.clip_ids, strict=True))
        return self.answer(a, b)

    def answer(self, a: Batch, b: Batch) -> torch.Tensor:
        raise NotImplementedError


class AlwaysA(Recording):
    def answer(self, a: Batch, b: Batch) -> torch.Tensor:
        return torch.ones(len(a))


class AlwaysB(Recording):
    def answer(self, a: Batch, b: Batch) -> torch.Tensor:
        return torch.zeros(len(a))


class Loud(Recording):
    """Louder wins, symmetric up to float noise; `bias` added for the first-presented clip."""

    def __init__(self, bias: float = 0.0) -> None:
        super().__init__()
        self.bias = bias

    def answer(self, a: Batch, b: Batch) -> torch.Tensor:
        return 0.3 + 0.4 * torch.sigmoid(40 * (_rms(a) - _rms(b))) + self.bias


def rank(clip_id: str) -> int:
    return zlib.crc32(clip_id.encode()) % 3


class Cyclic(Recording):
    """Rock-paper-scissors on rank(clip) = crc32(id) mod 3: r beats r - 1 (mod 3), equal ranks
    tie. Any three clips of three different ranks form a cycle, whatever their MOS."""

    def answer(self, a: Batch, b: Batch) -> torch.Tensor:
        out = [
            1.0 if (rank(x) - rank(y)) % 3 == 1 else 0.0 if (rank(y) - rank(x)) % 3 == 1 else 0.5
            for x, y in zip(a.clip_ids, b.clip_ids, strict=True)
        ]
        return torch.tensor(out, dtype=torch.float64)


class CrashAfter(Cyclic):
    def __init__(self, calls: int) -> None:
        super().__init__()
        self.limit = calls

    def answer(self, a: Batch, b: Batch) -> torch.Tensor:
        if self.calls > self.limit:
            raise RuntimeError("killed")
        return super().answer(a, b)


class Counting:
    """A scalar model (RMS) that counts its calls."""

    sample_rate = 16000

    def __init__(self) -> None:
        self.calls = 0

    def score(self, batch: Batch) -> torch.Tensor:
        self.calls += 1
        return _rms(batch)


def _submission(model: object, kind: str = "pairwise", name: str = "judge") -> Submission:
    spec = SubmissionSpec(name=name, display_name=name, kind=kind, entry="model.py:build")
    return Submission(spec=spec, folder=Path("."), model=model, fingerprint=f"fp-{name}")


@pytest.fixture
def toy(tmp_path: Path) -> tuple[Path, PreparedTask]:
    repo = write_toy_repo(tmp_path)
    return tmp_path, prepare(load_task_file(repo / "tasks" / "toy.yaml"))


def _run(prepared: PreparedTask, model: object, root: Path, **kw: object) -> dict:
    return evaluate(_submission(model), prepared, results_root=root, config=BS4, **kw)


def _files(root: Path, name: str = "judge") -> tuple[Path, Path, Path]:
    folder = root / name
    return folder / "toy.json", folder / "toy.predictions.parquet", folder / "toy.triplets.parquet"


# ---------------------------------------------------------------- brute force


def _brute_position(pred: pa.Table) -> tuple[int, float]:
    """(consistent pairs, mean bias) by the README's words, one pair at a time."""
    consistent, total = 0, 0.0
    rows = pred.to_pylist()
    for r in rows:
        x, y = r["p_a_first"], r["p_b_first"]
        first = "a" if x > 0.5 else "b" if x < 0.5 else "tie"
        second = "b" if y > 0.5 else "a" if y < 0.5 else "tie"
        consistent += first == second
        total += round(x + y - 1.0, 9)
    return consistent, total / len(rows)


def _brute_old_rule(pred: pa.Table) -> int:
    """Correct pairs under the rule the harness always had: P = (fwd + 1 - rev) / 2."""
    right = 0
    for r in pred.to_pylist():
        p = (r["p_a_first"] + 1.0 - r["p_b_first"]) / 2.0
        right += (p > 0.5) if r["chosen"] == "a" else (p < 0.5)
    return right


# ---------------------------------------------------------------- position diagnostics


def test_always_a_judge(toy):
    tmp, prepared = toy
    judge = AlwaysA()
    result = _run(prepared, judge, tmp / "r")
    d = result["diagnostics"]
    assert d["position_consistency"] == 0.0 and d["first_position_bias"] == 1.0
    assert d["n_consistent"] == 0 and d["n_pairs"] == 130 and not d["by_construction"]
    # every pair says +1: a finite interval (Agresti & Min), never the point [1, 1]
    low, high = d["first_position_bias_ci"]
    assert high == 1.0 and 0.9 < low < 1.0 and d["first_position_bias_p"] < 1e-6
    _, pred_path, _ = _files(tmp / "r")
    pred = pq.read_table(pred_path)
    assert pred.column("p_a_first").to_pylist() == [1.0] * 130
    assert pred.column("p_b_first").to_pylist() == [1.0] * 130
    # accuracy is today's rule: P = (1 + 1 - 1) / 2 = 0.5 everywhere, a tie, so strict 0
    overall = result["metrics"]["overall"]
    assert overall["correct"] == _brute_old_rule(pred) == 0 and overall["tie_rate"] == 1.0
    # every cycle decision is a tie: no cycle can form
    assert d["n_cycles"] == 0 and d["n_triplets_with_ties"] == d["n_triplets"] > 0


def test_always_b_judge(toy):
    tmp, prepared = toy
    d = _run(prepared, AlwaysB(), tmp / "r")["diagnostics"]
    assert d["position_consistency"] == 0.0 and d["first_position_bias"] == -1.0


def test_symmetric_judge_is_consistent_and_unbiased(toy):
    tmp, prepared = toy
    result = _run(prepared, Loud(), tmp / "r")
    d = result["diagnostics"]
    assert d["position_consistency"] == 1.0 and d["first_position_bias"] == 0.0
    assert d["first_position_bias_p"] == 1.0  # float noise is not bias
    assert d["n_cycles"] == 0  # loudness is a scalar in disguise: it cannot cycle


def test_position_bias_is_reported_not_scored(toy):
    """A judge leaning +0.2 towards the first clip: same accuracy bit for bit, bias 0.4."""
    tmp, prepared = toy
    fair = _run(prepared, Loud(), tmp / "fair")
    biased = evaluate(
        _submission(Loud(0.2), name="biased"), prepared, results_root=tmp / "b", config=BS4
    )
    assert biased["metrics"] == fair["metrics"]
    d = biased["diagnostics"]
    pred = pq.read_table(_files(tmp / "b", "biased")[1])
    consistent, bias = _brute_position(pred)
    assert d["n_consistent"] == consistent and d["first_position_bias"] == round(bias, 6)
    assert d["first_position_bias"] == pytest.approx(0.4, abs=1e-6)
    assert d["first_position_bias_ci"][0] > 0.3 and d["first_position_bias_p"] < 1e-3
    assert biased["metrics"]["overall"]["correct"] == _brute_old_rule(pred)
    lo, hi = d["position_consistency_ci"]
    assert lo <= d["position_consistency"] <= hi


# ---------------------------------------------------------------- cycles


def test_planted_cycle_matches_a_brute_force_recount(toy):
    tmp, prepared = toy
    judge = Cyclic()
    result = _run(prepared, judge, tmp / "r")
    d = result["diagnostics"]
    triplets = pq.read_table(_files(tmp / "r")[2])
    assert triplets.num_rows == d["n_triplets"] > 0
    cycles = 0
    for t in triplets.to_pylist():
        ranks = {rank(t["clip_x"]), rank(t["clip_y"]), rank(t["clip_z"])}
        planted = len(ranks) == 3
        cycles += planted
        assert t["cycle"] == planted
        assert t["mos_x"] > t["mos_y"] > t["mos_z"]
    assert 0 < cycles < triplets.num_rows
    assert d["n_cycles"] == cycles and d["cycle_rate"] == round(cycles / triplets.num_rows, 6)
    lo, hi = d["cycle_rate_ci"]
    assert lo < d["cycle_rate"] < hi
    # the triplets' pairs outside the pair table were judged once, through the same cache
    asked = judge.asked
    assert len(asked) == len(set(asked))  # no ordered pair asked twice
    unordered = {frozenset(p) for p in asked}
    assert len(asked) == 2 * len(unordered)  # every pair in both orders
    pred = pq.read_table(_files(tmp / "r")[1])
    table_pairs = {
        frozenset(p)
        for p in zip(
            pred.column("clip_a").to_pylist(), pred.column("clip_b").to_pylist(), strict=True
        )
    }
    assert d["triplet_pairs_judged"] == len(unordered - table_pairs) > 0


def test_cycles_use_the_order_averaged_decision():
    from benchmark.stats.diagnostics import cycle_flags

    p_xy = np.array([0.9, 0.1, 0.9, 0.5, 0.9, 0.6])
    p_yz = np.array([0.9, 0.1, 0.9, 0.9, 0.9, 0.6])
    p_xz = np.array([0.1, 0.9, 0.9, 0.1, 0.5, 0.4])
    cycle, ties = cycle_flags(p_xy, p_yz, p_xz)
    assert cycle.tolist() == [True, True, False, False, False, True]
    assert ties.tolist() == [False, False, False, True, True, False]


def test_scalar_model_is_zero_by_construction_without_extra_calls(toy, monkeypatch):
    tmp, prepared = toy

    def no(*args: object, **kwargs: object) -> None:
        raise AssertionError("no triplets for a scalar model")

    monkeypatch.setattr(triplets_mod, "sample_triplets", no)
    model = Counting()
    result = evaluate(
        _submission(model, kind="scalar", name="rms"), prepared, results_root=tmp / "r", config=BS4
    )
    d = result["diagnostics"]
    assert d["by_construction"] is True and d["cycle_rate"] == 0.0
    assert d["position_consistency"] == 1.0 and d["first_position_bias"] == 0.0
    assert d["n_triplets"] is None and d["triplets"] is None
    assert model.calls == 6  # the 24 clips of the pair table, in batches of 4, nothing more
    folder = tmp / "r" / "rms"
    assert not (folder / "toy.triplets.parquet").exists()
    assert "predictions" in {p.name.split(".")[1] for p in folder.iterdir()}
    assert "judge diagnostics" not in format_result(result)
    pred = pq.read_table(folder / "toy.predictions.parquet")
    assert "p_a_first" not in pred.column_names


# ---------------------------------------------------------------- determinism and resume


def test_results_are_byte_identical_and_resume_after_a_kill(toy, tmp_path, monkeypatch):
    tmp, prepared = toy
    clean = Cyclic()
    _run(prepared, clean, tmp / "clean")
    again = Cyclic()
    _run(prepared, again, tmp / "again")
    assert again.calls == 0  # everything from the cache, triplets included
    for x, y in zip(_files(tmp / "clean"), _files(tmp / "again"), strict=True):
        assert x.read_bytes() == y.read_bytes()
    # a fresh cache: killed during the triplets (pair table: 130 pairs, 33 batches, 66 calls)
    monkeypatch.setenv("MOSRM_HOME", str(tmp_path / "other-home"))
    with pytest.raises(SubmissionError, match="killed"):
        _run(prepared, CrashAfter(80), tmp / "killed")
    resumed = Cyclic()
    _run(prepared, resumed, tmp / "resumed")
    assert resumed.calls == clean.calls - 80  # 40 batches were committed before the kill
    for x, y in zip(_files(tmp / "clean"), _files(tmp / "resumed"), strict=True):
        assert x.read_bytes() == y.read_bytes()


# ---------------------------------------------------------------- the triplet sample


def _clips(null_content: bool = True) -> pa.Table:
    rng = np.random.default_rng(11)
    rows = []
    for subset in ("s1", "s2"):
        for s in range(4):
            for c in range(5):
                content = None if (null_content and c == 4 and s % 2) else f"c{c}"
                rows.append(
                    {
                        "clip_id": f"{subset}-{s}-{c}",
                        "corpus": "t",
                        "split": "test",
                        "subset": subset,
                        "audio_path": f"{subset}/{s}/{c}.wav",
                        "mos": float(np.round(rng.uniform(1, 5), 1)),  # ties happen
                        "system_id": f"sys{s}",
                        "content_id": content,
                    }
                )
    return from_rows(rows, CLIP_SCHEMA)


def _pools(clips: pa.Table, min_delta: float) -> dict[str, set[frozenset[str]]]:
    built = build_pairs(
        clips,
        task="t",
        relations=RELATIONS,
        counts={"test": dict.fromkeys(RELATIONS, "all")},
        seed=0,
        min_delta=min_delta,
    )
    table, _ = built["test"]
    pools: dict[str, set[frozenset[str]]] = {r: set() for r in RELATIONS}
    for r in table.to_pylist():
        pools[r["relation"]].add(frozenset((r["clip_a"], r["clip_b"])))
    return pools


@pytest.mark.parametrize("min_delta", [0.0, 0.3])
def test_triplets_are_valid_under_the_pair_builder_and_complete(min_delta):
    clips = _clips()
    pools = _pools(clips, min_delta)
    mos = dict(
        zip(clips.column("clip_id").to_pylist(), clips.column("mos").to_pylist(), strict=True)
    )
    brute: dict[str, set[frozenset[str]]] = {}
    for rel, pool in pools.items():
        ids = sorted({c for p in pool for c in p})
        brute[rel] = {
            frozenset(t)
            for t in itertools.combinations(ids, 3)
            if all(frozenset(e) in pool for e in itertools.combinations(t, 2))
        }
    kw = {"task": "t", "split": "test", "relations": RELATIONS, "seed": 5, "min_delta": min_delta}
    table, record = sample_triplets(clips, n=10**6, **kw)  # more than exist: every one
    got: dict[str, set[frozenset[str]]] = {r: set() for r in RELATIONS}
    for t in table.to_pylist():
        x, y, z = t["clip_x"], t["clip_y"], t["clip_z"]
        assert mos[x] - mos[y] > min_delta and mos[y] - mos[z] > min_delta
        assert (t["mos_x"], t["mos_y"], t["mos_z"]) == (mos[x], mos[y], mos[z])
        got[t["relation"]].add(frozenset((x, y, z)))
    assert got == brute and all(brute.values())
    assert record["n"] == sum(len(b) for b in brute.values()) and "shortfall" in record
    # a small sample: a subset of the pool, deterministic, seed-sensitive
    small, rec = sample_triplets(clips, n=30, **kw)
    assert small.num_rows == 30 and rec["sha256"] == triplets_sha256(small)
    assert all(
        frozenset((t["clip_x"], t["clip_y"], t["clip_z"])) in brute[t["relation"]]
        for t in small.to_pylist()
    )
    again, rec2 = sample_triplets(clips, n=30, **kw)
    assert again.equals(small) and rec2 == rec
    other, rec3 = sample_triplets(clips, n=30, **(kw | {"seed": 6}))
    assert rec3["sha256"] != rec["sha256"]
    shuffled = clips.take(np.random.default_rng(0).permutation(clips.num_rows))
    assert sample_triplets(shuffled, n=30, **kw)[1]["sha256"] == rec["sha256"]


def test_rejection_sampling_is_valid_distinct_and_deterministic(monkeypatch):
    clips = _clips(null_content=False)
    pools = _pools(clips, 0.0)
    monkeypatch.setattr(triplets_mod, "ENUMERATE_BELOW", 10)
    kw = {"task": "t", "split": "test", "relations": RELATIONS, "seed": 5}
    table, record = sample_triplets(clips, n=60, **kw)
    methods = {rel: r["method"] for rel, r in record["relations"].items()}
    assert methods["cross"] == methods["same_system"] == "rejection"
    rows = table.to_pylist()
    assert len({(t["clip_x"], t["clip_y"], t["clip_z"]) for t in rows}) == 60
    for t in rows:
        for e in itertools.combinations((t["clip_x"], t["clip_y"], t["clip_z"]), 2):
            assert frozenset(e) in pools[t["relation"]]
    assert sample_triplets(clips, n=60, **kw)[0].equals(table)
    # a pool smaller than 4 x the share is enumerated, exactly
    tiny, rec = sample_triplets(clips, n=3000, **kw)
    assert {r["method"] for r in rec["relations"].values()} == {"enumerate"}
    assert tiny.num_rows == sum(r["available"] for r in rec["relations"].values())
    # a sparse pool too large to enumerate: what the proposals found, and a shortfall saying so
    monkeypatch.setattr(triplets_mod, "ENUMERATE_AT_MOST", 10)
    monkeypatch.setattr(triplets_mod, "MAX_PROPOSALS", 1)
    two = clips.set_column(
        clips.column_names.index("system_id"),
        "system_id",
        pa.array([f"sys{i % 2}" for i in range(clips.num_rows)]),
    )
    none, rec = sample_triplets(two, n=10, **(kw | {"relations": ["cross"]}))
    assert none.num_rows == 0 and "the pool is sparse" in rec["shortfall"]


# ---------------------------------------------------------------- cache schema 1 -> 2

_V1 = """
CREATE TABLE clip_scores (fingerprint TEXT NOT NULL, preprocessing TEXT NOT NULL,
    clip_id TEXT NOT NULL, audio_sha256 TEXT NOT NULL, score REAL NOT NULL,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (fingerprint, preprocessing, clip_id, audio_sha256)) WITHOUT ROWID;
CREATE TABLE pair_scores (fingerprint TEXT NOT NULL, preprocessing TEXT NOT NULL,
    clip_lo TEXT NOT NULL, sha_lo TEXT NOT NULL, clip_hi TEXT NOT NULL, sha_hi TEXT NOT NULL,
    p_lo REAL NOT NULL, created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (fingerprint, preprocessing, clip_lo, sha_lo, clip_hi, sha_hi)) WITHOUT ROWID;
INSERT INTO clip_scores (fingerprint, preprocessing, clip_id, audio_sha256, score)
    VALUES ('fp', 'prep', 'c0', 'sha0', 0.125), ('fp', 'prep', 'c1', 'sha1', -3.5);
INSERT INTO pair_scores (fingerprint, preprocessing, clip_lo, sha_lo, clip_hi, sha_hi, p_lo)
    VALUES ('fj', 'prep', 'c0', 'sha0', 'c1', 'sha1', 0.75);
PRAGMA user_version = 1;
"""


def test_schema_1_cache_is_migrated_keeping_clip_scores(tmp_path):
    path = tmp_path / "scores.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(_V1)
    conn.close()
    with ScoreCache(path) as cache:
        assert cache.get_clips("fp", "prep", [("c0", "sha0"), ("c1", "sha1")]) == {
            ("c0", "sha0"): 0.125,
            ("c1", "sha1"): -3.5,
        }
        key = (("c0", "sha0"), ("c1", "sha1"))
        assert cache.get_pairs("fj", "prep", [key]) == {}  # an average alone is not kept
        cache.put_pairs("fj", "prep", [(key, (0.8, 0.3))])
        assert cache.get_pairs("fj", "prep", [key]) == {key: (0.8, 0.3)}
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    conn.close()
    with ScoreCache(path) as cache:  # reopening a current cache changes nothing
        assert cache.get_pairs("fj", "prep", [key]) == {key: (0.8, 0.3)}


# ---------------------------------------------------------------- predictions tables


def test_order_columns_are_checked(toy):
    tmp, prepared = toy
    _run(prepared, Loud(0.1), tmp / "r")
    pred = pq.read_table(_files(tmp / "r")[1])
    assert load_predictions(pred).p_a_first is not None
    one = pred.drop_columns(["p_b_first"])
    with pytest.raises(PredictionError, match="p_a_first.*without 'p_b_first'"):
        aggregate(one)
    i = pred.column_names.index("p_a_first")
    bad = pred.set_column(i, "p_a_first", pa.array([1.5] * pred.num_rows))
    with pytest.raises(PredictionError, match=r"p_a_first.*\[0, 1\]"):
        aggregate(bad)
    swapped = pred.set_column(i, "p_a_first", pred.column("p_b_first"))
    with pytest.raises(PredictionError, match="order average"):
        aggregate(swapped)
    nulls = pa.nulls(pred.num_rows, pa.float64())
    blank = pred.set_column(i, "p_a_first", nulls).set_column(i + 1, "p_b_first", nulls)
    assert load_predictions(blank).p_a_first is None
    assert aggregate(blank) == aggregate(pred)


def _file_submission(tmp: Path, table: pa.Table, name: str) -> Submission:
    from benchmark.scoring.models import load_submission

    folder = tmp / "subs" / name
    folder.mkdir(parents=True)
    pq.write_table(table, folder / "p.parquet")
    spec = {"name": name, "display_name": name, "kind": "predictions"}
    spec["predictions"] = {"toy": "p.parquet"}
    (folder / "submission.yaml").write_text(json.dumps(spec))
    return load_submission(folder)


def test_prediction_files(toy):
    tmp, prepared = toy
    _run(prepared, Loud(), tmp / "r")
    pred = pq.read_table(_files(tmp / "r")[1])
    per_pair = pa.table({"pair_id": pred.column("pair_id"), "p_a": pred.column("score_a")})
    result = evaluate(_file_submission(tmp, per_pair, "pairs"), prepared, results_root=tmp / "f")
    d = result["diagnostics"]
    assert d["position_consistency"] is None and d["cycle_rate"] is None
    assert set(d["unavailable"]) == {"position", "cycles"}
    assert "not in the pair table" in d["unavailable"]["cycles"]
    assert "not available" in format_result(result)
    clip = pa.table({"clip_id": ["x"], "score": [1.0]})
    ids = sorted(set(pred.column("clip_a").to_pylist()) | set(pred.column("clip_b").to_pylist()))
    clip = pa.table({"clip_id": ids, "score": [float(i) for i in range(len(ids))]})
    result = evaluate(_file_submission(tmp, clip, "clips"), prepared, results_root=tmp / "f")
    assert result["diagnostics"]["by_construction"] is True


# ---------------------------------------------------------------- board and terminal


def test_board_and_terminal_show_diagnostics(toy):
    from benchmark.leaderboard.board import render_markdown

    tmp, prepared = toy
    root = tmp / "r"
    result = _run(prepared, Cyclic(), root)
    evaluate(
        _submission(Counting(), kind="scalar", name="rms"), prepared, results_root=root, config=BS4
    )
    evaluate(_submission(AlwaysA(), name="a-judge"), prepared, results_root=root, config=BS4)
    # a judge whose display name tries Markdown, and a result without diagnostics: refused, as
    # every result of the versioned schema has them (benchmark.results.schema)
    record = json.loads((root / "a-judge" / "toy.json").read_text())
    record["display_name"] = "A | <b>judge</b>"
    (root / "a-judge" / "toy.json").write_text(json.dumps(record))
    old = json.loads((root / "judge" / "toy.json").read_text())
    old.pop("diagnostics")
    old["submission"] = old["display_name"] = "old-judge"
    (root / "old-judge").mkdir()
    (root / "old-judge" / "toy.json").write_text(json.dumps(old))
    (root / "old-judge" / "toy.predictions.parquet").write_bytes(
        (root / "judge" / "toy.predictions.parquet").read_bytes()
    )
    with pytest.raises(MosrmError, match=r"old-judge/toy\.json: field 'diagnostics'"):
        render_markdown(root)
    shutil.rmtree(root / "old-judge")
    md = render_markdown(root)
    start = md.index("Judge diagnostics:")
    section = md[start : md.index("\n## ", start)]
    d = result["diagnostics"]
    rate = f"{100 * d['cycle_rate']:.1f}%"
    assert "| judge | 100.0% [" in section and rate in section
    assert "| A \\| &lt;b&gt;judge&lt;/b&gt; | 0.0% [" in section and "+1.000 [+0.9" in section
    assert "The 1 other model(s) score each clip on its own" in section
    assert "| rms |" not in section
    text = format_result(result)
    assert "position consistency" in text and "cycle rate" in text
    assert f"{d['n_cycles']} of {d['n_triplets']} triplets" in text


def test_a_cycle_free_sample_is_worth_as_many_triplets_as_could_be_disjoint() -> None:
    """No cycle at all leaves the variance silent: the interval then uses min(n, clips / 3)
    independent triplets (3 clips each), not the clips / 2 of pairs."""
    import pyarrow as pa

    from benchmark.stats.diagnostics import cycles
    from benchmark.stats.uncertainty import wilson, z_value

    rng = np.random.default_rng(0)
    picks = np.array([rng.choice(30, 3, replace=False) for _ in range(300)])
    table = pa.table(
        {k: [f"c{i}" for i in picks[:, j]] for j, k in enumerate(("clip_x", "clip_y", "clip_z"))}
    )
    ones = np.ones(300)
    got = cycles(table, ones, ones, ones, 0.95)
    assert got["n_cycles"] == 0 and got["n_triplet_clips"] == 30
    _, high = wilson(np.float64(0.0), np.float64(30 / 3), z_value(0.95))
    assert got["cycle_rate_ci"][1] == pytest.approx(float(high), abs=1e-6)
