"""Acceptance on the real demo task: `mosrm run` shows the shortcut baselines per bin with CIs, and
the demo pair files are reproducible to the byte (and move with the seed)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from benchmark.cli import main
from benchmark.data.tasks import load_task_file
from benchmark.pairs.prepare import prepare
from benchmark.paths import prepared_dir
from benchmark.pipeline import evaluate
from benchmark.scoring.models import load_submission
from benchmark.stats.ceiling import ceiling_report
from benchmark.stats.metrics import aggregate
from benchmark.stats.uncertainty import ClipDesign, accuracy_interval
from tests.docs_text import docs_text

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_run_and_reproducible_pairs(tmp_path, capsys):
    results = tmp_path / "results"
    args = [
        "--repo",
        str(tmp_path / "ws"),
        "run",
        "--tasks",
        "demo",
        "--quiet",
        "--results",
        str(results),
    ]
    # the shortcuts only: training is tested in tests/baselines/test_train.py, DNSMOS/PLCMOS in
    # tests/baselines/test_zero_shot.py (scoring them on the demo costs ~1.5 min here)
    args += ["--no-train", "--submissions", "shortcut-random", "shortcut-duration"]
    args.append("shortcut-loudness")
    assert main(args) == 0
    printed = capsys.readouterr().out  # each result as it is scored, then a short summary
    out = (results / "summary.md").read_text(encoding="utf-8")  # the board's tables
    task = load_task_file(REPO / "benchmark" / "shipped" / "tasks" / "demo.yaml")
    lines = [line for line in out.splitlines() if line.startswith("| Shortcut:")]
    assert {line.split("|")[1].split("(")[0].strip() for line in lines} >= {
        "Shortcut: random",
        "Shortcut: duration",
        "Shortcut: loudness",
    }
    for line in lines[:3]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        # overall + one cell per bin, each "acc [lo, hi]" (the share of the ceiling's gap, a
        # plain percentage, may sit between them)
        shown = [c for c in cells[1:] if re.fullmatch(r"[\d.]+ \[[\d.]+, [\d.]+\]", c)]
        assert len(shown) >= 1 + task.spec.bins and shown[0] == cells[1], line
    for name in ("shortcut-random", "shortcut-duration", "shortcut-loudness"):
        record = json.loads((results / name / "demo.json").read_text())
        assert record["n_pairs"] >= 2000
        assert len(record["metrics"]["by_bin"]) == task.spec.bins
        # the simulated panel's votes give every pair a reliability: a ceiling per bin
        ceiling = record["ceiling"]
        assert set(ceiling["by_bin"]) == set(record["metrics"]["by_bin"])
        assert all(c["n_rated"] == c["n"] > 0 for c in ceiling["by_bin"].values())
    assert "ceiling [95% range]" in printed and "of gap" in printed
    _baselines_at_or_below_the_ceiling(results, task)
    _ceiling_matches_the_known_panel(task)
    # the seeded random scorer is chance by construction; on the demo's own test pairs the
    # clip-aware 95% interval covers 50% for ~95% of random scorers (the pair-level one for ~59%)
    random = json.loads((results / "shortcut-random" / "demo.json").read_text())
    overall = random["metrics"]["overall"]
    assert overall["n_clips"] == 256 and overall["design_effect"] > 2
    row = next(line for line in lines if line.startswith("| Shortcut: random"))
    acc, lo, hi = (float(x) for x in re.findall(r"[\d.]+", row.split("|")[2]))
    assert (acc, lo, hi) == tuple(
        round(100 * overall[k], 1) for k in ("accuracy", "ci_low", "ci_high")
    )
    pairs = pq.read_table(prepared_dir("demo") / "pairs-test.parquet")
    clips = set(pairs.column("clip_a").to_pylist()) | set(pairs.column("clip_b").to_pylist())
    ids = {c: i for i, c in enumerate(sorted(clips))}
    a = np.array([ids[c] for c in pairs.column("clip_a").to_pylist()])
    b = np.array([ids[c] for c in pairs.column("clip_b").to_pylist()])
    first = np.array(pairs.column("chosen").to_pylist()) == "a"
    scores = np.random.default_rng(0).random((1000, len(ids)))
    correct = scores[:, np.where(first, a, b)] > scores[:, np.where(first, b, a)]
    design = ClipDesign.of(a, b)  # clips only: a random scorer has no system effects to find
    ivs = [accuracy_interval(row, design) for row in correct]
    assert 0.925 <= np.mean([iv.low <= 0.5 <= iv.high for iv in ivs]) <= 0.975
    # evaluate's printout shows every relation with its interval
    assert re.search(r"^\s+same_content\s+[\d.]+\s+\[[\d.]+, [\d.]+\]", printed, flags=re.M)

    # the same scores as a predictions-only submission give the same results, to the byte
    loud = pq.read_table(results / "shortcut-loudness" / "demo.predictions.parquet")
    per_clip = {}
    for side in ("a", "b"):
        ids, values = loud.column(f"clip_{side}").to_pylist(), loud.column(f"score_{side}")
        per_clip.update(zip(ids, values.to_pylist(), strict=True))
    folder = tmp_path / "subs" / "loudness-file"
    folder.mkdir(parents=True)
    pq.write_table(
        pa.table({"clip_id": list(per_clip), "score": list(per_clip.values())}),
        folder / "scores.parquet",
    )
    spec = {"name": folder.name, "display_name": "file", "kind": "predictions"}
    spec["predictions"] = {"demo": "scores.parquet"}
    (folder / "submission.yaml").write_text(yaml.safe_dump(spec))
    again = evaluate(
        load_submission(folder), prepare(task, reuse=True), results_root=tmp_path / "again"
    )
    code = json.loads((results / "shortcut-loudness" / "demo.json").read_text())
    identity = {"submission", "display_name", "kind", "model_fingerprint", "preprocessing"}
    identity |= {"model", "baseline", "shortcut"}
    same = {k: v for k, v in code.items() if k not in identity}
    assert json.dumps(same, sort_keys=True) == json.dumps(
        {k: v for k, v in again.items() if k not in identity}, sort_keys=True
    )
    cols = ["pair_id", "score_a", "score_b"]
    copy = pq.read_table(tmp_path / "again" / folder.name / "demo.predictions.parquet")
    assert copy.select(cols).equals(loud.select(cols))

    first = prepare(task, out_dir=tmp_path / "a")
    again = prepare(task, out_dir=tmp_path / "b")
    assert first.pair_sha256 == again.pair_sha256
    assert first.clips.num_rows >= 400
    assert first.pairs("test").num_rows >= 2000

    spec = yaml.safe_load((REPO / "benchmark" / "shipped" / "tasks" / "demo.yaml").read_text())
    spec["seed"] += 1
    del spec["card"]  # its notes_file is relative to the repository's tasks/ folder
    reseeded = tmp_path / "tasks" / "demo.yaml"
    reseeded.parent.mkdir()
    reseeded.write_text(yaml.safe_dump(spec))
    other = prepare(load_task_file(reseeded), data_root=first.data_root, out_dir=tmp_path / "c")
    assert other.clips.equals(first.clips)  # same corpus ...
    assert other.pair_sha256["test"] != first.pair_sha256["test"]  # ... different pairs


def _baselines_at_or_below_the_ceiling(results: Path, task: Any) -> None:
    """Every shortcut run here and every committed demo baseline (its scores joined by pair id
    onto the pair file prepared here) is at or below its bin's ceiling, up to the intervals."""
    prepared = prepare(task, reuse=True)
    pairs, meta = prepared.pairs("test"), prepared.pair_meta["test"]
    ids = pairs.column("pair_id").to_pylist()
    found = sorted(results.glob("*/demo.predictions.parquet"))
    found += sorted((REPO / "leaderboard" / "results").glob("*/demo.predictions.parquet"))
    assert len(found) >= 3 + 6  # the shortcuts here, and the trained and zero-shot baselines
    for path in found:
        scores = pq.read_table(path, columns=["pair_id", "score_a", "score_b"]).to_pylist()
        by_id = {r["pair_id"]: r for r in scores}
        assert set(by_id) == set(ids), path  # the same pairs (pair ids v2)
        pred = pairs.append_column(
            "score_a", pa.array([by_id[i]["score_a"] for i in ids], pa.float64())
        ).append_column("score_b", pa.array([by_id[i]["score_b"] for i in ids], pa.float64()))
        bins = int(meta["bins"])
        metrics = aggregate(pred, bins=bins)
        ceiling = ceiling_report(pred, prepared.clips, meta, bins=bins, seed=task.spec.seed)
        for b, cell in metrics["by_bin"].items():
            top = ceiling["by_bin"][b]
            low = cell["ci_low"] if cell["ci_low"] is not None else cell["ci_low_systems_fixed"]
            assert low <= top["ci_high"], (path, b, cell["accuracy"], top)


