"""Multi-dimensional preference tasks (issue 13): `label: {column, score_range}` in the task YAML,
the shared data folder (`data.corpus`), and `prepare` end to end on fixture corpora."""

from __future__ import annotations

import csv
import statistics
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from benchmark.cli import main
from benchmark.data.tables import read_parquet
from benchmark.data.tasks import get_task, load_task_file, load_tasks
from benchmark.errors import DataError, TaskSpecError
from benchmark.paths import default_data_root, prepared_dir
from tests.layouts import nisqa, tmhint_qi

REPO = Path(__file__).resolve().parents[1]
NEW = {
    "nisqa_noi": ("nisqa", "noi", (1.0, 5.0)),
    "nisqa_col": ("nisqa", "col", (1.0, 5.0)),
    "nisqa_dis": ("nisqa", "dis", (1.0, 5.0)),
    "nisqa_loud": ("nisqa", "loud", (1.0, 5.0)),
    "tmhint_qi_intelligibility": ("tmhint_qi", "intelligibility_score", (0.0, 1.0)),
}
BASE = {
    "name": "toy",
    "version": 1,
    "description": "toy",
    "reader": "csv",
    "data": {"root": "data", "options": {"file": "scores.csv"}},
    "pairs": {"test": {"any": "all"}},
    "relations": ["any"],
    "license": "CC0",
    "citation": "none",
}


def _load(tmp_path: Path, **patch: object):
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump({**BASE, **patch}))
    return load_task_file(path)


def test_default_label_is_overall_quality(tmp_path):
    task = _load(tmp_path)
    assert task.spec.label is None and task.spec.label_dimension == "quality"
    assert task.reader_options() == {"file": "scores.csv"}
    assert task.corpus == "toy"


def test_label_score_range_is_the_task_score_range(tmp_path):
    task = _load(tmp_path, label={"column": "nat", "score_range": [0, 100]})
    assert task.spec.score_range == (0.0, 100.0) and task.spec.label.score_range == (0.0, 100.0)
    assert task.spec.label_dimension == "nat"
    assert task.reader_options() == {"file": "scores.csv", "label_column": "nat"}
    # without its own range the label is on the task's (top-level or default) range
    assert _load(tmp_path, label={"column": "nat"}).spec.score_range == (1.0, 5.0)
    both = {"label": {"column": "nat", "score_range": [0, 1]}, "score_range": [0, 1]}
    assert _load(tmp_path, label={"column": "nat"}, score_range=[0, 10]).spec.score_range == (
        0.0,
        10.0,
    )
    with pytest.raises(TaskSpecError, match=r"toy\.yaml: .*give the label's scale once"):
        _load(tmp_path, **both)


@pytest.mark.parametrize(
    ("label", "pattern"),
    [
        ({"column": "nat", "score_range": [5, 1]}, r"label\.score_range.*low < high"),
        ({"column": "nat", "scale": [0, 1]}, r"'label\.scale': unknown key"),
        ({"score_range": [0, 1]}, r"label\.column"),
        ({"column": "has space"}, r"label\.column"),
        ({"column": ""}, r"label\.column"),
    ],
)
def test_bad_labels_are_named(tmp_path, label, pattern):
    with pytest.raises(TaskSpecError, match=pattern):
        _load(tmp_path, label=label)


def test_label_column_only_through_label(tmp_path):
    data = {"root": "data", "options": {"file": "scores.csv", "label_column": "nat"}}
    with pytest.raises(TaskSpecError, match=r"data\.options\.label_column: set 'label\.column'"):
        _load(tmp_path, data=data)


def test_data_corpus_shares_the_default_root(tmp_path):
    task = _load(tmp_path, data={"corpus": "nisqa"})
    assert task.corpus == "nisqa"
    assert task.data_root() == default_data_root("nisqa")
    assert task.data_root(tmp_path / "x") == (tmp_path / "x").resolve()  # --data-root wins
    with pytest.raises(TaskSpecError, match=r"data\.corpus"):
        _load(tmp_path, data={"corpus": "../etc"})


def test_shipped_dimension_tasks():
    tasks = load_tasks(REPO / "benchmark" / "shipped" / "tasks")
    for name, (parent, column, score_range) in NEW.items():
        task, base = tasks[name], tasks[parent]
        assert task.spec.label_dimension == column and task.spec.score_range == score_range
        assert task.spec.reader == base.spec.reader and task.corpus == parent == base.corpus
        assert task.data_root() == base.data_root()
        assert task.spec.pairs == base.spec.pairs and task.spec.relations == base.spec.relations
        assert task.spec.data.options == base.spec.data.options
        assert column in task.spec.card.notes
        assert not task.available()  # no data here: listed as absent, not an error
    others = set(tasks) - set(NEW)
    assert {tasks[n].spec.label_dimension for n in others} == {"quality"}


