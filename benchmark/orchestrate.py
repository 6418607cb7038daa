"""Many tasks × many submissions: what `mosrm evaluate` and `mosrm run` do between parsing their
flags and printing a summary, as library calls (the CLI parses, calls these and reports).

The promise they keep: one submission failing (to load, to score, to write) never stops the
others. It is printed at once, naming its folder, and recorded as
`<results>/<submission>/<task>.failed.json` (`benchmark.results.failures`) for the board; a task whose
data is broken is set aside the same way when the caller collects `failures`. What is not a
submission's fault stops the run: `MachineError` (a full disk, a broken cache) and
KeyboardInterrupt. Progress goes to `echo` (a log line by default, stdout from the CLI), failures to the log
(`benchmark.orchestrate`, level ERROR; the CLI shows them on stderr).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.errors import MachineError, MosrmError, TaskSpecError, did_you_mean
from benchmark.pairs.data_roots import fetch_hint, find_data_root

__all__ = ["fetch_hint", "find_data_root"]  # where callers have always imported them from

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from benchmark.pairs.prepare import PreparedTask
    from benchmark.scoring.config import ScoringConfig
    from benchmark.scoring.sandbox import SandboxLimits

Echo = Callable[[str], None]


def say(text: str) -> None:
    """The default `echo`: a log line (`benchmark.orchestrate`, level INFO), so an API user or a
    notebook silences or redirects it like any other; the CLI hands its own echo (stdout)."""
    log.info(text)


def default_results(repo: Path) -> Path:
    """The workspace's results folder (what its board and `validate-results` read): never the
    checkout's tracked `leaderboard/results` unless named (`benchmark.workspace`)."""
    return repo / "results"


def prepare_tasks(
    repo: Path,
    names: Sequence[str] | None,
    data_root: str | None = None,
    *,
    failures: dict[str, str] | None = None,
    progress: bool = True,
    echo: Echo = say,
) -> list[PreparedTask]:
    """Prepare each named task the workspace `repo` sees (its own and the package's; by default
    `_default_tasks`) whose data is found.

    The data root is `data_root` when given, else the task's own root, else the root the task was
    last prepared from (so `mosrm prepare T --data-root D` once is enough for later runs). A task
    prepared before from unchanged inputs is reused, not rebuilt.
    With `failures` given, a task whose data is broken is recorded there and the others go on.
    """
    from benchmark.data.tasks import workspace_tasks
    from benchmark.pairs.prepare import prepare

    # only the named tasks' files are read: parsing every task was a noticeable share of a
    # cached `evaluate`, and an unrelated task file cannot get in the way
    try:
        tasks = workspace_tasks(repo, names or _default_tasks(repo))
    except TaskSpecError as exc:
        if names:
            raise MosrmError(str(exc)) from None
        raise
    prepared = []
    for name, task in tasks.items():
        root, candidates = find_data_root(task, data_root)
        if root is None:
            echo(
                f"skip {name}: data not present at {candidates[0]}; {fetch_hint(task, candidates[0])}"
            )
            continue
        echo(f"prepare {name} …")
        try:
            prepared.append(prepare(task, root, progress=progress, echo=echo, reuse=True))
        except MachineError:
            raise  # a full disk or a broken cache is not the task's fault: stop here
        except MosrmError as exc:
            if failures is None:
                raise
            failures[name] = str(exc)
            log.error("error: %s: %s\n  (going on with the other tasks)", name, exc)
    return prepared


def _default_tasks(repo: Path) -> list[str]:
    """The tasks a run takes when none is named: the workspace's own if it has any, else the
    package's (a fresh workspace gets the demo board; a user's listening test is not run beside
    every corpus of the benchmark unless named)."""
    from benchmark.data.tasks import task_files
    from benchmark.workspace import SHIPPED_TASKS

    files = task_files(repo)
    own = [n for n, p in files.items() if p.parent.resolve() != SHIPPED_TASKS.resolve()]
    return own or list(files)


