"""The versioned results schema: one results file, `<results>/<submission>/<task>.json`, and the
run record beside it, `<task>.run.json`, as `pipeline.evaluate` writes them.

Every field `evaluate()` writes is declared here and unknown keys are refused (`extra="forbid"`),
so a change to what the pipeline writes fails the tests that validate real results files instead
of slipping past the API. Two nested records stay loosely typed on purpose: the triplet-sampler
record inside `diagnostics.triplets` (its own versioned format, `benchmark.pairs.triplets`) and the
per-split pair-count overrides, whose shapes belong to those modules.

Schema version. Both files carry `schema_version` (`SCHEMA_VERSION`). It is bumped on any change
of meaning (a field added, removed, renamed, or computed differently), and readers refuse a missing
or unknown version with one line naming the file (`check_schema_version`): numbers whose meaning
this harness does not know must not be shown as if it did. `metrics_version` stays the version of
the numbers inside `metrics` (`benchmark.stats.metrics`); a change there bumps both.

Why two files. The results JSON is a pure function of the task, the corpus and the submission
(byte-identical on a rerun, so committed results stay clean in git and the API and the CLI can be
compared byte for byte). Wall time, throughput and hardware differ on every run, so they go into
the run record (`RunRecord`): it describes the run that computed the numbers, and a rerun that
reproduces the same results file leaves both files untouched (`pipeline.evaluate`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from benchmark.errors import DataError, describe_validation_error

SCHEMA_VERSION = 3
"""1: the first versioned schema (results JSON + run record); 2: the noise ceiling (`ceiling`,
always written, null without label reliabilities), reliability-filtered results
(`reliability_filter`) and the label's score column (`label`); 3: intervals over new systems and
contents (each cell's `generalises_over`, `interval_note`, `df`, systems-fixed interval,
`n_systems`, `n_contents`; `interval` records the rule)."""

READABLE_SCHEMA_VERSIONS: tuple[int, ...] = (SCHEMA_VERSION,)
"""The schema versions this harness reads (it writes `SCHEMA_VERSION`): older files hold
intervals over clips only, which the board must not show beside intervals over systems."""

RUN_SUFFIX = ".run.json"
"""`<task>.json` -> `<task>.run.json` (also `<task>@split.run.json`, `<task>.partial.run.json`,
`<task>.min-rel-0.9.run.json`)."""

_STRICT = ConfigDict(extra="forbid", frozen=True)


def run_record_path(result_json: str | Path) -> Path:
    """The run record beside a results file: `<task>[@split][.partial].run.json`."""
    path = Path(result_json)
    if not path.name.endswith(".json") or path.name.endswith(RUN_SUFFIX):
        raise ValueError(f"{path}: not a results file name (<task>.json)")
    return path.with_name(path.name[: -len(".json")] + RUN_SUFFIX)


_MISSING = object()


def _readable(version: object) -> bool:
    return type(version) is int and version in READABLE_SCHEMA_VERSIONS


def _versions() -> str:
    return ", ".join(str(v) for v in READABLE_SCHEMA_VERSIONS)


def check_schema_version(raw: dict[str, Any], path: str | Path) -> None:
    """Refuse a record without a schema version this harness reads: one line naming the file, the
    field, the value found, the versions read here and what to do (rerun, or upgrade)."""
    from benchmark.escape import display_name

    found = raw.get("schema_version", _MISSING)
    if _readable(found):
        return
    sub = display_name(str(raw.get("submission") or "SUBMISSION"), 64)
    task = display_name(str(raw.get("task") or "TASK"), 64)
    rerun = f"rerun `mosrm evaluate {sub} --task {task}` with this harness"
    if found is _MISSING:
        value = "missing (written before results were versioned)"
        todo = rerun
    else:
        value = display_name(json.dumps(found), 40)
        newer = type(found) is int and found > max(READABLE_SCHEMA_VERSIONS)
        todo = f"upgrade mosrm-bench to read it, or {rerun}" if newer else rerun
    raise DataError(
        f"{path}: field 'schema_version' is {value}; this harness reads results schema version "
        f"{_versions()}: {todo}"
    )


def _check_version_field(value: int) -> int:
    if not _readable(value):
        raise ValueError(f"schema version {value!r} unknown (this harness reads {_versions()})")
    return value


def _read_json_object(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a JSON object at the top level")
    return raw


class Cell(BaseModel):
    """One accuracy cell (`metrics.cell`); an empty cell (n = 0) has None for every rate."""

    model_config = _STRICT

    n: int
    n_clips: int
    correct: int
    ties: int
    n_systems: int
    n_contents: int
    accuracy: float | None
    ci_low: float | None
    ci_high: float | None
    generalises_over: str | None
    interval_note: str | None
    df: float | None
    ci_low_systems_fixed: float | None
    ci_high_systems_fixed: float | None
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
    """Judge diagnostics (`benchmark.stats.diagnostics`): by construction for one-score-per-clip models."""

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
    generalises_over: str
    min_clusters: int
    dominant_share: float


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
    """A quick run's subset (`pairs.prepare.limit_pairs`); only in `<task>.partial.json`."""

    model_config = _STRICT

    limit: int
    of: int
    n: int
    seed: int
    seed_label: str
    pair_ids_sha256: str
    triplets: int