def test_task_listing_shows_them_absent(capsys):
    assert main(["--repo", str(REPO), "tasks"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    for name in NEW:
        assert lines[name].split()[3] == "absent", lines[name]
    assert lines["nisqa_noi"].split()[4] == lines["nisqa"].split()[4]


def _prepared_clips(name: str) -> dict[str, dict]:
    rows = read_parquet(prepared_dir(name) / "clips.parquet").to_pylist()
    return {r["clip_id"]: r for r in rows}


def test_prepare_nisqa_noi_takes_mos_from_noi(tmp_path, capsys):
    """In the shared default folder (no --data-root): mos is the noi column as written."""
    root = default_data_root("nisqa")
    expected = nisqa.write(root, audio=False, label="noi")
    assert get_task(REPO / "benchmark" / "shipped" / "tasks", "nisqa_noi").available()
    args = ["--repo", str(REPO), "prepare", "nisqa_noi", "--labels-only", "--quiet"]
    assert main(args) == 0
    clips = _prepared_clips("nisqa_noi")
    noi: dict[str, float] = {}
    for db in nisqa.SPLITS:
        with (root / db / f"{db}_file.csv").open(newline="") as f:
            for row in csv.DictReader(f):
                noi[f"{db}/{row['filename_deg'][:-4]}"] = float(row["noi"])
    assert clips.keys() == noi.keys() == {e["clip_id"] for e in expected}
    for cid, value in noi.items():
        assert clips[cid]["mos"] == value
    for split in ("train", "dev", "test"):
        pairs = read_parquet(prepared_dir("nisqa_noi") / f"pairs-{split}.parquet").to_pylist()
        assert pairs
        for pair in pairs:  # the label is the noi order
            a, b = noi[pair["clip_a"]], noi[pair["clip_b"]]
            assert (pair["mos_a"], pair["mos_b"]) == (a, b)
            assert a != b and pair["chosen"] == ("a" if a > b else "b")


def test_prepare_tmhint_qi_intelligibility(tmp_path):
    """mos = mean intelligibility rescaled from the declared 0–1 onto 1–5; ratings likewise."""
    root = tmp_path / "tmhint"
    tmhint_qi.write(root, audio=False, label="intelligibility_score")
    args = ["--repo", str(REPO), "prepare", "tmhint_qi_intelligibility", "--data-root", str(root)]
    assert main([*args, "--labels-only", "--quiet"]) == 0
    clips = _prepared_clips("tmhint_qi_intelligibility")
    raw: dict[str, list[float]] = defaultdict(list)
    with (root / "raw_data.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            raw[row["file_name"]].append(float(row["intelligibility_score"]))
    assert clips.keys() == raw.keys()
    for stem, values in raw.items():
        assert clips[stem]["mos"] == pytest.approx(1 + 4 * statistics.fmean(values), abs=1e-12)
        assert clips[stem]["ratings"] == pytest.approx([1 + 4 * v for v in values], abs=1e-12)
        assert clips[stem]["n_ratings"] == len(values)
    # the quality task on the same folder keeps quality_score
    assert main([*args[:3], "tmhint_qi", *args[4:], "--labels-only", "--quiet"]) == 0
    quality = _prepared_clips("tmhint_qi")
    assert set(quality) < set(clips)  # the four clips without a quality score
    assert quality.keys() != clips.keys() and all(q["ratings"] for q in quality.values())


def _drop_column(path: Path, column: str) -> None:
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    i = rows[0].index(column)
    with path.open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([r[:i] + r[i + 1 :] for r in rows if r])


@pytest.mark.parametrize(
    ("task", "write", "file", "column"),
    [
        ("nisqa_dis", nisqa.write, "NISQA_TEST_FOR/NISQA_TEST_FOR_file.csv", "dis"),
        ("tmhint_qi_intelligibility", tmhint_qi.write, "raw_data.csv", "intelligibility_score"),
    ],
)
def test_missing_label_column_is_one_line(tmp_path, capsys, task, write, file, column):
    root = tmp_path / "data"
    write(root, audio=False)
    _drop_column(root / file, column)
    args = ["--repo", str(REPO), "prepare", task, "--data-root", str(root), "--labels-only"]
    assert main([*args, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.startswith(f"error: {root / file}: no column '{column}'")
    with pytest.raises(DataError, match=f"no column '{column}'"):
        get_task(REPO / "benchmark" / "shipped" / "tasks", task).reader().read(
            root,
            get_task(REPO / "benchmark" / "shipped" / "tasks", task).reader_options(),
            labels_only=True,
        )


def test_evaluate_nisqa_noi_end_to_end(tmp_path):
    """Prepare with audio in the shared folder, then score a shortcut on the noi pairs."""
    import json

    nisqa.write(default_data_root("nisqa"))
    results = tmp_path / "results"
    args = ["--repo", str(REPO), "prepare", "nisqa_noi", "--quiet"]
    assert main(args) == 0
    args = ["--repo", str(REPO), "evaluate", "shortcut-duration", "--task", "nisqa_noi"]
    assert main([*args, "--results", str(results), "--quiet"]) == 0
    record = json.loads((results / "shortcut-duration" / "nisqa_noi.json").read_text())
    assert record["task"] == "nisqa_noi"
    test_pairs = read_parquet(prepared_dir("nisqa_noi") / "pairs-test.parquet")
    assert record["metrics"]["overall"]["n"] == test_pairs.num_rows


@pytest.mark.parametrize("name", sorted(NEW))
def test_committed_cards_of_the_dimension_tasks(name):
    """Committed, up to date, and pointing at the parent corpus's folder and download."""
    from benchmark.cards.card import render_card

    parent = NEW[name][0]
    card = render_card(get_task(REPO / "benchmark" / "shipped" / "tasks", name), None)
    committed = (REPO / "data_cards" / f"{name}.md").read_text(encoding="utf-8")
    assert card.markdown == committed, f"run `mosrm card {name}` and commit data_cards/{name}.md"
    assert f"| Data root | `$MOSRM_HOME/data/{parent}` (the default" in committed
    assert f"(`mosrm download {parent}`)" in committed and f"data/{name}`" not in committed
