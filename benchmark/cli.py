"""`mosrm`: the command line. Heavy modules are imported inside each command, so start-up is instant.

Errors the user can fix (`MosrmError`) print one line naming the file/field and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from benchmark import __version__
from benchmark.errors import MosrmError


def _repo(args: argparse.Namespace) -> Path:
    from benchmark.paths import repo_root

    return Path(args.repo).resolve() if args.repo else repo_root()


def _scoring_config(args: argparse.Namespace) -> Any:
    from benchmark.scoring import ScoringConfig

    return ScoringConfig(
        max_batch_size=args.batch_size,
        num_workers=args.workers,
        device=args.device,
        bf16=args.bf16,
        progress=not args.quiet,
    )


def cmd_tasks(args: argparse.Namespace) -> int:
    from benchmark.tasks import load_tasks

    tasks = load_tasks(_repo(args) / "tasks")
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
    from benchmark.pairs import RELATION_DEFINITIONS

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
        if value != "all":
            try:
                value = int(value)
            except ValueError:
                raise MosrmError(f"--pairs {item}: count must be an integer or 'all'") from None
            if value < 0:
                raise MosrmError(f"--pairs {item}: count must be >= 0")
        out.setdefault(split, {})[rel] = value
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

    from benchmark.paths import prepared_dir
    from benchmark.pipeline import prepare
    from benchmark.tasks import get_task

    task = get_task(_repo(args) / "tasks", args.task)
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
    from benchmark.download import download, instructions
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
    from benchmark.cards import write_card
    from benchmark.pipeline import prepare
    from benchmark.tasks import get_task, load_tasks

    repo = _repo(args)
    if args.all and args.data_root:
        raise MosrmError("--data-root names one corpus: use it with one task, not --all")
    tasks = load_tasks(repo / "tasks") if args.all else {}
    if not args.all:
        if not args.task:
            raise MosrmError("name a task, or give --all")
        tasks = {args.task: get_task(repo / "tasks", args.task)}
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


def _prepare_all(
    args: argparse.Namespace,
    names: list[str] | None,
    data_root: str | None = None,
    failures: dict[str, str] | None = None,
) -> list[Any]:
    """Prepare each named task (all by default) whose data is found.

    The data root is `data_root` when given, else the task's own root, else the root the task was
    last prepared from (so `mosrm prepare T --data-root D` once is enough for later runs). A task
    prepared before from unchanged inputs is reused, not rebuilt.
    With `failures` given, a task whose data is broken is recorded there and the others go on.
    """
    from benchmark.pipeline import last_data_root, prepare
    from benchmark.tasks import load_tasks

    tasks = load_tasks(_repo(args) / "tasks")
    if names:
        unknown = sorted(set(names) - set(tasks))
        if unknown:
            raise MosrmError(f"unknown task(s): {', '.join(unknown)} (known: {', '.join(tasks)})")
    prepared = []
    for name, task in tasks.items():
        if names and name not in names:
            continue
        if data_root is not None:
            candidates = [task.data_root(data_root)]
        else:
            candidates = [task.data_root(None)]
            last = last_data_root(task)
            if last is not None and last not in candidates:
                candidates.append(last)
        root = next((r for r in candidates if task.available(r)), None)
        if root is None:
            print(f"skip {name}: data not present at {candidates[0]} (see `mosrm tasks`)")
            continue
        print(f"prepare {name} …", flush=True)
        try:
            prepared.append(prepare(task, root, progress=not args.quiet, echo=print, reuse=True))
        except MosrmError as exc:
            if failures is None:
                raise
            failures[name] = str(exc)
            print(f"error: {name}: {exc}\n  (going on with the other tasks)", file=sys.stderr)
    return prepared


def _submission_folders(args: argparse.Namespace, names: list[str] | None) -> list[Path]:
    from benchmark.models import discover_submissions

    root = _repo(args) / "submissions"
    folders = discover_submissions(root)
    if names:
        chosen = []
        for n in names:
            p = Path(n)
            folder = p if p.is_dir() else root / n
            if not (folder / "submission.yaml").is_file():
                raise MosrmError(f"no submission '{n}' (looked for {folder}/submission.yaml)")
            chosen.append(folder)
        return chosen
    return folders


def _evaluate_all(args: argparse.Namespace, prepared: list[Any], folders: list[Path]) -> Path:
    import textwrap

    from benchmark.models import load_submission
    from benchmark.pipeline import evaluate
    from benchmark.report import format_result

    results_root = Path(args.results) if args.results else _repo(args) / "leaderboard" / "results"
    config = _scoring_config(args)
    for folder in folders:
        submission = load_submission(folder)
        for p in prepared:
            print(f"evaluate {submission.name} on {p.task.name} …", flush=True)
            r = evaluate(submission, p, results_root=results_root, config=config)
            print(textwrap.indent(format_result(r), "  "))
    return results_root


def _write_board(results_root: Path) -> Path:
    from benchmark.atomic import atomic_write_text
    from benchmark.leaderboard.board import render_markdown

    text = render_markdown(results_root)
    out = results_root / "summary.md"
    atomic_write_text(out, text)
    print()
    print(text)
    return out


def cmd_evaluate(args: argparse.Namespace) -> int:
    prepared = _prepare_all(args, [args.task], args.data_root)
    if not prepared:
        raise MosrmError(f"task '{args.task}' has no data; run `mosrm prepare {args.task}` first")
    results_root = _evaluate_all(args, prepared, _submission_folders(args, args.submissions))
    print(f"results in {results_root}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    failures: dict[str, str] = {}
    prepared = _prepare_all(args, args.tasks, failures=failures)
    folders = _submission_folders(args, args.submissions)
    results_root = _evaluate_all(args, prepared, folders)
    board = _write_board(results_root)
    print(f"results: {results_root}/<submission>/<task>.json (+ .predictions.parquet)")
    print(f"table:   {board}")
    if failures:
        print(f"error: {len(failures)} task(s) could not be prepared:", file=sys.stderr)
        for name, why in failures.items():
            print(f"  {name}: {why}", file=sys.stderr)
        return 2
    return 0


def cmd_board(args: argparse.Namespace) -> int:
    results_root = Path(args.results) if args.results else _repo(args) / "leaderboard" / "results"
    _write_board(results_root)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate a submission folder or a task YAML without scoring anything."""
    target = Path(args.path)
    if target.is_file() and target.suffix in (".yaml", ".yml") and target.name != "submission.yaml":
        from benchmark.tasks import load_task_file

        task = load_task_file(target)
        print(f"ok: task '{task.name}' v{task.spec.version} ({target})")
        return 0
    folder = target.parent if target.name == "submission.yaml" else target
    from benchmark.models import load_submission

    sub = load_submission(folder)
    print(f"ok: submission '{sub.name}' ({sub.spec.kind}), fingerprint {sub.fingerprint}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    import json

    import pyarrow.parquet as pq

    from benchmark.metrics import compare
    from benchmark.report import format_comparison

    results_root = Path(args.results) if args.results else _repo(args) / "leaderboard" / "results"
    preds = []
    for name in (args.a, args.b):
        path = results_root / name / f"{args.task}.predictions.parquet"
        if not path.is_file():
            raise MosrmError(
                f"{path}: no predictions; run `mosrm evaluate {name} --task {args.task}`"
            )
        preds.append(pq.read_table(path))
    out = compare(preds[0], preds[1], relation=args.relation, confidence=args.confidence)
    if args.json:
        print(json.dumps(out, indent=2, sort_keys=True))
        return 0
    edges = None
    record = results_root / args.a / f"{args.task}.json"
    try:
        edges = json.loads(record.read_text(encoding="utf-8")).get("bin_edges")
    except (OSError, ValueError):
        pass  # the table still prints, with bin numbers only
    print(format_comparison(args.a, args.b, args.task, out, edges))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mosrm",
        description="Pairwise, ΔMOS-stratified benchmark of speech-quality reward models.",
    )
    parser.add_argument("--version", action="version", version=f"mosrm-bench {__version__}")
    parser.add_argument(
        "--repo", help="checkout with tasks/, submissions/, leaderboard/ (default: cwd)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def scoring_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--batch-size", type=int, default=16, help="max clips per batch (default 16)"
        )
        p.add_argument("--workers", type=int, default=0, help="decoding workers (default 0)")
        p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default auto)")
        p.add_argument("--bf16", action="store_true", help="bf16 autocast on CUDA")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        p.add_argument("--results", help="results folder (default leaderboard/results)")

    p = sub.add_parser("tasks", help="list tasks and whether their data is present")
    p.add_argument("--data-root", help="check this data root instead of each task's own")
    p.set_defaults(func=cmd_tasks)

    p = sub.add_parser("relations", help="print the exact pair-relation definitions")
    p.set_defaults(func=cmd_relations)

    p = sub.add_parser(
        "prepare", help="read, validate, resample to 16 kHz once and build the pair files"
    )
    p.add_argument("task")
    p.add_argument("--data-root", help="corpus folder (default: the task's data.root)")
    p.add_argument(
        "--labels-only", action="store_true", help="pairs from metadata alone (no audio needed)"
    )
    p.add_argument(
        "--pairs",
        action="append",
        metavar="SPLIT.RELATION=N|all",
        help="override a pair count (repeatable); custom pair sets go to their own folder",
    )
    p.add_argument(
        "--full-pool", action="store_true", help="every valid pair of every split and relation"
    )
    p.add_argument("--out", help="folder for the pair files (default: the task's prepared folder)")
    p.add_argument("--workers", type=int, default=None, help="resampling threads")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("download", help="fetch a corpus (or print the manual steps) into a root")
    p.add_argument("corpus", help="bvcc | nisqa | singmos | somos | tmhint_qi | vmc23")
    p.add_argument("--data-root", help="where the corpus goes (default: the task's data root)")
    p.add_argument(
        "--mirror", help="base URL replacing every source's origin: <mirror>/<corpus>/<file>"
    )
    p.add_argument(
        "--instructions", action="store_true", help="print the manual steps and layout only"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("card", help="write data_cards/<task>.md (+ ΔMOS histogram SVG)")
    p.add_argument("task", nargs="?")
    p.add_argument("--all", action="store_true", help="every task")
    p.add_argument("--data-root", help="corpus folder (default: the task's data.root)")
    p.add_argument("--labels-only", action="store_true", help="from metadata alone")
    p.add_argument("--out", help="folder for the cards (default: data_cards/)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_card)

    p = sub.add_parser("evaluate", help="evaluate submissions on one task")
    p.add_argument("submissions", nargs="*", help="submission names or folders (default: all)")
    p.add_argument("--task", required=True)
    p.add_argument(
        "--data-root", help="corpus folder (default: the task's, else the last prepared)"
    )
    scoring_flags(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("run", help="prepare every task with data, evaluate every submission, table")
    p.add_argument("--tasks", nargs="*", help="restrict to these tasks")
    p.add_argument("--submissions", nargs="*", help="restrict to these submissions")
    scoring_flags(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("board", help="rebuild the Markdown table from the results folder")
    p.add_argument("--results", help="results folder (default leaderboard/results)")
    p.set_defaults(func=cmd_board)

    p = sub.add_parser("validate", help="validate a submission folder or a task YAML")
    p.add_argument("path")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("compare", help="paired comparison of two submissions on one task")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--task", required=True)
    p.add_argument("--relation", help="compare on this relation's pairs only (e.g. same_content)")
    p.add_argument("--confidence", type=float, default=0.95, help="interval level (default 0.95)")
    p.add_argument("--json", action="store_true", help="print the machine-readable comparison")
    p.add_argument("--results", help="results folder (default leaderboard/results)")
    p.set_defaults(func=cmd_compare)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except MosrmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: scores computed so far are cached; rerun to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `mosrm compare … | head`: the reader left, nothing went wrong
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
