"""The DPO recipe of `mosrm train` (`loss: dpo`): units, a maximum-likelihood reference, then DPO.

Stages, each resumable:

1. `units`: k-means codebook over frames of a seeded subsample of training clips
   (`benchmark.baselines.units`), fitted once on rank 0 and saved in `checkpoint/units/`; a
   resumed run loads it instead of refitting.
2. `ref`: the unit LM (`benchmark.baselines.unit_lm`, config from `model:`) trained by maximum
   likelihood on the training clips (mean per-token NLL per clip, then the mean over clips, so
   torchrun ranks average to the single-process loss). The result is π_ref.
3. `dpo`: DPO (`benchmark.baselines.losses.dpo_loss`) on the training preference pairs (chosen
   = higher-MOS clip), starting from π_ref with a frozen copy of it as the reference; the common
   fields (epochs, batch_size, lr, ...) are this stage's. Model selection: implicit-reward pair
   accuracy on the dev pairs (summed log-ratio unless `dpo.select: per_unit`).

Units are computed once per clip and kept (the tokenizer is fixed after stage 1), and so are the
frozen reference's log-probabilities, so an epoch costs only the policy's forward and backward.
Two submission folders are written, each self-contained (its own copies of policy, reference and
codebook): `run.out` scores the summed log-ratio, its sibling `<name>-norm` the per-unit one.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from benchmark.baselines.train import Run, Stage, StepInfo, dev_pairs_accuracy, fit, main_stage
from benchmark.baselines.train_config import TrainConfigError
from benchmark.baselines.train_data import AudioStore, rng_for
from benchmark.errors import MosrmError, SubmissionError, describe_validation_error

NORM_SUFFIX = "-norm"


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FitSettings(_Block):
    clips: int = Field(default=400, ge=1, description="training clips per task for k-means")
    frames: int = Field(default=40000, ge=1, description="frames subsampled from them")
    batch_size: int = Field(default=1024, ge=1, description="MiniBatchKMeans batch size")
    n_init: int = Field(default=3, ge=1)


class RefSettings(_Block):
    epochs: int = Field(default=3, ge=1)
    batch_size: int = Field(default=16, ge=1, description="clips per process")
    lr: float = Field(default=2e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    per_task_per_epoch: int | None = Field(default=None, ge=1)


class DPOSettings(_Block):
    beta: float = Field(default=0.1, gt=0, description="DPO β (also the reward scale)")
    units: dict[str, Any] = Field(default_factory=dict, description="benchmark.baselines.units")
    fit: FitSettings = Field(default_factory=FitSettings)
    ref: RefSettings = Field(default_factory=RefSettings)
    select: Literal["sum", "per_unit"] = Field(
        default="sum", description="dev accuracy of which log-ratio selects the DPO epoch"
    )


def settings_of(run: Run) -> tuple[DPOSettings, dict[str, Any], dict[str, Any]]:
    """The validated `dpo:` block, the resolved units config and the LM config (`model:`)."""
    from benchmark.baselines.unit_lm import resolve_lm_config
    from benchmark.baselines.units import resolve_units_config

    where = str(run.config_path or "training config")
    try:
        settings = DPOSettings.model_validate(run.config.dpo or {})
    except ValidationError as exc:
        text = describe_validation_error(exc).replace("field '", "field 'dpo.")
        raise TrainConfigError(f"{where}: {text}") from None
    try:
        units = resolve_units_config(settings.units)
    except SubmissionError as exc:
        raise TrainConfigError(f"{where}: field 'dpo.units': {exc}") from None
    model = dict(run.config.model)
    k = units["codebook_size"]
    if model.get("vocab", k) != k:
        raise TrainConfigError(
            f"{where}: field 'model.vocab' is {model['vocab']} but dpo.units.codebook_size is {k}"
        )
    try:
        lm = resolve_lm_config({**model, "vocab": k})
    except SubmissionError as exc:
        raise TrainConfigError(f"{where}: field 'model': {exc}") from None
    name = run.config.name + NORM_SUFFIX
    if len(name) > 64:
        raise TrainConfigError(f"{where}: field 'name': too long for the '{name}' sibling")
    return settings, units, lm


# -- stage 1: units --------------------------------------------------------------------------------


def _units_stage(run: Run, settings: DPOSettings, units: dict[str, Any]) -> Any:
    """The fitted tokenizer: from `checkpoint/units/` if there, else fitted on rank 0 and saved."""
    import torch

    from benchmark.atomic import atomic_write_text
    from benchmark.baselines.units import (
        UnitTokenizer,
        fit_codebook,
        load_tokenizer,
        save_tokenizer,
    )

    folder = run.checkpoint_dir("units")
    path, record = folder / "units.safetensors", folder / "state.json"
    sha = run.config.sha256()
    started = time.perf_counter()
    if run.dist.main and not (path.is_file() and record.is_file()):
        tokenizer = UnitTokenizer(units)
        store = AudioStore(run.tasks, tokenizer.sample_rate, run.config.max_seconds)
        frames = training_frames(run, tokenizer, store, settings.fit)
        seed = run.config.seed
        codebook = fit_codebook(frames, tokenizer.vocab, seed=seed, fit=settings.fit.model_dump())
        tokenizer.codebook.copy_(torch.from_numpy(codebook))
        save_tokenizer(tokenizer, path)
        atomic_write_text(
            record,
            json.dumps({"config_sha256": sha, "frames": int(frames.shape[0])}, indent=1) + "\n",
        )
    run.dist.barrier()
    if json.loads(record.read_text()).get("config_sha256") != sha:
        raise MosrmError(
            f"{folder}: a checkpoint of a different config; remove it or use another output folder"
        )
    run.seconds["units"] = time.perf_counter() - started
    return load_tokenizer(path, confine=False).to(run.device).eval()


def training_frames(run: Run, tokenizer: Any, store: AudioStore, fit: FitSettings) -> np.ndarray:
    """Unit-rate feature vectors [N, D] of a seeded subsample of training clips (every task the
    same number of clips), then a seeded subsample of `fit.frames` of their frames."""
    import torch

    seed = run.config.seed
    items: list[tuple[int, str]] = []
    for k, t in enumerate(run.tasks):
        pick = rng_for(seed, "units", t.name).permutation(t.train_clips.size)[: fit.clips]
        items.extend((k, str(t.train_clips[i])) for i in sorted(pick.tolist()))
    chunks: list[np.ndarray] = []
    with torch.inference_mode():
        for i in range(0, len(items), 32):
            batch = store.batch(items[i : i + 32])
            feats, counts = tokenizer.frames(batch.waveforms, batch.lengths)
            chunks.extend(feats[j, : int(n)].numpy() for j, n in enumerate(counts))
    frames = np.concatenate(chunks, axis=0)
    if frames.shape[0] > fit.frames:
        keep = np.sort(rng_for(seed, "units", "frames").permutation(frames.shape[0])[: fit.frames])
        frames = frames[keep]
    return frames


class UnitCache:
    """Units of each (task, clip) as training sees it (cropped to `max_seconds`), and, once a
    reference is set, its summed log-probability of each clip (frozen, so fixed).

    Both are computed once, up front, for every train and dev clip in a fixed order and fixed
    batches (`warm`, `set_reference`): a padded batch can move a float by an ulp, so values
    computed lazily in whatever batch first needed them would differ between an uninterrupted
    run and a resumed one, and so would the weights.
    """

    def __init__(self, run: Run, tokenizer: Any) -> None:
        self.run = run
        self.tokenizer = tokenizer
        self.store = AudioStore(run.tasks, tokenizer.sample_rate, run.config.max_seconds)
        self.units: dict[tuple[int, str], Any] = {}
        self.ref_logp: dict[tuple[int, str], float] = {}
        self.items = sorted(
            {
                (k, str(c))
                for k, t in enumerate(run.tasks)
                for c in [*t.train_clips, *t.dev.get("chosen", []), *t.dev.get("rejected", [])]
            }
        )

    def warm(self, chunk: int = 32) -> None:
        import torch

        with torch.inference_mode():
            for s in range(0, len(self.items), chunk):
                part = self.items[s : s + chunk]
                b = self.store.batch(part).to(self.run.device)
                units, counts = self.tokenizer(b.waveforms, b.lengths)
                for j, key in enumerate(part):
                    self.units[key] = units[j, : int(counts[j])].cpu().clone()

    def set_reference(self, reference: Any, chunk: int = 32) -> None:
        import torch

        with torch.inference_mode():
            for s in range(0, len(self.items), chunk):
                part = self.items[s : s + chunk]
                lp, _ = reference.logp(*self.batch(part))
                self.ref_logp.update(zip(part, lp.cpu().tolist(), strict=True))

    def batch(self, items: list[tuple[int, str]]) -> tuple[Any, Any]:
        """Padded units [B, U] and counts [B] on the run's device."""
        from benchmark.baselines.unit_lm import pad_units

        units, counts = pad_units([self.units[i] for i in items])
        return units.to(self.run.device), counts.to(self.run.device)

    def reference_logp(self, items: list[tuple[int, str]]) -> Any:
        """The frozen reference's summed log-probabilities [B] (float64)."""
        import torch

        values = [self.ref_logp[i] for i in items]
        return torch.tensor(values, dtype=torch.float64, device=self.run.device)


