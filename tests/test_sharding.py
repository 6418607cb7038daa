"""Scoring sharded over torchrun ranks (gloo, CPU): the split, byte-identical results for a scalar
model and a pairwise judge, and a rank that raises or is killed, then a rerun from the cache."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from benchmark.cli import main
from benchmark.errors import MachineError, SubmissionError
from benchmark.scoring import models
from benchmark.scoring.sharding import ShardGroup, split_shards
from tests import shard_worker
from tests.toy_task import REPO, write_toy_repo

TINY_CNN = {"encoder": {"type": "logmel", "n_mels": 16, "channels": [8, 8], "strides": [1, 2]}}
TINY_JUDGE = {**TINY_CNN, "levels": 4, "hidden": 16, "seed": 1}
OUTPUTS = ("toy.json", "toy.predictions.parquet", "toy.triplets.parquet")


def test_split_is_balanced_deterministic_and_exact():
    weights = [7.0, 3.0, 3.0, 9.0, 1.0, 4.0, 4.0, 2.0, 8.0, 5.0, 0.0]
    for world in (1, 2, 3, 4, 16):
        shares = split_shards(weights, world)
        assert shares == split_shards(weights, world)
        assert len(shares) == world and all(s == sorted(s) for s in shares)
        assert sorted(i for s in shares for i in s) == list(range(len(weights)))
        loads = [sum(weights[i] for i in s) for s in shares]
        assert max(loads) - min(loads) <= max(weights)
    assert split_shards(weights, 2) == [[1, 3, 5, 7, 9, 10], [0, 2, 4, 6, 8]]  # 23 and 23
    assert split_shards([], 3) == [[], [], []]
    with pytest.raises(ValueError, match="world size"):
        split_shards([1.0], 0)


class _ThreadGroup(ShardGroup):
    """A rank whose exchanges go through memory to the other threads of `hub` (no torch)."""

    def __init__(self, rank: int, hub: dict) -> None:
        super().__init__(rank, len(hub["slots"]), rank)
        self.hub = hub

    def all_gather_bytes(self, data: bytes) -> list[bytes]:
        self.hub["slots"][self.rank] = data
        self.hub["barrier"].wait()
        out = list(self.hub["slots"])
        self.hub["barrier"].wait()
        return out


def _on_two_ranks(job) -> list:
    """`job(group)` on two threaded ranks; what each returned or raised."""
    hub = {"slots": [b"", b""], "barrier": threading.Barrier(2, timeout=10)}
    out: list = [None, None]

    def go(rank: int) -> None:
        try:
            out[rank] = job(_ThreadGroup(rank, hub))
        except Exception as exc:
            out[rank] = exc

    threads = [threading.Thread(target=go, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_ranks_pool_their_caches_and_refuse_to_score_different_things():
    keys = [("a", "sha-a"), ("b", "sha-b"), ("c", "sha-c")]
    cached = [{keys[0]: 0.5}, {keys[0]: 0.5, keys[1]: 0.25}]  # rank 1's node kept more
    puts: list = [[], []]

    def pool(group: ShardGroup) -> dict:
        have = dict(cached[group.rank])
        group.agree_cached("clips fp prep", keys, have, puts[group.rank].extend)
        return have

    assert _on_two_ranks(pool) == [{keys[0]: 0.5, keys[1]: 0.25}] * 2
    assert puts == [[(keys[1], 0.25)], []]  # rank 0's cache gets what it lacked

    def other_audio(group: ShardGroup) -> None:
        mine = keys if group.rank == 0 else [*keys[:2], ("c", "other-sha")]
        group.agree_cached("clips fp prep", mine, {}, puts[0].extend)

    for error in _on_two_ranks(other_audio):
        assert isinstance(error, MachineError) and "rank 1 of 2 is not scoring" in str(error)


def test_an_error_on_one_rank_is_raised_on_every_rank_after_the_exchange():
    plan = [[0, 1], [2], [3, 4], [5]]
    weights = [3.0, 1.0, 2.0, 2.0]
    assert split_shards(weights, 2) == [[0, 1], [2, 3]]
    puts: list = [[], []]

    def score(group: ShardGroup) -> dict:
        have: dict = {}

        def part(units: list[int], record) -> None:
            assert group.batches is not None and sorted(sum(group.batches, [])) == units
            for b in group.batches:
                if b == [5]:  # rank 1's second batch
                    raise SubmissionError("model fp: score() raised RuntimeError: boom")
                items = [((f"c{u}", "sha"), float(u)) for u in b]
                record(items)
                have.update(items)

        group.run(plan, weights, part, have, puts[group.rank].extend)
        return have

    for error in _on_two_ranks(score):
        assert isinstance(error, SubmissionError) and "boom" in str(error)
    done = [((f"c{u}", "sha"), float(u)) for u in range(5)]
    assert puts[0] == done  # its own batches, then rank 1's finished one from the exchange
    assert puts[1] == done[3:]


def _trusted(repo: Path, name: str, kind: str, entry: str, config: dict) -> None:
    folder = repo / "submissions" / name
    folder.mkdir(parents=True)
    spec = {"name": name, "display_name": name, "kind": kind, "entry": entry}
    (folder / "submission.yaml").write_text(yaml.safe_dump({**spec, "params": {"config": config}}))


def _home(monkeypatch: pytest.MonkeyPatch, path: Path) -> Path:
    """A fresh $MOSRM_HOME (score cache, prepared task) for the next run, inherited by torchrun."""
    monkeypatch.setenv("MOSRM_HOME", str(path))
    return path


def _torchrun(module: str, args: list[str], env: dict[str, str] | None = None):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    cmd += ["-m", module, *args]
    run_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        cmd, cwd=REPO, env=run_env, capture_output=True, text=True, timeout=120, check=False
    )


def _counts(results: Path, name: str) -> dict:
    return json.loads((results / name / "toy.run.json").read_text())["score_cache"]


def test_two_ranks_give_the_bytes_of_one_process(tmp_path, monkeypatch, capfd):
    """`--nproc 2` (torchrun, gloo) against one process: a log-mel CNN, whose last bits depend on
    its batch partners (so the ranks must run the very batches one process runs), and a judge."""
    import torch

    monkeypatch.setenv("MOSRM_TRIPLETS", "40")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # each rank's threads, as in the one process
    repo = write_toy_repo(tmp_path)
    _trusted(repo, "cnn", "scalar", "benchmark.baselines.scalar:build", TINY_CNN)
    _trusted(repo, "judge", "pairwise", "benchmark.baselines.judge:build", TINY_JUDGE)
    args = ["--repo", str(repo), "evaluate", "cnn", "judge", "--task", "toy", "--quiet"]
    args += ["--batch-size", "3"]  # 24 clips, 8 batches: both ranks get several

    _home(monkeypatch, tmp_path / "home-1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each rank runs (OMP_NUM_THREADS above)
    try:
        assert main([*args, "--results", str(tmp_path / "one")]) == 0
    finally:
        torch.set_num_threads(threads)
    capfd.readouterr()

    _home(monkeypatch, tmp_path / "home-2")  # a cold cache: the two ranks compute everything
    assert main([*args, "--results", str(tmp_path / "two"), "--nproc", "2"]) == 0
    out = capfd.readouterr().out
    assert out.count("results in ") == 1  # rank 0 speaks; the other rank prints nothing

    for name in ("cnn", "judge"):
        for file in OUTPUTS[:2] + ((OUTPUTS[2],) if name == "judge" else ()):
            one = (tmp_path / "one" / name / file).read_bytes()
            assert (tmp_path / "two" / name / file).read_bytes() == one, (name, file)
        assert _counts(tmp_path / "two", name) == _counts(tmp_path / "one", name)
    assert _counts(tmp_path / "two", "cnn")["clips_computed"] == 24
    assert _counts(tmp_path / "two", "judge")["pairs_computed"] > 100


@pytest.fixture
def rms_repo(tmp_path: Path) -> Path:
    repo = write_toy_repo(tmp_path)
    shard_worker.write_folder(repo / "submissions" / "rms")
    return repo


def _two_ranks(tmp_path, repo: Path, crash: str, env: dict | None = None) -> tuple[object, list]:
    """Run `rms` on two ranks, rank 1 failing after its first batch as `crash` says; returns
    torchrun's result and the (rank, clip) lines the model logged."""
    log = tmp_path / f"{crash or 'ok'}.log"
    args = ["--repo", str(repo), "evaluate", "rms", "--task", "toy", "--quiet"]
    args += ["--batch-size", "4", "--results", str(tmp_path / "r")]
    env = {"SHARD_TEST_CRASH": crash, "SHARD_TEST_LOG": str(log), **(env or {})}
    done = _torchrun("tests.shard_worker", args, env)
    lines = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
    return done, lines


