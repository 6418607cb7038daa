"""The multi-way dyadic variance (`stats.multiway`) against its definition and its clip-only case.

Brute force: the explicit double sum over ordered pairs (p, q) that share a clip, a system or a
content, with the small-sample factor of the fewest clusters. The clip-only design must give
`uncertainty.clip_variance` exactly (the same estimator, written two ways).
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.stats.multiway import UnitDesign, multiway_variance
from benchmark.stats.uncertainty import ClipDesign, clip_variance


def _design(seed: int, n: int = 60, systems: int = 4, contents: int = 5):
    rng = np.random.default_rng(seed)
    clip_sys = {f"s{s}c{c}": f"s{s}" for s in range(systems) for c in range(contents)}
    clip_con = {f"s{s}c{c}": f"c{c}" for s in range(systems) for c in range(contents)}
    clips = sorted(clip_sys)
    seen: set[tuple[str, str]] = set()
    a, b = [], []
    while len(a) < n:
        x, y = rng.choice(len(clips), 2, replace=False)
        key = (clips[min(x, y)], clips[max(x, y)])
        if key in seen:
            continue
        seen.add(key)
        a.append(clips[x])
        b.append(clips[y])
    return a, b, clip_sys, clip_con


def _brute(v, a, b, sys, con, kinds, g) -> float:
    e = np.asarray(v, float) - np.mean(v)
    n = len(e)
    units = []
    for x, y in zip(a, b, strict=True):
        m = set()
        if "clip" in kinds:
            m |= {("clip", x), ("clip", y)}
        if "system" in kinds:
            m |= {("system", sys[x]), ("system", sys[y])}
        if "content" in kinds:
            m |= {("content", con[x]), ("content", con[y])}
        units.append(m)
    total = sum(e[p] * e[q] for p in range(n) for q in range(n) if units[p] & units[q])
    return g / (g - 1) * total / n**2


@pytest.mark.parametrize("seed", range(4))
def test_the_inclusion_exclusion_is_the_double_sum(seed):
    a, b, sys, con = _design(seed)
    v = np.random.default_rng(100 + seed).integers(0, 2, len(a)).astype(float)
    units = {
        "clip": (a, b),
        "system": ([sys[x] for x in a], [sys[x] for x in b]),
        "content": ([con[x] for x in a], [con[x] for x in b]),
    }
    design = UnitDesign.of(units)
    assert design.clusters == {"clip": 20, "system": 4, "content": 5}
    want = _brute(v, a, b, sys, con, {"clip", "system", "content"}, g=4)
    assert multiway_variance(v, design) == pytest.approx(want, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("seed", range(4))
def test_with_clips_alone_it_is_the_clip_clustered_variance(seed):
    a, b, _, _ = _design(seed)
    v = np.random.default_rng(200 + seed).integers(-1, 2, len(a)).astype(float)
    got = multiway_variance(v, UnitDesign.of({"clip": (a, b)}))
    want = float(clip_variance(v, ClipDesign.of(np.array(a), np.array(b))))
    assert got == pytest.approx(want, rel=1e-12, abs=1e-15)


def test_a_missing_key_is_never_shared_and_one_cluster_says_nothing():
    a, b = ["w", "y", "w", "x"], ["x", "z", "y", "z"]
    design = UnitDesign.of({"clip": (a, b), "system": ([None] * 4, [None] * 4)})
    assert design.clusters["system"] == 8  # eight unknowns, none equal to another
    # unknown systems add no dependence: the clips alone (same fewest-cluster factor, 4 clips)
    v = np.array([1.0, 0.0, 0.0, 1.0])
    clips_only = multiway_variance(v, UnitDesign.of({"clip": (a, b)}))
    assert multiway_variance(v, design) == pytest.approx(clips_only) and clips_only > 0
    one = UnitDesign.of({"clip": (a, b), "system": (["s"] * 4, ["s"] * 4)})
    assert multiway_variance(v, one) == 0.0
    with pytest.raises(ValueError, match="2 values for 4 pairs"):
        multiway_variance(np.array([1.0, 0.0]), one)
