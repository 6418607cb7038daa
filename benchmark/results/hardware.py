"""The machine a run used, for the run record beside each results file (`results.RunRecord`).

A throughput figure means nothing without the machine it was measured on, so every run records the
CPU model, logical cores, RAM, GPUs, OS, Python and torch. Each probe falls back to None (or an
empty GPU list) rather than failing a run whose numbers are fine: the hardware is context for the
timing, never a reason to lose a result.
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path
from typing import Any


def _cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The first 'model name' of /proc/cpuinfo (Linux), else what `platform` knows."""
    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() in ("model name", "Model", "cpu model") and value.strip():
                return " ".join(value.split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or None


def _ram_gib() -> float | None:
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None
    return round(total / 2**30, 1) if total > 0 else None


def _gpus() -> list[dict[str, Any]]:
    """Name and memory of every visible CUDA device (none without torch or CUDA)."""
    try:
        import torch
    except ImportError:
        return []
    try:
        if not torch.cuda.is_available():
            return []
        out = []
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            out.append(
                {"name": str(props.name), "memory_gib": round(props.total_memory / 2**30, 1)}
            )
        return out
    except RuntimeError:  # a driver that torch cannot talk to
        return []


def _torch_version() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return str(torch.__version__)


@functools.cache
def describe_machine() -> dict[str, Any]:
    """`results.Hardware`'s fields for this machine (probed once per process)."""
    return {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "ram_gib": _ram_gib(),
        "gpus": _gpus(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": _torch_version(),
    }
