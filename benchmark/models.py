"""Reward-model interfaces and submission loading.

Three kinds of reward model are evaluated:

- scalar: `score(batch) -> Tensor[B]`, one number per clip, higher = better. Scored once per unique
  clip and cached; a pair is judged by comparing the two scores.
- pairwise: `prefer(a, b) -> Tensor[B]`, P(clip a is better than clip b). The harness always asks in
  both orders and averages, P = (prefer(a, b) + 1 - prefer(b, a)) / 2, so a judge's position bias
  cannot move its accuracy.
- implicit: a DPO-style policy with its reference model; reward = beta * (log pi(x) - log pi_ref(x)).
  A reference model is mandatory (an implicit reward without it is meaningless), and the harness
  scores it as a scalar model through `ImplicitAsScalar`.

Models must mask padding: a batch is zero-padded to its longest clip and carries the true lengths.
The harness checks that batch size does not change scores (see tests/test_scoring.py).

Submissions are folders under `submissions/` with a `submission.yaml` (validated, unknown keys
rejected) naming an entry point: either `file.py:callable` inside the folder, or a callable in the
`benchmark.` package (the reference baselines). Weights are safetensors files inside the folder;
pickle is never loaded.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from benchmark.errors import SubmissionError, describe_validation_error
from benchmark.hashing import sha256_file

if TYPE_CHECKING:
    import torch

MODEL_API_VERSION = 1


@dataclass(frozen=True)
class Batch:
    """Zero-padded mono waveforms with their true lengths, at `sample_rate` Hz."""

    waveforms: torch.Tensor  # float32 [B, T]
    lengths: torch.Tensor  # int64 [B], valid samples per row
    sample_rate: int
    clip_ids: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.clip_ids)

    def mask(self) -> torch.Tensor:
        """Bool [B, T]: True on real samples, False on padding."""
        import torch

        t = torch.arange(self.waveforms.shape[1], device=self.waveforms.device)
        return t[None, :] < self.lengths.to(self.waveforms.device)[:, None]

    def to(self, device: str | torch.device) -> Batch:
        return Batch(
            self.waveforms.to(device, non_blocking=True),
            self.lengths.to(device, non_blocking=True),
            self.sample_rate,
            self.clip_ids,
        )


@runtime_checkable
class ScalarRewardModel(Protocol):
    sample_rate: int

    def score(self, batch: Batch) -> torch.Tensor:
        """One score per clip, higher = better; must not depend on padding or batch composition."""
        ...


@runtime_checkable
class PairwiseRewardModel(Protocol):
    sample_rate: int

    def prefer(self, a: Batch, b: Batch) -> torch.Tensor:
        """P(a[i] is better than b[i]) in [0, 1] for each row i."""
        ...


@runtime_checkable
class ImplicitRewardModel(Protocol):
    sample_rate: int
    beta: float

    def policy_logp(self, batch: Batch) -> torch.Tensor: ...

    def reference_logp(self, batch: Batch) -> torch.Tensor: ...


class ImplicitAsScalar:
    """Scores an implicit (policy + reference) model as a scalar reward beta * log-ratio."""

    def __init__(self, model: ImplicitRewardModel) -> None:
        self.model = model
        self.sample_rate = model.sample_rate

    def score(self, batch: Batch) -> torch.Tensor:
        return self.model.beta * (self.model.policy_logp(batch) - self.model.reference_logp(batch))

    def to(self, device: str | torch.device) -> ImplicitAsScalar:
        if hasattr(self.model, "to"):
            self.model = self.model.to(device)
        return self


class SubmissionSpec(BaseModel):
    """`submission.yaml`: what a submitted model is and how to build it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    display_name: str
    kind: Literal["scalar", "pairwise", "implicit"]
    entry: str = Field(
        description="'file.py:callable' inside the folder, or 'benchmark.x:callable'"
    )
    params: dict[str, Any] = Field(default_factory=dict)
    weights: str | None = Field(default=None, description="safetensors file inside the folder")
    reference_model: str | None = Field(
        default=None, description="required for implicit models: the reference policy"
    )
    description: str = ""
    authors: list[str] = Field(default_factory=list)
    url: str | None = None
    license: str | None = None
    training_data: list[str] = Field(
        default_factory=list,
        description="corpora/splits the model was trained on, e.g. 'bvcc:train' (contamination)",
    )
    baseline: bool = False
    shortcut: bool = Field(default=False, description="a shortcut heuristic, not a quality model")

    @field_validator("entry")
    @classmethod
    def _entry_form(cls, v: str) -> str:
        target, sep, attr = v.partition(":")
        if not sep or not target or not attr.isidentifier():
            raise ValueError("must look like 'model.py:build' or 'benchmark.module:Class'")
        if not target.endswith(".py") and not target.startswith("benchmark."):
            raise ValueError("module entries must live in the 'benchmark.' package")
        return v

    @field_validator("weights")
    @classmethod
    def _weights_form(cls, v: str | None) -> str | None:
        if v is not None and not v.endswith(".safetensors"):
            raise ValueError("weights must be a .safetensors file (pickle is never loaded)")
        return v

    @model_validator(mode="after")
    def _reference_for_implicit(self) -> SubmissionSpec:
        if self.kind == "implicit" and not self.reference_model:
            raise ValueError("an implicit model needs 'reference_model'")
        return self


