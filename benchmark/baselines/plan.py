"""`mosrm train CONFIG --plan`: what a training run will read and do, said before it does any of it.

A paper-scale run trains one model per seed on five corpora for hours; finding out after an hour
that a corpus was never downloaded, or that a stage is ten times longer than thought, wastes the
hour. So the plan answers up front, from the same code the run uses: which tasks are present
(missing ones are one line each with the commands that fetch them, never a traceback), how many
clips, pairs and hours each split holds (from the prepared pair files themselves, prepared exactly
as training prepares them), how many optimizer steps every stage takes (the arithmetic of
`train_data.epoch_plan`, checked against it by the tests), and what a step costs here, measured by
a few real steps of the recipe's own model and loss on noise of the training clip length. The
cost is a measurement of a few steps, so it is always printed as an estimate, and it leaves out
what it did not measure (audio decoding, dev evaluation, data preparation, k-means).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from benchmark.baselines.micro_run import MICRO_STEPS, MicroRun, clip_seconds, measure, settings_run
from benchmark.baselines.train_config import TrainConfig
from benchmark.baselines.train_data import TaskData
from benchmark.errors import MosrmError, first_line

if TYPE_CHECKING:
    from benchmark.data.tasks import Task
    from benchmark.pairs.prepare import PreparedTask

Echo = Callable[[str], None]


# -- what the plan holds ---------------------------------------------------------------------------


@dataclass
class SplitPlan:
    """One split of a prepared task: its clips, its pair file's rows and its audio."""

    split: str
    clips: int
    pairs: int | None  # rows of the prepared pair file; None: the split has no pair file
    hours: float | None  # None: some clip's duration is unknown
    role: str  # "train", "dev", "test" (evaluated) or "unused"


@dataclass
class TaskPlan:
    """One task of the config: where its data is, or the one line that says how to get it."""

    name: str
    role: Literal["train", "out_of_domain"]
    corpus: str
    status: Literal["present", "missing", "error"]
    looked: list[Path] = field(default_factory=list)
    root: Path | None = None
    splits: list[SplitPlan] = field(default_factory=list)
    problem: str | None = None  # the one line shown for a missing task or a task in error
    prepared: PreparedTask | None = field(default=None, repr=False)
    data: TaskData | None = field(default=None, repr=False)  # what training reads (train tasks)
    sizes: TaskSizes | None = None  # train tasks: from `data`, else expected from the task file

    def hours(self, roles: Sequence[str]) -> float | None:
        """Audio hours of the splits with these roles (None when some duration is unknown)."""
        chosen = [s for s in self.splits if s.role in roles]
        if any(s.hours is None for s in chosen):
            return None
        return sum(s.hours or 0.0 for s in chosen)


@dataclass(frozen=True)
class StageCount:
    """How many examples and optimizer steps one stage of a recipe takes (one process)."""

    per_task: int  # examples drawn from each task per epoch
    examples: int  # per epoch, all tasks
    batches: int  # per epoch (a last partial batch is dropped, as `epoch_plan` does)
    steps: int  # optimizer steps over all epochs and inner iterations


@dataclass
class StagePlan:
    """A stage of the recipe (`train.Stage`) with its counts and, after a micro-run, its cost."""

    name: str
    unit: Literal["pair", "clip"]
    epochs: int
    batch_size: int
    iterations: int
    per_task_setting: int | None
    count: StageCount | None  # None: some task's size is unknown (not prepared, none expected)
    expected: bool = False  # counted partly from task files' pair counts, not prepared files
    seconds_per_step: float | None = None

    @property
    def steps(self) -> int | None:
        return None if self.count is None else self.count.steps

    @property
    def seconds(self) -> float | None:
        if self.seconds_per_step is None or self.count is None:
            return None
        return self.seconds_per_step * self.count.steps


@dataclass
class OneOff:
    """Work a recipe does once per model outside `fit` (DPO: fitting and applying the units)."""

    name: str
    what: str
    items: int | None  # clips it processes (None: unknown until every task is prepared)
    seconds_per_item: float | None = None

    @property
    def seconds(self) -> float | None:
        if self.seconds_per_item is None or self.items is None:
            return None
        return self.seconds_per_item * self.items


