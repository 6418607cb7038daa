"""The TMHINT-QI reader on a miniature native corpus: per-rating aggregation, splits (folder,
prefix or the shipped list of test stems, never the speaker), dev groups, skips and layout
errors."""

from __future__ import annotations

import csv
import hashlib
import statistics
import tomllib
from collections import defaultdict
from pathlib import Path

import pytest

from benchmark.data.corpora import get_reader, tmhint_qi
from benchmark.data.corpora._native import table_skips
from benchmark.data.corpora.tmhint_qi import TmhintQiReader
from benchmark.data.tables import validate_clips
from benchmark.errors import DataError
from tests.layouts import assert_contract
from tests.layouts import tmhint_qi as layout

REPO = Path(__file__).resolve().parents[2]
TEST_CLIP = "MMSE_snr5_babble_TMHINT_b2_22_08"
"""A test clip of the fixture (in the shipped list, 4 ratings)."""
N_LISTED = 1978


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[Path, list[dict]]:
    root = tmp_path / "tmhint-qi"
    return root, layout.write(root)


def _by_id(table) -> dict[str, dict]:
    return {r["clip_id"]: r for r in table.to_pylist()}


def _assert_matches(table, expected: list[dict]) -> None:
    rows = assert_contract(table.to_pylist(), expected, "tmhint_qi")
    for e in expected:
        r = rows[e["clip_id"]]
        for key in ("speaker_id", "n_ratings", "audio_path", "ratings"):
            assert r[key] == e[key], (e["clip_id"], key)
        if e["rating_std"] is None:
            assert r["rating_std"] is None
        else:
            assert r["rating_std"] == pytest.approx(e["rating_std"], abs=1e-9)
        assert r["sample_rate"] == 16000


def _raw(root: Path) -> Path:
    return root / "raw_data.csv"


def _edit_row(root: Path, stem: str, **fields: str) -> int:
    """Change the first rating row of `stem`; return its line number."""
    path = _raw(root)
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    i = next(i for i, row in enumerate(rows) if row and row[-1] == stem)
    for k, v in fields.items():
        rows[i][header.index(k)] = v
    with path.open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    return i + 1


def test_registered():
    assert isinstance(get_reader("tmhint_qi"), TmhintQiReader)


def test_reads_fixture_exactly(corpus):
    root, expected = corpus
    table = TmhintQiReader().read(root, {})
    _assert_matches(table, expected)
    validate_clips(table, (1.0, 5.0), "tmhint_qi")
    rows = table.to_pylist()
    assert {r["split"] for r in rows} == {"train", "dev", "test"}
    assert {r["system_id"] for r in rows} >= {"DDAE_snr-2_babble", "Noisy_snr5_white", "clean"}
    for r in rows:
        assert (root / r["audio_path"]).is_file()


def test_aggregates_rating_rows_independently(corpus):
    """MOS, count and sample std recomputed here straight from the CSV rows."""
    root, _ = corpus
    scores: dict[str, list[float]] = defaultdict(list)
    with _raw(root).open(newline="") as f:
        for row in csv.DictReader(f):
            if row["quality_score"].strip():
                scores[row["file_name"]].append(float(row["quality_score"]))
    rows = _by_id(TmhintQiReader().read(root, {}))
    assert sorted(rows) == sorted(scores)
    for stem, values in scores.items():
        assert rows[stem]["mos"] == pytest.approx(statistics.mean(values), abs=1e-9)
        assert rows[stem]["n_ratings"] == len(values)
        std = statistics.stdev(values) if len(values) > 1 else None
        assert rows[stem]["rating_std"] == (std if std is None else pytest.approx(std, abs=1e-9))
    assert any(len(v) == 1 for v in scores.values()) and any(len(v) >= 5 for v in scores.values())


def _splits(table) -> dict[str, str]:
    return {r["clip_id"]: r["split"] for r in table.to_pylist()}


