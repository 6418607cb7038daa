"""The BVCC reader on a miniature native `main/` folder: values, skips, and every refusal."""

from __future__ import annotations

import shutil
import statistics
from pathlib import Path

import pytest

from benchmark.data.corpora import bvcc, get_reader
from benchmark.data.corpora._native import table_skips
from benchmark.data.corpora.bvcc import BvccReader
from benchmark.data.tables import validate_clips
from benchmark.errors import DataError
from tests.layouts import assert_contract
from tests.layouts import bvcc as layout

SETS = Path("DATA/sets")


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[Path, list[dict]]:
    root = tmp_path / "main"
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


def test_registered_and_layout_documented():
    assert isinstance(get_reader("bvcc"), BvccReader)
    assert bvcc.LAYOUT.strip() in bvcc.__doc__


def test_clips_match_fixture(corpus):
    root, expected = corpus
    table = validate_clips(BvccReader().read(root, {}), (1, 5))
    got = assert_contract(table.to_pylist(), expected, "bvcc")
    ratings = layout.ratings()
    for e in expected:
        r = got[e["clip_id"]]
        assert r["audio_path"] == f"DATA/wav/{e['clip_id']}.wav"
        assert (root / r["audio_path"]).is_file()
        assert r["speaker_id"] is None and r["duration"] is None
        assert r["sample_rate"] == 16000
        if e["clip_id"] in layout.NO_RATINGS:
            assert r["n_ratings"] is None and r["rating_std"] is None and r["ratings"] is None
        else:
            scores = ratings[e["clip_id"]]
            assert r["ratings"] == [float(s) for s in scores]  # file order
            assert r["n_ratings"] == len(scores) == 8
            assert r["rating_std"] == pytest.approx(statistics.stdev(scores), abs=1e-12)
            assert r["mos"] == pytest.approx(statistics.fmean(scores), abs=1e-12)
    assert {r["split"] for r in got.values()} == {"train", "dev", "test"}


def test_kept_skips_are_recorded(corpus):
    root, _ = corpus
    skips = table_skips(BvccReader().read(root, {}))
    assert len(skips) == 2 and all(s.kept for s in skips)
    no_ratings = next(s for s in skips if "per-rating" in s.reason)
    assert no_ratings.count == 1 and no_ratings.examples == tuple(sorted(layout.NO_RATINGS))
    assert "TRAINSET" in no_ratings.reason
    no_cluster = next(s for s in skips if "cluster file" in s.reason)
    assert no_cluster.count == 1 and no_cluster.examples == tuple(sorted(layout.NOT_CLUSTERED))
    assert "transcriptions_clustered.csv" in no_cluster.reason


def test_labels_only_without_audio(tmp_path):
    root = tmp_path / "main"
    expected = layout.write(root, audio=False)
    assert not (root / "DATA" / "wav").exists()
    table = BvccReader().read(root, {}, labels_only=True)
    assert sorted(table.column("clip_id").to_pylist()) == sorted(e["clip_id"] for e in expected)
    with pytest.raises(DataError, match=r"audio folder is missing.*01_get\.py.*--labels-only"):
        BvccReader().read(root, {})


def test_empty_audio_folder(tmp_path):
    root = tmp_path / "main"
    layout.write(root, audio=False)
    (root / "DATA" / "wav").mkdir()
    with pytest.raises(DataError, match=r"DATA/wav: the audio folder is empty.*02_gather\.py"):
        BvccReader().read(root, {})


def test_missing_audio_left_out_and_counted(corpus):
    root, expected = corpus
    gone = ["sys64e2f-utt9c183cd", "sys9efbf-utt406ec07"]
    for cid in gone:
        (root / "DATA" / "wav" / f"{cid}.wav").unlink()
    table = BvccReader().read(root, {})
    assert sorted(table.column("clip_id").to_pylist()) == sorted(
        e["clip_id"] for e in expected if e["clip_id"] not in gone
    )
    left_out = [s for s in table_skips(table) if not s.kept]
    assert len(left_out) == 1
    assert left_out[0].count == 2 and left_out[0].examples == tuple(sorted(gone))
    assert "03_preprocess.py" in left_out[0].reason
    # labels_only never looks at audio, so nothing is left out
    assert BvccReader().read(root, {}, labels_only=True).num_rows == len(expected)


def test_rating_header_tolerated(tmp_path):
    root = tmp_path / "main"
    expected = layout.write(root, rating_header=True)
    table = BvccReader().read(root, {})
    assert table.num_rows == len(expected)
    assert sum(n is not None for n in table.column("n_ratings").to_pylist()) == len(expected) - 1


