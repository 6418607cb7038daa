"""The noise ceiling and the preference dimensions on the board (issue 13): a ceiling row in every
output, the share of the gap closed, the ceiling band on the plots, and tasks labelled by another
score column summarised apart from overall quality."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from benchmark.leaderboard.build import build_board
from benchmark.leaderboard.data import board_data
from benchmark.leaderboard.exports import as_records
from tests.test_board import TASKS, _result

HOSTILE = "<b>closed_form</b>|x"


def _ceiling_of(metrics: dict[str, Any], top: float, estimator: str) -> dict[str, Any]:
    """A ceiling block keyed as the metrics: cell k of a group gets top - 0.01 k."""

    def cell(m: dict[str, Any], k: int) -> dict[str, Any] | None:
        if not m.get("n"):
            return None
        value = round(top - 0.01 * k, 6)
        return {"ceiling": value, "ci_low": value - 0.02, "ci_high": value + 0.01,
                "n": m["n"], "n_rated": m["n"]}  # fmt: skip

    def group(g: dict[str, Any]) -> dict[str, Any]:
        return {key: cell(m, k) for k, (key, m) in enumerate(sorted(g.items()))}

    return {
        "estimator": estimator,
        "reliability_version": 1,
        "draws": 1000,
        "confidence": 0.95,
        "measured_coverage": [0.92, 0.95],
        "overall": cell(metrics["overall"], 0),
        "by_bin": group(metrics["by_bin"]),
        "by_relation": group(metrics["by_relation"]),
        "by_relation_bin": {r: group(g) for r, g in metrics["by_relation_bin"].items()},
        "by_subset": group(metrics["by_subset"]),
    }


def _with(path: Path, **fields: Any) -> None:
    record = json.loads(path.read_text())
    record.update({k: v(record) if callable(v) else v for k, v in fields.items()})
    path.write_text(json.dumps(record))


@pytest.fixture
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setitem(TASKS, "gamma_noi", 45)
    root = tmp_path / "results"
    for sub, skill in (("full", 0.8), ("second", 0.6)):
        path = _result(root, sub, "alpha", skill)
        _with(path, ceiling=lambda r: _ceiling_of(r["metrics"], 0.9, HOSTILE))
        path = _result(root, sub, "beta", skill)  # no reliability for beta's labels
        path = _result(root, sub, "gamma_noi", skill)
        _with(path, label={"dimension": "noi", "column": "noi"})
    return root


def test_ceiling_row_and_gap_in_every_output(results: Path, tmp_path: Path) -> None:
    board = board_data(results)
    alpha = next(t for t in board.tasks if t.name == "alpha")
    beta = next(t for t in board.tasks if t.name == "beta")
    assert alpha.ceiling is not None and beta.ceiling is None
    assert alpha.ceiling.overall.accuracy == 0.9 and not alpha.ceiling.partial
    for r in alpha.rows:
        assert r.gap_closed == pytest.approx((r.overall.accuracy - 0.5) / 0.4, abs=1e-6)
    assert all(r.gap_closed is None for r in beta.rows)

    out = tmp_path / "out"
    build_board(results, out)
    md = (out / "README.md").read_text()
    section = md[md.index("## alpha ") : md.index("\n## ", md.index("## alpha ") + 1)]
    ceiling_line = next(x for x in section.splitlines() if x.startswith("| ⊤ noise ceiling |"))
    cells = [c.strip() for c in ceiling_line.strip("|").split("|")]
    assert cells[1] == "90.0 [88.0, 91.0]" and cells[2] == "100%"
    full = next(r for r in alpha.rows if r.submission == "full")
    line = next(x for x in section.splitlines() if x.startswith("| full |"))
    assert line.split("|")[3].strip() == f"{100 * full.gap_closed:.0f}%"
    assert "<b>" not in md and "&lt;b&gt;closed\\_form&lt;/b&gt;\\|x" in md  # escaped
    beta_md = md[md.index("## beta ") : md.index("\n## ", md.index("## beta ") + 1)]
    assert "noise ceiling |" not in beta_md

    html = (out / "site" / "index.html").read_text()
    head = html[html.index('aria-label="alpha: accuracy per ΔMOS bin"') :]
    head = head[: head.index("</thead>")]
    assert '<tr class="ceiling">' in head  # pinned under the titles: sorting never moves it
    assert "<b>closed_form</b>|x" not in html and "&lt;b&gt;closed_form&lt;/b&gt;|x" in html

    raw = list(csv.reader(io.StringIO((out / "site" / "board.csv").read_text())))
    assert {len(r) for r in raw} == {len(raw[0])}  # every row, the ceiling's too, fills the header
    rows = as_records((out / "site" / "board.csv").read_text())
    ceiling = [r for r in rows if r["status"] == "ceiling"]
    assert [r["task"] for r in ceiling] == ["alpha"]
    assert float(ceiling[0]["accuracy"]) == 0.9 and ceiling[0]["rank"] == ""
    got = {
        r["submission"]: r["gap_closed"] for r in rows if r["task"] == "alpha" and r["submission"]
    }
    assert float(got["full"]) == pytest.approx(full.gap_closed)

    plots = out / "site" / "plots"
    assert "noise ceiling" in next(plots.glob("*-alpha-bins.svg")).read_text()
    assert "noise ceiling" in next(plots.glob("*-alpha-relations.svg")).read_text()
    assert "noise ceiling" not in next(plots.glob("*-beta-bins.svg")).read_text()


def test_other_dimensions_are_never_pooled_with_quality(results: Path, tmp_path: Path) -> None:
    board = board_data(results)
    dims = [(s.dimension, s.tasks) for s in board.summaries]
    assert dims == [("quality", ["alpha", "beta"]), ("noi", ["gamma_noi"])]
    gamma = next(t for t in board.tasks if t.name == "gamma_noi")
    assert gamma.dimension == "noi"
    out = tmp_path / "out"
    build_board(results, out)
    md = (out / "README.md").read_text()
    assert md.index("## alpha ") < md.index("## beta ") < md.index("## gamma\\_noi ")
    assert "label: noi" in md and "### Label 'noi'" in md
    assert md.index("### Overall quality") < md.index("### Label 'noi'")
    rows = as_records((out / "site" / "board.csv").read_text())
    assert {r["dimension"] for r in rows if r["task"] == "gamma_noi"} == {"noi"}
    assert {r["dimension"] for r in rows if r["scope"] == "tasks"} == {"quality", "noi"}