@dataclass
class Submission:
    """A loaded submission: its spec, the built model and a fingerprint for the score cache."""

    spec: SubmissionSpec
    folder: Path
    model: Any
    fingerprint: str

    @property
    def name(self) -> str:
        return self.spec.name


def _inside(folder: Path, rel: str, field: str, yaml_path: Path) -> Path:
    """Resolve `rel` under `folder`, refusing anything that escapes it (.., absolute, symlinks)."""
    path = (folder / rel).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise SubmissionError(f"{yaml_path}: field '{field}' points outside the submission folder")
    if not path.is_file():
        raise SubmissionError(f"{yaml_path}: field '{field}': file '{rel}' not found")
    return path


def read_spec(folder: str | Path) -> SubmissionSpec:
    folder = Path(folder)
    yaml_path = folder / "submission.yaml"
    if not yaml_path.is_file():
        raise SubmissionError(f"{yaml_path}: not found (every submission folder needs one)")
    try:
        raw = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SubmissionError(f"{yaml_path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise SubmissionError(f"{yaml_path}: expected a mapping at the top level")
    try:
        spec = SubmissionSpec.model_validate(raw)
    except ValidationError as exc:
        raise SubmissionError(f"{yaml_path}: {describe_validation_error(exc)}") from None
    if spec.name != folder.name:
        raise SubmissionError(
            f"{yaml_path}: field 'name' is '{spec.name}' but the folder is '{folder.name}'"
        )
    return spec


def load_submission(folder: str | Path) -> Submission:
    """Validate `submission.yaml`, build the model, and fingerprint everything scores depend on."""
    folder = Path(folder).resolve()
    spec = read_spec(folder)
    yaml_path = folder / "submission.yaml"
    target, _, attr = spec.entry.partition(":")
    digest: dict[str, Any] = {
        "api": MODEL_API_VERSION,
        "spec": spec.model_dump(mode="json"),
    }
    if target.endswith(".py"):
        code = _inside(folder, target, "entry", yaml_path)
        digest["code"] = sha256_file(code)
        mod_name = f"mosrm_submission_{spec.name.replace('-', '_').replace('.', '_')}"
        module_spec = importlib.util.spec_from_file_location(mod_name, code)
        if module_spec is None or module_spec.loader is None:
            raise SubmissionError(f"{yaml_path}: field 'entry': cannot import '{target}'")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[mod_name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:
            raise SubmissionError(f"{code}: import failed: {type(exc).__name__}: {exc}") from exc
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise SubmissionError(f"{yaml_path}: field 'entry': {exc}") from None
        from benchmark import HARNESS_VERSION

        digest["harness"] = HARNESS_VERSION
    factory = getattr(module, attr, None)
    if factory is None:
        raise SubmissionError(f"{yaml_path}: field 'entry': '{target}' has no '{attr}'")
    kwargs = dict(spec.params)
    if spec.weights is not None:
        weights = _inside(folder, spec.weights, "weights", yaml_path)
        digest["weights"] = sha256_file(weights)
        kwargs["weights_path"] = weights
    try:
        model = factory(**kwargs)
    except Exception as exc:
        raise SubmissionError(
            f"{yaml_path}: building '{spec.entry}' with params {sorted(kwargs)} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if spec.kind == "implicit":
        if not isinstance(model, ImplicitRewardModel):
            raise SubmissionError(
                f"{yaml_path}: kind 'implicit' but the model lacks policy_logp/reference_logp/beta"
            )
        model = ImplicitAsScalar(model)
    elif spec.kind == "scalar" and not isinstance(model, ScalarRewardModel):
        raise SubmissionError(
            f"{yaml_path}: kind 'scalar' but the model has no score()/sample_rate"
        )
    elif spec.kind == "pairwise" and not isinstance(model, PairwiseRewardModel):
        raise SubmissionError(
            f"{yaml_path}: kind 'pairwise' but the model has no prefer()/sample_rate"
        )
    extra = getattr(model, "fingerprint", None)
    if callable(extra):
        digest["model"] = str(extra())
    fingerprint = hashlib.sha256(json.dumps(digest, sort_keys=True).encode()).hexdigest()[:32]
    return Submission(spec=spec, folder=folder, model=model, fingerprint=fingerprint)


def discover_submissions(root: str | Path) -> list[Path]:
    """Submission folders under `root` (those holding a submission.yaml), sorted by name."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.parent for p in root.glob("*/submission.yaml"))
