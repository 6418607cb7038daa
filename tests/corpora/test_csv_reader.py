from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.data.corpora.csv_reader import CsvReader
from benchmark.data.tables import validate_clips
from benchmark.errors import DataError

OPTIONS = {
    "file": "scores.csv",
    "columns": {
        "audio": "wav",
        "score": "mos",
        "system": "sys",
        "content": "text",
        "split": "part",
    },
}


def _csv(root: Path, text: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "scores.csv").write_text(text)


def test_reads_mapped_columns(tmp_path):
    _csv(tmp_path, "wav,mos,sys,text,part\na.wav,3.5,s1,t1,test\nb.wav,2,s2,t1,\n")
    table = validate_clips(CsvReader().read(tmp_path, OPTIONS), (1, 5))
    rows = table.to_pylist()
    assert [r["clip_id"] for r in rows] == ["a.wav", "b.wav"]
    assert rows[0]["system_id"] == "s1" and rows[0]["content_id"] == "t1"
    assert rows[1]["split"] == "test"  # empty split cell -> default_split
    assert rows[0]["speaker_id"] is None
    assert CsvReader().available(tmp_path, OPTIONS)


def test_missing_column_names_file_and_header(tmp_path):
    _csv(tmp_path, "wav,score\na.wav,3\n")
    with pytest.raises(DataError, match=r"scores\.csv.*score -> 'mos'.*header: wav, score"):
        CsvReader().read(tmp_path, OPTIONS)


def test_non_numeric_score_names_line(tmp_path):
    _csv(tmp_path, "wav,mos,sys,text,part\na.wav,good,s,t,test\n")
    with pytest.raises(DataError, match=r"scores\.csv:2: column 'mos'"):
        CsvReader().read(tmp_path, OPTIONS)


def test_unknown_option_and_field(tmp_path):
    with pytest.raises(DataError, match="unknown option"):
        CsvReader().read(tmp_path, {**OPTIONS, "fiel": "x"})
    with pytest.raises(DataError, match="unknown field"):
        CsvReader().read(tmp_path, {"file": "x.csv", "columns": {"quality": "q"}})


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="CSV not found"):
        CsvReader().read(tmp_path, OPTIONS)
    assert not CsvReader().available(tmp_path, OPTIONS)


def test_duplicate_ids_and_out_of_range_are_caught_by_validation(tmp_path):
    _csv(tmp_path, "wav,mos,sys,text,part\na.wav,3,s,t,test\na.wav,4,s,t,test\n")
    with pytest.raises(DataError, match="duplicate clip_id.*a.wav"):
        validate_clips(CsvReader().read(tmp_path, OPTIONS), (1, 5), source="scores.csv")
    _csv(tmp_path, "wav,mos,sys,text,part\na.wav,3,s,t,test\nb.wav,7,s,t,test\n")
    with pytest.raises(DataError, match=r"'mos' outside .*\[1, 5\].*b.wav=7"):
        validate_clips(CsvReader().read(tmp_path, OPTIONS), (1, 5), source="scores.csv")
    _csv(tmp_path, "wav,mos,sys,text,part\na.wav,nan,s,t,test\n")
    with pytest.raises(DataError, match="'mos' outside"):
        validate_clips(CsvReader().read(tmp_path, OPTIONS), (1, 5))


LABELLED = {
    "file": "scores.csv",
    "columns": {"audio": "wav", "score": "mos", "system": "sys", "rating_std": "nat_std"},
    "label_column": "naturalness",
}


def test_label_column_replaces_the_score_column(tmp_path):
    _csv(
        tmp_path,
        "wav,mos,naturalness,nat_std,sys\na.wav,3.5,2.25,0.5,s1\nb.wav,2,4,,s2\nc.wav,1,1.5,1,s1\n",
    )
    rows = validate_clips(CsvReader().read(tmp_path, LABELLED), (1, 5)).to_pylist()
    assert [(r["clip_id"], r["mos"], r["rating_std"]) for r in rows] == [
        ("a.wav", 2.25, 0.5),
        ("b.wav", 4.0, None),
        ("c.wav", 1.5, 1.0),
    ]
    # without `score` mapped at all
    unmapped = {**LABELLED, "columns": {"audio": "wav"}}
    assert [r["mos"] for r in CsvReader().read(tmp_path, unmapped).to_pylist()] == [2.25, 4.0, 1.5]


def test_label_column_missing_names_file_and_column(tmp_path):
    _csv(tmp_path, "wav,mos,nat_std,sys\na.wav,3.5,0.5,s1\n")
    with pytest.raises(DataError) as err:
        CsvReader().read(tmp_path, LABELLED)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{tmp_path / 'scores.csv'}: column(s) label column -> 'naturalness'")
    assert not CsvReader().available(tmp_path / "nowhere", LABELLED)