def ceiling_table(report: dict, oracle: np.ndarray, band: np.ndarray, meta: dict) -> str:
    """The README's ceiling table ('How good can a model be?'): per ΔMOS bin and overall, the
    ceiling with its range, the simulated panel's true oracle accuracy, and the committed BT, GRPO
    and DNSMOS results."""
    from benchmark.leaderboard.data import bin_label

    models = {}
    for sub in ("demo-bt", "demo-grpo", "dnsmos"):
        path = REPO / "leaderboard" / "results" / sub / "demo.json"
        models[sub] = json.loads(path.read_text())["metrics"]
    subs = ("demo-bt", "demo-grpo", "dnsmos")
    head = "  | ΔMOS bin | ceiling [95% range] | oracle's true accuracy | BT reward model | "
    head += "GRPO judge | DNSMOS |"
    lines = [head, "  |---|---:|---:|---:|---:|---:|"]

    def row(label: str, top: dict, truth: float, cells: list[dict]) -> str:
        ceiling = (
            f"{100 * top['ceiling']:.1f} [{100 * top['ci_low']:.1f}, {100 * top['ci_high']:.1f}]"
        )
        accs = " | ".join(f"{100 * c['accuracy']:.1f}" for c in cells)
        return f"  | {label} | {ceiling} | {100 * truth:.1f} | {accs} |"

    edges = meta["bin_edges"]
    for i in range(meta["bins"]):
        label = bin_label(i, edges).removeprefix("bin ")
        cells = [models[s]["by_bin"][str(i)] for s in subs]
        lines.append(row(label, report["by_bin"][str(i)], float(oracle[band == i].mean()), cells))
    cells = [models[s]["overall"] for s in subs]
    lines.append(row("all", report["overall"], float(oracle.mean()), cells))
    return "\n".join(lines)