def test_audio_and_labels_only_give_the_same_split(tmp_path):
    """The release's split is the folder, not the speaker: with the wavs, and from raw_data.csv
    alone (bare stems, the shipped list), train keeps its b2/g4 clips."""
    root = tmp_path / "with-audio"
    expected = layout.write(root)
    with_audio = TmhintQiReader().read(root, {})
    labels = TmhintQiReader().read(root, {}, labels_only=True)
    _assert_matches(with_audio, expected)
    _assert_matches(labels, expected)
    assert _splits(labels) == _splits(with_audio)
    bare = tmp_path / "labels"
    expected_bare = layout.write(bare, audio=False)
    assert not list(bare.rglob("*.wav"))
    assert "/" not in _raw(bare).read_text()
    assert expected_bare == expected
    for split_by in ("auto", "list"):
        table = TmhintQiReader().read(bare, {"split_by": split_by}, labels_only=True)
        _assert_matches(table, expected)
    rows = with_audio.to_pylist()
    kept = [r for r in rows if r["split"] in {"train", "dev"} and r["speaker_id"] in {"b2", "g4"}]
    assert len(kept) == 20 and {r["speaker_id"] for r in kept} == {"b2", "g4"}
    test = {r["clip_id"] for r in rows if r["split"] == "test"}
    assert len(test) == 18 and test <= layout.listed_test_stems()
    trained = {r["content_id"] for r in rows if r["split"] in {"train", "dev"}}
    assert {r["content_id"] for r in rows if r["split"] == "test"} <= trained


def test_listed_stems_absent_from_raw_data_are_reported_once(tmp_path):
    root = tmp_path / "tmhint-qi"
    layout.write(root, audio=False)
    (absent,) = [
        s
        for s in table_skips(TmhintQiReader().read(root, {}, labels_only=True))
        if "absent" in s.reason
    ]
    assert not absent.kept and absent.count == N_LISTED - 18 and len(absent.examples) == 5
    assert "tmhint_qi_test_stems.txt" in absent.reason and "raw_data.csv" in absent.reason
    # a list that matches the file (as the shipped list matches the release) reports nothing
    own = sorted(
        layout.listed_test_stems() & set(_splits(TmhintQiReader().read(root, {}, labels_only=True)))
    )
    (root / "mine.txt").write_text("\n".join(own) + "\n")
    table = TmhintQiReader().read(root, {"test_stems": "mine.txt"}, labels_only=True)
    assert not [s for s in table_skips(table) if "absent" in s.reason]
    # the folders decide with audio: the list is only a cross-check there
    audio = tmp_path / "audio"
    layout.write(audio)
    assert not [s for s in table_skips(TmhintQiReader().read(audio, {})) if "absent" in s.reason]


def test_dev_is_whole_content_groups(corpus):
    root, _ = corpus
    rows = TmhintQiReader().read(root, {}).to_pylist()
    contents = {s: {r["content_id"] for r in rows if r["split"] == s} for s in ("train", "dev")}
    assert contents["dev"] and not contents["train"] & contents["dev"]
    n = len(contents["train"] | contents["dev"])
    assert n == 30 and len(contents["dev"]) == round(0.1 * n)


def test_dev_options(corpus):
    root, _ = corpus

    def dev(options: dict) -> set[str]:
        rows = TmhintQiReader().read(root, options).to_pylist()
        return {r["content_id"] for r in rows if r["split"] == "dev"}

    default = dev({})
    assert dev({"dev_seed": 1337, "dev_fraction": 0.1}) == default
    assert any(dev({"dev_seed": s}) != default for s in (1, 2, 3))
    assert len(dev({"dev_fraction": 0.25})) == 8  # round(7.5)
    assert len(dev({"dev_fraction": 0.13})) == 4  # round(3.9), not int(3.9)
    assert dev({"dev_fraction": 0.0}) == set()


def test_skips(corpus):
    root, _ = corpus
    table = TmhintQiReader().read(root, {})
    skips = {s.reason: s for s in table_skips(table)}
    (unrated,) = [s for s in skips.values() if not s.kept]
    assert unrated.count == 4 and sorted(unrated.examples) == sorted(layout.UNRATED)
    assert "no valid quality_score" in unrated.reason
    assert not set(layout.UNRATED) & set(_by_id(table))
    (partial,) = [s for s in skips.values() if s.kept]
    assert partial.examples == (layout.PARTIAL,) and partial.count == 1
    assert _by_id(table)[layout.PARTIAL]["n_ratings"] == 2