def submission_folders(repo: Path, names: Sequence[str] | None) -> list[Path]:
    """The named submissions (a folder, or a name in the workspace's `submissions/`, then the
    package's), else all of the workspace's own."""
    from benchmark.scoring.spec import discover_submissions
    from benchmark.workspace import find_submission, submission_roots

    roots = submission_roots(repo)
    if not names:
        return discover_submissions(roots[0]) if roots[0].is_dir() else []
    chosen = []
    for n in names:
        p = Path(n)
        found = p if p.is_dir() else find_submission(roots, n) or roots[0] / n
        if not (found / "submission.yaml").is_file():
            known = sorted({f.name for r in roots if r.is_dir() for f in discover_submissions(r)})
            raise MosrmError(
                f"no submission '{n}'{did_you_mean(n, known)} (looked for {found}/submission.yaml"
                f"{' and the package' + chr(39) + 's' if not p.is_dir() else ''})"
            )
        chosen.append(found)
    return chosen


def cheapest_first(folders: Sequence[Path]) -> list[Path]:
    """`folders` in the order a first number comes soonest: shortcuts (no model), then the
    committed reference models (small, trained here), then the rest (zero-shot networks, the
    user's); stable within each, and each folder once."""
    from benchmark.scoring.spec import read_spec
    from benchmark.scoring.trust import REFERENCE

    def cost(folder: Path) -> int:
        try:
            if read_spec(folder).shortcut:
                return 0
        except MosrmError:
            return 2  # its loading fails later, named, in its turn
        return 1 if folder.resolve().is_relative_to(REFERENCE.resolve()) else 2

    unique = list(dict.fromkeys(folders))
    return sorted(unique, key=cost)


def shipped_submissions(prepared: Sequence[PreparedTask]) -> list[Path]:
    """The package's own submissions (shortcuts, DNSMOS, PLCMOS) where a prepared task is one of
    the package's: they are the official board's baselines, not a user's task's."""
    from benchmark.scoring.spec import discover_submissions
    from benchmark.workspace import SHIPPED_SUBMISSIONS, SHIPPED_TASKS

    shipped = SHIPPED_TASKS.resolve()
    if not any(p.task.path is not None and p.task.path.parent == shipped for p in prepared):
        return []
    return discover_submissions(SHIPPED_SUBMISSIONS)


def evaluate_submissions(
    repo: Path,
    prepared: Sequence[PreparedTask],
    folders: Sequence[Path],
    results_root: Path,
    config: ScoringConfig,
    *,
    limits: SandboxLimits | None = None,
    unsandboxed: bool = False,
    limit: int | None = None,
    min_reliability: float | None = None,
    probes: Any = None,
    plain: bool = True,
    echo: Echo = say,
) -> list[str]:
    """Evaluate every folder on every prepared task; returns one line per failure (module doc),
    for the summary the caller prints. With `limit`, quick runs on a seeded subset of pairs; with
    `min_reliability`, only the pairs whose label reliability reaches it (`pipeline.evaluate`).
    With `probes` (a `probe.ProbeSettings`), each evaluation is followed by the probes
    (`benchmark.probe`); `plain=False` runs the probes alone (`mosrm probe`)."""

    from benchmark.results.failures import record_failure
    from benchmark.scoring.models import load_submission

    failed: list[str] = []

    def fail(
        folder: Path, tasks: list[str], stage: str, exc: BaseException, fp: str | None
    ) -> None:
        from benchmark.scoring.sharding import writes_results

        label = _folder_label(folder, repo)
        reason = _failure_message(exc, fp, repo, folder.resolve())
        if not writes_results():  # a sharded run's other rank: rank 0 reports and records it
            failed.append(reason)
            return
        where = f"{label} (fingerprint {fp[:12]}…)" if fp else label
        bug = not isinstance(exc, MosrmError | SystemExit)  # a bug somewhere: keep the trace
        log.error("error: %s: %s", where, reason, exc_info=exc if bug else None)
        # a failed probe leaves the task's own result standing: listed, never recorded as the
        # task's failure (`<task>.failed.json` would mark the result failed on the board)
        for task in tasks if stage != "probe" else []:
            try:
                record_failure(
                    results_root,
                    submission=folder.resolve().name,
                    folder=label,
                    task=task,
                    stage=stage,
                    reason=reason,
                    fingerprint=fp,
                )
            except OSError as write_exc:
                log.error("  (could not record the failure: %s)", write_exc)
        on = f" on {', '.join(tasks)}" if tasks else ""
        failed.append(f"{label}{on} ({stage}): {reason}")

    for folder in folders:
        try:
            submission = load_submission(folder, limits=limits, unsandboxed=unsandboxed)
            if submission.sandboxed and prepared:
                # build it now, so a failure is "load"; a model built before (same folder) is
                # known without starting it (benchmark.scoring.model_facts)
                submission.model.sample_rate  # noqa: B018
        except MachineError:
            raise
        except (Exception, SystemExit) as exc:
            fail(folder, [p.task.name for p in prepared], "load", exc, _folder_fingerprint(folder))
            continue
        try:
            _evaluate_one(
                submission, folder, prepared, results_root, config, fail, limit, min_reliability,
                echo, probes, plain,
            )  # fmt: skip
        finally:
            submission.close()
    return failed


