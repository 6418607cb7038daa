"""A failing submission is recorded, does not stop the others, and never keeps old numbers ranked.

The failing submissions are folder code (`model.py:build`), so they fail the same way whether the
code runs in-process or in the sandbox; the assertions on reasons are therefore loose.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from benchmark.cli import main
from benchmark.errors import SubmissionError
from benchmark.leaderboard.board import render_markdown
from benchmark.results.failures import load_failures, record_failure
from benchmark.scoring import models
from tests.test_board import _result
from tests.toy_task import SHORTCUTS, write_toy_repo

MODEL = """\
import torch


class Model:
    sample_rate = 16000

    def score(self, batch):
        n = batch.waveforms.shape[0]
        {body}


def build():
    {build}
"""

GOOD = "return batch.lengths.to(torch.float32)"
FAILING = {
    "fail-score": (
        "raise RuntimeError('boom in score')",
        "return Model()",
    ),
    "fail-build": (GOOD, "raise ValueError('no weights here')"),
    "fail-shape": ("return torch.zeros(n, 1)", "return Model()"),
    "fail-nan": ("return torch.full((n,), float('nan'))", "return Model()"),
    "fail-exit": ("raise SystemExit(0)", "return Model()"),
}


def add_submission(repo: Path, name: str, body: str = GOOD, build: str = "return Model()") -> Path:
    folder = repo / "submissions" / name
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"name": name, "display_name": name, "kind": "scalar", "entry": "model.py:build"}
    (folder / "submission.yaml").write_text(yaml.safe_dump(spec))
    (folder / "model.py").write_text(MODEL.format(body=body, build=build))
    return folder


def run(repo: Path, results: Path, *extra: str) -> int:
    return main(["--repo", str(repo), "run", "--quiet", "--results", str(results), *extra])


def section(md: str, heading: str) -> str:
    start = md.index(heading)
    nxt = md.find("\n## ", start + 1)
    return md[start : nxt if nxt > 0 else len(md)]


def ranked_names(md: str) -> list[str]:
    """Model cells of the cross-task ranking rows ("| 1 | name | ...")."""
    summary = section(md, "## All tasks")
    return [line.split("|")[2].strip() for line in summary.splitlines() if re.match(r"\| \d", line)]


def table_rows(md: str, task: str) -> list[str]:
    """Body rows of the task's two tables (per-bin, then per-relation)."""
    lines = section(md, f"## {task}").splitlines()
    return [line for line in lines if line.startswith("| ") and not line.startswith("| model")]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return write_toy_repo(tmp_path)


