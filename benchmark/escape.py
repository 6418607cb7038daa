"""The escapers for text we did not write (corpus names, submission names), one per output format.

Markdown renderers pass inline HTML through and honour link, image and emphasis syntax, so a name
like `![x](http://host/pixel)` or `<script>` would render as something else, and a `|` or a line
break would split a table row. The cards and the board both go through `markdown_cell`.
A submitter's display name is also normalised first (`display_name`): control, zero-width and
bidi-override characters can make one name look like another or reorder the row around it, and a
name thousands of characters long would push every number off the screen.

The site escapes with `html_text` (text and attribute values) and links only what `safe_url`
passes; the CSV export guards each text cell with `csv_cell` (a spreadsheet runs a cell that
starts with `=`, `+`, `-` or `@` as a formula).
"""

from __future__ import annotations

import html
import re
import unicodedata
from urllib.parse import urlsplit

_MD_PUNCT = re.compile(r"([\\`*_\[\]|])")


def markdown_cell(text: object) -> str:
    """`text` for one Markdown table cell: one line, no HTML, no Markdown syntax, no `|`."""
    one_line = " ".join(str(text).splitlines())
    html = one_line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_PUNCT.sub(r"\\\1", html)


def display_name(text: str, limit: int = 80) -> str:
    """`text` as one plain line of at most `limit` characters, for showing a name we did not write.

    Every Unicode "other" character (category C*: controls such as `\\r`, `\\n` and `\\t`, format
    characters such as zero-width spaces and the U+202E bidi override, private-use, unassigned) is
    dropped, control characters that separate words becoming a space; runs of whitespace collapse
    to one space; a longer result is cut to `limit` characters, the last one an ellipsis.
    """
    kept = []
    for ch in str(text):
        if unicodedata.category(ch).startswith("C"):
            kept.append(" " if ch.isspace() else "")
        else:
            kept.append(ch)
    flat = " ".join("".join(kept).split())
    if len(flat) <= limit:
        return flat
    return flat[: max(limit - 1, 0)].rstrip() + "…"


def html_text(text: object) -> str:
    """`text` for HTML element content or a quoted attribute value: `& < > " '` escaped."""
    return html.escape(str(text), quote=True)


def safe_url(url: object) -> str | None:
    """`url` if it is a plain http(s) URL with a host and no whitespace or control characters
    (so it may become an `<a href>`), else None (then it is shown as text only)."""
    text = str(url)
    if any(ch.isspace() or unicodedata.category(ch).startswith("C") for ch in text):
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    return text if parts.scheme in ("http", "https") and parts.netloc else None


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(text: object) -> str:
    """`text` for one CSV text cell: a leading apostrophe where a spreadsheet would start a
    formula (quoting and line breaks are the `csv` module's job)."""
    out = str(text)
    return "'" + out if out.startswith(_FORMULA_START) else out
