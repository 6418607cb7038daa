"""User-facing errors.

Every failure a user can cause (bad data, bad task YAML, bad submission) raises one of these with a
message that names the file and the field, so the CLI can print one line instead of a traceback from
deep inside a library.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from typing import TYPE_CHECKING

from benchmark.escape import display_name

if TYPE_CHECKING:
    from pydantic import ValidationError


class MosrmError(Exception):
    """An error caused by input the user controls; the CLI prints it without a traceback."""


class MachineError(MosrmError):
    """The machine running the harness failed (disk full, a corrupt or busy score cache), not the
    user's input: the run stops at once, and nothing is recorded against a submission or a task."""


NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
"""errno values of a full disk or an exhausted quota."""


def no_space(path: object) -> MachineError:
    """The one message for a full disk (or quota) while writing `path`."""
    return MachineError(
        f"no space left on device while writing {path}: free some space and rerun "
        "(files written before are unchanged)"
    )


class DataError(MosrmError):
    """Corpus metadata or audio is missing, malformed or out of range."""


class TaskSpecError(MosrmError):
    """A task YAML is invalid."""


class SubmissionError(MosrmError):
    """A submission folder, its YAML or its model misbehaves."""


def describe_validation_error(exc: ValidationError) -> str:
    """One line per pydantic error, naming the dotted field; unknown keys read 'unknown key'."""
    parts = []
    for err in exc.errors():
        loc = display_name(".".join(str(p) for p in err["loc"]), 100) or "(top level)"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"field '{loc}': {msg}")
    return "; ".join(parts)


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """' (did you mean 'demo'?)' for a close known name, else '': a typo should cost one glance."""
    import difflib

    close = difflib.get_close_matches(name, sorted(known), n=2, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(f"'{c}'" for c in close) + "?)"


def first_line(exc: BaseException, limit: int = 300) -> str:
    """`Type: the first line of its message` (cut to `limit`): what a library's multi-line
    exception contributes to a one-line error."""
    text = (str(exc).strip().splitlines() or [""])[0][:limit]
    return f"{type(exc).__name__}: {text}"
