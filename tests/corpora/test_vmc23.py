"""VMC'23 reader on a miniature native layout: id parsing, tracks, listener ratings, clear errors."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from benchmark.data.corpora import get_reader, vmc23
from benchmark.data.corpora._native import table_skips
from benchmark.data.corpora.vmc23 import Vmc23Reader
from benchmark.data.tables import mos_rounding, validate_clips
from benchmark.errors import DataError
from tests.layouts import assert_contract
from tests.layouts import vmc23 as layout

READER = Vmc23Reader()
TARGET = {sid: target for sid, _, target, _ in layout.T2}


def _read(root: Path, options: dict | None = None, **kw: bool) -> list[dict]:
    table = validate_clips(READER.read(root, dict(options or {}), **kw), (1, 5), root)
    return table.to_pylist()


def _assert_matches(rows: list[dict], expected: list[dict]) -> None:
    assert [r["clip_id"] for r in rows] == sorted(e["clip_id"] for e in expected)
    assert_contract(rows, expected, "vmc23")


def _rewrite_line(path: Path, number: int, text: str) -> None:
    lines = path.read_text().split("\n")
    lines[number - 1] = text
    path.write_text("\n".join(lines))


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[Path, list[dict]]:
    root = tmp_path / "vmc23"
    return root, layout.write(root)


def test_registered_reader():
    assert isinstance(get_reader("vmc23"), Vmc23Reader)


def test_docstring_shows_layout_verbatim():
    for line in vmc23.LAYOUT.splitlines():
        assert line.strip() in vmc23.__doc__


def test_matches_fixture(corpus):
    root, expected = corpus
    rows = _read(root)
    _assert_matches(rows, expected)
    assert {r["split"] for r in rows} == {"test"}
    assert {r["subset"] for r in rows} == {"1a", "1b", "2", "3"}
    for row in rows:
        sid, track = row["clip_id"], row["subset"][0]
        assert row["audio_path"] == f"track{track}/{sid}.wav"
        assert (root / row["audio_path"]).is_file()
        assert row["sample_rate"] is None
        if track == "2":
            assert row["speaker_id"] == TARGET[sid]
        elif track == "3":
            assert row["speaker_id"] == row["content_id"].split("_")[0]
        else:
            assert row["speaker_id"] is None
        ratings = layout.T2_RATINGS.get(sid)
        if ratings is None:
            assert (row["n_ratings"], row["rating_std"], row["ratings"]) == (None, None, None)
        else:
            assert row["ratings"] == [float(s) for s in ratings]
            assert row["n_ratings"] == len(ratings)
            assert row["rating_std"] == pytest.approx(statistics.stdev(ratings), abs=1e-12)
    clean = [r for r in rows if "clean_TMHINT" in r["clip_id"]]
    assert clean and {r["system_id"] for r in clean} == {"clean"}


def test_skips(corpus):
    root, _ = corpus
    skips = table_skips(READER.read(root, {}))
    left_out = next(s for s in skips if not s.kept)
    assert left_out.count == len(layout.T3_LEFT_OUT) == 2
    assert left_out.examples == tuple(sorted(layout.T3_LEFT_OUT))
    assert "TMHINT_" in left_out.reason and "clean_TMHINT_" in left_out.reason
    kept = next(s for s in skips if s.kept)
    assert (kept.count, kept.examples) == (1, tuple(layout.T2_NO_RATINGS))
    assert "listener_wise_answer.csv" in kept.reason


def test_labels_only_without_audio(tmp_path):
    expected = layout.write(tmp_path, audio=False)
    assert not (tmp_path / "track1").exists()
    _assert_matches(_read(tmp_path, labels_only=True), expected)


def test_tracks_option(tmp_path):
    expected = layout.write(tmp_path, tracks=(2,), audio=False)
    rows = _read(tmp_path, {"tracks": [2]})
    _assert_matches(rows, expected)
    assert {r["subset"] for r in rows} == {"2"}
    with pytest.raises(DataError) as err:
        READER.read(tmp_path, {})
    msg = str(err.value)
    assert f"{tmp_path / 'track1_answer.txt'}: missing metadata file (track 1 answer key" in msg
    assert "github.com/unilight/sheet" in msg and "track1_answer.txt  track2_answer.txt" in msg
    for bad in ([4], [], [1, 1], "all", [True]):
        with pytest.raises(DataError, match="option 'tracks'"):
            READER.read(tmp_path, {"tracks": bad})


def test_tracks_without_track_2_ignore_listener_file(corpus):
    root, expected = corpus
    (root / "listener_wise_answer.csv").write_text("not,the,header\n")
    rows = _read(root, {"tracks": ["1", 3]})
    _assert_matches(rows, [e for e in expected if e["subset"][0] in "13"])


def test_answers_dir_option(tmp_path):
    expected = layout.write(tmp_path, answers_dir="answers", audio=False)
    _assert_matches(_read(tmp_path, {"answers_dir": "answers"}), expected)
    absolute = {"answers_dir": str(tmp_path / "answers")}
    _assert_matches(_read(tmp_path, absolute), expected)
    assert READER.available(tmp_path, absolute)
    with pytest.raises(DataError, match="track 1 answer key"):
        READER.read(tmp_path, {})


def test_missing_answer_file_of_a_selected_track(corpus):
    root, _ = corpus
    path = root / "track3_answer.txt"
    path.unlink()
    with pytest.raises(DataError) as err:
        READER.read(root, {})
    msg = str(err.value)
    assert f"{path}: missing metadata file (track 3 answer key" in msg
    assert "egs/vmc23/answers" in msg and "option 'answers_dir'" in msg


def test_without_listener_file(tmp_path):
    expected = layout.write(tmp_path, listener=False, audio=False)
    rows = _read(tmp_path)
    _assert_matches(rows, expected)
    assert {r["n_ratings"] for r in rows} == {None}
    assert not any(s.kept for s in table_skips(READER.read(tmp_path, {})))
    with pytest.raises(DataError, match="listener_wise_answer.csv: missing metadata file"):
        READER.read(tmp_path, {"listener_file": "listener_wise_answer.csv"})


def test_listener_file_option(corpus):
    root, _ = corpus
    (root / "listener_wise_answer.csv").rename(root / "ratings.csv")
    rows = _read(root, {"listener_file": "ratings.csv"})
    assert sum(r["n_ratings"] is not None for r in rows) == len(layout.T2_RATINGS)
    kept = next(s for s in table_skips(READER.read(root, {"listener_file": "ratings.csv"})))
    assert "ratings.csv" in kept.reason
    (root / "ratings.csv").rename(root / "listener_wise_answer.csv")
    assert {r["n_ratings"] for r in _read(root, {"listener_file": None})} == {None}


def test_listener_file_unexpected_header(corpus):
    root, _ = corpus
    path = root / "listener_wise_answer.csv"
    _rewrite_line(path, 1, "sample_id,listener,score")
    with pytest.raises(DataError) as err:
        READER.read(root, {})
    msg = str(err.value)
    assert f"{path}: unexpected header (missing column(s) listener_name)" in msg
    assert "expected: sample_id,listener_name,score" in msg


def test_listener_mean_disagreeing_with_answer(corpus):
    root, _ = corpus
    path = root / "listener_wise_answer.csv"
    sid = "VoiceMOS2023Track2-B01-SM1-CDF1-30001"
    lines = path.read_text().split("\n")
    number = next(i for i, text in enumerate(lines, start=1) if text.startswith(sid))
    _rewrite_line(path, number, f"{sid},listener01,1")
    with pytest.raises(DataError) as err:
        READER.read(root, {})
    msg = str(err.value)
    assert str(path) in msg and str(root / "track2_answer.txt") in msg
    assert sid in msg and "MOS 3.8" in msg and "average 3.200000" in msg


def test_listener_row_of_unknown_clip_and_bad_score(corpus):
    root, _ = corpus
    path = root / "listener_wise_answer.csv"
    original = path.read_text()
    _rewrite_line(path, 3, "VoiceMOS2023Track2-B09-SF1-CDF1-30001,listener02,3")
    with pytest.raises(DataError, match=rf"{path}:3: sample_id 'VoiceMOS2023Track2-B09"):
        READER.read(root, {})
    path.write_text(original)
    _rewrite_line(path, 4, "VoiceMOS2023Track2-B01-SF1-CDF1-30001,listener03,three")
    with pytest.raises(DataError, match=rf"{path}:4: field 'score': 'three' is not a number"):
        READER.read(root, {})


def test_non_numeric_mos(corpus):
    root, _ = corpus
    path = root / "track1_answer.txt"
    _rewrite_line(path, 5, "VoiceMOS2023Track1-BF-NEB_test_0308,-")
    with pytest.raises(DataError) as err:
        READER.read(root, {})
    msg = str(err.value)
    assert f"{path}:5: field 'MOS': '-' is not a number" in msg
    assert "no header, one line per clip: <sample_id>,<MOS>" in msg


@pytest.mark.parametrize(
    ("track", "line", "bad", "expected"),
    [
        (
            2,
            3,
            "VoiceMOS2023Track1-A-AD_test_0026,4.0",
            "does not start with 'VoiceMOS2023Track2-'",
        ),
        (2, 2, "VoiceMOS2023Track2-B01-SF1-30002,3.0", "does not parse"),
        (1, 1, "VoiceMOS2023Track1-A-XYZ_test_0001,3.0", "neither NEB (track 1a) nor AD"),
        (1, 2, "VoiceMOS2023Track1-AD_test_0026,3.0", "does not parse"),
        (3, 4, "VoiceMOS2023Track3-CMGAN_snr-2_babble_b2_21_02,2.0", "does not parse"),
        (3, 1, "VoiceMOS2023Track3-CMGAN_TMHINT_b2_21,2.0", "does not parse"),
    ],
)
def test_malformed_sample_id(corpus, track, line, bad, expected):
    root, _ = corpus
    path = root / f"track{track}_answer.txt"
    _rewrite_line(path, line, bad)
    with pytest.raises(DataError) as err:
        READER.read(root, {})
    msg = str(err.value)
    assert f"{path}:{line}: sample id '{bad.split(',')[0]}'" in msg
    assert expected in msg
    assert f"VoiceMOS2023Track{track}-" in msg


def test_malformed_lines(corpus):
    root, _ = corpus
    path = root / "track2_answer.txt"
    original = path.read_text()
    _rewrite_line(path, 2, "VoiceMOS2023Track2-B01-SF1-CDF1-30002")
    with pytest.raises(DataError, match=rf"{path}:2: expected '<sample_id>,<MOS>', got 1 field"):
        READER.read(root, {})
    path.write_text(original)
    _rewrite_line(path, 5, layout.T2[0][0] + ",3.0")
    with pytest.raises(DataError, match=rf"{path}:5: sample id '{layout.T2[0][0]}' already listed"):
        READER.read(root, {})


def test_wrong_root(corpus, tmp_path):
    root, _ = corpus
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as err:
        READER.read(missing, {})
    msg = str(err.value)
    assert f"{missing}: data root is not a folder" in msg and "track1_answer.txt" in msg
    with pytest.raises(DataError) as err:
        READER.read(root.parent, {})
    msg = str(err.value)
    assert f"{root.parent / 'track1_answer.txt'}: missing metadata file" in msg
    assert f"one level down at {root / 'track1_answer.txt'}" in msg


def test_unknown_or_bad_options(corpus):
    root, _ = corpus
    with pytest.raises(
        DataError, match=r"unknown option\(s\) track \(known: answers_dir, listener_file, tracks\)"
    ):
        READER.read(root, {"track": [1]})
    with pytest.raises(DataError, match="option 'answers_dir'"):
        READER.read(root, {"answers_dir": ""})
    with pytest.raises(DataError, match="option 'listener_file'"):
        READER.read(root, {"listener_file": 3})


def test_available(corpus, tmp_path):
    root, _ = corpus
    assert READER.available(root, {})
    assert not READER.available(root.parent, {})
    assert not READER.available(tmp_path / "nowhere", {})
    assert not READER.available(root, {"tracks": [5]})
    (root / "track3_answer.txt").unlink()
    assert not READER.available(root, {})
    assert READER.available(root, {"tracks": [1, 2]})


def test_rounded_answer_is_kept_beside_its_ratings(corpus):
    """The answer key prints 2.86 for ratings averaging 2.857…: the MOS stays the published one,
    and the table declares the rounding that validate_clips then allows (half a unit of the
    coarsest printed digit among track-2 answers: at least the 0.005 of two decimals)."""
    root, _ = corpus
    table = READER.read(root, {})
    assert 0.005 <= mos_rounding(table) <= 0.05 + 1e-9
    sid = "VoiceMOS2023Track2-B01-SF1-CDF1-30001"
    row = next(r for r in validate_clips(table, (1, 5)).to_pylist() if r["clip_id"] == sid)
    assert row["mos"] == 2.86 and row["ratings"] == [3.0, 3.0, 3.0, 2.0, 3.0, 3.0, 3.0]
    undeclared = table.replace_schema_metadata({})
    with pytest.raises(DataError, match=f"column 'ratings' of clip '{sid}' averages"):
        validate_clips(undeclared, (1, 5))
