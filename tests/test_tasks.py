from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from benchmark.data.tasks import get_task, load_task_file, load_tasks
from benchmark.errors import TaskSpecError

REPO = Path(__file__).resolve().parents[1]

BASE = {
    "name": "toy",
    "version": 1,
    "description": "toy",
    "reader": "csv",
    "data": {"root": "data", "options": {"file": "scores.csv"}},
    "pairs": {"test": {"same_content": 10, "cross": "all"}},
    "license": "CC0",
    "citation": "none",
}


def _write(tmp_path: Path, spec: dict, name: str = "toy") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_repo_tasks_validate():
    tasks = load_tasks(REPO / "benchmark" / "shipped" / "tasks")
    assert "demo" in tasks
    assert tasks["demo"].spec.synthetic


def test_valid_task_and_relative_root(tmp_path):
    task = load_task_file(_write(tmp_path, BASE))
    assert task.spec.bins == 5 and task.spec.min_delta == 0.0
    assert task.data_root() == (tmp_path / "data").resolve()
    assert task.data_root(tmp_path / "other") == (tmp_path / "other").resolve()


def test_unknown_key_is_named(tmp_path):
    path = _write(tmp_path, {**BASE, "binz": 3})
    with pytest.raises(TaskSpecError, match=r"toy\.yaml.*'binz'.*unknown key"):
        load_task_file(path)


def test_nested_unknown_key_is_named(tmp_path):
    path = _write(tmp_path, {**BASE, "data": {"rot": "x"}})
    with pytest.raises(TaskSpecError, match=r"'data\.rot': unknown key"):
        load_task_file(path)


@pytest.mark.parametrize(
    ("patch", "pattern"),
    [
        ({"pairs": {"test": {"same_content": -1}}}, "count must be"),
        ({"pairs": {"test": {"diagonal": 3}}}, "pairs"),
        ({"relations": ["cross"], "pairs": {"test": {"same_content": 3}}}, "not listed"),
        ({"score_range": [5, 1]}, "score_range"),
        ({"eval_split": "dev"}, "eval_split"),
        ({"bins": 0}, "bins"),
        ({"version": 0}, "version"),
    ],
)
def test_invalid_values(tmp_path, patch, pattern):
    with pytest.raises(TaskSpecError, match=pattern):
        load_task_file(_write(tmp_path, {**BASE, **patch}))


def test_name_must_match_file(tmp_path):
    with pytest.raises(TaskSpecError, match="field 'name'"):
        load_task_file(_write(tmp_path, BASE, name="other"))


def test_bad_yaml_and_unknown_task(tmp_path):
    (tmp_path / "toy.yaml").write_text("name: [unclosed")
    with pytest.raises(TaskSpecError, match="not valid YAML"):
        load_task_file(tmp_path / "toy.yaml")
    with pytest.raises(TaskSpecError, match="no task 'nope'"):
        get_task(tmp_path / "empty", "nope")


def test_unknown_reader(tmp_path):
    task = load_task_file(_write(tmp_path, {**BASE, "reader": "nope"}))
    with pytest.raises(TaskSpecError, match="unknown reader 'nope'"):
        task.reader()


def test_example_csv_task_validates():
    task = load_task_file(
        REPO / "benchmark" / "shipped" / "tasks" / "examples" / "my-listening-test.yaml"
    )
    assert task.spec.reader == "csv"


def _card(**kw: object) -> dict:
    return {"source": "s", "redistribution": "r", **kw}


def test_card_notes_file_is_inlined(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "toy.md").write_text("### Hello\n\nprose\n")
    (tmp_path / "tasks").mkdir()
    path = _write(tmp_path / "tasks", {**BASE, "card": _card(notes_file="../notes/toy.md")})
    card = load_task_file(path).spec.card
    assert card.notes == "### Hello\n\nprose\n" and card.notes_file is None


@pytest.mark.parametrize(
    "card, pattern",
    [
        (_card(notes="x", notes_file="n.md"), "either 'notes' or 'notes_file'"),
        (_card(notes_file="../../../etc/passwd"), "outside the workspace"),
        (_card(notes_file="missing.md"), r"card\.notes_file.*cannot read"),
        (_card(published_clips={"test": "many"}), r"card\.published_clips\.test"),
        ({"source": "s"}, r"card\.redistribution"),
    ],
)
def test_card_errors_are_named(tmp_path, card, pattern):
    (tmp_path / "tasks").mkdir()
    path = _write(tmp_path / "tasks", {**BASE, "card": card})
    with pytest.raises(TaskSpecError, match=pattern):
        load_task_file(path)
