"""The Python API (`benchmark.api`) and the typed results record (`benchmark.results.schema`): the same
results as the CLI for the same model, a pairwise in-memory judge, accessors that match the JSON,
and an `import benchmark` that stays free of torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import benchmark as mb
from benchmark.api import in_memory_submission
from benchmark.baselines.shortcuts import LoudnessModel
from benchmark.cli import main
from benchmark.errors import DataError, MosrmError, SubmissionError
from benchmark.results.schema import TaskResult
from benchmark.scoring.models import Batch, read_spec
from tests.toy_task import REPO, write_toy_repo

SPEC_ONLY = {"name", "kind", "entry", "weights", "params", "predictions"}


class RmsJudge:
    """A pairwise judge from the RMS difference, with a slight first-position bias."""

    sample_rate = 16000

    @staticmethod
    def _rms(batch: Batch) -> torch.Tensor:
        out = torch.empty(len(batch), dtype=torch.float64)
        for i, n in enumerate(batch.lengths.tolist()):
            out[i] = batch.waveforms[i, :n].double().pow(2).mean().sqrt()
        return out

    def prefer(self, a: Batch, b: Batch) -> torch.Tensor:
        return 0.35 + 0.6 * torch.sigmoid(30 * (self._rms(a) - self._rms(b)))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return write_toy_repo(tmp_path / "toy")


def _cli(repo: Path, results: Path, *extra: str) -> None:
    args = ["--repo", str(repo), "evaluate", "shortcut-loudness", "--task", "toy", "--quiet"]
    assert main([*args, "--results", str(results), *extra]) == 0


def _loudness_meta(repo: Path) -> dict:
    spec = read_spec(repo / "submissions" / "shortcut-loudness")
    return spec.model_dump(exclude=SPEC_ONLY)


def test_api_gives_the_cli_results_for_the_same_model(repo, tmp_path):
    cli_dir, api_dir, same_dir = tmp_path / "cli", tmp_path / "api", tmp_path / "same"
    _cli(repo, cli_dir)
    cli_bytes = (cli_dir / "shortcut-loudness" / "toy.json").read_bytes()
    cli = json.loads(cli_bytes)
    meta = _loudness_meta(repo)

    # the loudness baseline as an in-memory object, under its folder's name and metadata: it is
    # scored afresh (its own fingerprint keys the cache), and everything but the fingerprint matches
    (got,) = mb.evaluate(
        LoudnessModel(),
        ["toy"],
        name="shortcut-loudness",
        meta=meta,
        repo=repo,
        results_dir=api_dir,
    )
    api = json.loads((api_dir / "shortcut-loudness" / "toy.json").read_text())
    assert api["model_fingerprint"] != cli["model_fingerprint"]
    assert {k: v for k, v in api.items() if k != "model_fingerprint"} == {
        k: v for k, v in cli.items() if k != "model_fingerprint"
    }
    for suffix in ("predictions.parquet",):
        assert (api_dir / "shortcut-loudness" / f"toy.{suffix}").read_bytes() == (
            cli_dir / "shortcut-loudness" / f"toy.{suffix}"
        ).read_bytes()
    assert got.model_dump(mode="json", by_alias=True, exclude_unset=True) == api

    # with the folder's fingerprint given, the results file is byte for byte the CLI's
    mb.evaluate(
        LoudnessModel(),
        "toy",
        name="shortcut-loudness",
        meta=meta,
        fingerprint=cli["model_fingerprint"],
        repo=repo,
        results_dir=same_dir,
    )
    assert (same_dir / "shortcut-loudness" / "toy.json").read_bytes() == cli_bytes


def test_pairwise_in_memory_judge_has_diagnostics(repo, tmp_path):
    (r,) = mb.evaluate(
        RmsJudge(), ["toy"], version="1", triplets=40, repo=repo, results_dir=tmp_path
    )
    assert r.kind == "pairwise" and r.submission == "rmsjudge"
    d = r.diagnostics
    assert not d.by_construction
    assert d.position_consistency is not None and 0.0 <= d.position_consistency <= 1.0
    assert d.first_position_bias is not None and d.first_position_bias_ci is not None
    assert d.cycle_rate is not None and d.n_triplets == 40
    assert (tmp_path / "rmsjudge" / "toy.triplets.parquet").is_file()
    assert TaskResult.load(tmp_path / "rmsjudge" / "toy.json") == r
    assert r.accuracy is not None and r.accuracy > 0.5  # louder toy systems have higher MOS


def test_typed_accessors_equal_the_json_numbers(repo, tmp_path):
    _cli(repo, tmp_path)
    path = tmp_path / "shortcut-loudness" / "toy.json"
    raw = json.loads(path.read_text())
    r = TaskResult.load(path)
    m = raw["metrics"]
    assert r.accuracy == m["overall"]["accuracy"]
    assert r.interval == (m["overall"]["ci_low"], m["overall"]["ci_high"])
    assert r.interval_spec.confidence == raw["interval"]["confidence"]
    for name, cell in [
        ("overall", m["overall"]),
        ("cross", m["by_relation"]["cross"]),
        ("same_system", m["by_relation"]["same_system"]),
        ("2", m["by_bin"]["2"]),
        ("dmos_lt_0_2", m["by_subset"]["dmos_lt_0_2"]),
        ("same_content/1", m["by_relation_bin"]["same_content"]["1"]),
    ]:
        assert r.cell(name).model_dump() == cell, name
    # the labels the CLI and the board print name the same cells
    from benchmark.results.report import bin_label

    edges = raw["bin_edges"]
    assert r.cell("bin 2") == r.cell(bin_label(2, edges)) == r.cell("2")
    assert bin_label(2, edges).startswith("bin 2 (Δ ")
    assert r.cell("ΔMOS < 0.2") == r.cell("dmos_lt_0_2")
    assert r.cell("ΔMOS ≤ 0.5") == r.cell("dmos_le_0_5")
    assert r.cell("same_content/bin 1") == r.cell("same_content/1")
    with pytest.raises(KeyError, match="no cell 'nope'"):
        r.cell("nope")
    assert r.model_dump(mode="json", by_alias=True, exclude_unset=True) == raw


def test_every_results_file_validates(repo, tmp_path):
    """The toy runs' results (full and quick) and the demo results of `make run`, if present."""
    _cli(repo, tmp_path)
    _cli(repo, tmp_path, "--limit", "20")
    full = mb.load_results(tmp_path)
    both = mb.load_results(tmp_path, partial=True)
    assert [r.partial is None for r in both] == [True, False]
    assert full == both[:1] and both[1].partial is not None and both[1].partial.n == 20
    demo = REPO / "leaderboard" / "results"
    if demo.is_dir():
        mb.load_results(demo, partial=True)


