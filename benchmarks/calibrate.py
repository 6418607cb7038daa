"""Calibration of the harness's intervals by simulation with known truth (issue 23, groundwork).

Simulated listening tests go through the project's own pair builder (`build_pairs`) and the
intervals the results report (`stats.uncertainty`): systems × contents, one clip each, clip
quality = system + content + clip effects, 4–8 integer ACR ratings per clip; models whose score
is the true quality plus noise (tuned to ~60/80/95% accuracy), optionally with a per-system bias.

Scenario A keeps the systems (and the model's system biases) fixed and redraws contents, clips,
ratings and model noise; scenario B redraws the systems too, which is what a reader of a
reward-model board assumes ("ranks new systems' speech"). The truth a replicate's interval should
cover is the model's expected accuracy under the scenario, estimated by the mean over the
replicates (its Monte Carlo error is printed). Reported per setting: coverage overall and per
relation, mean width against the width the empirical SD implies, and the null rejection rate of
the paired test for two equally good models.

    .venv/bin/python benchmarks/calibrate.py --replicates 1000      # make calibrate

Not part of `make test` (minutes, not seconds); its output is what the README's calibration
numbers are pasted from once issue 23 lands.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from benchmark.data.tables import CLIP_SCHEMA, conform
from benchmark.pairs.build import build_pairs
from benchmark.stats.multiway import UnitDesign, multiway_variance
from benchmark.stats.uncertainty import (
    ClipDesign,
    accuracy_interval,
    clip_variance,
    difference_test,
)

RELATIONS = ("same_content", "same_system", "cross")


@dataclass(frozen=True)
class Shape:
    name: str
    systems: int
    contents: int
    pairs_per_relation: int


SHAPES = {
    "demo": Shape("demo", 8, 32, 1000),  # 256 clips, 3,000 pairs: the demo's test split
    "bvcc": Shape("bvcc", 180, 6, 1000),  # ~1,080 clips over 180 systems
}


def simulate_clips(
    shape: Shape, rng: np.random.Generator, systems: np.ndarray
) -> tuple[pa.Table, np.ndarray]:
    """A listening test: the clip table (MOS from 4–8 integer ratings) and each clip's true quality."""
    content = rng.normal(0.0, 0.3, shape.contents)
    rows, truth = [], []
    for s in range(shape.systems):
        for c in range(shape.contents):
            q = 3.0 + systems[s] + content[c] + rng.normal(0.0, 0.3)
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


def one_replicate(
    shape: Shape,
    seed: int,
    systems: np.ndarray,
    bias: np.ndarray,
    noise: float,
    multiway: bool = False,
) -> dict[str, Any]:
    """`bias` is (2, systems): each of the two models' per-system score offsets."""
    rng = np.random.default_rng(seed)
    clips, q = simulate_clips(shape, rng, systems)
    counts = {"test": dict.fromkeys(RELATIONS, shape.pairs_per_relation)}
    table, _ = build_pairs(clips, task="sim", relations=RELATIONS, counts=counts, seed=seed)["test"]
    index = {cid: i for i, cid in enumerate(clips.column("clip_id").to_pylist())}
    a = np.array([index[c] for c in table.column("clip_a").to_pylist()])
    b = np.array([index[c] for c in table.column("clip_b").to_pylist()])
    a_chosen = np.array([c == "a" for c in table.column("chosen").to_pylist()])
    sys_of = np.repeat(np.arange(shape.systems), shape.contents)
    out: dict[str, Any] = {}
    corrects = []
    for model in range(2):  # two equally good models: the paired test's null
        score = q + bias[model][sys_of] + rng.normal(0.0, noise, q.size)
        a_wins = score[a] > score[b]
        corrects.append(a_wins == a_chosen)
    relation = np.array(table.column("relation").to_pylist())
    for name, mask in [("overall", np.ones(relation.size, bool))] + [
        (rel, relation == rel) for rel in RELATIONS
    ]:
        design = ClipDesign.of(a[mask].astype(str), b[mask].astype(str))
        iv = accuracy_interval(corrects[0][mask], design)
        out[name] = (float(iv["p"]), float(iv["low"]), float(iv["high"]))
        if multiway:
            out[f"{name}:multiway"] = _multiway_interval(corrects[0][mask], a[mask], b[mask], shape)
            out[f"{name}:jackknife"] = _jackknife_interval(
                corrects[0][mask], a[mask], b[mask], shape
            )
    design = ClipDesign.of(a.astype(str), b.astype(str))
    test = difference_test(corrects[0].astype(float) - corrects[1].astype(float), design)
    out["null_p"] = float(test["p"])
    return out


def _multiway_interval(
    correct: np.ndarray, a: np.ndarray, b: np.ndarray, shape: Shape
) -> tuple[float, float, float]:
    """The candidate: clip + system + content dyadic variance (never below the clip-level one),
    t interval with (fewest clusters − 1) degrees of freedom."""
    from scipy import special

    sys_a, sys_b = a // shape.contents, b // shape.contents
    con_a, con_b = a % shape.contents, b % shape.contents
    units = {"clip": (a.tolist(), b.tolist()), "system": (sys_a.tolist(), sys_b.tolist())}
    units["content"] = (con_a.tolist(), con_b.tolist())
    design = UnitDesign.of(units)
    v = correct.astype(np.float64)
    clip = float(clip_variance(v, ClipDesign.of(a.astype(str), b.astype(str))))
    var = max(multiway_variance(v, design), clip, 0.0)
    df = max(1, design.fewest_clusters - 1)
    half = float(special.stdtrit(df, 0.975)) * math.sqrt(var)
    p = float(v.mean())
    return p, p - half, p + half


