"""SingMOS reader on miniature native layouts: both layouts, options, skips and clear errors."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from benchmark.data.corpora import get_reader, singmos
from benchmark.data.corpora._native import table_skips
from benchmark.data.corpora.singmos import SingmosReader
from benchmark.data.tables import validate_clips
from benchmark.errors import DataError
from tests.layouts import assert_contract
from tests.layouts import singmos as layout

READER = SingmosReader()
RATINGS = {utt: ratings for utt, _, ratings, _, _ in layout.CLIPS}


def _read(root: Path, options: dict | None = None, **kw: bool) -> list[dict]:
    table = validate_clips(READER.read(root, dict(options or {}), **kw), (1, 5), root)
    return table.to_pylist()


def _assert_matches(rows: list[dict], expected: list[dict]) -> None:
    assert [r["clip_id"] for r in rows] == sorted(e["clip_id"] for e in expected)
    for row in assert_contract(rows, expected, "singmos").values():
        assert row["speaker_id"] is None


def _json_line(path: Path, key: str) -> int:
    """Line of `"key":` in a JSON file, found without the reader's code."""
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        if f'"{key}":' in text:
            return number
    raise AssertionError(key)


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data, indent=4) + "\n")


@pytest.fixture
def hf(tmp_path: Path) -> tuple[Path, list[dict]]:
    root = tmp_path / "SingMOS"
    return root, layout.write(root)


@pytest.fixture
def vm24(tmp_path: Path) -> tuple[Path, list[dict]]:
    root = tmp_path / "voicemos2024"
    return root, layout.write(root, layout="voicemos24")


def test_registered_reader():
    assert isinstance(get_reader("singmos"), SingmosReader)


def test_docstring_shows_both_layouts_verbatim():
    for line in (singmos.LAYOUT_HF + singmos.LAYOUT_VOICEMOS24).splitlines():
        assert line.strip() in singmos.__doc__


# --- Hugging Face layout -------------------------------------------------------------------------


def test_hf_matches_fixture(hf):
    root, expected = hf
    rows = _read(root)
    _assert_matches(rows, expected)
    assert {r["split"] for r in rows} == {"train", "dev", "test"}
    for row in rows:
        utt = row["clip_id"]
        ratings = RATINGS[utt]
        assert row["audio_path"] == f"wavs/{utt}.wav"
        assert (root / row["audio_path"]).is_file()
        assert row["sample_rate"] == layout.SAMPLE_RATES[row["system_id"]]
        assert row["n_ratings"] == len(ratings)
        assert row["ratings"] == ([float(s) for s in ratings] or None)
        if len(ratings) < 2:
            assert row["rating_std"] is None
        else:
            assert row["rating_std"] == pytest.approx(statistics.stdev(ratings), abs=1e-12)
    assert {r["sample_rate"] for r in rows} == {16000, 24000, 44100}


def test_hf_records_left_out_clips_and_missing_content_key(hf):
    root, expected = hf
    skips = {s.reason: s for s in table_skips(READER.read(root, {}))}
    unmapped = next(s for r, s in skips.items() if "eval_v2" in r)
    assert (unmapped.count, unmapped.examples) == (2, ("sys0001-utt0021", "sys0003-utt0022"))
    assert not unmapped.kept
    unlisted = next(s for r, s in skips.items() if r.startswith("in info/score.json"))
    assert (unlisted.count, unlisted.examples) == (1, ("sys0004-utt0023",))
    caveat = skips[singmos.NO_CONTENT_KEY]
    assert caveat.kept and caveat.count == len(expected)


def test_hf_labels_only_without_audio(tmp_path):
    expected = layout.write(tmp_path, audio=False)
    assert not (tmp_path / "wavs").exists()
    _assert_matches(_read(tmp_path, labels_only=True), expected)


def test_hf_test_list_named_eval_is_read_by_default(tmp_path):
    expected = layout.write(tmp_path, test_name="eval")
    split = json.loads((tmp_path / "info/split.json").read_text())
    assert "eval" in split["singmos_v1"] and "eval_v1" not in split["singmos_v1"]
    _assert_matches(_read(tmp_path), expected)


def test_hf_without_sys_info_leaves_sample_rate_unknown(tmp_path):
    layout.write(tmp_path, sys_info=False)
    assert {r["sample_rate"] for r in _read(tmp_path)} == {None}


