"""The paper's table (`leaderboard.paper_table`) against hand-worked numbers: seeds grouped into
families, mean ± sample sd over seeds (checked with `statistics`), pooled in-domain micro over
pairs per seed, a seed missing a corpus has no pooled number, hostile names escaped."""

from __future__ import annotations

import statistics

from benchmark.baselines.train_config import seed_family
from benchmark.leaderboard.paper_table import families, mean_sd, paper_table


def _rec(sub: str, task: str, correct: int, n: int, ties: int = 0, name: str | None = None):
    return {
        "submission": sub,
        "task": task,
        "display_name": name,
        "metrics": {"overall": {"correct": correct, "n": n, "ties": ties}},
    }


def test_seed_family_groups_seeds_and_recipe_variants() -> None:
    assert seed_family("paper-bt-s1") == ("paper-bt", 1)
    assert seed_family("paper-bt-ft-s12") == ("paper-bt-ft", 12)
    assert seed_family("paper-dpo-s2-norm") == ("paper-dpo-norm", 2)
    assert seed_family("paper-grpo-s0-sft") == ("paper-grpo-sft", 0)
    assert seed_family("dnsmos") == ("dnsmos", None)
    assert seed_family("my-subset-model") == ("my-subset-model", None)  # "-s" + letters: no seed


def test_mean_and_sd_over_seeds_and_the_pooled_micro_accuracy() -> None:
    records = [
        _rec("paper-bt-s0", "a", 80, 100, name="BT, seed 0"),
        _rec("paper-bt-s1", "a", 70, 100, name="BT, seed 1"),
        _rec("paper-bt-s2", "a", 75, 100, name="BT, seed 2"),
        _rec("paper-bt-s0", "b", 30, 50, ties=5, name="BT, seed 0"),
        _rec("paper-bt-s1", "b", 40, 50, name="BT, seed 1"),
        # seed 2 has no result on b: no pooled number for it
        _rec("paper-bt-s0", "ood", 6, 10, name="BT, seed 0"),
        _rec("dnsmos", "a", 55, 100, name="DNSMOS"),
        _rec("dnsmos", "b", 20, 50, name="DNSMOS"),
    ]
    fams = {f.family: f for f in families(records, ["a", "b", "ood"])}
    bt = fams["paper-bt"]
    assert bt.name == "BT" and bt.seeds == [0, 1, 2]
    assert bt.accuracies("a") == [80.0, 70.0, 75.0]
    pooled = bt.pooled(["a", "b"])
    assert pooled == [100 * 110 / 150, 100 * 110 / 150]  # micro: (80+30)/150, (70+40)/150
    assert bt.pooled(["a", "b"], what=2) == [100 * 5 / 150, 0.0]
    want = f"{statistics.mean([80, 70, 75]):.1f} ± {statistics.stdev([80, 70, 75]):.1f}"
    assert mean_sd(bt.accuracies("a")) == want == "75.0 ± 5.0"
    assert mean_sd([61.0]) == "61.0" and mean_sd([]) == "—"

    text = paper_table(records, ["a", "b"], ["ood"], missing=["c"])
    assert "Not run here (data not present): c." in text
    row = next(x for x in text.splitlines() if x.startswith("| BT |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells == [
        "BT",
        "0, 1, 2",
        "75.0 ± 5.0",
        "70.0 ± 14.1",
        "73.3 ± 0.0",
        "1.7 ± 2.4",
        "60.0",
    ]
    dns = next(x for x in text.splitlines() if x.startswith("| DNSMOS |"))
    assert [c.strip() for c in dns.strip("|").split("|")][1:] == [
        "—",
        "55.0",
        "40.0",
        "50.0",
        "0.0",
        "—",
    ]
    # ordered by pooled in-domain accuracy, best first
    assert text.index("| BT |") < text.index("| DNSMOS |")


def test_hostile_names_are_escaped() -> None:
    records = [_rec("x-s0", "a", 1, 2, name="<script>|evil\n[link](http://x)")]
    text = paper_table(records, ["a"], [])
    row = next(x for x in text.splitlines() if "script" in x)
    assert "<script>" not in row and row.count("|") == 7  # no extra column from the name
