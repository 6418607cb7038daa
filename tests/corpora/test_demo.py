"""The synthetic demo corpus: contract, determinism, panel sanity and crash safety."""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import soundfile as sf

from benchmark.data.corpora import demo, get_reader
from benchmark.data.corpora.demo import DemoReader, generate
from benchmark.data.tables import validate_clips
from benchmark.errors import DataError

TINY = {"n_sentences": 4, "n_voices": 2, "systems": ["clean", "noise", "combo"]}
"""Small but with both a transparent and the heaviest system, and one ffmpeg round trip."""
FAST = {"n_sentences": 3, "n_voices": 1, "systems": ["clean"]}
"""No ffmpeg and three renderings: for tests about the generation machinery, not the audio."""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pa.Table]:
    root = tmp_path_factory.mktemp("demo") / "data"
    table = DemoReader().read(root, dict(TINY))
    return root, table


def _manifest(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text())


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_registered_reader():
    assert isinstance(get_reader("demo"), DemoReader)


def test_table_validates(tiny):
    root, table = tiny
    table = validate_clips(table, (1, 5), root / "clips.csv")
    assert table.num_rows == 4 * 2 * 3
    rows = table.to_pylist()
    assert {r["corpus"] for r in rows} == {"demo"}
    assert {r["subset"] for r in rows} == {None}
    assert {r["system_id"] for r in rows} == {"sys0-clean", "sys1-noise", "sys7-combo"}
    assert {r["speaker_id"] for r in rows} == {"en-us", "en-gb+f3"}
    assert {r["n_ratings"] for r in rows} == {8}
    assert {r["sample_rate"] for r in rows} == {16000}
    assert "demo-s03-v1-sys7" in {r["clip_id"] for r in rows}
    for r in rows:
        assert r["audio_path"] == f"wav/{r['clip_id']}.wav"
        assert r["content_id"] == r["clip_id"].split("-")[1]
        assert (r["mos"] * 8) == int(r["mos"] * 8)  # mean of 8 integer votes
        assert r["rating_std"] is not None and r["rating_std"] >= 0
    votes = {cid: c["votes"] for cid, c in _manifest(root)["conditions"].items()}
    for r in rows:
        assert r["ratings"] == [float(v) for v in votes[r["clip_id"]]]
        assert r["mos"] == np.mean(r["ratings"]) and len(r["ratings"]) == r["n_ratings"]
    assert "ratings" not in (root / "clips.csv").read_text().splitlines()[0].split(",")


def test_bad_votes_in_the_manifest_are_named(tmp_path):
    root = tmp_path / "demo"
    DemoReader().read(root, dict(FAST))
    manifest = _manifest(root)
    cid = sorted(manifest["conditions"])[1]
    manifest["conditions"][cid]["votes"] = "3x4"
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(
        DataError, match=rf"manifest\.json: field 'conditions\.{cid}\.votes' is '3x4'"
    ):
        DemoReader().read(root, dict(FAST))


def test_same_options_same_corpus(tiny, tmp_path, monkeypatch):
    root, table = tiny
    # The fixture rendered in-process; rendering in a process pool must not change a byte.
    monkeypatch.setattr(demo, "_MIN_RENDERINGS_FOR_POOL", 1)
    other = generate(tmp_path / "again", dict(TINY), workers=2)
    again = DemoReader().read(other, dict(TINY))
    assert again.equals(table)
    m1, m2 = _manifest(root), _manifest(other)
    assert m1["files"] == m2["files"]
    assert m1 == m2  # conditions, options, tools: no timestamps or paths inside
    for rel, sha in m1["files"].items():
        assert _sha(root / rel) == sha == _sha(other / rel)
    assert _sha(root / "clips.csv") == m1["clips_csv_sha256"]


def test_seed_changes_mos(tiny, tmp_path):
    _, table = tiny
    other = DemoReader().read(
        generate(tmp_path / "s1", {**TINY, "seed": 1}, workers=1), {**TINY, "seed": 1}
    )
    assert other.column("clip_id").equals(table.column("clip_id"))
    assert other.column("mos").to_pylist() != table.column("mos").to_pylist()


def test_audio_files(tiny):
    root, table = tiny
    for r in table.to_pylist():
        path = root / r["audio_path"]
        info = sf.info(path)
        assert (info.samplerate, info.channels) == (16000, 1)
        assert info.frames > 0
        assert r["duration"] == pytest.approx(info.frames / 16000)
        audio, _ = sf.read(path)
        assert np.all(np.isfinite(audio)) and np.any(audio != 0)


def test_splits_disjoint_by_content(tiny):
    _, table = tiny
    content = {s: set() for s in ("train", "dev", "test")}
    for r in table.to_pylist():
        content[r["split"]].add(r["content_id"])
    assert all(content.values())
    for a, b in itertools.combinations(content.values(), 2):
        assert not a & b


def test_systems_ordered(tiny):
    _, table = tiny
    by_system: dict[str, list[float]] = {}
    for r in table.to_pylist():
        by_system.setdefault(r["system_id"], []).append(r["mos"])
    mean = {k: float(np.mean(v)) for k, v in by_system.items()}
    assert mean["sys0-clean"] > mean["sys1-noise"] > mean["sys7-combo"]
    assert mean["sys0-clean"] > 3.5 and mean["sys7-combo"] < 2.5


