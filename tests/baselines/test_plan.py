"""`mosrm train CONFIG --plan`: its counts are the prepared pair files' and `epoch_plan`'s, missing
corpora are one line each with the commands that fetch them, and the micro-run measures a step."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from benchmark.baselines.plan import (
    Plan,
    StagePlan,
    format_plan,
    make_plan,
    recipe_stages,
    run_micro,
    stage_count,
)
from benchmark.baselines.train_config import TrainConfig, load_train_config
from benchmark.baselines.train_data import TaskData, epoch_plan
from benchmark.cli import main
from benchmark.data.tasks import workspace_task
from benchmark.paths import prepared_dir
from tests.baselines.train_fixture import TINY_MODEL, write_train_repo

REPO = Path(__file__).resolve().parents[2]
PAPER_TASKS = ["bvcc", "nisqa", "singmos", "somos", "tmhint_qi"]
MANUAL = {"bvcc", "tmhint_qi", "vmc23"}  # corpora whose download has manual steps


def _steps_by_epoch_plan(tasks: list[TaskData], stage: StagePlan, seed: int = 0) -> int:
    """Optimizer steps of a stage, counted by iterating the batches `fit` would iterate."""
    batches = sum(
        len(
            epoch_plan(
                tasks,
                seed=seed,
                epoch=e,
                batch=stage.batch_size,
                unit=stage.unit,
                per_task=stage.per_task_setting,
            )
        )
        for e in range(stage.epochs)
    )
    return batches * stage.iterations


def _fake_task(name: str, pairs: int, clips: int) -> TaskData:
    ids = np.array([f"{name}-{i}" for i in range(max(clips, 2))], dtype=object)
    return TaskData(
        name=name,
        audio_base=Path("."),
        paths={},
        mos={},
        train={
            "chosen": ids[np.arange(pairs) % ids.size],
            "rejected": ids[(np.arange(pairs) + 1) % ids.size],
            "delta_bin": np.zeros(pairs, dtype=np.int64),
        },
        train_clips=ids[:clips],
    )


def test_stage_count_is_what_epoch_plan_yields():
    rng = np.random.default_rng(0)
    for trial in range(40):
        k = int(rng.integers(1, 4))
        tasks = [
            _fake_task(f"t{i}", int(rng.integers(1, 60)), int(rng.integers(1, 40)))
            for i in range(k)
        ]
        unit = "pair" if trial % 2 else "clip"
        batch = int(rng.integers(1, 20))
        per_task = None if trial % 3 == 0 else int(rng.integers(1, 50))
        sizes = [t.train["chosen"].size if unit == "pair" else t.train_clips.size for t in tasks]
        count = stage_count(sizes, batch=batch, epochs=2, per_task=per_task, iterations=3)
        batches = len(epoch_plan(tasks, seed=1, epoch=0, batch=batch, unit=unit, per_task=per_task))
        assert count.batches == batches, (sizes, batch, per_task)
        assert count.steps == 2 * 3 * batches
        assert count.examples == count.per_task * k


def test_demo_plan_counts_are_the_pair_files_and_the_steps_epoch_plans(tmp_path):
    """The shipped demo (synthesised here) next to a small CSV task: per split the plan shows the
    rows of the prepared pair files, and every stage of every recipe takes the steps `fit` would
    iterate (the smaller task sets each epoch's draws per task)."""
    repo = write_train_repo(tmp_path)
    base = load_train_config(REPO / "training" / "demo-bt.yaml")
    config = base.model_copy(update={"tasks": ["demo", "toy"], "per_task_per_epoch": None})
    plan = make_plan(config, repo, micro_run=False)
    assert not plan.not_ready, [t.problem for t in plan.tasks]
    for t in plan.tasks:
        files = sorted(prepared_dir(t.name).glob("pairs-*.parquet"))
        on_disk = {p.stem.removeprefix("pairs-"): pq.read_table(p).num_rows for p in files}
        shown = {s.split: s.pairs for s in t.splits if s.pairs is not None}
        assert shown == on_disk and on_disk, t.name
        assert all(s.hours is not None and s.hours > 0 for s in t.splits)
    toy = next(t for t in plan.tasks if t.name == "toy")
    asked = sum(int(n) for n in workspace_task(repo, "toy").spec.pairs["dev"].values())
    # a shortfall: the counts are the files', not what the task file asks for
    assert next(s.pairs for s in toy.splits if s.split == "dev") < asked
    demo = next(t for t in plan.tasks if t.name == "demo")
    assert {s.split: s.role for s in demo.splits} == {
        "train": "train",
        "dev": "dev",
        "test": "test",
    }
    assert demo.prepared is not None
    clips = demo.prepared.clips
    train_hours = sum(
        d for s, d in zip(clips["split"].to_pylist(), clips["duration"].to_pylist(), strict=True)
        if s == "train"
    ) / 3600  # fmt: skip
    assert next(s.hours for s in demo.splits if s.split == "train") == pytest.approx(train_hours)

    data = [t.data for t in plan.tasks if t.data is not None]
    assert [d.name for d in data] == ["demo", "toy"]
    toy_pairs = int(data[1].train["chosen"].size)
    (main_stage,) = plan.stages
    assert main_stage.count.per_task == toy_pairs < int(data[0].train["chosen"].size)
    assert main_stage.steps == _steps_by_epoch_plan(data, main_stage) > 0
    text = format_plan(plan)
    for t in plan.tasks:  # each split's row: split, role, clips, pairs, hours
        for s in t.splits:
            row = rf"\n +{s.split} +{s.role} +{s.clips} +{s.pairs} +{s.hours:.2f}\n"
            assert re.search(row, text), (t.name, s)
    assert f"total: {plan.steps_per_model} optimizer steps per model\n" in text

    for recipe in ("demo-mse", "demo-dpo", "demo-grpo"):
        cfg = load_train_config(REPO / "training" / f"{recipe}.yaml")
        cfg = cfg.model_copy(update={"tasks": ["demo", "toy"]})
        stages, _ = recipe_stages(cfg, data)
        assert len(stages) == (1 if recipe == "demo-mse" else 2)
        for stage in stages:
            assert stage.steps == _steps_by_epoch_plan(data, stage) > 0, (recipe, stage.name)

    # one model per seed: three seeds triple the steps and the time, and say so
    three = config.model_copy(update={"seeds": [0, 1, 2]})
    timed = dataclasses.replace(plan, config=three)
    timed.stages = [dataclasses.replace(s, seconds_per_step=0.5) for s in plan.stages]
    assert timed.models == 3 and len(three.per_seed()) == 3
    assert timed.total_steps == 3 * plan.steps_per_model
    assert timed.total_seconds == pytest.approx(3 * 0.5 * plan.steps_per_model)
    text = format_plan(timed)
    assert f"x 3 seeds = {3 * plan.steps_per_model} (one model per seed)" in text
    assert "3 models (seeds 0, 1, 2)" in text


def test_missing_corpora_are_one_line_each_with_their_download_step(tmp_path, capsys):
    """A paper-like config on a machine with none of its corpora: exit 3, no traceback, one line
    per task naming where it looked and how to get it; the hub SSL encoder is not downloaded."""
    cfg = {
        "name": "paper-like",
        "tasks": PAPER_TASKS,
        "out_of_domain": ["vmc23"],
        "loss": "bt",
        "seeds": [0, 1, 2],
        "model": {
            "encoder": {
                "type": "ssl",
                "source": "microsoft/wavlm-base-plus",
                "revision": "0" * 40,
                "sha256": {"pytorch_model.bin": "1" * 64},
            }
        },
    }
    path = tmp_path / "paper-like.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["--workspace", str(tmp_path / "ws"), "train", str(path), "--plan"]) == 3
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    lines = captured.out.splitlines()
    for name in [*PAPER_TASKS, "vmc23"]:
        mine = [line for line in lines if f" {name} (" in line]
        assert len(mine) == 1, (name, mine)
        line = mine[0]
        assert line.strip().startswith(f"missing: {name} (")
        assert f"no data at {os.environ['MOSRM_HOME']}/data/" in line  # the test's own home
        assert f"`mosrm download {name}`" in line
        assert f"`mosrm prepare {name} --data-root " in line
        assert (f"`mosrm download {name} --instructions`" in line) == (name in MANUAL), line
    assert "vmc23 (out-of-domain)" in captured.out
    # steps are still planned, from the pairs the task files ask for, and say so
    total = re.search(
        r"total: (\d+) expected optimizer steps per model x 3 seeds = (\d+)", captured.out
    )
    assert total is not None and int(total[2]) == 3 * int(total[1]) > 0
    assert "micro-run skipped: SSL encoder 'microsoft/wavlm-base-plus" in captured.out
    assert "not ready: 6 task(s)" in captured.out


def test_an_unknown_task_is_a_line_not_a_crash(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"name": "c", "tasks": ["nisqa", "nope"], "loss": "mse"}))
    assert main(["train", str(path), "--plan", "--no-micro-run"]) == 3
    out = capsys.readouterr().out
    assert "error: nope (train): unknown task(s): nope" in out
    assert "missing: nisqa (train)" in out and "no micro-run" in out


