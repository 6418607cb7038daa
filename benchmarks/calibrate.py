"""Calibration of the harness's intervals and paired test by simulation with known truth.

Simulated listening tests go through the project's own pair builder (`build_pairs`) and the very
functions results are computed with (`stats.uncertainty.accuracy_interval`, `difference_test`):
systems × contents, one clip each, clip quality = system + content + clip effects, 4–8 integer ACR
ratings per clip; models whose score is the true quality plus noise (tuned to ~60/80/95%
accuracy), optionally with per-system biases.

Scenario A keeps the systems (and the models' biases) fixed and redraws contents, clips, ratings
and model noise: the truth is the accuracy on *these* systems, which the results' systems-fixed
interval (`ci_low_systems_fixed`) claims to cover. Scenario B redraws the systems too: the truth is
the accuracy on new systems, which the default interval (`ci_low`) claims to cover. Kinds the
harness holds fixed (fewer than `MIN_CLUSTERS` contents, as in the BVCC shape's 6) are held fixed
by the simulation too, since the interval says it is conditional on them. The truth a replicate's
interval should cover is the mean over the replicates (its Monte Carlo error is printed).

Reported per setting: coverage overall, per relation and in ΔMOS bin 0, with its Monte Carlo
error; mean width against the width the empirical SD implies (2 × 1.96 × SD); the paired test's
null rejection (two equally good models: in B each with its own per-system biases); its power for
a true difference of `--power-gap` on the overall cell (the primary endpoint).

    .venv/bin/python benchmarks/calibrate.py --replicates 1000      # make calibrate

Minutes, not seconds, so not part of `make test` (tests/test_calibration.py runs a short version
and checks the README's numbers against `benchmarks/calibration.json`, which this writes).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from benchmark.data.tables import CLIP_SCHEMA, conform
from benchmark.pairs.build import build_pairs
from benchmark.stats.metrics import METRICS_VERSION
from benchmark.stats.ranks import rank_intervals
from benchmark.stats.uncertainty import (
    ESTIMATOR,
    MIN_CLUSTERS,
    ClipDesign,
    accuracy_interval,
    difference_test,
)

RELATIONS = ("same_content", "same_system", "cross")
CELLS = ("overall", *RELATIONS, "bin 0")
Z = 1.959963984540054


@dataclass(frozen=True)
class Shape:
    name: str
    systems: int
    contents: int
    pairs_per_relation: int
    models: dict[str, tuple[float, float]]  # (label weight, noise SD): ~60/80/95% accuracy
    power_models: tuple[tuple[float, float], tuple[float, float]]  # ~5 points apart


RANKED = ((0.0, 0.1), (0.0, 0.16), (0.0, 0.25), (0.0, 0.4), (0.0, 0.7), (0.0, 1.2))
"""Six models for the rank intervals, best first (more noise, lower expected accuracy under both
scenarios: the biases all have the same SD), the top two about a point apart."""

MODELS = {"60": (0.0, 1.6), "80": (0.0, 0.15), "95": (1.0, 0.13)}

SHAPES = {
    # 256 clips, 3,000 test pairs: the demo's test split
    "demo": Shape("demo", 8, 32, 1000, MODELS, ((0.0, 0.15), (0.0, 0.36))),
    # ~1,080 clips over 180 systems, 6 texts: BVCC's test split, roughly
    "bvcc": Shape("bvcc", 180, 6, 1000, MODELS, ((0.0, 0.15), (0.0, 0.36))),
}


def simulate_clips(
    shape: Shape, rng: np.random.Generator, systems: np.ndarray, contents: np.ndarray
) -> tuple[pa.Table, np.ndarray]:
    """A listening test: the clip table (MOS from 4–8 integer ratings) and each clip's true quality."""
    rows, truth = [], []
    for s in range(shape.systems):
        for c in range(shape.contents):
            q = 3.0 + systems[s] + contents[c] + rng.normal(0.0, 0.3)
            k = int(rng.integers(4, 9))
            ratings = np.clip(np.rint(q + rng.normal(0.0, 0.8, k)), 1, 5)
            rows.append(
                {
                    "clip_id": f"s{s:03d}c{c:03d}",
                    "corpus": "sim",
                    "split": "test",
                    "subset": None,
                    "audio_path": f"s{s}/c{c}.wav",
                    "mos": float(ratings.mean()),
                    "n_ratings": k,
                    "rating_std": float(ratings.std(ddof=1)),
                    "system_id": f"sys{s:03d}",
                    "speaker_id": None,
                    "content_id": f"c{c:03d}",
                    "sample_rate": 16000,
                    "duration": 1.0,
                    "ratings": ratings.tolist(),
                }
            )
            truth.append(q)
    return conform(pa.Table.from_pylist(rows), CLIP_SCHEMA), np.asarray(truth)


