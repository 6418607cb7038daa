"""`mosrm board`: the site, Markdown, CSV and JSON from one computed board (results written by hand,
as in tests/test_board.py): byte-identical rebuilds, rank intervals, escaping, the literature
kept apart, and exports that carry the Markdown's numbers."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from benchmark.cli import main
from benchmark.escape import csv_cell, latex_text, safe_url
from benchmark.leaderboard.build import build_board
from benchmark.leaderboard.data import LITERATURE
from benchmark.leaderboard.exports import as_records
from benchmark.leaderboard.markdown import rank_range
from benchmark.leaderboard.ranking import assign, scored
from benchmark.stats.metrics import compare
from benchmark.stats.uncertainty import holm
from tests.test_board import _result

SCRIPT = "<script>alert(1)</script>"
IMAGE = "![x](http://example.com/p.png)"


def hostile_results(root: Path) -> Path:
    """Two real tasks and the demo; a shortcut, an in-domain model, a model on one task only, and
    two submitters whose display names try HTML and Markdown."""
    for task in ("alpha", "beta", "demo"):
        _result(root, "full", task, 0.8)
    for task in ("alpha", "beta"):
        _result(root, "second", task, 0.6)
        _result(root, "loud", task, 0.5, shortcut=True)
        _result(
            root,
            "evil",
            task,
            0.7,
            display_name=SCRIPT,
            model={"url": "javascript:alert(1)", "license": '=HYPERLINK("http://e")'},
        )
        _result(
            root,
            "img",
            task,
            0.75,
            display_name=IMAGE,
            model={"url": "https://example.org/m?a=1&b=<2>", "parameters": 12345},
        )
    _result(root, "trained", "alpha", 0.9)
    _result(root, "trained", "beta", 0.95, zero_shot=False)
    _result(root, "partial", "alpha", 0.99)
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("site")
    results = hostile_results(base / "results")
    build_board(results, base / "out")
    return results, base / "out"


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}  # fmt: skip


def test_same_results_give_the_same_bytes_anywhere(built, tmp_path):
    results, out = built
    first = _files(out)
    assert {"README.md", "site/index.html", "site/board.csv", "site/board.json"} <= set(first)
    assert any(name.startswith("site/plots/") and name.endswith(".svg") for name in first)
    build_board(results, tmp_path / "again")
    moved = tmp_path / "elsewhere" / "copy"
    shutil.copytree(results, moved)
    build_board(moved, tmp_path / "moved")
    assert _files(tmp_path / "again") == first
    assert _files(tmp_path / "moved") == first
    data = b"".join(first.values())  # PDFs too: a path would show up in their bytes
    assert str(results).encode() not in data and str(tmp_path).encode() not in data
    assert any(name.endswith(".pdf") for name in first) and any(n.endswith(".tex") for n in first)


def test_cli_board_writes_every_output_and_summary(tmp_path):
    results = hostile_results(tmp_path / "results")
    assert main(["--repo", str(tmp_path), "board", "--results", str(results)]) == 0
    default = tmp_path / "results-board"  # never the checkout's own leaderboard/
    assert (default / "site" / "index.html").is_file() and (default / "README.md").is_file()
    assert (results / "summary.md").read_bytes() == (default / "README.md").read_bytes()
    assert main(["--repo", str(tmp_path), "board", "--results", str(results), "--out",
                 str(tmp_path / "o")]) == 0  # fmt: skip
    assert _files(tmp_path / "o") == _files(default)


def test_rank_intervals_follow_the_paired_tests_with_holm(tmp_path):
    """A model with the leader's very predictions shares its ranks; a clearly worse one does not;
    the decisions are those of `metrics.compare`'s overall test, Holm-adjusted over every pair of
    models, and the board shows the same intervals in Markdown, CSV and JSON."""
    root = tmp_path / "results"
    _result(root, "best", "alpha", 0.95)
    _result(root, "worse", "alpha", 0.15)
    _result(root, "twin", "alpha", 0.5)
    twin = root / "twin" / "alpha.predictions.parquet"
    shutil.copy(root / "best" / "alpha.predictions.parquet", twin)
    record = json.loads((root / "best" / "alpha.json").read_text())
    (root / "twin" / "alpha.json").write_text(json.dumps({**record, "submission": "twin",
                                                          "display_name": "twin"}))  # fmt: skip
    tables = {s: pq.read_table(root / s / "alpha.predictions.parquet") for s in ("best", "worse", "twin")}  # fmt: skip
    acc = {s: record["metrics"]["overall"]["accuracy"] for s in ("best", "twin")}
    acc["worse"] = json.loads((root / "worse" / "alpha.json").read_text())["metrics"]["overall"][
        "accuracy"
    ]
    ranks = assign([scored(s, acc[s], t) for s, t in tables.items()], "t")
    raw = {
        (x, y): compare(tables[x], tables[y])["overall"]["p_value"]
        for x, y in (("best", "twin"), ("best", "worse"), ("twin", "worse"))
    }
    adjusted = dict(zip(raw, holm(list(raw.values())), strict=True))
    assert adjusted["best", "twin"] == 1.0
    assert adjusted["best", "worse"] < 0.05 and adjusted["twin", "worse"] < 0.05
    assert {k: (v.low, v.high) for k, v in ranks.items()} == {
        "best": (1, 2), "twin": (1, 2), "worse": (3, 3)
    }  # fmt: skip
    out = build_board(root, tmp_path / "out")
    rows = {r["submission"]: r for r in as_records((tmp_path / "out/site/board.csv").read_text())}
    got = [(rows[s]["rank_low"], rows[s]["rank_high"]) for s in ("best", "twin", "worse")]
    assert got == [("1", "2"), ("1", "2"), ("3", "3")]
    md_rows = [line for line in out.markdown.splitlines() if line.startswith("| twin ")]
    assert md_rows[0].endswith("| 1–2 |")
    assert "not distinguishable at this power" in out.markdown and "equivalent" not in out.markdown


def test_rank_intervals_from_scratch_on_clear_differences():
    """Hand-worked: on 400 pairs over 400 disjoint clip pairs, 90% vs 50% correct is separated,
    and two models differing on one pair are not."""
    import pyarrow as pa

    from benchmark.data.tables import FIXED_SUBSETS, from_rows
    from benchmark.stats.metrics import PREDICTION_SCHEMA

    def table(correct: np.ndarray) -> pa.Table:
        rows = [
            {
                "pair_id": f"p{i:03d}", "task": "t", "split": "test", "relation": "cross",
                "clip_a": f"a{i}", "clip_b": f"b{i}", "mos_a": 3.0, "mos_b": 2.0,
                "delta_mos": 1.0, "chosen": "a", "delta_bin": 0,
                **dict.fromkeys(FIXED_SUBSETS, False),
                "score_a": 1.0 if c else 0.0, "score_b": 0.5,
            }
            for i, c in enumerate(correct)
        ]  # fmt: skip
        return from_rows(rows, PREDICTION_SCHEMA)

    n = 400
    good = np.arange(n) % 10 != 0  # 90%
    close = good.copy()
    close[1] = False  # one pair fewer
    coin = np.arange(n) % 2 == 0  # 50%
    models = [scored("good", 0.9, table(good)), scored("close", 0.8975, table(close)),
              scored("coin", 0.5, table(coin))]  # fmt: skip
    ranks = assign(models, "t")
    assert {k: v.label for k, v in ranks.items()} == {"good": "1–2", "close": "1–2", "coin": "3"}


def test_hostile_names_are_inert_in_every_output(built):
    _, out = built
    html = (out / "site" / "index.html").read_text()
    md = (out / "README.md").read_text()
    csv_text = (out / "site" / "board.csv").read_text()
    # HTML: escaped text, our one script, no image, no live javascript: link
    assert SCRIPT not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("<script>") == 1 and "<img" not in html
    assert IMAGE.replace("(", "&#x27;") not in html and "![x](http://example.com/p.png)" in html
    assert 'href="javascript' not in html and "javascript:alert(1)" in html
    assert (
        '<a href="https://example.org/m?a=1&amp;b=&lt;2&gt;" rel="nofollow noopener noreferrer">'
        in html
    )
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert "http://" not in re.sub(r"<td[^>]*>[^<]*</td>", "", html.split("<main>")[0])
    # Markdown: no image, link or HTML
    assert SCRIPT not in md and "![x](" not in md and "&lt;script&gt;" in md
    assert "!\\[x\\](http://example.com/p.png)" in md
    # CSV: the plain names as data, and no cell starts a formula
    rows = as_records(csv_text)
    names = {r["name"] for r in rows}
    assert SCRIPT in names and IMAGE in names
    for r in rows:
        assert not any(v.startswith(("=", "+", "@")) for v in r.values())
        assert not any(v.startswith("-") and not re.fullmatch(r"-[\d.e-]+", v) for v in r.values())
    assert csv_cell("=1+1") == "'=1+1" and csv_cell("-x") == "'-x" and csv_cell("a=b") == "a=b"
    assert safe_url("javascript:alert(1)") is None and safe_url("https://a.b/c") == "https://a.b/c"
    assert safe_url("https://a.b/\nx") is None and safe_url("http:///nohost") is None
    # the site's plots: the names are SVG text, escaped
    svgs = "".join(p.read_text() for p in (out / "site" / "plots").glob("*.svg"))
    assert SCRIPT not in svgs and "&lt;script&gt;alert(1)&lt;/script&gt;" in svgs
    # the LaTeX tables: a name cannot run a macro or break the tabular
    tex = "".join(p.read_text() for p in (out / "site" / "tables").glob("*.tex"))
    assert SCRIPT not in tex and r"\textless{}script\textgreater{}alert(1)" in tex
    body = [line for line in tex.splitlines() if line.endswith("\\\\")]
    assert body and all(line.count(" & ") == body[0].count(" & ") for line in body)
    assert latex_text(r"a_b & {x} \ $ % # ~ ^") == (
        r"a\_b \& \{x\} \textbackslash{} \$ \% \# \textasciitilde{} \textasciicircum{}"
    )


def test_literature_is_listed_apart_and_never_ranked(built):
    _, out = built
    html = (out / "site" / "index.html").read_text()
    md = (out / "README.md").read_text()
    section = html[html.index('<section id="literature"') :]
    section = section[: section.index("</section>")]
    for r in LITERATURE:
        assert r.overall in section and r.model in section
        assert r.overall not in html.replace(section, "")
    assert "not comparable" in section and 'class="sortable"' not in section
    lit = md[md.index("## Numbers reported in the literature") :]
    assert "not comparable" in lit and "80.04" in lit and "≈68.2" in lit
    assert "80.04" not in md[: md.index("## Numbers reported in the literature")]
    assert md.index("## Numbers reported") > md.index("## All tasks")


def _md_row(md: str, heading: str, name: str) -> list[str]:
    start = md.index(heading)
    section = md[start : md.find("\n## ", start + 1)]
    line = next(x for x in section.splitlines() if x.startswith(f"| {name} ") or f"| {name} |" in x)
    return [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]


def test_csv_and_json_carry_the_markdown_numbers(built):
    _, out = built
    md = (out / "README.md").read_text()
    rows = as_records((out / "site" / "board.csv").read_text())
    board = json.loads((out / "site" / "board.json").read_text())
    task_rows = [r for r in rows if r["scope"] == "task" and r["status"] != "ceiling"]
    assert {(r["task"], r["submission"]) for r in task_rows} == {
        (t["name"], row["submission"]) for t in board["tasks"] for row in t["rows"]
    }
    for r in task_rows:
        if r["name"] in (SCRIPT, IMAGE):
            continue
        cells = _md_row(md, f"## {r['task']} ", r["name"])
        acc, low, high = (100 * float(r[k]) for k in ("accuracy", "ci_low", "ci_high"))
        assert cells[1] == f"{acc:.1f} [{low:.1f}, {high:.1f}]"
        assert cells[-1] == rank_range(int(r["rank_low"]), int(r["rank_high"]))
        assert cells[-2] == r["n"]
        assert cells[2] == "–" and r["gap_closed"] == ""  # these results carry no ceiling
        for i in range(3):
            assert cells[3 + i].startswith(f"{100 * float(r[f'bin_{i}_accuracy']):.1f}")
        j = next(t for t in board["tasks"] if t["name"] == r["task"])
        row = next(x for x in j["rows"] if x["submission"] == r["submission"])
        assert row["overall"]["accuracy"] == float(r["accuracy"])
        assert (row["rank_low"], row["rank_high"]) == (int(r["rank_low"]), int(r["rank_high"]))
    summary = [r for r in rows if r["scope"] == "tasks"]
    assert {r["task"] for r in summary} == {"alpha+beta", "alpha"}
    for r in summary:
        if r["task"] != "alpha+beta" or r["name"] in (SCRIPT, IMAGE):
            continue
        line = next(x for x in md.splitlines() if re.match(rf"\| \d+ \| {r['name']}\b", x))
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == r["rank"] and cells[-1] == r["n"]
        assert cells[4] == rank_range(int(r["rank_low"]), int(r["rank_high"]))
        assert cells[2].startswith(f"{100 * float(r['accuracy']):.1f} [")
        assert cells[3].startswith(f"{100 * float(r['macro_accuracy']):.1f} [")
    assert board["board_format"] == 3 and board["synthetic_tasks"] == ["demo"]
    assert "demo" not in {t for r in summary for t in r["task"].split("+")}


def test_empty_results_still_build_a_page(tmp_path):
    (tmp_path / "results").mkdir()
    built = build_board(tmp_path / "results", tmp_path / "out")
    assert built.markdown.startswith("No results yet")
    html = (tmp_path / "out" / "site" / "index.html").read_text()
    assert "No results yet" in html and 'id="literature"' in html


def test_plot_labels_keep_the_end_where_variants_differ() -> None:
    from benchmark.leaderboard.plots import label

    base = "GRPO judge, MOS-aware reward (log-mel CNN, demo)"
    names = [base, base + " [SFT only]", "DPO implicit reward (unit LM, demo), per unit"]
    labels = [label(n) for n in names]
    assert len(set(labels)) == len(labels) and all(len(x) <= 40 for x in labels)
    assert labels[1].endswith("[SFT only]") and "…" in labels[1]
    assert label("short $x") == r"short \$x"  # no mathtext, short names untouched
