"""Flags and argument types shared by several `mosrm` commands: the sandbox's limits
(`sandbox_flags`, read back by `_sandbox_limits`), durations, reliability thresholds, counts.

Why its own module: one definition per flag, so `evaluate`, `run` and `validate` cannot drift
apart in what a limit means or how it is parsed. Parsing only: nothing here runs a command.
"""

from __future__ import annotations

import argparse
from typing import Any

from benchmark.errors import MosrmError


def _sandbox_limits(args: argparse.Namespace) -> Any:
    from benchmark.scoring.sandbox import SandboxLimits

    return SandboxLimits(
        memory_mb=args.memory_mb or None,
        cpu_seconds=args.cpu_seconds or None,
        startup_timeout=args.startup_timeout,
        call_timeout=args.call_timeout,
        processes=args.processes or None,
        cpus=args.cpus or None,
        tmp_mb=args.tmp_mb or None,
        budget_base_s=None if args.no_budget else args.budget_base_s,
        budget_per_unit_s=args.budget_per_unit_s,
    )


def _seconds(text: str, *, zero: bool = False) -> float:
    """An argparse `type`: a positive (with `zero`, non-negative) number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got '{text}'") from None
    if not (value >= 0 if zero else value > 0):
        raise argparse.ArgumentTypeError(f"must be {'>=' if zero else '>'} 0, got {text}")
    return value


def _seconds_or_zero(text: str) -> float:
    """An argparse `type`: a number of seconds, zero allowed."""
    return _seconds(text, zero=True)


def sandbox_flags(p: argparse.ArgumentParser) -> None:
    """How untrusted submission code is confined (`benchmark.scoring.sandbox`)."""
    from benchmark.scoring.sandbox import SandboxLimits

    d = SandboxLimits()
    p.add_argument(
        "--unsafe-no-sandbox",
        action="store_true",
        help="run submission code WITHOUT bubblewrap: it can read and write everything your user "
        "can, and use the network; only for code you trust, where bwrap is unavailable",
    )
    p.add_argument(
        "--memory-mb",
        type=int,
        default=d.memory_mb,
        help="memory of the sandbox as a whole (its processes and its /tmp, where a cgroup can be "
        "made) and of each process (address space, not on CUDA) in MiB, 0 = none "
        f"(default {d.memory_mb})",
    )
    p.add_argument(
        "--cpu-seconds", type=_at_least(0), default=0, help="CPU time per process, 0 = none"
    )
    p.add_argument(
        "--processes",
        type=_at_least(0),
        default=d.processes,
        help=f"processes and threads of the sandbox, 0 = none (default {d.processes})",
    )
    p.add_argument(
        "--cpus",
        type=float,
        default=0,
        help="CPUs the sandbox may use at once (a cgroup quota), 0 = all",
    )
    p.add_argument(
        "--tmp-mb",
        type=_at_least(0),
        default=0,
        help="size of its private /tmp (default: --memory-mb)",
    )
    p.add_argument(
        "--budget-base-s",
        type=_seconds,
        default=d.budget_base_s,
        help="time budget of each (submission, task): this many seconds plus --budget-per-unit-s "
        "per clip (a pair for a judge), and as many CPU seconds times the CPUs it may use; kept "
        f"across resumed runs (default {d.budget_base_s:g})",
    )
    p.add_argument(
        "--budget-per-unit-s",
        type=_seconds_or_zero,
        default=d.budget_per_unit_s,
        help=f"seconds of budget per clip or pair (default {d.budget_per_unit_s:g})",
    )
    p.add_argument(
        "--no-budget", action="store_true", help="no total time budget per (submission, task)"
    )
    p.add_argument(
        "--startup-timeout",
        type=_seconds,
        default=d.startup_timeout,
        help=f"seconds to build the model (default {d.startup_timeout:g})",
    )
    p.add_argument(
        "--call-timeout",
        type=_seconds,
        default=d.call_timeout,
        help=f"seconds per batch (default {d.call_timeout:g})",
    )


def _reliability_threshold(text: str) -> float:
    """An argparse `type`: a threshold in (0.5, 1] (`ceiling.check_min_reliability`)."""
    from benchmark.stats.ceiling import check_min_reliability

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0.5, 1], got '{text}'") from None
    try:
        return check_min_reliability(value)
    except MosrmError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("min_reliability ", "")) from None


def min_reliability_flag(p: argparse.ArgumentParser, text: str) -> None:
    p.add_argument("--min-reliability", type=_reliability_threshold, metavar="P", help=text)


def _at_least(low: int) -> Any:
    """An argparse `type`: an integer >= `low`, else argparse's one-line error (exit status 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got '{text}'") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    return parse


def probe_flags(p: argparse.ArgumentParser) -> None:
    """The probes' subset sizes (`benchmark.probe.ProbeSettings`), for `evaluate` and `probe`."""
    p.add_argument(
        "--probe-clips",
        type=_at_least(1),
        default=32,
        metavar="N",
        help="test clips degraded, a seeded subset by audio (default 32; x 23 degradations)",
    )
    p.add_argument(
        "--probe-pairs",
        type=_at_least(1),
        default=96,
        metavar="N",
        help="test pairs whose rejected clip is transformed (default 96; x 8 transforms)",
    )
    p.add_argument(
        "--probe-full", action="store_true", help="every test clip and pair (slow: see the cost)"
    )
    p.add_argument(
        "--bon-n", type=_at_least(2), default=4, metavar="N", help="best of N (default 4; and all)"
    )