@dataclass(frozen=True)
class Listening:
    """One simulated test's pairs, as the harness sees them."""

    q: np.ndarray  # true quality per clip
    mos: np.ndarray  # observed MOS per clip
    a: np.ndarray
    b: np.ndarray
    a_chosen: np.ndarray
    cells: dict[str, np.ndarray]  # boolean masks
    design: ClipDesign
    system_of: np.ndarray  # per clip
    clips: pa.Table
    pairs: pa.Table
    meta: dict[str, Any]  # the pair file's metadata


def listening_test(
    shape: Shape,
    seed: int,
    systems: np.ndarray,
    contents: np.ndarray,
    pair_seed: int | None = None,
) -> Listening:
    """`seed` draws the clips and ratings, `pair_seed` (default `seed`) the pairs."""
    rng = np.random.default_rng(seed)
    clips, q = simulate_clips(shape, rng, systems, contents)
    counts = {"test": dict.fromkeys(RELATIONS, shape.pairs_per_relation)}
    draw = seed if pair_seed is None else pair_seed
    built = build_pairs(clips, task="sim", relations=RELATIONS, counts=counts, seed=draw)
    table, meta = built["test"]
    ids = clips.column("clip_id").to_pylist()
    index = {cid: i for i, cid in enumerate(ids)}
    a = np.array([index[c] for c in table.column("clip_a").to_pylist()])
    b = np.array([index[c] for c in table.column("clip_b").to_pylist()])
    relation = np.array(table.column("relation").to_pylist())
    cells = {"overall": np.ones(relation.size, dtype=bool)}
    cells.update({rel: relation == rel for rel in RELATIONS})
    cells["bin 0"] = table.column("delta_bin").to_numpy() == 0
    design = ClipDesign.of(
        a,
        b,
        (table.column("system_a").to_pylist(), table.column("system_b").to_pylist()),
        (table.column("content_a").to_pylist(), table.column("content_b").to_pylist()),
    )
    return Listening(
        q=q,
        mos=clips.column("mos").to_numpy(),
        a=a,
        b=b,
        a_chosen=np.array([c == "a" for c in table.column("chosen").to_pylist()]),
        cells=cells,
        design=design,
        system_of=np.repeat(np.arange(shape.systems), shape.contents),
        clips=clips,
        pairs=table,
        meta=meta,
    )


def correct(
    test: Listening, rng: np.random.Generator, bias: np.ndarray, model: tuple[float, float]
) -> np.ndarray:
    """`model` = (label weight, noise SD): a weight of 1 tracks the observed MOS (the raters'
    noise too: the only way past the ~83% that the true quality itself scores on these labels)."""
    weight, noise = model
    mean = test.q + weight * (test.mos - test.q)
    score = mean + bias[test.system_of] + rng.normal(0.0, noise, test.q.size)
    return (score[test.a] > score[test.b]) == test.a_chosen


