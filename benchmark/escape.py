"""The escapers for text we did not write (corpus names, submission names), one per output format.

Markdown renderers pass inline HTML through and honour link, image and emphasis syntax, so a name
like `![x](http://host/pixel)` or `<script>` would render as something else, and a `|` or a line
break would split a table row. The cards and the board both go through `markdown_cell`; prose
written in a task's YAML (descriptions, notes) keeps its Markdown but not raw HTML
(`markdown_prose`).
A submitter's display name is also normalised first (`display_name`): control, zero-width and
bidi-override characters can make one name look like another or reorder the row around it, and a
name thousands of characters long would push every number off the screen.

The site escapes with `html_text` (text and attribute values) and links only what `safe_url`
passes; the CSV export guards each text cell with `csv_cell` (a spreadsheet runs a cell that
starts with `=`, `+`, `-` or `@` as a formula), the LaTeX tables each name with `latex_text`.
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


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")
_AUTOLINK = re.compile(r"<(?:https?://|mailto:)[^<>\s]*>")


def _escape_lt(text: str) -> str:
    out, pos = [], 0
    for m in _AUTOLINK.finditer(text):
        out += [text[pos : m.start()].replace("<", "&lt;"), m.group(0)]
        pos = m.end()
    return "".join([*out, text[pos:].replace("<", "&lt;")])


def markdown_prose(text: object) -> str:
    """Prose from a YAML file (a data card's description, notes) for Markdown: its formatting is
    kept, raw HTML is not.

    Every `<` that could open a tag becomes `&lt;`, except inside code spans and fenced code blocks
    (where GitHub shows text literally, so `&lt;` would appear as such) and in `<https://…>`
    autolinks. That is enough to stop `<script>` or `<img onerror=…>` in a description or a note.
    """
    out: list[str] = []
    fence: str | None = None
    for line in str(text).split("\n"):
        m = _FENCE.match(line)
        if fence is not None:
            out.append(line)
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = None if not line.strip().strip(fence[0]) else fence
            continue
        if m:
            fence = m.group(1)
            out.append(_escape_lt(line))
            continue
        parts, pos = [], 0
        for span in _CODE_SPAN.finditer(line):
            parts += [_escape_lt(line[pos : span.start()]), span.group(0)]
            pos = span.end()
        out.append("".join([*parts, _escape_lt(line[pos:])]))
    if fence is not None:  # an unclosed fence would turn the rest of the card into code
        out.append(fence)
    return "\n".join(out)


_LATEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "Δ": r"$\Delta$",
    "–": "--",
    "≤": r"$\leq$",
    "≥": r"$\geq$",
}


def latex_text(text: object) -> str:
    """`text` as LaTeX text: one line, every character LaTeX would read as markup escaped (a
    name cannot run a macro in a paper's table)."""
    one_line = " ".join(str(text).splitlines())
    return "".join(_LATEX.get(ch, ch) for ch in one_line)
