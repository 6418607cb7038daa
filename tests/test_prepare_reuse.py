"""`evaluate`/`run` reuse a prepared task whose inputs are unchanged; prepare never leaves half a
folder behind (benchmark/pairs/reuse.py, benchmark/pairs/prepare.py)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

import benchmark.pairs.prepare as pipeline
from benchmark.cli import main
from benchmark.data.tasks import Task, get_task, load_task_file
from benchmark.errors import MosrmError
from benchmark.pairs.prepare import PreparedTask, prepare
from benchmark.pairs.reuse import RACY_NS, tree_signature
from benchmark.paths import audio_cache_dir, prepared_dir
from benchmark.pipeline import evaluate
from benchmark.scoring.config import ScoringConfig
from benchmark.scoring.models import load_submission
from tests.layouts import singmos
from tests.toy_task import REPO, settle, write_toy_repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return write_toy_repo(tmp_path)


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The folders prepare really built (not reused), in order."""
    seen: list[Path] = []
    real = pipeline._build

    def spy(task: Any, root: Path, folder: Path, **kw: Any) -> PreparedTask:
        seen.append(folder)
        return real(task, root, folder, **kw)

    monkeypatch.setattr(pipeline, "_build", spy)
    return seen


def _toy(repo: Path) -> Task:
    return load_task_file(repo / "tasks" / "toy.yaml")


def _assert_same(a: PreparedTask, b: PreparedTask) -> None:
    assert a.task.spec == b.task.spec
    for name in ("data_root", "folder", "pair_files", "pair_sha256", "pair_meta", "skips"):
        assert getattr(a, name) == getattr(b, name), name
    assert (a.labels_only, a.audio_root) == (b.labels_only, b.audio_root)
    assert a.clips.equals(b.clips, check_metadata=True)


def test_reuse_gives_the_same_prepared_task_and_the_same_results(
    repo: Path, tmp_path: Path, builds: list[Path]
) -> None:
    fresh = prepare(_toy(repo))
    manifest = prepared_dir("toy") / "manifest.json"
    stamp = manifest.stat().st_mtime_ns
    reused = prepare(_toy(repo), reuse=True)
    assert builds == [prepared_dir("toy")]  # the second call built nothing
    assert manifest.stat().st_mtime_ns == stamp
    _assert_same(fresh, reused)
    sub = load_submission(repo / "submissions" / "shortcut-loudness")
    config = ScoringConfig(progress=False)
    for name, p in (("fresh", fresh), ("reused", reused)):
        evaluate(sub, p, results_root=tmp_path / name, config=config)
    for file in ("toy.json", "toy.predictions.parquet"):
        a = (tmp_path / "fresh" / "shortcut-loudness" / file).read_bytes()
        assert a == (tmp_path / "reused" / "shortcut-loudness" / file).read_bytes(), file


def test_reuse_of_a_labels_only_task_keeps_its_skips(tmp_path: Path, builds: list[Path]) -> None:
    singmos.write(tmp_path / "data", audio=False)
    settle(tmp_path / "data")
    task = get_task(REPO / "benchmark" / "shipped" / "tasks", "singmos")
    fresh = prepare(task, tmp_path / "data", labels_only=True)
    assert fresh.skips and any(s.kept for s in fresh.skips) and fresh.audio_root is None
    reused = prepare(task, tmp_path / "data", labels_only=True, reuse=True)
    assert len(builds) == 1
    _assert_same(fresh, reused)
    # a full prepare is not a labels-only one: it builds (and fails here, the audio is absent)
    with pytest.raises(MosrmError):
        prepare(task, tmp_path / "data", reuse=True)
    assert len(builds) == 2


def _edit_labels(repo: Path) -> None:
    csv = repo.parent / "data" / "scores.csv"
    lines = csv.read_text().splitlines()
    wav, _, rest = lines[1].partition(",")
    lines[1] = f"{wav},4.999,{rest.split(',', 1)[1]}"
    csv.write_text("\n".join(lines) + "\n")
    settle(csv.parent)


def _edit_task(repo: Path) -> None:
    path = repo / "tasks" / "toy.yaml"
    spec = yaml.safe_load(path.read_text())
    spec["seed"] = 4
    path.write_text(yaml.safe_dump(spec))


def _replace_audio(repo: Path) -> None:
    from tests.toy_task import write_wav

    write_wav(repo.parent / "data" / "wav" / "s0_c0.wav", seconds=0.5, seed=99, amp=0.2)
    settle(repo.parent / "data")


def _delete_pairs(repo: Path) -> None:
    (prepared_dir("toy") / "pairs-test.parquet").unlink()


def _damage_clips(repo: Path) -> None:
    path = prepared_dir("toy") / "clips.parquet"
    path.write_bytes(path.read_bytes() + b"\0")


def _delete_cached_audio(repo: Path) -> None:
    next((audio_cache_dir("toy") / "audio-16k").rglob("*.wav")).unlink()


def _add_a_file(repo: Path) -> None:
    (repo.parent / "data" / "wav" / "extra.txt").write_text("x")
    settle(repo.parent / "data")


