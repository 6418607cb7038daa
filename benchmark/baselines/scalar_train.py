"""The scalar recipe of `mosrm train`: a Bradley–Terry or MSE reward model, one stage of `fit`.

BT sees (chosen, rejected) pairs and learns σ(r_c − r_r); MSE sees clips and regresses MOS. Both
select the epoch with the best dev pair accuracy and publish a submission naming
`benchmark.baselines.scalar:build`, with the config in the weights' metadata and a local SSL
backbone shipped beside them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from benchmark.baselines.train import (
    Run,
    StepInfo,
    dev_pairs_accuracy,
    fit,
    main_stage,
    write_common,
)
from benchmark.baselines.train_data import AudioStore, clip_batch, pair_batch

if TYPE_CHECKING:
    import torch


def run(run: Run) -> Path | None:
    from benchmark.baselines.scalar import new_model, save

    config = run.config
    model = new_model(config.model).to(run.device)
    store = AudioStore(run.tasks, model.sample_rate, config.max_seconds)
    device = run.device

    def loss(net: Any, rows: list[tuple[int, int]], info: StepInfo) -> torch.Tensor:
        return loss_of(net, config.loss, store, run.tasks, rows, device)

    def dev(m: Any) -> dict[str, Any]:
        def margin(rows: list[tuple[int, int]]) -> torch.Tensor:
            chosen, rejected = pair_batch(store, run.tasks, rows, split="dev")
            r_c = m(chosen.waveforms.to(device), chosen.lengths.to(device))
            return r_c - m(rejected.waveforms.to(device), rejected.lengths.to(device))

        return dev_pairs_accuracy(run, margin, config.batch_size)

    unit: Literal["pair", "clip"] = "pair" if config.loss == "bt" else "clip"
    stage = main_stage(config, name="main", unit=unit, loss=loss, dev=dev)
    state = fit(run, stage, model, save_best=lambda m, p: save(m, p))
    if state is None or not run.dist.main:
        return None
    return _write_submission(run, state)


def loss_of(
    model: Any,
    loss: str,
    store: AudioStore,
    tasks: list[Any],
    rows: list[tuple[int, int]],
    device: torch.device,
) -> torch.Tensor:
    """The batch loss (mean over its rows): BT on pairs, MSE to MOS on clips."""
    import torch

    from benchmark.baselines.losses import bradley_terry_loss, mse_loss

    if loss == "bt":
        chosen, rejected = pair_batch(store, tasks, rows)
        r_c = model(chosen.waveforms.to(device), chosen.lengths.to(device))
        r_r = model(rejected.waveforms.to(device), rejected.lengths.to(device))
        return bradley_terry_loss(r_c.float(), r_r.float())
    batch, mos = clip_batch(store, tasks, rows)
    pred = model(batch.waveforms.to(device), batch.lengths.to(device))
    return mse_loss(pred.float(), torch.from_numpy(mos).to(device))


def _ship_backbone(model: dict[str, Any], out: Path) -> dict[str, Any]:
    """The model config with its SSL backbone shipped into the submission (`backbones.ship`)."""
    import copy

    from benchmark.baselines.backbones import ship

    cfg = copy.deepcopy(model)
    if isinstance(cfg.get("encoder"), dict):
        cfg["encoder"] = ship(cfg["encoder"], out)
    return cfg


def _write_submission(run: Run, state: dict[str, Any]) -> Path:
    """The submission folder: spec, best weights, curve CSV + PNG, card, the config itself."""
    from benchmark.baselines.scalar import publish_weights, resolve_config
    from benchmark.baselines.train import write_curve

    config, out = run.config, run.out
    model_config = _ship_backbone(config.model, out)
    best = run.checkpoint_dir() / "best.safetensors"
    publish_weights(best, out / "model.safetensors", model_config, resolve_config)
    write_curve(out, [("main", state["curve"])], title=config.name)
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
    best_dev = state["best"] or {}
    card = [
        f"# {config.name}",
        "",
        f"A {'Bradley–Terry' if config.loss == 'bt' else 'MSE'} scalar reward model, trained by "
        "`mosrm train` (a reference baseline of mosrm-bench).",
        "",
        f"- Best dev accuracy: {best_dev.get('accuracy')} at epoch {best_dev.get('epoch')} "
        f"(per ΔMOS bin: {json.dumps(best_dev.get('by_bin', {}), sort_keys=True)})",
        f"- Steps: {state['steps']}",
        "- Weights: `model.safetensors` (loaded with safetensors, never pickle); curve: "
        "`curve.csv`, `curve.png`.",
    ]
    write_common(run, spec, card)
    return out
