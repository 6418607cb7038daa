"""Shared plumbing for the native-layout readers (BVCC, NISQA, SingMOS, SOMOS, TMHINT-QI, VMC'23).

Each corpus reader describes its layout once (`LAYOUT`, a short verbatim tree) and uses these
helpers so that every failure names the file, the field and the layout the reader expected: a user
who points `--data-root` one folder too high, or at a re-saved CSV with a different header, gets a
message they can act on instead of a KeyError from deep inside `csv`.

Clips a reader deliberately leaves out (BVCC clips whose Blizzard audio was not gathered,
TMHINT-QI clips without a quality score, VMC'23 track-3 `TMHINT_*` lines) are never dropped
silently: the reader records a `Skip` on the returned table (`attach_skips`), and `prepare` prints
the skips and writes them into its manifest and the data card.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, overload

import pyarrow as pa

from benchmark.errors import DataError

SKIPS_KEY = b"mosrm.skipped"
MAX_EXAMPLES = 5


@dataclass(frozen=True)
class Skip:
    """Clips left out for one reason: how many, and a few of their ids as examples."""

    reason: str
    count: int
    examples: tuple[str, ...] = field(default_factory=tuple)
    kept: bool = False
    """True for clips kept but degraded (e.g. no content key, so they only join some relations)."""

    @classmethod
    def of(cls, reason: str, ids: Sequence[str], *, kept: bool = False) -> Skip:
        examples = tuple(sorted(ids)[:MAX_EXAMPLES])
        return cls(reason=reason, count=len(ids), examples=examples, kept=kept)

    def describe(self) -> str:
        shown = ", ".join(self.examples)
        more = ", …" if self.count > len(self.examples) else ""
        verb = "kept with a caveat" if self.kept else "left out"
        return f"{self.count} clip(s) {verb}: {self.reason} (e.g. {shown}{more})"


def attach_skips(table: pa.Table, skips: Sequence[Skip]) -> pa.Table:
    """Record the skips in the table's schema metadata (only non-empty ones)."""
    kept = [asdict(s) for s in skips if s.count > 0]
    for s in kept:
        s["examples"] = list(s["examples"])
    meta = dict(table.schema.metadata or {})
    meta[SKIPS_KEY] = json.dumps(kept, sort_keys=True).encode()
    return table.replace_schema_metadata(meta)


def table_skips(table: pa.Table) -> list[Skip]:
    raw = (table.schema.metadata or {}).get(SKIPS_KEY)
    if not raw:
        return []
    return [
        Skip(
            reason=s["reason"],
            count=int(s["count"]),
            examples=tuple(s["examples"]),
            kept=bool(s.get("kept", False)),
        )
        for s in json.loads(raw)
    ]


def layout_hint(corpus: str, layout: str) -> str:
    return f"expected the native {corpus} layout under the data root:\n{layout.rstrip()}"


def check_root(root: Path, corpus: str, layout: str) -> Path:
    """The data root must be an existing folder."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: data root is not a folder; {layout_hint(corpus, layout)}")
    return root


def require_file(root: Path, rel: str | Path, corpus: str, layout: str, what: str = "") -> Path:
    """`root/rel`, or a DataError naming it, what it is for, and the expected layout."""
    path = Path(root) / rel
    if not path.is_file():
        purpose = f" ({what})" if what else ""
        hint = ""
        nested = sorted(Path(root).glob(f"*/{rel}"))
        if nested:
            hint = f"; found it one level down at {nested[0]}: point the data root there"
        raise DataError(
            f"{path}: missing metadata file{purpose}{hint}; {layout_hint(corpus, layout)}"
        )
    return path


@overload
def read_rows(
    path: Path,
    *,
    corpus: str,
    layout: str,
    header: Sequence[str],
    required: Sequence[str] | None = None,
    delimiter: str = ",",
    skip_blank: bool = True,
) -> Iterator[tuple[int, dict[str, str]]]: ...


@overload
def read_rows(
    path: Path,
    *,
    corpus: str,
    layout: str,
    header: None,
    required: Sequence[str] | None = None,
    delimiter: str = ",",
    skip_blank: bool = True,
) -> Iterator[tuple[int, list[str]]]: ...


def read_rows(
    path: Path,
    *,
    corpus: str,
    layout: str,
    header: Sequence[str] | None,
    required: Sequence[str] | None = None,
    delimiter: str = ",",
    skip_blank: bool = True,
) -> Iterator[tuple[int, dict[str, str] | list[str]]]:
    """Yield (line number, row) from a delimited text file.

    With `header` given, the first line must contain every column of `required` (default: all of
    `header`); rows are dicts. With `header=None` the file has no header line and rows are lists.
    Blank lines are skipped (several corpora end their lists with one).
    """
    try:
        f = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror}") from None
    with f:
        reader = csv.reader(f, delimiter=delimiter)
        names: list[str] | None = None
        if header is not None:
            first = next(reader, None)
            names = [c.strip() for c in (first or [])]
            need = list(required if required is not None else header)
            missing = [c for c in need if c not in names]
            if missing:
                raise DataError(
                    f"{path}: unexpected header (missing column(s) {', '.join(missing)}); "
                    f"found: {delimiter.join(names) or 'an empty file'}; "
                    f"expected: {delimiter.join(header)}; {layout_hint(corpus, layout)}"
                )
        for line, row in enumerate(reader, start=2 if header is not None else 1):
            if skip_blank and (not row or all(not c.strip() for c in row)):
                continue
            if names is None:
                yield line, [c.strip() for c in row]
                continue
            if len(row) < len(names):
                raise DataError(
                    f"{path}:{line}: {len(row)} field(s), the header has {len(names)}; "
                    f"{layout_hint(corpus, layout)}"
                )
            yield line, {n: row[i].strip() for i, n in enumerate(names)}


def parse_float(
    value: str, path: Path, line: int, fieldname: str, layout: tuple[str, str] | None = None
) -> float:
    """A finite float, or a DataError naming file, line and field (and `(corpus, layout)`)."""
    hint = f"; {layout_hint(*layout)}" if layout is not None else ""
    try:
        out = float(value)
    except ValueError:
        raise DataError(
            f"{path}:{line}: field '{fieldname}': '{value}' is not a number{hint}"
        ) from None
    if not math.isfinite(out):
        raise DataError(
            f"{path}:{line}: field '{fieldname}': '{value}' is not a finite number{hint}"
        )
    return out


MEAN_TOLERANCE = 1e-6
"""Published MOS vs the mean of its ratings: float noise only, unless the MOS was printed rounded."""


def printed_tolerance(text: str) -> float:
    """Half a unit of the last printed digit of a published MOS (at least `MEAN_TOLERANCE`).

    Corpora print MOS with whatever precision their scripts used (`3.375`, `4.000000`, `2.86`), so
    a published value can only be expected to equal the ratings' mean up to its own rounding.
    """
    mantissa = text.strip().lower().partition("e")[0]
    decimals = len(mantissa.partition(".")[2])
    if "e" in text.lower() or decimals == 0 or decimals >= 6:
        return MEAN_TOLERANCE
    return max(MEAN_TOLERANCE, 0.5 * 10.0**-decimals + 1e-12)


def mean_agrees(mean: float, published: float, published_text: str) -> bool:
    """Whether the ratings' mean equals a published MOS up to the precision it was printed with."""
    return abs(mean - published) <= printed_tolerance(published_text)


