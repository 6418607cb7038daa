"""Fast start: a warm `mosrm evaluate shortcut-loudness --task demo` end to end, in a fresh
interpreter each time, as a user types it. Goal: < 1.5 s (issue 12, item 3).

Warm means the demo is prepared and current, every score is in the cache and the results folder
already holds this run's results: the command then re-checks the prepared task (benchmark.pairs.reuse),
fingerprints the submission folder, reads its scores from the cache, recomputes the metrics and
finds the results unchanged. The first, untimed run makes it so (it synthesises and prepares the
demo in `$MOSRM_HOME` if that was never done, which takes a while once).

Reported beside the wall time (median of the rounds): `cpu_s`, the command's CPU time (user +
system; on a machine busy with other work the wall time grows, this hardly does), `import_s`, the
sum of every module's own import time from one extra run under `python -X importtime`, and
`rest_s`, the rest (interpreter start-up and the command's work), plus the heavy modules that run
imported (pandas only: pyarrow imports it to build any array from Python or numpy values).
"""

from __future__ import annotations

import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL_S = 1.5
ROUNDS = 7
HEAVY = ("torch", "scipy.stats", "pandas", "pyarrow.dataset", "scipy.sparse", "scipy.special")


def _command(results: Path, *flags: str) -> list[str]:
    return [sys.executable, *flags, "-m", "benchmark.cli", "evaluate", "shortcut-loudness"] + [
        "--task",
        "demo",
        "--quiet",
        "--results",
        str(results),
    ]


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=3600)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def _imports(stderr: str) -> tuple[float, list[str]]:
    """Total own import time (s) and the heavy modules imported, from `-X importtime` output."""
    total_us, seen = 0, set()
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if m:
            total_us += int(m.group(1))
            seen.add(m.group(2))
    return total_us / 1e6, [h for h in HEAVY if h in seen]


def test_warm_demo_evaluate(benchmark, tmp_path) -> None:
    results = tmp_path / "results"
    _run(_command(results))  # prepare the demo if needed, score it, write the results
    _run(_command(results))  # and once more, so the timed runs find everything in place
    walls: list[float] = []
    cpus: list[float] = []

    def once() -> None:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        _run(_command(results))
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)

    benchmark.pedantic(once, rounds=ROUNDS, iterations=1)
    wall = statistics.median(walls)
    import_s, heavy = _imports(_run(_command(results, "-X", "importtime")).stderr)
    benchmark.extra_info.update(
        wall_s=round(wall, 3),
        best_s=round(min(walls), 3),
        cpu_s=round(statistics.median(cpus), 3),
        import_s=round(import_s, 3),
        rest_s=round(wall - import_s, 3),
        heavy_imports=heavy,
    )
    print(
        f"\nwarm `mosrm evaluate shortcut-loudness --task demo`: median {wall:.2f} s of "
        f"{len(walls)} (best {min(walls):.2f} s, CPU {statistics.median(cpus):.2f} s); imports "
        f"{import_s:.2f} s, the rest "
        f"{wall - import_s:.2f} s; heavy modules imported: {', '.join(heavy) or 'none'}"
    )
    assert wall < GOAL_S