def test_folder_contradicting_the_list_keeps_the_folder_split(tmp_path):
    root = tmp_path / "tmhint-qi"
    expected = layout.write(root, misplaced=True)
    assert layout.MISPLACED not in layout.listed_test_stems()
    assert (root / "test" / f"{layout.MISPLACED}.wav").is_file()
    for split_by in ("auto", "path"):
        table = TmhintQiReader().read(root, {"split_by": split_by})
        _assert_matches(table, expected)
        clip = _by_id(table)[layout.MISPLACED]
        assert clip["split"] == "test" and clip["audio_path"] == f"test/{layout.MISPLACED}.wav"
        (caveat,) = [s for s in table_skips(table) if "contradicts" in s.reason]
        assert caveat.kept and caveat.count == 1 and caveat.examples == (layout.MISPLACED,)
        assert (
            "tmhint_qi_test_stems.txt" in caveat.reason
            and "split follows the folder" in caveat.reason
        )
    # split_by 'list' follows the list, and still reads the audio where it lies
    listed = TmhintQiReader().read(root, {"split_by": "list"})
    clip = _by_id(listed)[layout.MISPLACED]
    assert (
        clip["split"] in {"train", "dev"} and clip["audio_path"] == f"test/{layout.MISPLACED}.wav"
    )
    (caveat,) = [s for s in table_skips(listed) if "contradicts" in s.reason]
    assert caveat.kept and "split follows the list" in caveat.reason
    # labels_only has no folder to contradict the list
    labels = TmhintQiReader().read(root, {}, labels_only=True)
    assert _by_id(labels)[layout.MISPLACED]["split"] in {"train", "dev"}
    assert not [s for s in table_skips(labels) if "contradicts" in s.reason]
    # the other way round: a listed clip whose wav sits in train/
    (root / "test" / f"{TEST_CLIP}.wav").rename(root / "train" / f"{TEST_CLIP}.wav")
    table = TmhintQiReader().read(root, {})
    assert _by_id(table)[TEST_CLIP]["split"] in {"train", "dev"}
    (caveat,) = [s for s in table_skips(table) if "contradicts" in s.reason]
    assert caveat.examples == tuple(sorted((layout.MISPLACED, TEST_CLIP)))


def test_folder_prefix_in_file_name(tmp_path):
    root = tmp_path / "tmhint-qi"
    expected = layout.write(root, audio=False, prefix=True, misplaced=True)
    assert f"test/{layout.MISPLACED}.wav" in _raw(root).read_text()
    for split_by in ("auto", "path"):
        table = TmhintQiReader().read(root, {"split_by": split_by}, labels_only=True)
        _assert_matches(table, expected)
        assert _by_id(table)[layout.MISPLACED]["split"] == "test"
        (caveat,) = [s for s in table_skips(table) if "contradicts" in s.reason]
        assert caveat.examples == (layout.MISPLACED,)
        assert not [s for s in table_skips(table) if "absent" in s.reason]


def test_split_by_path_labels_only_without_prefixes_is_refused(tmp_path):
    root = tmp_path / "tmhint-qi"
    layout.write(root, audio=False)
    with pytest.raises(DataError) as err:
        TmhintQiReader().read(root, {"split_by": "path"}, labels_only=True)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{_raw(root)}: split_by 'path'")
    assert "train/ and test/ wav folders" in msg and "prefix in file_name" in msg
    assert "labels_only reads no audio" in msg and "use split_by 'list'" in msg
    with pytest.raises(DataError) as err:
        TmhintQiReader().read(root, {})
    assert "no wavs under train/ or test/" in str(err.value) and "labels_only" in str(err.value)


def test_raw_data_matching_none_of_the_list_is_refused(tmp_path):
    root = tmp_path / "tmhint-qi"
    layout.write(root, audio=False)
    text = _raw(root).read_text()
    _raw(root).write_text(
        text.replace("TMHINT_b2_", "TMHINT_b3_").replace("TMHINT_g4_", "TMHINT_g3_")
    )
    for split_by in ("auto", "list"):
        with pytest.raises(DataError) as err:
            TmhintQiReader().read(root, {"split_by": split_by}, labels_only=True)
        msg = str(err.value)
        assert msg.startswith(f"{_raw(root)}: none of its 83 rated clips is in the shipped list")
        assert "(1978 stems)" in msg and "option 'test_stems'" in msg and "wav folders" in msg
    # with the train/ and test/ prefixes the list only cross-checks: every test clip contradicts it
    prefixed = tmp_path / "prefixed"
    layout.write(prefixed, audio=False, prefix=True)
    text = _raw(prefixed).read_text()
    _raw(prefixed).write_text(
        text.replace("TMHINT_b2_", "TMHINT_b3_").replace("TMHINT_g4_", "TMHINT_g3_")
    )
    table = TmhintQiReader().read(prefixed, {}, labels_only=True)
    (caveat,) = [s for s in table_skips(table) if "contradicts" in s.reason]
    assert caveat.count == 18