CHANGES = {
    "labels": _edit_labels,
    "task yaml": _edit_task,
    "audio": _replace_audio,
    "pair file deleted": _delete_pairs,
    "clips damaged": _damage_clips,
    "cached audio deleted": _delete_cached_audio,
    "new file in the data root": _add_a_file,
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_changed_input_or_a_damaged_output_is_rebuilt(
    change: str, repo: Path, builds: list[Path]
) -> None:
    first = prepare(_toy(repo))
    CHANGES[change](repo)  # data edits are dated back, out of the racy window
    again = prepare(_toy(repo), reuse=True)
    assert len(builds) == 2, "rebuilt"
    fresh = prepare(_toy(repo), out_dir=prepared_dir("toy").with_name("check"))
    assert again.pair_sha256 == fresh.pair_sha256
    assert again.clips.equals(fresh.clips)
    if change in ("labels", "task yaml"):
        assert again.pair_sha256 != first.pair_sha256
    assert prepare(_toy(repo), reuse=True).pair_sha256 == again.pair_sha256
    assert len(builds) == 3, "then reused"


def test_other_options_are_other_inputs(repo: Path, builds: list[Path]) -> None:
    prepare(_toy(repo))
    prepare(_toy(repo), reuse=True, labels_only=True)
    prepare(_toy(repo), reuse=True, counts={"test": {"cross": 5}})
    prepare(_toy(repo), reuse=True, resample=False)
    prepare(_toy(repo), reuse=True, resample=False)
    assert len(builds) == 4


def test_data_changed_moments_ago_is_not_trusted(tmp_path: Path, builds: list[Path]) -> None:
    repo = write_toy_repo(tmp_path)
    (tmp_path / "data" / "scores.csv").touch()  # now: inside the racy window
    prepare(_toy(repo))
    prepare(_toy(repo), reuse=True)
    assert len(builds) == 2
    manifest = json.loads((prepared_dir("toy") / "manifest.json").read_text())
    assert manifest["inputs"]["racy"] is True


def test_cli_evaluate_reuses_and_prepare_rebuilds(
    repo: Path, tmp_path: Path, builds: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--repo", str(repo)]
    assert main([*base, "prepare", "toy", "--quiet"]) == 0
    results = ["--results", str(tmp_path / "results"), "--quiet"]
    assert main([*base, "evaluate", "shortcut-random", "--task", "toy", *results]) == 0
    assert "up to date" in capsys.readouterr().out
    assert main([*base, "run", "--submissions", "shortcut-duration", *results]) == 0
    assert main([*base, "prepare", "toy", "--quiet"]) == 0
    assert len(builds) == 2  # the two explicit prepares only


def test_refused_full_pool_leaves_no_folder(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A whole pool is spilled to bucket files on the prepared folder's disk; one that cannot fit
    is refused before any resampling, and neither a task folder nor bucket files are left."""
    import benchmark.pairs.build
    import benchmark.pairs.rows

    monkeypatch.setattr(benchmark.pairs.build, "SPILL_ABOVE", 10)
    real = benchmark.pairs.rows.shutil.disk_usage
    monkeypatch.setattr(
        benchmark.pairs.rows.shutil, "disk_usage", lambda p: real(p)._replace(free=1000)
    )
    assert main(["--repo", str(repo), "prepare", "toy", "--full-pool", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: pairs.test: spilling ") and "1000 B free" not in err
    assert "GiB free; free space or ask for a count instead of 'all'" in err
    folder = prepared_dir("toy")
    assert not folder.exists() or not list(folder.iterdir())
    assert not audio_cache_dir("toy").exists()  # refused before any resampling


def test_a_failed_write_removes_the_folder_it_created_but_not_an_older_one(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import benchmark.pairs.rows

    def fail(*args: Any, **kwargs: Any) -> str:
        raise OSError("disk full")

    monkeypatch.setattr(benchmark.pairs.rows.SplitRows, "write", fail)
    with pytest.raises(OSError, match="disk full"):
        prepare(_toy(repo), out_dir=tmp_path / "new")
    assert not (tmp_path / "new").exists()
    monkeypatch.undo()
    prepare(_toy(repo), out_dir=tmp_path / "old")
    monkeypatch.setattr(benchmark.pairs.rows.SplitRows, "write", fail)
    with pytest.raises(OSError, match="disk full"):
        prepare(_toy(repo), out_dir=tmp_path / "old")
    assert (tmp_path / "old" / "manifest.json").is_file()


def test_tree_signature_is_fast_on_15k_files(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    for d in range(150):
        folder = root / f"spk{d:03d}"
        folder.mkdir(parents=True)
        for f in range(100):
            (folder / f"utt{f:03d}.wav").write_bytes(b"")
    (root / "labels.csv").write_text("x\n")
    settle(root)
    start = time.perf_counter()
    sig = tree_signature(root)
    elapsed = time.perf_counter() - start
    assert sig["files"] == 15_001
    assert elapsed < 1.0, f"{elapsed:.2f} s"
    assert sig["newest_mtime_ns"] < time.time_ns() - RACY_NS
    # the same tree, listed again, gives the same signature; one renamed file changes it
    assert tree_signature(root) == sig
    os.rename(root / "spk000" / "utt000.wav", root / "spk000" / "utt999.wav")
    assert tree_signature(root) != sig
    # excluded folders are not entered
    assert tree_signature(root, exclude=[root / "spk000"])["files"] == 14_901
