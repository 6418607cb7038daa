"""`mosrm`: the command line (`python -m benchmark.cli` works too). Heavy modules are imported
inside each command, so start-up is instant.

The only layer besides the orchestration's echo that writes to the terminal: library modules log
(`benchmark.progress` routes their messages here while a command runs). Errors the user can fix
(`MosrmError`) print one line naming the file/field and exit with status 2. The parser is in
`cli.parser`, the commands in `cli.commands`, the flags they share in `cli.flags`.
"""

from __future__ import annotations

import contextlib
import sys

from benchmark.cli.parser import build_parser
from benchmark.errors import MosrmError


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    finally:
        # the score cache a command kept open (`benchmark.scoring.cache`), closed before returning,
        # so that what a caller does to the file next (copy, delete, damage in a test) meets no
        # open connection; not imported here if the command never opened it
        cache = sys.modules.get("benchmark.scoring.cache")
        if cache is not None:
            cache.release()


def _logging(*, verbose: bool, quiet: bool) -> contextlib.AbstractContextManager[None]:
    """Where the package's messages go while a command runs (`benchmark.progress`): stderr, a
    step's start and end as lines where stderr is not a terminal (bars where it is); `--quiet`
    keeps warnings only and silences the bars of the libraries underneath too; `-v` adds debug
    messages."""
    import logging

    from benchmark import progress

    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    return progress.to_terminal(level, silent=quiet)


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for `evaluate --nproc` (torchrun)
    try:
        with _logging(verbose=args.verbose, quiet=bool(getattr(args, "quiet", False))):
            return int(args.func(args))
    except MosrmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `mosrm compare … | head`: the reader left, nothing went wrong
        # (caught before OSError, its parent class, or that clause would re-raise it)
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # a full disk outside the atomic writer (which names its own file)
        from benchmark.errors import NO_SPACE, no_space

        if exc.errno not in NO_SPACE:
            raise
        print(f"error: {no_space(exc.filename or 'a file')}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: scores computed so far are cached; rerun to resume", file=sys.stderr)
        return 130
