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

import copy
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from benchmark.baselines.train_config import TrainConfig
from benchmark.baselines.train_data import AudioStore, TaskData, rng_for
from benchmark.errors import MosrmError, first_line

if TYPE_CHECKING:
    import torch

    from benchmark.baselines.train import Run
    from benchmark.data.tasks import Task
    from benchmark.pairs.prepare import PreparedTask

Echo = Callable[[str], None]

MICRO_STEPS = 3
"""Timed steps per stage of the micro-run (after one warm-up step)."""
MICRO_BUDGET = 3.0
"""Seconds of timed steps after which a stage's micro-run stops early (at least one is timed)."""
MAX_MICRO_SECONDS = 30.0
"""Longest clip the micro-run feeds when the config trains on whole clips (`max_seconds: null`)."""
FALLBACK_SECONDS = 4.0
"""Clip length the micro-run assumes when the config trains on whole clips of unknown length."""


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
class MicroRun:
    """A few real steps of each stage on noise: seconds per optimizer step and peak memory."""

    device: str
    clip_seconds: float
    clip_source: str
    steps: int = MICRO_STEPS
    seconds_per_step: dict[str, float] = field(default_factory=dict)
    timed: dict[str, int] = field(default_factory=dict)  # batches timed per stage
    seconds_per_clip: dict[str, float] = field(default_factory=dict)  # one-off work, per clip
    memory_bytes: int = 0
    memory_method: str = ""
    skipped: str | None = None  # why it did not run (then nothing above is measured)


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
    run = _settings_run(config, config_path)
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


def _settings_run(config: TrainConfig, config_path: str | None, tasks: Any = ()) -> Run:
    """A `Run` as the recipes' `settings_of` and losses read it (one process, no output)."""
    import torch

    from benchmark.baselines.train import Dist, Run

    return Run(
        config=config,
        out=Path("."),
        tasks=list(tasks),
        dist=Dist(),
        device=torch.device("cpu"),
        progress=False,
        config_path=config_path,
    )


# -- data ------------------------------------------------------------------------------------------


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


# -- the micro-run ---------------------------------------------------------------------------------


class _NoiseStore(AudioStore):
    """An `AudioStore` whose every clip is seeded noise of one length: the recipes' own losses run
    on it unchanged, without reading audio."""

    def __init__(self, tasks: list[TaskData], sample_rate: int, seconds: float) -> None:
        super().__init__(tasks, sample_rate, seconds)
        self.samples = max(1, int(seconds * sample_rate))

    def wave(self, task: int, clip_id: str) -> np.ndarray:
        key = (task, clip_id)
        got = self._cache.get(key)
        if got is None:
            rng = rng_for(0, "micro-run", clip_id)
            got = (0.1 * rng.standard_normal(self.samples)).astype(np.float32)
            self._cache[key] = got
        return got


def _noise_task(pairs: int) -> TaskData:
    """A task of `pairs` train pairs over 2 × `pairs` clips (chosen: the higher MOS)."""
    rng = rng_for(0, "micro-run", "mos")
    chosen = np.array([f"c{i}" for i in range(pairs)], dtype=object)
    rejected = np.array([f"r{i}" for i in range(pairs)], dtype=object)
    low = rng.uniform(1.0, 3.0, pairs)
    high = low + rng.uniform(0.1, 2.0, pairs)
    mos = {**dict(zip(chosen, high, strict=True)), **dict(zip(rejected, low, strict=True))}
    return TaskData(
        name="micro-run",
        audio_base=Path("."),
        paths={},
        mos={str(k): float(v) for k, v in mos.items()},
        train={
            "chosen": chosen,
            "rejected": rejected,
            "delta_bin": np.zeros(pairs, dtype=np.int64),
            "pair_id": np.array([f"p{i}" for i in range(pairs)], dtype=object),
        },
        train_clips=np.concatenate([chosen, rejected]),
    )


