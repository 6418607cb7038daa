"""The project's documentation as one text: the README and every page under docs/, for the tests
that tie a documented number to the run or the committed results it comes from."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGES = (REPO / "README.md", *sorted((REPO / "docs").glob("*.md")))


def docs_text() -> str:
    return "\n\n".join(p.read_text(encoding="utf-8") for p in PAGES)
