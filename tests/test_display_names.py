"""Display names are a submitter's free text: on the board each is one plain, capped, inert cell, and
no two submissions are shown under the same name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmark.escape import display_name
from benchmark.leaderboard.board import render_markdown
from tests.test_board import _result

HOSTILE = {
    "cr": "Good\rmodel | 99.9",
    "pipe": "a|b|c",
    "image": "![x](http://e/p.png)",
    "script": "<script>alert(1)</script>",
    "bidi": "evil\u202eexe.txt",
    "zero-width": "zero\u200b\u200dwidth\ufeff",
    "long": "L" * 5000,
    "surrogate": "lone \ud800 surrogate",
}


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a\rb", "a b"),
        ("  a\t\n\x0b b \u2028 c  ", "a b c"),
        ("x\u202etxt.exe", "xtxt.exe"),
        ("zero\u200bwidth\u2066", "zerowidth"),
        ("nul\x00 and esc\x1b[31m", "nul and esc[31m"),
        ("private\ue000use", "privateuse"),
        ("Ünïcödé 名前", "Ünïcödé 名前"),
        ("", ""),
    ],
)
def test_display_name_keeps_only_plain_text(text: str, shown: str) -> None:
    assert display_name(text) == shown


def test_display_name_caps_with_an_ellipsis() -> None:
    assert display_name("x" * 80) == "x" * 80
    assert display_name("x" * 5000) == "x" * 79 + "…"
    assert display_name("word " * 30, limit=11) == "word word…"  # no space before the ellipsis


def _cells(line: str) -> list[str]:
    return re.split(r"(?<!\\)\|", line)[1:-1]  # an escaped \| stays inside its cell


def _table_rows(md: str, task: str) -> list[str]:
    section = md[md.index(f"## {task} ") :]
    table = section[: section.index("By relation:")]
    return [line for line in table.splitlines() if line.startswith("|")][2:]


def test_hostile_names_render_inert_in_one_capped_row_each(tmp_path: Path) -> None:
    root = tmp_path / "results"
    for sub, name in HOSTILE.items():
        for task in ("alpha", "beta"):
            _result(root, sub, task, 0.7, display_name=name)
    md = render_markdown(root)
    md.encode("utf-8")  # a lone surrogate would make the board unwritable
    for bad in ("\r", "\u202e", "\u200b", "\ufeff", "<script>", "![x](", "L" * 80):
        assert bad not in md
    rows = _table_rows(md, "alpha")
    assert len(rows) == len(HOSTILE)
    for table in re.findall(r"(?:^\|.*\n)+", md, flags=re.M):
        lines = table.splitlines()
        assert all(len(_cells(line)) == len(_cells(lines[0])) for line in lines[2:]), table
    names = {_cells(r)[0].strip() for r in rows}
    assert "L" * 79 + "…" in names
    assert "Good model \\| 99.9" in names and "a\\|b\\|c" in names
    assert "evilexe.txt" in names and "zerowidth" in names
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in names


def test_shared_names_are_disambiguated_by_folder(tmp_path: Path) -> None:
    root = tmp_path / "results"
    for task in ("alpha", "beta"):
        _result(root, "first", task, 0.8, display_name="Same Model")
        _result(root, "second", task, 0.6, display_name="Same\u200b Model\r")  # reads the same
        _result(root, "third", task, 0.5, display_name="Same Model (first)")  # a lookalike
        _result(root, "other", task, 0.4, display_name="Other")
    md = render_markdown(root)
    names = sorted(_cells(r)[0].strip() for r in _table_rows(md, "alpha"))
    assert names == [
        "Other",
        "Same Model (first) (first)",
        "Same Model (first) (third)",
        "Same Model (second)",
    ]
    assert render_markdown(root) == md
    summary = md[md.index("## All tasks") :]
    assert "Same Model (second)" in summary and "| Other |" in summary


def test_a_name_of_only_control_characters_falls_back_to_the_folder(tmp_path: Path) -> None:
    root = tmp_path / "results"
    _result(root, "blank-name", "alpha", 0.7, display_name="\u202e\r\n\t\u200b")
    rows = _table_rows(render_markdown(root), "alpha")
    assert _cells(rows[0])[0].strip() == "blank-name"