class ReliabilityFilter(BaseModel):
    """`evaluate --min-reliability`: only pairs with `label_reliability` >= `min` were scored;
    `kept` of the split's `of` pairs, `unrated` of them excluded for a null reliability
    (`ceiling.filter_pairs`); only in `<task>.min-rel-<min>.json`."""

    model_config = _STRICT

    min: float
    kept: int
    of: int
    unrated: int


class CeilingCell(BaseModel):
    """The noise ceiling of one cell (`reliability.ceiling_cells`): the mean label reliability of
    its `n_rated` pairs (of `n`), with the interval of the oracle's accuracy."""

    model_config = _STRICT

    ceiling: float
    ci_low: float
    ci_high: float
    n: int
    n_rated: int


class Ceiling(BaseModel):
    """`ceiling.ceiling_report`'s block: a ceiling per cell of `metrics`, keyed as there (null
    for a cell without a rated pair); by_task, by_split and macro are not computed."""

    model_config = _STRICT

    estimator: str
    reliability_version: int
    draws: int
    confidence: float
    measured_coverage: tuple[float, float]
    """The range's coverage in simulation (`stats.ceiling.MEASURED_COVERAGE`), below nominal."""
    overall: CeilingCell | None
    by_bin: dict[str, CeilingCell | None]
    by_relation: dict[str, CeilingCell | None]
    by_relation_bin: dict[str, dict[str, CeilingCell | None]]
    by_subset: dict[str, CeilingCell | None]
    by_group_subset: dict[str, CeilingCell | None] | None = None


class Label(BaseModel):
    """The score column a task's preferences come from (issue 13): `dimension` "quality" is the
    overall MOS; another (e.g. "noi", "intelligibility") is never pooled with it on the board."""

    model_config = _STRICT

    dimension: str
    column: str | None