def _evaluate_one(
    submission: Any,
    folder: Path,
    prepared: Sequence[PreparedTask],
    results_root: Path,
    config: ScoringConfig,
    fail: Callable[[Path, list[str], str, BaseException, str | None], None],
    limit: int | None,
    min_reliability: float | None,
    echo: Echo,
    probes: Any = None,
    plain: bool = True,
) -> None:
    """One submission on every prepared task; failures go to `fail`."""
    import textwrap

    from benchmark.pipeline import evaluate
    from benchmark.results.report import format_result

    covered = submission.spec.predictions if submission.spec.kind == "predictions" else None
    for p in prepared:
        if covered is not None and p.task.name not in covered:
            # a predictions file covers the tasks it names: the others are not its failures
            echo(f"skip {submission.name} on {p.task.name}: it has no predictions for that task")
            continue
        stages = ["score"]
        if plain:
            echo(f"evaluate {submission.name} on {p.task.name} …")
            try:
                r = evaluate(
                    submission,
                    p,
                    results_root=results_root,
                    config=config,
                    on_stage=stages.append,
                    limit=limit,
                    min_reliability=min_reliability,
                )
            except MachineError:
                raise
            except (Exception, SystemExit) as exc:
                fail(folder, [p.task.name], stages[-1], exc, submission.fingerprint)
                continue
            echo(textwrap.indent(format_result(r), "  "))
        if probes is not None:
            _probe_one(submission, folder, p, results_root, config, fail, probes, echo)


def _probe_one(
    submission: Any,
    folder: Path,
    prepared: PreparedTask,
    results_root: Path,
    config: ScoringConfig,
    fail: Callable[[Path, list[str], str, BaseException, str | None], None],
    settings: Any,
    echo: Echo,
) -> None:
    """The probes of one submission on one task (`benchmark.probe`), printed after its table."""
    import textwrap

    from benchmark.probe import format_probes, run_probes

    echo(f"probe {submission.name} on {prepared.task.name} …")
    try:
        record = run_probes(
            submission, prepared, results_root=results_root, config=config, settings=settings
        )
    except MachineError:
        raise
    except (Exception, SystemExit) as exc:
        fail(folder, [prepared.task.name], "probe", exc, submission.fingerprint)
        return
    echo(textwrap.indent(format_probes(record), "  "))