def run_setting(
    shape: Shape,
    scenario: str,
    level: str,
    biased: bool,
    replicates: int,
    seed: int,
    ranks: bool = True,
) -> dict[str, Any]:
    """One setting: coverage of the interval the scenario's truth belongs to, null rejection and
    power of the paired test on the overall cell."""
    master = np.random.default_rng(seed)
    fixed_contents = shape.contents < MIN_CLUSTERS  # the harness holds them fixed: so do we

    def draw_bias() -> np.ndarray:
        return master.normal(0.0, 0.3, shape.systems) if biased else np.zeros(shape.systems)

    systems0 = master.normal(0.0, 0.6, shape.systems)
    contents0 = master.normal(0.0, 0.3, shape.contents)
    bias0 = np.stack([draw_bias(), draw_bias(), draw_bias()])
    model = shape.models[level]
    fixed = () if scenario == "B" else ("system",)
    rows = []
    for r in range(replicates):
        systems = master.normal(0.0, 0.6, shape.systems) if scenario == "B" else systems0
        contents = contents0 if fixed_contents else master.normal(0.0, 0.3, shape.contents)
        if scenario == "B":
            bias = np.stack([draw_bias(), draw_bias(), draw_bias()])
        else:  # fixed systems: the null needs equal models on *these* systems
            bias = np.stack([bias0[0], bias0[0], bias0[0]])
        test = listening_test(shape, seed * 100_003 + r, systems, contents)
        rng = np.random.default_rng(seed * 7_919 + r)
        c0 = correct(test, rng, bias[0], model)
        c1 = correct(test, rng, bias[1], model)  # equally good: the paired test's null
        row: dict[str, Any] = {}
        for name, mask in test.cells.items():
            sub = test.design.subset(mask, by_label=name.startswith("bin"))  # as metrics does
            iv = accuracy_interval(c0[mask], sub, fixed=fixed)
            row[name] = (iv.p, iv.low, iv.high, iv.estimand.label)
        d_null = c0.astype(np.int8) - c1.astype(np.int8)
        row["null_p"] = difference_test(d_null, test.design).p
        good, worse = shape.power_models
        ca = correct(test, rng, bias[0], good)
        cb = correct(test, rng, bias[2], worse)
        power = difference_test(ca.astype(np.int8) - cb.astype(np.int8), test.design)
        row["power"] = (power.p, float(ca.mean() - cb.mean()))
        if ranks and level == "80":
            ranked = {
                f"m{i}": correct(test, rng, draw_bias() if scenario == "B" else bias0[0], m)
                for i, m in enumerate(RANKED)
            }
            got = rank_intervals(ranked, test.design)
            row["ranks"] = [(got[f"m{i}"].low, got[f"m{i}"].high) for i in range(len(RANKED))]
            row["rank_acc"] = [float(ranked[f"m{i}"].mean()) for i in range(len(RANKED))]
        rows.append(row)
    out: dict[str, Any] = {}
    for cell in CELLS:
        p = np.array([x[cell][0] for x in rows])
        low = np.array([np.nan if x[cell][1] is None else x[cell][1] for x in rows])
        high = np.array([np.nan if x[cell][2] is None else x[cell][2] for x in rows])
        truth = float(p.mean())
        covered = (low <= truth) & (truth <= high)
        cov = float(covered.mean())
        sd = float(p.std(ddof=1))
        width = float(np.nanmean(high - low))
        out[cell] = {
            "generalises_over": rows[0][cell][3],
            "truth": round(truth, 4),
            "coverage": round(cov, 3),
            "coverage_mc_error": round(math.sqrt(cov * (1 - cov) / len(p)), 3),
            "mean_width": round(width, 4),
            "width_from_sd": round(2 * Z * sd, 4),
            "width_ratio": round(width / (2 * Z * sd), 2) if sd > 0 else None,
        }
    null = np.array([1.0 if x["null_p"] is None else x["null_p"] for x in rows])
    out["paired_null_rejection"] = round(float((null < 0.05).mean()), 3)
    power = np.array([1.0 if x["power"][0] is None else x["power"][0] for x in rows])
    out["power"] = {
        "true_difference": round(float(np.mean([x["power"][1] for x in rows])), 4),
        "rejection": round(float((power < 0.05).mean()), 3),
    }
    if ranks and level == "80":
        truth = np.arange(1, len(RANKED) + 1)  # best first by construction (RANKED's doc)
        acc = np.array([x["rank_acc"] for x in rows]).mean(axis=0)
        if not (np.diff(acc) < 0).all():
            raise RuntimeError(f"the ranked models are not in order: {acc.round(4).tolist()}")
        held = [
            all(lo <= t <= hi for (lo, hi), t in zip(x["ranks"], truth, strict=True)) for x in rows
        ]
        widths = [np.mean([hi - lo + 1 for lo, hi in x["ranks"]]) for x in rows]
        out["ranks"] = {
            "models": len(RANKED),
            "expected_accuracy": [round(float(a), 4) for a in acc],
            "simultaneous_coverage": round(float(np.mean(held)), 3),
            "mean_ranks_per_interval": round(float(np.mean(widths)), 2),
        }
    return out


