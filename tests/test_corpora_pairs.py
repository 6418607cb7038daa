"""Every corpus task, end to end on its miniature native layout, against independent pair counts.

For each of the six corpora the fixture writer (tests/layouts/<corpus>.py) returns the clips it
wrote; the pools below are counted from those by reading the relation definitions literally
(itertools over all clip pairs), never through the pair builder or the reader.
"""

from __future__ import annotations

import importlib
import itertools
import json
from collections import Counter
from pathlib import Path
from types import ModuleType

import pyarrow.parquet as pq
import pytest

from benchmark.cli import main
from benchmark.data.tasks import get_task
from benchmark.pairs.prepare import prepare

REPO = Path(__file__).resolve().parents[1]
CORPORA = ("bvcc", "nisqa", "singmos", "somos", "tmhint_qi", "vmc23")


def _layout(corpus: str) -> ModuleType:
    return importlib.import_module(f"tests.layouts.{corpus}")


def independent_pools(clips: list[dict]) -> Counter:
    """(split, relation) -> number of valid pairs, straight from the written definitions."""
    pools: Counter = Counter()

    def eq(x: dict, y: dict, key: str) -> bool:
        return x[key] is not None and x[key] == y[key]

    for x, y in itertools.combinations(clips, 2):
        if x["split"] != y["split"] or x["subset"] != y["subset"]:
            continue
        if round(abs(x["mos"] - y["mos"]), 9) <= 0:
            continue
        same_c, same_s = eq(x, y, "content_id"), eq(x, y, "system_id")
        if same_c and not same_s:
            pools[x["split"], "same_content"] += 1
        if same_s and not same_c:
            pools[x["split"], "same_system"] += 1
        if not same_s and not same_c:
            pools[x["split"], "cross"] += 1
    return pools


CASES = [(c, {}) for c in CORPORA] + [("singmos", {"layout": "voicemos24"})]


@pytest.mark.parametrize("corpus, variant", CASES)
def test_full_pool_counts_match_an_independent_count(
    corpus: str, variant: dict, tmp_path: Path
) -> None:
    expected = _layout(corpus).write(tmp_path / "data", audio=False, **variant)
    task = get_task(REPO / "benchmark" / "shipped" / "tasks", corpus)
    splits = sorted({c["split"] for c in expected})
    assert set(splits) == set(task.spec.pairs), "the fixture must cover every split of the task"
    counts = {s: dict.fromkeys(task.spec.relations, "all") for s in splits}
    prepared = prepare(
        task, tmp_path / "data", labels_only=True, out_dir=tmp_path / "prep", counts=counts
    )
    want = independent_pools(expected)
    for split in splits:
        pairs = pq.read_table(prepared.pair_files[split]).to_pylist()
        got = Counter(p["relation"] for p in pairs)
        for rel in task.spec.relations:
            assert got[rel] == want[split, rel], (split, rel)
            assert prepared.pair_meta[split]["relations"][rel]["available"] == want[split, rel]
        assert sum(want[split, r] for r in task.spec.relations) > 0
        subset_of = {c["clip_id"]: c["subset"] for c in expected}
        assert all(subset_of[p["clip_a"]] == subset_of[p["clip_b"]] for p in pairs)
    # every relation the task samples has pairs somewhere in the fixture
    for rel in task.spec.relations:
        assert sum(want[s, rel] for s in splits) > 0, rel


@pytest.mark.parametrize("corpus", CORPORA)
def test_cli_prepare_labels_only_and_with_audio(
    corpus: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = _layout(corpus).write(tmp_path / "labels", audio=False)
    assert not [p for p in (tmp_path / "labels").rglob("*") if p.suffix in (".wav", ".flac")]
    args = [
        "--repo",
        str(tmp_path / "ws"),
        "prepare",
        corpus,
        "--data-root",
        str(tmp_path / "labels"),
    ]
    assert main([*args, "--labels-only", "--quiet"]) == 0  # from the metadata files alone
    out = capsys.readouterr().out
    assert f"{corpus}: {len(labels)} clips" in out
    expected = _layout(corpus).write(tmp_path / "data", audio=True)
    args = [
        "--repo",
        str(tmp_path / "ws"),
        "prepare",
        corpus,
        "--data-root",
        str(tmp_path / "data"),
    ]
    assert main([*args, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "resampled to 16 kHz" in out
    prepared = prepare(
        get_task(REPO / "benchmark" / "shipped" / "tasks", corpus), tmp_path / "data"
    )
    assert prepared.clips.num_rows == len(expected)
    rates = set(prepared.clips.column("sample_rate").to_pylist())
    assert 0 not in rates and None not in rates
    for rel in prepared.clips.column("audio_path").to_pylist()[:3]:
        assert (prepared.audio_base / rel).is_file()
    # with every clip's audio present, the metadata-only index is the very same pair set
    task = get_task(REPO / "benchmark" / "shipped" / "tasks", corpus)
    index = prepare(task, tmp_path / "labels", labels_only=True, out_dir=tmp_path / "index")
    assert index.pair_sha256 == prepared.pair_sha256


def test_vmc23_results_break_down_per_track(tmp_path: Path) -> None:
    expected = _layout("vmc23").write(tmp_path / "data", audio=True)
    root = str(tmp_path / "data")
    assert (
        main(["--repo", str(tmp_path / "ws"), "prepare", "vmc23", "--data-root", root, "--quiet"])
        == 0
    )
    # later runs find the data where the task was last prepared from, without --data-root
    results = tmp_path / "results"
    args = ["--repo", str(tmp_path / "ws"), "evaluate", "shortcut-duration", "--task", "vmc23"]
    assert main([*args, "--quiet", "--results", str(results)]) == 0
    from benchmark.paths import prepared_dir

    manifest = json.loads((prepared_dir("vmc23") / "manifest.json").read_text())
    written = {c["clip_id"] for c in expected}
    dropped = [s for s in manifest["skipped"] if "TMHINT_" in s["reason"]]
    assert len(dropped) == 1 and not dropped[0]["kept"] and dropped[0]["count"] > 0
    assert not set(dropped[0]["examples"]) & written  # left out, and said so in the manifest
    result = json.loads((results / "shortcut-duration" / "vmc23.json").read_text())
    per_track = result["metrics"]["by_group_subset"]
    pools = Counter()
    for sub in ("1a", "1b", "2", "3"):
        mine = [c for c in expected if c["subset"] == sub]
        pools[sub] = sum(independent_pools(mine).values())  # fixtures are below the targets
    assert {k: v["n"] for k, v in per_track.items()} == dict(pools)
    assert set(per_track) == {"1a", "1b", "2", "3"}
    # the board shows one column per track, each cell the track's own accuracy
    assert main(["--repo", str(tmp_path / "ws"), "board", "--results", str(results)]) == 0
    table = (results / "summary.md").read_text()
    header = next(line for line in table.splitlines() if line.startswith("| model"))
    cols = [c.strip() for c in header.strip("|").split("|")]
    assert cols[2:7] == ["of gap", "1a", "1b", "2", "3"]
    row = next(line for line in table.splitlines() if "Duration" in line or "duration" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    for i, track in enumerate(("1a", "1b", "2", "3")):
        acc = per_track[track]["accuracy"]
        assert cells[3 + i].startswith(f"{100 * acc:.1f}")
