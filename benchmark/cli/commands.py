"""The `mosrm` commands, one `cmd_*` function each: read the parsed flags, call the library
(`benchmark.orchestrate`, `benchmark.api`'s stages), print what the user asked for.

Heavy modules are imported inside each command, so start-up stays instant. Never computes a number
itself: every number printed comes from the library, so the CLI and the Python API agree.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import textwrap
from pathlib import Path
from typing import Any

from benchmark.cli.flags import _sandbox_limits
from benchmark.errors import MosrmError


def say(text: str) -> None:
    """What a command tells the user as it goes, on stdout, flushed: it interleaves with the
    bars and the log lines on stderr in a log file."""
    print(text, flush=True)


def _repo(args: argparse.Namespace) -> Path:
    """The workspace's root (`benchmark.workspace`: --workspace/--repo, $MOSRM_WORKSPACE, the
    current folder if it has submissions/ or tasks/, else ~/mosrm)."""
    from benchmark.workspace import workspace

    return workspace(args.repo).root


def _sub_roots(repo: Path) -> list[Path]:
    from benchmark.workspace import submission_roots

    return submission_roots(repo)


def _scoring_config(args: argparse.Namespace) -> Any:
    from benchmark.scoring.config import ScoringConfig

    return ScoringConfig(
        max_batch_size=args.batch_size,
        num_workers=args.workers,
        device=args.device,
        bf16=args.bf16,
        progress=not args.quiet,
    )


def cmd_init(args: argparse.Namespace) -> int:
    """A template submission folder (`benchmark.templates`), and what to run next."""
    from benchmark.templates import init_submission
    from benchmark.workspace import Workspace

    repo = _repo(args)
    out = Path(args.out) if args.out else Workspace(repo).submissions / args.name
    folder = init_submission(out, args.name, args.kind, repo)
    ref = args.name if folder == Workspace(repo).submissions / args.name else str(folder)
    print(f"wrote {folder}/ ({', '.join(sorted(p.name for p in folder.iterdir()))})")
    print(f"next:  mosrm validate {ref}")
    print(f"       mosrm evaluate {ref} --task demo")
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    from benchmark.data.tasks import workspace_tasks

    tasks = workspace_tasks(_repo(args))
    rows = [("task", "version", "reader", "data", "root")]
    for name, task in tasks.items():
        root = task.data_root(args.data_root if args.data_root else None)
        try:
            present = "present" if task.available(root) else "absent"
        except MosrmError as exc:
            present = f"error: {exc}"
        rows.append((name, str(task.spec.version), task.spec.reader, present, str(root)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4])
    return 0


def cmd_relations(args: argparse.Namespace) -> int:
    from benchmark.pairs.build import RELATION_DEFINITIONS

    for name, text in RELATION_DEFINITIONS.items():
        print(f"{name}:\n  {text}\n")
    return 0


def _parse_counts(items: list[str] | None, full_pool: bool, task: Any) -> dict[str, dict[str, Any]]:
    """`--pairs SPLIT.RELATION=N|all` (repeatable) and `--full-pool` into count overrides."""
    out: dict[str, dict[str, Any]] = {}
    if full_pool:
        for split in task.spec.pairs:
            out[split] = dict.fromkeys(task.spec.relations, "all")
    for item in items or []:
        key, sep, value = item.partition("=")
        split, dot, rel = key.partition(".")
        if not sep or not dot or not split or not rel:
            raise MosrmError(f"--pairs {item}: expected SPLIT.RELATION=N or SPLIT.RELATION=all")
        if rel not in task.spec.relations:
            raise MosrmError(
                f"--pairs {item}: relation '{rel}' is not one of the task's relations "
                f"({', '.join(task.spec.relations)})"
            )
        count: int | str = value
        if value != "all":
            try:
                count = int(value)
            except ValueError:
                raise MosrmError(f"--pairs {item}: count must be an integer or 'all'") from None
            if count < 0:
                raise MosrmError(f"--pairs {item}: count must be >= 0")
        out.setdefault(split, {})[rel] = count
    return out


def _print_prepared(prepared: Any) -> None:
    print(f"{prepared.task.name}: {prepared.clips.num_rows} clips from {prepared.data_root}")
    if prepared.audio_root is not None:
        print(f"  audio: resampled to 16 kHz in {prepared.audio_root}")
    for split, path in prepared.pair_files.items():
        meta = prepared.pair_meta[split]
        counts = ", ".join(
            f"{rel} {info['sampled']}/{info['available']}"
            for rel, info in sorted(meta.get("relations", {}).items())
        )
        print(f"  {split}: {path}  sha256 {prepared.pair_sha256[split][:16]}…  ({counts})")
        for rel, note in sorted((meta.get("shortfall") or {}).items()):
            print(f"    shortfall in {rel}: {note}")


def cmd_prepare(args: argparse.Namespace) -> int:
    import hashlib
    import json

    from benchmark.data.tasks import workspace_task
    from benchmark.pairs.prepare import prepare
    from benchmark.paths import prepared_dir

    task = workspace_task(_repo(args), args.task)
    counts = _parse_counts(args.pairs, args.full_pool, task)
    out = Path(args.out) if args.out else None
    if counts and out is None:
        # custom pair sets never overwrite the canonical pair files that `evaluate` uses
        digest = hashlib.sha256(json.dumps(counts, sort_keys=True).encode()).hexdigest()[:8]
        out = prepared_dir(task.name) / f"custom-{digest}"
    prepared = prepare(
        task,
        args.data_root,
        labels_only=args.labels_only,
        out_dir=out,
        counts=counts or None,
        workers=args.workers,
        progress=not args.quiet,
        echo=print,
    )
    _print_prepared(prepared)
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from benchmark.data.download import download, instructions
    from benchmark.paths import default_data_root

    if args.instructions:
        print(instructions(args.corpus))
        return 0
    root = Path(args.data_root).expanduser().resolve() if args.data_root else None
    if root is None:
        root = default_data_root(args.corpus)
    result = download(args.corpus, root, mirror=args.mirror, progress=not args.quiet, echo=print)
    if result.complete:
        print(f"next: mosrm prepare {args.corpus} --data-root {root}")
        return 0
    print(f"when done: mosrm prepare {args.corpus} --data-root {root}  (or --labels-only now)")
    return 3


def cmd_card(args: argparse.Namespace) -> int:
    from benchmark.cards.card import write_card
    from benchmark.data.tasks import workspace_task, workspace_tasks
    from benchmark.pairs.prepare import prepare

    repo = _repo(args)
    if args.all and args.data_root:
        raise MosrmError("--data-root names one corpus: use it with one task, not --all")
    tasks = workspace_tasks(repo) if args.all else {}
    if not args.all:
        if not args.task:
            raise MosrmError("name a task, or give --all")
        tasks = {args.task: workspace_task(repo, args.task)}
    out = Path(args.out) if args.out else repo / "data_cards"
    for name, task in tasks.items():
        root = task.data_root(args.data_root)
        if task.available(root):
            prepared = prepare(task, root, labels_only=args.labels_only, progress=not args.quiet)
            paths = write_card(task, prepared, out)
        else:
            paths = write_card(task, None, out)
            print(f"{name}: data not present at {root}; card has the static parts only")
        for p in paths:
            print(f"wrote {p}")
    return 0


def _print_failed(failed: list[str]) -> None:
    print(
        f"error: {len(failed)} submission failure(s), recorded as <task>.failed.json:",
        file=sys.stderr,
    )
    for line in failed:
        print(f"  {line}", file=sys.stderr)


def _board_out(args: argparse.Namespace, results_root: Path) -> Path:
    """Where the board goes: --out, else the workspace's board/ for its own results, else
    `<results>-board/` beside other results (the checkout's official board: `--out leaderboard`)."""
    if getattr(args, "out", None):
        return Path(args.out)
    if not args.results:
        from benchmark.workspace import Workspace

        return Workspace(_repo(args)).board
    return results_root.with_name(results_root.name + "-board")


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate here, or as `--nproc` torchrun ranks; under torchrun, as this rank (rank 0 prints
    and writes; `benchmark.scoring.sharding`)."""
    import os

    from benchmark.scoring import sharding

    if args.nproc > 1 and not sharding.under_torchrun():
        return sharding.launch(args.nproc, getattr(args, "argv", sys.argv[1:]))
    group = sharding.join_from_env()
    quiet: Any = contextlib.nullcontext()
    if group is not None:
        args.device = sharding.rank_device(args.device, group)
        if not group.main:
            args.quiet = True
            quiet = contextlib.redirect_stdout(open(os.devnull, "w"))
    with sharding.activated(group), quiet:
        status = _evaluate_task(args)
    sharding.leave(group)
    return status


def _results_root(args: argparse.Namespace) -> Path:
    from benchmark.orchestrate import default_results

    return Path(args.results) if args.results else default_results(_repo(args))


def _probe_settings(args: argparse.Namespace) -> Any:
    """`--probes` (evaluate, run) or `mosrm probe`: the subset sizes, else None (no probes)."""
    if not (getattr(args, "probes", False) or getattr(args, "probes_only", False)):
        return None
    from benchmark.probe import ProbeSettings

    if args.probe_full:
        return ProbeSettings(clips=None, pairs=None, bon_n=args.bon_n)
    return ProbeSettings(clips=args.probe_clips, pairs=args.probe_pairs, bon_n=args.bon_n)


def cmd_probe(args: argparse.Namespace) -> int:
    """`mosrm probe SUB --task T`: the probes alone (the plain evaluation is `evaluate`)."""
    args.probes_only = True
    args.model = None
    args.limit = None
    args.min_reliability = None
    args.nproc = 1
    if args.audio:
        return _probe_audio(args)
    return _evaluate_task(args)


def _probe_audio(args: argparse.Namespace) -> int:
    """`mosrm probe SUB --audio DIR`: each submission against degraded copies of the clips."""
    from benchmark.orchestrate import submission_folders
    from benchmark.probe import format_probes, run_probes_on_audio
    from benchmark.scoring.models import load_submission

    repo = _repo(args)
    failed = 0
    for folder in submission_folders(repo, args.submissions):
        submission = load_submission(
            folder, limits=_sandbox_limits(args), unsandboxed=args.unsafe_no_sandbox
        )
        try:
            say(f"probe {submission.name} on {args.audio} …")
            record = run_probes_on_audio(
                submission,
                args.audio,
                results_root=_results_root(args),
                config=_scoring_config(args),
                settings=_probe_settings(args),
            )
            say(textwrap.indent(format_probes(record), "  "))
        except MosrmError as exc:
            print(f"error: {submission.name}: {exc}", file=sys.stderr)
            failed += 1
        finally:
            submission.close()
    return 2 if failed else 0


def _evaluate_all(args: argparse.Namespace, prepared: list[Any], folders: list[Path]) -> list[str]:
    from benchmark.orchestrate import evaluate_submissions

    return evaluate_submissions(
        _repo(args),
        prepared,
        folders,
        _results_root(args),
        _scoring_config(args),
        limits=_sandbox_limits(args),
        unsandboxed=args.unsafe_no_sandbox,
        limit=getattr(args, "limit", None),
        min_reliability=getattr(args, "min_reliability", None),
        probes=_probe_settings(args),
        plain=not getattr(args, "probes_only", False),
        echo=say,
    )


def _evaluate_task(args: argparse.Namespace) -> int:
    from benchmark.orchestrate import prepare_tasks, submission_folders

    repo = _repo(args)
    names = list(dict.fromkeys(args.task))  # repeatable, in the order given, once each
    prepared = prepare_tasks(repo, names, args.data_root, progress=not args.quiet, echo=say)
    missing = [n for n in names if n not in {p.task.name for p in prepared}]
    if missing:
        raise MosrmError(f"task '{missing[0]}' has no data; run `mosrm prepare {missing[0]}` first")
    folders = (
        submission_folders(repo, args.submissions) if args.submissions or not args.model else []
    )
    if args.model:
        from benchmark.templates import hub_submission

        for ref in args.model:
            folder = hub_submission(repo, ref)
            say(f"model {ref}: {folder}")
            folders.append(folder)
    failed = _evaluate_all(args, prepared, folders)
    print(f"results in {_results_root(args)}")
    if failed:
        from benchmark.scoring.sharding import writes_results

        if writes_results():
            _print_failed(failed)
        return 2
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from benchmark.orchestrate import (
        cheapest_first,
        prepare_tasks,
        reference_baselines,
        submission_folders,
        write_board,
    )

    repo = _repo(args)
    failures: dict[str, str] = {}
    spec = None
    tasks = args.tasks
    if args.paper:
        from benchmark.paper import paper_spec

        spec = paper_spec(repo, args.training)
        tasks = tasks or [*spec.in_domain, *spec.out_of_domain]
    elif args.training:
        print("error: --training goes with --paper", file=sys.stderr)
        return 2
    prepared = prepare_tasks(repo, tasks, failures=failures, progress=not args.quiet, echo=say)
    folders = submission_folders(repo, args.submissions)
    if not args.no_reference:
        folders += reference_baselines(
            repo,
            prepared,
            failures,
            args.submissions,
            train=args.train or spec is not None,
            configs=None if spec is None else spec.configs,
            progress=not args.quiet,
            echo=say,
        )
    failed = _evaluate_all(args, prepared, cheapest_first(folders))
    results_root = _results_root(args)
    out = _board_out(args, results_root)
    board = write_board(results_root, out, _sub_roots(repo), echo=say, repo=repo)
    if spec is not None:
        from benchmark.paper import write_paper_table

        path, text = write_paper_table(spec, results_root, out, {p.task.name for p in prepared})
        print("")
        print(text)
        print(f"paper:   {path}")
    print(f"results: {results_root}/<submission>/<task>.json (+ .predictions.parquet)")
    print(f"table:   {board}")
    if failures:
        print(f"error: {len(failures)} task(s) could not be prepared:", file=sys.stderr)
        for name, why in failures.items():
            print(f"  {name}: {why}", file=sys.stderr)
    if failed:
        _print_failed(failed)
    return 2 if failures or failed else 0


def cmd_board(args: argparse.Namespace) -> int:
    from benchmark.orchestrate import write_board

    results_root = _results_root(args)
    repo = _repo(args)
    write_board(results_root, _board_out(args, results_root), _sub_roots(repo), say, repo)
    return 0


def cmd_export_clips(args: argparse.Namespace) -> int:
    """The clips of a task's pairs with their audio here (`benchmark.results.clip_list`)."""
    from benchmark.orchestrate import prepare_tasks
    from benchmark.results.clip_list import export_clips

    prepared = prepare_tasks(
        _repo(args), [args.task], args.data_root, progress=not args.quiet, echo=say
    )
    if not prepared:
        raise MosrmError(f"task '{args.task}' has no data; run `mosrm prepare {args.task}` first")
    out = Path(args.out) if args.out else Path(f"{args.task}-clips.csv")
    n = export_clips(prepared[0], out, args.split)
    print(f"wrote {out} ({n} clips: clip_id, audio_path, sample_rate, system, content, split)")
    print(
        "score them and submit `clip_id,score` as a predictions submission "
        "(`mosrm init NAME --kind predictions`)"
    )
    return 0


def cmd_export_pairs(args: argparse.Namespace) -> int:
    from benchmark.data.tasks import workspace_task, workspace_tasks
    from benchmark.results.export import export_pairs, is_prepared

    repo = _repo(args)
    if args.all == (args.task is not None):
        raise MosrmError("export-pairs: give either one TASK or --all, not both or neither")
    if args.all:
        tasks = []
        for name, task in workspace_tasks(repo).items():
            if is_prepared(task):
                tasks.append(task)
            else:
                print(f"skip {name}: not prepared (run `mosrm prepare {name}` to include it)")
        if not tasks:
            raise MosrmError("export-pairs --all: no task is prepared (run `mosrm prepare TASK`)")
    else:
        tasks = [workspace_task(repo, args.task)]
    written = export_pairs(tasks, args.dir)
    for path in written:
        print(f"wrote {path}")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    """Upload the results and the site as they are on disk (`benchmark.leaderboard.publish`)."""
    from benchmark.data.tasks import workspace_tasks
    from benchmark.leaderboard.publish import (
        check_repo_id,
        default_readme,
        publish,
        publish_manifest,
    )

    repo = _repo(args)
    check_repo_id(args.repo_id)
    if args.model:
        return _publish_model(args)
    results_root = _results_root(args)
    board = _board_out(args, results_root)
    site = Path(args.site) if args.site else board / "site"
    readme = Path(args.readme) if args.readme else default_readme(board, results_root)
    try:
        licenses = {n: t.spec.license for n, t in workspace_tasks(repo).items()}
    except MosrmError:
        licenses = {}  # the card then says `license: other`
    manifest = publish_manifest(
        results_root,
        site,
        readme,
        repo_type=args.repo_type,
        task_licenses=licenses,
        only=args.only,
        exclude=args.exclude,
    )
    for line in manifest.describe(args.repo_id, args.revision):
        print(line)
    if args.dry_run:
        print("dry run: nothing uploaded, no network used")
        return 0
    info = publish(
        manifest,
        args.repo_id,
        args.repo_type,
        revision=args.revision,
        commit_message=args.message or f"mosrm publish: {len(manifest.entries)} files",
    )
    print(f"published: {getattr(info, 'commit_url', info)}")
    return 0


def _publish_model(args: argparse.Namespace) -> int:
    from benchmark.leaderboard.publish import publish
    from benchmark.leaderboard.publish_model import model_manifest

    manifest = model_manifest(args.model)
    for line in manifest.describe(args.repo_id, args.revision):
        print(line)
    if args.dry_run:
        print("dry run: nothing uploaded, no network used")
        return 0
    folder = Path(args.model).name
    info = publish(
        manifest,
        args.repo_id,
        "model",
        revision=args.revision,
        commit_message=args.message or f"mosrm publish --model {folder}",
    )
    print(f"published: {getattr(info, 'commit_url', info)}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate a task YAML, or a submission folder with a smoke run of its model (sandboxed)."""
    target = Path(args.path)
    if target.is_file() and target.suffix in (".yaml", ".yml") and target.name != "submission.yaml":
        from benchmark.data.tasks import load_task_file

        task = load_task_file(target)
        print(f"ok: task '{task.name}' v{task.spec.version} ({target})")
        return 0
    folder = target.parent if target.name == "submission.yaml" else target
    if not target.exists():  # a name: the workspace's submission, then the package's
        from benchmark.orchestrate import submission_folders

        folder = submission_folders(_repo(args), [args.path])[0]
    from benchmark.scoring.models import load_submission
    from benchmark.scoring.smoke import smoke_run

    sub = load_submission(folder, limits=_sandbox_limits(args), unsandboxed=args.unsafe_no_sandbox)
    if sub.spec.kind == "predictions":  # no code to smoke-run: its files against the tasks
        from benchmark.data.tasks import workspace_tasks
        from benchmark.scoring.predictions_file import check_folder

        lines = check_folder(sub, workspace_tasks(_repo(args)))
        print(f"ok: submission '{sub.name}' (predictions, no code runs)")
        for line in lines:
            print(f"  {line}")
        return 0
    try:
        report = smoke_run(sub, batch_size=args.batch_size)
    finally:
        sub.close()
    where = "sandboxed" if sub.sandboxed and not args.unsafe_no_sandbox else "in-process"
    if sub.sandboxed and args.unsafe_no_sandbox:
        where = "UNSANDBOXED"
    print(f"ok: submission '{sub.name}' ({sub.spec.kind}, {where}), fingerprint {sub.fingerprint}")
    print(f"  {report.describe()}")
    return 0


def _data_roots(items: list[str] | None) -> dict[str | None, str]:
    """`--data-root DIR` (every task) and `--data-root TASK=DIR` (one task) as {task|None: DIR}."""
    out: dict[str | None, str] = {}
    for item in items or []:
        task, sep, root = item.partition("=")
        if sep and task and "/" not in task:
            out[task] = root
        else:
            out[None] = item
    return out


def cmd_validate_results(args: argparse.Namespace) -> int:
    """Check a results folder for a results PR (`benchmark.validate_results`); exit 1 on failure."""
    from benchmark.orchestrate import default_results
    from benchmark.pairs.lock import update_lock
    from benchmark.validate_results import validate_results

    repo = _repo(args)
    roots = _data_roots(args.data_root)
    if args.update_lock or args.update_shipped_lock:
        paths, written = update_lock(repo, roots, echo=print, shipped=args.update_shipped_lock)
        where = ", ".join(str(p) for p in paths) or "nothing"
        print(f"wrote {where} ({', '.join(written) or 'no task has data here'})")
        return 0
    results = Path(args.results_dir) if args.results_dir else default_results(repo)
    report = validate_results(
        results,
        repo=repo,
        submissions=args.submissions,
        data_roots=roots,
        allow_unverified=args.allow_unverified,
        echo=print,
        rescore=args.rescore,
        sample=args.sample,
        tolerance=args.tolerance,
    )
    for line in report.lines():
        print(line)
    return 0 if report.ok else 1


def cmd_compare(args: argparse.Namespace) -> int:
    import json

    import pyarrow.parquet as pq

    from benchmark.results.report import format_comparison
    from benchmark.stats.metrics import compare

    results_root = _results_root(args)
    stem = args.task
    flag = ""
    if args.min_reliability is not None:  # both filtered at that threshold: the same file names
        from benchmark.stats.ceiling import filtered_suffix

        stem += filtered_suffix(args.min_reliability)
        flag = f" --min-reliability {args.min_reliability!r}"
    preds = []
    for name in (args.a, args.b):
        path = results_root / name / f"{stem}.predictions.parquet"
        if not path.is_file():
            raise MosrmError(
                f"{path}: no predictions; run `mosrm evaluate {name} --task {args.task}{flag}`"
            )
        preds.append(pq.read_table(path))
    out = compare(preds[0], preds[1], relation=args.relation, confidence=args.confidence)
    if args.json:
        print(json.dumps(out, indent=2, sort_keys=True))
        return 0
    record: dict[str, Any] = {}
    try:
        record = json.loads((results_root / args.a / f"{stem}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass  # the table still prints, with bin numbers only and no ceiling
    if not isinstance(record, dict):
        record = {}
    from benchmark.results.report import filter_banner

    if record.get("reliability_filter"):
        print(filter_banner(record))
    ceiling = record.get("ceiling") if isinstance(record.get("ceiling"), dict) else None
    print(format_comparison(args.a, args.b, args.task, out, record.get("bin_edges"), ceiling))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train a reference baseline from a config; under torchrun every rank runs this."""
    from benchmark.baselines.train import train
    from benchmark.baselines.train_config import load_train_config

    config = load_train_config(args.config)
    repo = _repo(args)
    if args.plan:  # nothing is trained: what would be, and whether its data is here (exit 3: not)
        from benchmark.baselines.plan import format_plan, make_plan

        plan = make_plan(
            config,
            repo,
            micro_run=not args.no_micro_run,
            config_path=args.config,
            progress=not args.quiet,
            echo=lambda text: print(text, file=sys.stderr, flush=True),
        )
        print(format_plan(plan), end="")
        return 3 if plan.not_ready else 0
    if args.no_micro_run:
        raise MosrmError("--no-micro-run goes with --plan")
    out = Path(args.out) if args.out else repo / "submissions" / config.name
    folder = train(config, out, repo=repo, config_path=args.config, progress=not args.quiet)
    if folder is not None:
        import shutil

        from benchmark.baselines.trained import submission_folders

        # finished: nothing left to resume, and a submission folder holds only what it ships
        shutil.rmtree(folder / "checkpoint", ignore_errors=True)
        for written in submission_folders(folder):
            print(f"trained {written.name}: {written} (card: {written / 'card.md'})")
    return 0