def reference_baselines(
    repo: Path,
    prepared: Sequence[PreparedTask],
    failures: dict[str, str],
    names: Sequence[str] | None = None,
    *,
    train: bool = False,
    configs: Sequence[Path] | None = None,
    progress: bool = True,
    echo: Echo = say,
) -> list[Path]:
    """The reference baselines to score beside the submissions, with `names` only those named:
    the package's shipped submissions where a package task is prepared (`shipped_submissions`),
    and the committed official models whose tasks are prepared (`baselines.trained.REFERENCE`),
    or with `train`, copies trained here from `configs` (default: `training/`; `ensure_trained`,
    one per seed; a training failure is recorded in `failures["training"]`)."""
    shipped = shipped_submissions(prepared)
    if names:
        shipped = [f for f in shipped if f.name in names]
    return shipped + _reference_models(
        repo,
        prepared,
        failures,
        names,
        train=train,
        configs=configs,
        progress=progress,
        echo=echo,
    )


def _reference_models(
    repo: Path,
    prepared: Sequence[PreparedTask],
    failures: dict[str, str],
    names: Sequence[str] | None,
    *,
    train: bool,
    configs: Sequence[Path] | None,
    progress: bool,
    echo: Echo,
) -> list[Path]:
    from benchmark.baselines.trained import ensure_trained, reference_folders

    if train:
        try:
            folders = ensure_trained(
                repo, list(prepared), configs=configs, progress=progress, echo=echo
            )
        except MachineError:
            raise
        except MosrmError as exc:
            failures["training"] = str(exc)
            log.error("error: training the reference baselines: %s", exc)
            return []
    else:
        folders = reference_folders({p.task.name for p in prepared})
    if names:
        folders = [f for f in folders if f.name in names]
    return folders


def write_board(
    results_root: Path,
    out: Path,
    submissions_root: Path | Sequence[Path] | None = None,
    echo: Echo = say,
    repo: Path | None = None,
) -> Path:
    """The board (`leaderboard.build`: README.md, site/ with CSV and JSON) under `out`, and its
    Markdown also as `<results>/summary.md`; echoes a short summary and the paths (the tables are
    in the files). Returns the summary's path. With `repo`, the board follows its rules
    (re-score ledger, official tasks)."""
    from benchmark.atomic import atomic_write_text
    from benchmark.leaderboard.build import build_board, short_summary

    built = build_board(results_root, out, submissions_root, repo=repo)
    summary = results_root / "summary.md"
    summary.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(summary, built.markdown)
    echo("")
    echo(short_summary(built.board))
    echo(f"board:   {out / 'README.md'} (Markdown, every table)")
    echo(f"site:    {out / 'site' / 'index.html'} (+ board.csv, board.json, plots/)")
    return summary


def _folder_label(folder: Path, repo: Path) -> str:
    """`folder` as the user knows it: relative to the checkout when inside it."""
    resolved = folder.resolve()
    return str(resolved.relative_to(repo)) if resolved.is_relative_to(repo) else str(folder)


def _failure_message(
    exc: BaseException, fingerprint: str | None, repo: Path, folder: Path | None = None
) -> str:
    """One line for a failed load or score. Scoring messages start 'model <fingerprint>: ' and
    sandbox messages '<folder>: ', which the caller's prefix already says; paths inside the
    checkout are shown relative to it, so a published record does not carry the local home."""
    from benchmark.results.failures import one_line

    if isinstance(exc, SystemExit):
        text = f"the model raised SystemExit({exc.code!r}); a model must not exit the process"
    elif isinstance(exc, MosrmError):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    prefixes = [f"{folder}: "] if folder is not None else []
    prefixes += [f"model {fingerprint}: "] if fingerprint else []
    for prefix in prefixes:
        if text.startswith(prefix):
            text = text[len(prefix) :]
    return one_line(text.replace(f"{repo}/", ""))


def _folder_fingerprint(folder: Path) -> str | None:
    """The folder's current fingerprint without running its code, where the harness offers that."""
    from benchmark.scoring import models

    current = getattr(models, "current_fingerprint", None)
    if current is None:
        return None
    try:
        return str(current(folder))
    except (Exception, SystemExit):
        return None
