"""The NISQA reader on a miniature native corpus: keys, splits, options and layout errors."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from benchmark.data.corpora import get_reader
from benchmark.data.corpora._native import table_skips
from benchmark.data.corpora.nisqa import NisqaReader
from benchmark.data.tables import validate_clips
from benchmark.errors import DataError
from tests.layouts import assert_contract
from tests.layouts import nisqa as layout

ALL_DBS = list(layout.SPLITS)


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[Path, list[dict]]:
    root = tmp_path / "NISQA_Corpus"
    return root, layout.write(root)


def _assert_matches(table, expected: list[dict]) -> None:
    rows = assert_contract(table.to_pylist(), expected, "nisqa")
    for e in expected:
        r = rows[e["clip_id"]]
        for key in ("n_ratings", "audio_path"):
            assert r[key] == e[key], (e["clip_id"], key)
        if e["rating_std"] is None:
            assert r["rating_std"] is None
        else:
            assert r["rating_std"] == pytest.approx(e["rating_std"], abs=1e-9)
        assert r["speaker_id"] is None and r["sample_rate"] is None and r["duration"] is None


def _rewrite(path: Path, edit) -> None:
    """Apply `edit(line_number, row)` to every data row of a CSV (rows are dicts; return None to
    keep, a dict to replace, or a list of dicts to replace by several)."""
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames
        rows = []
        for line, row in enumerate(reader, start=2):
            out = edit(line, row)
            rows.extend(out if isinstance(out, list) else [out or row])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buf.getvalue())


def _file_list(root: Path, db: str) -> Path:
    return root / db / f"{db}_file.csv"


def test_registered():
    assert isinstance(get_reader("nisqa"), NisqaReader)


def test_reads_fixture_exactly(corpus):
    root, expected = corpus
    table = NisqaReader().read(root, {})
    _assert_matches(table, expected)
    validate_clips(table, (1.0, 5.0), "nisqa")
    assert {r["split"] for r in table.to_pylist()} == {"train", "dev", "test"}
    for r in table.to_pylist():
        assert (root / r["audio_path"]).is_file()


def test_labels_only_needs_no_audio(tmp_path):
    root = tmp_path / "NISQA_Corpus"
    expected = layout.write(root, audio=False)
    assert not list(root.rglob("*.wav"))
    _assert_matches(NisqaReader().read(root, {}, labels_only=True), expected)


def test_condition_numbers_are_scoped_to_their_database(corpus):
    root, _ = corpus
    rows = NisqaReader().read(root, {}).to_pylist()
    dbs_of_system: dict[str, set[str]] = {}
    for r in rows:
        dbs_of_system.setdefault(r["system_id"], set()).add(r["clip_id"].split("/")[0])
    assert all(len(dbs) == 1 for dbs in dbs_of_system.values())
    assert {"NISQA_TRAIN_SIM:1", "NISQA_TRAIN_LIVE:1", "NISQA_TEST_FOR:1"} <= set(dbs_of_system)


def test_live_clips_have_no_content_and_are_reported(corpus):
    root, expected = corpus
    table = NisqaReader().read(root, {})
    no_ref = sorted(e["clip_id"] for e in expected if e["content_id"] is None)
    assert no_ref and all("LIVE" in c for c in no_ref)
    assert sorted(r["clip_id"] for r in table.to_pylist() if r["content_id"] is None) == no_ref
    (skip,) = table_skips(table)
    assert skip.kept and skip.count == len(no_ref)
    assert "filename_ref" in skip.reason
    assert list(skip.examples) == no_ref[:5]


def test_pair_within_db_sets_subset(corpus):
    root, _ = corpus
    rows = NisqaReader().read(root, {"pair_within_db": True}).to_pylist()
    assert all(r["subset"] == r["clip_id"].split("/")[0] for r in rows)
    assert {r["subset"] for r in rows} == set(ALL_DBS)


def test_dbs_option_selects_databases(corpus):
    root, expected = corpus
    tests = ["NISQA_TEST_FOR", "NISQA_TEST_P501", "NISQA_TEST_LIVETALK"]
    table = NisqaReader().read(root, {"dbs": tests})
    _assert_matches(table, [e for e in expected if e["clip_id"].split("/")[0] in tests])
    assert NisqaReader().read(root, {"dbs": "NISQA_VAL_SIM"}).num_rows == sum(
        e["clip_id"].startswith("NISQA_VAL_SIM/") for e in expected
    )


def test_missing_selected_database(tmp_path):
    root = tmp_path / "NISQA_Corpus"
    layout.write(root, audio=False, dbs=["NISQA_TEST_FOR", "NISQA_TEST_P501"])
    assert NisqaReader().available(root, {"dbs": ["NISQA_TEST_FOR"]})
    assert not NisqaReader().available(root, {})
    assert NisqaReader().read(root, {"dbs": ["NISQA_TEST_FOR"]}, labels_only=True).num_rows == 4
    with pytest.raises(DataError) as err:
        NisqaReader().read(root, {}, labels_only=True)
    msg = str(err.value)
    assert str(root / "NISQA_TRAIN_SIM" / "NISQA_TRAIN_SIM_file.csv") in msg
    assert "file list of NISQA_TRAIN_SIM" in msg and "<DB>_file.csv" in msg


def test_missing_metadata_file(corpus):
    root, _ = corpus
    path = _file_list(root, "NISQA_VAL_LIVE")
    path.unlink()
    with pytest.raises(DataError) as err:
        NisqaReader().read(root, {})
    assert str(path) in str(err.value) and "missing metadata file" in str(err.value)
    assert "NISQA_VAL_LIVE/" in str(err.value)


def test_available(corpus, tmp_path):
    root, _ = corpus
    assert NisqaReader().available(root, {})
    assert not NisqaReader().available(tmp_path / "nowhere", {})
    assert not NisqaReader().available(root.parent, {})


def test_wrong_root(corpus, tmp_path):
    root, _ = corpus
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as err:
        NisqaReader().read(missing, {})
    assert str(missing) in str(err.value) and "not a folder" in str(err.value)
    assert "NISQA_TRAIN_SIM/" in str(err.value)
    with pytest.raises(DataError) as err:
        NisqaReader().read(root.parent, {})
    msg = str(err.value)
    assert str(root.parent / "NISQA_TRAIN_SIM" / "NISQA_TRAIN_SIM_file.csv") in msg
    assert f"found it one level down at {_file_list(root, 'NISQA_TRAIN_SIM')}" in msg


def test_unknown_and_bad_options(corpus):
    root, _ = corpus
    with pytest.raises(DataError, match=r"unknown option\(s\) split.*known: dbs, pair_within_db"):
        NisqaReader().read(root, {"split": "test"})
    with pytest.raises(DataError, match="unknown option"):
        NisqaReader().available(root, {"split": "test"})
    with pytest.raises(DataError, match="unknown database.*NISQA_TEST_XYZ.*known: NISQA_TRAIN_SIM"):
        NisqaReader().read(root, {"dbs": ["NISQA_TEST_XYZ"]})
    with pytest.raises(DataError, match="non-empty list"):
        NisqaReader().read(root, {"dbs": []})
    with pytest.raises(DataError, match="pair_within_db.*true or false"):
        NisqaReader().read(root, {"pair_within_db": "yes"})


def test_unexpected_header(corpus):
    root, _ = corpus
    path = _file_list(root, "NISQA_TRAIN_LIVE")
    text = path.read_text()
    path.write_text(text.replace(",filepath_deg,", ",path_deg,", 1))
    with pytest.raises(DataError) as err:
        NisqaReader().read(root, {})
    msg = str(err.value)
    assert str(path) in msg and "missing column(s) filepath_deg" in msg
    assert "expected: db,con,file,con_description,filename_deg" in msg


def test_header_needs_only_the_used_columns(corpus):
    root, expected = corpus
    keep = ["db", "con", "filename_deg", "filename_ref", "votes", "mos", "mos_std", "filepath_deg"]
    for db in ALL_DBS:
        path = _file_list(root, db)
        with path.open(newline="") as f:
            rows = [{k: r[k] for k in keep} for r in csv.DictReader(f)]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keep[::-1], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        path.write_text(buf.getvalue())
    _assert_matches(NisqaReader().read(root, {}), expected)


def test_non_numeric_mos(corpus):
    root, _ = corpus
    path = _file_list(root, "NISQA_TEST_FOR")
    _rewrite(path, lambda line, row: {**row, "mos": "n/a"} if line == 4 else None)
    with pytest.raises(DataError) as err:
        NisqaReader().read(root, {})
    assert f"{path}:4: field 'mos': 'n/a' is not a number" in str(err.value)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("mos", "5.5", "field 'mos': 5.5 is outside the 1–5"),
        ("votes", "4.5", "field 'votes': '4.5' is not a positive whole number"),
        ("mos_std", "abc", "field 'mos_std': 'abc' is not a number"),
        ("con", "", "field 'con' (condition number) is empty"),
        (
            "db",
            "NISQA_TEST_FOR",
            "field 'db' is 'NISQA_TEST_FOR' but the file lies in the NISQA_VAL_SIM",
        ),
        (
            "filepath_deg",
            "NISQA_TEST_FOR/deg/x.wav",
            "'NISQA_TEST_FOR/deg/x.wav' is not a path inside NISQA_VAL_SIM/",
        ),
        ("filepath_deg", "NISQA_VAL_SIM/../../etc/x.wav", "is not a path inside NISQA_VAL_SIM/"),
    ],
)
def test_malformed_fields(corpus, field, value, message):
    root, _ = corpus
    path = _file_list(root, "NISQA_VAL_SIM")
    _rewrite(path, lambda line, row: {**row, field: value} if line == 3 else None)
    with pytest.raises(DataError) as err:
        NisqaReader().read(root, {}, labels_only=True)
    assert f"{path}:3: " in str(err.value)
    assert message in str(err.value)


def test_duplicate_clip(corpus):
    root, _ = corpus
    path = _file_list(root, "NISQA_TRAIN_SIM")
    _rewrite(path, lambda line, row: [row, dict(row)] if line == 2 else None)
    with pytest.raises(DataError) as err:
        NisqaReader().read(root, {})
    msg = str(err.value)
    assert f"{path}:3: clip 'NISQA_TRAIN_SIM/c00001_common_voice_en_100' is listed twice" in msg
    assert f"first at {path}:2" in msg


def test_empty_file_list(corpus):
    root, _ = corpus
    path = _file_list(root, "NISQA_TEST_P501")
    path.write_text(path.read_text().splitlines()[0] + "\n\n")
    with pytest.raises(DataError, match="no clips listed"):
        NisqaReader().read(root, {})


def test_backslash_paths_are_normalised(tmp_path):
    root = tmp_path / "NISQA_Corpus"
    expected = layout.write(root, audio=False, windows_paths=True)
    assert "\\deg\\" in _file_list(root, "NISQA_TEST_FOR").read_text()
    _assert_matches(NisqaReader().read(root, {}, labels_only=True), expected)


@pytest.mark.parametrize("dimension", layout.DIMENSIONS)
def test_dimension_label_column(tmp_path, dimension):
    """label_column noi/col/dis/loud: MOS and std from that column and its `_std`, votes kept."""
    root = tmp_path / "NISQA_Corpus"
    expected = layout.write(root, label=dimension)
    table = NisqaReader().read(root, {"label_column": dimension})
    _assert_matches(table, expected)
    validate_clips(table, (1.0, 5.0), "nisqa")
    quality = {r["clip_id"]: r["mos"] for r in NisqaReader().read(root, {}).to_pylist()}
    got = {r["clip_id"]: r["mos"] for r in table.to_pylist()}
    assert got.keys() == quality.keys() and got != quality
    assert {r["ratings"] for r in table.to_pylist()} == {None}  # no per-rating rows published


def test_dimension_votes_recomputed_from_the_csv(tmp_path):
    """The reader's `col` MOS equals the mean of the layout's col votes (not the reader's code)."""
    root = tmp_path / "NISQA_Corpus"
    layout.write(root)
    rows = {r["clip_id"]: r for r in NisqaReader().read(root, {"label_column": "col"}).to_pylist()}
    for db, entries in layout._clips().items():
        for _, deg, _, votes in entries:
            col = layout.dimension_votes(votes, "col")
            assert rows[f"{db}/{deg[:-4]}"]["mos"] == pytest.approx(sum(col) / len(col), abs=1e-8)


def test_empty_dimension_cell_leaves_the_clip_out(tmp_path):
    root = tmp_path / "NISQA_Corpus"
    expected = layout.write(root, label="noi", empty_dimension=True)
    table = NisqaReader().read(root, {"label_column": "noi"})
    _assert_matches(table, expected)
    assert layout.NO_DIMENSIONS not in {r["clip_id"] for r in table.to_pylist()}
    skip = next(s for s in table_skips(table) if "noi" in s.reason)
    assert (skip.count, skip.examples, skip.kept) == (1, (layout.NO_DIMENSIONS,), False)
    # the quality task still has it
    assert layout.NO_DIMENSIONS in {r["clip_id"] for r in NisqaReader().read(root, {}).to_pylist()}


@pytest.mark.parametrize("dropped", ["loud", "loud_std"])
def test_dimension_column_missing_is_one_line(corpus, dropped):
    root, _ = corpus
    path = _file_list(root, "NISQA_VAL_LIVE")
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    i = header.index(dropped)
    path.write_text(
        "\n".join(",".join(c for k, c in enumerate(next(csv.reader([x]))) if k != i) for x in lines)
        + "\n"
    )
    assert NisqaReader().read(root, {}).num_rows > 0  # quality does not need it
    with pytest.raises(DataError) as err:
        NisqaReader().read(root, {"label_column": "loud"})
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: no column '{dropped}' (the task's label column and its std)")


def test_unknown_dimension(corpus):
    root, _ = corpus
    with pytest.raises(DataError, match=r"no score column 'mos_std'.*mos, noi, col, dis, loud"):
        NisqaReader().read(root, {"label_column": "mos_std"})
