"""The `mosrm` argument parser: every command, its flags and its help, in one declarative table.

Why its own module: the parser is the CLI's documentation (`mosrm CMD --help`), read top to
bottom; the commands it dispatches to are in `benchmark.cli.commands`, the shared flags in
`benchmark.cli.flags`. Building it imports nothing heavy, so `mosrm --help` is instant.
"""

from __future__ import annotations

import argparse

from benchmark import __version__
from benchmark.cli import commands  # by module: a command is looked up when the parser is built
from benchmark.cli.flags import _at_least, min_reliability_flag, probe_flags, sandbox_flags


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mosrm",
        description="Pairwise, ΔMOS-stratified benchmark of speech-quality reward models.",
    )
    parser.add_argument("--version", action="version", version=f"mosrm-bench {__version__}")
    parser.add_argument(
        "--workspace",
        "--repo",  # its name while the package's tasks and submissions sat in the checkout
        dest="repo",
        metavar="DIR",
        help="your folder of submissions/, tasks/, results/ (default: $MOSRM_WORKSPACE, else "
        "the current folder if it has submissions/ or tasks/, else ~/mosrm)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="more detail on stderr (debug messages of the package)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def scoring_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--batch-size", type=_at_least(1), default=16, help="max clips per batch (default 16)"
        )
        p.add_argument(
            "--workers", type=_at_least(0), default=0, help="decoding workers (default 0)"
        )
        p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default auto)")
        p.add_argument("--bf16", action="store_true", help="bf16 autocast on CUDA")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        p.add_argument("--results", help="results folder (default: the workspace's results/)")
        sandbox_flags(p)

    p = sub.add_parser(
        "init",
        help="write a commented submission template (model.py + submission.yaml) that validates "
        "and evaluates as written",
    )
    p.add_argument("name", help="submission name (lower-case letters, digits, '_', '.', '-')")
    p.add_argument(
        "--kind",
        choices=("scalar", "pairwise", "implicit", "predictions"),
        default="scalar",
        help="scalar score per clip (default), pairwise judge, DPO implicit reward, or "
        "predictions computed elsewhere",
    )
    p.add_argument("--out", help="folder to write (default: the workspace's submissions/NAME)")
    p.set_defaults(func=commands.cmd_init)

    p = sub.add_parser("tasks", help="list tasks and whether their data is present")
    p.add_argument("--data-root", help="check this data root instead of each task's own")
    p.set_defaults(func=commands.cmd_tasks)

    p = sub.add_parser("relations", help="print the exact pair-relation definitions")
    p.set_defaults(func=commands.cmd_relations)

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
    p.add_argument("--workers", type=_at_least(1), default=None, help="resampling threads")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=commands.cmd_prepare)

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
    p.set_defaults(func=commands.cmd_download)

    p = sub.add_parser("card", help="write data_cards/<task>.md (+ ΔMOS histogram SVG)")
    p.add_argument("task", nargs="?")
    p.add_argument("--all", action="store_true", help="every task")
    p.add_argument("--data-root", help="corpus folder (default: the task's data.root)")
    p.add_argument("--labels-only", action="store_true", help="from metadata alone")
    p.add_argument("--out", help="folder for the cards (default: data_cards/)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=commands.cmd_card)

    p = sub.add_parser("evaluate", help="evaluate submissions on tasks")
    p.add_argument("submissions", nargs="*", help="submission names or folders (default: all)")
    p.add_argument(
        "--model",
        action="append",
        metavar="hf:ORG/NAME[@REV]",
        help="a Hugging Face audio classifier (its single logit is the score), as a submission "
        "written into the workspace with its revision pinned; runs sandboxed (repeatable)",
    )
    p.add_argument(
        "--task", action="append", required=True, help="a task (repeatable: --task T --task U)"
    )
    p.add_argument(
        "--data-root", help="corpus folder (default: the task's, else the last prepared)"
    )
    p.add_argument(
        "--limit",
        type=_at_least(1),
        metavar="N",
        help="quick run: a seeded subset of N pairs, written as <task>.partial.json, never on "
        "the board",
    )
    p.add_argument(
        "--nproc",
        type=_at_least(1),
        default=1,
        metavar="N",
        help="score with N processes on this machine (torchrun; one per GPU): same results",
    )
    min_reliability_flag(
        p,
        "evaluate only pairs whose label reliability is at least P, in (0.5, 1]; "
        "written as <task>.min-rel-P.json, never on the board",
    )
    p.add_argument(
        "--probes",
        action="store_true",
        help="then the probes (`mosrm probe`): degradation sensitivity, reward-hacking flip rates, "
        "best-of-N gain, written to <results>/<submission>/probes/<task>.json",
    )
    probe_flags(p)
    scoring_flags(p)
    p.set_defaults(func=commands.cmd_evaluate)

    p = sub.add_parser(
        "probe",
        help="will a policy exploit it? degraded copies of test clips (clean must win), "
        "transforms that must not raise the reward (flip rate), best-of-N gain",
    )
    p.add_argument("submissions", nargs="*", help="submission names or folders (default: all)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--task", action="append", help="a task (repeatable: --task T --task U)")
    where.add_argument(
        "--audio",
        metavar="DIR",
        help="instead: a folder of your own clips (no labels: degradation sensitivity only)",
    )
    p.add_argument(
        "--data-root", help="corpus folder (default: the task's, else the last prepared)"
    )
    probe_flags(p)
    scoring_flags(p)
    p.set_defaults(func=commands.cmd_probe)

    p = sub.add_parser("run", help="prepare every task with data, evaluate every submission, table")
    p.add_argument("--tasks", nargs="*", help="restrict to these tasks")
    p.add_argument("--submissions", nargs="*", help="restrict to these submissions")
    ref = p.add_mutually_exclusive_group()
    ref.add_argument(
        "--no-reference",
        "--no-train",  # its name before the reference models were committed
        dest="no_reference",
        action="store_true",
        help="leave the reference baselines out (the committed ones and any trained here)",
    )
    ref.add_argument(
        "--train",
        action="store_true",
        help="train the reference baselines of training/ here (once per config and data, under "
        "$MOSRM_HOME/trained/) and score those copies instead of the committed ones",
    )
    ref.add_argument(
        "--paper",
        action="store_true",
        help="the paper's reference baselines (`make paper`): the tasks the training/paper-*.yaml "
        "configs name (a corpus not present is one line with its download step), each config "
        "trained once per seed here, every submission scored, and paper.md (mean ± sd over "
        "seeds, the literature beside it) written with the board",
    )
    p.add_argument(
        "--probes",
        action="store_true",
        help="after each evaluation, the probes (`mosrm probe`): the robustness tables of the board",
    )
    probe_flags(p)
    p.add_argument(
        "--training",
        metavar="DIR",
        help="with --paper: the folder of the paper-*.yaml configs (default: the workspace's "
        "training/, else the checkout's)",
    )
    p.add_argument(
        "--out",
        help="board folder: README.md and site/ (default: the workspace's board/, or "
        "<results>-board/ beside a --results folder)",
    )
    scoring_flags(p)
    p.set_defaults(func=commands.cmd_run)

    p = sub.add_parser(
        "train",
        help="train a reference baseline from a config (BT or MSE scalar reward model, DPO "
        "implicit reward, GRPO pairwise judge)",
    )
    p.add_argument("config", help="training config YAML (e.g. training/demo-bt.yaml)")
    p.add_argument(
        "--out", help="submission folder to write (default: the workspace's submissions/<name>)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--plan",
        action="store_true",
        help="train nothing: print what the run would read and do (each task present or missing, "
        "with the commands that get it; clips, pairs and audio hours per split; steps per stage "
        "and seed) and an estimate of its time and memory from a few timed steps here. Prepares "
        "present tasks as training would (reused when up to date). Exit status 0, or 3 when a "
        "task's data is missing or unusable",
    )
    p.add_argument(
        "--no-micro-run",
        action="store_true",
        help="with --plan: skip the timed steps (no time or memory estimate)",
    )
    p.set_defaults(func=commands.cmd_train)

    p = sub.add_parser(
        "board",
        help="rebuild the board from the results folder: Markdown, static site, CSV and JSON",
    )
    p.add_argument("--results", help="results folder (default: the workspace's results/)")
    p.add_argument(
        "--out",
        help="board folder: README.md and site/ (default: the workspace's board/, or "
        "<results>-board/ beside a --results folder)",
    )
    p.set_defaults(func=commands.cmd_board)

    p = sub.add_parser(
        "export-clips",
        help="write the clips a task's pairs use, with the absolute paths of the 16 kHz audio "
        "the harness scores (CSV), for a predictions-only submission",
    )
    p.add_argument("task")
    p.add_argument("out", nargs="?", help="CSV to write (default ./<task>-clips.csv)")
    p.add_argument("--split", help="the pairs of this split (default the task's eval split)")
    p.add_argument(
        "--data-root", help="corpus folder (default: the task's, else the last prepared)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=commands.cmd_export_clips)

    p = sub.add_parser(
        "export-pairs",
        help="write prepared pair indices and clip metadata (never audio) as a Parquet dataset "
        "with a dataset card, loadable with `datasets`",
    )
    p.add_argument("task", nargs="?", help="task to export (or --all)")
    p.add_argument("dir", help="export folder (README.md card + <task>/<split>.parquet)")
    p.add_argument("--all", action="store_true", help="every prepared task")
    p.set_defaults(func=commands.cmd_export_pairs)

    p = sub.add_parser(
        "publish",
        help="upload the results and the site (as on disk; run `mosrm board` first) to a "
        "Hugging Face dataset or Space repo, in one commit",
    )
    p.add_argument("--repo-id", required=True, metavar="ORG/NAME", help="an existing Hub repo")
    p.add_argument("--repo-type", choices=("dataset", "space"), default="dataset")
    p.add_argument(
        "--model",
        metavar="FOLDER",
        help="instead: a trained submission folder (e.g. from `mosrm train` or `make paper`) to "
        "an existing Hub model repo: weights, backbone, config and model card; no pickle",
    )
    p.add_argument("--results", help="results folder (default: the workspace's results/)")
    p.add_argument(
        "--site", help="site folder (default: the board's site/, as `mosrm board` wrote it)"
    )
    p.add_argument(
        "--readme",
        help="board Markdown for the repo's README.md (default: the board's README.md, else "
        "<results>/summary.md)",
    )
    p.add_argument("--revision", help="branch to commit to (default main)")
    p.add_argument("--message", help="commit message")
    p.add_argument(
        "--dry-run", action="store_true", help="list the repo and every file; no network"
    )
    p.add_argument(
        "--only", nargs="+", metavar="SUB", help="publish only these submissions' results"
    )
    p.add_argument(
        "--exclude", nargs="+", metavar="SUB", help="publish every submission's but these"
    )
    p.set_defaults(func=commands.cmd_publish)

    p = sub.add_parser(
        "validate", help="validate a task YAML, or a submission with a sandboxed smoke run"
    )
    p.add_argument("path", help="a task YAML, a submission folder, or a submission's name")
    p.add_argument(
        "--batch-size", type=_at_least(1), default=8, help="smoke run batch size (default 8)"
    )
    sandbox_flags(p)
    p.set_defaults(func=commands.cmd_validate)

    p = sub.add_parser(
        "validate-results",
        help="check a results folder (a results PR): schema, run records, predictions against "
        "the metrics and pair files, fingerprints, pair-file hashes",
    )
    p.add_argument(
        "results_dir", nargs="?", help="results folder (default: the workspace's results/)"
    )
    p.add_argument(
        "--submissions",
        help="submission folders (default: the workspace's submissions/, then the package's)",
    )
    p.add_argument(
        "--data-root",
        action="append",
        metavar="[TASK=]DIR",
        help="a task's data root (repeatable; without TASK= for every task)",
    )
    p.add_argument(
        "--allow-unverified",
        action="store_true",
        help="pass files whose fingerprint or pair file cannot be checked here",
    )
    p.add_argument(
        "--update-lock",
        action="store_true",
        help="rewrite the workspace's tasks/pair-files.lock.json for its tasks with data here",
    )
    p.add_argument(
        "--update-shipped-lock",
        action="store_true",
        help="maintainers, in a checkout: the same for the package's own tasks",
    )
    p.add_argument(
        "--rescore",
        action="store_true",
        help="also run each submission again (sandboxed) on a secret random sample of its pairs "
        "and compare with its predictions; files that pass everything enter the re-score "
        "ledger verified.json beside the results folder, the board's 'verified'",
    )
    p.add_argument(
        "--sample",
        type=_at_least(1),
        metavar="N",
        help="with --rescore: pairs re-scored per results file (default 64)",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        help="with --rescore: |re-scored - submitted| allowed per score, absolute and relative "
        "(default 1e-6)",
    )
    p.set_defaults(func=commands.cmd_validate_results)

    p = sub.add_parser("compare", help="paired comparison of two submissions on one task")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--task", required=True)
    p.add_argument("--relation", help="compare on this relation's pairs only (e.g. same_content)")
    p.add_argument("--confidence", type=float, default=0.95, help="interval level (default 0.95)")
    p.add_argument("--json", action="store_true", help="print the machine-readable comparison")
    p.add_argument("--results", help="results folder (default: the workspace's results/)")
    min_reliability_flag(p, "compare the two results filtered at this label reliability")
    p.set_defaults(func=commands.cmd_compare)
    return parser
