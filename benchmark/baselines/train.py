"""The training loop of the reference baselines (BT and MSE scalar reward models).

One loop for CPU and GPU, one process or many: under `torchrun` it is plain DDP (gloo on CPU, NCCL
on CUDA); every rank derives the same global batches from (seed, epoch) and trains on its slice, so
two processes with batch b follow one process with batch 2b. State is saved as safetensors (model,
optimizer, RNG) plus a JSON record at each checkpoint, and a run resumes on the batch after the last
checkpoint, ending with the weights an uninterrupted run ends with. The output is a ready
submission folder: `submission.yaml` naming `benchmark.baselines.scalar:build`, the best-on-dev
weights, the training curve (CSV and PNG) and a model card.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmark.baselines.train_config import TrainConfig
from benchmark.baselines.train_data import (
    AudioStore,
    TaskData,
    clip_batch,
    describe,
    epoch_plan,
    pair_batch,
)
from benchmark.errors import MosrmError

if TYPE_CHECKING:
    import torch

CHECKPOINT = "checkpoint"


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


def _device(config: TrainConfig, dist: Dist) -> torch.device:
    import torch

    name = config.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and dist.world > 1:
        name = f"cuda:{dist.local_rank}"
    return torch.device(name)


def loss_of(
    model: Any,
    config: TrainConfig,
    store: AudioStore,
    tasks: list[TaskData],
    rows: list[tuple[int, int]],
    device: torch.device,
) -> torch.Tensor:
    """The batch loss (mean over its rows): BT on pairs, MSE to MOS on clips."""
    import torch

    from benchmark.baselines.losses import bradley_terry_loss, mse_loss

    if config.loss == "bt":
        chosen, rejected = pair_batch(store, tasks, rows)
        r_c = model(chosen.waveforms.to(device), chosen.lengths.to(device))
        r_r = model(rejected.waveforms.to(device), rejected.lengths.to(device))
        return bradley_terry_loss(r_c.float(), r_r.float())
    batch, mos = clip_batch(store, tasks, rows)
    pred = model(batch.waveforms.to(device), batch.lengths.to(device))
    return mse_loss(pred.float(), torch.from_numpy(mos).to(device))


def dev_accuracy(
    model: Any, store: AudioStore, tasks: list[TaskData], device: torch.device, batch: int
) -> dict[str, Any]:
    """Strict accuracy on every task's dev pairs, overall and per ΔMOS bin (model selection)."""
    import torch

    correct: list[np.ndarray] = []
    bins: list[np.ndarray] = []
    with torch.inference_mode():
        for k, t in enumerate(tasks):
            n = t.dev.get("chosen", np.empty(0)).size
            for i in range(0, n, batch):
                rows = [(k, r) for r in range(i, min(n, i + batch))]
                chosen, rejected = pair_batch(store, tasks, rows, split="dev")
                r_c = model(chosen.waveforms.to(device), chosen.lengths.to(device))
                r_r = model(rejected.waveforms.to(device), rejected.lengths.to(device))
                correct.append((r_c > r_r).cpu().numpy())
                bins.append(t.dev["delta_bin"][i : i + batch])
    if not correct:
        return {"accuracy": None, "n": 0, "by_bin": {}}
    c, b = np.concatenate(correct), np.concatenate(bins)
    return {
        "accuracy": float(c.mean()),
        "n": int(c.size),
        "by_bin": {str(k): float(c[b == k].mean()) for k in sorted(set(b.tolist()))},
    }


# -- checkpoints -----------------------------------------------------------------------------------


def _save_checkpoint(folder: Path, model: Any, optimizer: Any, state: dict[str, Any]) -> None:
    """Model, optimizer tensors and RNG as safetensors, the rest as JSON; written atomically."""
    import torch
    from safetensors.torch import save_file

    from benchmark.atomic import atomic_path, atomic_write_text

    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    for idx, per_param in opt["state"].items():
        for name, value in per_param.items():
            t = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            tensors[f"optim.{idx}.{name}"] = t.detach().cpu().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    with atomic_path(folder / "state.safetensors") as tmp:
        save_file(tensors, str(tmp))
    record = {**state, "param_groups": opt["param_groups"]}
    atomic_write_text(folder / "state.json", json.dumps(record, sort_keys=True, indent=1) + "\n")


def _load_checkpoint(
    folder: Path, model: Any, optimizer: Any, config: TrainConfig
) -> dict[str, Any] | None:
    import torch
    from safetensors.torch import load_file

    if not (folder / "state.json").is_file() or not (folder / "state.safetensors").is_file():
        return None
    record = json.loads((folder / "state.json").read_text())
    if record.get("config_sha256") != config.sha256():
        raise MosrmError(
            f"{folder}: a checkpoint of a different config; remove it or use another output folder"
        )
    tensors = load_file(str(folder / "state.safetensors"))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    opt_state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            opt_state.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": opt_state, "param_groups": record.pop("param_groups")})
    torch.set_rng_state(tensors["rng.torch"])
    return record