def _clip_seconds(config: TrainConfig, plan: Plan) -> tuple[float, str]:
    """The clip length a training batch holds: `max_seconds`, else the median train clip."""
    if config.max_seconds is not None:
        return float(config.max_seconds), "max_seconds"
    durations = []
    for t in plan.tasks:
        if t.role == "train" and t.prepared is not None:
            clips = t.prepared.clips
            for s, d in zip(
                clips.column("split").to_pylist(),
                clips.column("duration").to_pylist(),
                strict=True,
            ):
                if s == config.train_split and d is not None:
                    durations.append(float(d))
    if not durations:
        return FALLBACK_SECONDS, "assumed: whole clips of unknown length"
    median = statistics.median(durations)
    if median > MAX_MICRO_SECONDS:
        return MAX_MICRO_SECONDS, f"median train clip {median:.1f} s, capped"
    return median, "median train clip (whole clips; padding to the longest is not counted)"


def offline_problem(config: TrainConfig) -> str | None:
    """Why a model of `config` cannot be built from this machine alone (None: it can): an SSL
    encoder named by a hub id that is not in the backbone cache or the Hugging Face cache. The
    plan never downloads; training does."""
    from benchmark.baselines.backbones import cache_dir, hub_encoders

    for encoder in hub_encoders([config.model, config.dpo or {}]):
        source, revision = str(encoder["source"]), encoder.get("revision")
        if encoder.get("sha256") is not None and isinstance(revision, str):
            if (cache_dir(source, revision) / "config.json").is_file():
                continue
        else:
            try:
                from huggingface_hub import try_to_load_from_cache

                found = try_to_load_from_cache(source, "config.json", revision=revision)
            except Exception:  # an unusable id or cache: not available here either way
                found = None
            if isinstance(found, str):
                continue
        at = f"@{revision[:12]}" if isinstance(revision, str) else ""
        return (
            f"SSL encoder '{source}{at}' is not on this machine (`mosrm train` fetches it; "
            "the plan downloads nothing)"
        )
    return None


class _Memory:
    """Peak memory of the micro-run: CUDA's allocator peak, or on CPU the tensors a step holds
    (parameters and buffers of the live models, gradients, optimizer state, and the activations
    autograd saves for backward, counted by a saved-tensor hook), the peak over steps."""

    def __init__(self, device: torch.device) -> None:
        import torch

        self.device = device
        self.cuda = device.type == "cuda"
        self.peak = 0
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(device)

    @staticmethod
    def _bytes(tensors: Iterator[Any]) -> int:
        seen: dict[int, int] = {}
        for t in tensors:
            storage = t.untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes()
        return sum(seen.values())

    @contextmanager
    def step(self, modules: Sequence[Any], optimizer: Any) -> Iterator[None]:
        import torch

        saved: dict[int, int] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            storage = t.untyped_storage()
            saved[storage.data_ptr()] = storage.nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            yield
        if self.cuda:
            return

        def held() -> Iterator[Any]:
            for m in modules:
                yield from m.parameters()
                yield from m.buffers()
                for p in m.parameters():
                    if p.grad is not None:
                        yield p.grad
            for state in optimizer.state.values():
                yield from (v for v in state.values() if torch.is_tensor(v) and v.dim() > 0)

        self.peak = max(self.peak, self._bytes(held()) + sum(saved.values()))

    def result(self) -> tuple[int, str]:
        import torch

        if self.cuda:
            return (
                int(torch.cuda.max_memory_allocated(self.device)),
                "peak of torch.cuda.max_memory_allocated",
            )
        return (
            self.peak,
            "CPU tensors: parameters, buffers, gradients, AdamW state and the activations saved "
            "for backward (saved-tensor hooks); transient buffers and the audio cache not counted",
        )


