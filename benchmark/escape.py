"""One escaper for text we did not write (corpus names, submission names) shown in Markdown tables.

Markdown renderers pass inline HTML through and honour link, image and emphasis syntax, so a name
like `![x](http://host/pixel)` or `<script>` would render as something else, and a `|` or a line
break would split a table row. The cards and the board both go through `markdown_cell`.
"""

from __future__ import annotations

import re

_MD_PUNCT = re.compile(r"([\\`*_\[\]|])")


def markdown_cell(text: object) -> str:
    """`text` for one Markdown table cell: one line, no HTML, no Markdown syntax, no `|`."""
    one_line = " ".join(str(text).splitlines())
    html = one_line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_PUNCT.sub(r"\\\1", html)