# -- the loop --------------------------------------------------------------------------------------


def _prepare_tasks(config: TrainConfig, repo: Path) -> list[TaskData]:
    from benchmark.pipeline import prepare
    from benchmark.tasks import get_task

    out = []
    for name in config.tasks:
        task = get_task(repo / "tasks", name)
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

    `stop_after_steps` ends the process's work after that many optimizer steps, as a kill would
    (tests use it to interrupt a run right after a checkpoint).
    """
    import torch
    from tqdm import tqdm

    from benchmark.baselines.scalar import new_model

    out = Path(out_dir)
    dist = Dist.from_env(config.device)
    device = _device(config, dist)
    torch.manual_seed(config.seed)
    torch.use_deterministic_algorithms(device.type == "cpu", warn_only=True)
    tasks = _prepare_tasks(config, Path(repo))
    model = new_model(config.model).to(device)
    net: Any = model
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    store = AudioStore(tasks, model.sample_rate, config.max_seconds)
    ckpt = out / CHECKPOINT
    state = _load_checkpoint(ckpt, model, optimizer, config) or {
        "config_sha256": config.sha256(),
        "epoch": 0,
        "step_in_epoch": 0,
        "steps": 0,
        "curve": [],
        "best": None,
        "stale_epochs": 0,
        "seconds": 0.0,
    }
    unit = "pair" if config.loss == "bt" else "clip"
    started = time.perf_counter() - float(state["seconds"])
    bf16 = config.bf16 and device.type == "cuda"
    done = 0
    while state["epoch"] < config.epochs:
        plan = epoch_plan(
            tasks,
            seed=config.seed,
            epoch=state["epoch"],
            batch=config.batch_size * dist.world,
            unit=unit,
            per_task=config.per_task_per_epoch,
        )
        bar = tqdm(
            total=len(plan),
            initial=state["step_in_epoch"],
            disable=not (progress and dist.main),
            desc=f"epoch {state['epoch'] + 1}/{config.epochs}",
            unit="step",
        )
        net.train()
        for step in range(state["step_in_epoch"], len(plan)):
            rows = plan[step][dist.rank * config.batch_size : (dist.rank + 1) * config.batch_size]
            with torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
                loss = loss_of(net, config, store, tasks, rows, device)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            value = float(loss.detach())
            if dist.world > 1:
                import torch.distributed as tdist

                t = torch.tensor([value], device=device)
                tdist.all_reduce(t)
                value = float(t) / dist.world
            state["curve"].append({"epoch": state["epoch"], "step": state["steps"], "loss": value})
            state["steps"] += 1
            state["step_in_epoch"] = step + 1
            done += 1
            bar.update(1)
            bar.set_postfix(loss=f"{value:.4f}")
            if config.checkpoint_every and state["steps"] % config.checkpoint_every == 0:
                _checkpoint(ckpt, model, optimizer, state, started, dist)
            if stop_after_steps is not None and done >= stop_after_steps:
                bar.close()
                return None
        bar.close()
        _end_epoch(config, model, store, tasks, device, state, out, dist)
        state["epoch"] += 1
        state["step_in_epoch"] = 0
        _checkpoint(ckpt, model, optimizer, state, started, dist)
        if config.patience is not None and state["stale_epochs"] >= config.patience:
            break
    if not dist.main:
        dist.barrier()
        return None
    folder = _write_submission(config, out, tasks, state, config_path, dist)
    dist.barrier()
    return folder


def _checkpoint(
    ckpt: Path, model: Any, optimizer: Any, state: dict[str, Any], started: float, dist: Dist
) -> None:
    state["seconds"] = time.perf_counter() - started
    if dist.main:
        _save_checkpoint(ckpt, model, optimizer, state)
    dist.barrier()


def _end_epoch(
    config: TrainConfig,
    model: Any,
    store: AudioStore,
    tasks: list[TaskData],
    device: torch.device,
    state: dict[str, Any],
    out: Path,
    dist: Dist,
) -> None:
    """Dev accuracy (rank 0 computes, everyone learns it) and the best weights so far.

    Without dev pairs there is nothing to select on: the latest weights are kept."""
    model.eval()
    dev = dev_accuracy(model, store, tasks, device, config.batch_size) if dist.main else None
    if dist.world > 1:
        import torch.distributed as tdist

        box = [dev]
        tdist.broadcast_object_list(box, src=0)
        dev = box[0]
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
            from benchmark.baselines.scalar import save

            (out / CHECKPOINT).mkdir(parents=True, exist_ok=True)
            save(model, out / CHECKPOINT / "best.safetensors")
    else:
        state["stale_epochs"] += 1


def _ship_backbone(model: dict[str, Any], out: Path) -> dict[str, Any]:
    """A local pretrained backbone is copied into the submission (`encoder/`) and named
    relatively, so the submission is self-contained and its fingerprint covers the backbone."""
    import copy
    import shutil

    cfg = copy.deepcopy(model)
    enc = cfg.get("encoder") or {}
    source = enc.get("source") if enc.get("type") == "ssl" else None
    if isinstance(source, str) and Path(source).expanduser().is_dir():
        target = out / "encoder"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(Path(source).expanduser(), target)
        enc["source"] = "encoder"
    return cfg


def _publish_weights(best: Path, dest: Path, model_config: dict[str, Any]) -> None:
    """The best weights, with the config the submission names (relative backbone) as metadata."""
    from safetensors.torch import load_file, save_file

    from benchmark.atomic import atomic_path
    from benchmark.baselines.scalar import METADATA_KEY, config_json, read_config, resolve_config

    stored = read_config(best) or {}
    merged = {**resolve_config(model_config), "seed": stored.get("seed", 0)}
    with atomic_path(dest) as tmp:
        save_file(load_file(str(best)), str(tmp), metadata={METADATA_KEY: config_json(merged)})


def _write_submission(
    config: TrainConfig,
    out: Path,
    tasks: list[TaskData],
    state: dict[str, Any],
    config_path: str | Path | None,
    dist: Dist,
) -> Path:
    """The submission folder: spec, best weights, curve CSV + PNG, card, the config itself."""

    import torch
    import yaml

    from benchmark.atomic import atomic_write_text
    from benchmark.baselines.plots import plot_curve

    model_config = _ship_backbone(config.model, out)
    _publish_weights(out / CHECKPOINT / "best.safetensors", out / "model.safetensors", model_config)
    rows = ["epoch,step,loss,dev_accuracy"]
    for r in state["curve"]:
        loss = "" if "loss" not in r else f"{r['loss']:.6f}"
        dev = "" if r.get("dev_accuracy") is None else f"{r['dev_accuracy']:.6f}"
        rows.append(f"{r['epoch']},{r['step']},{loss},{dev}")
    atomic_write_text(out / "curve.csv", "\n".join(rows) + "\n")
    plot_curve(state["curve"], out / "curve.png", title=config.name)
    spec = {
        "name": config.name,
        "display_name": config.display_name or f"{config.name} ({config.loss.upper()})",
        "kind": "scalar",
        "entry": "benchmark.baselines.scalar:build",
        "weights": "model.safetensors",
        "params": {"config": model_config},
        "training_data": [f"{t}:{config.train_split}" for t in config.tasks],
        "baseline": True,
        "description": (
            f"Reference {config.loss.upper()} reward model trained by `mosrm train` "
            f"(config sha256 {config.sha256()[:16]}); see card.md."
        ),
        "license": "Apache-2.0",
    }
    atomic_write_text(
        out / "submission.yaml", yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
    )
    atomic_write_text(
        out / "train-config.json",
        json.dumps(config.model_dump(mode="json"), indent=2, sort_keys=True) + "\n",
    )
    hardware = f"{platform.machine()}, {os.cpu_count()} CPU cores"
    if torch.cuda.is_available():
        hardware += f", {torch.cuda.get_device_name(0)}"
    best_dev = state["best"] or {}
    lines = [
        f"# {config.name}",
        "",
        f"A {'Bradley–Terry' if config.loss == 'bt' else 'MSE'} scalar reward model, trained by "
        "`mosrm train` (a reference baseline of mosrm-bench).",
        "",
        f"- Trained on: {', '.join(f'{t}:{config.train_split}' for t in config.tasks)} "
        f"({json.dumps(describe(tasks), sort_keys=True)})",
        f"- Config sha256: `{config.sha256()}`"
        + (f" (from `{config_path}`)" if config_path else ""),
        f"- Best dev accuracy: {best_dev.get('accuracy')} at epoch {best_dev.get('epoch')} "
        f"(per ΔMOS bin: {json.dumps(best_dev.get('by_bin', {}), sort_keys=True)})",
        f"- Steps: {state['steps']}, wall time {state['seconds']:.1f} s on {hardware}, "
        f"{dist.world} process(es)",
        "- Weights: `model.safetensors` (loaded with safetensors, never pickle); curve: "
        "`curve.csv`, `curve.png`.",
    ]
    atomic_write_text(out / "card.md", "\n".join(lines) + "\n")
    return out
