"""The GRPO recipe of `mosrm train` (`loss: grpo`): an SFT warm-up, then GRPO on the judge.

Stage "sft": teacher-forced cross-entropy on every train pair in both presentation orders, the
target completion being each clip's MOS quantised to the judge's K score levels
(`judge.score_levels`). Stage "grpo" (the paper: 4 rollouts per pair at temperature 1.0, one
epoch): each pair is shown in a seeded random order, G completions are sampled, rewarded
(`rewards`: plain accuracy or MOS-aware, P90 of ΔMOS per task from its train pairs), and the
policy follows the clipped objective of `grpo` with a k3 KL to the frozen SFT model. μ inner
iterations (`grpo.iterations` -> `Stage.iterations`) reuse the rollouts and their old log-probs
from the first iteration. Rollouts are drawn per pair from (seed, stage, epoch, step, task, row):
a resumed run samples what an uninterrupted one did, and a pair's samples do not depend on the rank
it landed on, so torchrun with 2 × b pairs follows one process with 2b up to float noise.

Both stages select on the dev pairs' greedy accuracy (both orders, the harness's strict rule).
Two submissions come out, each self-contained: `run.out` (the GRPO judge) and its sibling
`<name>-sft` (the SFT-only judge), so the board can show what GRPO added.

The `grpo:` block of the config (all optional):

    reward: mos_aware | accuracy      reward_weight: 0.5 (w of the MOS-aware term)
    group_size: 4 (G)                 temperature: 1.0            iterations: 1 (μ)
    beta: 0.04 (KL weight)            eps_low: 0.2                eps_high: eps_low (DAPO: 0.28)
    dapo: false (clip-higher + dynamic sampling + token-level aggregation)
    aggregation: sequence (DAPO: token)                            scale_rewards: group|batch|none
    train_encoder: true (false: GRPO tunes all but the encoder, frozen from SFT, whose pooled
        features then serve policy, old policy and reference from one encoder pass per batch)
    sft_epochs: 2   sft_lr: (lr)   sft_batch_size: (batch_size)   sft_per_task: (per_task_per_epoch)

The common fields (epochs, lr, batch_size in pairs, per_task_per_epoch, patience) are the GRPO
stage's.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from benchmark.baselines.train import (
    Run,
    Stage,
    StepInfo,
    dev_pairs_accuracy,
    fit,
    main_stage,
    write_common,
)
from benchmark.baselines.train_config import TrainConfigError
from benchmark.baselines.train_data import AudioStore, pair_batch, rng_for
from benchmark.errors import describe_validation_error

if TYPE_CHECKING:
    import torch

    from benchmark.baselines.judge import PairwiseJudge


class GRPOSettings(BaseModel):
    """The `grpo:` block (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reward: Literal["accuracy", "mos_aware"] = "mos_aware"
    reward_weight: float = Field(default=0.5, ge=0)
    group_size: int = Field(default=4, ge=2)
    temperature: float = Field(default=1.0, gt=0)
    iterations: int = Field(default=1, ge=1)
    beta: float = Field(default=0.04, ge=0)
    eps_low: float = Field(default=0.2, gt=0, lt=1)
    eps_high: float | None = Field(default=None, gt=0)
    dapo: bool = False
    aggregation: Literal["sequence", "token"] | None = None
    scale_rewards: Literal["group", "batch", "none"] = "group"
    train_encoder: bool = True
    sft_epochs: int = Field(default=2, ge=1)
    sft_lr: float | None = Field(default=None, gt=0)
    sft_batch_size: int | None = Field(default=None, ge=1)
    sft_per_task: int | None = Field(default=None, ge=1)

    def objective(self) -> Any:
        from benchmark.baselines.grpo import Objective

        return Objective(
            eps_low=self.eps_low,
            eps_high=self.eps_high
            if self.eps_high is not None
            else (0.28 if self.dapo else self.eps_low),
            beta=self.beta,
            aggregation=self.aggregation or ("token" if self.dapo else "sequence"),
            dynamic_sampling=self.dapo,
        )


class _Block(BaseModel):
    grpo: GRPOSettings


def settings_of(run: Run) -> GRPOSettings:
    """The validated `grpo:` block; a one-line `TrainConfigError` naming the file and field."""
    try:
        return _Block.model_validate({"grpo": run.config.grpo or {}}).grpo
    except ValidationError as exc:
        where = run.config_path or "training config"
        raise TrainConfigError(f"{where}: {describe_validation_error(exc)}") from None


def _unwrap(net: Any) -> Any:
    return net.module if hasattr(net, "module") else net


class GRPOData:
    """Per-task arrays the losses read: train-pair ΔMOS and MOS, and each task's P90."""

    def __init__(self, run: Run) -> None:
        from benchmark.baselines.rewards import percentile_90

        self.mos_c, self.mos_r, self.p90 = [], [], []
        for t in run.tasks:
            c = np.array([t.mos[x] for x in t.train["chosen"]], dtype=np.float64)
            r = np.array([t.mos[x] for x in t.train["rejected"]], dtype=np.float64)
            self.mos_c.append(c)
            self.mos_r.append(r)
            p90 = percentile_90(c - r)
            self.p90.append(p90 if p90 > 0 else 1.0)  # all-equal MOS: every d is 0 anyway

    def rows(self, rows: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c = np.array([self.mos_c[k][r] for k, r in rows])
        r_ = np.array([self.mos_r[k][r] for k, r in rows])
        return c, r_, np.array([self.p90[k] for k, _ in rows])


def run(run: Run) -> Path | None:

    from benchmark.baselines.judge import new_model, save

    config, device = run.config, run.device
    s = settings_of(run)
    model = new_model(config.model).to(device)
    store = AudioStore(run.tasks, model.sample_rate, config.max_seconds)
    data = GRPOData(run)
    levels = model.levels

    def sft_loss(net: Any, rows: list[tuple[int, int]], info: StepInfo) -> torch.Tensor:
        chosen, rejected = pair_batch(store, run.tasks, rows)
        mc, mr, _ = data.rows(rows)
        return sft_loss_of(net, chosen, rejected, mc, mr, levels, device)

    def dev(m: Any) -> dict[str, Any]:
        return dev_pairs_accuracy(run, lambda rows: greedy_margin(m, store, run, rows), 64)

    sft = Stage(
        name="sft",
        unit="pair",
        epochs=s.sft_epochs,
        batch_size=s.sft_batch_size or config.batch_size,
        lr=s.sft_lr or config.lr,
        weight_decay=config.weight_decay,
        per_task=s.sft_per_task or config.per_task_per_epoch,
        checkpoint_every=config.checkpoint_every,
        loss=sft_loss,
        dev=dev,
    )
    sft_state = fit(run, sft, model, save_best=lambda m, p: save(m, p))
    if sft_state is None:
        return None
    run.seconds["sft"] = float(sft_state["seconds"])
    reference = copy.deepcopy(model).eval().requires_grad_(False)
    if not s.train_encoder:  # GRPO tunes the rest; policy and reference share the SFT encoder
        model.encoder.requires_grad_(False)
    loss = GRPOLoss(run, s, store, data, reference)
    grpo = main_stage(config, name="grpo", unit="pair", loss=loss, dev=dev, iterations=s.iterations)
    state = fit(run, grpo, model, save_best=lambda m, p: save(m, p))
    if state is None or not run.dist.main:
        return None
    run.seconds["grpo"] = float(state["seconds"])
    return _write_submissions(run, s, data, sft_state, state)


def _waves(
    a: Any, b: Any, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    return (
        a.waveforms.to(device),
        a.lengths.to(device),
        b.waveforms.to(device),
        b.lengths.to(device),
    )


def sft_loss_of(
    net: Any,
    chosen: Any,
    rejected: Any,
    mos_chosen: np.ndarray,
    mos_rejected: np.ndarray,
    levels: int,
    device: torch.device,
) -> torch.Tensor:
    """Mean token cross-entropy of the target completions, each pair in both orders:
    (chosen, rejected) -> [q(MOS_c), q(MOS_r)] and (rejected, chosen) -> [q(MOS_r), q(MOS_c)]."""
    import torch

    from benchmark.baselines.judge import score_levels

    qc = score_levels(torch.from_numpy(np.asarray(mos_chosen)), levels)
    qr = score_levels(torch.from_numpy(np.asarray(mos_rejected)), levels)
    tokens = torch.stack([torch.stack([qc, qr], -1), torch.stack([qr, qc], -1)], 1)  # [B, 2, L]
    swap = torch.tensor([[False, True]] * len(qc))
    logp = net(*_waves(chosen, rejected, device), tokens.to(device), swap.to(device))
    return -logp.mean()


def greedy_margin(
    model: PairwiseJudge, store: AudioStore, run: Run, rows: list[tuple[int, int]]
) -> torch.Tensor:
    """Per dev pair, (P − ½) with P = (prefer(c, r) + 1 − prefer(r, c)) / 2 from greedy decoding:
    > 0 exactly when the harness would count the pair correct."""
    import torch

    from benchmark.baselines.judge import verdict

    chosen, rejected = pair_batch(store, run.tasks, rows, split="dev")
    swap = torch.tensor([[False, True]] * len(rows), device=run.device)
    h = model.context(*_waves(chosen, rejected, run.device), swap)  # [B, 2, H]
    tokens = model.sample_given(h.reshape(-1, h.shape[-1]), 1, 0.0)[:, 0]
    v = verdict(tokens).reshape(len(rows), 2)
    return (v[:, 0] + 1.0 - v[:, 1]) / 2.0 - 0.5


class GRPOLoss:
    """`Stage.loss` of the GRPO stage: rollouts at the first inner iteration, the clipped
    objective at every one. Holds the current batch's rollouts between iterations (a checkpoint
    never falls between two iterations of a batch, so a resumed run redraws them identically)."""

    def __init__(
        self,
        run: Run,
        settings: GRPOSettings,
        store: AudioStore,
        data: GRPOData,
        reference: PairwiseJudge,
    ) -> None:
        self.run, self.s, self.store, self.data, self.reference = (
            run,
            settings,
            store,
            data,
            reference,
        )
        self.objective = settings.objective()
        self.cache: dict[str, Any] = {}

    def __call__(
        self, net: Any, rows: list[tuple[int, int]], info: StepInfo
    ) -> tuple[torch.Tensor, dict[str, float]]:
        import torch

        from benchmark.baselines.grpo import grpo_loss

        key = (info.stage, info.epoch, info.step)
        if info.iteration == 0 or self.cache.get("key") != key:
            self.cache = {"key": key, **self.rollouts(_unwrap(net), rows, info)}
        r = self.cache
        tau = self.s.temperature
        logp = net(*r["waves"], r["tokens"], r["swap"], pooled=r["pooled"], temperature=tau)
        loss, stats = grpo_loss(
            logp,
            r["old"],
            r["ref"],
            r["adv"],
            torch.ones_like(r["tokens"], dtype=torch.bool),
            self.objective,
            r["keep"],
            r["denominator"],
        )
        return loss, {**stats, **r["stats"]}

    def rollouts(
        self, model: PairwiseJudge, rows: list[tuple[int, int]], info: StepInfo
    ) -> dict[str, Any]:
        import torch

        from benchmark.baselines.grpo import group_advantages, informative_groups, units
        from benchmark.baselines.judge import COMPLETION_LENGTH
        from benchmark.baselines.rewards import is_correct, reward

        run, s, device = self.run, self.s, self.run.device
        g = s.group_size
        swap_, uniforms = [], []
        for k, row in rows:
            rng = rng_for(
                info.seed, "rollout", info.stage, info.epoch, info.step, run.tasks[k].name, row
            )
            swap_.append(bool(rng.random() < 0.5))
            uniforms.append(rng.random((g, COMPLETION_LENGTH)))
        swap = torch.tensor(swap_, device=device)
        chosen, rejected = pair_batch(self.store, run.tasks, rows)
        waves = _waves(chosen, rejected, device)
        swap_g = swap[:, None].expand(len(rows), g).contiguous()
        with torch.no_grad():
            pooled = model.pooled_pair(*waves)
            h0 = model.context_from(*pooled, swap[:, None])[:, 0]
            tokens = model.sample_given(
                h0, g, s.temperature, uniforms=torch.from_numpy(np.stack(uniforms))
            )
            old = model.logp_given(h0, tokens, s.temperature)
            # a frozen encoder is the reference's too: its pooled features serve all three
            shared = None if s.train_encoder else pooled
            ref = None
            if s.beta > 0:
                ref = self.reference(
                    *waves, tokens, swap_g, pooled=shared, temperature=s.temperature
                )
        mc, mr, p90 = self.data.rows(rows)
        correct = is_correct(tokens, ~swap_g)  # clip A is the chosen one unless swapped
        delta = torch.from_numpy(mc - mr)[:, None].to(device)
        rewards = reward(
            s.reward, correct, delta, torch.from_numpy(p90)[:, None].to(device), s.reward_weight
        )
        batch_std = None
        if s.scale_rewards == "batch" and run.dist.world > 1:
            batch_std = _global_std(rewards)
        adv = group_advantages(rewards, scale=s.scale_rewards, batch_std=batch_std).float()
        keep = informative_groups(rewards) if self.objective.dynamic_sampling else None
        denominator = None
        if run.dist.world > 1:  # DDP averages the ranks' losses: divide by the global count
            count = units(
                torch.ones_like(tokens, dtype=torch.bool), self.objective.aggregation, keep
            )
            denominator = _global_sum(count) / run.dist.world
        ties = (tokens[..., 0] == tokens[..., 1]).double().mean()
        stats = {
            "reward": float(rewards.mean()),
            "correct": float(correct.double().mean()),
            "ties": float(ties),
        }
        return {
            "waves": waves if s.train_encoder else (None, None, None, None),
            "pooled": shared,
            "tokens": tokens,
            "swap": swap_g,
            "old": old,
            "ref": ref,
            "adv": adv,
            "keep": keep,
            "denominator": denominator,
            "stats": stats,
        }


def _global_sum(value: torch.Tensor) -> torch.Tensor:
    """A float64 scalar summed over the ranks of a torchrun job."""
    import torch.distributed as tdist

    t = value.detach().double().reshape(1).clone()
    tdist.all_reduce(t)
    return t[0]


def _global_std(rewards: torch.Tensor) -> torch.Tensor:
    """The sample std of every rank's rewards together (GRPO's `scale_rewards: batch`)."""
    import torch

    r = rewards.double()
    n = _global_sum(torch.tensor(float(r.numel()), device=r.device))
    total = _global_sum(r.sum())
    squares = _global_sum((r * r).sum())
    var = (squares - total * total / n) / (n - 1).clamp(min=1.0)
    return var.clamp(min=0.0).sqrt()


# -- the two submission folders ------------------------------------------------------------------


def _write_submissions(
    run: Run,
    s: GRPOSettings,
    data: GRPOData,
    sft_state: dict[str, Any],
    state: dict[str, Any],
) -> Path:
    from benchmark.baselines.judge import resolve_config
    from benchmark.baselines.scalar import publish_weights
    from benchmark.baselines.scalar_train import _ship_backbone
    from benchmark.baselines.train import write_curve

    config = run.config
    objective = s.objective()
    p90 = {t.name: round(p, 4) for t, p in zip(run.tasks, data.p90, strict=True)}
    display = config.display_name or f"{config.name} (GRPO judge)"
    sibling = run.out.parent / f"{config.name}-sft"
    variants = [
        (run.out, config.name, display, [("sft", sft_state), ("grpo", state)], "grpo"),
        (sibling, sibling.name, f"{display} [SFT only]", [("sft", sft_state)], "sft"),
    ]
    for out, name, shown, stages, last in variants:
        out.mkdir(parents=True, exist_ok=True)
        model_config = _ship_backbone(config.model, out)
        publish_weights(
            run.checkpoint_dir(last) / "best.safetensors",
            out / "model.safetensors",
            model_config,
            resolve_config,
        )
        write_curve(out, [(n, st["curve"]) for n, st in stages], title=name)
        what = "SFT warm-up then GRPO" if last == "grpo" else "SFT warm-up only, where GRPO started"
        spec = {
            "name": name,
            "display_name": shown,
            "kind": "pairwise",
            "entry": "benchmark.baselines.judge:build",
            "weights": "model.safetensors",
            "params": {"config": model_config},
            "training_data": [f"{t}:{config.train_split}" for t in config.tasks],
            "baseline": True,
            "description": (
                f"Reference generative pairwise judge ({what}) trained by `mosrm train` "
                f"(config sha256 {config.sha256()[:16]}); see card.md."
            ),
            "license": "Apache-2.0",
        }
        card = [
            f"# {name}",
            "",
            f"A generative pairwise judge ({what}), trained by `mosrm train` (a reference "
            "baseline of mosrm-bench). It writes a score (1..K) for clip A, then for clip B; "
            "greedy decoding, the order of the scores is its preference, equal scores a tie.",
            "",
            f"- Score levels K = {run_levels(config.model)}; SFT: {s.sft_epochs} epoch(s), "
            "targets = each clip's MOS quantised to K levels, both presentation orders",
        ]
        if last == "grpo":
            card.append(
                f"- GRPO: reward `{s.reward}`"
                + (f" (w = {s.reward_weight})" if s.reward == "mos_aware" else "")
                + f", G = {s.group_size} rollouts at temperature {s.temperature}, "
                f"μ = {s.iterations}, β = {objective.beta}, ε = [{objective.eps_low}, "
                f"{objective.eps_high}], {objective.aggregation} aggregation, advantages "
                f"scaled by {s.scale_rewards} std"
                + (", DAPO dynamic sampling" if objective.dynamic_sampling else "")
                + f"; {config.epochs} epoch(s), reference = the SFT judge"
            )
            card.append(f"- P90 of train ΔMOS per task: {json.dumps(p90, sort_keys=True)}")
            rewards = [r["reward"] for r in state["curve"] if "reward" in r]
            if rewards:
                k = max(1, len(rewards) // 10)
                card.append(
                    f"- Mean rollout reward: first {k} steps {np.mean(rewards[:k]):.3f}, "
                    f"last {k} steps {np.mean(rewards[-k:]):.3f}"
                )
        for label, st in stages:
            best = st["best"] or {}
            card.append(
                f"- Best dev accuracy after {label}: {best.get('accuracy')} at epoch "
                f"{best.get('epoch')} (per ΔMOS bin: {json.dumps(best.get('by_bin', {}))})"
            )
        card.append(
            "- Weights: `model.safetensors` (safetensors, never pickle); curve: `curve.csv`, "
            "`curve.png` (loss, mean reward, KL, clip fraction)."
        )
        seconds = {n: run.seconds.get(n, 0.0) for n, _ in stages}
        write_common(dataclasses.replace(run, out=out, seconds=seconds), spec, card)
    return run.out


def run_levels(model_config: dict[str, Any]) -> int:
    from benchmark.baselines.judge import resolve_config

    return int(resolve_config(model_config)["levels"])