def _timed(
    name: str,
    micro: MicroRun,
    memory: _Memory,
    device: torch.device,
    modules: Sequence[Any],
    params: list[Any],
    lr: float,
    weight_decay: float,
    loss: Callable[[int, int], Any],
    iterations: int = 1,
    bf16: bool = False,
) -> None:
    """One warm-up batch, then up to `micro.steps` timed batches (fewer once `MICRO_BUDGET`
    seconds are spent) of forward, backward and AdamW step, each batch `iterations` steps:
    micro.seconds_per_step[name] is the median batch's time per optimizer step (a median, so
    one batch slowed by another process on the machine does not move it)."""
    import contextlib

    import torch

    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    times: list[float] = []
    for step in range(micro.steps + 1):
        sync()
        started = time.perf_counter()
        for it in range(iterations):
            autocast = (
                torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
            )
            with memory.step(modules, optimizer):
                with autocast:
                    out = loss(step, it)
                value = out[0] if isinstance(out, tuple) else out
                optimizer.zero_grad(set_to_none=True)
                value.backward()
            optimizer.step()
        sync()
        if step > 0:  # the first batch is the warm-up
            times.append(time.perf_counter() - started)
            if sum(times) >= MICRO_BUDGET:
                break
    micro.seconds_per_step[name] = statistics.median(times) / iterations
    micro.timed[name] = len(times)


def run_micro(config: TrainConfig, plan: Plan, *, steps: int = MICRO_STEPS) -> MicroRun:
    """Time `steps` optimizer steps (after a warm-up) of each stage of the recipe, on noise clips
    of the training length: the recipe's model, built as the recipe builds it, and its loss.
    Never raises for the model: a micro-run that cannot run says why in `skipped`."""
    import torch

    seconds, source = _clip_seconds(config, plan)
    micro = MicroRun(plan.device, seconds, source, steps=steps)
    problem = offline_problem(config)
    if problem is None and plan.device.startswith("cuda") and not torch.cuda.is_available():
        problem = f"device '{plan.device}' is not available here"
    if problem is not None:
        micro.skipped = problem
        return micro
    device = torch.device(plan.device)
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(config.seed)
            memory = _Memory(device)
            recipe = {"bt": _micro_scalar, "mse": _micro_scalar, "dpo": _micro_dpo}
            recipe.get(config.loss, _micro_grpo)(config, plan, micro, memory, device)
            micro.memory_bytes, micro.memory_method = memory.result()
    except Exception as exc:  # any failure to build or step the model: said, not raised
        micro.skipped = first_line(exc)
        micro.seconds_per_step.clear()
        micro.seconds_per_clip.clear()
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return micro


def _micro_scalar(
    config: TrainConfig, plan: Plan, micro: MicroRun, memory: _Memory, device: torch.device
) -> None:
    from benchmark.baselines.scalar import new_model
    from benchmark.baselines.scalar_train import loss_of

    model = new_model(config.model).to(device)
    b = config.batch_size
    tasks = [_noise_task(b)]
    store = _NoiseStore(tasks, model.sample_rate, micro.clip_seconds)
    rows = [(0, i) for i in range(b)]
    model.train()
    _timed(
        "main",
        micro,
        memory,
        device,
        [model],
        [p for p in model.parameters() if p.requires_grad],
        config.lr,
        config.weight_decay,
        lambda step, it: loss_of(model, config.loss, store, tasks, rows, device),
        bf16=config.bf16 and device.type == "cuda",
    )


