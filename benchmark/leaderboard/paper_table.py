"""The paper's table from a results folder: each model family (one training config, several
seeds) as mean ± sd over its seeds, per in-domain corpus, pooled in-domain and out-of-domain,
with the literature's numbers beside it (never ranked with ours).

One seed's number is one draw of a training run: the same GRPO config gave 72.0 on a CPU and
78.6 on a GPU, so a reference row is a family of seeds (`train_config.seed_family` groups
`paper-bt-s0`, `paper-bt-s1`, ... as `paper-bt`), reported as the mean and the sample standard
deviation over seeds (ddof 1). The sd is the spread over training runs, not the test-set
interval (which the board shows per run): a reader sees both sources of variation.

Pooled in-domain accuracy is micro over pairs, like the paper (correct / pairs over the five
test splits), computed per seed, then averaged; a seed missing a corpus has no pooled number
(never a mean over fewer corpora). A pure function of the results records.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmark.escape import display_name, markdown_cell


@dataclass
class Family:
    """One model family's accuracies (percent), each list one value per seed, in seed order."""

    family: str
    name: str
    seeds: list[int | None] = field(default_factory=list)
    tasks: dict[str, dict[int | None, tuple[int, int, int]]] = field(default_factory=dict)
    """task -> seed -> (correct, pairs, ties)"""

    def accuracies(self, task: str) -> list[float]:
        return [100.0 * c / n for c, n, _ in self.tasks.get(task, {}).values() if n]

    def pooled(self, tasks: Sequence[str], what: int = 0) -> list[float]:
        """Per seed, micro over `tasks`: accuracy (`what` 0) or tie rate (`what` 2), percent."""
        out = []
        for seed in self.seeds:
            cells = [self.tasks.get(t, {}).get(seed) for t in tasks]
            if tasks and all(c is not None for c in cells):
                count = sum(c[what] for c in cells if c is not None)
                pairs = sum(c[1] for c in cells if c is not None)
                if pairs:
                    out.append(100.0 * count / pairs)
        return out


def mean_sd(values: Sequence[float]) -> str:
    """'78.3 ± 0.6 (3)' over several seeds, '78.3' for one, '—' for none."""
    if not values:
        return "—"
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.1f}"
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{mean:.1f} ± {sd:.1f}"


def families(records: Sequence[dict[str, Any]], tasks: Sequence[str]) -> list[Family]:
    """The families of the records on `tasks`, in the order first seen (records are sorted)."""
    from benchmark.baselines.train_config import seed_family

    out: dict[str, Family] = {}
    for r in records:
        if r.get("task") not in tasks:
            continue
        fam, seed = seed_family(str(r["submission"]))
        shown = str(r.get("display_name") or r["submission"])
        if seed is not None:
            shown = shown.replace(f", seed {seed}", "")
        f = out.setdefault(fam, Family(fam, shown))
        if seed not in f.seeds:
            f.seeds.append(seed)
        overall = r["metrics"]["overall"]
        counts = (int(overall["correct"]), int(overall["n"]), int(overall.get("ties") or 0))
        f.tasks.setdefault(str(r["task"]), {})[seed] = counts
    for f in out.values():
        f.seeds.sort(key=lambda s: -1 if s is None else s)
    return list(out.values())


def paper_table(
    records: Sequence[dict[str, Any]],
    in_domain: Sequence[str],
    out_of_domain: Sequence[str],
    missing: Sequence[str] = (),
) -> str:
    """The Markdown of the paper's table (module doc)."""
    from benchmark.leaderboard.data import LITERATURE, LITERATURE_SOURCE

    fams = families(records, [*in_domain, *out_of_domain])
    fams.sort(key=lambda f: (-_sort_key(f.pooled(in_domain)), f.family))
    head = [
        "Model",
        "Seeds",
        *in_domain,
        "In-domain (pooled)",
        *(f"{t} (OOD)" for t in out_of_domain),
    ]
    lines = [
        "# Reference baselines at paper scale",
        "",
        "Strict pairwise accuracy (%) on each corpus's test pairs: mean ± sd over training seeds "
        "(sd over seeds, ddof 1: the spread of training runs; each run's test-set interval is on "
        "the board). In-domain (pooled) is micro over the in-domain test pairs, per seed, then "
        "averaged; ties count as errors (the paper's rule) and their pooled rate is shown: a judge that "
        "writes equal scores loses those pairs; OOD: never trained on.",
        "",
    ]
    if missing:
        lines += [f"Not run here (data not present): {', '.join(missing)}.", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for f in fams:
        seeds = [s for s in f.seeds if s is not None]
        cells = [
            markdown_cell(display_name(f.name, 80)),
            ", ".join(map(str, seeds)) if seeds else "—",
            *(mean_sd(f.accuracies(t)) for t in in_domain),
            mean_sd(f.pooled(in_domain)),
            mean_sd(f.pooled(in_domain, what=2)),
            *(mean_sd(f.accuracies(t)) for t in out_of_domain),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Numbers reported in the literature — not ranked, not comparable",
        "",
        f"Reported by {LITERATURE_SOURCE}. Other models (Qwen2-Audio-7B), other test pairs.",
        "",
        "| Model | Base | Overall (%) |",
        "|---|---|---|",
        *(
            f"| {markdown_cell(r.model)} | {markdown_cell(r.base)} | {r.overall} |"
            for r in LITERATURE
        ),
        "",
    ]
    return "\n".join(lines)


def _sort_key(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else -1.0