def _tiny(loss: str, batch: int, **extra: object) -> TrainConfig:
    model: dict[str, object] = dict(TINY_MODEL)
    if loss == "grpo":
        model = {"encoder": TINY_MODEL["encoder"], "levels": 5, "hidden": 8}
    if loss == "dpo":
        model = {"dim": 16, "layers": 1, "heads": 2, "ff": 32}
        extra = {"dpo": {"units": {"codebook_size": 8}, "ref": {"batch_size": batch}}, **extra}
    return TrainConfig.model_validate(
        {
            "name": "tiny",
            "tasks": ["none"],
            "loss": loss,
            "model": model,
            "batch_size": batch,
            "max_seconds": 0.5,
            "device": "cpu",
            **extra,
        }  # fmt: skip
    )


@pytest.mark.parametrize("loss", ["bt", "mse", "dpo", "grpo"])
def test_micro_run_measures_a_step_and_its_memory(loss):
    stages = {"bt": ["main"], "mse": ["main"], "dpo": ["ref", "dpo"], "grpo": ["sft", "grpo"]}
    memory = []
    for batch in (2, 8):
        config = _tiny(loss, batch)
        micro = run_micro(config, Plan(config, "cpu", [], []), steps=1)
        assert micro.skipped is None
        assert list(micro.seconds_per_step) == stages[loss]
        assert all(s > 0 for s in micro.seconds_per_step.values())
        assert micro.memory_bytes > 0 and "saved for backward" in micro.memory_method
        memory.append(micro.memory_bytes)
    assert memory[1] > memory[0]  # four times the batch holds more activations
    if loss == "dpo":
        assert micro.seconds_per_clip["units"] > 0


