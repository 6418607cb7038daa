"""The SOMOS reader on a miniature release: values, variants, precision, and every refusal."""

from __future__ import annotations

import shutil
import statistics
from pathlib import Path

import pytest

from benchmark.data.corpora import get_reader, somos
from benchmark.data.corpora._native import table_skips
from benchmark.data.corpora.somos import SomosReader
from benchmark.data.tables import validate_clips
from benchmark.errors import DataError
from tests.layouts import assert_contract
from tests.layouts import somos as layout

CLEAN = Path("training_files/split1/clean")


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[Path, list[dict]]:
    root = tmp_path / "somos"
    return root, layout.write(root)


def _rows(table) -> dict[str, dict]:
    return {r["clip_id"]: r for r in table.to_pylist()}


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _line_of(path: Path, needle: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, start=1) if needle in line)


def _check(table, expected: list[dict], variant: str) -> None:
    got = assert_contract(validate_clips(table, (1, 5)).to_pylist(), expected, "somos")
    ratings = layout.ratings(variant)
    for e in expected:
        r = got[e["clip_id"]]
        assert r["audio_path"] == f"audios/{e['clip_id']}.wav"
        assert r["speaker_id"] is None and r["sample_rate"] is None and r["duration"] is None
        scores = ratings[e["clip_id"]]
        assert r["ratings"] == [float(s) for s in scores]
        assert r["n_ratings"] == len(scores)
        if len(scores) == 1:
            assert r["rating_std"] is None
        else:
            assert r["rating_std"] == pytest.approx(statistics.stdev(scores), abs=1e-12)
    assert {r["split"] for r in got.values()} == {"train", "dev", "test"}


def test_registered_and_layout_documented():
    assert isinstance(get_reader("somos"), SomosReader)
    assert somos.LAYOUT.strip() in somos.__doc__


def test_clips_match_fixture(corpus):
    root, expected = corpus
    table = SomosReader().read(root, {})
    _check(table, expected, "clean")
    assert table_skips(table) == []
    for r in table.to_pylist():
        assert (root / r["audio_path"]).is_file()
    single = _rows(table)[layout.SINGLE_RATING]
    assert single["n_ratings"] == 1 and single["rating_std"] is None


def test_full_variant(tmp_path):
    root = tmp_path / "somos"
    expected = layout.write(root, for_variant="full")
    table = SomosReader().read(root, {"variant": "full", "split": "split1"})
    _check(table, expected, "full")
    clean = _rows(SomosReader().read(root, {}))
    assert any(clean[e["clip_id"]]["mos"] != e["mos"] for e in expected)


def test_ids_without_wav_suffix(tmp_path):
    root = tmp_path / "somos"
    expected = layout.write(root, wav_suffix=False)
    assert ".wav" not in (root / CLEAN / "train_mos_list.txt").read_text()
    _check(SomosReader().read(root, {}), expected, "clean")


def test_means_rounded_to_printed_precision(tmp_path):
    root = tmp_path / "somos"
    expected = layout.write(root, mean_decimals=2)
    _check(SomosReader().read(root, {}), expected, "clean")
    # the list value is the MOS, not the recomputed mean, and rounding really happened
    clean = layout.ratings("clean")
    rounded = [e for e in expected if abs(e["mos"] - statistics.fmean(clean[e["clip_id"]])) > 1e-6]
    assert rounded
    got = _rows(SomosReader().read(root, {}))
    assert all(got[e["clip_id"]]["mos"] == e["mos"] for e in rounded)


def test_rounding_beyond_half_a_unit_is_refused(tmp_path):
    root = tmp_path / "somos"
    expected = layout.write(root, mean_decimals=2)
    clean = layout.ratings("clean")
    e = next(
        x
        for x in expected
        if x["split"] == "dev" and abs(x["mos"] - statistics.fmean(clean[x["clip_id"]])) < 0.004
    )
    path = root / CLEAN / "valid_mos_list.txt"
    _edit(path, f"{e['clip_id']}.wav,{e['mos']:.2f}", f"{e['clip_id']}.wav,{e['mos'] + 0.01:.2f}")
    with pytest.raises(DataError) as err:
        SomosReader().read(root, {})
    msg = str(err.value)
    assert e["clip_id"] in msg and str(path) in msg and str(root / CLEAN / "VALIDSET") in msg
    assert "tolerance 0.005" in msg


def test_labels_only_without_audio(tmp_path):
    root = tmp_path / "somos"
    expected = layout.write(root, audio=False)
    assert not (root / "audios").exists()
    _check(SomosReader().read(root, {}, labels_only=True), expected, "clean")


def test_available(corpus, tmp_path):
    root, _ = corpus
    assert SomosReader().available(root, {})
    assert SomosReader().available(root, {"variant": "full"})
    assert not SomosReader().available(tmp_path / "nope", {})
    assert not SomosReader().available(root.parent, {})
    assert not SomosReader().available(root, {"split": "split2"})
    (root / CLEAN / "TESTSET").unlink()
    assert not SomosReader().available(root, {})
    with pytest.raises(DataError, match=r"unknown option\(s\) subset.*variant"):
        SomosReader().available(root, {"subset": "clean"})


def test_wrong_root(corpus, tmp_path):
    root, _ = corpus
    with pytest.raises(DataError, match=r"(?s)nope: data root is not a folder.*utteranceId,mean"):
        SomosReader().read(tmp_path / "nope", {})
    with pytest.raises(DataError) as err:
        SomosReader().read(root.parent, {})
    msg = str(err.value)
    assert str(root.parent / CLEAN / "train_mos_list.txt") in msg
    assert "one level down" in msg and str(root / CLEAN / "train_mos_list.txt") in msg
    assert "systemId,utteranceId,choice,listenerId" in msg