def test_user_test_stems_file(tmp_path):
    root = tmp_path / "tmhint-qi"
    expected = layout.write(root, audio=False)
    mine = sorted({e["clip_id"] for e in expected if e["split"] == "test"} | {layout.MISPLACED})
    (root / "meta").mkdir()
    (root / "meta" / "test.txt").write_text(
        "# my own split\n\n"
        + "\n".join(f"test/{s}.wav" if i % 2 else s for i, s in enumerate(mine))
        + "\n"
    )
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text((root / "meta" / "test.txt").read_text())
    for value in ("meta/test.txt", str(elsewhere)):
        for split_by in ("auto", "list"):
            options = {"split_by": split_by, "test_stems": value}
            table = TmhintQiReader().read(root, options, labels_only=True)
            split = _splits(table)
            assert split[layout.MISPLACED] == "test"
            assert sorted(k for k, v in split.items() if v == "test") == mine
            reasons = " ".join(s.reason for s in table_skips(table))
            assert "absent" not in reasons and "contradicts" not in reasons
    with pytest.raises(DataError) as err:
        TmhintQiReader().read(root, {"test_stems": "meta/nope.txt"}, labels_only=True)
    msg = str(err.value)
    assert msg.startswith(f"{root / 'meta' / 'nope.txt'}: list of test stems not found")
    assert "option 'test_stems' is 'meta/nope.txt'" in msg and "relative to the data root" in msg
    with pytest.raises(DataError, match="option 'test_stems' must be a file path"):
        TmhintQiReader().read(root, {"test_stems": 3}, labels_only=True)
    (root / "bad.txt").write_text("# header\nDDAE_snr-2_babble_TMHINT_b2_22_02\nnot a stem\n")
    with pytest.raises(DataError) as err:
        TmhintQiReader().read(root, {"test_stems": "bad.txt"}, labels_only=True)
    assert f"{root / 'bad.txt'}:3: 'not a stem' is not a TMHINT-QI wav stem" in str(err.value)
    (root / "empty.txt").write_text("# only a header\n")
    with pytest.raises(DataError, match="no stems"):
        TmhintQiReader().read(root, {"test_stems": "empty.txt"}, labels_only=True)


def test_shipped_list_of_test_stems(tmp_path, monkeypatch):
    path = tmhint_qi.TEST_STEMS_FILE
    assert path == REPO / "benchmark" / "data" / "corpora" / "data" / "tmhint_qi_test_stems.txt"
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == tmhint_qi.TEST_STEMS_SHA256
    lines = data.decode().splitlines()
    header = [x for x in lines if x.startswith("#")]
    assert lines[: len(header)] == header and "PM25/MOS-Datasets" in "".join(header)
    stems = [x for x in lines if not x.startswith("#")]
    assert len(stems) == len(set(stems)) == N_LISTED and stems == sorted(stems)
    assert tmhint_qi.read_test_stems(path) == frozenset(stems) == layout.listed_test_stems()
    assert {s.split("_TMHINT_")[1][:2] for s in stems} == {"b2", "g4"}
    assert not set(layout.UNRATED) & set(stems)
    # setuptools ships it in the wheel
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    data_globs = pyproject["tool"]["setuptools"]["package-data"]["benchmark.data.corpora"]
    assert any(
        path.relative_to(REPO / "benchmark" / "data" / "corpora").match(g) for g in data_globs
    )
    # a damaged copy is detected on read
    damaged = tmp_path / path.name
    damaged.write_bytes(data.replace(b"b2_21_06", b"b2_21_07", 1))
    monkeypatch.setattr(tmhint_qi, "TEST_STEMS_FILE", damaged)
    root = tmp_path / "tmhint-qi"
    layout.write(root, audio=False)
    with pytest.raises(DataError) as err:
        TmhintQiReader().read(root, {}, labels_only=True)
    msg = str(err.value)
    assert msg.startswith(f"{damaged}: sha256 ") and tmhint_qi.TEST_STEMS_SHA256 in msg
    assert "damaged" in msg and "reinstall" in msg


