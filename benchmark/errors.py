"""User-facing errors.

Every failure a user can cause (bad data, bad task YAML, bad submission) raises one of these with a
message that names the file and the field, so the CLI can print one line instead of a traceback from
deep inside a library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchmark.escape import display_name

if TYPE_CHECKING:
    from pydantic import ValidationError


class MosrmError(Exception):
    """An error caused by input the user controls; the CLI prints it without a traceback."""


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