def _jackknife_interval(
    correct: np.ndarray, a: np.ndarray, b: np.ndarray, shape: Shape
) -> tuple[float, float, float]:
    """Delete-one-system jackknife (every pair touching the system left out), t with G − 1 df,
    never below the clip variance: the few-cluster alternative to compare with."""
    from scipy import special

    v = correct.astype(np.float64)
    sys_a, sys_b = a // shape.contents, b // shape.contents
    present = np.unique(np.concatenate([sys_a, sys_b]))
    g = present.size
    p = float(v.mean())
    if g < 2:
        return p, float("nan"), float("nan")
    theta = []
    for s in present:
        keep = (sys_a != s) & (sys_b != s)
        if keep.any():
            theta.append(float(v[keep].mean()))
    th = np.asarray(theta)
    var = (th.size - 1) / th.size * float(((th - th.mean()) ** 2).sum())
    clip = float(clip_variance(v, ClipDesign.of(a.astype(str), b.astype(str))))
    half = float(special.stdtrit(max(1, g - 1), 0.975)) * math.sqrt(max(var, clip, 0.0))
    return p, p - half, p + half


def run_setting(
    shape: Shape,
    scenario: str,
    noise: float,
    biased: bool,
    replicates: int,
    seed: int,
    own_biases: bool = False,
    multiway: bool = False,
) -> dict[str, Any]:
    """`biased`: per-system score offsets (SD 0.3), shared by the two models unless
    `own_biases` (then each model has its own: in scenario B both are still equally good on
    average, so the paired test's null holds over new systems)."""
    master = np.random.default_rng(seed)

    def biases() -> np.ndarray:
        if not biased:
            return np.zeros((2, shape.systems))
        one = master.normal(0.0, 0.3, shape.systems)
        return np.stack([one, master.normal(0.0, 0.3, shape.systems) if own_biases else one])

    fixed_systems = master.normal(0.0, 0.6, shape.systems)
    fixed_bias = biases()
    reps = []
    for r in range(replicates):
        if scenario == "B":
            systems = master.normal(0.0, 0.6, shape.systems)
            bias = biases()
        else:
            systems, bias = fixed_systems, fixed_bias
        reps.append(one_replicate(shape, seed * 100_003 + r, systems, bias, noise, multiway))
    summary: dict[str, Any] = {}
    cells = [*("overall", *RELATIONS)]
    if multiway:
        cells += [f"{c}:multiway" for c in ("overall", *RELATIONS)]
        cells += [f"{c}:jackknife" for c in ("overall", *RELATIONS)]
    for cell in cells:
        p = np.array([rep[cell][0] for rep in reps])
        low = np.array([rep[cell][1] for rep in reps])
        high = np.array([rep[cell][2] for rep in reps])
        truth = float(p.mean())
        covered = (low <= truth) & (truth <= high)
        sd = float(p.std(ddof=1))
        summary[cell] = {
            "truth": round(truth, 4),
            "truth_mc_error": round(sd / math.sqrt(len(p)), 4),
            "coverage": round(float(covered.mean()), 3),
            "coverage_mc_error": round(
                math.sqrt(covered.mean() * (1 - covered.mean()) / len(p)), 3
            ),
            "mean_width": round(float((high - low).mean()), 4),
            "width_from_sd": round(2 * 1.959963984540054 * sd, 4),
        }
    null = np.array([rep["null_p"] for rep in reps])
    summary["paired_null_rejection"] = round(float((null < 0.05).mean()), 3)
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--replicates", type=int, default=200)
    ap.add_argument("--shapes", nargs="+", default=["demo"], choices=sorted(SHAPES))
    ap.add_argument("--scenarios", nargs="+", default=["A", "B"], choices=["A", "B"])
    ap.add_argument("--noise", nargs="+", type=float, default=[0.45], help="model noise SD(s)")
    ap.add_argument("--biased", action="store_true", help="per-system model biases (SD 0.3)")
    ap.add_argument(
        "--own-biases", action="store_true", help="with --biased: each model its own biases"
    )
    ap.add_argument(
        "--multiway", action="store_true", help="also the clip+system+content candidate"
    )
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    for shape in args.shapes:
        for scenario in args.scenarios:
            for noise in args.noise:
                result = run_setting(
                    SHAPES[shape],
                    scenario,
                    noise,
                    args.biased,
                    args.replicates,
                    args.seed,
                    args.own_biases,
                    args.multiway,
                )
                head = {"shape": shape, "scenario": scenario, "noise": noise, "biased": args.biased}
                head["own_biases"] = args.own_biases
                print(json.dumps({**head, "replicates": args.replicates, **result}), flush=True)


if __name__ == "__main__":
    main()
