"""The one training loop of the reference baselines, and `mosrm train`'s dispatch to recipes.

A recipe (scalar BT/MSE here, DPO in `dpo_train`, the GRPO judge in `grpo_train`) builds its model
and describes one or more `Stage`s: what a batch is (pair or clip rows), its loss, its dev metric.
`fit` runs a stage the same way for every recipe, on CPU or GPU, in one process or many: under
`torchrun` it is plain DDP (gloo on CPU, NCCL on CUDA); every rank derives the same global batches
from (seed, stage, epoch) and trains on its slice, so two processes with batch b follow one process
with batch 2b. State is saved as safetensors (model, optimizer, RNG) plus a JSON record at each
checkpoint, and a run resumes on the batch after the last checkpoint, ending with the weights an
uninterrupted run ends with. A stage ends with its best-on-dev weights loaded (the latest when it
has no dev metric), which is what the next stage starts from and what the recipe publishes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from benchmark.baselines.checkpoints import (
    _load_checkpoint,
    _rng_file,
    _save_checkpoint,
    _save_rng,
    load_weights,
    save_weights,
)
from benchmark.baselines.train_config import TrainConfig
from benchmark.baselines.train_data import TaskData, epoch_plan
from benchmark.progress import bar as progress_bar

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import torch

CHECKPOINT = "checkpoint"

RECIPES = {
    "bt": "benchmark.baselines.scalar_train:run",
    "mse": "benchmark.baselines.scalar_train:run",
    "dpo": "benchmark.baselines.dpo_train:run",
    "grpo": "benchmark.baselines.grpo_train:run",
}
"""`TrainConfig.loss` -> the recipe that trains it (module:function taking a `Run`)."""


@dataclass
class Dist:
    """Where this process stands in a torchrun job (rank 0 of 1 when run alone)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: str) -> Dist:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        return cls(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def mean(self, value: float, device: torch.device) -> float:
        """The mean of a float over ranks (itself when alone)."""
        if self.world == 1:
            return value
        import torch
        import torch.distributed as tdist

        t = torch.tensor([value], dtype=torch.float64, device=device)
        tdist.all_reduce(t)
        return float(t) / self.world

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank."""
        if self.world == 1:
            return obj
        import torch.distributed as tdist

        box = [obj]
        tdist.broadcast_object_list(box, src=0)
        return box[0]


def _device(config: TrainConfig, dist: Dist) -> torch.device:
    import torch

    name = config.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and dist.world > 1:
        name = f"cuda:{dist.local_rank}"
    return torch.device(name)


@dataclass(frozen=True)
class StepInfo:
    """Where a loss call stands: recipes that sample (GRPO) seed their draws from it, so a resumed
    run draws exactly what an uninterrupted one would have."""

    stage: str
    epoch: int
    step: int  # index of the batch in its epoch
    iteration: int  # optimizer step on this batch (0 .. Stage.iterations - 1)
    rank: int
    world: int
    seed: int


@dataclass
class Stage:
    """One phase of a recipe, run by `fit`.

    `loss(net, rows, info)` gets this rank's (task index, row) slice of the global batch and
    returns the mean loss (optionally with floats to log: they are averaged over ranks and kept in
    the curve). `net` is the DDP wrapper when distributed: call it for anything that needs
    gradients. `dev(model)` runs on rank 0 and returns {"accuracy": float | None, "n": int,
    "by_bin": {...}}; the best accuracy's weights are what the stage ends with. `iterations` > 1
    takes that many optimizer steps on each batch (GRPO's μ).
    """

    name: str
    unit: Literal["pair", "clip"]
    epochs: int
    batch_size: int
    lr: float
    loss: Callable[[Any, list[tuple[int, int]], StepInfo], Any]
    dev: Callable[[Any], dict[str, Any]] | None = None
    weight_decay: float = 0.0
    per_task: int | None = None
    patience: int | None = None
    iterations: int = 1
    checkpoint_every: int = 0
    find_unused_parameters: bool = False


def main_stage(
    config: TrainConfig,
    *,
    name: str,
    unit: Literal["pair", "clip"],
    loss: Callable[[Any, list[tuple[int, int]], StepInfo], Any],
    dev: Callable[[Any], dict[str, Any]] | None,
    iterations: int = 1,
) -> Stage:
    """The stage that a config's common fields describe (epochs, batch, lr, patience, ...): every
    recipe's last stage; earlier stages take their settings from the recipe's own block."""
    return Stage(
        name=name,
        unit=unit,
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        weight_decay=config.weight_decay,
        per_task=config.per_task_per_epoch,
        patience=config.patience,
        iterations=iterations,
        checkpoint_every=config.checkpoint_every,
        loss=loss,
        dev=dev,
    )


@dataclass
class Run:
    """Everything a recipe needs: the config, the data, where this process stands, where to write."""

    config: TrainConfig
    out: Path
    tasks: list[TaskData]
    dist: Dist
    device: torch.device
    progress: bool = True
    config_path: str | Path | None = None
    stop_after_steps: int | None = None
    steps_done: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def bf16(self) -> bool:
        return self.config.bf16 and self.device.type == "cuda"

    def stopped(self) -> bool:
        return self.stop_after_steps is not None and self.steps_done >= self.stop_after_steps

    def checkpoint_dir(self, stage: str | None = None) -> Path:
        return self.out / CHECKPOINT if stage is None else self.out / CHECKPOINT / stage


# -- checkpoints -----------------------------------------------------------------------------------


# -- the loop --------------------------------------------------------------------------------------


def fit(
    run: Run,
    stage: Stage,
    model: Any,
    *,
    save_best: Callable[[Any, Path], object] = save_weights,
) -> dict[str, Any] | None:
    """Train `model` through `stage` (or resume it, or skip it when its checkpoint says finished).

    Returns the stage's record (curve, best dev, steps, seconds), or None when `run` was told to
    stop early (as a kill would). The model ends holding the stage's best weights.
    """
    import torch

    dist, device = run.dist, run.device
    ckpt = run.checkpoint_dir(stage.name if stage.name != "main" else None)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=stage.lr, weight_decay=stage.weight_decay)
    config_sha = run.config.sha256()
    seed = run.config.seed
    stage_seed = seed if stage.name == "main" else hash_seed(seed, stage.name)
    state = _load_checkpoint(ckpt, model, optimizer, config_sha, dist.rank)
    if state is None:
        # a fresh stage starts from its own seed, whatever ran before it in this process (a
        # resumed run may have skipped or rebuilt things that drew from the RNG); a checkpoint
        # restores the RNG it saved instead
        torch.manual_seed(stage_seed)
    state = state or {
        "config_sha256": config_sha,
        "stage": stage.name,
        "epoch": 0,
        "step_in_epoch": 0,
        "steps": 0,
        "curve": [],
        "best": None,
        "stale_epochs": 0,
        "seconds": 0.0,
        "finished": False,
    }
    best_path = ckpt / "best.safetensors"
    if state.get("finished"):
        load_weights(model, best_path)
        return state
    net: Any = model
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=stage.find_unused_parameters,
        )
    started = time.perf_counter() - float(state["seconds"])
    while state["epoch"] < stage.epochs:
        plan = epoch_plan(
            run.tasks,
            seed=stage_seed,
            epoch=state["epoch"],
            batch=stage.batch_size * dist.world,
            unit=stage.unit,
            per_task=stage.per_task,
        )
        bar = progress_bar(
            len(plan),
            f"{stage.name} epoch {state['epoch'] + 1}/{stage.epochs}",
            "step",
            enabled=run.progress and dist.main,
            initial=state["step_in_epoch"],
        )
        net.train()
        for step in range(state["step_in_epoch"], len(plan)):
            rows = plan[step][dist.rank * stage.batch_size : (dist.rank + 1) * stage.batch_size]
            for it in range(stage.iterations):
                info = StepInfo(stage.name, state["epoch"], step, it, dist.rank, dist.world, seed)
                autocast = (
                    torch.autocast("cuda", dtype=torch.bfloat16)
                    if run.bf16
                    else contextlib.nullcontext()
                )
                with autocast:
                    out = stage.loss(net, rows, info)
                loss, extras = out if isinstance(out, tuple) else (out, {})
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                row = {"epoch": state["epoch"], "step": state["steps"]}
                row["loss"] = dist.mean(float(loss.detach()), device)
                for key, value in sorted(extras.items()):
                    row[key] = dist.mean(float(value), device)
                state["curve"].append(row)
                state["steps"] += 1
            state["step_in_epoch"] = step + 1
            run.steps_done += 1
            bar.update(1)
            bar.set_postfix(loss=f"{state['curve'][-1]['loss']:.4f}")
            batches = state["steps"] // stage.iterations
            if stage.checkpoint_every and batches % stage.checkpoint_every == 0:
                _checkpoint(ckpt, model, optimizer, state, started, dist)
            if run.stopped():
                bar.close()
                return None
        bar.close()
        _end_epoch(stage, model, state, best_path, dist, save_best)
        state["epoch"] += 1
        state["step_in_epoch"] = 0
        stop = stage.patience is not None and state["stale_epochs"] >= stage.patience
        if state["epoch"] >= stage.epochs or stop:
            state["finished"] = True
        _checkpoint(ckpt, model, optimizer, state, started, dist)
        if stop:
            break
    load_weights(model, best_path)
    run.seconds[stage.name] = float(state["seconds"])
    return state


def hash_seed(seed: int, label: str) -> int:
    """A per-stage seed: stages of one recipe draw independent batch orders."""
    import hashlib

    text = f"{seed}\x1f{label}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def _checkpoint(
    ckpt: Path, model: Any, optimizer: Any, state: dict[str, Any], started: float, dist: Dist
) -> None:
    """Every rank saves its generators, then rank 0 the model, optimizer and record; older
    per-rank generator files go once the new record is written."""
    state["seconds"] = time.perf_counter() - started
    steps = int(state["steps"])
    _save_rng(ckpt, dist.rank, steps)
    dist.barrier()
    if dist.main:
        _save_checkpoint(ckpt, model, optimizer, state)
    dist.barrier()
    for old in ckpt.glob(f"rng-rank{dist.rank}-step*.safetensors"):
        if old != _rng_file(ckpt, dist.rank, steps):
            old.unlink(missing_ok=True)


def _end_epoch(
    stage: Stage,
    model: Any,
    state: dict[str, Any],
    best_path: Path,
    dist: Dist,
    save_best: Callable[[Any, Path], object],
) -> None:
    """Dev accuracy (rank 0 computes, everyone learns it) and the best weights so far.

    Without a dev metric (or dev pairs) there is nothing to select on: the latest weights are kept.
    """
    import torch

    model.eval()
    dev: dict[str, Any] | None = None
    if dist.main:
        if stage.dev is None:
            dev = {"accuracy": None, "n": 0, "by_bin": {}}
        else:
            with torch.inference_mode():
                dev = stage.dev(model)
    dev = dist.broadcast(dev)
    assert dev is not None
    state["curve"].append(
        {"epoch": state["epoch"], "step": state["steps"], "dev_accuracy": dev["accuracy"]}
    )
    better = (
        dev["accuracy"] is None
        or state["best"] is None
        or dev["accuracy"] > state["best"]["accuracy"]
    )
    if better:
        state["best"] = {**dev, "epoch": state["epoch"]}
        state["stale_epochs"] = 0
        if dist.main:
            save_best(model, best_path)
    else:
        state["stale_epochs"] += 1
    dist.barrier()


# -- entry point and shared outputs ----------------------------------------------------------------


def _prepare_tasks(config: TrainConfig, repo: Path) -> list[TaskData]:
    from benchmark.data.tasks import workspace_task
    from benchmark.pairs.prepare import prepare

    out = []
    for name in config.tasks:
        task = workspace_task(repo, name)
        prepared = prepare(task, reuse=True)
        out.append(TaskData.of(prepared, config.train_split, config.dev_split))
    return out


def train(
    config: TrainConfig,
    out_dir: str | Path,
    *,
    repo: str | Path,
    config_path: str | Path | None = None,
    progress: bool = True,
    stop_after_steps: int | None = None,
) -> Path | None:
    """Train (or resume) and write the submission folder `out_dir`; returns it (rank 0).

    `stop_after_steps` ends the process's work after that many batches, as a kill would (tests
    use it to interrupt a run right after a checkpoint).
    """
    import importlib

    import torch

    dist = Dist.from_env(config.device)
    device = _device(config, dist)
    torch.manual_seed(config.seed)
    torch.use_deterministic_algorithms(device.type == "cpu", warn_only=True)
    run = Run(
        config=config,
        out=Path(out_dir),
        tasks=_prepare_tasks(config, Path(repo)),
        dist=dist,
        device=device,
        progress=progress,
        config_path=config_path,
        stop_after_steps=stop_after_steps,
    )
    module, _, func = RECIPES[config.loss].partition(":")
    folder = getattr(importlib.import_module(module), func)(run)
    if run.stopped():
        return None
    dist.barrier()  # rank 0 has written the submission folder
    return folder if dist.main else None


def write_curve(out: Path, stages: list[tuple[str, list[dict[str, Any]]]], title: str) -> None:
    """`curve.csv` (one row per step or dev evaluation; a `stage` column when there are several)
    and `curve.png`."""
    from benchmark.atomic import atomic_write_text
    from benchmark.baselines.plots import plot_curve

    multi = len(stages) > 1
    extras = sorted(
        {k for _, c in stages for r in c for k in r} - {"epoch", "step", "loss", "dev_accuracy"}
    )
    head = ["epoch", "step", "loss", "dev_accuracy", *extras]
    rows = [",".join((["stage"] if multi else []) + head)]
    offset = 0
    merged: list[dict[str, Any]] = []
    for name, curve in stages:
        for r in curve:
            cells = [str(r["epoch"]), str(r["step"] + offset)]
            for key in head[2:]:
                v = r.get(key)
                cells.append("" if v is None else f"{v:.6f}")
            rows.append(",".join(([name] if multi else []) + cells))
            merged.append({**r, "step": r["step"] + offset})
        offset += max((r["step"] for r in curve), default=-1) + 1
    atomic_write_text(out / "curve.csv", "\n".join(rows) + "\n")
    plot_curve(merged, out / "curve.png", title=title)


def hardware() -> str:
    import torch

    text = f"{platform.machine()}, {os.cpu_count()} CPU cores"
    if torch.cuda.is_available():
        text += f", {torch.cuda.get_device_name(0)}"
    return text


def write_common(run: Run, spec: dict[str, Any], card: list[str]) -> None:
    """`submission.yaml`, `train-config.json` and `card.md` (the recipe's lines first, then where
    the recipe came from and what it ran on)."""
    import yaml

    from benchmark.atomic import atomic_write_text
    from benchmark.baselines.train_data import describe

    config = run.config
    atomic_write_text(
        run.out / "submission.yaml", yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
    )
    atomic_write_text(
        run.out / "train-config.json",
        json.dumps(config.model_dump(mode="json"), indent=2, sort_keys=True) + "\n",
    )
    import torch

    seconds = sum(run.seconds.values())
    # the card is part of the folder's fingerprint: it says what the run was made on and with,
    # never how long it took (that is logged), so retraining on the same machine and software
    # re-creates the folder byte for byte
    log.info("%s: trained in %.1f s on %s", config.name, seconds, hardware())
    lines = [
        *card,
        f"- Trained on: {', '.join(f'{t}:{config.train_split}' for t in config.tasks)} "
        f"({json.dumps(describe(run.tasks), sort_keys=True)})",
        f"- Config sha256: `{config.sha256()}`"
        + (f" (from `{run.config_path}`)" if run.config_path else ""),
        f"- Trained on {hardware()}, {run.dist.world} process(es), torch {torch.__version__}",
    ]
    atomic_write_text(run.out / "card.md", "\n".join(lines) + "\n")


def dev_pairs_accuracy(
    run: Run, margin: Callable[[list[tuple[int, int]]], Any], batch: int
) -> dict[str, Any]:
    """Strict accuracy on every task's dev pairs, overall and per ΔMOS bin (model selection).

    `margin(rows)` returns, per dev pair row, a number > 0 when the model prefers the chosen clip.
    """
    correct: list[np.ndarray] = []
    bins: list[np.ndarray] = []
    for k, t in enumerate(run.tasks):
        n = t.dev.get("chosen", np.empty(0)).size
        for i in range(0, n, batch):
            rows = [(k, r) for r in range(i, min(n, i + batch))]
            m = margin(rows)
            correct.append(np.asarray(m.detach().cpu() if hasattr(m, "detach") else m) > 0)
            bins.append(t.dev["delta_bin"][i : i + batch])
    if not correct:
        return {"accuracy": None, "n": 0, "by_bin": {}}
    c, b = np.concatenate(correct), np.concatenate(bins)
    return {
        "accuracy": float(c.mean()),
        "n": int(c.size),
        "by_bin": {str(k): float(c[b == k].mean()) for k in sorted(set(b.tolist()))},
    }