def test_available(corpus, tmp_path):
    root, _ = corpus
    assert BvccReader().available(root, {})
    assert not BvccReader().available(tmp_path / "nope", {})
    assert not BvccReader().available(root.parent, {})
    (root / "transcriptions_clustered.csv").unlink()
    assert not BvccReader().available(root, {})
    assert BvccReader().available(root, {"cluster_file": None})
    with pytest.raises(DataError, match="cluster_file"):
        BvccReader().available(root, {"clusters": "x.csv"})


def test_wrong_root(corpus, tmp_path):
    root, _ = corpus
    with pytest.raises(DataError, match=r"(?s)nope: data root is not a folder.*DATA/sets/TRAINSET"):
        BvccReader().read(tmp_path / "nope", {})
    with pytest.raises(DataError) as err:
        BvccReader().read(root.parent, {})
    msg = str(err.value)
    assert str(root.parent / SETS / "train_mos_list.txt") in msg
    assert "one level down" in msg and str(root / SETS / "train_mos_list.txt") in msg
    assert "sys64e2f-utt9c183cd.wav,3.375" in msg


@pytest.mark.parametrize("name", ["val_mos_list.txt", "TESTSET"])
def test_missing_metadata_file(corpus, name):
    root, _ = corpus
    (root / SETS / name).unlink()
    with pytest.raises(DataError) as err:
        BvccReader().read(root, {})
    assert f"{root / SETS / name}: missing metadata file" in str(err.value)
    assert "DATA/sets/TRAINSET  DEVSET  TESTSET" in str(err.value)


def test_missing_cluster_file(corpus):
    root, _ = corpus
    (root / "transcriptions_clustered.csv").unlink()
    with pytest.raises(DataError) as err:
        BvccReader().read(root, {})
    msg = str(err.value)
    assert str(root / "transcriptions_clustered.csv") in msg
    assert "mosrm download bvcc" in msg and "UTMOS22" in msg and "cluster_file: null" in msg


def test_cluster_file_option(corpus, tmp_path):
    root, expected = corpus
    moved = tmp_path / "elsewhere" / "clusters.csv"
    moved.parent.mkdir()
    shutil.move(root / "transcriptions_clustered.csv", moved)
    got = _rows(BvccReader().read(root, {"cluster_file": str(moved)}))
    assert {e["clip_id"]: e["content_id"] for e in expected} == {
        k: r["content_id"] for k, r in got.items()
    }
    table = BvccReader().read(root, {"cluster_file": None})
    assert set(table.column("content_id").to_pylist()) == {None}
    null_skip = [s for s in table_skips(table) if "cluster_file: null" in s.reason]
    assert len(null_skip) == 1 and null_skip[0].kept and null_skip[0].count == len(expected)
    with pytest.raises(DataError, match="must be a path"):
        BvccReader().read(root, {"cluster_file": 3})


def test_unknown_option(corpus):
    root, _ = corpus
    with pytest.raises(DataError, match=r"unknown option\(s\) variant.*cluster_file"):
        BvccReader().read(root, {"variant": "clean"})


def test_unexpected_cluster_header(corpus):
    root, _ = corpus
    path = root / "transcriptions_clustered.csv"
    _edit(path, "wav_name,transcription,track,cluster,reference", "wav,text,track,group,ref")
    with pytest.raises(DataError) as err:
        BvccReader().read(root, {})
    msg = str(err.value)
    assert f"{path}: unexpected header" in msg
    assert "expected: wav_name,transcription,track,cluster,reference" in msg


def test_non_integer_cluster(corpus):
    root, _ = corpus
    path = root / "transcriptions_clustered.csv"
    _edit(path, ",main,0,", ",main,zero,")
    line = _line_of(path, ",main,zero,")
    with pytest.raises(DataError, match=rf"clustered\.csv:{line}: field 'cluster': 'zero'"):
        BvccReader().read(root, {})


def test_conflicting_cluster(corpus):
    root, _ = corpus
    path = root / "transcriptions_clustered.csv"
    text = path.read_text(encoding="utf-8")
    path.write_text(text + "sys64e2f-utt9c183cd.wav,x,main,7,x\n", encoding="utf-8")
    with pytest.raises(DataError, match="listed again with another cluster"):
        BvccReader().read(root, {})


