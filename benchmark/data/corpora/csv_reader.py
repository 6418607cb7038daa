"""Generic CSV reader: any listening test becomes a task without code.

The task YAML points at a CSV (one row per clip) and maps its columns:

```yaml
reader: csv
data:
  root: /path/to/my-test        # audio paths in the CSV are relative to this folder
  options:
    file: scores.csv            # relative to root
    columns:                    # our field: your column header
      audio: wav                #   required
      score: mos                #   required; the task's score_range is enforced
      clip_id: id               #   optional; default: the audio path
      system: system            #   optional grouping key (same_system / cross relations)
      content: sentence         #   optional grouping key (same_content / cross relations)
      speaker: speaker          #   optional metadata
      split: split              #   optional; rows without it go to default_split
      n_ratings: votes          #   optional
      rating_std: std           #   optional
    default_split: test
```
Without grouping keys, use the `any` relation.

A task whose `label.column` names a CSV header (reader option `label_column`) takes `mos` from that
column instead of `columns.score` (which it then need not map): one file with several score
columns (e.g. quality and naturalness) gives one task per column. Map `n_ratings` / `rating_std`
to that dimension's columns in the same task's `columns`. A header without the column is a
one-line error naming the file and the column.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pyarrow as pa

from benchmark.data.corpora._native import LABEL_OPTION, split_label
from benchmark.errors import DataError

FIELDS = {
    "audio": "audio_path",
    "score": "mos",
    "clip_id": "clip_id",
    "system": "system_id",
    "content": "content_id",
    "speaker": "speaker_id",
    "split": "split",
    "subset": "subset",
    "n_ratings": "n_ratings",
    "rating_std": "rating_std",
}
REQUIRED = ("audio", "score")
OPTIONS = {"file", "columns", "default_split", "corpus", "delimiter"}


def _options(root: Path, options: dict[str, Any]) -> tuple[Path, dict[str, str], str, str, str]:
    options, label = split_label(options, "csv", None)
    unknown = sorted(set(options) - OPTIONS)
    if unknown:
        raise DataError(
            f"csv reader: unknown option(s) {', '.join(unknown)} (known: {', '.join(sorted(OPTIONS))})"
        )
    if "file" not in options:
        raise DataError(
            "csv reader: option 'file' (the CSV, relative to the data root) is required"
        )
    columns = options.get("columns") or {}
    if not isinstance(columns, dict):
        raise DataError("csv reader: option 'columns' must map our field names to CSV headers")
    bad = sorted(set(columns) - set(FIELDS))
    if bad:
        raise DataError(
            f"csv reader: unknown field(s) {', '.join(bad)} under 'columns' "
            f"(known: {', '.join(FIELDS)})"
        )
    mapping = {"audio": "audio", "score": "score", **{k: str(v) for k, v in columns.items()}}
    if label is not None:
        mapping["score"] = label
    path = Path(options["file"])
    if not path.is_absolute():
        path = root / path
    return (
        path,
        mapping,
        str(options.get("default_split", "test")),
        str(options.get("corpus", root.name)),
        str(options.get("delimiter", ",")),
    )


def _float(value: str, path: Path, line: int, header: str) -> float | None:
    value = value.strip()
    if value == "":
        return None
    try:
        return float(value)
    except ValueError:
        raise DataError(f"{path}:{line}: column '{header}': '{value}' is not a number") from None


class CsvReader:
    name = "csv"

    def available(self, root: Path, options: dict[str, Any]) -> bool:
        try:
            path = _options(root, options)[0]
        except DataError:
            return False
        return path.is_file()

    def read(self, root: Path, options: dict[str, Any], *, labels_only: bool = False) -> pa.Table:
        path, mapping, default_split, corpus, delimiter = _options(root, options)
        labelled = options.get(LABEL_OPTION) is not None
        if not path.is_file():
            raise DataError(f"{path}: CSV not found (option 'file' of the csv reader)")
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f, delimiter=delimiter)
            headers = reader.fieldnames or []
            missing = [
                f"{'label column' if field == 'score' and labelled else field} -> '{col}'"
                for field, col in mapping.items()
                if col not in headers
            ]
            if missing:
                raise DataError(
                    f"{path}: column(s) {', '.join(missing)} not in the header "
                    f"(header: {', '.join(headers) or 'empty'})"
                )
            rows = []
            for line, raw in enumerate(reader, start=2):
                row: dict[str, Any] = {"corpus": corpus, "split": default_split}
                for field, col in mapping.items():
                    value = (raw.get(col) or "").strip()
                    key = FIELDS[field]
                    if field == "score":
                        score = _float(value, path, line, col)
                        if score is None:
                            raise DataError(f"{path}:{line}: column '{col}' (score) is empty")
                        row[key] = score
                    elif field == "rating_std":
                        row[key] = _float(value, path, line, col)
                    elif field == "n_ratings":
                        n = _float(value, path, line, col)
                        row[key] = None if n is None else int(n)
                    elif value:
                        row[key] = value
                    elif field == "audio":
                        raise DataError(f"{path}:{line}: column '{col}' (audio path) is empty")
                row.setdefault("clip_id", row["audio_path"])
                rows.append(row)
        if not rows:
            raise DataError(f"{path}: no data rows")
        from benchmark.data.tables import CLIP_SCHEMA, from_rows

        return from_rows(rows, CLIP_SCHEMA)
