"""`mosrm train CONFIG.yaml`: the declarative description of a reference-baseline training run.

Configs live under version control (`baselines/*.yaml`) and are validated like tasks: unknown keys
are errors, and the config's hash goes into the trained submission, so a result always says exactly
which recipe produced it.
"""

from __future__ import annotations

import hashlib
import json
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
        return self

    def sha256(self) -> str:
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


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
