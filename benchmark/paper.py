"""`make paper` / `mosrm run --paper`: the paper's reference baselines, from whatever corpora are
present to the board and the paper's table, in one command.

What it adds to `mosrm run --train`: the tasks are those the paper configs name (their training
corpora and out-of-domain tests), a corpus that is not present is one line with the step that gets
it (never a crash half-way), each config trains once per seed (cached under
`$MOSRM_HOME/trained/`, an interrupted run resumes), every submission and the shipped baselines
are scored on every present task, and `paper.md` beside the board gives each family as mean ± sd
over seeds with the literature's numbers next to it (`leaderboard.paper_table`).

The configs are `paper-*.yaml` of a training folder: `--training DIR`, else the workspace's
`training/` when it has some, else the checkout's `training/` (a wheel installation has none:
the one-line error says to name the folder).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmark.errors import MosrmError

PAPER_GLOB = "paper-*.yaml"


@dataclass(frozen=True)
class PaperSpec:
    configs: list[Path]
    in_domain: list[str]
    """Every task a paper config trains on, in config order."""
    out_of_domain: list[str]


def training_folder(repo: Path, given: str | Path | None) -> Path:
    if given is not None:
        folder = Path(given).expanduser().resolve()
        if not folder.is_dir():
            raise MosrmError(f"--training {given}: no such folder")
        return folder
    checkout = Path(__file__).resolve().parents[1] / "training"
    for folder in (repo / "training", checkout):
        if any(folder.glob(PAPER_GLOB)):
            return folder.resolve()
    raise MosrmError(
        f"no {PAPER_GLOB} configs in {repo / 'training'} or {checkout}: name the folder that "
        "holds them with --training DIR (a checkout's training/)"
    )


def paper_spec(repo: Path, given: str | Path | None = None) -> PaperSpec:
    """The paper configs and the tasks they train on and test out of domain."""
    from benchmark.baselines.train_config import load_train_config

    folder = training_folder(repo, given)
    configs = sorted(folder.glob(PAPER_GLOB))
    if not configs:
        raise MosrmError(f"{folder}: no {PAPER_GLOB} configs")
    in_domain: list[str] = []
    out_of_domain: list[str] = []
    for path in configs:
        config = load_train_config(path)
        in_domain += [t for t in config.tasks if t not in in_domain]
        out_of_domain += [t for t in config.out_of_domain if t not in out_of_domain]
    out_of_domain = [t for t in out_of_domain if t not in in_domain]
    return PaperSpec(configs, in_domain, out_of_domain)


def write_paper_table(
    spec: PaperSpec, results_root: Path, out: Path, present: set[str]
) -> tuple[Path, str]:
    """`out/paper.md` from the results of the present tasks; returns (its path, its text)."""
    from benchmark.atomic import atomic_write_text
    from benchmark.leaderboard.load import load_results
    from benchmark.leaderboard.paper_table import paper_table

    records = [r for r in load_results(results_root) if r["task"] in present]
    missing = [t for t in [*spec.in_domain, *spec.out_of_domain] if t not in present]
    text = paper_table(
        records,
        [t for t in spec.in_domain if t in present],
        [t for t in spec.out_of_domain if t in present],
        missing,
    )
    path = out / "paper.md"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    return path, text