def test_hf_bad_sample_rate(hf):
    root, _ = hf
    path = root / "info/sys_info.json"
    _edit_json(path, lambda d: d["sys0002"].update(sample_rate="24k"))
    with pytest.raises(DataError) as err:
        READER.read(root, {})
    msg = str(err.value)
    assert f"{path}:{_json_line(path, 'sys0002')}" in msg
    assert "sample_rate" in msg and "sys0002" in msg


def test_hf_datasets_option(hf):
    root, expected = hf
    rows = _read(root, {"datasets": ["singmos_v2"]})
    mapped = [u for u in layout.SECOND_DATASET if u in {e["clip_id"] for e in expected}]
    _assert_matches(rows, [e for e in expected if e["clip_id"] in mapped])
    reasons = [s.reason for s in table_skips(READER.read(root, {"datasets": "singmos_v2"}))]
    assert any("option 'datasets'" in r for r in reasons)
    with pytest.raises(DataError, match=r"singmos_v3.*datasets: singmos_v1, singmos_v2"):
        READER.read(root, {"datasets": ["singmos_v3"]})


def test_hf_splits_option(hf):
    root, expected = hf
    rows = _read(root, {"splits": {"train": "train", "test": ["eval_v1", "eval_v2"]}})
    ids = {r["clip_id"] for r in rows if r["split"] == "test"}
    want = {e["clip_id"] for e in expected if e["split"] == "test"}
    assert ids == want | {"sys0001-utt0021", "sys0003-utt0022"}
    assert {r["split"] for r in rows} == {"train", "test"}
    with pytest.raises(DataError) as err:
        READER.read(root, {"splits": {"dev": "validation"}})
    msg = str(err.value)
    assert str(root / "info/split.json") in msg and "validation" in msg and "valid" in msg
    with pytest.raises(DataError, match="mapped to both"):
        READER.read(root, {"splits": {"dev": "valid", "test": "valid"}})
    with pytest.raises(DataError, match=r"unknown split\(s\) validation"):
        READER.read(root, {"splits": {"validation": "valid"}})


def test_hf_clip_in_two_of_our_splits(hf):
    root, _ = hf
    path = root / "info/split.json"
    _edit_json(path, lambda d: d["singmos_v2"]["valid"].append("sys0001-utt0001"))
    with pytest.raises(DataError) as err:
        READER.read(root, {})
    msg = str(err.value)
    assert str(path) in msg and "'sys0001-utt0001'" in msg
    assert "singmos_v1/train -> train" in msg and "singmos_v2/valid -> dev" in msg
    # The same clip listed by two datasets under the same split is read once.
    _edit_json(path, lambda d: d["singmos_v2"]["valid"].remove("sys0001-utt0001"))
    _edit_json(path, lambda d: d["singmos_v2"]["train"].append("sys0001-utt0002"))
    assert len(_read(root)) == 20


def test_hf_listed_utterance_missing_from_score_json(hf):
    root, _ = hf
    _edit_json(
        root / "info/split.json", lambda d: d["singmos_v1"]["train"].append("sys0009-utt0099")
    )
    with pytest.raises(DataError) as err:
        READER.read(root, {})
    msg = str(err.value)
    assert str(root / "info/split.json") in msg and str(root / "info/score.json") in msg
    assert "sys0009-utt0099" in msg and "singmos_v1" in msg


def test_hf_non_numeric_score_names_file_and_line(hf):
    root, _ = hf
    path = root / "info/score.json"
    _edit_json(path, lambda d: d["utterance"]["sys0002-utt0003"]["score"].update(mos="good"))
    with pytest.raises(DataError) as err:
        READER.read(root, {})
    msg = str(err.value)
    assert f"{path}:{_json_line(path, 'sys0002-utt0003')}:" in msg
    assert "score.mos" in msg and "'good'" in msg and "info/score.json" in msg


def test_hf_mos_disagreeing_with_ratings(hf):
    root, _ = hf
    path = root / "info/score.json"
    _edit_json(path, lambda d: d["utterance"]["sys0001-utt0002"]["score"].update(mos=3.5))
    with pytest.raises(DataError) as err:
        READER.read(root, {})
    msg = str(err.value)
    assert f"{path}:{_json_line(path, 'sys0001-utt0002')}:" in msg
    assert "3.5" in msg and "average 3.400000" in msg
    # Rounded to the decimals it is written with, the mean may differ: 3.4 is 3.40 and 3.4.
    _edit_json(path, lambda d: d["utterance"]["sys0001-utt0002"]["score"].update(mos=3.4))
    assert len(_read(root)) == 20