def _pair_items(run: Run, rows: list[tuple[int, int]], split: str) -> tuple[list, list]:
    tasks = run.tasks
    chosen = [(k, str(getattr(tasks[k], split)["chosen"][r])) for k, r in rows]
    rejected = [(k, str(getattr(tasks[k], split)["rejected"][r])) for k, r in rows]
    return chosen, rejected


# -- the recipe ------------------------------------------------------------------------------------


def run(run: Run) -> Path | None:
    from benchmark.baselines.losses import dpo_loss
    from benchmark.baselines.unit_lm import UnitLM

    config = run.config
    settings, units_config, lm_config = settings_of(run)
    tokenizer = _units_stage(run, settings, units_config)
    cache = UnitCache(run, tokenizer)
    cache.warm()
    policy = UnitLM(lm_config).to(run.device)
    beta = settings.beta

    def ref_loss(net: Any, rows: list[tuple[int, int]], info: StepInfo) -> Any:
        items = [(k, str(run.tasks[k].train_clips[r])) for k, r in rows]
        units, counts = cache.batch(items)
        lp, n = net(units, counts)
        return -(lp / (n + 1).to(lp.dtype)).mean()  # per-token NLL of each clip, then the mean

    ref_stage = Stage(
        name="ref",
        unit="clip",
        epochs=settings.ref.epochs,
        batch_size=settings.ref.batch_size,
        lr=settings.ref.lr,
        weight_decay=settings.ref.weight_decay,
        per_task=settings.ref.per_task_per_epoch,
        checkpoint_every=config.checkpoint_every,
        loss=ref_loss,
    )
    ref_state = fit(run, ref_stage, policy)
    if ref_state is None:
        return None
    reference = copy.deepcopy(policy).eval().requires_grad_(False)
    cache.set_reference(reference)

    def loss(net: Any, rows: list[tuple[int, int]], info: StepInfo) -> Any:
        chosen, rejected = _pair_items(run, rows, "train")
        units, counts = cache.batch(chosen + rejected)  # one forward: one DDP reduction
        lp, _ = net(units, counts)
        pc, pr = lp[: len(rows)], lp[len(rows) :]
        rc, rr = cache.reference_logp(chosen), cache.reference_logp(rejected)
        out = dpo_loss(pc, pr, rc, rr, beta)
        margin = (beta * ((pc - rc) - (pr - rr))).detach()
        return out, {
            "reward_accuracy": float((margin > 0).double().mean()),
            "margin": float(margin.mean()),
        }

    def dev(model: Any) -> dict[str, Any]:
        # dev pairs share few clips: each clip's log-ratio is computed once per evaluation
        ratios: dict[tuple[int, str], float] = {}

        def margin(rows: list[tuple[int, int]]) -> Any:
            chosen, rejected = _pair_items(run, rows, "dev")
            todo = list(dict.fromkeys(i for i in chosen + rejected if i not in ratios))
            if todo:
                units, counts = cache.batch(todo)
                lp, n = model(units, counts)
                ratio = lp - cache.reference_logp(todo)
                if settings.select == "per_unit":
                    ratio = ratio / n.to(ratio.dtype)
                ratios.update(zip(todo, ratio.cpu().tolist(), strict=True))
            return np.array([ratios[c] - ratios[r] for c, r in zip(chosen, rejected, strict=True)])

        return dev_pairs_accuracy(run, margin, 4 * config.batch_size)

    stage = main_stage(config, name="dpo", unit="pair", loss=loss, dev=dev)
    state = fit(run, stage, policy)
    if state is None or not run.dist.main:
        return None
    return write_submissions(run, settings, tokenizer, policy, reference, ref_state, state)


