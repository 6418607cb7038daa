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
from tests.docs_text import docs_text

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
    built = build_board(
        RESULTS, tmp_path, REPO / "benchmark" / "shipped" / "submissions", repo=REPO
    )  # its rules too
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

    from benchmark.results.ledger import ledger_path, read_ledger

    entries = read_ledger(ledger_path(RESULTS))
    official = {p.parent.name for p in RESULT_FILES}
    assert {e["submission"] for e in entries.values()} >= official
    worst = max(e["max_abs_diff"] for e in entries.values())
    readme = docs_text()
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
    readme = " ".join(docs_text().split())
    stated = re.search(r"on these pairs, here ±([0-9.]+) points", readme)
    assert stated is not None and stated.group(1) == f"{100 * mdd:.1f}"
    o = res["overall"]
    pct = f"{100 * o['difference']:+.1f} [{100 * o['ci_low']:+.1f}, {100 * o['ci_high']:+.1f}]"
    assert f"BT against MSE is {pct.replace('-', '−')} (p = {o['p_value']:.2f})" in readme


DEMO_TABLE_ORDER = (
    "demo-bt", "demo-mse", "demo-dpo", "demo-dpo-norm", "demo-grpo", "demo-grpo-sft",
    "dnsmos", "plcmos", "shortcut-random", "shortcut-loudness", "shortcut-duration",
)  # fmt: skip


