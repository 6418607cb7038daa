"""The TMHINT-QI reader on a miniature native corpus: per-rating aggregation, splits, dev groups,
skips and layout errors."""

from __future__ import annotations

import csv
import statistics
from collections import defaultdict
from pathlib import Path

import pytest

from benchmark.corpora import get_reader
from benchmark.corpora._native import table_skips
from benchmark.corpora.tmhint_qi import TmhintQiReader
from benchmark.errors import DataError
from benchmark.tables import validate_clips
from tests.layouts import assert_contract
from tests.layouts import tmhint_qi as layout


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
        for key in ("speaker_id", "n_ratings", "audio_path"):
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


def test_labels_only_without_audio(tmp_path):
    root = tmp_path / "tmhint-qi"
    expected = layout.write(root, audio=False)
    assert not list(root.rglob("*.wav"))
    _assert_matches(TmhintQiReader().read(root, {}, labels_only=True), expected)
    speaker = TmhintQiReader().read(root, {"split_by": "speaker"}, labels_only=True)
    _assert_matches(speaker, expected)


def test_dev_is_whole_content_groups(corpus):
    root, _ = corpus
    rows = TmhintQiReader().read(root, {}).to_pylist()
    contents = {s: {r["content_id"] for r in rows if r["split"] == s} for s in ("train", "dev")}
    assert contents["dev"] and not contents["train"] & contents["dev"]
    n = len(contents["train"] | contents["dev"])
    assert n == 20 and len(contents["dev"]) == round(0.1 * n)
    assert all(r["speaker_id"] not in {"b2", "g4"} for r in rows if r["split"] == "dev")


def test_dev_options(corpus):
    root, _ = corpus

    def dev(options: dict) -> set[str]:
        rows = TmhintQiReader().read(root, options).to_pylist()
        return {r["content_id"] for r in rows if r["split"] == "dev"}

    default = dev({})
    assert dev({"dev_seed": 1337, "dev_fraction": 0.1}) == default
    assert any(dev({"dev_seed": s}) != default for s in (1, 2, 3))
    assert len(dev({"dev_fraction": 0.25})) == 5
    assert len(dev({"dev_fraction": 0.13})) == 3  # round(2.6), not int(2.6)
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


def test_split_by_folder_versus_speaker(tmp_path):
    root = tmp_path / "tmhint-qi"
    expected = layout.write(root, misplaced=True)
    table = TmhintQiReader().read(root, {})
    _assert_matches(table, expected)
    clip = _by_id(table)[layout.MISPLACED]
    assert clip["split"] == "test" and clip["audio_path"].startswith("test/")
    (caveat,) = [s for s in table_skips(table) if "contradicts" in s.reason]
    assert caveat.kept and caveat.examples == (layout.MISPLACED,)
    assert _by_id(TmhintQiReader().read(root, {"split_by": "path"}))[layout.MISPLACED]["split"] == (
        "test"
    )
    by_speaker = _by_id(TmhintQiReader().read(root, {"split_by": "speaker"}))[layout.MISPLACED]
    assert by_speaker["split"] in {"train", "dev"}
    assert by_speaker["audio_path"] == f"train/{layout.MISPLACED}.wav"
    labels = TmhintQiReader().read(root, {}, labels_only=True)
    assert _by_id(labels)[layout.MISPLACED]["split"] in {"train", "dev"}
    assert not [s for s in table_skips(labels) if "contradicts" in s.reason]


def test_folder_prefix_in_file_name(tmp_path):
    root = tmp_path / "tmhint-qi"
    expected = layout.write(root, audio=False, prefix=True, misplaced=True)
    assert f"test/{layout.MISPLACED}.wav" in _raw(root).read_text()
    for split_by in ("auto", "path"):
        table = TmhintQiReader().read(root, {"split_by": split_by}, labels_only=True)
        _assert_matches(table, expected)
        assert _by_id(table)[layout.MISPLACED]["split"] == "test"


def test_split_by_path_needs_audio_or_prefix(tmp_path):
    root = tmp_path / "tmhint-qi"
    layout.write(root, audio=False)
    with pytest.raises(DataError) as err:
        TmhintQiReader().read(root, {"split_by": "path"}, labels_only=True)
    assert "split_by 'path' needs the train/ and test/ wav folders" in str(err.value)
    assert str(_raw(root)) in str(err.value)
    with pytest.raises(DataError) as err:
        TmhintQiReader().read(root, {})
    assert "no wavs under train/ or test/" in str(err.value) and "labels_only" in str(err.value)


def test_missing_and_ambiguous_wavs(corpus):
    root, _ = corpus
    stem = "KLT_snr0_pink_TMHINT_g4_24_02"
    (root / "test" / f"{stem}.wav").unlink()
    with pytest.raises(DataError) as err:
        TmhintQiReader().read(root, {})
    assert f"1 clip(s) of raw_data.csv have no wav under train/ or test/ ({stem}.wav)" in str(
        err.value
    )
    assert TmhintQiReader().read(root, {"split_by": "speaker"}).num_rows == 63
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
    line = _edit_row(root, "KLT_snr0_pink_TMHINT_b2_21_03", quality_score="good")
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
        ({"file_name": "DDAE_snr-2_babble_b2_21_03"}, "does not follow the TMHINT-QI naming"),
        ({"file_name": "wavs/KLT_snr0_pink_TMHINT_b2_21_03.wav"}, "lies in 'wavs/'"),
    ],
)
def test_malformed_rows(corpus, fields, message):
    root, _ = corpus
    line = _edit_row(root, "KLT_snr0_pink_TMHINT_b2_21_03", **fields)
    with pytest.raises(DataError) as err:
        TmhintQiReader().read(root, {}, labels_only=True)
    assert f"{_raw(root)}:{line}: " in str(err.value)
    assert message in str(err.value)


def test_conflicting_prefixes(tmp_path):
    root = tmp_path / "tmhint-qi"
    layout.write(root, audio=False, prefix=True)
    stem = "KLT_snr0_pink_TMHINT_b2_21_03"
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
        DataError, match=r"unknown option\(s\) seed.*known: split_by, dev_fraction, dev_seed"
    ):
        TmhintQiReader().read(root, {"seed": 1})
    with pytest.raises(DataError, match="unknown option"):
        TmhintQiReader().available(root, {"seed": 1})
    with pytest.raises(DataError, match="'split_by' must be one of auto, path, speaker"):
        TmhintQiReader().read(root, {"split_by": "folder"})
    with pytest.raises(DataError, match=r"'dev_fraction' must be in \[0, 1\)"):
        TmhintQiReader().read(root, {"dev_fraction": 1.0})
    with pytest.raises(DataError, match="'dev_seed' must be a non-negative integer"):
        TmhintQiReader().read(root, {"dev_seed": "x"})