@pytest.mark.parametrize("name", ["valid_mos_list.txt", "VALIDSET"])
def test_missing_metadata_file(corpus, name):
    root, _ = corpus
    (root / CLEAN / name).unlink()
    with pytest.raises(DataError) as err:
        SomosReader().read(root, {})
    assert f"{root / CLEAN / name}: missing metadata file" in str(err.value)
    assert "TRAINSET  VALIDSET  TESTSET" in str(err.value)


def test_missing_variant_folder(corpus):
    root, _ = corpus
    shutil.rmtree(root / "training_files" / "split1" / "full")
    with pytest.raises(DataError) as err:
        SomosReader().read(root, {"variant": "full"})
    msg = str(err.value)
    assert "no 'full' variant" in msg and "variants present" in msg and msg.count("clean") >= 1
    assert str(root / "training_files" / "split1" / "full") in msg


def test_missing_split_folder(corpus):
    root, _ = corpus
    with pytest.raises(DataError, match=r"no split 'split2'.*splits present in .*: split1"):
        SomosReader().read(root, {"split": "split2"})


def test_bad_options(corpus):
    root, _ = corpus
    with pytest.raises(DataError, match=r"unknown option\(s\) cluster_file.*split.*variant"):
        SomosReader().read(root, {"cluster_file": None})
    with pytest.raises(DataError, match="'variant' must be one of clean, full"):
        SomosReader().read(root, {"variant": "noisy"})
    with pytest.raises(DataError, match="'split' must name a folder"):
        SomosReader().read(root, {"split": "../split1"})


@pytest.mark.parametrize(
    ("name", "old", "new", "expected"),
    [
        ("train_mos_list.txt", "utteranceId,mean", "utteranceId,mos", "utteranceId,mean"),
        ("TESTSET", "systemId,utteranceId,choice", "system,utterance,choice", "systemId"),
    ],
)
def test_unexpected_header(corpus, name, old, new, expected):
    root, _ = corpus
    path = root / CLEAN / name
    _edit(path, old, new)
    with pytest.raises(DataError) as err:
        SomosReader().read(root, {})
    msg = str(err.value)
    assert f"{path}: unexpected header" in msg and f"expected: {expected}" in msg


def test_non_numeric_mean(corpus):
    root, _ = corpus
    path = root / CLEAN / "test_mos_list.txt"
    line = _line_of(path, "wiki_0177_015.wav,")
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[line - 1] = "wiki_0177_015.wav,NaN?"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        SomosReader().read(root, {})
    assert f"{path}:{line}: field 'mean': 'NaN?' is not a number" in str(err.value)
    assert "utteranceId,mean" in str(err.value)


def test_non_numeric_choice(corpus):
    root, _ = corpus
    path = root / CLEAN / "TRAINSET"
    lines = path.read_text(encoding="utf-8").splitlines()
    fields = lines[3].split(",")
    fields[2] = "good"
    lines[3] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"TRAINSET:4: field 'choice': 'good' is not a number"):
        SomosReader().read(root, {})


def test_system_disagrees_with_utterance(corpus):
    root, _ = corpus
    path = root / CLEAN / "VALIDSET"
    line = _line_of(path, "103,wiki_0003_103.wav,")
    _edit(path, "103,wiki_0003_103.wav,", "200,wiki_0003_103.wav,")
    with pytest.raises(DataError) as err:
        SomosReader().read(root, {})
    msg = str(err.value)
    assert f"{path}:{line}: field 'systemId' is '200'" in msg
    assert "does not end in '_200'" in msg


def test_mean_disagrees_with_ratings(corpus):
    root, expected = corpus
    e = next(x for x in expected if x["clip_id"] == "booksent_2012_0005_103")
    path = root / CLEAN / "train_mos_list.txt"
    _edit(
        path,
        f"booksent_2012_0005_103.wav,{e['mos']!r}",
        f"booksent_2012_0005_103.wav,{e['mos'] + 0.001!r}",
    )
    with pytest.raises(DataError) as err:
        SomosReader().read(root, {})
    msg = str(err.value)
    assert (
        "booksent_2012_0005_103" in msg
        and str(path) in msg
        and str(root / CLEAN / "TRAINSET") in msg
    )


def test_listed_clip_without_ratings(corpus):
    root, _ = corpus
    path = root / CLEAN / "TESTSET"
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if ",wiki_0177_200.wav," not in line]
    assert len(kept) < len(lines)
    path.write_text("\n".join(kept) + "\n", encoding="utf-8")
    with pytest.raises(
        DataError, match=r"clip 'wiki_0177_200' has no per-rating rows in .*TESTSET"
    ):
        SomosReader().read(root, {})


def test_duplicate_across_lists(corpus):
    root, _ = corpus
    train = root / CLEAN / "train_mos_list.txt"
    first = train.read_text(encoding="utf-8").splitlines()[1]
    test = root / CLEAN / "test_mos_list.txt"
    test.write_text(test.read_text(encoding="utf-8") + first + "\n", encoding="utf-8")
    n = len(test.read_text(encoding="utf-8").splitlines())
    with pytest.raises(DataError) as err:
        SomosReader().read(root, {})
    assert f"{test}:{n}: clip" in str(err.value) and f"first at {train}:2" in str(err.value)
