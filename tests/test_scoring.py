"""The scoring loop: batch-size invariance, dedup, cache reuse, crash/resume, output validation,
order-averaged pairwise judging, and worker-count invariance."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

from benchmark.data.tables import CLIP_SCHEMA, PAIR_SCHEMA, from_rows
from benchmark.errors import DataError, SubmissionError
from benchmark.scoring.cache import ScoreCache
from benchmark.scoring.config import ScoringConfig
from benchmark.scoring.loop import score_clips, score_pairs
from benchmark.scoring.models import Batch, Submission, SubmissionSpec
from benchmark.scoring.predictions import predict

QUIET = ScoringConfig(progress=False)
BS1 = ScoringConfig(max_batch_size=1, progress=False)
BS16 = ScoringConfig(max_batch_size=16, progress=False)

# ---------------------------------------------------------------- test models


class RmsModel:
    """RMS over the valid samples only, row by row: masks padding, so batching cannot matter."""

    sample_rate = 16000

    def __init__(self) -> None:
        self.calls = 0
        self.seen: list[str] = []

    def score(self, batch: Batch) -> torch.Tensor:
        self.calls += 1
        self.seen.extend(batch.clip_ids)
        out = torch.empty(len(batch), dtype=torch.float64)
        for i, n in enumerate(batch.lengths.tolist()):
            out[i] = batch.waveforms[i, :n].double().pow(2).mean().sqrt()
        return out


class PaddingReader(RmsModel):
    """Averages over the padded row: what a model that forgets the mask does."""

    def score(self, batch: Batch) -> torch.Tensor:
        self.calls += 1
        return batch.waveforms.double().pow(2).mean(dim=1).sqrt()


class CrashAfter(RmsModel):
    """Scores `ok_batches` batches, then dies (a killed run, as far as the cache can tell)."""

    def __init__(self, ok_batches: int) -> None:
        super().__init__()
        self.ok_batches = ok_batches

    def score(self, batch: Batch) -> torch.Tensor:
        if self.calls >= self.ok_batches:
            raise RuntimeError("killed")
        return super().score(batch)


class NanFor(RmsModel):
    def __init__(self, bad_clip: str) -> None:
        super().__init__()
        self.bad_clip = bad_clip

    def score(self, batch: Batch) -> torch.Tensor:
        out = super().score(batch)
        for i, cid in enumerate(batch.clip_ids):
            if cid == self.bad_clip:
                out[i] = float("nan")
        return out


class WrongShape(RmsModel):
    def score(self, batch: Batch) -> torch.Tensor:
        return super().score(batch)[:, None]


class Judge:
    """Pairwise judge from RMS difference, antisymmetric, plus an optional position bias toward A."""

    sample_rate = 16000

    def __init__(self, bias: float = 0.0) -> None:
        self.bias = bias
        self.calls = 0
        self.rms = RmsModel()

    def prefer(self, a: Batch, b: Batch) -> torch.Tensor:
        self.calls += 1
        d = self.rms.score(a) - self.rms.score(b)
        return 0.3 + 0.4 * torch.sigmoid(20 * d) + self.bias


# ---------------------------------------------------------------- fixtures


def _clip_rows(root: Path, write_wav, n: int, null_every: int = 3) -> list[dict]:
    rows = []
    for i in range(n):
        seconds = 0.05 + 0.013 * ((i * 7) % 11)
        sr = 22050 if i % 4 == 3 else 16000
        write_wav(
            root / "wav" / f"c{i:02d}.wav", seconds=seconds, sr=sr, seed=i, amp=0.1 + 0.02 * i
        )
        rows.append(
            {
                "clip_id": f"c{i:02d}",
                "corpus": "t",
                "split": "test",
                "audio_path": f"wav/c{i:02d}.wav",
                "mos": 1.0 + (i % 5),
                "sample_rate": sr,
                "duration": None if i % null_every == 0 else seconds,
            }
        )
    return rows


def _pairs(ids: list[tuple[str, str]]) -> pa.Table:
    rows = []
    for k, (a, b) in enumerate(ids):
        rows.append(
            {
                "pair_id": f"p{k}",
                "task": "t",
                "split": "test",
                "relation": "any",
                "clip_a": a,
                "clip_b": b,
                "mos_a": 1.0,
                "mos_b": 2.0,
                "delta_mos": 1.0,
                "chosen": "b",
                "delta_bin": 0,
                "dmos_lt_0_2": False,
                "dmos_le_0_5": False,
                "dmos_gt_1_5": False,
            }
        )
    return from_rows(rows, PAIR_SCHEMA)


@pytest.fixture
def corpus(tmp_path, write_wav):
    root = tmp_path / "data"
    clips = from_rows(_clip_rows(root, write_wav, 20), CLIP_SCHEMA)
    ids = clips.column("clip_id").to_pylist()
    # every clip in several pairs, some pairs repeated and some reversed
    pair_ids = [(ids[i], ids[(i + 1) % 20]) for i in range(20)]
    pair_ids += [(ids[(i + 5) % 20], ids[i]) for i in range(0, 20, 2)]
    pair_ids += [(ids[1], ids[2]), (ids[2], ids[1])]
    return root, clips, _pairs(pair_ids)


def _submission(tmp_path: Path, model, kind: str = "scalar", fingerprint: str = "fp-test"):
    spec = SubmissionSpec(name="t", display_name="T", kind=kind, entry="model.py:build")
    return Submission(spec=spec, folder=tmp_path, model=model, fingerprint=fingerprint)


def _cached_clip_ids(cache: Path) -> set[str]:
    with sqlite3.connect(cache) as conn:
        return {r[0] for r in conn.execute("SELECT clip_id FROM clip_scores")}


# ---------------------------------------------------------------- 3. batch-size invariance


def test_batch_size_does_not_change_scores(tmp_path, corpus):
    root, clips, pairs = corpus
    s1 = score_clips(
        RmsModel(), clips, root, fingerprint="rms", config=BS1, cache_path=tmp_path / "1.db"
    )
    s16 = score_clips(
        RmsModel(), clips, root, fingerprint="rms", config=BS16, cache_path=tmp_path / "16.db"
    )
    assert list(s1) == clips.column("clip_id").to_pylist()
    assert s1 == s16  # exact equality, not approx
    t1 = predict(
        _submission(tmp_path, RmsModel()),
        pairs,
        clips,
        root,
        config=BS1,
        cache_path=tmp_path / "p1.db",
    )
    t16 = predict(
        _submission(tmp_path, RmsModel()),
        pairs,
        clips,
        root,
        config=BS16,
        cache_path=tmp_path / "p16.db",
    )
    assert t1.equals(t16)
    assert t1.column_names == [*PAIR_SCHEMA.names, "score_a", "score_b"]
    assert t1.schema.field("score_a").type == pa.float64()
    assert t1.column("score_a").to_pylist() == [s1[c] for c in pairs.column("clip_a").to_pylist()]


def test_a_model_reading_padding_is_caught(tmp_path, corpus):
    """The invariance test above can fail: a model that reads padding scores differently."""
    root, clips, _ = corpus
    s1 = score_clips(
        PaddingReader(), clips, root, fingerprint="pad", config=BS1, cache_path=tmp_path / "1.db"
    )
    s16 = score_clips(
        PaddingReader(), clips, root, fingerprint="pad", config=BS16, cache_path=tmp_path / "16.db"
    )
    assert s1 != s16


# ---------------------------------------------------------------- 4. dedup and cache reuse


def test_each_clip_scored_once_and_cache_reused(tmp_path, corpus):
    root, clips, pairs = corpus
    cache = tmp_path / "c.db"
    model = RmsModel()
    first = predict(_submission(tmp_path, model), pairs, clips, root, config=BS16, cache_path=cache)
    used = set(pairs.column("clip_a").to_pylist()) | set(pairs.column("clip_b").to_pylist())
    assert sorted(model.seen) == sorted(used)  # each used clip exactly once
    again = RmsModel()
    second = predict(
        _submission(tmp_path, again), pairs, clips, root, config=BS16, cache_path=cache
    )
    assert again.calls == 0 and second.equals(first)

    other_fp = RmsModel()
    predict(
        _submission(tmp_path, other_fp, fingerprint="fp-other"),
        pairs,
        clips,
        root,
        config=BS16,
        cache_path=cache,
    )
    assert sorted(other_fp.seen) == sorted(used)

    other_sr = RmsModel()
    other_sr.sample_rate = 8000  # different preprocessing -> different cache key
    predict(_submission(tmp_path, other_sr), pairs, clips, root, config=BS16, cache_path=cache)
    assert sorted(other_sr.seen) == sorted(used)


def test_only_clips_used_by_pairs_are_scored(tmp_path, corpus):
    root, clips, _ = corpus
    pairs = _pairs([("c03", "c07"), ("c07", "c03"), ("c03", "c07")])
    model = RmsModel()
    out = predict(
        _submission(tmp_path, model), pairs, clips, root, config=QUIET, cache_path=tmp_path / "c.db"
    )
    assert sorted(model.seen) == ["c03", "c07"]
    assert out.column("score_a").to_pylist()[0] == out.column("score_b").to_pylist()[1]


def test_changed_audio_is_rescored(tmp_path, corpus, write_wav):
    root, clips, _ = corpus
    cache = tmp_path / "c.db"
    before = score_clips(RmsModel(), clips, root, fingerprint="rms", config=QUIET, cache_path=cache)
    write_wav(root / "wav" / "c05.wav", seconds=0.2, seed=99, amp=0.9)
    model = RmsModel()
    after = score_clips(model, clips, root, fingerprint="rms", config=QUIET, cache_path=cache)
    assert model.seen == ["c05"]
    assert after["c05"] != before["c05"]


def test_default_cache_lives_in_mosrm_home(corpus):
    from benchmark.paths import score_cache_path

    root, clips, _ = corpus
    score_clips(RmsModel(), clips, root, fingerprint="rms", config=QUIET)
    assert len(_cached_clip_ids(score_cache_path())) == clips.num_rows


# ---------------------------------------------------------------- 5. crash and resume


def test_killed_run_resumes_to_identical_results(tmp_path, corpus):
    root, clips, pairs = corpus
    cfg = ScoringConfig(max_batch_size=4, progress=False)
    reference = predict(
        _submission(tmp_path, RmsModel()),
        pairs,
        clips,
        root,
        config=cfg,
        cache_path=tmp_path / "ref.db",
    )

    cache = tmp_path / "c.db"
    with pytest.raises(SubmissionError, match="killed"):
        predict(
            _submission(tmp_path, CrashAfter(2)), pairs, clips, root, config=cfg, cache_path=cache
        )
    done = _cached_clip_ids(cache)
    assert len(done) == 8  # two full batches of 4 were committed before the crash

    resumed = RmsModel()
    result = predict(
        _submission(tmp_path, resumed), pairs, clips, root, config=cfg, cache_path=cache
    )
    assert set(resumed.seen).isdisjoint(done)
    assert len(resumed.seen) + len(done) == clips.num_rows
    assert result.equals(reference)


# ---------------------------------------------------------------- 6. bad model output


def test_nan_output_is_submission_error_and_not_cached(tmp_path, corpus):
    root, clips, _ = corpus
    cache = tmp_path / "c.db"
    cfg = ScoringConfig(max_batch_size=4, progress=False)
    with pytest.raises(SubmissionError) as info:
        score_clips(NanFor("c13"), clips, root, fingerprint="fp-nan", config=cfg, cache_path=cache)
    msg = str(info.value)
    assert "fp-nan" in msg and "c13" in msg and "non-finite" in msg
    cached = _cached_clip_ids(cache)
    assert "c13" not in cached
    # whole bad batch rejected; earlier batches kept
    assert 0 < len(cached) < clips.num_rows and len(cached) % 4 == 0


def test_wrong_shape_is_submission_error(tmp_path, corpus):
    root, clips, _ = corpus
    cache = tmp_path / "c.db"
    with pytest.raises(SubmissionError, match=r"fp-shape.*shape \[\d+, 1\].*c\d\d") as info:
        score_clips(
            WrongShape(), clips, root, fingerprint="fp-shape", config=QUIET, cache_path=cache
        )
    assert "clips" in str(info.value)
    assert _cached_clip_ids(cache) == set()


def test_bad_sample_rate_is_submission_error(tmp_path, corpus):
    root, clips, _ = corpus
    model = RmsModel()
    model.sample_rate = 0
    with pytest.raises(SubmissionError, match="sample_rate"):
        score_clips(
            model, clips, root, fingerprint="fp", config=QUIET, cache_path=tmp_path / "c.db"
        )


def test_missing_audio_and_unknown_clip_are_data_errors(tmp_path, corpus):
    root, clips, _ = corpus
    (root / "wav" / "c04.wav").unlink()
    with pytest.raises(DataError, match=r"c04\.wav.*clip c04"):
        score_clips(
            RmsModel(), clips, root, fingerprint="fp", config=QUIET, cache_path=tmp_path / "c.db"
        )
    with pytest.raises(DataError, match="zz"):
        predict(
            _submission(tmp_path, RmsModel()),
            _pairs([("c01", "zz")]),
            clips,
            root,
            config=QUIET,
            cache_path=tmp_path / "c.db",
        )


def test_corrupt_audio_in_worker_is_clean_data_error(tmp_path, corpus):
    root, clips, _ = corpus
    (root / "wav" / "c07.wav").write_bytes(b"not a wav file at all" * 50)  # duration known
    cfg = ScoringConfig(num_workers=2, progress=False)
    with pytest.raises(DataError, match=r"c07\.wav: cannot decode") as info:
        score_clips(
            RmsModel(), clips, root, fingerprint="fp", config=cfg, cache_path=tmp_path / "c.db"
        )
    assert "Traceback" not in str(info.value)
    (root / "wav" / "c06.wav").write_bytes(b"not a wav file at all" * 50)  # duration null: probed
    with pytest.raises(DataError, match=r"c06\.wav: cannot read audio header"):
        score_clips(
            RmsModel(), clips, root, fingerprint="fp", config=cfg, cache_path=tmp_path / "c.db"
        )


# ---------------------------------------------------------------- 7. pairwise, both orders


def test_position_bias_cancels(tmp_path, corpus):
    root, clips, pairs = corpus
    fair = score_pairs(
        Judge(), pairs, clips, root, fingerprint="fair", config=QUIET, cache_path=tmp_path / "c.db"
    )
    biased = score_pairs(
        Judge(0.2),
        pairs,
        clips,
        root,
        fingerprint="biased",
        config=QUIET,
        cache_path=tmp_path / "c.db",
    )
    np.testing.assert_allclose(biased, fair, rtol=0, atol=1e-12)
    # the unbiased judge is antisymmetric, so averaging both orders gives its own answer
    rms = score_clips(
        RmsModel(), clips, root, fingerprint="rms", config=QUIET, cache_path=tmp_path / "c.db"
    )
    a, b = pairs.column("clip_a").to_pylist(), pairs.column("clip_b").to_pylist()
    direct = [0.3 + 0.4 / (1 + np.exp(-20 * (rms[x] - rms[y]))) for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(fair, direct, atol=1e-6)


def test_pairwise_predict_and_unordered_dedup(tmp_path, corpus):
    root, clips, pairs = corpus
    judge = Judge(0.2)
    cache = tmp_path / "c.db"
    out = predict(
        _submission(tmp_path, judge, kind="pairwise"),
        pairs,
        clips,
        root,
        config=BS1,
        cache_path=cache,
    )
    a, b = pairs.column("clip_a").to_pylist(), pairs.column("clip_b").to_pylist()
    unordered = {frozenset(p) for p in zip(a, b, strict=True)}
    assert judge.calls == 2 * len(unordered)  # each unordered pair once, in both orders
    sa, sb = np.array(out.column("score_a")), np.array(out.column("score_b"))
    np.testing.assert_array_equal(sb, 1.0 - sa)
    # (c01, c02) and (c02, c01) are both in the pair table: complements (judged once)
    rows = list(zip(a, b, strict=True))
    i, j = rows.index(("c01", "c02")), rows.index(("c02", "c01"))
    assert sa[i] == pytest.approx(sb[j], rel=0, abs=1e-15)
    # cache hit the second time, batch size irrelevant
    again = Judge(0.2)
    out2 = predict(
        _submission(tmp_path, again, kind="pairwise"),
        pairs,
        clips,
        root,
        config=BS16,
        cache_path=cache,
    )
    assert again.calls == 0 and out2.equals(out)
    fresh = predict(
        _submission(tmp_path, Judge(0.2), kind="pairwise"),
        pairs,
        clips,
        root,
        config=BS16,
        cache_path=tmp_path / "d.db",
    )
    assert fresh.equals(out)


def test_probability_out_of_range_is_submission_error(tmp_path, corpus):
    root, clips, pairs = corpus
    with pytest.raises(SubmissionError, match=r"outside \[0, 1\]"):
        score_pairs(
            Judge(0.9),
            pairs,
            clips,
            root,
            fingerprint="over",
            config=QUIET,
            cache_path=tmp_path / "c.db",
        )


# ---------------------------------------------------------------- 8. decoding workers


def test_workers_do_not_change_scores(tmp_path, corpus):
    root, clips, pairs = corpus
    s0 = score_clips(
        RmsModel(), clips, root, fingerprint="rms", config=BS16, cache_path=tmp_path / "0.db"
    )
    cfg2 = ScoringConfig(num_workers=2, max_batch_size=4, progress=False)
    s2 = score_clips(
        RmsModel(), clips, root, fingerprint="rms", config=cfg2, cache_path=tmp_path / "2.db"
    )
    assert s0 == s2
    p0 = score_pairs(
        Judge(), pairs, clips, root, fingerprint="j", config=BS16, cache_path=tmp_path / "0.db"
    )
    p2 = score_pairs(
        Judge(), pairs, clips, root, fingerprint="j", config=cfg2, cache_path=tmp_path / "2.db"
    )
    np.testing.assert_array_equal(p0, p2)


# ---------------------------------------------------------------- odds and ends


def test_progress_is_logged_not_printed(tmp_path, corpus, capsys, caplog):
    """Without a terminal, the library reports progress through `logging` (`benchmark.progress`),
    never by writing to stdout or stderr itself; the CLI decides where it goes."""
    caplog.set_level(logging.INFO, logger="benchmark.progress")
    root, clips, _ = corpus
    score_clips(
        RmsModel(),
        clips,
        root,
        fingerprint="rms",
        config=ScoringConfig(),
        cache_path=tmp_path / "c.db",
    )
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert "scoring" in caplog.text and "started" in caplog.text and "done (" in caplog.text


def test_scores_round_trip_exactly_through_sqlite(tmp_path, corpus):
    root, clips, _ = corpus

    class Awkward(RmsModel):
        def score(self, batch: Batch) -> torch.Tensor:
            return super().score(batch) * np.pi / 3 + 1e-300

    cache = tmp_path / "c.db"
    first = score_clips(Awkward(), clips, root, fingerprint="aw", config=QUIET, cache_path=cache)
    again = Awkward()
    second = score_clips(again, clips, root, fingerprint="aw", config=QUIET, cache_path=cache)
    assert again.calls == 0 and first == second


def test_empty_tables(tmp_path, corpus):
    root, clips, _ = corpus
    empty = _pairs([])
    out = predict(
        _submission(tmp_path, RmsModel()),
        empty,
        clips,
        root,
        config=QUIET,
        cache_path=tmp_path / "c.db",
    )
    assert out.num_rows == 0 and "score_a" in out.column_names
    assert score_pairs(
        Judge(), empty, clips, root, fingerprint="j", config=QUIET, cache_path=tmp_path / "c.db"
    ).shape == (0,)


_KILL_SCRIPT = """
import os, sys
from pathlib import Path
import pyarrow.parquet as pq
from benchmark.scoring.config import ScoringConfig
from benchmark.scoring.loop import score_clips
from tests.test_scoring import RmsModel