def test_micro_run_is_skipped_for_a_hub_encoder_not_on_this_machine():
    config = _tiny("bt", 2).model_copy(
        update={"model": {"encoder": {"type": "ssl", "source": "nobody/no-such-model"}}}
    )
    micro = run_micro(config, Plan(config, "cpu", [], []))
    assert micro.skipped is not None and "'nobody/no-such-model' is not on this machine" in (
        micro.skipped
    )
    assert not micro.seconds_per_step
    plan = Plan(config, "cpu", [], [], micro=micro)
    assert f"micro-run skipped: {micro.skipped}" in format_plan(plan)


def test_the_demo_config_plans_with_a_micro_run_estimate(tmp_path, capsys):
    """The CLI end to end on a small present task: exit 0, a labelled estimate of the total."""
    repo = write_train_repo(tmp_path)
    cfg = {
        "name": "toy-bt",
        "tasks": ["toy"],
        "loss": "bt",
        "model": TINY_MODEL,
        "epochs": 2,
        "batch_size": 8,
        "max_seconds": 0.5,
        "seeds": [0, 1],
    }
    path = tmp_path / "toy-bt.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["--workspace", str(repo), "train", str(path), "--plan", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "toy (train): present at" in out
    assert "estimated time:" in out and "per model x 2 seeds" in out and "(estimate:" in out
    assert "main: " in out and " s/step x " in out
    assert not (repo / "submissions" / "toy-bt").exists()  # a plan trains nothing


def test_the_documented_paper_step_counts_are_the_plans(tmp_path: Path) -> None:
    """docs/baselines.md's table of paper-config steps equals `make_plan` here (no corpus, so
    the counts the task files ask for), stage by stage and in total."""
    from benchmark.baselines.plan import make_plan
    from tests.docs_text import docs_text

    repo = Path(__file__).resolve().parents[2]
    rows = re.findall(
        r"^\| `(paper-[a-z-]+\.yaml)` \| ([^|]+) \| (\d+) \| ([\d,]+) \|$", docs_text(), re.M
    )
    assert len(rows) == len(list((repo / "training").glob("paper-*.yaml"))) == 5
    for name, stages, models, total in rows:
        plan = make_plan(load_train_config(repo / "training" / name), tmp_path, micro_run=False)
        documented = [
            (n, int(k.replace(",", ""))) for n, k in re.findall(r"(\w+) ([\d,]+)", stages)
        ]
        assert documented == [(s.name, s.steps) for s in plan.stages], name
        assert int(models) == plan.models and int(total.replace(",", "")) == plan.total_steps, name