@dataclass
class Plan:
    """Everything `mosrm train CONFIG --plan` prints (`format_plan`)."""

    config: TrainConfig
    device: str
    tasks: list[TaskPlan]
    stages: list[StagePlan]
    one_off: list[OneOff] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    micro: MicroRun | None = None
    config_path: str | None = None

    @property
    def models(self) -> int:
        """Models the run trains: one per seed."""
        return len(self.config.seeds) if self.config.seeds is not None else 1

    @property
    def not_ready(self) -> list[TaskPlan]:
        """Tasks whose data is missing or cannot be prepared."""
        return [t for t in self.tasks if t.status != "present"]

    @property
    def steps_per_model(self) -> int | None:
        """Optimizer steps of one model (None: some stage's count is unknown)."""
        steps = [s.steps for s in self.stages]
        if not steps or any(n is None for n in steps):
            return None
        return sum(n or 0 for n in steps)

    @property
    def total_steps(self) -> int | None:
        one = self.steps_per_model
        return None if one is None else one * self.models

    @property
    def expected(self) -> bool:
        """Whether some count comes from task files rather than prepared pair files."""
        return any(s.expected for s in self.stages)

    @property
    def seconds_per_model(self) -> float | None:
        parts = [s.seconds for s in self.stages] + [o.seconds for o in self.one_off]
        if not self.stages or any(p is None for p in parts):
            return None
        return sum(p or 0.0 for p in parts)

    @property
    def total_seconds(self) -> float | None:
        one = self.seconds_per_model
        return None if one is None else one * self.models


# -- steps -----------------------------------------------------------------------------------------


def stage_count(
    sizes: Sequence[int],
    *,
    batch: int,
    epochs: int,
    per_task: int | None = None,
    iterations: int = 1,
) -> StageCount:
    """The counts `epoch_plan` gives a stage whose tasks have `sizes` train pairs (or clips):
    each epoch draws min(per_task, smallest task) from every task (the smallest task's count when
    `per_task` is None), cuts them into batches of `batch` (under torchrun: the global batch) and
    drops a last partial batch; each batch takes `iterations` optimizer steps."""
    if not sizes:
        return StageCount(0, 0, 0, 0)
    smallest = min(sizes)
    draws = smallest if per_task is None else min(per_task, smallest)
    examples = draws * len(sizes)
    batches = examples // batch
    return StageCount(draws, examples, batches, batches * epochs * iterations)


@dataclass(frozen=True)
class TaskSizes:
    """What a stage's counts depend on, per training task: its train pairs and train clips, and
    the clips DPO tokenises (train clips and dev-pair clips); None where unknown."""

    name: str
    train_pairs: int | None
    train_clips: int | None
    tokenised: int | None = None
    expected: bool = False  # from the task file (pairs it asks for), not from prepared files

    @classmethod
    def of(cls, data: TaskData) -> TaskSizes:
        dev = [*data.dev.get("chosen", []), *data.dev.get("rejected", [])]
        tokenised = len({str(c) for c in [*data.train_clips, *dev]})  # `UnitCache.items`
        return cls(data.name, int(data.train["chosen"].size), int(data.train_clips.size), tokenised)

    @classmethod
    def expected_of(cls, task: Task, train_split: str) -> TaskSizes:
        """Sizes a task not prepared here is expected to have: the train pairs its file asks for
        (a prepared pair file may hold fewer: a shortfall) and the train clips its data card
        says were published; unknown where the file says neither."""
        counts = list(task.spec.pairs.get(train_split, {}).values())
        pairs = sum(int(n) for n in counts) if counts and all(n != "all" for n in counts) else None
        card = task.spec.card
        clips = None if card is None else card.published_clips.get(train_split)
        return cls(task.name, pairs, clips, None, expected=True)


