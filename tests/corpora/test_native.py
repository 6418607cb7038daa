"""The shared native-layout helpers: layout-naming errors, skips, published-mean tolerance."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from benchmark.data.corpora._native import (
    Skip,
    check_root,
    clip_table,
    mean_agrees,
    printed_tolerance,
    rating_stats,
    read_rows,
    require_file,
    table_skips,
)
from benchmark.errors import DataError

LAYOUT = "root/\n  meta/list.csv   # id,mos\n"


@pytest.mark.parametrize(
    "text, tol",
    [("3.375", 0.0005), ("2.86", 0.005), ("4.000000", 1e-6), ("4", 1e-6), ("4.1e0", 1e-6)],
)
def test_printed_tolerance(text: str, tol: float) -> None:
    assert printed_tolerance(text) == pytest.approx(tol, abs=1e-11)


def test_mean_agrees_up_to_the_printed_rounding() -> None:
    ratings = [3, 3, 2, 4, 3, 2, 3]  # mean 2.857142...
    mean = statistics.fmean(ratings)
    assert mean_agrees(mean, 2.86, "2.86")
    assert not mean_agrees(mean, 2.87, "2.87")
    assert not mean_agrees(mean, 2.857, "2.857000")  # 6 decimals printed: float noise only
    assert mean_agrees(mean, round(mean, 9), repr(round(mean, 9)))


def test_rating_stats_match_statistics() -> None:
    for scores in ([4.0], [1.0, 5.0], [1, 2, 2, 3, 5, 5, 4, 4]):
        mean, n, std = rating_stats(scores)
        assert mean == pytest.approx(statistics.fmean(scores)) and n == len(scores)
        assert std == (None if n < 2 else pytest.approx(statistics.stdev(scores)))


def test_layout_errors_name_file_and_layout(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"(?s)not a folder.*meta/list\.csv"):
        check_root(tmp_path / "nope", "toy", LAYOUT)
    (tmp_path / "inner" / "meta").mkdir(parents=True)
    (tmp_path / "inner" / "meta" / "list.csv").write_text("id,mos\na,3\n")
    with pytest.raises(DataError, match=r"(?s)missing metadata file.*one level down.*inner"):
        require_file(tmp_path, "meta/list.csv", "toy", LAYOUT)
    path = tmp_path / "bad.csv"
    path.write_text("ident,score\na,3\n")
    with pytest.raises(DataError, match=r"(?s)bad\.csv: unexpected header.*expected: id,mos"):
        list(read_rows(path, corpus="toy", layout=LAYOUT, header=["id", "mos"]))
    path.write_text("id,mos\na\n\n")
    with pytest.raises(DataError, match=r"bad\.csv:2: 1 field"):
        list(read_rows(path, corpus="toy", layout=LAYOUT, header=["id", "mos"]))
    path.write_text("a,3\n\nb,4\n")
    rows = list(read_rows(path, corpus="toy", layout=LAYOUT, header=None))
    assert rows == [(1, ["a", "3"]), (3, ["b", "4"])]  # blank lines skipped, numbers kept


def test_skips_round_trip_on_the_table() -> None:
    rows = [
        {"clip_id": c, "corpus": "t", "split": "test", "audio_path": f"{c}.wav", "mos": 3.0}
        for c in ("b", "a")
    ]
    skips = [Skip.of("no score", [f"x{i}" for i in range(7)]), Skip.of("unused", [])]
    skips.append(Skip.of("no content key", ["a"], kept=True))
    table = clip_table(rows, skips)
    assert table.column("clip_id").to_pylist() == ["a", "b"]
    got = table_skips(table)
    assert [(s.reason, s.count, s.kept) for s in got] == [
        ("no score", 7, False),
        ("no content key", 1, True),
    ]
    assert got[0].examples == ("x0", "x1", "x2", "x3", "x4")
    assert got[0].describe().startswith("7 clip(s) left out: no score (e.g. x0")
    assert "kept with a caveat" in got[1].describe()