def known_panel(task: Any) -> tuple[Any, ...]:
    """(prepared task, pairs, pair metadata, ceiling report, the true oracle's verdict per pair,
    ΔMOS bin per pair, relation per pair) on the demo's test split (see below)."""
    from scipy import stats

    from benchmark.data.corpora import demo
    from benchmark.stats.ceiling import ceiling_report

    prepared = prepare(task, reuse=True)
    manifest = json.loads((prepared.data_root / "manifest.json").read_text())
    opts = manifest["options"]
    size = demo.RATER_POOL_FACTOR * opts["n_raters"]
    pool = demo._rng(opts["seed"], demo._STREAM_PANEL).normal(0.0, demo.RATER_BIAS_SD, size)
    k = np.arange(1, 6)
    lo, hi = np.where(k == 1, -np.inf, k - 0.5), np.where(k == 5, np.inf, k + 0.5)

    def true_mean(expected: float) -> float:
        mu = expected + pool[:, None]
        sd = demo.VOTE_NOISE_SD
        probs = stats.norm.cdf((hi - mu) / sd) - stats.norm.cdf((lo - mu) / sd)
        return float((probs @ k).mean())

    true = {c: true_mean(v["expected_mos"]) for c, v in manifest["conditions"].items()}
    pairs, meta = prepared.pairs("test"), prepared.pair_meta["test"]
    report = ceiling_report(pairs, prepared.clips, meta, bins=meta["bins"], seed=task.spec.seed)
    assert report is not None
    ta = np.array([true[c] for c in pairs.column("clip_a").to_pylist()])
    tb = np.array([true[c] for c in pairs.column("clip_b").to_pylist()])
    mos_a, mos_b = (np.array(pairs.column(c).to_pylist()) for c in ("mos_a", "mos_b"))
    oracle = np.sign(ta - tb) == np.sign(mos_a - mos_b)
    band = np.array(pairs.column("delta_bin").to_pylist())
    relation = np.array(pairs.column("relation").to_pylist())
    return prepared, pairs, meta, report, oracle, band, relation


def _ceiling_matches_the_known_panel(task: Any) -> None:
    """The demo's listeners are simulated: each clip's infinite-panel mean is the average over the
    rater pool (fixed biases) of the expected rounded, clipped vote. The oracle that knows those
    means scores, against the observed labels, within the ceiling's interval on every ΔMOS bin,
    relation and overall, and within 1.5 points of the ceiling itself."""
    prepared, pairs, meta, report, oracle, band, relation = known_panel(task)
    cells = [(report["overall"], np.ones(band.size, dtype=bool))]
    cells += [(report["by_bin"][str(i)], band == i) for i in range(meta["bins"])]
    cells += [(report["by_relation"][r], relation == r) for r in sorted(set(relation))]
    for cell, mask in cells:
        actual = float(oracle[mask].mean())
        assert cell["ci_low"] <= actual <= cell["ci_high"], (cell, actual)
        assert abs(cell["ceiling"] - actual) < 0.015, (cell, actual)
    # the README's table is this report beside the true oracle and three committed models
    readme = docs_text()
    assert ceiling_table(report, oracle, band, meta) in readme
    # the rater-level bootstrap (the panel's own votes) agrees with the pair file's closed form
    from benchmark.pairs.reliability import (
        AGREEMENT_MAX_ABS,
        AGREEMENT_MEAN_ABS,
        bootstrap,
        clip_noise,
    )

    noise = clip_noise(prepared.clips)
    index = {c: i for i, c in enumerate(noise.clip_ids.tolist())}
    a = np.array([index[c] for c in pairs.column("clip_a").to_pylist()])
    b = np.array([index[c] for c in pairs.column("clip_b").to_pylist()])
    prior = meta["label_reliability"]["prior_sd"]
    tau2 = np.array([prior[r]["null"] ** 2 for r in relation])
    closed = np.array(pairs.column("label_reliability").to_pylist())
    diff = np.abs(bootstrap(noise, a, b, tau2, seed=task.spec.seed) - closed)
    assert diff.mean() <= AGREEMENT_MEAN_ABS and diff.max() <= AGREEMENT_MAX_ABS, diff.max()