def recipe_stages(
    config: TrainConfig,
    tasks: Sequence[TaskData | TaskSizes],
    config_path: str | None = None,
) -> tuple[list[StagePlan], list[OneOff]]:
    """The stages `mosrm train` runs for `config` on `tasks` (in order), with their counts, and
    the recipe's one-off work; the recipe's own settings block is validated as training does."""
    sizes = [t if isinstance(t, TaskSizes) else TaskSizes.of(t) for t in tasks]

    def stage(
        name: str,
        unit: Literal["pair", "clip"],
        epochs: int,
        batch: int,
        per_task: int | None,
        iterations: int = 1,
    ) -> StagePlan:
        known = [t.train_pairs if unit == "pair" else t.train_clips for t in sizes]
        count = None
        if all(n is not None for n in known):
            count = stage_count(
                [n or 0 for n in known],
                batch=batch,
                epochs=epochs,
                per_task=per_task,
                iterations=iterations,
            )
        expected = any(t.expected for t in sizes)
        return StagePlan(name, unit, epochs, batch, iterations, per_task, count, expected)

    main = (config.epochs, config.batch_size, config.per_task_per_epoch)
    if config.loss in ("bt", "mse"):
        return [stage("main", "pair" if config.loss == "bt" else "clip", *main)], []
    run = settings_run(config, config_path)
    if config.loss == "dpo":
        from benchmark.baselines.dpo_train import settings_of as dpo_settings

        settings, units, _ = dpo_settings(run)
        ref = settings.ref
        clips = [t.train_clips for t in sizes]
        fit = "?" if None in clips else str(sum(min(settings.fit.clips, n or 0) for n in clips))
        tokenised = [t.tokenised for t in sizes]
        one_off = [
            OneOff(
                "units",
                f"k-means ({units['codebook_size']} centroids) on at most {settings.fit.frames} "
                f"frames of {fit} train clips, then every train and dev clip tokenised once",
                None if None in tokenised else sum(n or 0 for n in tokenised),
            )
        ]
        stages = [
            stage("ref", "clip", ref.epochs, ref.batch_size, ref.per_task_per_epoch),
            stage("dpo", "pair", *main),
        ]
        return stages, one_off
    from benchmark.baselines.grpo_train import settings_of as grpo_settings

    s = grpo_settings(run)
    sft = stage(
        "sft",
        "pair",
        s.sft_epochs,
        s.sft_batch_size or config.batch_size,
        s.sft_per_task or config.per_task_per_epoch,
    )
    return [sft, stage("grpo", "pair", *main, iterations=s.iterations)], []


def _missing_line(task: Task, role: str, looked: Path) -> str:
    """One line: the task, where it looked, and the commands that get its data."""
    from benchmark.pairs.data_roots import fetch_hint

    return f"{task.name} ({role}): no data at {looked}; {fetch_hint(task, looked)}"


def _roles(config: TrainConfig, task: Task, role: str) -> dict[str, str]:
    """split -> what the run does with it."""
    roles = {task.spec.eval_split: "test"}
    if role == "train":
        roles[config.train_split] = "train"
        roles.setdefault(config.dev_split, "dev")
    return roles


def _splits(prepared: PreparedTask, roles: dict[str, str]) -> list[SplitPlan]:
    import pyarrow.parquet as pq

    clips = prepared.clips
    split_of = clips.column("split").to_pylist()
    durations = clips.column("duration").to_pylist()
    names = sorted(set(split_of) | set(prepared.pair_files))
    order = {"train": 0, "dev": 1, "test": 2}
    names.sort(key=lambda s: (order.get(s, 3), s))
    out = []
    for split in names:
        durs = [d for s, d in zip(split_of, durations, strict=True) if s == split]
        hours = None if any(d is None for d in durs) else sum(durs) / 3600.0
        path = prepared.pair_files.get(split)
        pairs = None if path is None else int(pq.read_metadata(path).num_rows)
        out.append(SplitPlan(split, len(durs), pairs, hours, roles.get(split, "unused")))
    return out


def _task_plan(
    config: TrainConfig,
    repo: Path,
    name: str,
    role: Literal["train", "out_of_domain"],
    *,
    progress: bool,
    echo: Echo | None,
) -> TaskPlan:
    from benchmark.data.tasks import workspace_task
    from benchmark.errors import MachineError
    from benchmark.pairs.data_roots import find_data_root
    from benchmark.pairs.prepare import prepare

    shown = "train" if role == "train" else "out-of-domain"
    try:
        task = workspace_task(repo, name)
    except MosrmError as exc:
        return TaskPlan(name, role, name, "error", problem=f"{name} ({shown}): {exc}")
    try:
        root, looked = find_data_root(task, None)
    except MosrmError as exc:
        return TaskPlan(name, role, task.corpus, "error", problem=f"{name} ({shown}): {exc}")
    plan = TaskPlan(name, role, task.corpus, "missing", looked=looked, root=root)
    if root is None:
        plan.problem = _missing_line(task, shown, looked[0])
        if role == "train":
            plan.sizes = TaskSizes.expected_of(task, config.train_split)
        return plan
    try:
        prepared = prepare(task, root, reuse=True, progress=progress, echo=echo)
        plan.splits = _splits(prepared, _roles(config, task, role))
        plan.prepared = prepared
        if role == "train":
            plan.data = TaskData.of(prepared, config.train_split, config.dev_split)
            plan.sizes = TaskSizes.of(plan.data)
    except MachineError:
        raise  # a full disk is not the task's fault: training would stop here too
    except MosrmError as exc:
        plan.status = "error"
        plan.problem = f"{name} ({shown}): data at {root} cannot be used: {first_line(exc)}"
        return plan
    plan.status = "present"
    return plan