def ceiling_setting(shape: Shape, replicates: int, seed: int) -> dict[str, Any]:
    """Coverage of the noise ceiling's range (`stats.ceiling`): the truth a replicate's range
    should hold is the realised strict accuracy, on that replicate's pairs and labels, of the
    oracle that knows every clip's true quality (ties half right, as the ceiling counts them).
    Systems are redrawn; no model is involved."""
    from benchmark.stats.ceiling import ceiling_report

    master = np.random.default_rng(seed)
    contents0 = master.normal(0.0, 0.3, shape.contents)
    hits: dict[str, list[bool]] = {c: [] for c in CELLS}
    widths: dict[str, list[float]] = {c: [] for c in CELLS}
    for r in range(replicates):
        systems = master.normal(0.0, 0.6, shape.systems)
        contents = (
            contents0 if shape.contents < MIN_CLUSTERS else master.normal(0, 0.3, shape.contents)
        )
        test = listening_test(shape, seed * 100_003 + r, systems, contents, pair_seed=r)
        table, meta = test.pairs, test.meta
        sign = np.where(test.a_chosen, 1.0, -1.0)
        d = (test.q[test.a] - test.q[test.b]) * sign
        oracle = (d > 0) + 0.5 * (d == 0)
        pred = table.append_column("score_a", pa.array(test.q[test.a])).append_column(
            "score_b", pa.array(test.q[test.b])
        )
        report = ceiling_report(pred, test.clips, meta, bins=int(meta["bins"]), seed=r)
        assert report is not None
        masks = test.cells
        tops = {"overall": report["overall"], **{r_: report["by_relation"][r_] for r_ in RELATIONS}}
        tops["bin 0"] = report["by_bin"]["0"]
        for cell, mask in masks.items():
            truth = float(oracle[mask].mean())
            top = tops[cell]
            hits[cell].append(top["ci_low"] <= truth <= top["ci_high"])
            widths[cell].append(top["ci_high"] - top["ci_low"])
    out: dict[str, Any] = {"shape": shape.name, "what": "ceiling", "replicates": replicates}
    out["seed"] = seed
    for cell in CELLS:
        cov = float(np.mean(hits[cell]))
        out[cell] = {
            "coverage": round(cov, 3),
            "coverage_mc_error": round(math.sqrt(cov * (1 - cov) / replicates), 3),
            "mean_width": round(float(np.mean(widths[cell])), 4),
        }
    return out


def _range(values: list[float], digits: int = 3) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:.{digits}f}" if lo == hi else f"{lo:.{digits}f}–{hi:.{digits}f}"