def _micro_grpo(
    config: TrainConfig, plan: Plan, micro: MicroRun, memory: _Memory, device: torch.device
) -> None:
    from benchmark.baselines.grpo_train import GRPOData, GRPOLoss, settings_of, sft_loss_of
    from benchmark.baselines.judge import new_model
    from benchmark.baselines.train import StepInfo
    from benchmark.baselines.train_data import pair_batch

    s = settings_of(_settings_run(config, plan.config_path))
    model = new_model(config.model).to(device)
    sft_b, b = s.sft_batch_size or config.batch_size, config.batch_size
    tasks = [_noise_task(max(sft_b, b))]
    run = _settings_run(config, plan.config_path, tasks)
    run.device = device
    store = _NoiseStore(tasks, model.sample_rate, micro.clip_seconds)
    data = GRPOData(run)
    bf16 = config.bf16 and device.type == "cuda"
    sft_rows = [(0, i) for i in range(sft_b)]

    def sft_loss(step: int, it: int) -> Any:
        chosen, rejected = pair_batch(store, tasks, sft_rows)
        mc, mr, _ = data.rows(sft_rows)
        return sft_loss_of(model, chosen, rejected, mc, mr, model.levels, device)

    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    lr = s.sft_lr or config.lr
    _timed(
        "sft", micro, memory, device, [model], trainable, lr, config.weight_decay, sft_loss, 1, bf16
    )
    reference = copy.deepcopy(model).eval().requires_grad_(False)
    if not s.train_encoder:
        model.encoder.requires_grad_(False)
    grpo = GRPOLoss(run, s, store, data, reference)
    rows = [(0, i) for i in range(b)]

    def grpo_loss(step: int, it: int) -> Any:
        info = StepInfo("grpo", 0, step, it, 0, 1, config.seed)
        return grpo(model, rows, info)

    trainable = [p for p in model.parameters() if p.requires_grad]
    _timed(
        "grpo",
        micro,
        memory,
        device,
        [model, reference],
        trainable,
        config.lr,
        config.weight_decay,
        grpo_loss,
        s.iterations,
        bf16,
    )


def _micro_dpo(
    config: TrainConfig, plan: Plan, micro: MicroRun, memory: _Memory, device: torch.device
) -> None:
    import torch

    from benchmark.baselines.dpo_train import settings_of
    from benchmark.baselines.losses import dpo_loss
    from benchmark.baselines.unit_lm import UnitLM, pad_units
    from benchmark.baselines.units import UnitTokenizer

    settings, units_config, lm_config = settings_of(_settings_run(config, plan.config_path))
    tokenizer = UnitTokenizer(units_config).to(device).eval()
    g = torch.Generator().manual_seed(config.seed)
    tokenizer.codebook.copy_(torch.randn(tokenizer.codebook.shape, generator=g))
    ref_b, b = settings.ref.batch_size, config.batch_size
    n = max(ref_b, 2 * b)
    tasks = [_noise_task(n)]
    store = _NoiseStore(tasks, tokenizer.sample_rate, micro.clip_seconds)
    items = [(0, str(c)) for c in tasks[0].train_clips[:n]]
    seqs: list[Any] = []
    with torch.inference_mode():
        started = time.perf_counter()
        for i in range(0, n, 32):  # as `UnitCache.warm` tokenises: chunks of 32 clips
            batch = store.batch(items[i : i + 32]).to(device)
            units, counts = tokenizer(batch.waveforms, batch.lengths)
            seqs.extend(units[j, : int(c)].cpu().clone() for j, c in enumerate(counts))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        micro.seconds_per_clip["units"] = (time.perf_counter() - started) / n
    policy = UnitLM(lm_config).to(device)
    policy.train()
    ref_units, ref_counts = (t.to(device) for t in pad_units(seqs[:ref_b]))

    def ref_loss(step: int, it: int) -> Any:
        lp, k = policy(ref_units, ref_counts)
        return -(lp / (k + 1).to(lp.dtype)).mean()

    modules = [tokenizer, policy]
    params = list(policy.parameters())
    r = settings.ref
    _timed("ref", micro, memory, device, modules, params, r.lr, r.weight_decay, ref_loss)
    reference = copy.deepcopy(policy).eval().requires_grad_(False)
    units, counts = (t.to(device) for t in pad_units(seqs[: 2 * b]))
    with torch.inference_mode():
        ref_lp, _ = reference(units, counts)
    ref_lp = ref_lp.clone()

    def loss(step: int, it: int) -> Any:
        lp, _ = policy(units, counts)
        return dpo_loss(lp[:b], lp[b:], ref_lp[:b], ref_lp[b:], settings.beta)

    modules = [tokenizer, policy, reference]
    lr, wd = config.lr, config.weight_decay
    _timed("dpo", micro, memory, device, modules, params, lr, wd, loss)


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
