"""A submission's `submission.yaml`: the validated spec, read without running any of its code.

Unknown keys are refused; an entry is a `file.py:callable` inside the folder or a reference adapter
in `benchmark.baselines` (a module entry); params, requirements and files it names are checked
with one-line errors naming the file and the field.
"""

from __future__ import annotations

import datetime
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from benchmark.data.safe_yaml import load_yaml
from benchmark.errors import SubmissionError, describe_validation_error

TRUSTED_PACKAGE = "benchmark.baselines"
"""Where module entries live: the harness's own reference adapters."""


def is_module_entry(entry: str | None) -> bool:
    """`benchmark.baselines.x:callable`, as opposed to a folder's own `file.py:callable`."""
    if entry is None:
        return False
    target = entry.partition(":")[0]
    return not target.endswith(".py") and target.startswith(TRUSTED_PACKAGE + ".")


RESERVED_PARAMS = frozenset({"weights_path"})
"""Set by the harness from `weights` (checked inside the folder and hashed), never by params."""


class SubmissionSpec(BaseModel):
    """`submission.yaml`: what a submitted model is and how to build it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    display_name: str
    kind: Literal["scalar", "pairwise", "implicit", "predictions"]
    entry: str | None = Field(
        default=None,
        description="'file.py:callable' inside the folder, or 'benchmark.baselines.x:callable'; "
        "none for kind 'predictions'",
    )
    predictions: dict[str, str] = Field(
        default_factory=dict,
        description="kind 'predictions': task name -> a .parquet or .csv file inside the folder "
        "with per-clip scores (clip_id, score) or per-pair P(A better) (pair_id, p_a)",
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
    revision: str | None = Field(
        default=None, max_length=200, description="code or checkpoint revision (commit, hub tag)"
    )
    release_date: datetime.date | None = None
    parameters: int | None = Field(
        default=None, ge=0, description="declared parameter count (the harness measures it too)"
    )
    requirements: list[str] = Field(
        default_factory=list,
        description="PEP 508 requirements the model's code needs, checked before it runs",
    )

    @field_validator("requirements")
    @classmethod
    def _requirements_form(cls, v: list[str]) -> list[str]:
        if not v:
            return v  # packaging's parser is a noticeable share of a cached run's start-up
        from packaging.requirements import InvalidRequirement, Requirement

        for item in v:
            try:
                Requirement(item)
            except InvalidRequirement as exc:
                raise ValueError(f"'{item}' is not a PEP 508 requirement ({exc})") from None
        return v

    @field_validator("entry")
    @classmethod
    def _entry_form(cls, v: str | None) -> str | None:
        if v is None:
            return v
        target, sep, attr = v.partition(":")
        if not sep or not target or not attr.isidentifier():
            raise ValueError("must look like 'model.py:build' or 'benchmark.module:Class'")
        if not target.endswith(".py") and not target.startswith(TRUSTED_PACKAGE + "."):
            raise ValueError(
                f"module entries must be reference adapters in '{TRUSTED_PACKAGE}' (the "
                "harness's own code); a submission's own code is 'file.py:callable'"
            )
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

    @model_validator(mode="after")
    def _entry_or_predictions(self) -> SubmissionSpec:
        if self.kind == "predictions":
            if self.entry is not None or self.weights is not None or self.params:
                raise ValueError("kind 'predictions' runs no code: no entry, weights or params")
            if not self.predictions:
                raise ValueError("kind 'predictions' needs 'predictions: {task: file}'")
            for task, file in self.predictions.items():
                if not file.endswith((".parquet", ".csv")):
                    raise ValueError(f"predictions.{task}: expected a .parquet or .csv file")
        elif self.entry is None:
            raise ValueError(f"kind '{self.kind}' needs an 'entry'")
        elif self.predictions:
            raise ValueError("'predictions' files belong to kind 'predictions'")
        return self


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
    raw = load_yaml(yaml_path, SubmissionError)
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


def _check_params(spec: SubmissionSpec, folder: Path, yaml_path: Path) -> None:
    """Params are data for the model's factory, never a way to reach files outside the folder.

    Files inside the folder are already in the fingerprint; a string that looks like a path out
    of it (absolute, `~`, or `..` escaping) is refused, and harness-set keys are reserved.
    """
    reserved = sorted(RESERVED_PARAMS & set(spec.params))
    if reserved:
        raise SubmissionError(
            f"{yaml_path}: field 'params.{reserved[0]}' is set by the harness from 'weights'"
        )

    def walk(value: Any, where: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{where}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{where}[{i}]")
        elif isinstance(value, str) and ("/" in value or "\\" in value or value.startswith("~")):
            if value.startswith(("/", "~")) or not (folder / value).resolve().is_relative_to(
                folder.resolve()
            ):
                raise SubmissionError(
                    f"{yaml_path}: field '{where}': '{value}' points outside the submission "
                    "folder; models may only read files of their own folder"
                )

    walk(spec.params, "params")


def check_requirements(spec: SubmissionSpec, yaml_path: Path) -> None:
    """Every declared requirement is installed in a matching version, or a one-line error that
    says how to install it (before any of the model's code runs)."""
    if not spec.requirements:
        return
    from importlib import metadata

    from packaging.requirements import Requirement

    for item in spec.requirements:
        req = Requirement(item)
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            found = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            found = None
        if found is None or (req.specifier and not req.specifier.contains(found, prereleases=True)):
            have = "not installed" if found is None else f"{found} is installed"
            raise SubmissionError(
                f"{yaml_path}: field 'requirements': '{item}' is needed but {have}; install it "
                f"with: {sys.executable} -m pip install '{item}'"
            )


def discover_submissions(root: str | Path) -> list[Path]:
    """Submission folders under `root` (those holding a submission.yaml), sorted by name."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.parent for p in root.glob("*/submission.yaml"))
