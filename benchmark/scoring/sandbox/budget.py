"""A total wall-clock and CPU budget per (submission, task), kept across runs.

A per-call timeout alone lets a submission that learns its limits busy-wait just under them on every
call: at 600 s a call, the 256-clip demo would take hours. So each (model fingerprint, task) gets a
budget for all of its model calls together (start-up included), by default proportional to the
work: `base_s + per_unit_s * units`, a unit being a clip to score (or a pair to judge), and CPU time
`cpu_factor` times that. What was spent is written to `$MOSRM_HOME/budgets/` as it goes (at most
once a second, and when the work ends or fails), so a killed and resumed run goes on from what was
already spent instead of starting afresh. Passing either budget ends the sandbox and is a recorded
failure; a later run of the same fingerprint and task fails at once, until the operator raises the
budget (`--budget-base-s`, `--budget-per-unit-s`) or removes the record (a changed submission has a
new fingerprint, hence a new budget).
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

from benchmark.atomic import atomic_write_text

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class BudgetPolicy:
    """How big a (submission, task)'s budget is; `enabled=False` turns budgets off."""

    base_s: float = 120.0
    per_unit_s: float = 2.0
    cpu_factor: float | None = None
    """CPU seconds per wall second; None = the CPUs the sandbox may use (its `cpus` limit, or the
    machine's count)."""
    enabled: bool = True

    def wall_s(self, units: int) -> float:
        return self.base_s + self.per_unit_s * max(0, int(units))


class Budget:
    """What one (fingerprint, task) may still spend, and what it has spent (persisted)."""

    def __init__(self, path: Path, wall_s: float, cpu_s: float) -> None:
        self.path = path
        self.wall_s = float(wall_s)
        self.cpu_s = float(cpu_s)
        self.spent_wall = 0.0
        self.spent_cpu = 0.0
        self._saved_at = 0.0
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            self.spent_wall = max(0.0, float(raw["wall_s"]))
            self.spent_cpu = max(0.0, float(raw["cpu_s"]))
        except (OSError, ValueError, KeyError, TypeError):
            pass

    @classmethod
    def for_task(
        cls, fingerprint: str, task: str, units: int, policy: BudgetPolicy, cpus: float
    ) -> Budget:
        from benchmark.paths import home

        name = _SAFE.sub("_", f"{fingerprint}.{task}")
        wall = policy.wall_s(units)
        factor = policy.cpu_factor if policy.cpu_factor is not None else cpus
        return cls(home() / "budgets" / f"{name}.json", wall, wall * max(factor, 1e-3))

    @property
    def wall_left(self) -> float:
        return self.wall_s - self.spent_wall

    @property
    def cpu_left(self) -> float:
        return self.cpu_s - self.spent_cpu

    def exhausted(self) -> str | None:
        """Which budget is already spent (from earlier runs), or None."""
        if self.wall_left <= 0:
            return f"wall-clock budget ({self.wall_s:.0f} s) spent"
        if self.cpu_left <= 0:
            return f"CPU budget ({self.cpu_s:.0f} s) spent"
        return None

    def add(self, wall: float, cpu: float, *, force: bool = False) -> None:
        """Count `wall` and `cpu` seconds more; saved at most once a second unless `force`."""
        self.spent_wall += max(0.0, wall)
        self.spent_cpu += max(0.0, cpu)
        now = time.monotonic()
        if force or now - self._saved_at >= 1.0:
            self.save()
            self._saved_at = now

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(
            {
                "wall_s": round(self.spent_wall, 3),
                "cpu_s": round(self.spent_cpu, 3),
                "wall_budget_s": self.wall_s,
                "cpu_budget_s": self.cpu_s,
            },
            sort_keys=True,
        )
        atomic_write_text(self.path, text + "\n")

    def summary(self) -> dict[str, float]:
        return {
            "wall_s": self.wall_s,
            "cpu_s": round(self.cpu_s, 3),
            "spent_wall_s": round(self.spent_wall, 3),
            "spent_cpu_s": round(self.spent_cpu, 3),
        }

    def describe(self) -> str:
        return (
            f"{math.ceil(self.spent_wall)} of {self.wall_s:.0f} s wall-clock, "
            f"{math.ceil(self.spent_cpu)} of {self.cpu_s:.0f} s CPU"
        )