def test_unknown_option(tmp_path):
    with pytest.raises(DataError, match="n_speakers"):
        DemoReader().read(tmp_path / "x", {"n_speakers": 3})
    with pytest.raises(DataError, match="n_speakers"):
        DemoReader().available(tmp_path / "x", {"n_speakers": 3})
    with pytest.raises(DataError, match="n_sentences"):
        DemoReader().read(tmp_path / "x", {"n_sentences": 0})
    with pytest.raises(DataError, match="'warp'"):
        DemoReader().read(tmp_path / "x", {"systems": ["clean", "warp"]})
    assert not (tmp_path / "x").exists()


def test_interrupted_generation_leaves_no_complete_root(tmp_path, monkeypatch):
    root = tmp_path / "demo"

    def boom(*args, **kwargs):
        raise RuntimeError("killed mid-way")

    monkeypatch.setattr(demo, "_write_manifest", boom)
    with pytest.raises(RuntimeError, match="mid-way"):
        generate(root, dict(FAST), workers=1)
    assert not root.exists()
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []
    monkeypatch.undo()
    table = DemoReader().read(root, dict(FAST))
    assert table.num_rows == 3
    assert (root / "manifest.json").is_file()


def test_half_corpus_is_regenerated(tmp_path, write_wav):
    root = tmp_path / "demo"
    write_wav(root / "wav" / "demo-s00-v0-sys0.wav")
    (root / "clips.csv").write_text("clip_id\nbogus\n")
    table = DemoReader().read(root, dict(FAST))
    assert table.num_rows == 3 and "bogus" not in table.column("clip_id").to_pylist()
    assert _manifest(root)["options"]["n_sentences"] == 3


def test_missing_wav_or_changed_options_regenerate(tmp_path):
    root = tmp_path / "demo"
    DemoReader().read(root, dict(FAST))
    (root / "wav" / "demo-s01-v0-sys0.wav").unlink()
    DemoReader().read(root, dict(FAST))
    assert (root / "wav" / "demo-s01-v0-sys0.wav").is_file()
    table = DemoReader().read(root, {**FAST, "n_raters": 4})
    assert set(table.column("n_ratings").to_pylist()) == {4}
    assert _manifest(root)["options"]["n_raters"] == 4


def test_refuses_foreign_folder(tmp_path):
    root = tmp_path / "mine"
    root.mkdir()
    (root / "thesis.tex").write_text("precious")
    with pytest.raises(DataError, match="thesis.tex"):
        DemoReader().read(root, dict(FAST))
    assert (root / "thesis.tex").read_text() == "precious"


def test_missing_tools(tiny, tmp_path, monkeypatch):
    root, _ = tiny
    monkeypatch.setattr(demo.shutil, "which", lambda name: None)
    assert DemoReader().available(root, dict(TINY))  # already generated: no tools needed
    assert DemoReader().read(root, dict(TINY)).num_rows == 24
    assert not DemoReader().available(tmp_path / "fresh", dict(TINY))
    with pytest.raises(DataError, match="apt-get install espeak-ng"):
        DemoReader().read(tmp_path / "fresh", dict(TINY))


def test_ffmpeg_only_needed_for_codec_systems(tmp_path, monkeypatch):
    real = demo.shutil.which
    monkeypatch.setattr(demo.shutil, "which", lambda name: None if name == "ffmpeg" else real(name))
    assert DemoReader().available(tmp_path / "a", dict(FAST))
    assert not DemoReader().available(tmp_path / "a", dict(TINY))
    with pytest.raises(DataError, match="ffmpeg not found"):
        DemoReader().read(tmp_path / "a", dict(TINY))


def _pair_counts(rows: list[dict]) -> dict[str, int]:
    counts = {"same_content": 0, "same_system": 0, "cross": 0}
    for a, b in itertools.combinations(rows, 2):
        if a["mos"] == b["mos"]:
            continue
        same_c, same_s = a["content_id"] == b["content_id"], a["system_id"] == b["system_id"]
        if same_c and not same_s:
            counts["same_content"] += 1
        elif same_s and not same_c:
            counts["same_system"] += 1
        elif not same_c and not same_s:
            counts["cross"] += 1
    return counts


@pytest.mark.slow
def test_full_default_corpus(tmp_path, capsys):
    start = time.perf_counter()
    table = validate_clips(DemoReader().read(tmp_path / "demo", {}), (1, 5))
    seconds = time.perf_counter() - start
    with capsys.disabled():
        print(f"\ndemo corpus: {table.num_rows} clips generated in {seconds:.1f} s")
    assert table.num_rows == 40 * 4 * 8 >= 400
    rows = table.to_pylist()
    test_rows = [r for r in rows if r["split"] == "test"]
    assert len(test_rows) == 8 * 4 * 8
    counts = _pair_counts(test_rows)
    assert sum(counts.values()) >= 2000 and min(counts.values()) >= 500
    assert len({r["mos"] for r in rows}) >= 20
    mean = {
        s: np.mean([r["mos"] for r in rows if r["system_id"] == s])
        for s in {r["system_id"] for r in rows}
    }
    assert max(mean, key=mean.get) == "sys0-clean"
    assert min(mean, key=mean.get) == "sys7-combo"