def test_missing_and_ambiguous_wavs(corpus):
    root, _ = corpus
    stem = TEST_CLIP
    (root / "test" / f"{stem}.wav").unlink()
    with pytest.raises(DataError) as err:
        TmhintQiReader().read(root, {})
    assert f"1 clip(s) of raw_data.csv have no wav under train/ or test/ ({stem}.wav)" in str(
        err.value
    )
    for split_by in ("path", "list"):  # the audio is read from the folders either way
        with pytest.raises(DataError, match="1 clip\\(s\\) of raw_data.csv have no wav"):
            TmhintQiReader().read(root, {"split_by": split_by})
    assert TmhintQiReader().read(root, {}, labels_only=True).num_rows == 83
    dup = "DDAE_snr-2_babble_TMHINT_b1_01_03"
    (root / "test" / f"{dup}.wav").write_bytes((root / "train" / f"{dup}.wav").read_bytes())
    (root / "test" / f"{stem}.wav").write_bytes(b"")
    with pytest.raises(DataError, match=f"{dup}.wav is in both train/ and test/"):
        TmhintQiReader().read(root, {})


def test_system_of_unprocessed_and_clean_names(tmp_path):
    root = tmp_path / "tmhint-qi"
    layout.write(root, audio=False)
    with _raw(root).open("a") as f:
        f.write("900,TMHINT,TMHINT_b1_01_02,None,None,4,0.9,TMHINT_b1_01_02.wav\n")
    rows = _by_id(TmhintQiReader().read(root, {}, labels_only=True))
    assert rows["TMHINT_b1_01_02"]["system_id"] == "TMHINT"
    assert rows["TMHINT_b1_01_02"]["content_id"] == "b1_01_02"
    assert rows["TMHINT_b1_01_02"]["audio_path"] == "train/TMHINT_b1_01_02.wav"
    assert rows["clean_TMHINT_b1_01_01"]["system_id"] == "clean"
    assert rows["clean_TMHINT_b1_01_01"]["speaker_id"] == "b1"


def test_available(corpus, tmp_path):
    root, _ = corpus
    assert TmhintQiReader().available(root, {})
    assert not TmhintQiReader().available(tmp_path / "nowhere", {})
    assert not TmhintQiReader().available(root.parent, {})


def test_wrong_root(corpus, tmp_path):
    root, _ = corpus
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as err:
        TmhintQiReader().read(missing, {})
    assert str(missing) in str(err.value) and "raw_data.csv" in str(err.value)
    with pytest.raises(DataError) as err:
        TmhintQiReader().read(root.parent, {})
    msg = str(err.value)
    assert f"{root.parent / 'raw_data.csv'}: missing metadata file" in msg
    assert f"found it one level down at {_raw(root)}" in msg


def test_missing_metadata_file(corpus):
    root, _ = corpus
    _raw(root).unlink()
    with pytest.raises(DataError) as err:
        TmhintQiReader().read(root, {})
    assert str(_raw(root)) in str(err.value)
    assert "train/*.wav  test/*.wav" in str(err.value)


def test_unexpected_header(corpus):
    root, _ = corpus
    text = _raw(root).read_text()
    _raw(root).write_text(text.replace("quality_score", "quality", 1))
    with pytest.raises(DataError) as err:
        TmhintQiReader().read(root, {})
    msg = str(err.value)
    assert str(_raw(root)) in msg and "missing column(s) quality_score" in msg
    assert (
        "expected: idx,method,uttr,snr,noise,quality_score,intelligibility_score,file_name" in msg
    )


def test_non_numeric_score(corpus):
    root, _ = corpus
    line = _edit_row(root, TEST_CLIP, quality_score="good")
    with pytest.raises(DataError) as err:
        TmhintQiReader().read(root, {})
    assert f"{_raw(root)}:{line}: field 'quality_score': 'good' is not a number" in str(err.value)


def test_na_scores_count_as_missing(corpus):
    root, _ = corpus
    stem = "Noisy_snr5_white_TMHINT_b1_01_05"  # one rating in the fixture
    _edit_row(root, stem, quality_score="NA")
    table = TmhintQiReader().read(root, {})
    assert stem not in _by_id(table)
    (unrated,) = [s for s in table_skips(table) if not s.kept]
    assert unrated.count == 5 and stem in unrated.examples


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"quality_score": "7"}, "field 'quality_score': 7 is outside the 1–5 quality scale"),
        ({"quality_score": "0"}, "field 'quality_score': 0 is outside the 1–5"),
        ({"file_name": "MMSE_snr5_babble_b2_22_08"}, "does not follow the TMHINT-QI naming"),
        ({"file_name": f"wavs/{TEST_CLIP}.wav"}, "lies in 'wavs/'"),
    ],
)
def test_malformed_rows(corpus, fields, message):
    root, _ = corpus
    line = _edit_row(root, TEST_CLIP, **fields)
    with pytest.raises(DataError) as err:
        TmhintQiReader().read(root, {}, labels_only=True)
    assert f"{_raw(root)}:{line}: " in str(err.value)
    assert message in str(err.value)