def test_results_file_errors_name_the_file_and_field(repo, tmp_path):
    _cli(repo, tmp_path)
    path = tmp_path / "shortcut-loudness" / "toy.json"
    raw = json.loads(path.read_text())
    raw["metrics"]["overall"]["acuracy"] = 1.0
    path.write_text(json.dumps(raw))
    with pytest.raises(DataError, match=r"toy\.json: field 'metrics\.overall\.acuracy'"):
        TaskResult.load(path)


def test_in_memory_fingerprint_and_kind(repo):
    a = in_memory_submission(LoudnessModel(), name="m", version="1")
    assert a.fingerprint == in_memory_submission(LoudnessModel(), name="m", version="1").fingerprint
    assert a.fingerprint != in_memory_submission(LoudnessModel(), name="m", version="2").fingerprint
    assert a.fingerprint != in_memory_submission(LoudnessModel(), name="n", version="1").fingerprint
    assert in_memory_submission(LoudnessModel(), name="m", fingerprint="abc").fingerprint == "abc"
    assert a.spec.kind == "scalar" and in_memory_submission(RmsJudge()).spec.kind == "pairwise"
    with pytest.raises(SubmissionError, match="cannot infer the model kind"):
        in_memory_submission(object())
    with pytest.raises(SubmissionError, match="lacks prefer"):
        in_memory_submission(LoudnessModel(), kind="pairwise")
    with pytest.raises(SubmissionError, match="field 'name'"):
        in_memory_submission(LoudnessModel(), name="Bad Name")
    tasks = mb.get_tasks(repo)
    assert tasks["toy"]["present"] is True and tasks["toy"]["version"] == 1


def test_import_benchmark_stays_light():
    code = (
        "import sys, benchmark as mb; "
        "heavy = [m for m in ('torch', 'pandas', 'pyarrow', 'pydantic') if m in sys.modules]; "
        "assert not heavy, heavy; "
        "assert callable(mb.evaluate) and callable(mb.load_results); "
        "assert mb.TaskResult.__module__ == 'benchmark.results.schema'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_a_task_is_a_name_a_yaml_path_a_spec_or_a_mapping(repo, tmp_path):
    """`evaluate` takes a task from anywhere, not only the repository's tasks/ folder; the same
    task gives the same results file however it was named."""
    import yaml

    from benchmark.data.tasks import TaskSpec
    from benchmark.errors import TaskSpecError

    elsewhere = tmp_path / "mine" / "toy.yaml"
    elsewhere.parent.mkdir()
    elsewhere.write_text((repo / "tasks" / "toy.yaml").read_text())
    raw = yaml.safe_load(elsewhere.read_text())
    outs = {}
    for label, task in {
        "name": "toy",
        "path": elsewhere,
        "path-str": str(elsewhere),
        "spec": TaskSpec.model_validate(raw),
        "mapping": raw,
    }.items():
        out = tmp_path / label
        (r,) = mb.evaluate(LoudnessModel(), task, name="loud", repo=repo, results_dir=out)
        assert r.task == "toy"
        outs[label] = (out / "loud" / "toy.json").read_bytes()
    assert len(set(outs.values())) == 1
    with pytest.raises(TaskSpecError, match=r"^task spec: .*bins") as err:
        mb.evaluate(LoudnessModel(), [{**raw, "bins": "many"}], repo=repo)
    assert "\n" not in str(err.value)
    with pytest.raises(MosrmError, match=r"unknown task 'nope' \(known: bvcc, .*toy"):
        mb.evaluate(LoudnessModel(), ["nope"], repo=repo)


def test_probe_for_an_in_memory_model_is_the_clis_record(repo, tmp_path):
    """`benchmark.api.probe` writes what `mosrm probe` writes for the same model (the loudness
    shortcut, in memory and as the shipped folder), byte for byte."""
    from benchmark.api import probe

    (rec,) = probe(
        LoudnessModel(), "toy", name="shortcut-loudness", repo=repo, results_dir=tmp_path / "api",
        clips=4, pairs=8,
    )  # fmt: skip
    assert rec["task"] == "toy" and len(rec["sensitivity"]["rows"]) == 23
    args = ["--workspace", str(repo), "probe", "shortcut-loudness", "--task", "toy", "--quiet"]
    assert (
        main(
            [*args, "--probe-clips", "4", "--probe-pairs", "8", "--results", str(tmp_path / "cli")]
        )
        == 0
    )
    cli = json.loads((tmp_path / "cli" / "shortcut-loudness" / "probes" / "toy.json").read_text())
    for key in ("sensitivity", "hacking", "best_of_n"):
        assert cli[key] == rec[key], key
