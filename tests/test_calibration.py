"""Calibration by simulation (issue 23): `make calibrate` runs `benchmarks/calibrate.py` with 1,000
replicates per setting (minutes: not here) and writes `benchmarks/calibration.jsonl`; this checks
that the committed run is of the estimator the harness has now, that it meets the targets the
README states, and that the README's tables are that file's, and runs the simulation itself
briefly so that the script cannot rot."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from benchmark.stats.metrics import METRICS_VERSION
from benchmark.stats.uncertainty import ESTIMATOR

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / "benchmarks" / "calibration.jsonl"
sys.path.insert(0, str(REPO / "benchmarks"))

import calibrate  # noqa: E402

from tests.docs_text import docs_text  # noqa: E402


def _lines() -> list[dict]:
    return [json.loads(x) for x in RUN.read_text().splitlines() if x.strip()]


def test_the_committed_run_is_of_this_estimator_at_full_size() -> None:
    lines = _lines()
    settings = {(x["shape"], x["scenario"], x["accuracy_level"], x["bias"]) for x in lines}
    assert len(settings) == len(lines) == 2 * 2 * 3 * 2  # shapes × scenarios × models × bias
    for x in lines:
        assert x["replicates"] >= 1000
        assert (x["estimator"], x["metrics_version"]) == (ESTIMATOR, METRICS_VERSION)


def test_the_readme_tables_are_the_committed_run() -> None:
    readme = docs_text()
    assert calibrate.readme_tables(_lines()) in readme


def test_the_run_meets_what_the_readme_claims() -> None:
    """The docs' claims, as numbers (docs/results.md): no cell below 0.91 (the target, 0.92, is
    missed by one cell, which the docs name), the paired test's level, the rank intervals."""
    lines = _lines()
    for x in lines:
        for cell in calibrate.CELLS:
            c = x[cell]
            floor = 0.91 if cell == "bin 0" else 0.92
            assert c["coverage"] >= floor, (x["shape"], x["scenario"], cell, c)
        assert x["paired_null_rejection"] <= 0.07, x
    for x in lines:
        if x["scenario"] == "B" and x["accuracy_level"] == "80":
            assert x["ranks"]["simultaneous_coverage"] >= 0.93, x
    text = " ".join(docs_text().split())
    outside = min(x[c]["coverage"] for x in lines for c in calibrate.CELLS if c != "bin 0")
    assert f"at least {outside:.3f} outside bin 0" in text


def test_the_simulation_runs_and_covers() -> None:
    """A short run of the real simulation: the default interval over new systems, its record of
    what it generalises over, and the paired test's output (not a calibration: 30 replicates)."""
    out = calibrate.run_setting(calibrate.SHAPES["demo"], "B", "80", False, 30, seed=3)
    assert out["overall"]["generalises_over"] == "clips, systems, contents"
    assert 0.7 <= out["overall"]["coverage"] <= 1.0
    assert 0.0 <= out["paired_null_rejection"] <= 0.3
    assert out["ranks"]["models"] == 6
    bvcc = calibrate.run_setting(calibrate.SHAPES["bvcc"], "A", "60", True, 3, seed=3, ranks=False)
    # 6 contents are fewer than MIN_CLUSTERS: held fixed, and the systems-fixed interval is
    # about clips alone
    assert bvcc["overall"]["generalises_over"] == "clips"


@pytest.mark.parametrize("scenario", ["A", "B"])
def test_the_truth_of_a_scenario_is_the_interval_it_checks(scenario: str) -> None:
    out = calibrate.run_setting(calibrate.SHAPES["demo"], scenario, "95", True, 2, seed=1)
    want = "clips, contents" if scenario == "A" else "clips, systems, contents"
    assert out["overall"]["generalises_over"] == want


def test_the_ceiling_states_its_measured_coverage() -> None:
    """The ceiling's range is nominally 95%; the coverage results and the board state beside it
    is the lowest and highest over the committed ceiling calibration (both shapes, every cell)."""
    from benchmark.stats.ceiling import MEASURED_COVERAGE

    lines = [
        json.loads(x)
        for x in (REPO / "benchmarks" / "calibration-ceiling.jsonl").read_text().splitlines()
        if x.strip()
    ]
    assert {x["shape"] for x in lines} == {"demo", "bvcc"}
    assert all(x["replicates"] >= 1000 for x in lines)
    cov = [x[cell]["coverage"] for x in lines for cell in calibrate.CELLS]
    assert MEASURED_COVERAGE == (round(min(cov), 2), round(max(cov), 2))


def test_the_readme_summary_numbers_are_the_run() -> None:
    """The sentences under the table: the lowest coverage, the widest demo-shape width, the
    highest bin-0 coverage there, the BVCC-shape null rejection and power, the rank coverage."""
    lines = _lines()
    readme = " ".join(docs_text().split())
    low = min(x[c]["coverage"] for x in lines for c in calibrate.CELLS)
    assert f"covered at least {low:.3f} of the time" in readme
    demo_b = [x for x in lines if x["shape"] == "demo" and x["scenario"] == "B"]
    widest = max(x[c]["width_ratio"] for x in demo_b for c in calibrate.CELLS)
    top = max(x["bin 0"]["coverage"] for x in demo_b)
    assert f"coverage up to {top:.3f} in bin 0, mean width up to {widest:.2f}×" in readme
    bvcc_b = [x for x in lines if x["shape"] == "bvcc" and x["scenario"] == "B"]
    assert f"keeps its level (≤ {max(x['paired_null_rejection'] for x in bvcc_b):.3f})" in readme
    ranks = min(x["ranks"]["simultaneous_coverage"] for x in lines if "ranks" in x)
    assert f"true ranks at once in ≥ {ranks:.3f} of tests" in readme
