"""A typed view of one results file, `<results>/<submission>/<task>.json`, as `pipeline.evaluate`
writes it today.

Every field `evaluate()` writes is declared here and unknown keys are refused (`extra="forbid"`),
so a change to what the pipeline writes fails the tests that validate real results files instead
of slipping past the API. Two nested records stay loosely typed on purpose: the triplet-sampler
record inside `diagnostics.triplets` (its own versioned format, `benchmark.triplets`) and the
per-split pair-count overrides, whose shapes belong to those modules. This is not yet the
versioned results schema (issue 11, item 2): no schema version is read or written here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from benchmark.errors import DataError, describe_validation_error

_STRICT = ConfigDict(extra="forbid", frozen=True)


class Cell(BaseModel):
    """One accuracy cell (`metrics.cell`); an empty cell (n = 0) has None for every rate."""

    model_config = _STRICT

    n: int
    n_clips: int
    correct: int
    ties: int
    accuracy: float | None
    ci_low: float | None
    ci_high: float | None
    tie_rate: float | None
    tie_half_accuracy: float | None
    design_effect: float | None
    iid_pairs_ci_low: float | None
    iid_pairs_ci_high: float | None

    @property
    def interval(self) -> tuple[float | None, float | None]:
        return (self.ci_low, self.ci_high)


class MacroCell(BaseModel):
    """The unweighted mean over tasks (`metrics.macro_cell`)."""

    model_config = _STRICT

    accuracy: float | None
    ci_low: float | None
    ci_high: float | None
    n_tasks: int


class Metrics(BaseModel):
    """`metrics.aggregate`'s block: cells overall and per task, split, relation, ΔMOS bin, subset."""

    model_config = _STRICT

    overall: Cell
    macro: MacroCell
    by_task: dict[str, Cell]
    by_split: dict[str, Cell]
    by_relation: dict[str, Cell]
    by_bin: dict[str, Cell]
    by_subset: dict[str, Cell]
    by_relation_bin: dict[str, dict[str, Cell]]
    by_group_subset: dict[str, Cell] | None = None


class Diagnostics(BaseModel):
    """Judge diagnostics (`benchmark.diagnostics`): by construction for one-score-per-clip models."""

    model_config = _STRICT

    version: int
    by_construction: bool
    note: str | None
    unavailable: dict[str, str] | None
    n_pairs: int
    position_consistency: float | None = None
    position_consistency_ci: tuple[float, float] | None = None
    n_consistent: int | None = None
    n_tied_both_orders: int | None = None
    first_position_bias: float | None = None
    first_position_bias_ci: tuple[float, float] | None = None
    first_position_bias_p: float | None = None
    n_pair_clips: int | None = None
    cycle_rate: float | None = None
    cycle_rate_ci: tuple[float, float] | None = None
    n_cycles: int | None = None
    n_triplets: int | None = None
    n_triplet_clips: int | None = None
    n_triplets_with_ties: int | None = None
    triplet_pairs_judged: int | None = None
    triplets: dict[str, Any] | None = None


class IntervalSpec(BaseModel):
    model_config = _STRICT

    confidence: float
    estimator: str
    unit: str


class Preprocessing(BaseModel):
    """What the model was fed (`audio.preprocessing_config`, plus autocast when in effect)."""

    model_config = _STRICT

    version: int
    sample_rate: int
    mono: str
    resampler: str
    dtype: str
    autocast: str | None = None


class ModelInfo(BaseModel):
    """`models.model_info`: what the board shows about the model."""

    model_config = _STRICT

    parameters: int | None
    parameters_source: Literal["measured", "declared"] | None
    license: str | None
    url: str | None
    revision: str | None
    release_date: str | None
    requirements: list[str]


class Partial(BaseModel):
    """A quick run's subset (`pipeline.limit_pairs`); only in `<task>.partial.json`."""

    model_config = _STRICT

    limit: int
    of: int
    n: int
    seed: int
    seed_label: str
    pair_ids_sha256: str
    triplets: int


class TaskResult(BaseModel):
    """One submission on one task and split: the whole results JSON."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, protected_namespaces=()
    )

    submission: str
    display_name: str
    kind: Literal["scalar", "pairwise", "implicit", "predictions"]
    baseline: bool
    shortcut: bool
    model_fingerprint: str
    training_data: list[str]
    zero_shot: bool
    task: str
    task_version: int
    synthetic: bool
    split: str
    harness_version: str
    pair_file_sha256: str
    pair_count_overrides: dict[str, Any] | None
    n_pairs: int
    seed: int
    bins: int
    bins_requested: int
    bin_edges: list[float] | None
    metrics_version: int
    interval_spec: IntervalSpec = Field(alias="interval")
    """The JSON's `interval` block (how intervals were computed); `interval` is the overall CI."""
    preprocessing: Preprocessing | None
    model: ModelInfo
    metrics: Metrics
    diagnostics: Diagnostics
    partial: Partial | None = None

    @classmethod
    def load(cls, path: str | Path) -> TaskResult:
        """Read and validate one results file; errors are one line naming the file and field."""
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
        except ValueError as exc:
            raise DataError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise DataError(f"{path}: expected a JSON object at the top level")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise DataError(f"{path}: {describe_validation_error(exc)}") from None

    @property
    def accuracy(self) -> float | None:
        """Overall pairwise accuracy (ties count as wrong; see `tie_half_accuracy`)."""
        return self.metrics.overall.accuracy

    @property
    def interval(self) -> tuple[float | None, float | None]:
        """The overall accuracy's confidence interval (`interval_spec` says which)."""
        return self.metrics.overall.interval

    def cell(self, name: str) -> Cell:
        """A cell by name: 'overall', a relation ('cross'), a ΔMOS bin ('0'), a fixed subset
        ('dmos_lt_0_2'), a group subset, or a relation and bin ('cross/2')."""
        m = self.metrics
        if name == "overall":
            return m.overall
        rel, sep, bin_ = name.partition("/")
        if sep:
            found = m.by_relation_bin.get(rel, {}).get(bin_)
            if found is not None:
                return found
        else:
            for group in (m.by_relation, m.by_bin, m.by_subset, m.by_group_subset or {}):
                if name in group:
                    return group[name]
        known = ["overall", *m.by_relation, *m.by_bin, *m.by_subset, *(m.by_group_subset or {})]
        known += [f"{r}/{b}" for r, bins in m.by_relation_bin.items() for b in bins]
        raise KeyError(
            f"{self.submission}/{self.task}: no cell '{name}' (cells: {', '.join(known)})"
        )