# -- the plan --------------------------------------------------------------------------------------


def resolve_device(config: TrainConfig) -> str:
    """The device training would use (`train._device` for one process)."""
    import torch

    if config.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return config.device


def run_micro(config: TrainConfig, plan: Plan, *, steps: int = MICRO_STEPS) -> MicroRun:
    """Time `steps` optimizer steps (after a warm-up) of each stage of the recipe, on noise clips
    of the plan's training length, on its device (`micro_run.measure`)."""
    return measure(
        config, plan.device, clip_seconds(config, plan.tasks), plan.config_path, steps=steps
    )


def make_plan(
    config: TrainConfig,
    repo: str | Path,
    *,
    micro_run: bool = True,
    config_path: str | Path | None = None,
    progress: bool = False,
    echo: Echo | None = None,
    micro_steps: int = MICRO_STEPS,
) -> Plan:
    """The plan of training `config` in workspace `repo`: tasks (prepared with reuse, as training
    prepares them), stages and their steps, and with `micro_run` a timed micro-run."""
    path = None if config_path is None else str(config_path)
    tasks = [
        _task_plan(config, Path(repo), n, "train", progress=progress, echo=echo)
        for n in config.tasks
    ]
    tasks += [
        _task_plan(config, Path(repo), n, "out_of_domain", progress=progress, echo=echo)
        for n in config.out_of_domain
    ]
    plan = Plan(config, resolve_device(config), tasks, [], config_path=path)
    train = [t for t in tasks if t.role == "train"]
    unknown = [t.name for t in train if t.sizes is None]
    if unknown:
        plan.notes.append(f"steps: unknown until {', '.join(unknown)} can be prepared")
    else:
        plan.stages, plan.one_off = recipe_stages(
            config, [t.sizes for t in train if t.sizes is not None], path
        )
        expected = [t.name for t in train if t.status != "present"]
        if expected:
            plan.notes.append(
                f"expected steps: {', '.join(expected)} not prepared here, so counted by the "
                "train pairs their task files ask for (and the train clips their cards list); "
                "the prepared pair files may hold fewer, and each epoch draws as many examples "
                "from every task as the smallest has"
            )
    if config.patience is not None:
        plan.notes.append(
            f"patience {config.patience}: the last stage may stop before its last epoch"
        )
    if micro_run:
        plan.micro = run_micro(config, plan, steps=micro_steps)
        for s in plan.stages:
            s.seconds_per_step = plan.micro.seconds_per_step.get(s.name)
        for o in plan.one_off:
            o.seconds_per_item = plan.micro.seconds_per_clip.get(o.name)
    return plan


# -- printing --------------------------------------------------------------------------------------


def _sum_known(values: Sequence[float | None]) -> float | None:
    return None if any(v is None for v in values) else sum(v or 0.0 for v in values)


def _hours(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.2f}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n < 2**30 else f"{n / 2**30:.2f} GiB"


def _table(rows: list[list[str]], indent: str = "    ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        indent
        + "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in rows
    ]


