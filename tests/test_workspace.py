"""The user's workspace and the package's own things (`benchmark.workspace`): where a command looks,
what a name means, and that nothing of the user's leaks into the suite or the official board."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from benchmark.data.tasks import task_files, workspace_tasks
from benchmark.errors import MosrmError, TaskSpecError
from benchmark.orchestrate import _default_tasks, default_results, submission_folders
from benchmark.workspace import SHIPPED_SUBMISSIONS, SHIPPED_TASKS, Workspace, workspace


def test_the_order_is_flag_then_environment_then_here_then_home(tmp_path, monkeypatch):
    monkeypatch.delenv("MOSRM_WORKSPACE", raising=False)
    monkeypatch.delenv("MOSRM_REPO", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    assert workspace().root == (tmp_path / "home" / "mosrm").resolve()  # a bare folder: ~/mosrm
    (here / "tasks").mkdir()
    assert workspace().root == here.resolve()  # a folder with tasks/ (or submissions/) is one
    monkeypatch.setenv("MOSRM_REPO", str(tmp_path / "old"))
    assert workspace().root == (tmp_path / "old").resolve()  # the variable's older name
    monkeypatch.setenv("MOSRM_WORKSPACE", str(tmp_path / "ws"))
    assert workspace().root == (tmp_path / "ws").resolve()
    assert workspace(tmp_path / "given").root == (tmp_path / "given").resolve()
    ws = Workspace(tmp_path / "ws")
    assert (ws.results, ws.board) == (tmp_path / "ws" / "results", tmp_path / "ws" / "board")
    assert default_results(ws.root) == ws.results  # never the checkout's leaderboard/


def _own_task(ws: Path, name: str) -> Path:
    spec = yaml.safe_load((SHIPPED_TASKS / "demo.yaml").read_text())
    spec["name"] = name
    spec.pop("card", None)
    (ws / "tasks").mkdir(parents=True, exist_ok=True)
    path = ws / "tasks" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_a_workspace_sees_the_packages_tasks_and_its_own(tmp_path):
    assert set(task_files(tmp_path)) == {p.stem for p in SHIPPED_TASKS.glob("*.yaml")}
    assert "demo" in _default_tasks(tmp_path)  # a fresh workspace runs the package's tasks
    mine = _own_task(tmp_path, "my-test")
    assert task_files(tmp_path)["my-test"] == mine
    assert _default_tasks(tmp_path) == ["my-test"]  # with its own tasks, only those by default
    assert workspace_tasks(tmp_path, ["demo"])["demo"].path.parent == SHIPPED_TASKS


def test_a_workspace_task_may_not_take_a_shipped_tasks_name(tmp_path):
    _own_task(tmp_path, "demo")
    with pytest.raises(TaskSpecError) as err:
        task_files(tmp_path)
    text = str(err.value)
    assert "task 'demo' is also a task of the package" in text and str(SHIPPED_TASKS) in text
    assert "\n" not in text


def test_a_name_is_the_workspaces_folder_first_then_the_packages(tmp_path):
    assert submission_folders(tmp_path, None) == []  # "all" = the workspace's own
    assert submission_folders(tmp_path, ["dnsmos"]) == [SHIPPED_SUBMISSIONS / "dnsmos"]
    mine = tmp_path / "submissions" / "dnsmos"
    shutil.copytree(SHIPPED_SUBMISSIONS / "dnsmos", mine)
    assert submission_folders(tmp_path, ["dnsmos"]) == [mine]  # the user's copy replaces it
    assert submission_folders(tmp_path, None) == [mine]
    with pytest.raises(MosrmError, match=r"no submission 'dnsmo' \(did you mean 'dnsmos'"):
        submission_folders(tmp_path, ["dnsmo"])


def test_the_suite_runs_in_a_workspace_of_its_own(tmp_path):
    """conftest gives every test an empty workspace: a user's submissions/ and tasks/ in the
    current folder or ~/mosrm are never read by `make test`."""
    root = workspace().root
    assert root != Path.cwd().resolve() and root != (Path.home() / "mosrm").resolve()
    assert not (root / "submissions").exists() and not (root / "tasks").exists()


def test_run_scores_the_cheapest_first():
    """`mosrm run` prints each result as it is scored: shortcuts first (seconds), then the
    committed reference models, then the zero-shot networks, so a first number comes soonest."""
    from benchmark.orchestrate import cheapest_first
    from benchmark.scoring.trust import REFERENCE

    shipped = sorted(SHIPPED_SUBMISSIONS.iterdir())
    refs = sorted(p for p in REFERENCE.iterdir() if (p / "submission.yaml").is_file())
    order = [p.name for p in cheapest_first([*shipped, *refs, shipped[0]])]
    assert order[:3] == ["shortcut-duration", "shortcut-loudness", "shortcut-random"]
    assert set(order[3 : 3 + len(refs)]) == {p.name for p in refs}
    assert order[-2:] == ["dnsmos", "plcmos"] and len(order) == len(set(order))
