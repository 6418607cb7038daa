"""NISQA Corpus (Mittag et al., Interspeech 2021): seven listening-test databases, one clip table.

The data root is the unzipped `NISQA_Corpus/` folder:

```
NISQA_Corpus/
  NISQA_corpus_file.csv  NISQA_corpus_con.csv
  NISQA_TRAIN_SIM/ NISQA_TRAIN_LIVE/ NISQA_VAL_SIM/ NISQA_VAL_LIVE/
  NISQA_TEST_FOR/ NISQA_TEST_P501/ NISQA_TEST_LIVETALK/
      <DB>_file.csv  <DB>_con.csv  deg/*.wav  (ref/*.wav in SIM sets)  readme.txt
```

Each database is read from its own `<DB>/<DB>_file.csv` rather than the combined
`NISQA_corpus_file.csv`, so a user who unpacked only some databases (e.g. without the
non-commercial test sets) can still select the others with `dbs`. Of the 52 columns only `db, con,
filename_deg, filename_ref, votes, mos, mos_std, filepath_deg` are required, so a re-saved file
that dropped the per-dimension columns still reads.

Splits follow the database name: `NISQA_TRAIN_*` → train, `NISQA_VAL_*` → dev, `NISQA_TEST_*` →
test. Per clip:

- `clip_id` = `<db>/<filename_deg without .wav>`: file names are unique only within a database.
- `system_id` = `<db>:<con>`: condition numbers restart at 1 in every database, so `con` alone would
  put unrelated conditions of different listening tests into one system group.
- `content_id` = `filename_ref` (the clean reference the condition was applied to); null where it is
  empty or NaN, as in the LIVE databases, whose clips were recorded live without a reference. Those
  clips still join same-system and cross pairs; they are reported as a kept-with-caveat skip.
- `audio_path` = `filepath_deg`, relative to the data root; backslashes are normalised to `/` and the
  path must lie inside the clip's database folder.
- `n_ratings` = `votes`, `rating_std` = `mos_std` (the corpus's sample standard deviation). The
  corpus publishes no per-rating rows, so `ratings` stays null.
- `speaker_id` and `sample_rate` stay null: no column names the talker cleanly, and the files are
  48 kHz but `prepare` probes the real rate.

Label column (option `label_column`, set by a task's `label.column`): `noi`, `col`, `dis` or
`loud` (noisiness, coloration, discontinuity, loudness; 1–5, higher = better, like `mos`) takes
`mos` from that column and `rating_std` from `<column>_std`; `n_ratings` stays `votes` (each
listener rated every dimension of a clip). A file list without the column (or its `_std`) is a
one-line error naming the file and the column; a clip whose cell is empty is left out and recorded
as a skip. `mos` (the default) is overall quality.

Options (task YAML `data.options`):

- `dbs`: list of database folder names to read (default: all seven). A selected database whose
  folder or file list is missing is an error naming it.
- `pair_within_db` (bool, default false): set `subset` = the database name, so pairs never cross
  databases. Each database was a separate listening test, whose MOS are not strictly comparable;
  the paper nevertheless pairs anywhere within a split, hence the default.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa

from benchmark.data.corpora._native import (
    Skip,
    check_root,
    clip_table,
    parse_float,
    read_rows,
    require_columns,
    require_file,
    split_label,
)
from benchmark.errors import DataError

CORPUS = "nisqa"

LAYOUT = """\
NISQA_Corpus/
  NISQA_corpus_file.csv  NISQA_corpus_con.csv
  NISQA_TRAIN_SIM/ NISQA_TRAIN_LIVE/ NISQA_VAL_SIM/ NISQA_VAL_LIVE/
  NISQA_TEST_FOR/ NISQA_TEST_P501/ NISQA_TEST_LIVETALK/
      <DB>_file.csv  <DB>_con.csv  deg/*.wav  (ref/*.wav in SIM sets)  readme.txt
"""

DBS: tuple[str, ...] = (
    "NISQA_TRAIN_SIM",
    "NISQA_TRAIN_LIVE",
    "NISQA_VAL_SIM",
    "NISQA_VAL_LIVE",
    "NISQA_TEST_FOR",
    "NISQA_TEST_P501",
    "NISQA_TEST_LIVETALK",
)

SPLIT_BY_PREFIX: tuple[tuple[str, str], ...] = (
    ("NISQA_TRAIN_", "train"),
    ("NISQA_VAL_", "dev"),
    ("NISQA_TEST_", "test"),
)

HEADER: tuple[str, ...] = tuple(
    "db,con,file,con_description,filename_deg,filename_ref,source,lang,votes,mos,noi,col,dis,loud,"
    "noi_std,col_std,dis_std,loud_std,mos_std,filepath_deg,filepath_ref,filter,timeclipping,wbgn,"
    "p50mnru,bgn,clipping,arb_filter,asl_in,asl_out,codec1,codec2,codec3,plcMode1,plcMode2,plcMode3,"
    "wbgn_snr,bgn_snr,tc_fer,tc_nburst,cl_th,bp_low,bp_high,p50_q,bMode1,bMode2,bMode3,FER1,FER2,"
    "FER3,asl_in_level,asl_out_level".split(",")
)
"""The full `<DB>_file.csv` header, shown in errors as the expected layout."""

REQUIRED: tuple[str, ...] = (
    "db",
    "con",
    "filename_deg",
    "filename_ref",
    "votes",
    "mos",
    "mos_std",
    "filepath_deg",
)

OPTIONS = ("dbs", "pair_within_db")
QUALITY = "mos"
LABEL_COLUMNS: tuple[str, ...] = (QUALITY, "noi", "col", "dis", "loud")
"""Score columns a task may take its label from (`label_column`); overall quality is the default."""

MISSING_VALUES = frozenset({"", "nan", "na", "none", "null"})
"""How pandas-written CSVs spell an empty cell (case-insensitive)."""


def _options(options: dict[str, Any]) -> tuple[tuple[str, ...], bool, str]:
    options, column = split_label(options, CORPUS, LABEL_COLUMNS)
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise DataError(
            f"nisqa reader: unknown option(s) {', '.join(unknown)} (known: {', '.join(OPTIONS)})"
        )
    dbs = options.get("dbs", DBS)
    if isinstance(dbs, str):
        dbs = [dbs]
    if not isinstance(dbs, list | tuple) or not dbs or not all(isinstance(d, str) for d in dbs):
        raise DataError(
            f"nisqa reader: option 'dbs' must be a non-empty list of database names "
            f"(known: {', '.join(DBS)}); got {dbs!r}"
        )
    bad = [d for d in dbs if d not in DBS]
    if bad:
        raise DataError(
            f"nisqa reader: option 'dbs': unknown database(s) {', '.join(bad)} "
            f"(known: {', '.join(DBS)})"
        )
    within = options.get("pair_within_db", False)
    if not isinstance(within, bool):
        raise DataError(
            f"nisqa reader: option 'pair_within_db' must be true or false; got {within!r}"
        )
    return tuple(dict.fromkeys(dbs)), within, column or QUALITY


def _split(db: str) -> str:
    for prefix, split in SPLIT_BY_PREFIX:
        if db.startswith(prefix):
            return split
    raise AssertionError(f"database {db} has no split")  # DBS and SPLIT_BY_PREFIX disagree


def _file_list(db: str) -> str:
    return f"{db}/{db}_file.csv"


def _missing(value: str) -> bool:
    return value.strip().lower() in MISSING_VALUES


def _votes(value: str, path: Path, line: int) -> int | None:
    if _missing(value):
        return None
    number = parse_float(value, path, line, "votes")
    if number != int(number) or number < 1:
        raise DataError(f"{path}:{line}: field 'votes': '{value}' is not a positive whole number")
    return int(number)


def _audio_path(value: str, db: str, path: Path, line: int) -> str:
    rel = value.strip().replace("\\", "/")
    parts = PurePosixPath(rel).parts
    if len(parts) < 2 or parts[0] != db or ".." in parts:
        raise DataError(
            f"{path}:{line}: field 'filepath_deg': '{value}' is not a path inside {db}/ "
            f"(expected e.g. {db}/deg/<filename_deg>, relative to the NISQA_Corpus folder)"
        )
    return "/".join(parts)


def _read_db(
    root: Path, db: str, within_db: bool, column: str = QUALITY
) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """The clips of one database, the ids of those without a reference (no content key), and
    the ids of those without a score in `column` (left out)."""
    path = require_file(root, _file_list(db), CORPUS, LAYOUT, f"file list of {db}")
    std_column = "mos_std" if column == QUALITY else f"{column}_std"
    if column != QUALITY:
        require_columns(path, [column, std_column], "the task's label column and its std")
    split = _split(db)
    rows: list[dict[str, Any]] = []
    no_ref: list[str] = []
    unscored: list[str] = []
    for line, raw in read_rows(
        path,
        corpus=CORPUS,
        layout=LAYOUT,
        header=HEADER,
        required=tuple(dict.fromkeys((*REQUIRED, column, std_column))),
    ):
        assert isinstance(raw, dict)
        if raw["db"] != db:
            raise DataError(
                f"{path}:{line}: field 'db' is '{raw['db']}' but the file lies in the {db} folder "
                f"(each <DB>/<DB>_file.csv lists only its own database)"
            )
        name = raw["filename_deg"].replace("\\", "/").rsplit("/", 1)[-1]
        if not name:
            raise DataError(f"{path}:{line}: field 'filename_deg' is empty")
        stem = name[:-4] if name.lower().endswith(".wav") else name
        if column != QUALITY and _missing(raw[column]):
            unscored.append(f"{db}/{stem}")
            continue
        mos = parse_float(raw[column], path, line, column)
        if not 1.0 <= mos <= 5.0:
            raise DataError(f"{path}:{line}: field '{column}': {mos} is outside the 1–5 ACR scale")
        cell = raw[std_column]
        std = None if _missing(cell) else parse_float(cell, path, line, std_column)
        if std is not None and std < 0:
            raise DataError(f"{path}:{line}: field '{std_column}': {std} is negative")
        con = raw["con"].strip()
        if _missing(con):
            raise DataError(f"{path}:{line}: field 'con' (condition number) is empty")
        ref_text = raw["filename_ref"].strip()
        clip_id = f"{db}/{stem}"
        ref: str | None = ref_text
        if _missing(ref_text):
            ref = None
            no_ref.append(clip_id)
        rows.append(
            {
                "clip_id": clip_id,
                "corpus": CORPUS,
                "split": split,
                "subset": db if within_db else None,
                "audio_path": _audio_path(raw["filepath_deg"], db, path, line),
                "mos": mos,
                "n_ratings": _votes(raw["votes"], path, line),
                "rating_std": std,
                "system_id": f"{db}:{con}",
                "speaker_id": None,
                "content_id": ref,
                "sample_rate": None,
                "duration": None,
                "_where": f"{path}:{line}",
            }
        )
    if not rows and not unscored:
        raise DataError(f"{path}: no clips listed (only a header?); {db} should list its files")
    return rows, no_ref, unscored


class NisqaReader:
    name = CORPUS

    def available(self, root: Path, options: dict[str, Any]) -> bool:
        dbs, _, _ = _options(options)
        root = Path(root)
        return all((root / _file_list(db)).is_file() for db in dbs)

    def read(self, root: Path, options: dict[str, Any], *, labels_only: bool = False) -> pa.Table:
        # Nothing here opens audio, so labels_only needs no special case: prepare probes the wavs.
        dbs, within_db, column = _options(options)
        root = check_root(Path(root), CORPUS, LAYOUT)
        rows: list[dict[str, Any]] = []
        no_ref: list[str] = []
        unscored: list[str] = []
        for db in dbs:
            db_rows, db_no_ref, db_unscored = _read_db(root, db, within_db, column)
            rows.extend(db_rows)
            no_ref.extend(db_no_ref)
            unscored.extend(db_unscored)
        if not rows:
            raise DataError(f"{root}: no clip has a '{column}' score in {', '.join(dbs)}")
        seen: dict[str, str] = {}
        for row in rows:
            where = row.pop("_where")
            if row["clip_id"] in seen:
                raise DataError(
                    f"{where}: clip '{row['clip_id']}' is listed twice (first at "
                    f"{seen[row['clip_id']]}); filename_deg must be unique within a database"
                )
            seen[row["clip_id"]] = where
        skips = [
            Skip.of(
                "no filename_ref (live recording without a clean reference): no content key, so "
                "only same-system and cross pairs",
                no_ref,
                kept=True,
            ),
            Skip.of(f"empty '{column}' (the task's label column)", unscored),
        ]
        return clip_table(rows, skips)
