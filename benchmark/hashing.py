"""The one file hasher: pair files, submission code and weights, audio all go through it.

One function, so that every SHA-256 the harness records (in results, manifests, locks) is made
the same way, in bounded memory; it never hashes a path's name or metadata, only its bytes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks (OSError propagates to the caller)."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()
