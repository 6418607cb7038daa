"""Declarative tasks: one YAML per task under `tasks/`, validated with unknown keys rejected.

A task says which reader produces its clip table, where its data lives, which relations and how
many pairs per split to sample, how to bin ΔMOS, the seed, and the licence/citation to show. The
`version` is bumped whenever a change to the YAML changes the pairs, so results of different task
versions are never mixed on the leaderboard.

A task may take its preference label from another score column of its corpus than overall quality
(`label: {column: noi, score_range: [1, 5]}`: NISQA's noisiness, TMHINT-QI's intelligibility, any
column of a CSV). Such a task shares its corpus's data folder (`data.corpus`), so no second
download, and the board groups tasks by `TaskSpec.label_dimension`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from benchmark.data.safe_yaml import load_yaml
from benchmark.data.tables import RELATIONS
from benchmark.errors import TaskSpecError, describe_validation_error, did_you_mean

if TYPE_CHECKING:
    from benchmark.data.corpora import Reader

Relation = Literal["same_content", "same_system", "cross", "any"]
Count = int | Literal["all"]


class DataSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    root: str | None = Field(
        default=None,
        description="data root; relative paths are resolved against the task YAML's folder; "
        "default: $MOSRM_HOME/data/<task>; `--data-root` on the CLI overrides",
    )
    options: dict[str, Any] = Field(default_factory=dict, description="reader-specific options")
    corpus: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$",
        description="the corpus folder the task reads: its default data root is "
        "$MOSRM_HOME/data/<corpus> (where `mosrm download <corpus>` puts it), shared by every "
        "task of that corpus (e.g. nisqa_noi reads nisqa's); default: the task's name",
    )


QUALITY = "quality"
"""`TaskSpec.label_dimension` of a task labelled by overall quality (no `label`)."""


class LabelSpec(BaseModel):
    """Which score column the preference label comes from, when not overall quality."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str = Field(
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$",
        description="the score column, as the reader names it (NISQA: noi, col, dis, loud; "
        "TMHINT-QI: intelligibility_score; csv: a header of the file); passed to the reader as "
        "option `label_column`. Omit `label` for overall quality",
    )
    score_range: tuple[float, float] | None = Field(
        default=None,
        description="[low, high] of this column's scale. When given it is the task's score "
        "range (`TaskSpec.score_range` takes it), so it may not be given twice: a task sets "
        "either label.score_range or the top-level score_range",
    )

    @field_validator("score_range")
    @classmethod
    def _range(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not v[0] < v[1]:
            raise ValueError("score_range must be [low, high] with low < high")
        return v


class CardSpec(BaseModel):
    """What the data card says that cannot be computed from the data (`mosrm card`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(description="where the corpus comes from: record ids, URLs, archives")
    redistribution: str = Field(description="what may and may not be redistributed, and why")
    published_clips: dict[str, int] = Field(
        default_factory=dict,
        description="split -> clip count as published by the corpus authors (shown beside ours)",
    )
    notes: str | None = Field(default=None, description="markdown shown under 'Notes'")
    notes_file: str | None = Field(
        default=None,
        description="markdown file with the notes, relative to the task YAML's folder (for long "
        "prose); read when the task is loaded, exclusive with 'notes'",
    )

    @model_validator(mode="after")
    def _one_notes_source(self) -> CardSpec:
        if self.notes is not None and self.notes_file is not None:
            raise ValueError("give either 'notes' or 'notes_file', not both")
        return self


class TaskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    version: int = Field(ge=1)
    description: str
    reader: str
    data: DataSpec = Field(default_factory=DataSpec)
    score_range: tuple[float, float] = (1.0, 5.0)
    relations: tuple[Relation, ...] = ("same_content", "same_system", "cross")
    pairs: dict[str, dict[Relation, Count]] = Field(
        description="split -> relation -> number of pairs to sample, or 'all'"
    )
    eval_split: str = "test"
    min_delta: float = Field(default=0.0, ge=0.0)
    bins: int = Field(default=5, ge=1, le=100)
    seed: int = 0
    license: str
    citation: str
    url: str | None = None
    synthetic: bool = False
    balance_subsets: bool = Field(
        default=False,
        description="split each relation's pair count evenly across the subsets of a split "
        "(e.g. VMC'23 tracks), instead of sampling from their union",
    )
    card: CardSpec | None = None
    label: LabelSpec | None = Field(
        default=None,
        description="take the preference label from another score column than overall quality",
    )
    label_reliability: Literal["closed_form", "bootstrap"] = Field(
        default="closed_form",
        description="estimator of each pair's label reliability (`benchmark.pairs.reliability`): the "
        "closed form, or the rater-level bootstrap (slower; needs no normal approximation)",
    )

    @model_validator(mode="before")
    @classmethod
    def _one_score_range(cls, data: Any) -> Any:
        """`label.score_range` becomes the task's `score_range`, which every stage reads; giving
        both would leave a reader of the YAML guessing which one the pairs used."""
        if not isinstance(data, dict) or not isinstance(data.get("label"), dict):
            return data
        label_range = data["label"].get("score_range")
        if label_range is None:
            return data
        if "score_range" in data:
            raise ValueError(
                "give the label's scale once: 'label.score_range' (it is then the task's score "
                "range) or the top-level 'score_range', not both"
            )
        return {**data, "score_range": label_range}

    @property
    def label_dimension(self) -> str:
        """What the preference label measures: "quality", or the label's column name."""
        return QUALITY if self.label is None else self.label.column

    @field_validator("score_range")
    @classmethod
    def _range(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not v[0] < v[1]:
            raise ValueError("score_range must be [low, high] with low < high")
        return v

    @field_validator("relations")
    @classmethod
    def _relations(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(v)) != len(v):
            raise ValueError("relations must not repeat")
        return v

    @model_validator(mode="after")
    def _pairs_match_relations(self) -> TaskSpec:
        for split, per_rel in self.pairs.items():
            for rel, count in per_rel.items():
                if rel not in self.relations:
                    raise ValueError(f"pairs.{split}.{rel}: relation not listed in 'relations'")
                if isinstance(count, int) and count < 0:
                    raise ValueError(f"pairs.{split}.{rel}: count must be >= 0 or 'all'")
        if self.eval_split not in self.pairs:
            raise ValueError(f"eval_split '{self.eval_split}' has no entry under 'pairs'")
        if "label_column" in self.data.options:
            raise ValueError(
                "data.options.label_column: set 'label.column' instead (the board reads the "
                "task's label dimension from 'label')"
            )
        return self


assert set(RELATIONS) == set(get_args(Relation))  # one list of relations, two spellings


class Task:
    """A validated task spec plus where it came from."""

    def __init__(self, spec: TaskSpec, path: Path | None) -> None:
        self.spec = spec
        self.path = path

    @property
    def name(self) -> str:
        return self.spec.name

    def data_root(self, override: str | Path | None = None) -> Path:
        from benchmark.paths import default_data_root

        if override is not None:
            return Path(override).expanduser().resolve()
        if self.spec.data.root is not None:
            root = Path(self.spec.data.root).expanduser()
            if not root.is_absolute() and self.path is not None:
                root = self.path.parent / root
            return root.resolve()
        return default_data_root(self.corpus)

    @property
    def corpus(self) -> str:
        """The corpus folder this task reads (`data.corpus`, default the task's name)."""
        return self.spec.data.corpus or self.name

    def reader(self) -> Reader:
        from benchmark.data.corpora import get_reader

        return get_reader(self.spec.reader)

    def reader_options(self) -> dict[str, Any]:
        """`data.options`, plus the label column (`label_column`) for a task with a `label`."""
        options = dict(self.spec.data.options)
        if self.spec.label is not None:
            options["label_column"] = self.spec.label.column
        return options

    def available(self, data_root: str | Path | None = None) -> bool:
        return self.reader().available(self.data_root(data_root), self.reader_options())


def load_task_file(path: str | Path) -> Task:
    path = Path(path)
    raw = load_yaml(path, TaskSpecError)
    if not isinstance(raw, dict):
        raise TaskSpecError(f"{path}: expected a mapping at the top level")
    try:
        spec = TaskSpec.model_validate(raw)
    except ValidationError as exc:
        raise TaskSpecError(f"{path}: {describe_validation_error(exc)}") from None
    if spec.name != path.stem:
        raise TaskSpecError(f"{path}: field 'name' is '{spec.name}' but the file is '{path.name}'")
    if spec.card is not None and spec.card.notes_file is not None:
        spec = spec.model_copy(update={"card": _read_notes(path, spec.card)})
    return Task(spec, path.resolve())


def _read_notes(path: Path, card: CardSpec) -> CardSpec:
    """Inline `card.notes_file`, which must stay inside the folder holding the task's `tasks/`
    (the workspace, or the package's `shipped/`)."""
    base = path.resolve().parent
    target = (base / str(card.notes_file)).resolve()
    if not target.is_relative_to(base.parent):
        raise TaskSpecError(f"{path}: field 'card.notes_file' points outside the workspace")
    try:
        text = target.read_text(encoding="utf-8")
    except OSError as exc:
        raise TaskSpecError(
            f"{path}: field 'card.notes_file': cannot read {target}: {exc.strerror}"
        ) from None
    return card.model_copy(update={"notes": text.strip() + "\n", "notes_file": None})


def load_tasks(folder: str | Path) -> dict[str, Task]:
    """Every `*.yaml` task under `folder`, by name (sorted)."""
    folder = Path(folder)
    tasks = [load_task_file(p) for p in sorted(folder.glob("*.yaml"))]
    return {t.name: t for t in tasks}


def get_task(folder: str | Path, name: str) -> Task:
    path = Path(folder) / f"{name}.yaml"
    if not path.is_file():
        names = sorted(p.stem for p in Path(folder).glob("*.yaml"))
        hint = did_you_mean(name, names)
        raise TaskSpecError(
            f"no task '{name}' in {folder}{hint} (known tasks: {', '.join(names) or 'none'})"
        )
    return load_task_file(path)


def task_files(workspace: str | Path) -> dict[str, Path]:
    """{name: YAML file} of every task a workspace sees: the package's (`workspace.SHIPPED_TASKS`)
    and its own `tasks/*.yaml`; a workspace task named like a shipped one is an error naming both
    files (results and the board are keyed by task name, so one name must mean one task)."""
    from benchmark.workspace import SHIPPED_TASKS

    out = {p.stem: p for p in sorted(SHIPPED_TASKS.glob("*.yaml"))}
    own = Path(workspace) / "tasks"
    if own.resolve() == SHIPPED_TASKS.resolve():
        return out
    for p in sorted(own.glob("*.yaml")):
        if p.stem in out:
            raise TaskSpecError(
                f"{p}: task '{p.stem}' is also a task of the package ({out[p.stem]}); give yours "
                "another name (results and the board are keyed by task name)"
            )
        out[p.stem] = p
    return out


def workspace_tasks(workspace: str | Path, names: Iterable[str] | None = None) -> dict[str, Task]:
    """The workspace's tasks (`task_files`), by name, only `names` when given (an unknown name is
    one error with the close known names)."""
    files = task_files(workspace)
    if names is None:
        return {n: load_task_file(p) for n, p in files.items()}
    wanted = list(dict.fromkeys(names))
    unknown = [n for n in wanted if n not in files]
    if unknown:
        hint = did_you_mean(unknown[0], files) if len(unknown) == 1 else ""
        raise TaskSpecError(
            f"unknown task(s): {', '.join(unknown)}{hint} (known: {', '.join(sorted(files))})"
        )
    return {n: load_task_file(files[n]) for n in sorted(wanted)}


def workspace_task(workspace: str | Path, name: str) -> Task:
    return workspace_tasks(workspace, [name])[name]
