"""Cost of `mosrm board` at leaderboard scale: 50 submissions × 7 tasks (6 real + the synthetic
demo) of paper-sized test sets (1,248 pairs on 400 clips each, 5 ΔMOS bins, three relations).

Everything the command writes is built: rank intervals (paired tests, up to 49 per task and task set),
the cross-task pooling, Markdown, the page with its 15 SVG figures, CSV and JSON. Goal: < 10 s.
"""

from __future__ import annotations

import json
import time
import zlib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from benchmark.data.tables import FIXED_SUBSETS, from_rows
from benchmark.leaderboard.build import build_board
from benchmark.stats.metrics import METRICS_VERSION, PREDICTION_SCHEMA, aggregate

TASKS = ("bvcc", "nisqa", "singmos", "somos", "tmhint", "vmc23", "demo")
PAIRS, CLIPS, MODELS, BINS = 1248, 400, 50, 5
GOAL_S = 10.0


def _pairs(task: str) -> list[dict]:
    rng = np.random.default_rng(zlib.crc32(task.encode()))
    rows = []
    for i in range(PAIRS):
        a, b = rng.choice(CLIPS, 2, replace=False)
        delta = float(rng.uniform(0.05, 3.0))
        rows.append(
            {
                "pair_id": f"{task}{i:05d}",
                "task": task,
                "split": "test",
                "relation": ("same_content", "same_system", "cross")[i % 3],
                "clip_a": f"c{a}",
                "clip_b": f"c{b}",
                "mos_a": 2.0 + delta,
                "mos_b": 2.0,
                "delta_mos": delta,
                "chosen": "a" if i % 2 else "b",
                "delta_bin": min(BINS - 1, int(delta / 3.0 * BINS)),
                **{k: False for k in FIXED_SUBSETS},
            }
        )
    return rows


def write_results(root: Path) -> None:
    from benchmark import HARNESS_VERSION
    from benchmark.results.schema import SCHEMA_VERSION
    from benchmark.stats.diagnostics import by_construction
    from benchmark.stats.metrics import interval_spec

    for task in TASKS:
        pairs = _pairs(task)
        for m in range(MODELS):
            sub = f"model-{m:02d}"
            rng = np.random.default_rng(zlib.crc32(f"{sub}/{task}".encode()))
            skill = 0.5 + 0.4 * m / MODELS
            rows = []
            for p in pairs:
                right = rng.random() < skill
                hi, lo = (0.9, 0.1) if right else (0.1, 0.9)
                a_wins = (p["chosen"] == "a") == right
                rows.append({**p, "score_a": hi if a_wins else lo, "score_b": lo if a_wins else hi})
            pred = from_rows(rows, PREDICTION_SCHEMA)
            folder = root / sub
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(pred, folder / f"{task}.predictions.parquet")
            record = {
                "schema_version": SCHEMA_VERSION,
                "submission": sub,
                "display_name": f"Model {m:02d}",
                "kind": "scalar",
                "baseline": False,
                "model_fingerprint": "0" * 32,
                "training_data": [],
                "harness_version": HARNESS_VERSION,
                "pair_count_overrides": None,
                "seed": 0,
                "interval": interval_spec(),
                "preprocessing": None,
                "model": {
                    "parameters": 1000 * (m + 1),
                    "parameters_source": "measured",
                    "license": "MIT",
                    "url": f"https://example.org/{sub}",
                    "revision": None,
                    "release_date": None,
                    "requirements": [],
                },
                "diagnostics": by_construction(PAIRS),
                "task": task,
                "task_version": 1,
                "split": "test",
                "synthetic": task == "demo",
                "shortcut": m < 3,
                "zero_shot": True,
                "n_pairs": PAIRS,
                "bins": BINS,
                "bins_requested": BINS,
                "bin_edges": [0.05 + 0.59 * i for i in range(BINS + 1)],
                "pair_file_sha256": f"sha-{task}",
                "metrics_version": METRICS_VERSION,
                "metrics": aggregate(pred, bins=BINS),
            }
            (folder / f"{task}.json").write_text(json.dumps(record))


def test_board_50_models_7_tasks(benchmark, tmp_path) -> None:
    results = tmp_path / "results"
    write_results(results)
    start = time.perf_counter()
    built = benchmark.pedantic(build_board, args=(results, tmp_path / "out"), rounds=1)
    took = time.perf_counter() - start
    assert len(built.board.tasks) == len(TASKS) and len(built.board.tasks[0].rows) == MODELS
    assert built.board.summaries[0].rows[0].rank_low == 1
    benchmark.extra_info.update(seconds=took)
    print(f"\nmosrm board, {MODELS} submissions × {len(TASKS)} tasks: {took:.2f} s")
    assert took < GOAL_S
