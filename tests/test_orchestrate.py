"""Many tasks × many submissions as library calls (`benchmark.orchestrate`), without the CLI: a
broken submission is recorded and the others are still evaluated; a task whose data is broken is
set aside when the caller collects failures; unknown names are one-line errors; data roots are
looked up as `mosrm evaluate` does."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from benchmark.errors import MosrmError
from benchmark.orchestrate import (
    default_results,
    evaluate_submissions,
    find_data_root,
    prepare_tasks,
    submission_folders,
)
from benchmark.scoring.config import ScoringConfig
from tests.toy_task import write_toy_repo


def test_a_broken_submission_is_recorded_and_the_others_run(tmp_path: Path) -> None:
    repo = write_toy_repo(tmp_path / "repo")
    broken = repo / "submissions" / "broken"
    broken.mkdir()
    (broken / "submission.yaml").write_text(
        "name: broken\ndisplay_name: Broken\nkind: scalar\nentry: model.py:build\n"
    )
    (broken / "model.py").write_text("raise RuntimeError('no model here')\n")
    said: list[str] = []
    prepared = prepare_tasks(repo, ["toy"], progress=False, echo=said.append)
    assert [p.task.name for p in prepared] == ["toy"] and said[0] == "prepare toy …"
    folders = submission_folders(repo, ["broken", "shortcut-loudness"])
    results = default_results(repo)
    failed = evaluate_submissions(
        repo,
        prepared,
        folders,
        results,
        ScoringConfig(progress=False),
        unsandboxed=True,
        echo=said.append,
    )
    assert len(failed) == 1 and failed[0].startswith("submissions/broken on toy (load): ")
    assert "no model here" in failed[0]
    record = json.loads((results / "broken" / "toy.failed.json").read_text())
    assert record["stage"] == "load" and "no model here" in record["reason"]
    good = json.loads((results / "shortcut-loudness" / "toy.json").read_text())
    assert good["metrics"]["overall"]["n"] > 0
    assert "evaluate shortcut-loudness on toy …" in said


def test_broken_task_data_is_set_aside_when_failures_are_collected(tmp_path: Path) -> None:
    repo = write_toy_repo(tmp_path / "repo")
    shutil.copy(repo / "tasks" / "toy.yaml", repo / "tasks" / "toy2.yaml")
    text = (repo / "tasks" / "toy2.yaml").read_text().replace("name: toy", "name: toy2")
    (repo / "tasks" / "toy2.yaml").write_text(text)
    task = prepare_tasks(repo, ["toy2"], progress=False, echo=lambda _: None)[0].task
    root, _ = find_data_root(task, None)
    assert root is not None
    labels = sorted(p for p in root.rglob("*.csv"))[0]
    labels.write_text("not,the,columns\n1,2,3\n")
    failures: dict[str, str] = {}
    prepared = prepare_tasks(repo, None, failures=failures, progress=False, echo=lambda _: None)
    assert [p.task.name for p in prepared] == [] and set(failures) == {"toy", "toy2"}
    with pytest.raises(MosrmError):  # without `failures`, the first broken task stops the run
        prepare_tasks(repo, ["toy"], progress=False, echo=lambda _: None)


def test_unknown_names_are_one_line_errors(tmp_path: Path) -> None:
    repo = write_toy_repo(tmp_path / "repo")
    with pytest.raises(MosrmError, match=r"unknown task\(s\): nope \(known: bvcc, demo, .*toy"):
        prepare_tasks(repo, ["nope"], progress=False)
    with pytest.raises(MosrmError, match="no submission 'nope'"):
        submission_folders(repo, ["nope"])
    # a typo costs one glance: the close name is offered
    with pytest.raises(MosrmError, match=r"unknown task\(s\): tyo \(did you mean 'toy'\?\)"):
        prepare_tasks(repo, ["tyo"], progress=False)
    with pytest.raises(MosrmError, match=r"'shortcut-loudnes' \(did you mean 'shortcut-loudness'"):
        submission_folders(repo, ["shortcut-loudnes"])
    assert {f.name for f in submission_folders(repo, None)} >= {"shortcut-loudness"}


def test_data_root_falls_back_to_the_last_prepared_one(tmp_path: Path) -> None:
    repo = write_toy_repo(tmp_path / "repo")
    task = prepare_tasks(repo, ["toy"], progress=False, echo=lambda _: None)[0].task
    root, looked = find_data_root(task, None)
    assert root == looked[0]
    elsewhere = tmp_path / "nowhere"
    assert find_data_root(task, elsewhere) == (None, [elsewhere.resolve()])
