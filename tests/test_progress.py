"""Progress designed once (issue 21, item 6): a terminal gets bars; a log file or captured stderr
gets a line when a step starts and one when it ends; `--quiet` gets neither, nor the bars of the
libraries underneath; the Python API writes nothing to the terminal by itself."""

from __future__ import annotations

import os
import subprocess
import sys

from benchmark.cli import main
from tests.toy_task import REPO, write_toy_repo


def _evaluate(repo, results, *extra):
    args = ["--repo", str(repo), "evaluate", "shortcut-loudness", "--task", "toy"]
    return main([*args, "--results", str(results), *extra])


def test_without_a_terminal_a_step_is_two_lines_not_a_redrawn_bar(tmp_path, capsys):
    repo = write_toy_repo(tmp_path)
    assert _evaluate(repo, tmp_path / "r") == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = [x for x in err.splitlines() if x.startswith("scoring ")]
    assert len(lines) == 2, err
    assert lines[0].endswith("clip)") and ": started (0 of " in lines[0]
    assert ": done (" in lines[1] and " s)" in lines[1]


def test_quiet_is_quiet_and_silences_the_libraries_bars_too(tmp_path, capsys, monkeypatch):
    from benchmark import progress

    seen = {}

    def spy(*args, **kwargs):
        seen.update(
            {k: os.environ.get(k) for k in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS")}
        )
        return real(*args, **kwargs)

    import benchmark.scoring.predictions as predictions

    real = predictions.score_clips
    monkeypatch.setattr(predictions, "score_clips", spy)
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    repo = write_toy_repo(tmp_path)
    assert _evaluate(repo, tmp_path / "r", "--quiet") == 0
    err = capsys.readouterr().err
    assert "started" not in err and "done (" not in err
    assert seen == {"TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}  # while it ran
    assert "TQDM_DISABLE" not in os.environ  # and only then
    with progress.quiet():
        assert progress.bar(3, "x", "y").__class__.__name__ == "_Null"


def test_the_python_api_prints_nothing_unless_the_caller_configures_logging(tmp_path):
    repo = write_toy_repo(tmp_path)
    code = (
        "import benchmark as mb\n"
        "from benchmark.baselines.shortcuts import DurationModel, LoudnessModel\n"
        "from benchmark.scoring.config import ScoringConfig\n"
        "shown = ScoringConfig(progress=True)\n"
        f"mb.evaluate(DurationModel(), 'toy', name='long', repo={str(repo)!r}, "
        f"results_dir={str(tmp_path / 'api')!r}, config=shown)\n"
        "import logging; logging.basicConfig(level=logging.INFO, format='%(name)s %(message)s')\n"
        f"mb.evaluate(LoudnessModel(), 'toy', name='loud2', repo={str(repo)!r}, "
        f"results_dir={str(tmp_path / 'api')!r}, config=shown)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    first, _, second = done.stderr.partition("benchmark.progress")
    assert "started" not in first  # nothing before the caller configured logging (two models:
    # the second is not served from the first's cached scores)
    assert "scoring loud2: started" in "benchmark.progress" + second