# -- outputs ---------------------------------------------------------------------------------------


def write_submissions(
    run: Run,
    settings: DPOSettings,
    tokenizer: Any,
    policy: Any,
    reference: Any,
    ref_state: dict[str, Any],
    state: dict[str, Any],
) -> Path:
    """`run.out` (summed log-ratio) and its sibling `<name>-norm` (per unit), self-contained."""
    from benchmark.baselines.dpo import save_lm
    from benchmark.baselines.train import write_common, write_curve
    from benchmark.baselines.units import save_tokenizer
    from benchmark.hashing import sha256_file

    config, out = run.config, run.out
    out.mkdir(parents=True, exist_ok=True)
    shipped = _ship_frontend(tokenizer, out)
    units_path = save_tokenizer(shipped, out / "units.safetensors")
    units_sha = sha256_file(units_path)
    ref_path = save_lm(reference, out / "reference.safetensors", {"units_sha256": units_sha})
    ref_sha = sha256_file(ref_path)
    save_lm(
        policy,
        out / "model.safetensors",
        {"beta": settings.beta, "reference_sha256": ref_sha, "units_sha256": units_sha},
    )
    sibling = out.parent / f"{config.name}{NORM_SUFFIX}"
    if sibling.exists():
        shutil.rmtree(sibling)
    sibling.mkdir(parents=True)
    for name in ("model.safetensors", "reference.safetensors", "units.safetensors"):
        shutil.copy2(out / name, sibling / name)
    if (out / "encoder").is_dir():
        shutil.copytree(out / "encoder", sibling / "encoder")
    curves = [("ref", ref_state["curve"]), ("dpo", state["curve"])]
    for folder, normalise in ((out, "sum"), (sibling, "per_unit")):
        target = dataclasses.replace(run, out=folder)
        name = folder.name if folder == sibling else config.name
        write_curve(folder, curves, title=name)
        write_common(
            target,
            _spec(run, name, normalise),
            _card(run, settings, tokenizer, name, normalise, ref_state, state, ref_sha),
        )
    return out