def test_non_numeric_mos(corpus):
    root, _ = corpus
    path = root / SETS / "val_mos_list.txt"
    line = _line_of(path, "sys9efbf-utt406ec07.wav")
    text = path.read_text(encoding="utf-8").splitlines()
    text[line - 1] = "sys9efbf-utt406ec07.wav,n/a"
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        BvccReader().read(root, {})
    assert f"{path}:{line}: field 'MOS': 'n/a' is not a number" in str(err.value)
    assert "sys64e2f-utt9c183cd.wav,3.375" in str(err.value)


def test_mos_list_with_header_is_refused(corpus):
    root, _ = corpus
    path = root / SETS / "train_mos_list.txt"
    path.write_text("wav_name,mos\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(DataError, match=r"train_mos_list\.txt:1: 'wav_name' is not a BVCC wav"):
        BvccReader().read(root, {})


def test_non_numeric_rating(corpus):
    root, _ = corpus
    path = root / SETS / "DEVSET"
    lines = path.read_text(encoding="utf-8").splitlines()
    fields = lines[4].split(",")
    fields[2] = "four"
    lines[4] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"DEVSET:5: field 'rating': 'four' is not a number"):
        BvccReader().read(root, {})


def test_short_rating_row(corpus):
    root, _ = corpus
    path = root / SETS / "TESTSET"
    path.write_text(path.read_text(encoding="utf-8") + "sys7ab3c,sys7ab3c-utt40cf951.wav\n")
    n = len(path.read_text(encoding="utf-8").splitlines())
    with pytest.raises(DataError, match=rf"TESTSET:{n}: 2 field\(s\), expected at least 3"):
        BvccReader().read(root, {})


def test_rating_system_disagrees_with_name(corpus):
    root, _ = corpus
    path = root / SETS / "TRAINSET"
    _edit(path, "sys7ab3c,sys7ab3c-utt925e844.wav", "sys2e1cb,sys7ab3c-utt925e844.wav")
    with pytest.raises(DataError, match="'sys2e1cb' but the utterance 'sys7ab3c-utt925e844.wav'"):
        BvccReader().read(root, {})


def test_mean_disagrees_with_list(corpus):
    root, _ = corpus
    scores = layout.ratings()["sys7ab3c-utt925e844"]
    path = root / SETS / "TRAINSET"
    line = f"sys7ab3c,sys7ab3c-utt925e844.wav,{scores[0]},"
    flipped = f"sys7ab3c,sys7ab3c-utt925e844.wav,{6 - scores[0] if scores[0] != 3 else 4},"
    _edit(path, line, flipped)
    with pytest.raises(DataError) as err:
        BvccReader().read(root, {})
    msg = str(err.value)
    assert "sys7ab3c-utt925e844.wav" in msg
    assert str(root / SETS / "train_mos_list.txt") in msg and str(path) in msg


def test_float_noise_tolerated(corpus):
    root, expected = corpus
    path = root / SETS / "test_mos_list.txt"
    e = next(x for x in expected if x["clip_id"] == "sys7ab3c-utt40cf951")
    _edit(
        path, f"sys7ab3c-utt40cf951.wav,{e['mos']!r}", f"sys7ab3c-utt40cf951.wav,{e['mos'] + 4e-7}"
    )
    got = _rows(BvccReader().read(root, {}))["sys7ab3c-utt40cf951"]
    assert got["mos"] == pytest.approx(e["mos"] + 4e-7, abs=1e-12)  # the list value is kept


def test_duplicate_in_one_list(corpus):
    root, _ = corpus
    path = root / SETS / "train_mos_list.txt"
    text = path.read_text(encoding="utf-8").rstrip("\n")
    first = text.splitlines()[0]
    path.write_text(text + "\n" + first + "\n", encoding="utf-8")
    n = len(text.splitlines()) + 1
    with pytest.raises(DataError, match=rf"train_mos_list\.txt:{n}: clip .* listed twice"):
        BvccReader().read(root, {})


def test_duplicate_across_lists(corpus):
    root, _ = corpus
    train = root / SETS / "train_mos_list.txt"
    first = train.read_text(encoding="utf-8").splitlines()[0]
    test = root / SETS / "test_mos_list.txt"
    test.write_text(test.read_text(encoding="utf-8") + first + "\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        BvccReader().read(root, {})
    assert "listed twice" in str(err.value) and f"{train}:1" in str(err.value)


def test_bad_wav_name(corpus):
    root, _ = corpus
    path = root / SETS / "val_mos_list.txt"
    path.write_text("utt-only,3.0\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(DataError, match=r"val_mos_list\.txt:1: 'utt-only' is not a BVCC wav name"):
        BvccReader().read(root, {})
