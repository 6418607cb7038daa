"""How a scoring run is set up: its config (batch size, workers, device, bf16), the device it
resolves to, how far ahead batches are read, and the preprocessing a run records (which keys the
score cache). Runs no model.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from benchmark.data.audio import (
    preprocessing_config,
)
from benchmark.errors import MosrmError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ScoringConfig:
    """How to run the loop; none of these may change a masked model's scores beyond device noise."""

    max_batch_size: int = 16
    max_batch_samples: int = 16000 * 160  # padded samples per batch
    num_workers: int = 0  # DataLoader workers that decode (0 = in-process)
    prefetch: int = 2  # batches read ahead in a background thread, if a core is free (0 = never)
    device: str = "auto"  # "auto" -> cuda if available else cpu
    bf16: bool = False  # optional autocast on CUDA only
    progress: bool = True

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {self.max_batch_size}")
        if self.max_batch_samples < 1:
            raise ValueError(f"max_batch_samples must be >= 1, got {self.max_batch_samples}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")
        if self.prefetch < 0:
            raise ValueError(f"prefetch must be >= 0, got {self.prefetch}")


def resolve_device(config: ScoringConfig) -> torch.device:
    import torch

    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(config.device)
    except RuntimeError as exc:
        raise MosrmError(f"scoring device '{config.device}': {exc}") from None


def _read_ahead(config: ScoringConfig, device: torch.device, elsewhere: bool = False) -> int:
    """How many batches the background thread reads ahead: `config.prefetch` when a core is free
    for it, else 0 (read in the loop).

    A core is free when the model runs on an accelerator or in another process (a sandboxed
    submission: this process only reads, pads and waits), or when torch computes on fewer
    threads than this process may use. Otherwise the thread takes cores and the GIL from the
    model's own threads: on 2 cores, the reference CNN's P2 was 1.084x with it and 1.065x
    without (31 paired rounds)."""
    import torch

    if config.prefetch == 0 or device.type != "cpu" or elsewhere:
        return config.prefetch
    return config.prefetch if torch.get_num_threads() < _usable_cpus() else 0


def _elsewhere(model: Any) -> bool:
    """Whether the model computes in another process (`SandboxedModel.runs_elsewhere`)."""
    return getattr(type(model), "runs_elsewhere", False) is True


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _bf16(config: ScoringConfig) -> bool:
    """Whether bf16 autocast will be in effect; finds the device (importing torch) only if asked."""
    return config.bf16 and resolve_device(config).type == "cuda"


def _cache_prep(sample_rate: int, bf16: bool) -> str:
    cfg: dict[str, Any] = dict(preprocessing_config(sample_rate))
    if bf16:
        cfg["autocast"] = "bf16"
    return json.dumps(cfg, sort_keys=True, separators=(",", ":"))


def effective_preprocessing(sample_rate: int, config: ScoringConfig) -> dict[str, Any]:
    """The preprocessing a run records in its results: the cache-key config, bf16 included when
    autocast will really be in effect (CUDA only)."""
    out: dict[str, Any] = json.loads(_cache_prep(sample_rate, _bf16(config)))
    return out