class DieAfter(RmsModel):
    def score(self, batch):
        if self.calls == 2:
            os._exit(9)  # no cleanup, no close: as if the process were killed
        return super().score(batch)

clips = pq.read_table(sys.argv[1])
score_clips(DieAfter(), clips, Path(sys.argv[2]), fingerprint="rms",
            config=ScoringConfig(max_batch_size=4, progress=False), cache_path=Path(sys.argv[3]))
"""


def test_hard_killed_process_keeps_finished_batches(tmp_path, corpus):
    import subprocess
    import sys

    import pyarrow.parquet as pq

    root, clips, _ = corpus
    pq.write_table(clips, tmp_path / "clips.parquet")
    cache = tmp_path / "c.db"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _KILL_SCRIPT,
            str(tmp_path / "clips.parquet"),
            str(root),
            str(cache),
        ],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 9, proc.stderr
    # the two finished batches are in the process's journal (benchmark.scoring.journal), which
    # the next opener of the cache commits
    assert len(list(tmp_path.glob("c.db.pending-*"))) == 1
    ScoreCache(cache).close()
    assert len(_cached_clip_ids(cache)) == 8
    assert not list(tmp_path.glob("c.db.pending-*"))
    resumed = RmsModel()
    cfg = ScoringConfig(max_batch_size=4, progress=False)
    scores = score_clips(resumed, clips, root, fingerprint="rms", config=cfg, cache_path=cache)
    assert len(resumed.seen) == clips.num_rows - 8
    reference = score_clips(
        RmsModel(), clips, root, fingerprint="rms", config=cfg, cache_path=tmp_path / "r.db"
    )
    assert scores == reference


class DropoutModel(torch.nn.Module):
    """A torch module whose scores are random unless the harness puts it in eval mode."""

    sample_rate = 16000

    def __init__(self) -> None:
        super().__init__()
        self.drop = torch.nn.Dropout(0.5)
        self.moved_to: list[str] = []

    def to(self, device):  # record the call, then behave like nn.Module.to
        self.moved_to.append(str(device))
        return super().to(device)

    def score(self, batch: Batch) -> torch.Tensor:
        return self.drop(batch.waveforms.abs().sum(dim=1) + 1.0) / batch.lengths


def test_torch_modules_run_in_eval_mode_on_the_chosen_device(tmp_path, corpus):
    root, clips, _ = corpus
    model = DropoutModel()
    cfg = ScoringConfig(device="cpu", bf16=True, progress=False)  # bf16 is CUDA-only: ignored
    a = score_clips(model, clips, root, fingerprint="m", config=cfg, cache_path=tmp_path / "a.db")
    assert model.moved_to == ["cpu"] and not model.training
    b = score_clips(
        DropoutModel(), clips, root, fingerprint="m", config=QUIET, cache_path=tmp_path / "b.db"
    )
    assert a == b
    # same cache key with and without the (ineffective) bf16 flag: no new rows
    score_clips(
        DropoutModel(), clips, root, fingerprint="m", config=QUIET, cache_path=tmp_path / "a.db"
    )
    with sqlite3.connect(tmp_path / "a.db") as conn:
        assert conn.execute("SELECT count(*) FROM clip_scores").fetchone()[0] == clips.num_rows


def test_effective_preprocessing_records_bf16_only_where_it_applies():
    from benchmark.data.audio import preprocessing_config
    from benchmark.scoring.config import ScoringConfig, effective_preprocessing

    assert effective_preprocessing(16000, ScoringConfig(device="cpu")) == preprocessing_config(
        16000
    )
    cpu_bf16 = effective_preprocessing(16000, ScoringConfig(device="cpu", bf16=True))
    assert "autocast" not in cpu_bf16  # autocast is CUDA-only, so the numbers are fp32 here


def test_score_cache_opens_while_another_process_writes_a_new_one(tmp_path: Path) -> None:
    """Switching a new cache to WAL is not covered by SQLite's busy timeout: a run opening the cache
    while another run was creating it failed with "database is locked" (see connect_wal)."""
    path = tmp_path / "scores.sqlite"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE x (a)")  # a new file, still in rollback-journal mode
    other.execute("BEGIN IMMEDIATE")  # the other run is mid-write
    timer = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    timer.start()
    try:
        with ScoreCache(path) as cache:
            cache.put_clips("fp", "prep", [(("c0", "sha"), 1.5)])
            assert cache.get_clips("fp", "prep", [("c0", "sha")]) == {("c0", "sha"): 1.5}
            assert cache.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        timer.join()
        other.close()
