"""The official board re-derives on any machine: its reference models are committed artefacts.

A fresh clone with an empty `MOSRM_HOME` (no score cache, no trained copies, the demo corpus
generated anew) scores the committed submission folders and reference models, trains nothing, and
gets the committed results byte for byte; `mosrm run` in the clone then leaves its tree clean.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.scoring.models import current_fingerprint
from benchmark.scoring.trust import REFERENCE, compute_manifest, official_manifest, trusted_reason

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "leaderboard" / "results"
REFERENCE_NAMES = {"demo-bt", "demo-mse", "demo-dpo", "demo-dpo-norm", "demo-grpo", "demo-grpo-sft"}


def test_the_reference_models_are_committed_trusted_and_were_the_ones_scored() -> None:
    folders = {p.parent.name: p.parent for p in REFERENCE.glob("*/submission.yaml")}
    assert set(folders) == REFERENCE_NAMES
    manifest = official_manifest()
    assert compute_manifest(REFERENCE) == {k: manifest[k] for k in REFERENCE_NAMES}
    from benchmark.scoring.folder import folder_files
    from benchmark.scoring.spec import read_spec

    for name, folder in folders.items():
        files = folder_files(folder)
        assert not (folder / "checkpoint").exists(), name
        assert {"model.safetensors", "card.md", "curve.csv", "train-config.json"} <= {
            f for f, _ in files
        }, name
        assert trusted_reason(read_spec(folder).entry, folder, files) == "official", name
        result = json.loads((RESULTS / name / "demo.json").read_text(encoding="utf-8"))
        assert result["model_fingerprint"] == current_fingerprint(folder), name


def _mosrm(cwd: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`mosrm` run from `cwd`'s own package (`python -m` puts `cwd` first on the path), in the
    official board's workspace (`leaderboard/`, as `make run`)."""
    env = {**os.environ, "MOSRM_HOME": str(home), "PYTHONPATH": str(cwd)}
    env.pop("MOSRM_WORKSPACE", None)
    cmd = [sys.executable, "-m", "benchmark.cli", "--workspace", str(cwd / "leaderboard"), *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)


@pytest.mark.slow
def test_a_fresh_clone_scores_the_committed_results_byte_for_byte(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    home = tmp_path / "home"  # empty: every score is computed, nothing is trained
    out = tmp_path / "rescored"
    run = _mosrm(clone, home, "run", "--tasks", "demo", "--quiet", "--results", str(out))
    assert run.returncode == 0, run.stderr[-3000:]
    assert not (home / "trained").exists(), "mosrm run trained something"

    committed = clone / "leaderboard" / "results"
    names = sorted(p.parent.name for p in committed.glob("*/demo.json"))
    assert REFERENCE_NAMES <= set(names) and len(names) == 11
    for name in names:
        for suffix in (".json", ".predictions.parquet"):
            made = (out / name / f"demo{suffix}").read_bytes()
            assert made == (committed / name / f"demo{suffix}").read_bytes(), f"{name}{suffix}"
        record = json.loads((out / name / "demo.run.json").read_text(encoding="utf-8"))
        cache = record["score_cache"]
        assert cache["clips_computed"] + cache["pairs_computed"] > 0, name
        if (
            json.loads((out / name / "demo.json").read_text(encoding="utf-8"))["kind"] != "pairwise"
        ):  # a judge's triplets reuse its own pairs
            assert cache["clips_from_cache"] == 0, name

    checked = _mosrm(clone, home, "validate-results")  # anywhere, not only where it was made
    assert checked.returncode == 0, checked.stdout[-3000:]
    assert "11 results file(s): 11 passed, 0 failed" in checked.stdout

    again = _mosrm(
        clone, home, "run", "--tasks", "demo", "--quiet", "--out", str(clone / "leaderboard")
    )
    assert again.returncode == 0, again.stderr[-3000:]
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=True
    )
    assert status.stdout == "", f"mosrm run changed committed files:\n{status.stdout}"


def test_a_pip_installation_ships_the_reference_models() -> None:
    """pyproject's package data ships `reference/*/*`: every committed file must sit there."""
    import tomllib

    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    globs = data["tool"]["setuptools"]["package-data"]["benchmark.baselines"]
    assert "reference/*/*" in globs
    files = [p for p in REFERENCE.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert files and all(len(p.relative_to(REFERENCE).parts) == 2 for p in files)