def _rerun(monkeypatch, repo: Path, results: Path) -> int:
    monkeypatch.setattr(models, "load_submission", shard_worker.load)
    args = ["--repo", str(repo), "evaluate", "rms", "--task", "toy", "--quiet"]
    return main([*args, "--batch-size", "4", "--results", str(results)])


def _prepare_each_home(monkeypatch, repo: Path, homes: Path) -> None:
    """Prepare the task into each rank's home first, one after the other (the toy data is dated
    in the past, so the reuse check trusts it): the ranks then start from current folders, and
    this test is about killing and resuming only. (Ranks preparing at the same moment once
    disagreed on every clip's audio key: the 16 kHz cache's WAVs held their write time; fixed in
    `audio_cache._convert`, tested in test_audio_cache.)
    """
    for rank in (0, 1):
        monkeypatch.setenv("MOSRM_HOME", str(homes / f"rank{rank}"))
        assert main(["--repo", str(repo), "prepare", "toy", "--quiet"]) == 0


def test_killed_rank_fails_the_run_and_a_rerun_resumes(tmp_path, monkeypatch, rms_repo):
    """Each rank with its own $MOSRM_HOME, as on nodes without a shared filesystem: the rerun
    pools what every rank's cache kept into rank 0's before dealing out the rest."""
    homes = {"SHARD_TEST_HOMES": str(tmp_path / "homes")}
    _prepare_each_home(monkeypatch, rms_repo, tmp_path / "homes")
    done, lines = _two_ranks(tmp_path, rms_repo, "kill", homes)
    assert done.returncode != 0, done.stderr[-2000:]
    assert "SIGKILL" in done.stderr or "lost the other ranks" in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "r" / "rms" / "toy.json").exists()
    by_rank = {r: {c for rr, c in lines if rr == r} for r in ("0", "1")}
    assert len(by_rank["1"]) == 4  # one batch, committed before rank 1 died
    assert not by_rank["0"] & by_rank["1"]  # the ranks score disjoint shares

    done, again = _two_ranks(tmp_path, rms_repo, "", homes)
    assert done.returncode == 0, done.stderr[-2000:]
    counts = _counts(tmp_path / "r", "rms")
    assert counts["clips_from_cache"] >= 4  # rank 1's batch at least, rank 0's if it finished
    assert counts["clips_from_cache"] + counts["clips_computed"] == 24
    assert not {c for _, c in again} & by_rank["1"]  # rank 1's cached batch was not redone
    with sqlite3.connect(tmp_path / "homes" / "rank0" / "scores.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM clip_scores").fetchone()[0] == 24
    _home(monkeypatch, tmp_path / "fresh")
    assert _rerun(monkeypatch, rms_repo, tmp_path / "fresh-r") == 0
    for file in OUTPUTS[:2]:  # the resumed run gives the numbers of an uninterrupted one
        fresh = (tmp_path / "fresh-r" / "rms" / file).read_bytes()
        assert (tmp_path / "r" / "rms" / file).read_bytes() == fresh


def test_rank_that_raises_fails_on_every_rank_and_a_rerun_resumes(tmp_path, monkeypatch, rms_repo):
    _home(monkeypatch, tmp_path / "home")
    done, lines = _two_ranks(tmp_path, rms_repo, "raise")
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    # rank 0 reports rank 1's error once (its line, then the summary), the other rank nothing
    assert len(errors) == 2 and "score() raised RuntimeError: boom" in errors[0], errors
    failure = json.loads((tmp_path / "r" / "rms" / "toy.failed.json").read_text())
    assert failure["stage"] == "score" and "boom" in failure["reason"]
    assert not (tmp_path / "r" / "rms" / "toy.json").exists()
    rank0 = {c for r, c in lines if r == "0"}
    assert len(rank0) >= 8  # rank 0 scored its whole share: every rank waits for the exchange

    assert _rerun(monkeypatch, rms_repo, tmp_path / "r") == 0
    counts = _counts(tmp_path / "r", "rms")
    assert counts["clips_from_cache"] == len(rank0) + 4  # nothing finished was lost
    assert counts["clips_computed"] == 24 - counts["clips_from_cache"]
    assert not (tmp_path / "r" / "rms" / "toy.failed.json").exists()
