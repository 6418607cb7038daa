"""`mosrm train CONFIG.yaml`: the declarative description of a reference-baseline training run.

Configs live under version control (`baselines/*.yaml`) and are validated like tasks: unknown keys
are errors, and the config's hash goes into the trained submission, so a result always says exactly
which recipe produced it.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from benchmark.errors import MosrmError, describe_validation_error


class TrainConfigError(MosrmError):
    """A training config that cannot be used (the file and the field are named)."""


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$", description="the submission made")
    display_name: str | None = None
    tasks: list[str] = Field(min_length=1, description="train on these tasks' train pairs")
    loss: Literal["bt", "mse", "dpo", "grpo"] = Field(
        description="the recipe: Bradley–Terry on pairs, MSE to MOS (scalar models), DPO on a "
        "unit language model (implicit reward), or an SFT + GRPO pairwise judge"
    )
    model: dict[str, Any] = Field(
        default_factory=dict,
        description="the model config of the recipe (scalar: benchmark.baselines.scalar's "
        "encoder and head)",
    )
    dpo: dict[str, Any] | None = Field(
        default=None, description="DPO recipe settings (benchmark.baselines.dpo_train)"
    )
    grpo: dict[str, Any] | None = Field(
        default=None, description="GRPO recipe settings (benchmark.baselines.grpo_train)"
    )
    seed: int = 0
    seeds: list[int] | None = Field(
        default=None,
        min_length=1,
        description="train one model per seed, named <name>-s<seed> (data order, model "
        "initialisation and sampling all follow it); reference numbers are their mean ± sd",
    )
    out_of_domain: list[str] = Field(
        default_factory=list,
        description="tasks never trained on, evaluated as out-of-domain tests (the paper: vmc23)",
    )
    epochs: int = Field(default=3, ge=1)
    per_task_per_epoch: int | None = Field(
        default=None,
        ge=1,
        description="examples drawn from each task per epoch (default: the smallest task's count)",
    )
    batch_size: int = Field(default=16, ge=1, description="pairs (bt) or clips (mse) per process")
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    max_seconds: float | None = Field(
        default=4.0, gt=0, description="train on each clip's first seconds (scoring sees it all)"
    )
    train_split: str = "train"
    dev_split: str = "dev"
    patience: int | None = Field(
        default=None, ge=1, description="stop after this many epochs without a better dev accuracy"
    )
    checkpoint_every: int = Field(default=0, ge=0, description="steps; 0 = at each epoch's end")
    device: str = "auto"
    bf16: bool = False

    @model_validator(mode="after")
    def _one_recipe_block(self) -> TrainConfig:
        for block in ("dpo", "grpo"):
            if getattr(self, block) is not None and self.loss != block:
                raise ValueError(f"a '{block}' block belongs to loss: {block}, not {self.loss}")
        if self.seeds is not None and len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"'seeds' repeats a seed: {self.seeds}")
        both = sorted(set(self.tasks) & set(self.out_of_domain))
        if both:
            raise ValueError(f"task '{both[0]}' is in both 'tasks' and 'out_of_domain'")
        return self

    def per_seed(self) -> list[TrainConfig]:
        """One config per trained model: itself without `seeds`, else one per seed, named
        `<name>-s<seed>`, with the seed in both the run (data order, sampling) and the model's
        initialisation, so each seed is an independent training whose hash differs."""
        if self.seeds is None:
            return [self]
        out = []
        for s in self.seeds:
            update: dict[str, Any] = {
                "name": f"{self.name}-s{s}",
                "seed": s,
                "seeds": None,
                "model": {**self.model, "seed": s},
            }
            if self.display_name:
                update["display_name"] = f"{self.display_name}, seed {s}"
            out.append(TrainConfig.model_validate({**self.model_dump(), **update}))
        return out

    def sha256(self) -> str:
        """The recipe's hash. Fields added later are left out at their defaults, so a config
        written before them (and every model trained from it) keeps its hash."""
        data = self.model_dump(mode="json")
        for key, default in (("seeds", None), ("out_of_domain", [])):
            if data.get(key) == default:
                data.pop(key, None)
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


SEED_SUFFIX = re.compile(r"-s(\d+)(?=-|$)")


def seed_family(name: str) -> tuple[str, int | None]:
    """(the name a submission's seeds share, its seed): `paper-bt-s1` -> ('paper-bt', 1),
    `paper-dpo-s2-norm` (a recipe's variant of one seed) -> ('paper-dpo-norm', 2), and a name
    with no seed suffix -> (name, None)."""
    m = SEED_SUFFIX.search(name)
    if m is None:
        return name, None
    return name[: m.start()] + name[m.end() :], int(m.group(1))


def load_train_config(path: str | Path) -> TrainConfig:
    from benchmark.data.safe_yaml import load_yaml

    path = Path(path)
    raw = load_yaml(path, TrainConfigError)
    if not isinstance(raw, dict):
        raise TrainConfigError(f"{path}: expected a mapping at the top level")
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as exc:
        raise TrainConfigError(f"{path}: {describe_validation_error(exc)}") from None
