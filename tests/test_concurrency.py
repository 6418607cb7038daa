"""Two runs on one MOSRM_HOME at once: no crash, and the very bytes a sequential run writes.

Each round starts from an empty home, so the two processes race through everything shared: the
prepare of the task (lock, then reuse), the audio cache, the creation of the score cache (SQLite
WAL, see also tests/test_scoring.py), the cached scores and the result files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.cli import main
from tests.toy_task import REPO, write_toy_repo

ROUNDS = 10
FILES = ("toy.json", "toy.predictions.parquet")


def _evaluate(repo: Path, sub: str, results: Path) -> list[str]:
    return [
        *(sys.executable, "-m", "benchmark.cli", "--repo", str(repo), "evaluate", sub),
        *("--task", "toy", "--quiet", "--results", str(results)),
    ]


def _outputs(results: Path, subs: set[str]) -> dict[str, bytes]:
    return {f"{s}/{f}": (results / s / f).read_bytes() for s in sorted(subs) for f in FILES}


@pytest.mark.slow
@pytest.mark.parametrize(
    "subs", [("shortcut-random", "shortcut-loudness"), ("shortcut-random", "shortcut-random")]
)
def test_two_evaluates_at_once_match_a_sequential_run(
    subs: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = write_toy_repo(tmp_path)
    monkeypatch.setenv("MOSRM_HOME", str(tmp_path / "home-seq"))
    for sub in subs:
        assert main(_evaluate(repo, sub, tmp_path / "seq")[3:]) == 0
    want = _outputs(tmp_path / "seq", set(subs))
    for r in range(ROUNDS):
        env = {**os.environ, "MOSRM_HOME": str(tmp_path / f"home-{r}")}
        results = tmp_path / f"results-{r}"
        procs = [
            subprocess.Popen(
                _evaluate(repo, sub, results),
                cwd=REPO,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for sub in subs
        ]
        for p in procs:
            _, err = p.communicate(timeout=300)
            assert p.returncode == 0 and "Traceback" not in err, f"round {r}:\n{err}"
        assert _outputs(results, set(subs)) == want, f"round {r}"
        left = [p.name for p in results.rglob(".*")]
        assert not left, f"round {r}: temp files left behind: {left}"
