"""The board committed in the repo is what `mosrm board` builds from the committed results.

`leaderboard/results/` holds the official baseline results (one JSON, run record and predictions
per submission × task) and `leaderboard/README.md` + `leaderboard/site/` the board built from them.
Rebuilding here must give the same bytes, the results must validate as the current schema, and
every number must follow from the predictions stored beside it: a reader can trust the committed
board without rerunning a model. After changing a baseline, the harness or the board: `make run`
and commit `leaderboard/`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.leaderboard.build import build_board
from benchmark.results.schema import SCHEMA_VERSION, RunRecord, TaskResult

REPO = Path(__file__).resolve().parents[1]
BOARD = REPO / "leaderboard"
RESULTS = BOARD / "results"
RESULT_FILES = sorted(
    p
    for p in RESULTS.glob("*/*.json")
    if not p.name.endswith((".run.json", ".failed.json", ".partial.json")) and "@" not in p.stem
)


def test_official_results_are_committed() -> None:
    names = {p.parent.name for p in RESULT_FILES}
    expected = {"shortcut-random", "shortcut-loudness", "shortcut-duration", "dnsmos", "plcmos"}
    expected |= {"demo-bt", "demo-mse", "demo-dpo", "demo-dpo-norm", "demo-grpo", "demo-grpo-sft"}
    assert expected <= names, f"missing official results: {sorted(expected - names)}"


def test_the_committed_board_rebuilds_byte_for_byte(tmp_path: Path) -> None:
    built = build_board(RESULTS, tmp_path, REPO / "submissions", repo=REPO)  # its rules too
    rebuilt = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    committed = {"README.md"} | {
        p.relative_to(BOARD).as_posix() for p in (BOARD / "site").rglob("*") if p.is_file()
    }
    committed.discard("site/screenshot.png")
    assert rebuilt == committed
    for rel in sorted(rebuilt):
        assert (tmp_path / rel).read_bytes() == (BOARD / rel).read_bytes(), (
            f"leaderboard/{rel} is not what `mosrm board` builds from leaderboard/results: "
            "run `make run` (or `mosrm board`) and commit leaderboard/"
        )
    assert (RESULTS / "summary.md").read_text(encoding="utf-8") == built.markdown
    assert "Not ranked:" not in built.markdown  # none stale: computed by the committed folders
    # every official result was re-scored by the board's builder (leaderboard/verified.json)
    assert all(r.verified for t in built.board.tasks for r in t.rows)


@pytest.mark.parametrize("path", RESULT_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_official_results_validate_and_follow_from_their_predictions(path: Path) -> None:
    from benchmark.data.tables import read_parquet
    from benchmark.stats.metrics import aggregate

    result = TaskResult.load(path)
    assert result.schema_version == SCHEMA_VERSION and result.partial is None
    run = RunRecord.load(path.with_name(path.stem + ".run.json"))
    assert run.schema_version == SCHEMA_VERSION
    pred = read_parquet(path.with_name(path.stem + ".predictions.parquet"))
    assert pred.num_rows == result.n_pairs
    recomputed = json.loads(json.dumps(aggregate(pred, bins=result.bins)))
    stored = json.loads(path.read_text(encoding="utf-8"))["metrics"]
    assert recomputed == stored


def test_the_readme_states_the_ledgers_largest_rescore_difference() -> None:
    import re

    from benchmark.results.ledger import LEDGER, read_ledger

    entries = read_ledger(REPO / LEDGER)
    official = {p.parent.name for p in RESULT_FILES}
    assert {e["submission"] for e in entries.values()} >= official
    worst = max(e["max_abs_diff"] for e in entries.values())
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    stated = re.search(r"all agree \(max \|Δ\| ([0-9.e-]+)\)", readme)
    assert stated is not None and float(stated.group(1)) == float(f"{worst:.2g}")


def test_the_readme_states_bt_against_mse_minimum_detectable_difference() -> None:
    import re

    from benchmark.data.tables import read_parquet
    from benchmark.stats.metrics import compare

    bt = read_parquet(RESULTS / "demo-bt" / "demo.predictions.parquet")
    mse = read_parquet(RESULTS / "demo-mse" / "demo.predictions.parquet")
    res = compare(bt, mse)
    mdd = res["minimum_detectable_difference"]["value"]
    readme = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    stated = re.search(r"on these pairs, here ±([0-9.]+) points", readme)
    assert stated is not None and stated.group(1) == f"{100 * mdd:.1f}"
    o = res["overall"]
    pct = f"{100 * o['difference']:+.1f} [{100 * o['ci_low']:+.1f}, {100 * o['ci_high']:+.1f}]"
    assert f"BT against MSE is {pct.replace('-', '−')} (p = {o['p_value']:.2f})" in readme
