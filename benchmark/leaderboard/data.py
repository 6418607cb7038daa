"""The board as data: every table computed once from the results folder, then only formatted.

`board_data` reads `board.load_results` and the failure records, applies the board's rules
(module doc of `benchmark.leaderboard.load`: synthetic tasks never pooled with real ones, ranking
only among submissions evaluated on the same task set, failed and stale results unranked) and adds
rank intervals (`benchmark.leaderboard.ranking`). The Markdown, HTML, CSV and JSON renderers read
only this, so the four outputs cannot disagree, and each does its own escaping.

Strings here are plain, unescaped text (display names already made one plain line by
`escape.display_name`); numbers are the results' fractions, never rounded for display. Nothing
depends on paths, time or dict order: the same results folder gives the same `Board`.

Why one file of ~600 lines: every rule of the board (what is pooled with what, who is ranked,
which cells are shown) is applied here and nowhere else, so a reader checks them in one place;
loading is `leaderboard.load`, rank intervals `leaderboard.ranking`, formatting the renderers'.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.escape import display_name
from benchmark.results.report import bin_label
from benchmark.stats.ceiling import above_ceiling

SUBSETS = ("dmos_lt_0_2", "dmos_le_0_5", "dmos_gt_1_5")
"""Fixed ΔMOS subsets shown, in column order (`tables.FIXED_SUBSETS`)."""


@dataclass(frozen=True)
class Cell:
    """Strict accuracy with its 95% interval (over new clips, systems and contents, as the
    result's cell says); None where there is no evidence or no interval."""

    accuracy: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    tie_rate: float | None = None

    @classmethod
    def of(cls, cell: dict[str, Any] | None, n_key: str = "n") -> Cell:
        if not cell or not cell.get(n_key) or cell.get("accuracy") is None:
            return cls(None, n=int((cell or {}).get(n_key) or 0))
        return cls(
            accuracy=cell["accuracy"],
            ci_low=cell.get("ci_low"),
            ci_high=cell.get("ci_high"),
            n=int(cell[n_key]),
            tie_rate=cell.get("tie_rate"),
        )

    @classmethod
    def of_ceiling(cls, cell: dict[str, Any] | None) -> Cell:
        """A noise-ceiling cell (`benchmark.stats.ceiling`) as a Cell: the ceiling in place of an
        accuracy, the oracle's interval, n = the pairs with a label reliability."""
        if not cell or not cell.get("n_rated") or cell.get("ceiling") is None:
            return cls(None)
        return cls(
            accuracy=cell["ceiling"],
            ci_low=cell.get("ci_low"),
            ci_high=cell.get("ci_high"),
            n=int(cell["n_rated"]),
        )


@dataclass(frozen=True)
class Ceiling:
    """The noise ceiling of a task's pairs: the strict accuracy of an oracle that knows the true
    (infinite-panel) means, against the observed labels (`benchmark.pairs.reliability`). The same for
    every model (it depends on the pairs only); `partial` when some pairs have no reliability."""

    estimator: str
    overall: Cell
    by_bin: list[Cell]
    by_subset: dict[str, Cell]
    by_group: dict[str, Cell]
    by_relation: dict[str, Cell]
    by_relation_bin: dict[str, list[Cell]]
    partial: bool


def _ceiling(r: dict[str, Any], bins: int) -> Ceiling | None:
    c = r.get("ceiling")
    if not c or not c.get("overall"):
        return None
    overall = c["overall"]
    return Ceiling(
        estimator=str(c.get("estimator")),
        **_cells(c, bins, Cell.of_ceiling),
        partial=int(overall.get("n_rated") or 0) < int(overall.get("n") or 0),
    )


def _cells(m: dict[str, Any], bins: int, of: Callable[[Any], Cell]) -> dict[str, Any]:
    """The cells of a metrics block (a result's `metrics` or its `ceiling`), read by `of`: what
    `Row` and `Ceiling` share, keyed as their fields."""
    return {
        "overall": of(m["overall"]),
        "by_bin": [of((m.get("by_bin") or {}).get(str(i))) for i in range(bins)],
        "by_subset": {k: of((m.get("by_subset") or {}).get(k)) for k in SUBSETS},
        "by_group": {k: of(v) for k, v in sorted((m.get("by_group_subset") or {}).items())},
        "by_relation": {k: of(v) for k, v in sorted((m.get("by_relation") or {}).items())},
        "by_relation_bin": {
            rel: [of(cells.get(str(i))) for i in range(bins)]
            for rel, cells in sorted((m.get("by_relation_bin") or {}).items())
        },
    }


def gap_closed(acc: Cell, ceiling: Cell | None) -> float | None:
    """(accuracy − chance) / (ceiling − chance): the share of the reachable gain above chance."""
    from benchmark.pairs.reliability import gap_closed as closed

    if ceiling is None or ceiling.accuracy is None or acc.accuracy is None:
        return None
    return closed(acc.accuracy, ceiling.accuracy, ceiling.ci_low)


def summaries_by_dimension(summaries: list[Summary]) -> list[tuple[str, list[Summary]]]:
    """The cross-task tables grouped by preference dimension, overall quality first (the order
    `board_data` makes them in); renderers head each group only when there is more than one."""
    groups: dict[str, list[Summary]] = {}
    for s in summaries:
        groups.setdefault(s.dimension, []).append(s)
    return list(groups.items())


def dimension(record: dict[str, Any]) -> str:
    """The preference dimension a result's labels come from: "quality" (overall MOS) unless the
    task takes its label from another score column (issue 13's multi-dimensional tasks)."""
    return str((record.get("label") or {}).get("dimension") or "quality")


@dataclass(frozen=True)
class Row:
    """One submission on one task."""

    submission: str
    name: str
    kind: str | None
    shortcut: bool
    in_domain: bool
    stale: bool
    rank_low: int | None  # simultaneous 95% rank interval (`leaderboard.ranking`)
    rank_high: int | None
    overall: Cell
    by_bin: list[Cell]
    by_subset: dict[str, Cell]
    by_group: dict[str, Cell]
    by_relation: dict[str, Cell]
    by_relation_bin: dict[str, list[Cell]]
    judged: bool
    diagnostics: dict[str, Any] | None
    gap_closed: float | None = None
    verified: str | None = None
    """"re-scored <date> on <hardware>" when the re-score ledger holds this very file (the
    board's builder ran the submission again), else None: self-reported."""
    above_ceiling: tuple[str, ...] = ()
    """Cells whose interval lies entirely above the noise ceiling's: more agreement with the labels
    than the labels allow, so likely label leakage; such a row is never ranked."""


@dataclass(frozen=True)
class Failed:
    submission: str
    stage: str
    time: str | None
    reason: str
    withdrawn: bool
    changed_since: bool


@dataclass(frozen=True)
class Stale:
    submission: str
    was: str | None
    now: str | None
    why_not: str | None


def failed_text(f: Failed, esc: Callable[[str], str], name: str) -> str:
    """A failure note's wording, shared by every output: `esc` escapes each submitter-supplied
    string for that output, `name` is the submission as the output shows it (already escaped)."""
    when = f" at {esc(f.time)}" if f.time else ""
    text = f"{name}: failed ({esc(f.stage)}){when}: {esc(f.reason)}"
    if f.withdrawn:
        text += " (its earlier result is withdrawn)"
    if f.changed_since:
        text += " (the folder has changed since: rerun it)"
    return text


def stale_why(s: Stale, esc: Callable[[str], str]) -> str:
    """Why a result is stale, in words shared by every output (`esc` as in `failed_text`)."""
    if s.now is None:
        return f"its folder cannot be fingerprinted now ({esc(str(s.why_not))})"
    old = f"{esc(str(s.was)[:12])}…" if s.was else "unknown code"
    return f"computed by {old}, the folder is now {esc(s.now[:12])}…"


@dataclass(frozen=True)
class TaskBoard:
    """One task's tables: ranked rows by accuracy, then the stale ones (unranked)."""

    name: str
    version: Any
    split: str | None
    n_pairs: int | None
    n_clips: int | None
    synthetic: bool
    bins: int
    bins_requested: int | None
    bin_labels: list[str]
    groups: list[str]
    relations: list[str]
    relation_sizes: dict[str, int]
    rows: list[Row]
    failed: list[Failed]
    stale: list[Stale]
    ceiling: Ceiling | None = None
    dimension: str = "quality"
    interval_scope: str = ""  # what the intervals generalise over (`report.interval_scope`)


def _scope(record: dict[str, Any]) -> str:
    from benchmark.results.report import interval_scope

    return interval_scope(record["metrics"], record.get("bin_edges")).split("\n")[0]


def ranking_groups(t: TaskBoard) -> list[tuple[str, TaskBoard]]:
    """A task's tables, each ranked on its own: the verified rows, then the self-reported ones
    (never ranked beside verified rows); the unranked rows (stale, above the ceiling) close the
    last table. One table when every ranked row shares a status."""
    from dataclasses import replace

    ranked = [r for r in t.rows if not r.stale and not r.above_ceiling]
    unranked = [r for r in t.rows if r.stale or r.above_ceiling]
    verified = [r for r in ranked if r.verified]
    reported = [r for r in ranked if not r.verified]
    if verified and reported:
        return [
            ("verified", replace(t, rows=verified)),
            ("self-reported", replace(t, rows=reported + unranked)),
        ]
    return [("verified" if verified else "self-reported", replace(t, rows=ranked + unranked))]


def provenance_lines(t: TaskBoard) -> list[tuple[str, list[str]]]:
    """(what, the plain names it applies to): each distinct re-score record ("re-scored <date>
    on <hardware> (<n> pairs)"), then "self-reported"."""
    out: dict[str, list[str]] = {}
    for r in t.rows:
        out.setdefault(r.verified or "self-reported", []).append(r.name)
    return sorted(out.items(), key=lambda kv: (kv[0] == "self-reported", kv[0]))


@dataclass(frozen=True)
class SummaryRow:
    rank: int
    submission: str
    name: str
    shortcut: bool
    in_domain: bool
    rank_low: int
    rank_high: int
    micro: Cell
    macro: Cell
    per_task: dict[str, Cell]
    by_bin: list[Cell]
    pairs: int


@dataclass(frozen=True)
class Summary:
    """Micro and macro over one set of real tasks, for the submissions evaluated on exactly it."""

    tasks: list[str]
    rows: list[SummaryRow]
    dimension: str = "quality"
    verified: bool = False
    """Every row re-scored by the board's builder; self-reported rows are ranked in a table of
    their own, never beside verified ones."""


@dataclass(frozen=True)
class Model:
    submission: str
    name: str
    shortcut: bool
    kind: str | None
    parameters: int | None
    parameters_source: str | None
    license: str | None
    revision: str | None
    release_date: str | None
    url: str | None
    training_data: list[str]


@dataclass(frozen=True)
class Reported:
    """A number reported in the literature: never ranked with ours (other, unreleased pairs)."""

    model: str
    base: str
    overall: str


@dataclass(frozen=True)
class Board:
    tasks: list[TaskBoard]
    summaries: list[Summary]
    synthetic_tasks: list[str]
    unranked: dict[str, list[str]]
    models: list[Model]
    literature: list[Reported] = field(default_factory=list)
    literature_source: str = ""
    not_pooled: dict[str, str] = field(default_factory=dict)
    """Real tasks kept out of "All tasks", with why: not declared official, or the same pairs or
    clips as a task already pooled."""
    robustness: list[Any] = field(default_factory=list)
    """`leaderboard.robustness.RobustTask` per task with probes: apart, never ranked."""

    @property
    def empty(self) -> bool:
        return not self.tasks


LITERATURE_SOURCE = (
    '"From Scores to Preferences" (MOS-RMBench, later MOS-Pref): overall strict pairwise '
    "accuracy on the paper's own test pairs (five corpora, in-domain), which are not released"
)
LITERATURE = [
    Reported("Scalar reward model, Bradley–Terry loss", "Qwen2-Audio-7B", "80.04"),
    Reported("Semi-scalar reward model, Bradley–Terry loss", "Qwen2-Audio-7B", "78.82"),
    Reported("Generative reward model, DAPO", "Qwen2-Audio-7B", "77.60"),
    Reported("Generative reward model, GRPO", "Qwen2-Audio-7B", "76.94"),
    Reported("Scalar reward model, MSE loss", "Qwen2-Audio-7B", "≈75.8"),
    Reported("UTMOS (MOS predictor)", "UTMOS", "≈68.2"),
]
"""The paper's headline numbers (`shared/reference/datasets.md`), shown apart from our tables."""


def shown_name(record: dict[str, Any]) -> str:
    """The unique plain display name `board.load_results` set, capped for a table cell."""
    from benchmark.leaderboard.load import _shown

    return display_name(str(record.get("_shown") or _shown(record)), 160)


def _judged(record: dict[str, Any]) -> bool:
    """Whether a result has judge diagnostics to show (a pairwise judge, or a per-pair file)."""
    d = record.get("diagnostics")
    if d is None:
        return record.get("kind") == "pairwise"
    return not d.get("by_construction")


def _row(r: dict[str, Any], bins: int, stale: bool, rank: Any, ceiling: Ceiling | None) -> Row:
    cells = _cells(r["metrics"], bins, Cell.of)
    return Row(
        submission=str(r["submission"]),
        name=shown_name(r),
        kind=r.get("kind"),
        shortcut=bool(r.get("shortcut")),
        in_domain=not r.get("zero_shot", True),
        stale=stale,
        rank_low=None if rank is None else rank.low,
        rank_high=None if rank is None else rank.high,
        **cells,
        judged=_judged(r),
        diagnostics=r.get("diagnostics"),
        gap_closed=gap_closed(cells["overall"], None if ceiling is None else ceiling.overall),
        verified=r.get("_verified"),
        above_ceiling=tuple(r.get("_above_ceiling", ())),
    )


def _verified(record: dict[str, Any], ledger: Mapping[str, Mapping[str, Any]]) -> str | None:
    """ "re-scored <date> on <hardware>" when the ledger holds this very file, else None.
    Predictions-only results cannot be re-scored: always self-reported."""
    if record.get("kind") == "predictions" or not ledger:
        return None
    entry = ledger.get(record["_sha256"])
    if entry is None or entry.get("submission") != record["submission"]:
        return None
    day = str(entry.get("rescored_utc", ""))[:10]
    return f"re-scored {day} on {entry.get('hardware')} ({entry.get('pairs_rescored')} pairs)"


def _by_accuracy(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(
        records, key=lambda r: (-(r["metrics"]["overall"].get("accuracy") or 0), r["submission"])
    )


class _Predictions:
    """Each result's predictions read once (minus the presentation-order columns, which feed only
    the judge diagnostics) and scored once for the rank intervals, shared by the per-task and the
    cross-task tables."""

    def __init__(self) -> None:
        self._tables: dict[str, Any] = {}
        self._scored: dict[str, Any] = {}

    def table(self, record: dict[str, Any]) -> Any:
        import pyarrow.parquet as pq

        from benchmark.leaderboard.load import _without_orders, predictions_path

        path = record["_path"]
        if path not in self._tables:
            self._tables[path] = _without_orders(pq.read_table(predictions_path(path)))
        return self._tables[path]

    def scored(self, record: dict[str, Any]) -> Any:
        from benchmark.leaderboard import ranking

        path = record["_path"]
        if path not in self._scored:
            acc = record["metrics"]["overall"].get("accuracy") or 0
            self._scored[path] = ranking.scored(record["submission"], acc, self.table(record))
        return self._scored[path]


def _task_ranks(task: str, records: list[dict[str, Any]], preds: _Predictions) -> dict[str, Any]:
    from benchmark.leaderboard import ranking

    return ranking.assign([preds.scored(r) for r in records], f"task '{task}'")


def _task_board(
    task: str,
    recs: list[dict[str, Any]],
    stale: list[dict[str, Any]],
    failed: list[dict[str, Any]],
    had_result: set[tuple[str, str]],
    now: dict[str, tuple[str | None, str | None]],
    preds: _Predictions,
    flagged: list[dict[str, Any]] | None = None,
) -> TaskBoard:
    from benchmark.leaderboard.load import _check_task

    flagged = sorted(flagged or [], key=lambda r: r["submission"])
    shown = recs + stale + flagged
    failed_notes = [
        Failed(
            submission=str(f["submission"]),
            stage=str(f.get("stage") or "?"),
            time=str(f["time"]) if f.get("time") else None,
            reason=str(f["reason"]),
            withdrawn=(f["submission"], task) in had_result,
            changed_since=bool(
                f.get("fingerprint")
                and now.get(f["submission"], (None, None))[0]
                and now[f["submission"]][0] != f["fingerprint"]
            ),
        )
        for f in sorted(failed, key=lambda f: f["submission"])
    ]
    stale_sorted = sorted(stale, key=lambda r: r["submission"])
    stale_notes = [
        Stale(
            submission=str(r["submission"]),
            was=r.get("model_fingerprint"),
            now=now[r["submission"]][0],
            why_not=now[r["submission"]][1],
        )
        for r in stale_sorted
    ]
    if not shown:
        return TaskBoard(task, None, None, None, None, False, 0, None, [], [], [], {}, [],
                         failed_notes, stale_notes)  # fmt: skip
    _check_task(task, shown)
    first = shown[0]
    bins = int(first.get("bins") or len(first["metrics"].get("by_bin", {})))
    edges = first.get("bin_edges")
    relations = sorted({k for r in shown for k in r["metrics"].get("by_relation", {})})
    sizes = {
        rel: max(r["metrics"]["by_relation"].get(rel, {}).get("n", 0) for r in shown)
        for rel in relations
    }
    # verified and self-reported results are ranked apart (rank intervals within each group)
    verified = _by_accuracy([r for r in recs if r.get("_verified")])
    reported = _by_accuracy([r for r in recs if not r.get("_verified")])
    rank_of = {**_task_ranks(task, verified, preds), **_task_ranks(task, reported, preds)}
    # the pairs decide the ceiling: any current result that carries one (all agree: same pairs)
    ceiling = next((c for r in recs + stale_sorted + flagged if (c := _ceiling(r, bins))), None)
    rows = [
        _row(r, bins, False, rank_of.get(r["submission"]), ceiling) for r in verified + reported
    ]
    rows += [_row(r, bins, True, None, ceiling) for r in stale_sorted]
    rows += [_row(r, bins, False, None, ceiling) for r in flagged]
    return TaskBoard(
        name=task,
        version=first.get("task_version"),
        split=first.get("split"),
        n_pairs=first.get("n_pairs"),
        n_clips=first["metrics"]["overall"].get("n_clips"),
        synthetic=bool(first.get("synthetic")),
        bins=bins,
        bins_requested=first.get("bins_requested"),
        bin_labels=[bin_label(i, edges) for i in range(bins)],
        groups=sorted({k for r in shown for k in r["metrics"].get("by_group_subset", {})}),
        relations=relations,
        relation_sizes=sizes,
        rows=rows,
        failed=failed_notes,
        stale=stale_notes,
        ceiling=ceiling,
        dimension=dimension(first),
        interval_scope=_scope(first),
    )


def _summaries(
    records: list[dict[str, Any]], preds: _Predictions, official: Collection[str] | None
) -> tuple[list[Summary], dict[str, str]]:
    """Micro and macro over the real tasks that may be pooled (`_poolable`), one ranked table per
    preference dimension, set of tasks evaluated and verification status; and the real tasks
    kept out, with why."""
    real = [r for r in records if not r.get("synthetic")]
    out: list[Summary] = []
    not_pooled: dict[str, str] = {}
    dims = sorted({dimension(r) for r in real}, key=lambda d: (d != "quality", d))
    for dim in dims:
        # per dimension: one corpus's clips under two label columns are two dimensions, never
        # pooled together, so sharing clips there is no double count
        of_dim = [r for r in real if dimension(r) == dim]
        keep, why = _poolable(of_dim, preds, official)
        not_pooled.update(why)
        pooled = [r for r in of_dim if r["task"] in keep]
        if pooled:
            out += _dimension_summaries(dim, pooled, preds)
    return out, dict(sorted(not_pooled.items()))


def _poolable(
    records: list[dict[str, Any]], preds: _Predictions, official: Collection[str] | None
) -> tuple[set[str], dict[str, str]]:
    """The tasks "All tasks" may pool: declared official (when a list is given), and none with
    the pair file of, or a clip shared with, a task pooled before it (by name): the same pairs
    counted twice would make the pooled interval too narrow. Clips are compared by id within
    the predictions tables."""
    by_task: dict[str, dict[str, Any]] = {}
    for r in sorted(records, key=lambda r: (r["task"], r["submission"])):
        by_task.setdefault(r["task"], r)
    keep: set[str] = set()
    why: dict[str, str] = {}
    seen_pairs: dict[str, str] = {}
    seen_clips: dict[str, set[str]] = {}
    for task, r in sorted(by_task.items()):
        if official is not None and task not in official:
            why[task] = "not one of the official tasks (leaderboard/official-tasks.json)"
            continue
        sha = str(r.get("pair_file_sha256"))
        if sha in seen_pairs:
            why[task] = f"the same pair file as {seen_pairs[sha]}"
            continue
        table = preds.table(r)
        clips = set(table.column("clip_a").to_pylist()) | set(table.column("clip_b").to_pylist())
        shared = next(((t, len(clips & c)) for t, c in seen_clips.items() if clips & c), None)
        if shared is not None:
            why[task] = f"{shared[1]} clip(s) in common with {shared[0]}"
            continue
        keep.add(task)
        seen_pairs[sha] = task
        seen_clips[task] = clips
    return keep, why


def _dimension_summaries(
    dim: str, records: list[dict[str, Any]], preds: _Predictions
) -> list[Summary]:
    """One preference dimension's summaries: labels from other score columns (noisiness,
    intelligibility) are never pooled with overall quality, nor with each other."""
    import pyarrow as pa

    from benchmark.leaderboard import ranking
    from benchmark.stats.metrics import aggregate

    by_sub: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_sub[r["submission"]].append(r)
    coverage: dict[tuple[tuple[str, ...], bool], list[str]] = defaultdict(list)
    for sub, recs in sorted(by_sub.items()):
        verified = all(r.get("_verified") for r in recs)
        coverage[(tuple(sorted(r["task"] for r in recs)), verified)].append(sub)
    out = []
    for key in sorted(coverage, key=lambda k: (-len(k[0]), not k[1], k[0])):
        tasks, verified = key
        info = []
        for sub in coverage[key]:
            recs = sorted(by_sub[sub], key=lambda r: r["task"])
            tables = [preds.table(r) for r in recs]
            agg = aggregate(pa.concat_tables(tables, promote_options="default"))
            bins = max(int(r.get("bins") or 0) for r in recs) or None
            info.append((sub, recs, agg, bins))
        rank_of = ranking.assign(
            [
                ranking.pooled(
                    sub, agg["overall"]["accuracy"] or 0, [preds.scored(r) for r in recs]
                )
                for sub, recs, agg, _ in info
            ],
            f"tasks {', '.join(tasks)}" + ("" if verified else " (self-reported)"),
        )
        info.sort(key=lambda x: (-(x[2]["overall"]["accuracy"] or 0), x[0]))
        rows = []
        for rank, (sub, recs, agg, bins) in enumerate(info, start=1):
            t = rank_of[sub]
            rows.append(
                SummaryRow(
                    rank=rank,
                    submission=sub,
                    name=shown_name(recs[0]),
                    shortcut=bool(recs[0].get("shortcut")),
                    in_domain=any(not r.get("zero_shot", True) for r in recs),
                    rank_low=t.low,
                    rank_high=t.high,
                    micro=Cell.of(agg["overall"]),
                    macro=Cell.of(agg["macro"], n_key="n_tasks"),
                    per_task={r["task"]: Cell.of(r["metrics"]["overall"]) for r in recs},
                    by_bin=[Cell.of(agg["by_bin"].get(str(i))) for i in range(bins or 0)],
                    pairs=int(agg["overall"]["n"]),
                )
            )
        out.append(Summary(tasks=list(tasks), rows=rows, dimension=dim, verified=verified))
    return out


def _models(records: list[dict[str, Any]]) -> list[Model]:
    """One record per submission (every result carries the same model record)."""
    latest: dict[str, dict[str, Any]] = {}
    for r in sorted(records, key=lambda r: (r["submission"], r.get("task", ""))):
        latest.setdefault(r["submission"], r)
    out = []
    for key in sorted(latest):
        r = latest[key]
        info = r.get("model") or {}

        def text(k: str, info: dict[str, Any] = info) -> str | None:
            return None if not info.get(k) else str(info[k])

        params = info.get("parameters")
        out.append(
            Model(
                submission=str(key),
                name=shown_name(r),
                shortcut=bool(r.get("shortcut")),
                kind=r.get("kind"),
                parameters=None if params is None else int(params),
                parameters_source=info.get("parameters_source"),
                license=text("license"),
                revision=text("revision"),
                release_date=text("release_date"),
                url=text("url"),
                training_data=[str(t) for t in r.get("training_data") or []],
            )
        )
    return out


def board_data(
    results_root: str | Path,
    submissions_root: str | Path | Sequence[Path] | None = None,
    *,
    ledger: Mapping[str, Mapping[str, Any]] | None = None,
    official_tasks: Collection[str] | None = None,
) -> Board:
    """Every table of the board from the results folder (and, with `submissions_root`, each
    result's fingerprint checked against its folder: a mismatch is stale).

    `ledger` (`results.ledger`): the results files the board's builder re-scored, by sha256;
    every other row is self-reported and ranked apart. `official_tasks`: the real tasks "All
    tasks" may pool (None: every real task). A cell whose interval lies above its noise ceiling's
    is flagged and never ranked."""
    from benchmark.leaderboard.load import current_fingerprints, load_results
    from benchmark.results.failures import load_failures

    records = load_results(results_root)
    failures = load_failures(results_root)
    literature: dict[str, Any] = {
        "literature": list(LITERATURE),
        "literature_source": LITERATURE_SOURCE,
    }
    if not records and not failures:
        return Board([], [], [], {}, [], **literature)
    failed = {(f["submission"], f["task"]): f for f in failures}
    now = current_fingerprints(
        {r["submission"] for r in records} | {f["submission"] for f in failures}, submissions_root
    )
    unranked: dict[str, list[str]] = defaultdict(list)
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    stale_by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    flagged_by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        r["_verified"] = _verified(r, ledger or {})
        leak = above_ceiling(r)
        if leak:
            r["_above_ceiling"] = leak
        if (r["submission"], r["task"]) in failed:
            continue
        fp = now.get(r["submission"])
        if fp is not None and (fp[0] is None or fp[0] != r.get("model_fingerprint")):
            stale_by_task[r["task"]].append(r)
            unranked[r["submission"]].append(f"stale on {r['task']}")
        elif leak:
            flagged_by_task[r["task"]].append(r)
            unranked[r["submission"]].append(f"above the noise ceiling on {r['task']}")
        else:
            by_task[r["task"]].append(r)
    failed_by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in failures:
        failed_by_task[f["task"]].append(f)
        unranked[f["submission"]].append(f"failed on {f['task']}")
    had_result = {(r["submission"], r["task"]) for r in records}
    preds = _Predictions()
    tasks = [
        _task_board(
            task,
            by_task.get(task, []),
            stale_by_task.get(task, []),
            failed_by_task.get(task, []),
            had_result,
            now,
            preds,
            flagged_by_task.get(task, []),
        )
        for task in sorted(
            set(by_task) | set(stale_by_task) | set(failed_by_task) | set(flagged_by_task)
        )
    ]
    current = [r for rs in by_task.values() for r in rs]
    ranked = [r for r in current if r["submission"] not in unranked]
    summaries, not_pooled = _summaries(ranked, preds, official_tasks)
    from benchmark.leaderboard.robustness import robustness

    return Board(
        robustness=robustness(results_root, current),
        tasks=tasks,
        summaries=summaries,
        not_pooled=not_pooled,
        synthetic_tasks=sorted({r["task"] for r in ranked if r.get("synthetic")}),
        unranked={sub: sorted(why) for sub, why in sorted(unranked.items())},
        models=_models(current + [r for rs in flagged_by_task.values() for r in rs]),
        **literature,
    )