def test_hf_judges_and_scores_of_different_length(hf):
    root, _ = hf
    _edit_json(
        root / "info/score.json",
        lambda d: d["utterance"]["sys0001-utt0001"]["score"]["judges"].pop(),
    )
    with pytest.raises(DataError, match=r"sys0001-utt0001.*4 judges but 5 scores"):
        READER.read(root, {})


def test_hf_unexpected_structure(hf):
    root, _ = hf
    path = root / "info/score.json"
    path.write_text(json.dumps({"sys0001-utt0001": {"mos": 4.2}}))
    with pytest.raises(DataError) as err:
        READER.read(root, {})
    assert str(path) in str(err.value) and '"utterance"' in str(err.value)
    path.write_text('{"utterance": {\n  "a": 1,\n}\n')
    with pytest.raises(DataError, match=rf"{path}:3: not valid JSON"):
        READER.read(root, {})
    (root / "info/split.json").write_text(json.dumps({"singmos_v1": ["sys0001-utt0001"]}))
    with pytest.raises(DataError, match="dataset 'singmos_v1' is not an object of split lists"):
        READER.read(root, {})


def test_hf_missing_score_json(hf):
    root, _ = hf
    (root / "info/score.json").unlink()
    with pytest.raises(DataError) as err:
        READER.read(root, {})
    msg = str(err.value)
    assert f"{root / 'info/score.json'}: missing metadata file" in msg
    assert "info/split.json     {" in msg  # the expected layout tree


# --- VoiceMOS'24 zip layout ----------------------------------------------------------------------


def test_voicemos24_matches_fixture(vm24):
    root, expected = vm24
    rows = _read(root)
    _assert_matches(rows, expected)
    assert {r["split"] for r in rows} == {"train", "dev", "test"}
    for row in rows:
        assert row["audio_path"] == f"DATA/wav/{row['clip_id']}.wav"
        assert (root / row["audio_path"]).is_file()
        assert row["system_id"] == row["clip_id"].split("-")[2]
        assert (row["n_ratings"], row["rating_std"], row["sample_rate"]) == (None, None, None)
    assert _read(root, {"layout": "voicemos24"}) == rows
    [caveat] = table_skips(READER.read(root, {}))
    assert caveat.kept and caveat.count == len(expected)


def test_voicemos24_root_may_be_the_data_folder(tmp_path):
    expected = layout.write(tmp_path, layout="voicemos24", base="")
    rows = _read(tmp_path)
    _assert_matches(rows, expected)
    assert all(r["audio_path"] == f"wav/{r['clip_id']}.wav" for r in rows)


def test_voicemos24_labels_only_without_audio(tmp_path):
    expected = layout.write(tmp_path, layout="voicemos24", audio=False)
    assert not (tmp_path / "DATA/wav").exists()
    _assert_matches(_read(tmp_path, labels_only=True), expected)


def test_voicemos24_splits_option(vm24):
    root, expected = vm24
    rows = _read(root, {"splits": {"train": ["train", "val"]}})
    assert len(rows) == sum(e["split"] in ("train", "dev") for e in expected)
    assert {r["split"] for r in rows} == {"train"}
    with pytest.raises(DataError, match="option 'datasets' applies to the hf layout only"):
        READER.read(root, {"datasets": ["singmos_v1"]})


def test_voicemos24_missing_list(vm24):
    root, _ = vm24
    path = root / "DATA/sets/val_mos_list.txt"
    path.unlink()
    with pytest.raises(DataError) as err:
        READER.read(root, {})
    msg = str(err.value)
    assert f"{path}: missing metadata file (the dev split)" in msg
    assert "DATA/sets/train_mos_list.txt  val_mos_list.txt" in msg


def _rewrite_line(path: Path, number: int, text: str) -> None:
    lines = path.read_text().split("\n")
    lines[number - 1] = text
    path.write_text("\n".join(lines))


def test_voicemos24_non_numeric_score(vm24):
    root, _ = vm24
    path = root / "DATA/sets/eval_mos_list.txt"
    _rewrite_line(path, 3, "voicemos2024-track2-sys0002-utt0017,n/a")
    with pytest.raises(DataError) as err:
        READER.read(root, {})
    msg = str(err.value)
    assert f"{path}:3: field 'MOS': 'n/a' is not a number" in msg
    assert "voicemos2024-track2-sys0001-utt0001,4.000000" in msg