def test_conflicting_prefixes(tmp_path):
    root = tmp_path / "tmhint-qi"
    layout.write(root, audio=False, prefix=True)
    stem = TEST_CLIP
    rows = [r for r in _raw(root).read_text().splitlines() if stem in r]
    assert len(rows) >= 2
    _raw(root).write_text(
        _raw(root).read_text().replace(rows[1], rows[1].replace("test/", "train/"))
    )
    with pytest.raises(
        DataError, match=f"puts {stem} in train/ but .*raw_data.csv:\\d+ put it in test/"
    ):
        TmhintQiReader().read(root, {}, labels_only=True)


def test_options(corpus):
    root, _ = corpus
    with pytest.raises(
        DataError,
        match=r"unknown option\(s\) seed.*known: split_by, test_stems, dev_fraction, dev_seed",
    ):
        TmhintQiReader().read(root, {"seed": 1})
    with pytest.raises(DataError, match="unknown option"):
        TmhintQiReader().available(root, {"seed": 1})
    for guess in ("folder", "speaker"):  # no option guesses the split from the speaker
        with pytest.raises(DataError, match="'split_by' must be one of auto, path, list"):
            TmhintQiReader().read(root, {"split_by": guess})
    with pytest.raises(DataError, match=r"'dev_fraction' must be in \[0, 1\)"):
        TmhintQiReader().read(root, {"dev_fraction": 1.0})
    with pytest.raises(DataError, match="'dev_seed' must be a non-negative integer"):
        TmhintQiReader().read(root, {"dev_seed": "x"})


def _intelligibility(root: Path) -> dict[str, list[float]]:
    """Every intelligibility_score of raw_data.csv per file_name, read here with csv."""
    scores: dict[str, list[float]] = defaultdict(list)
    with _raw(root).open(newline="") as f:
        for row in csv.DictReader(f):
            if row["intelligibility_score"].strip():
                scores[row["file_name"]].append(float(row["intelligibility_score"]))
    return scores


def test_intelligibility_label_column(tmp_path):
    """label_column intelligibility_score: MOS, count, std and ratings from that column, every
    clip with one (the four without a quality score included), the same splits otherwise."""
    root = tmp_path / "tmhint-qi"
    expected = layout.write(root, label="intelligibility_score")
    table = TmhintQiReader().read(root, {"label_column": "intelligibility_score"})
    _assert_matches(table, expected)
    validate_clips(table, (0.0, 1.0), "tmhint_qi_intelligibility")
    rows = _by_id(table)
    raw = _intelligibility(root)
    assert sorted(rows) == sorted(raw)
    assert set(layout.UNRATED) <= set(rows)
    for stem, values in raw.items():
        assert rows[stem]["ratings"] == values
        assert rows[stem]["mos"] == pytest.approx(statistics.fmean(values), abs=1e-12)
    quality = _by_id(TmhintQiReader().read(root, {}))
    assert quality[TEST_CLIP]["mos"] != rows[TEST_CLIP]["mos"]
    # the same sentences form dev for both columns
    dev = {r["content_id"] for r in rows.values() if r["split"] == "dev"}
    assert dev and dev == {r["content_id"] for r in quality.values() if r["split"] == "dev"}
    # on the quality scale the column does not validate: the task must declare its own range
    with pytest.raises(DataError, match=r"'mos' outside the declared score range \[1\.0, 5\.0\]"):
        validate_clips(table, (1.0, 5.0))
    # naming the quality column is the default label
    same = TmhintQiReader().read(root, {"label_column": "quality_score"})
    assert same.equals(TmhintQiReader().read(root, {}))


def test_label_column_missing_from_the_header_is_one_line(corpus):
    root, _ = corpus
    with _raw(root).open(newline="") as f:
        rows = [r[:6] + r[7:] for r in csv.reader(f)]
    with _raw(root).open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    assert TmhintQiReader().read(root, {}).num_rows > 0  # quality still reads
    with pytest.raises(DataError) as err:
        TmhintQiReader().read(root, {"label_column": "intelligibility_score"})
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{_raw(root)}: no column 'intelligibility_score' (the task's label")


def test_unknown_label_column(corpus):
    root, _ = corpus
    with pytest.raises(DataError, match=r"no score column 'idx'.*quality_score, intelligibility"):
        TmhintQiReader().read(root, {"label_column": "idx"})
