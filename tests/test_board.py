"""The Markdown board, built from a results folder written here by hand (no scoring needed)."""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmark import HARNESS_VERSION
from benchmark.data.tables import FIXED_SUBSETS, from_rows
from benchmark.errors import MosrmError
from benchmark.leaderboard.board import render_markdown
from benchmark.results.schema import SCHEMA_VERSION
from benchmark.stats.diagnostics import by_construction
from benchmark.stats.metrics import METRICS_VERSION, PREDICTION_SCHEMA, aggregate, interval_spec

TASKS = {"alpha": 60, "beta": 40, "demo": 50}  # pairs per task; demo is the synthetic one


def _predictions(task: str, skill: float, seed: int) -> pa.Table:
    # the task's pairs are the same for every submission (one pair file), the verdicts are not
    pairs = np.random.default_rng(zlib.crc32(task.encode()))
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(TASKS[task]):
        a, b = pairs.choice(12, 2, replace=False)
        chosen = "a" if i % 2 else "b"
        right = rng.random() < skill
        hi, lo = (0.9, 0.1) if right else (0.1, 0.9)
        rows.append(
            {
                "pair_id": f"{task}{i:03d}",
                "task": task,
                "split": "test",
                "relation": ("same_content", "same_system", "cross")[i % 3],
                "clip_a": f"{task}-c{a}",  # each task its own clips, as corpora have
                "clip_b": f"{task}-c{b}",
                "mos_a": 3.0,
                "mos_b": 2.0,
                "delta_mos": 1.0,
                "chosen": chosen,
                "delta_bin": i % 3,
                **dict.fromkeys(FIXED_SUBSETS, False),
                "score_a": hi if chosen == "a" else lo,
                "score_b": lo if chosen == "a" else hi,
            }
        )
    return from_rows(rows, PREDICTION_SCHEMA)


def _result(root: Path, sub: str, task: str, skill: float, **extra: object) -> Path:
    """A complete results file (it validates as `TaskResult`) and its predictions; `extra`
    overrides fields (`model` is merged into the default model block)."""
    pred = _predictions(task, skill, seed=zlib.crc32(f"{sub}/{task}".encode()))
    folder = root / sub
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pred, folder / f"{task}.predictions.parquet")
    given: Any = extra.pop("model", {})
    model = {
        "parameters": None,
        "parameters_source": None,
        "license": None,
        "url": None,
        "revision": None,
        "release_date": None,
        "requirements": [],
        **given,
    }
    record = {
        "schema_version": SCHEMA_VERSION,
        "submission": sub,
        "display_name": extra.pop("display_name", sub),
        "kind": "scalar",
        "baseline": False,
        "shortcut": False,
        "model_fingerprint": "0" * 32,
        "training_data": [],
        "zero_shot": True,
        "task": task,
        "task_version": 1,
        "synthetic": task == "demo",
        "split": "test",
        "harness_version": HARNESS_VERSION,
        "pair_file_sha256": f"sha-{task}",
        "pair_count_overrides": None,
        "n_pairs": pred.num_rows,
        "seed": 0,
        "bins": 3,
        "bins_requested": 3,
        "bin_edges": [0.5, 1.0, 1.5, 2.0],
        "metrics_version": METRICS_VERSION,
        "interval": interval_spec(),
        "preprocessing": None,
        "model": model,
        "metrics": aggregate(pred, bins=3),
        "diagnostics": by_construction(pred.num_rows),
        **extra,
    }
    path = folder / f"{task}.json"
    path.write_text(json.dumps(record))
    return path