def format_plan(plan: Plan) -> str:
    """The plan as printed by `mosrm train CONFIG --plan`."""
    c = plan.config
    seeds = (
        f"{plan.models} models (seeds {', '.join(map(str, c.seeds))})"
        if c.seeds
        else (f"1 model (seed {c.seed})")
    )
    where = f" ({plan.config_path})" if plan.config_path else ""
    lines = [f"plan for {c.name}{where}: loss {c.loss}, {seeds}, device {plan.device}", ""]
    lines.append("data")
    for t in plan.tasks:
        shown = "train" if t.role == "train" else "out-of-domain"
        if t.status != "present":
            lines.append(f"  {t.status}: {t.problem}")
            continue
        lines.append(f"  {t.name} ({shown}): present at {t.root}")
        rows = [["split", "role", "clips", "pairs", "hours"]]
        for sp in t.splits:
            pairs = "-" if sp.pairs is None else str(sp.pairs)
            rows.append([sp.split, sp.role, str(sp.clips), pairs, _hours(sp.hours)])
        lines += _table(rows)
    present = [t for t in plan.tasks if t.status == "present"]
    if present:
        train_h = [t.hours(("train", "dev")) for t in present if t.role == "train"]
        test_h = [t.hours(("test",)) for t in present]
        lines.append(
            f"  audio read: {_hours(_sum_known(train_h))} h for training (train + dev of the training "
            f"tasks), {_hours(_sum_known(test_h))} h for evaluation (test splits)"
        )
    lines += ["", "steps (per model, one process; under torchrun the batch is per process)"]
    if plan.stages:
        rows = [["stage", "unit", "per task/epoch", "examples/epoch", "batch", "batches/epoch",
                 "epochs", "iterations", "steps"]]  # fmt: skip
        for s in plan.stages:
            n = s.count
            counts = ["?"] * 3 if n is None else [str(n.per_task), str(n.examples), str(n.batches)]
            steps = "?" if n is None else str(n.steps) + (" (expected)" if s.expected else "")
            rows.append([s.name, s.unit, *counts[:2], str(s.batch_size), counts[2],
                         str(s.epochs), str(s.iterations), steps])  # fmt: skip
        lines += _table(rows)
        for o in plan.one_off:
            items = "?" if o.items is None else str(o.items)
            lines.append(f"    once: {o.name}: {o.what} ({items} clips)")
        one = plan.steps_per_model
        if one is None:
            lines.append("  total: unknown (a stage's count is unknown)")
        else:
            word = "expected " if plan.expected else ""
            total = f"  total: {one} {word}optimizer steps per model"
            if plan.models > 1:
                total += f" x {plan.models} seeds = {plan.total_steps} (one model per seed)"
            lines.append(total)
    for note in plan.notes:
        lines.append(f"  note: {note}")
    lines += ["", "estimate"]
    m = plan.micro
    if m is None:
        lines.append("  no micro-run (--no-micro-run): no time or memory estimate")
    elif m.skipped is not None:
        lines.append(f"  micro-run skipped: {m.skipped}")
    else:
        lines.append(
            f"  micro-run on {m.device}: per stage 1 warm-up + up to {m.steps} timed batches "
            f"(median) on noise clips of {m.clip_seconds:.2f} s ({m.clip_source})"
        )
        stages = {st.name: st for st in plan.stages}
        for name, per_step in m.seconds_per_step.items():
            st = stages.get(name)
            if st is None or st.steps is None:
                lines.append(f"    {name}: {per_step:.3f} s/step (steps unknown)")
            else:
                lines.append(
                    f"    {name}: {per_step:.3f} s/step x {st.steps} steps = "
                    f"{_duration(per_step * st.steps)}"
                )
        for o in plan.one_off:
            if o.seconds_per_item is not None:
                cost = "?" if o.seconds is None else _duration(o.seconds)
                lines.append(
                    f"    {o.name} (tokenising only): {o.seconds_per_item * 1000:.1f} ms/clip x "
                    f"{'?' if o.items is None else o.items} clips = {cost}"
                )
        lines.append(f"    peak memory: {_mib(m.memory_bytes)} ({m.memory_method})")
        seconds = plan.seconds_per_model
        if seconds is None:
            lines.append("  estimated time: unknown until the steps are known")
        else:
            text = f"  estimated time: {_duration(seconds)} per model"
            if plan.models > 1:
                text += f" x {plan.models} seeds = {_duration(seconds * plan.models)}"
            lines.append(
                text
                + " (estimate"
                + (", from expected steps" if plan.expected else "")
                + ": excludes audio decoding, dev evaluation, data preparation"
                + (" and k-means" if plan.one_off else "")
                + ")"
            )
    bad = plan.not_ready
    if bad:
        lines += ["", f"not ready: {len(bad)} task(s) missing or unusable (exit status 3)"]
    return "\n".join(lines) + "\n"