class TaskResult(BaseModel):
    """One submission on one task and split: the whole results JSON."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, protected_namespaces=()
    )

    schema_version: int = Field(strict=True)
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
    ceiling: Ceiling | None = None
    """Null where no pair has a label reliability."""
    label: Label | None = None
    """Which score the preference labels come from (absent: overall MOS)."""
    diagnostics: Diagnostics
    reliability_filter: ReliabilityFilter | None = None
    partial: Partial | None = None

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        return _check_version_field(value)

    @classmethod
    def load(cls, path: str | Path) -> TaskResult:
        """Read and validate one results file; errors are one line naming the file and field."""
        path = Path(path)
        return cls.from_raw(_read_json_object(path), path)

    @classmethod
    def from_raw(cls, raw: dict[str, Any], path: str | Path) -> TaskResult:
        """Validate an already parsed results file (`path` names it in errors)."""
        check_schema_version(raw, path)
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise DataError(f"{path}: {describe_validation_error(exc)}") from None

    def as_json(self) -> dict[str, Any]:
        """The results JSON as written: the fields that were given (an optional block left out
        stays out), under their JSON names."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)

    def json_text(self) -> str:
        """The results file's bytes: sorted keys, two-space indent, one final newline. A pure
        function of the record, so the same run gives the same file everywhere."""
        return json.dumps(self.as_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

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
        ('dmos_lt_0_2'), a group subset, or a relation and bin ('cross/2'); or by the label the
        CLI and the board print for it ('bin 0', 'bin 0 (Δ 0.12–0.50)', 'ΔMOS < 0.2',
        'subset LA', 'cross/bin 2')."""
        m = self.metrics
        name = _cell_key(name)
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


def _cell_key(label: str) -> str:
    """A cell's key from the key itself or from its printed label (`TaskResult.cell`)."""
    import re

    from benchmark.results.report import SUBSET_LABELS

    text = " ".join(label.split())
    rel, sep, rest = text.partition("/")
    if sep:
        return f"{rel}/{_cell_key(rest)}"
    found = re.fullmatch(r"bin (\d+)(?: \(Δ .*\))?", text)
    if found:
        return found.group(1)
    by_label = {v: k for k, v in SUBSET_LABELS.items()}
    if text in by_label:
        return by_label[text]
    return text.removeprefix("subset ") if text.startswith("subset ") else text


class WallTime(BaseModel):
    """Seconds (3 decimals): the score stage (model calls, cache look-ups, judge triplets) and the
    whole `evaluate` call up to writing its files."""

    model_config = _STRICT

    score_s: float
    total_s: float


class CacheUse(BaseModel):
    """Where the score stage's units came from: the score cache, or the model just now.

    Clips for one-score-per-clip models, unordered pairs (each judged in both orders) for pairwise
    judges. A run whose units all came from the cache measured the cache, not the model: its
    throughput says nothing about the model's speed.
    """

    model_config = _STRICT

    clips_from_cache: int
    clips_computed: int
    pairs_from_cache: int
    pairs_computed: int


class Gpu(BaseModel):
    model_config = _STRICT

    name: str
    memory_gib: float


class Hardware(BaseModel):
    """The machine that ran the score stage (`benchmark.results.hardware`)."""

    model_config = _STRICT

    cpu: str | None
    logical_cores: int | None
    ram_gib: float | None
    gpus: list[Gpu]
    platform: str
    python: str
    torch: str | None


class SandboxRecord(BaseModel):
    """What confined a sandboxed model (`SandboxedModel.describe`): read by people, not checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    started: bool
    sandboxed: bool
    mechanism: Literal["cgroup-v1", "cgroup-v2", "rlimits"]
    uid: int
    seccomp: bool
    limits: dict[str, float | int | None]
    budget: dict[str, float] | None
    cpu_seconds: float | None
    peak_memory_mb: float | None
    stopped: str | None


class RunRecord(BaseModel):
    """How one results file was computed: `<task>.run.json` beside `<task>.json` (module doc).

    `results_sha256` is the SHA-256 of the results file it describes, so a record left over from
    another run (or a hand-edited results file) is recognisable.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = Field(strict=True)
    submission: str
    task: str
    split: str
    results_sha256: str
    harness_version: str
    finished_utc: str
    wall_time: WallTime
    n_pairs: int
    n_clips: int
    pairs_per_s: float | None
    clips_per_s: float | None
    score_cache: CacheUse
    batch_size: int
    max_batch_samples: int
    device: str | None
    dtype: str | None
    autocast: str | None
    hardware: Hardware
    sandbox: SandboxRecord | None = None
    """How a sandboxed submission was confined (None: a reference baseline, run in-process)."""

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        return _check_version_field(value)

    @classmethod
    def load(cls, path: str | Path) -> RunRecord:
        """Read and validate one run record; errors are one line naming the file and field."""
        path = Path(path)
        raw = _read_json_object(path)
        check_schema_version(raw, path)
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise DataError(f"{path}: {describe_validation_error(exc)}") from None

    def dumps(self) -> str:
        """The file's text: sorted keys, two-space indent, a final newline (as the results)."""
        data = self.model_dump(mode="json")
        if data.get("sandbox") is None:
            del data["sandbox"]  # in-process runs: records as they were before the field existed
        return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


PARTIAL_SUFFIX = ".partial.json"
"""A quick run (`evaluate(limit=N)`) writes `<task>.partial.json` (+ `.partial.predictions.parquet`,
`.partial.triplets.parquet`), never `<task>.json`: a smoke check cannot overwrite a full result,
and the board skips these names."""


PROBES_SCHEMA_VERSION = 1
"""The probe record's own version (`benchmark.probe`, `<results>/<sub>/probes/<task>.json`):
1: sensitivity, hacking and best-of-N blocks, the stream check, settings and cost."""


class ProbesResult(BaseModel):
    """What `mosrm probe` / `evaluate --probes` writes for one submission on one task. The blocks
    are the `as_json()` of `stats.probe_stats` and `stats.best_of_n` (typed there); this record
    ties them to the exact model, pairs and probe catalogue they came from."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    probes_schema_version: Literal[1]
    submission: str
    task: str
    split: str
    kind: str
    model_fingerprint: str
    pair_file_sha256: str
    probes_version: int
    seed: int
    settings: dict[str, Any]
    cost: dict[str, Any]
    sensitivity: dict[str, Any]
    hacking: dict[str, Any]
    best_of_n: dict[str, Any]
    stream_check: dict[str, Any] | None = None
