"""The Python API: evaluate an in-memory model without a submission folder.

    import benchmark as mb
    results = mb.evaluate(MyModel(), tasks=["demo"], name="my-model", version="3")
    print(results[0].accuracy, results[0].interval)

`evaluate` wraps the object as an in-process `Submission` and calls the same `pairs.prepare.prepare`
(with reuse) and `pipeline.evaluate` as `mosrm evaluate`, so it writes the same results files
(`<results>/<name>/<task>.json` + predictions) and returns them typed (`benchmark.results.schema`).

The fingerprint. A folder submission's fingerprint hashes every file of its folder; an in-memory
object has no folder to hash, and hashing its code or weights cannot be done reliably for an
arbitrary object. So the caller's `name` and `version` key the score cache (with the harness's
model API version and, like the reference baselines, the object's own `fingerprint()` if it has
one): change `version` whenever the model changes, or cached scores of the old model are reused.
`fingerprint=` overrides the derived value entirely (e.g. to share a folder submission's cache).

The object's code runs in this process, unsandboxed: it is the caller's own code.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.errors import MosrmError, SubmissionError

if TYPE_CHECKING:
    from benchmark.results.schema import TaskResult
    from benchmark.scoring.config import ScoringConfig
    from benchmark.scoring.models import Submission

IN_MEMORY_ENTRY = "in-memory.py:model"
"""The spec's `entry` for an in-memory model: a marker only, no file of that name is read or run
(the spec validator wants an entry for every kind that runs code)."""

_RESERVED_META = frozenset({"name", "kind", "entry", "weights", "params", "predictions"})


def _infer_kind(model: Any, kind: str | None) -> str:
    from benchmark.scoring.interfaces import (
        ImplicitRewardModel,
        PairwiseRewardModel,
        ScalarRewardModel,
    )

    found = [
        k
        for k, proto in (
            ("scalar", ScalarRewardModel),
            ("pairwise", PairwiseRewardModel),
            ("implicit", ImplicitRewardModel),
        )
        if isinstance(model, proto)
    ]
    if kind is None:
        if len(found) != 1:
            what = " and ".join(found) if found else "none of score()/prefer()/policy_logp()"
            raise SubmissionError(
                f"{type(model).__name__}: cannot infer the model kind (it has {what}, and "
                "sample_rate); pass kind='scalar', 'pairwise' or 'implicit'"
            )
        return found[0]
    if kind not in ("scalar", "pairwise", "implicit"):
        raise SubmissionError(f"kind must be 'scalar', 'pairwise' or 'implicit', got {kind!r}")
    if kind not in found:
        need = {"scalar": "score()", "pairwise": "prefer()", "implicit": "policy_logp()"}[kind]
        raise SubmissionError(
            f"{type(model).__name__}: kind '{kind}' but the object lacks {need} or sample_rate"
        )
    return kind


def _default_name(model: Any) -> str:
    slug = re.sub(r"[^a-z0-9_.-]+", "-", type(model).__name__.lower()).strip("-.")
    return (slug or "model")[:64]


def in_memory_submission(
    model: Any,
    *,
    name: str | None = None,
    kind: str | None = None,
    version: str | None = None,
    fingerprint: str | None = None,
    meta: dict[str, Any] | None = None,
) -> Submission:
    """`model` as a `Submission` (see the module doc for the fingerprint).

    `meta` holds further `submission.yaml` fields (display_name, license, url, training_data,
    shortcut, …), validated the same way; a default display name is the name.
    """
    from pydantic import ValidationError

    from benchmark import HARNESS_VERSION
    from benchmark.errors import describe_validation_error
    from benchmark.scoring.interfaces import MODEL_API_VERSION, ImplicitAsScalar
    from benchmark.scoring.models import Submission
    from benchmark.scoring.spec import SubmissionSpec

    meta = dict(meta or {})
    reserved = sorted(_RESERVED_META & set(meta))
    if reserved:
        raise SubmissionError(f"meta: field '{reserved[0]}' is set by evaluate(), not meta")
    kind = _infer_kind(model, kind)
    name = name if name is not None else _default_name(model)
    raw = {"display_name": name, **meta, "name": name, "kind": kind, "entry": IN_MEMORY_ENTRY}
    try:
        spec = SubmissionSpec.model_validate(raw)
    except ValidationError as exc:
        raise SubmissionError(f"in-memory model: {describe_validation_error(exc)}") from None
    if fingerprint is None:
        digest: dict[str, Any] = {
            "api": MODEL_API_VERSION,
            "harness": HARNESS_VERSION,
            "in_memory": True,
            "spec": spec.model_dump(mode="json"),
            "version": version,
        }
        extra = getattr(model, "fingerprint", None)
        if callable(extra):
            digest["model"] = str(extra())
        text = json.dumps(digest, sort_keys=True)
        fingerprint = hashlib.sha256(text.encode()).hexdigest()[:32]
    wrapped = ImplicitAsScalar(model) if kind == "implicit" else model
    return Submission(spec, Path(f"<in-memory:{name}>"), wrapped, fingerprint)


def _repo(repo: str | Path | None) -> Path:
    """The workspace (`benchmark.workspace`): `repo` when given."""
    from benchmark.workspace import workspace

    return workspace(repo).root


def evaluate(
    model: Any,
    tasks: Any = ("demo",),
    *,
    name: str | None = None,
    kind: str | None = None,
    version: str | None = None,
    fingerprint: str | None = None,
    meta: dict[str, Any] | None = None,
    results_dir: str | Path | None = None,
    data_root: str | Path | None = None,
    config: ScoringConfig | None = None,
    limit: int | None = None,
    triplets: int | None = None,
    min_reliability: float | None = None,
    repo: str | Path | None = None,
) -> list[TaskResult]:
    """Evaluate an object with `score(batch)` (scalar), `prefer(a, b)` (pairwise) or an implicit
    model's methods, plus `sample_rate`, on each task; one `TaskResult` per task, in order.

    A task is a name (the package's, or a YAML under the workspace's `tasks/`), a path to a task
    YAML anywhere, a `TaskSpec` (or the mapping a task YAML holds) or a `Task`; one task or a list
    of them.

    The results are written as by `mosrm evaluate` under `results_dir` (default the workspace's
    `results/`: `repo`, else `$MOSRM_WORKSPACE`, else the current folder if it has
    `submissions/` or `tasks/`, else `~/mosrm`; never the checkout's board); `limit` is a
    quick run (`<task>.partial.json`); `min_reliability` (in (0.5, 1]) scores only the pairs
    whose label reliability reaches it (`<task>.min-rel-<t>.json`, never on the board). The data root is `data_root`, else the task's own, else the
    one it was last prepared from; a task without data is an error naming where it looked.
    """
    from benchmark.pipeline import evaluate_task

    if min_reliability is not None:
        from benchmark.stats.ceiling import check_min_reliability

        min_reliability = check_min_reliability(min_reliability)  # before any task is prepared
    resolved, submission, results_root, config = _session(
        model, tasks, repo, results_dir, config,
        name=name, kind=kind, version=version, fingerprint=fingerprint, meta=meta,
    )  # fmt: skip
    out: list[TaskResult] = []
    for task in resolved:
        prepared = _prepare(task, data_root)
        result = evaluate_task(
            submission,
            prepared,
            results_root=results_root,
            config=config,
            triplets=triplets,
            limit=limit,
            min_reliability=min_reliability,
        )
        out.append(result)
    return out


def probe(
    model: Any,
    tasks: Any = ("demo",),
    *,
    name: str | None = None,
    kind: str | None = None,
    version: str | None = None,
    fingerprint: str | None = None,
    meta: dict[str, Any] | None = None,
    results_dir: str | Path | None = None,
    data_root: str | Path | None = None,
    config: ScoringConfig | None = None,
    clips: int | None = 32,
    pairs: int | None = 96,
    bon_n: int = 4,
    repo: str | Path | None = None,
) -> list[dict[str, Any]]:
    """`mosrm probe` for an in-memory model: degradation sensitivity, reward-hacking flip rates
    and best-of-N gain on each task (`benchmark.probe`), written as `mosrm probe` writes them
    (`<results>/<name>/probes/<task>.json`); one record per task, as written. Models, tasks and
    folders as `evaluate`; `clips`/`pairs` the seeded subsets (None: all), `bon_n` best of N."""
    from benchmark.probe import ProbeSettings, run_probes

    resolved, submission, results_root, config = _session(
        model, tasks, repo, results_dir, config,
        name=name, kind=kind, version=version, fingerprint=fingerprint, meta=meta,
    )  # fmt: skip
    settings = ProbeSettings(clips=clips, pairs=pairs, bon_n=bon_n)
    return [
        run_probes(
            submission,
            _prepare(task, data_root),
            results_root=results_root,
            config=config,
            settings=settings,
        )
        for task in resolved
    ]


def _session(
    model: Any,
    tasks: Any,
    repo: str | Path | None,
    results_dir: str | Path | None,
    config: ScoringConfig | None,
    **identity: Any,
) -> tuple[list[Any], Any, Path, ScoringConfig]:
    """What `evaluate` and `probe` share: the tasks resolved in the workspace, the in-memory
    submission, the results folder and the scoring config (quiet by default)."""
    from benchmark.orchestrate import default_results
    from benchmark.scoring.config import ScoringConfig

    repo_path = _repo(repo)
    resolved = resolve_tasks(tasks, repo_path)
    submission = in_memory_submission(model, **identity)
    results_root = Path(results_dir) if results_dir is not None else default_results(repo_path)
    quiet = ScoringConfig(progress=False)
    return resolved, submission, results_root, config if config is not None else quiet


def resolve_tasks(tasks: Any, repo: Path) -> list[Any]:
    """`evaluate`'s tasks as `Task` objects: names looked up under `repo/tasks/`, YAML paths
    loaded, `TaskSpec`s and mappings validated (one-line errors naming the field)."""
    from pydantic import ValidationError

    from benchmark.data.tasks import Task, TaskSpec, load_task_file, task_files
    from benchmark.errors import TaskSpecError, describe_validation_error, did_you_mean

    items = [tasks] if isinstance(tasks, str | Path | Task | TaskSpec | dict) else list(tasks)
    known: dict[str, Path] | None = None
    out: list[Task] = []
    for item in items:
        if isinstance(item, Task):
            out.append(item)
        elif isinstance(item, TaskSpec):
            out.append(Task(item, None))
        elif isinstance(item, dict):
            try:
                out.append(Task(TaskSpec.model_validate(item), None))
            except ValidationError as exc:
                raise TaskSpecError(f"task spec: {describe_validation_error(exc)}") from None
        elif isinstance(item, Path) or str(item).endswith((".yaml", ".yml")):
            out.append(load_task_file(item))
        elif isinstance(item, str):
            known = known if known is not None else task_files(repo)
            if item not in known:
                names = ", ".join(known)
                hint = did_you_mean(item, known)
                raise MosrmError(
                    f"unknown task '{item}'{hint} (known: {names}; or pass a YAML path)"
                )
            out.append(load_task_file(known[item]))
        else:
            raise MosrmError(
                f"a task is a name, a YAML path, a TaskSpec or a Task, got {type(item).__name__}"
            )
    return out


def _prepare(task: Any, data_root: str | Path | None) -> Any:
    """The task prepared (reused when its inputs are unchanged), as `mosrm evaluate` does."""
    from benchmark.orchestrate import find_data_root
    from benchmark.pairs.prepare import prepare

    root, candidates = find_data_root(task, data_root)
    if root is None:
        raise MosrmError(
            f"task '{task.name}' has no data at {candidates[0]}; run `mosrm prepare {task.name}` "
            "(or pass data_root=)"
        )
    return prepare(task, root, reuse=True)


def get_tasks(
    repo: str | Path | None = None, data_root: str | Path | None = None
) -> dict[str, dict[str, Any]]:
    """{task name: {"version", "reader", "present", "data_root"}} like `mosrm tasks`; `present` is
    True, False, or the error text when the data root cannot be checked."""
    from benchmark.data.tasks import workspace_tasks

    out: dict[str, dict[str, Any]] = {}
    for name, task in workspace_tasks(_repo(repo)).items():
        root = task.data_root(data_root)
        try:
            present: bool | str = bool(task.available(root))
        except MosrmError as exc:
            present = str(exc)
        out[name] = {
            "version": task.spec.version,
            "reader": task.spec.reader,
            "present": present,
            "data_root": str(root),
        }
    return out


def load_results(
    results_dir: str | Path | None = None,
    *,
    partial: bool = False,
    filtered: bool = False,
    repo: str | Path | None = None,
) -> list[TaskResult]:
    """Every results file under `results_dir` (default `<repo>/leaderboard/results`), sorted by
    path, validated (`TaskResult.load`: a missing or unknown schema version is refused); failure
    records and run records are skipped, quick runs only read with `partial`, and
    reliability-filtered results (`--min-reliability`) only with `filtered`."""
    from benchmark.results.failures import SUFFIX
    from benchmark.results.schema import PARTIAL_SUFFIX, RUN_SUFFIX, TaskResult
    from benchmark.stats.ceiling import is_filtered_name

    root = Path(results_dir) if results_dir is not None else _repo(repo) / "leaderboard/results"
    out: list[TaskResult] = []
    for path in sorted(root.glob("*/*.json")):
        if path.name.endswith((SUFFIX, RUN_SUFFIX)):
            continue
        if path.name.endswith(PARTIAL_SUFFIX) and not partial:
            continue
        if is_filtered_name(path.name) and not filtered:
            continue
        out.append(TaskResult.load(path))
    return out