def rating_stats(scores: Sequence[float]) -> tuple[float, int, float | None]:
    """(mean, n, sample std with ddof=1 or None for a single rating) of per-rater scores.

    The sample (n-1) standard deviation is the one the corpora's own `mos_std` columns use.
    """
    n = len(scores)
    mean = math.fsum(scores) / n
    if n < 2:
        return mean, n, None
    var = math.fsum((s - mean) ** 2 for s in scores) / (n - 1)
    return mean, n, math.sqrt(var)


def clip_table(rows: Sequence[Mapping[str, Any]], skips: Sequence[Skip] = ()) -> pa.Table:
    """Rows (dicts with CLIP_SCHEMA column names) → a clip table sorted by clip_id, skips attached."""
    from benchmark.data.tables import CLIP_SCHEMA, from_rows

    ordered = sorted(rows, key=lambda r: r["clip_id"])
    return attach_skips(from_rows(ordered, CLIP_SCHEMA), skips)


LABEL_OPTION = "label_column"
"""The reader option through which a task's `label.column` reaches its reader (`Task.reader_options`)."""


def split_label(
    options: Mapping[str, Any] | None, corpus: str, columns: Sequence[str] | None = ()
) -> tuple[dict[str, Any], str | None]:
    """(the reader's own options, the label column or None for the corpus's overall quality).

    `columns` are the score columns a task may take its label from (None: any, the reader checks
    it against its file); a reader passing none has one score only, so a task asking it for another dimension fails here, clearly, instead of
    silently pairing on quality.
    """
    options = options or {}
    rest = {k: v for k, v in options.items() if k != LABEL_OPTION}
    column = options.get(LABEL_OPTION)
    if column is None:
        return rest, None
    if not isinstance(column, str) or not column:
        raise DataError(
            f"{corpus} reader: option '{LABEL_OPTION}' must be a column name; got {column!r}"
        )
    if columns is not None and column not in columns:
        offered = (
            f"its score columns are {', '.join(columns)}"
            if columns
            else "it has one score, overall quality"
        )
        raise DataError(
            f"{corpus} reader: no score column '{column}' to take a preference label from "
            f"({offered}); drop 'label' from the task, or name one of those"
        )
    return rest, column


def require_columns(path: Path, columns: Sequence[str], what: str, delimiter: str = ",") -> None:
    """One line naming the file and the first of `columns` its header lacks.

    For columns a task chose (its label column), where the reader's usual header error, which
    spells out the whole expected layout, would bury the one name that matters.
    """
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            first = next(csv.reader(f, delimiter=delimiter), [])
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror}") from None
    names = [c.strip() for c in first]
    for column in columns:
        if column not in names:
            raise DataError(
                f"{path}: no column '{column}' ({what}) in the header "
                f"({len(names)} columns: {', '.join(names[:12])}{', …' if len(names) > 12 else ''})"
            )
