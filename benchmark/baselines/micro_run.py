"""The micro-run of `mosrm train CONFIG --plan`: a few real optimizer steps of each stage of a
recipe, on noise clips of the training length, timed and with their peak memory.

Why measured and not computed: a step's cost depends on the device, the library versions and the
encoder's attention over the clip length, which no formula here knows; a few steps of the very
model and loss the recipe trains tell it, and the plan multiplies them by its step counts (always
printed as an estimate: audio decoding, dev evaluation and k-means are not in it). A micro-run
never raises for the model: one that cannot run says why (`MicroRun.skipped`).
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmark.baselines.train_config import TrainConfig
from benchmark.baselines.train_data import AudioStore, TaskData, rng_for
from benchmark.errors import first_line

if TYPE_CHECKING:
    import torch

    from benchmark.baselines.train import Run

MICRO_STEPS = 3
"""Timed steps per stage of the micro-run (after one warm-up step)."""
MICRO_BUDGET = 3.0
"""Seconds of timed steps after which a stage's micro-run stops early (at least one is timed)."""
MAX_MICRO_SECONDS = 30.0
"""Longest clip the micro-run feeds when the config trains on whole clips (`max_seconds: null`)."""
FALLBACK_SECONDS = 4.0
"""Clip length the micro-run assumes when the config trains on whole clips of unknown length."""


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


def settings_run(config: TrainConfig, config_path: str | None, tasks: Any = ()) -> Run:
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


def clip_seconds(config: TrainConfig, tasks: Sequence[Any]) -> tuple[float, str]:
    """The clip length a training batch holds: `max_seconds`, else the median train clip of the
    plan's tasks (`plan.TaskPlan`)."""
    if config.max_seconds is not None:
        return float(config.max_seconds), "max_seconds"
    durations = []
    for t in tasks:
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


def measure(
    config: TrainConfig,
    device_name: str,
    clip: tuple[float, str],
    config_path: str | None,
    *,
    steps: int = MICRO_STEPS,
) -> MicroRun:
    """Time `steps` optimizer steps (after a warm-up) of each stage of the recipe, on noise clips
    of the training length: the recipe's model, built as the recipe builds it, and its loss.
    Never raises for the model: a micro-run that cannot run says why in `skipped`."""
    import torch

    seconds, source = clip
    micro = MicroRun(device_name, seconds, source, steps=steps)
    problem = offline_problem(config)
    if problem is None and device_name.startswith("cuda") and not torch.cuda.is_available():
        problem = f"device '{device_name}' is not available here"
    if problem is not None:
        micro.skipped = problem
        return micro
    device = torch.device(device_name)
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(config.seed)
            memory = _Memory(device)
            recipe = {"bt": _micro_scalar, "mse": _micro_scalar, "dpo": _micro_dpo}
            recipe.get(config.loss, _micro_grpo)(config, config_path, micro, memory, device)
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
    config: TrainConfig,
    config_path: str | None,
    micro: MicroRun,
    memory: _Memory,
    device: torch.device,
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
    config: TrainConfig,
    config_path: str | None,
    micro: MicroRun,
    memory: _Memory,
    device: torch.device,
) -> None:
    from benchmark.baselines.grpo_train import GRPOData, GRPOLoss, settings_of, sft_loss_of
    from benchmark.baselines.judge import new_model
    from benchmark.baselines.train import StepInfo
    from benchmark.baselines.train_data import pair_batch

    s = settings_of(settings_run(config, config_path))
    model = new_model(config.model).to(device)
    sft_b, b = s.sft_batch_size or config.batch_size, config.batch_size
    tasks = [_noise_task(max(sft_b, b))]
    run = settings_run(config, config_path, tasks)
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
    config: TrainConfig,
    config_path: str | None,
    micro: MicroRun,
    memory: _Memory,
    device: torch.device,
) -> None:
    import torch

    from benchmark.baselines.dpo_train import settings_of
    from benchmark.baselines.losses import dpo_loss
    from benchmark.baselines.unit_lm import UnitLM, pad_units
    from benchmark.baselines.units import UnitTokenizer

    settings, units_config, lm_config = settings_of(settings_run(config, config_path))
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
