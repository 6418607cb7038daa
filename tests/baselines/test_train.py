"""The training loop: it learns, it resumes to the same weights, torchrun matches one process, and
its output is a submission the harness scores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from benchmark.baselines.train import train
from benchmark.baselines.train_config import TrainConfigError, load_train_config
from benchmark.cli import main
from tests.baselines.train_fixture import config_file, torchrun_train, write_train_repo


@pytest.fixture
def repo(tmp_path):
    return write_train_repo(tmp_path)


def _weights(folder: Path) -> dict:
    return load_file(str(folder / "model.safetensors"))


def test_train_writes_a_submission_the_harness_scores(repo, tmp_path, capsys):
    cfg = config_file(repo)
    assert main(["--repo", str(repo), "train", str(cfg), "--quiet"]) == 0
    out = repo / "submissions" / "toy-bt"
    for name in ("submission.yaml", "model.safetensors", "curve.csv", "curve.png", "card.md"):
        assert (out / name).is_file(), name
    curve = (out / "curve.csv").read_text().splitlines()
    assert curve[0] == "epoch,step,loss,dev_accuracy" and len(curve) > 4
    card = (out / "card.md").read_text()
    assert "Best dev accuracy" in card and "toy:train" in card
    results = tmp_path / "results"
    args = ["--repo", str(repo), "evaluate", "toy-bt", "--task", "toy", "--quiet"]
    assert main([*args, "--results", str(results)]) == 0
    record = json.loads((results / "toy-bt" / "toy.json").read_text())
    assert record["zero_shot"] is False  # trained on toy:train: flagged in-domain
    assert record["metrics"]["overall"]["accuracy"] > 0.6  # louder = better is learnable
    # the trained model masks its padding: validate's smoke run compares batch 1 with batch 8
    assert main(["validate", str(out)]) == 0
    assert "batch 1 vs 8 agree" in capsys.readouterr().out


def test_resume_after_a_kill_ends_with_the_same_weights(repo, tmp_path):
    cfg = load_train_config(config_file(repo, checkpoint_every=3, epochs=2))
    whole = train(cfg, tmp_path / "whole", repo=repo, progress=False)
    assert train(cfg, tmp_path / "cut", repo=repo, progress=False, stop_after_steps=4) is None
    assert (tmp_path / "cut" / "checkpoint" / "state.json").is_file()
    resumed = train(cfg, tmp_path / "cut", repo=repo, progress=False)
    a, b = _weights(whole), _weights(resumed)
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def test_mse_trains(repo, tmp_path):
    cfg = load_train_config(config_file(repo, name="toy-mse", loss="mse", epochs=1))
    out = train(cfg, tmp_path / "mse", repo=repo, progress=False)
    assert "MSE" in (out / "card.md").read_text()


def test_torchrun_two_processes_match_one_with_the_doubled_batch(repo, tmp_path):
    one = load_train_config(config_file(repo, name="one", batch_size=8, epochs=1))
    single = train(one, tmp_path / "single", repo=repo, progress=False)
    two = config_file(repo, name="two", batch_size=4, epochs=1)
    torchrun_train(repo, two, tmp_path / "ddp")
    a, b = _weights(single), _weights(tmp_path / "ddp")
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst <= 1e-5, worst
    la = [line.split(",")[2] for line in (single / "curve.csv").read_text().splitlines()[1:]]
    lb = [
        line.split(",")[2] for line in (tmp_path / "ddp" / "curve.csv").read_text().splitlines()[1:]
    ]
    assert [round(float(x), 4) for x in la if x] == [round(float(x), 4) for x in lb if x]


def test_bad_configs_are_one_line_errors(repo, capsys):
    for extra, message in [
        ({"tasks": ["nope"]}, "unknown task(s): nope"),
        ({"loss": "hinge"}, "field 'loss'"),
        ({"colour": "red"}, "'colour': unknown key"),
    ]:
        cfg = config_file(repo, **extra)
        assert main(["--repo", str(repo), "train", str(cfg), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1, err
    with pytest.raises(TrainConfigError, match="not found|cannot read"):
        load_train_config(repo / "training" / "missing.yaml")


def test_a_task_without_train_pairs_is_a_one_line_error(tmp_path, capsys):
    from tests.toy_task import write_toy_repo

    repo = write_toy_repo(tmp_path)  # its only split is 'test'
    cfg = config_file(repo)
    assert main(["--repo", str(repo), "train", str(cfg), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: task 'toy' has no 'train' pairs to train on (splits: test)", err


def test_run_train_trains_the_configs_of_training_once_and_evaluates_them(repo, tmp_path, capsys):
    """`mosrm run --train` (a plain `mosrm run` scores the committed reference models and trains
    nothing: tests/test_official_rederive.py)."""
    config_file(repo)  # training/toy-bt.yaml in the checkout
    results = tmp_path / "results"
    args = ["--repo", str(repo), "run", "--train", "--quiet", "--results", str(results)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "train toy-bt (training/toy-bt.yaml)" in out
    record = json.loads((results / "toy-bt" / "toy.json").read_text())
    assert record["metrics"]["overall"]["n"] > 0 and record["zero_shot"] is False
    assert "toy-bt" in (results / "summary.md").read_text()
    first = (results / "toy-bt" / "toy.predictions.parquet").read_bytes()
    assert main(args) == 0  # unchanged config and data: the trained copy is reused
    assert "trained toy-bt: up to date" in capsys.readouterr().out
    assert (results / "toy-bt" / "toy.predictions.parquet").read_bytes() == first
    plain = ["--repo", str(repo), "run", "--quiet", "--results", str(tmp_path / "r2")]
    assert main(plain) == 0  # no --train: nothing trained, and toy-bt is no committed model
    assert not (tmp_path / "r2" / "toy-bt").exists()
    assert main([*plain[:-1], str(tmp_path / "r3"), "--no-train"]) == 0  # the old flag


def test_ssl_encoder_end_to_end_and_portable(repo, tmp_path, monkeypatch):
    """Train a BT model on a tiny local wav2vec 2.0 (frozen), evaluate it, move it, evaluate again."""
    import shutil

    from transformers import Wav2Vec2Model

    from tests.baselines.tiny_hf import tiny_wav2vec2_config

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    backbone = tmp_path / "tiny-w2v2"
    cfg = tiny_wav2vec2_config()
    Wav2Vec2Model(cfg).save_pretrained(backbone)
    model = {
        "encoder": {"type": "ssl", "source": str(backbone)},
        "head": {"hidden": 8, "dropout": 0.0},
    }
    path = config_file(repo, name="toy-ssl", model=model, epochs=1)
    assert main(["--repo", str(repo), "train", str(path), "--quiet"]) == 0
    out = repo / "submissions" / "toy-ssl"
    assert (out / "encoder" / "config.json").is_file()  # the backbone ships with it
    assert "source: encoder" in (out / "submission.yaml").read_text()
    results = tmp_path / "results"
    args = ["--repo", str(repo), "evaluate", "toy-ssl", "--task", "toy", "--quiet"]
    assert main([*args, "--results", str(results)]) == 0
    first = json.loads((results / "toy-ssl" / "toy.json").read_text())["metrics"]
    shutil.rmtree(backbone)  # the original backbone is gone: the submission is self-contained
    moved = tmp_path / "elsewhere" / "toy-ssl"
    shutil.copytree(out, moved)
    again = tmp_path / "again"
    cmd = ["--repo", str(repo), "evaluate", str(moved), "--task", "toy", "--quiet"]
    assert main([*cmd, "--results", str(again)]) == 0
    assert json.loads((again / "toy-ssl" / "toy.json").read_text())["metrics"] == first


def test_missing_encoder_folder_and_mismatched_weights_are_one_line_errors(repo, tmp_path, capsys):
    gone = tmp_path / "no-such-backbone"
    model = {"encoder": {"type": "ssl", "source": str(gone)}, "head": {"hidden": 8}}
    path = config_file(repo, name="toy-gone", model=model)
    assert main(["--repo", str(repo), "train", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(gone) in err and "not found" in err, err
    # weights trained with one config, served with another: named before anything is scored
    cfg = load_train_config(config_file(repo, epochs=1))
    out = train(cfg, repo / "submissions" / "toy-bt", repo=repo, progress=False)
    spec = (out / "submission.yaml").read_text().replace("n_mels: 16", "n_mels: 24")
    (out / "submission.yaml").write_text(spec)
    args = ["--repo", str(repo), "evaluate", "toy-bt", "--task", "toy", "--quiet"]
    assert main([*args, "--results", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "model.safetensors: tensor" in err and "shape" in err, err


def test_a_killed_training_process_resumes_to_the_same_weights(repo, tmp_path):
    """A real SIGKILL of `mosrm train` right after a checkpoint, then the same command again."""
    import signal
    import time

    path = config_file(repo, name="toy-kill", checkpoint_every=2, epochs=2)
    cfg = load_train_config(path)
    whole = train(cfg, tmp_path / "whole" / "toy-kill", repo=repo, progress=False)
    out = tmp_path / "killed" / "toy-kill"
    cmd = [
        sys.executable,
        "-m",
        "benchmark.cli",
        "--repo",
        str(repo),
        "train",
        str(path),
        "--quiet",
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(
        cmd, env={**os.environ}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    state = out / "checkpoint" / "state.json"
    deadline = time.monotonic() + 120
    while not state.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert state.exists() and proc.returncode == -signal.SIGKILL
    assert json.loads(state.read_text())["steps"] < 2 * 15  # killed mid-run, not at the end
    done = subprocess.run(cmd, env={**os.environ}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    a, b = _weights(whole), _weights(out)
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def test_every_rank_resumes_its_own_random_stream(tmp_path):
    """Each rank draws its own dropout masks, so a checkpoint keeps each rank's generator state
    (not rank 0's for all), tied to the checkpoint's step count; older files are cleared."""
    import torch

    from benchmark.baselines.checkpoints import _load_checkpoint
    from benchmark.baselines.train import Dist, _checkpoint

    class Alone(Dist):  # a rank of a two-process job, without a process group
        def barrier(self) -> None:
            pass

    model = torch.nn.Linear(2, 1)
    opt = torch.optim.AdamW(model.parameters())
    ckpt = tmp_path / "checkpoint"
    expected = {}
    for steps in (3, 6):
        for rank in (0, 1):
            torch.manual_seed(100 * steps + rank)
            state = {"config_sha256": "c", "steps": steps, "seconds": 0.0}
            _checkpoint(ckpt, model, opt, state, 0.0, Alone(rank, 2))
            expected[rank] = torch.rand(4)  # what this rank draws next
    assert sorted(p.name for p in ckpt.glob("rng-*")) == [
        "rng-rank0-step6.safetensors",
        "rng-rank1-step6.safetensors",
    ]
    for rank in (1, 0):
        torch.manual_seed(12345)  # a fresh process
        assert _load_checkpoint(ckpt, model, opt, "c", rank)["steps"] == 6
        assert torch.equal(torch.rand(4), expected[rank])


def test_a_kill_between_the_tensor_and_record_writes_keeps_the_last_checkpoint(
    tmp_path, monkeypatch
):
    """`state.json` commits a checkpoint: new tensors written without their record (a kill in
    between) must not be paired with the previous record."""
    import torch

    import benchmark.atomic as atomic
    from benchmark.baselines.checkpoints import _load_checkpoint, _save_checkpoint

    model = torch.nn.Linear(2, 1)
    opt = torch.optim.AdamW(model.parameters())
    ckpt = tmp_path / "checkpoint"
    _save_checkpoint(ckpt, model, opt, {"config_sha256": "c", "steps": 2})
    at_two = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.weight += 1.0

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # stands for SIGKILL: the record is never written

    monkeypatch.setattr(atomic, "atomic_write_text", killed)
    with pytest.raises(KeyboardInterrupt):
        _save_checkpoint(ckpt, model, opt, {"config_sha256": "c", "steps": 4})
    monkeypatch.undo()
    fresh = torch.nn.Linear(2, 1)
    record = _load_checkpoint(ckpt, fresh, torch.optim.AdamW(fresh.parameters()), "c")
    assert record["steps"] == 2
    assert all(torch.equal(fresh.state_dict()[k], at_two[k]) for k in at_two)