def demo_table() -> str:
    """The README's demo table, from the committed results (the test below checks that the README
    holds exactly this text; print it with `python -c "from tests.test_official_board import
    demo_table; print(demo_table())"` after `make run`)."""
    from benchmark.leaderboard.data import bin_label

    def pct(c: dict) -> str:
        if c.get("accuracy") is None:
            return "–"
        acc = f"{100 * c['accuracy']:.1f}"
        if c.get("ci_low") is None:
            return acc
        return f"{acc} [{100 * c['ci_low']:.1f}, {100 * c['ci_high']:.1f}]"

    records = {s: json.loads((RESULTS / s / "demo.json").read_text()) for s in DEMO_TABLE_ORDER}
    edges = records["demo-bt"]["bin_edges"]
    bins = [0, 2, 4]
    head = ["model", "overall", *(bin_label(i, edges) for i in bins)]
    head += ["same_content", "same_system", "cross"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records.values():
        m = r["metrics"]
        row = [r["display_name"], pct(m["overall"])]
        row += [pct(m["by_bin"][str(i)]) for i in bins]
        row += [pct(m["by_relation"][rel]) for rel in ("same_content", "same_system", "cross")]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _readme() -> str:
    return docs_text()


def test_the_readme_demo_table_is_the_committed_results() -> None:
    assert demo_table() in _readme()


def families_table() -> str:
    """The README's "three families, bin by bin" table from the committed predictions: `compare`
    of BT, DPO (summed) and the GRPO judge, each difference with its interval and its gatekept
    adjusted p-value."""
    from benchmark.data.tables import read_parquet
    from benchmark.leaderboard.data import bin_label
    from benchmark.stats.metrics import compare

    subs = {"BT": "demo-bt", "DPO": "demo-dpo", "GRPO": "demo-grpo"}
    preds = {k: read_parquet(RESULTS / s / "demo.predictions.parquet") for k, s in subs.items()}
    edges = json.loads((RESULTS / "demo-bt" / "demo.json").read_text())["bin_edges"]
    pairs = [("BT", "DPO"), ("BT", "GRPO"), ("DPO", "GRPO")]
    comps = {p: compare(preds[p[0]], preds[p[1]]) for p in pairs}

    def diff(c: dict) -> str:
        d = f"{100 * c['difference']:+.1f}".replace("-", "−")
        if c["ci_low"] is None:
            return f"{d}, no test"
        lo = f"{100 * c['ci_low']:+.1f}".replace("-", "−")
        hi = f"{100 * c['ci_high']:+.1f}".replace("-", "−")
        p = c["p_holm"]
        return f"{d} [{lo}, {hi}], p {'< 1e-4' if p < 1e-4 else f'{p:.2g}'}"

    cells = [("overall", lambda c: c["overall"])]
    cells += [(bin_label(i, edges), lambda c, i=i: c["by_bin"][str(i)]) for i in range(5)]
    cells += [("ΔMOS ≤ 0.5", lambda c: c["by_subset"]["dmos_le_0_5"])]
    cells += [("ΔMOS < 0.2", lambda c: c["by_subset"]["dmos_lt_0_2"])]
    head = "| cell | n | BT | DPO | GRPO | BT − DPO | BT − GRPO | DPO − GRPO |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for label, get in cells:
        bd, bg, dg = (get(comps[p]) for p in pairs)
        accs = [bd["accuracy_a"], bd["accuracy_b"], bg["accuracy_b"]]
        row = [label, str(bd["n"]), *(f"{100 * a:.1f}" for a in accs)]
        row += [diff(bd), diff(bg), diff(dg)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def test_the_readme_families_table_is_the_committed_predictions() -> None:
    assert families_table() in _readme()


def test_the_readme_compare_excerpt_is_a_real_run() -> None:
    """The excerpt under "Comparing two models": every line of it is a line `mosrm compare`
    prints for the committed predictions."""
    from benchmark.data.tables import read_parquet
    from benchmark.results.report import format_comparison
    from benchmark.stats.metrics import compare

    a = read_parquet(RESULTS / "shortcut-random" / "demo.predictions.parquet")
    b = read_parquet(RESULTS / "shortcut-loudness" / "demo.predictions.parquet")
    record = json.loads((RESULTS / "shortcut-random" / "demo.json").read_text())
    printed = format_comparison(
        "shortcut-random",
        "shortcut-loudness",
        "demo",
        compare(a, b),
        record["bin_edges"],
        record["ceiling"],
    ).splitlines()
    readme = _readme()
    start = readme.index("  A = shortcut-random   B = shortcut-loudness")
    excerpt = readme[start : readme.index("```", start)].splitlines()
    assert len(excerpt) >= 5
    for line in excerpt:
        assert line.removeprefix("  ") in printed, line


def test_the_readme_states_the_reference_models_rank_intervals() -> None:
    """ "BT 1–9, MSE 1–8, DPO 1–9 and GRPO judge 1–9 of 11": from the committed board."""
    board = (RESULTS / "summary.md").read_text(encoding="utf-8")
    names = {
        "BT": "BT reward model",
        "MSE": "MSE regressor",
        "DPO": "DPO implicit reward (unit LM, demo) †",
        "GRPO judge": "GRPO judge, MOS-aware reward (log-mel CNN, demo) †",
    }
    ranks = {}
    for short, name in names.items():
        line = next(x for x in board.splitlines() if x.startswith(f"| {name}"))
        ranks[short] = line.rstrip(" |").rsplit("|", 1)[1].strip()
    rows = len(RESULT_FILES)  # every official result is one ranked model on the demo board
    stated = ", ".join(f"{k} {v}" for k, v in list(ranks.items())[:-1])
    stated += f" and GRPO judge {ranks['GRPO judge']} of {rows}"
    readme = " ".join(docs_text().split())
    assert f"rank intervals on the board are {stated}." in readme, stated


def test_the_docs_state_bts_interval_over_new_systems() -> None:
    """ "the demo has 8 systems and 8 contents, so BT's 82.6 reads [75.6, 88.0]": the result."""
    o = json.loads((RESULTS / "demo-bt" / "demo.json").read_text())["metrics"]["overall"]
    text = " ".join(docs_text().split())
    want = (
        f"BT's {100 * o['accuracy']:.1f} reads [{100 * o['ci_low']:.1f}, {100 * o['ci_high']:.1f}]"
    )
    assert want in text


def test_the_docs_state_the_judges_tie_break_effect() -> None:
    """docs/baselines.md's tie-break numbers: the committed judges against the same judges with
    `tie_break: expected` (`benchmarks/judge-tie-break/`, from `mosrm evaluate` on the demo)."""
    text = " ".join(docs_text().split())
    variants = REPO / "benchmarks" / "judge-tie-break"

    def overall(path: Path) -> tuple[str, str]:
        o = json.loads(path.read_text())["metrics"]["overall"]
        return f"{100 * o['accuracy']:.1f}%", f"{100 * o['ties'] / o['n']:.1f}% ties"

    acc, ties = overall(RESULTS / "demo-grpo-sft" / "demo.json")
    acc2, ties2 = overall(variants / "demo-grpo-sft-tiebreak.demo.json")
    assert f"SFT judge goes from {acc} with {ties} to {acc2} with {ties2} overall" in text
    acc, ties = overall(RESULTS / "demo-grpo" / "demo.json")
    assert overall(variants / "demo-grpo-tiebreak.demo.json") == (acc, ties)
    assert f"GRPO judge is unchanged ({acc}, {ties})" in text