def _ship_frontend(tokenizer: Any, out: Path) -> Any:
    """The tokenizer with its SSL front end shipped into the submission (`backbones.ship`)."""
    from benchmark.baselines.backbones import local_folder, ship

    if local_folder(tokenizer.config["frontend"]) is None:
        return tokenizer
    shipped = copy.copy(tokenizer)
    shipped.config = copy.deepcopy(tokenizer.config)
    shipped.config["frontend"] = ship(tokenizer.config["frontend"], out)
    return shipped


def _spec(run: Run, name: str, normalise: str) -> dict[str, Any]:
    config = run.config
    what = "summed" if normalise == "sum" else "per-unit"
    display = config.display_name or f"{config.name} (DPO, implicit reward)"
    return {
        "name": name,
        "display_name": display if normalise == "sum" else f"{display}, per unit",
        "kind": "implicit",
        "entry": "benchmark.baselines.dpo:build",
        "weights": "model.safetensors",
        "reference_model": "reference.safetensors",
        "params": {
            "reference": "reference.safetensors",
            "units": "units.safetensors",
            "normalise": normalise,
        },
        "training_data": [f"{t}:{config.train_split}" for t in config.tasks],
        "baseline": True,
        "description": (
            f"Reference DPO baseline ({what} implicit reward β·log π/π_ref over k-means units) "
            f"trained by `mosrm train` (config sha256 {config.sha256()[:16]}); see card.md."
        ),
        "license": "Apache-2.0",
    }


def _card(
    run: Run,
    settings: DPOSettings,
    tokenizer: Any,
    name: str,
    normalise: str,
    ref_state: dict[str, Any],
    state: dict[str, Any],
    ref_sha: str,
) -> list[str]:
    best = state["best"] or {}
    u = tokenizer.config
    reward = (
        "β·(log π(x) − log π_ref(x)), log-probabilities summed over the clip's units"
        if normalise == "sum"
        else "β·(log π(x) − log π_ref(x)) / (number of units): the per-unit log-ratio, so "
        "that clip length does not scale the reward"
    )
    return [
        f"# {name}",
        "",
        "A DPO implicit reward model, trained by `mosrm train` (a reference baseline of "
        "mosrm-bench): a causal transformer over k-means audio units, first trained by maximum "
        "likelihood on the training clips (π_ref), then by DPO on the training preference pairs.",
        "",
        f"- Reward: {reward}; β = {settings.beta}.",
        f"- Units: {u['codebook_size']} k-means centroids over {u['frontend']['type']} frames "
        f"(stack {u['stack']}, stride {u['stride']}, normalise {u['normalise']}, collapse "
        f"{u['collapse']}); codebook `units.safetensors`.",
        f"- Reference model: `reference.safetensors` (sha256 `{ref_sha}`), the maximum-likelihood "
        f"unit LM of stage `ref` ({ref_state['steps']} steps); frozen during DPO.",
        f"- Best dev accuracy (implicit reward, {settings.select}): {best.get('accuracy')} at "
        f"epoch {best.get('epoch')} (per ΔMOS bin: {json.dumps(best.get('by_bin', {}), sort_keys=True)})",
        f"- DPO steps: {state['steps']}",
        "- Weights: `model.safetensors` (policy), `reference.safetensors`, `units.safetensors` "
        "(safetensors, never pickle); curve: `curve.csv`, `curve.png` (stages ref, dpo).",
    ]
