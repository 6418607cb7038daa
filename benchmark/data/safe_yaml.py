"""The one YAML loader for files users hand us (task YAMLs, `submission.yaml`).

`yaml.safe_load` never builds Python objects, but it still lets a stranger's file hurt whoever runs
it: aliases share nodes, so a 1 KB "billion laughs" document expands to gigabytes once pydantic or
a fingerprint walks it; deep nesting overflows the composer's recursion; a duplicate key silently
keeps the last value; bad bytes or syntax end in a multi-line traceback. This loader keeps
safe_load's semantics for ordinary files and refuses, with one line naming the file, everything
else. Limits (each error names the one hit):

* `MAX_BYTES` on the file, checked before parsing (only `MAX_BYTES + 1` bytes are ever read);
* `MAX_NODES` nodes and `MAX_BYTES` characters of scalar text counted *as if every alias were
  expanded*, so anchors and merge keys stay usable but cannot amplify; an alias to an anchor still
  being read (a recursive structure) is refused;
* `MAX_DEPTH` levels of nesting;
* a key repeated in one mapping, at any depth (keys brought in by a `<<` merge may be overridden,
  as YAML defines);
* text that is not UTF-8 (a UTF-8 byte-order mark is accepted and dropped).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.nodes import MappingNode, Node, ScalarNode

from benchmark.errors import MosrmError
from benchmark.escape import display_name

MAX_BYTES = 1 << 20
"""Largest YAML file read (1 MiB); also the cap on scalar text after alias expansion."""
MAX_NODES = 10_000
"""Most nodes (scalars, lists, mappings, keys included) after alias expansion."""
MAX_DEPTH = 50
"""Deepest nesting of lists and mappings."""

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Refused(yaml.YAMLError):
    """A limit was hit; the message is complete (no marks to add)."""


class _Loader(yaml.SafeLoader):
    """SafeLoader counting what the document would be with every alias expanded."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._nodes = 0  # expanded nodes so far
        self._chars = 0  # expanded scalar characters so far
        self._depth = 0
        self._sizes: dict[str, tuple[int, int]] = {}  # anchor -> its expanded (nodes, chars)

    def _add(self, nodes: int, chars: int) -> None:
        self._nodes += nodes
        self._chars += chars
        if self._nodes > MAX_NODES:
            raise _Refused(
                f"more than {MAX_NODES} YAML nodes (aliases counted as expanded); "
                "is this an alias bomb?"
            )
        if self._chars > MAX_BYTES:
            raise _Refused(
                f"more than {MAX_BYTES} characters of text once aliases are expanded; "
                "is this an alias bomb?"
            )

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            if event.anchor in self.anchors:
                if event.anchor not in self._sizes:
                    raise ComposerError(
                        None, None, f"alias *{event.anchor} refers to itself", event.start_mark
                    )
                self._add(*self._sizes[event.anchor])
            return super().compose_node(parent, index)  # an undefined alias fails here
        event = self.peek_event()
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise ComposerError(
                None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark
            )
        nodes, chars = self._nodes, self._chars
        node = super().compose_node(parent, index)
        self._depth -= 1
        self._add(1, len(node.value) if isinstance(node, ScalarNode) else 0)
        if event.anchor is not None:
            self._sizes[event.anchor] = (self._nodes - nodes, self._chars - chars)
        return node

    # PyYAML passes the anchor here; types-PyYAML's stub says a dict of nodes
    def compose_mapping_node(self, anchor: str | None) -> MappingNode:  # type: ignore[override]
        node = super().compose_mapping_node(anchor)  # type: ignore[arg-type]
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE_TAG:
                continue  # non-scalar keys are refused as unhashable when constructed
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in first:
                shown = display_name(str(key_node.value), 60)  # no terminal escapes
                raise ComposerError(
                    None,
                    None,
                    f"duplicate key '{shown}' (first at line {first[key]})",
                    key_node.start_mark,
                )
            first[key] = line
        return node


def _line_of(data: bytes | str, offset: int) -> int:
    if isinstance(data, bytes):
        return data[:offset].count(b"\n") + 1
    return data[:offset].count("\n") + 1


def _describe(exc: yaml.YAMLError, text: str) -> str:
    """One line for a PyYAML error: where, what, and the context PyYAML gives."""
    if isinstance(exc, _Refused):
        return f"refused: {exc}"
    if isinstance(exc, yaml.reader.ReaderError):
        return (
            f"not valid YAML: line {_line_of(text, exc.position)}: character "
            f"U+{exc.character:04X} is not allowed in YAML"
        )
    if isinstance(exc, yaml.MarkedYAMLError):
        mark, cmark = exc.problem_mark or exc.context_mark, exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = display_name(str(exc.problem or "error"), 200)  # tags may carry %1B escapes
        context = ""
        if exc.context:
            at = f" at line {cmark.line + 1}" if cmark and mark and cmark.line != mark.line else ""
            context = f" ({display_name(exc.context, 200)}{at})"
        return f"not valid YAML: {where}{problem}{context}"
    return f"not valid YAML: {display_name(str(exc), 200)}"


def load_yaml(path: str | Path, error: type[MosrmError]) -> Any:
    """The YAML document in `path`, like `yaml.safe_load`, within the limits above.

    Every failure (unreadable, too large, not UTF-8, bad YAML, a limit hit) raises `error` with one
    line that starts with the path.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise error(
            f"{path}: refused: larger than {MAX_BYTES} bytes (a hand-written YAML is small)"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(
            f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} on line "
            f"{_line_of(data, exc.start)}); save the file as UTF-8"
        ) from None
    try:
        loader = _Loader(text)  # the reader rejects non-printable characters right here
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise error(f"{path}: {_describe(exc, text)}") from None