def readme_tables(lines: list[dict[str, Any]]) -> str:
    """The README's calibration tables from `calibration.jsonl` (tests/test_calibration.py checks
    that the README holds exactly this text): per shape, scenario and bias, the range over the
    60/80/95% models of each cell's coverage, the widest width ratio, the paired test's null
    rejection and its power for a ~5-point difference; then the rank intervals."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for line in lines:
        groups.setdefault((line["shape"], line["scenario"], line["bias"]), []).append(line)
    head = "| shape | scenario: interval | model bias | " + " | ".join(CELLS)
    head += " | width ratio (max) | null rejection | power (Δ true) |"
    out = [head, "|" + "---|" * (len(CELLS) + 6)]
    for (shape, scenario, bias), rows in groups.items():
        what = "A: systems-fixed" if scenario == "A" else "B: default (new systems)"
        cells = [_range([r[c]["coverage"] for r in rows]) for c in CELLS]
        ratio = max(r[c]["width_ratio"] or 0 for r in rows for c in CELLS)
        null = _range([r["paired_null_rejection"] for r in rows])
        power = next((r["power"] for r in rows if r["accuracy_level"] == "80"), rows[0]["power"])
        gap = f"{power['rejection']:.3f} ({100 * power['true_difference']:.1f} pts)"
        out.append(
            f"| {shape} | {what} | {bias} | " + " | ".join(cells) + f" | {ratio:.2f} | {null} | "
            f"{gap} |"
        )
    out += [
        "",
        "| shape | scenario | model bias | rank intervals hold (all 6 models) | ranks per interval |",
    ]
    out.append("|---|---|---|---|---|")
    for (shape, scenario, bias), rows in groups.items():
        ranked = [r["ranks"] for r in rows if "ranks" in r]
        for rk in ranked:
            out.append(
                f"| {shape} | {scenario} | {bias} | {rk['simultaneous_coverage']:.3f} | "
                f"{rk['mean_ranks_per_interval']:.2f} |"
            )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--replicates", type=int, default=1000)
    ap.add_argument("--shapes", nargs="+", default=sorted(SHAPES), choices=sorted(SHAPES))
    ap.add_argument("--scenarios", nargs="+", default=["A", "B"], choices=["A", "B"])
    ap.add_argument("--levels", nargs="+", default=["60", "80", "95"], choices=["60", "80", "95"])
    ap.add_argument("--bias", nargs="+", default=["none", "per-system"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, help="also write every setting here (JSON lines)")
    ap.add_argument("--table", type=Path, help="print the README tables of a JSON-lines file")
    ap.add_argument("--ceiling", action="store_true", help="the noise ceiling's range instead")
    args = ap.parse_args()
    if args.ceiling:
        for shape in args.shapes:
            line = json.dumps(ceiling_setting(SHAPES[shape], args.replicates, args.seed))
            print(line, flush=True)
            if args.out:
                with args.out.open("a") as sink:
                    sink.write(line + "\n")
        return
    if args.table:
        print(readme_tables([json.loads(x) for x in args.table.read_text().splitlines() if x]))
        return
    sink = args.out.open("a") if args.out else None
    for shape in args.shapes:
        for scenario in args.scenarios:
            for level in args.levels:
                for bias in args.bias:
                    began = time.perf_counter()
                    result = run_setting(
                        SHAPES[shape],
                        scenario,
                        level,
                        bias == "per-system",
                        args.replicates,
                        args.seed,
                    )
                    head = {"shape": shape, "scenario": scenario, "accuracy_level": level}
                    head |= {"bias": bias, "replicates": args.replicates, "seed": args.seed}
                    head |= {"estimator": ESTIMATOR, "metrics_version": METRICS_VERSION}
                    line = json.dumps({**head, **result})
                    print(line, flush=True)
                    print(f"  ({time.perf_counter() - began:.0f} s)", file=sys.stderr)
                    if sink:
                        sink.write(line + "\n")
                        sink.flush()


if __name__ == "__main__":
    main()