@pytest.fixture
def results(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    for task in ("alpha", "beta", "demo"):
        _result(root, "full", task, 0.8)
    for task in ("alpha", "beta"):
        _result(root, "second", task, 0.6)
        _result(root, "loud", task, 0.5, shortcut=True)
    _result(root, "trained", "alpha", 0.9)
    _result(root, "trained", "beta", 0.95, zero_shot=False)
    _result(root, "partial", "alpha", 0.99)
    return root


def _section(md: str, heading: str) -> str:
    start = md.index(heading)
    nxt = md.find("\n## ", start + 1)
    return md[start : nxt if nxt > 0 else len(md)]


def test_summary_keeps_synthetic_out_and_ranks_only_equal_coverage(results: Path) -> None:
    md = render_markdown(results)
    summary = _section(md, "## All tasks")
    assert "demo" not in summary.split("Synthetic tasks")[0]
    assert "Synthetic tasks (demo) are never pooled" in summary
    tables = summary.split("Evaluated on ")[1:]
    assert tables[0].startswith("2 task(s): alpha, beta")
    assert tables[1].startswith("1 task(s): alpha")
    two, one = tables
    assert "partial" not in two and "partial" in one  # 99% on one task is not ranked above others
    assert all(name in two for name in ("full", "second", "loud", "trained"))
    assert "loud ‡" in two and "trained †" in two  # markers survive into the summary
    # micro of 'full' pools alpha + beta only (100 pairs), never the demo's 50
    full = next(line for line in two.splitlines() if "| full |" in line)
    assert full.endswith("| 100 |")
    ranks = [int(line.split("|")[1]) for line in two.splitlines() if re.match(r"\| \d", line)]
    assert ranks == [1, 2, 3, 4]


def test_summary_numbers_are_recomputed_from_predictions(results: Path) -> None:
    md = render_markdown(results)
    tables = [
        pq.read_table(results / "second" / f"{t}.predictions.parquet") for t in ("alpha", "beta")
    ]
    agg = aggregate(pa.concat_tables(tables))
    o, m = agg["overall"], agg["macro"]
    want = (
        f"| second | {100 * o['accuracy']:.1f} [{100 * o['ci_low']:.1f}, {100 * o['ci_high']:.1f}] "
        f"| {100 * m['accuracy']:.1f} [{100 * m['ci_low']:.1f}, {100 * m['ci_high']:.1f}] |"
    )
    assert want in md


def test_per_task_and_per_relation_tables(results: Path) -> None:
    md = render_markdown(results)
    alpha = _section(md, "## alpha")
    assert "60 pairs on 12 clips" in alpha
    assert "By relation:" in alpha
    head = next(
        line for line in alpha.split("By relation:")[1].splitlines() if line.startswith("|")
    )
    assert "cross (20 pairs)" in head and "same_content (20 pairs)" in head
    assert "SYNTHETIC" in _section(md, "## demo")


def test_board_is_a_pure_function_of_the_results(results: Path) -> None:
    assert render_markdown(results) == render_markdown(results)


def test_missing_predictions_file_is_named(results: Path) -> None:
    gone = results / "second" / "beta.predictions.parquet"
    gone.unlink()
    with pytest.raises(MosrmError, match=re.escape(str(gone))):
        render_markdown(results)


def test_stale_or_mismatched_results_are_refused(results: Path) -> None:
    path = results / "second" / "alpha.json"
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "pair_file_sha256": "sha-other"}))
    with pytest.raises(MosrmError, match="different pair files"):
        render_markdown(results)
    path.write_text(json.dumps({**record, "metrics_version": 1}))
    with pytest.raises(MosrmError, match=r"alpha\.json: field 'metrics_version' is 1"):
        render_markdown(results)


def test_user_strings_are_escaped(tmp_path: Path) -> None:
    root = tmp_path / "results"
    for task in ("alpha", "beta"):
        _result(root, "evil", task, 0.7, display_name="a|b\r![x](http://e/p.png)<i>")
    md = render_markdown(root)
    assert "![x]" not in md and "<i>" not in md and "a|b" not in md
    assert "a\\|b !\\[x\\](http://e/p.png)&lt;i&gt;" in md
    lines = [line for line in md.splitlines() if "evil" in line or "a\\|b" in line]
    rows = [line for line in lines if not line.startswith("- ")]  # the provenance notes
    assert rows and all(line.startswith("|") and line.endswith("|") for line in rows)
    assert all("a\\|b !\\[x\\](http://e/p.png)&lt;i&gt;" in line for line in lines)


def test_models_table_shows_metadata_as_inert_text(tmp_path: Path) -> None:
    root = tmp_path / "results"
    model = {
        "parameters": 1234567,
        "parameters_source": "measured",
        "license": "MIT",
        "url": "https://example.org/m?a=1&b=<2>",
        "revision": "abc|123",
        "release_date": "2026-01-31",
    }
    for task in ("alpha", "beta"):
        _result(root, "meta", task, 0.7, model=model, training_data=["bvcc:train"])
    _result(root, "bare", "alpha", 0.6, model={"parameters": 10, "parameters_source": "declared"})
    md = render_markdown(root)
    models = _section(md, "## Models")
    rows = {
        line.split("|")[1].strip(): line for line in models.splitlines() if line.startswith("| ")
    }
    meta = rows["meta"]
    assert "1,234,567" in meta and "MIT" in meta and "2026-01-31" in meta and "bvcc:train" in meta
    assert "abc\\|123" in meta and "&lt;2&gt;" in meta  # escaped, one row, no live link
    assert "10 (declared)" in rows["bare"] and "none declared" in rows["bare"]


def test_a_judge_with_old_and_new_predictions_still_pools(tmp_path: Path) -> None:
    """Results of one pairwise judge written before and after the presentation-order columns
    existed: pooling them must not leave a partly-null column that the metrics refuse."""
    from benchmark.scoring.predictions import with_orders

    root = tmp_path / "results"
    _result(root, "judge", "alpha", 0.8)  # old layout: no order columns
    new = _result(root, "judge", "beta", 0.7)
    path = new.with_name("beta.predictions.parquet")
    pred = pq.read_table(path)
    p = pred.column("score_a").to_numpy()
    pq.write_table(with_orders(pred, p, 1.0 - p), path)  # an unbiased judge's both orders
    md = render_markdown(root)
    pooled = aggregate(
        pa.concat_tables(
            [pq.read_table(f) for f in sorted(root.glob("judge/*.parquet"))],
            promote_options="default",
        ).drop_columns(["p_a_first", "p_b_first"])
    )
    assert f"{100 * pooled['overall']['accuracy']:.1f}" in _section(md, "## All tasks")