def test_voicemos24_malformed_lines(vm24):
    root, _ = vm24
    path = root / "DATA/sets/train_mos_list.txt"
    original = path.read_text()
    _rewrite_line(path, 2, "sys0001_utt0002,3.4")
    with pytest.raises(DataError, match=rf"{path}:2: sample id 'sys0001_utt0002'.*third '-' field"):
        READER.read(root, {})
    path.write_text(original)
    _rewrite_line(path, 4, "voicemos2024-track2-sys0002-utt0004,4.2,judge1")
    with pytest.raises(DataError, match=rf"{path}:4: expected '<sample id>,<MOS>'.*3 field"):
        READER.read(root, {})
    path.write_text(original)
    val = root / "DATA/sets/val_mos_list.txt"
    _rewrite_line(val, 1, "voicemos2024-track2-sys0001-utt0001,4.2")
    with pytest.raises(DataError, match=rf"{val}:1: .*already listed at {path}:1"):
        READER.read(root, {})


def test_voicemos24_header_line_is_rejected(vm24):
    root, _ = vm24
    path = root / "DATA/sets/train_mos_list.txt"
    path.write_text("sample_id,mos\n" + path.read_text())
    with pytest.raises(DataError) as err:
        READER.read(root, {})
    assert f"{path}:1: field 'MOS': 'mos' is not a number" in str(err.value)
    assert "no header" in str(err.value)


# --- roots, options, detection ---------------------------------------------------------------


def test_wrong_root(hf, tmp_path):
    root, _ = hf
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as err:
        READER.read(missing, {})
    msg = str(err.value)
    assert f"{missing}: data root is not a folder" in msg
    assert "info/split.json" in msg and "DATA/sets/train_mos_list.txt" in msg
    with pytest.raises(DataError) as err:
        READER.read(root.parent, {})
    msg = str(err.value)
    assert f"found SingMOS metadata one level down at {root}" in msg and "info/score.json" in msg
    with pytest.raises(DataError) as err:
        READER.read(root.parent, {"layout": "hf"})
    msg = str(err.value)
    assert f"{root.parent / 'info/split.json'}: missing metadata file" in msg
    assert f"one level down at {root / 'info/split.json'}" in msg


def test_neither_layout_shows_both(tmp_path):
    with pytest.raises(DataError) as err:
        READER.read(tmp_path, {})
    msg = str(err.value)
    assert f"{tmp_path}: no SingMOS metadata found" in msg
    assert "layout: hf" in msg and "layout: voicemos24" in msg
    assert "info/score.json" in msg and "DATA/sets/train_mos_list.txt" in msg


def test_both_layouts_need_an_explicit_choice(tmp_path):
    expected_hf = layout.write(tmp_path, audio=False)
    expected_vm = layout.write(tmp_path, layout="voicemos24", audio=False)
    with pytest.raises(DataError, match="set option 'layout' to hf or voicemos24"):
        READER.read(tmp_path, {})
    _assert_matches(_read(tmp_path, {"layout": "hf"}), expected_hf)
    _assert_matches(_read(tmp_path, {"layout": "voicemos24"}), expected_vm)


def test_unknown_or_bad_options(hf):
    root, _ = hf
    with pytest.raises(
        DataError, match=r"unknown option\(s\) split \(known: datasets, layout, splits\)"
    ):
        READER.read(root, {"split": {"dev": "valid"}})
    with pytest.raises(DataError, match="expected one of auto, hf, voicemos24"):
        READER.read(root, {"layout": "zip"})
    with pytest.raises(DataError, match="option 'datasets'"):
        READER.read(root, {"datasets": []})


def test_available(hf, vm24, tmp_path):
    assert READER.available(hf[0], {})
    assert READER.available(hf[0], {"layout": "hf"})
    assert not READER.available(hf[0], {"layout": "voicemos24"})
    assert READER.available(vm24[0], {})
    assert not READER.available(vm24[0], {"splits": {"test": "test"}})
    assert not READER.available(tmp_path / "nowhere", {})
    assert not READER.available(tmp_path, {})
    assert not READER.available(hf[0], {"bogus": 1})
    (hf[0] / "info/score.json").unlink()
    assert not READER.available(hf[0], {})
