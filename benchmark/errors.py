"""User-facing errors.

Every failure a user can cause (bad data, bad task YAML, bad submission) raises one of these with a
message that names the file and the field, so the CLI can print one line instead of a traceback from
deep inside a library.
"""

from __future__ import annotations


class MosrmError(Exception):
    """An error caused by input the user controls; the CLI prints it without a traceback."""


class DataError(MosrmError):
    """Corpus metadata or audio is missing, malformed or out of range."""


class TaskSpecError(MosrmError):
    """A task YAML is invalid."""


class SubmissionError(MosrmError):
    """A submission folder, its YAML or its model misbehaves."""