def test_run_records_each_failure_and_still_builds_the_board(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, (body, build) in FAILING.items():
        add_submission(repo, name, body, build)
    results = tmp_path / "results"
    assert run(repo, results) == 2
    err = capsys.readouterr().err
    for name in SHORTCUTS:
        assert (results / name / "toy.json").is_file()
        assert not (results / name / "toy.failed.json").exists()
    for name in FAILING:
        assert not (results / name / "toy.json").exists()
        record = json.loads((results / name / "toy.failed.json").read_text())
        assert record["submission"] == name and record["task"] == "toy"
        assert record["folder"] == f"submissions/{name}"
        assert record["stage"] in ("load", "score")
        assert record["reason"] and "\n" not in record["reason"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["time"])
        assert record["harness_version"]
        # printed at once and again in the final list, by folder
        assert f"error: submissions/{name}" in err
        assert f"  submissions/{name} on toy (" in err
    assert f"error: {len(FAILING)} submission failure(s)" in err
    reasons = {n: json.loads((results / n / "toy.failed.json").read_text()) for n in FAILING}
    assert "shape" in reasons["fail-shape"]["reason"]
    assert re.search(r"finite|nan", reasons["fail-nan"]["reason"], flags=re.I)
    assert "boom in score" in reasons["fail-score"]["reason"]
    for name in ("fail-score", "fail-shape", "fail-nan", "fail-exit"):
        assert reasons[name]["stage"] == "score" and reasons[name]["fingerprint"]
    md = (results / "summary.md").read_text()
    assert len(ranked_names(md)) == len(SHORTCUTS)
    toy = section(md, "## toy")
    for name in FAILING:
        assert re.search(rf"^- ✗ {re.escape(name)}: failed \((load|score)\)", toy, flags=re.M)
        assert not any(name in row for row in table_rows(md, "toy"))
    assert "Left out of this ranking until rerun:" in md


def test_in_process_failure_message_names_folder_and_fingerprint(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_submission(repo, "fail-shape", *FAILING["fail-shape"])
    results = tmp_path / "results"
    assert run(repo, results, "--submissions", "fail-shape") == 2
    err = capsys.readouterr().err
    fp = json.loads((results / "fail-shape" / "toy.failed.json").read_text())["fingerprint"]
    line = next(x for x in err.splitlines() if x.startswith("error: submissions/fail-shape"))
    assert line.startswith(f"error: submissions/fail-shape (fingerprint {fp[:12]}…): ")
    assert "shape" in line and f"model {fp}:" not in line  # the prefix already names it


def test_previously_good_submission_that_now_fails_is_withdrawn(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = add_submission(repo, "flaky")
    good_code = (folder / "model.py").read_text()
    results = tmp_path / "results"
    assert run(repo, results) == 0
    md = (results / "summary.md").read_text()
    assert "flaky" in ranked_names(md)
    old = (results / "flaky" / "toy.json").read_bytes()

    add_submission(repo, "flaky", "raise RuntimeError('regressed')")
    assert run(repo, results, "--submissions", "flaky") == 2
    assert (results / "flaky" / "toy.json").read_bytes() == old  # the result stays on disk …
    assert "regressed" in json.loads((results / "flaky" / "toy.failed.json").read_text())["reason"]
    md = (results / "summary.md").read_text()
    assert "flaky" not in ranked_names(md)  # … but is neither ranked nor shown with its numbers
    assert not any("flaky" in row for row in table_rows(md, "toy"))
    assert re.search(r"^- ✗ flaky: failed \(score\).*regressed.*withdrawn", md, flags=re.M)
    assert len(ranked_names(md)) == len(SHORTCUTS)

    (folder / "model.py").write_text(good_code)
    capsys.readouterr()
    assert run(repo, results, "--submissions", "flaky") == 0
    assert not (results / "flaky" / "toy.failed.json").exists()
    md = (results / "summary.md").read_text()
    assert "flaky" in ranked_names(md) and "✗" not in section(md, "## toy")


def test_multi_submission_evaluate_goes_on_and_fails_at_the_end(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_submission(repo, "fail-score", *FAILING["fail-score"])
    results = tmp_path / "results"
    args = ["--repo", str(repo), "evaluate", "fail-score", "shortcut-random", "--task", "toy"]
    assert main([*args, "--quiet", "--results", str(results)]) == 2
    err = capsys.readouterr().err
    assert (results / "shortcut-random" / "toy.json").is_file()
    assert (results / "fail-score" / "toy.failed.json").is_file()
    assert "error: 1 submission failure(s)" in err and "submissions/fail-score on toy" in err


def test_write_failure_is_recorded_with_its_stage(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import benchmark.data.tables

    def refuse(*_: object, **__: object) -> None:
        raise OSError("disk full")

    assert main(["--repo", str(repo), "prepare", "toy", "--quiet"]) == 0  # reused below
    monkeypatch.setattr(benchmark.data.tables, "write_parquet", refuse)
    results = tmp_path / "results"
    assert run(repo, results, "--submissions", "shortcut-random") == 2
    record = json.loads((results / "shortcut-random" / "toy.failed.json").read_text())
    assert record["stage"] == "write" and "disk full" in record["reason"]
    assert "OSError" in capsys.readouterr().err  # an unexpected exception keeps its traceback


def test_trusted_in_process_model_exiting_is_a_failure_not_an_exit(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from benchmark.baselines import shortcuts

    def leave(self: object, batch: object) -> None:
        raise SystemExit(0)

    monkeypatch.setattr(shortcuts.RandomModel, "score", leave)
    results = tmp_path / "results"
    assert run(repo, results) == 2
    record = json.loads((results / "shortcut-random" / "toy.failed.json").read_text())
    assert record["stage"] == "score" and "SystemExit(0)" in record["reason"]
    assert (results / "shortcut-loudness" / "toy.json").is_file()
    assert "error: submissions/shortcut-random (fingerprint " in capsys.readouterr().err


def test_keyboard_interrupt_is_not_swallowed(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import benchmark.pipeline

    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(benchmark.pipeline, "evaluate", interrupted)
    results = tmp_path / "results"
    assert run(repo, results) == 130
    assert load_failures(results) == []


def test_machine_error_stops_the_run_and_blames_no_submission(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import benchmark.pipeline
    from benchmark.errors import MachineError

    def full(*_: object, **__: object) -> None:
        raise MachineError("no space left on device while writing x")

    monkeypatch.setattr(benchmark.pipeline, "evaluate", full)
    results = tmp_path / "results"
    assert run(repo, results) == 2
    assert "no space left" in capsys.readouterr().err
    assert load_failures(results) == []


def _fingerprints(results: Path) -> dict[str, str]:
    return {
        p.parent.name: json.loads(p.read_text())["model_fingerprint"]
        for p in results.glob("*/toy.json")
    }


def test_stale_results_are_marked_and_not_ranked(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    assert run(repo, results) == 0
    recorded = _fingerprints(results)

    def moved_on(folder: Path) -> str:
        name = Path(folder).name
        return "f" * 32 if name == "shortcut-random" else recorded[name]

    monkeypatch.setattr(models, "current_fingerprint", moved_on, raising=False)
    assert main(["--repo", str(repo), "board", "--results", str(results)]) == 0
    md = (results / "summary.md").read_text()
    rows = table_rows(md, "toy")
    stale_rows = [row for row in rows if "⚠ stale" in row]
    assert len(stale_rows) == 2 and all("random" in row for row in stale_rows)  # both tables
    assert "random" in rows[len(SHORTCUTS) - 1]  # last, out of the accuracy order
    assert "random" in rows[-1]
    assert re.search(r"^- ⚠ shortcut-random: stale, computed by [0-9a-f]{12}…", md, flags=re.M)
    assert len(ranked_names(md)) == len(SHORTCUTS) - 1
    assert not any("random" in name for name in ranked_names(md))
    assert "shortcut-random (stale on toy)" in md

    def broken(folder: Path) -> str:
        raise SubmissionError(f"{folder}/submission.yaml: field 'kind': nonsense")

    monkeypatch.setattr(models, "current_fingerprint", broken, raising=False)
    md = render_markdown(results, repo / "submissions")
    assert ranked_names(md) == []
    assert "cannot be fingerprinted now (SubmissionError:" in md
    # without a submissions folder nothing is checked
    assert len(ranked_names(render_markdown(results))) == len(SHORTCUTS)


@pytest.mark.skipif(
    not hasattr(models, "current_fingerprint"), reason="harness has no current_fingerprint yet"
)
def test_editing_a_submission_after_its_run_makes_it_stale(repo: Path, tmp_path: Path) -> None:
    folder = add_submission(repo, "edited")
    results = tmp_path / "results"
    assert run(repo, results) == 0
    assert "edited" in ranked_names((results / "summary.md").read_text())
    with (folder / "model.py").open("a") as fh:
        fh.write("\n# tweaked after the run\n")
    md = render_markdown(results, repo / "submissions")
    assert "edited" not in ranked_names(md)
    assert re.search(r"^- ⚠ edited: stale", md, flags=re.M)


def test_failure_records_on_the_board_are_escaped_and_may_stand_alone(tmp_path: Path) -> None:
    root = tmp_path / "results"
    for task in ("alpha", "beta"):
        _result(root, "fine", task, 0.7)
        _result(root, "broke", task, 0.9)
    record_failure(
        root,
        submission="broke",
        folder="submissions/broke",
        task="beta",
        stage="score",
        reason="bad <script>|x</script>\n![p](http://e/p.png)",
        fingerprint=None,
    )
    record_failure(
        root,
        submission="never",
        folder="submissions/never",
        task="gamma",
        stage="load",
        reason="import failed",
        fingerprint=None,
    )
    md = render_markdown(root)
    assert "<script>" not in md and "![p]" not in md and not re.search(r"(?<!\\)\|x", md)
    assert "bad &lt;script&gt;\\|x&lt;/script&gt; !\\[p\\](http://e/p.png)" in md
    assert "(its earlier result is withdrawn)" in section(md, "## beta")
    # 'broke' keeps its alpha row (that result is current) but is left out of the ranking
    assert any("broke" in row for row in table_rows(md, "alpha"))
    assert not any("broke" in row for row in table_rows(md, "beta"))
    assert ranked_names(md) == ["fine"]
    gamma = section(md, "## gamma")
    assert "No current results." in gamma and "- ✗ never: failed (load)" in gamma
    # an unreadable record still counts as a failure
    (root / "fine" / "alpha.failed.json").write_text("{not json")
    md = render_markdown(root)
    assert ranked_names(md) == []
    assert "- ✗ fine: failed (?): unreadable failure record" in md
