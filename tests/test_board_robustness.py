"""The board's robustness tables (`leaderboard.robustness`): built from the probe records beside the
results shown, apart from the ranking, escaped, and never from a probe record of another model."""

from __future__ import annotations

import json
from pathlib import Path

from benchmark.cli import main
from benchmark.escape import markdown_cell
from benchmark.leaderboard.build import build_board
from tests.sandbox_required import sandbox_needed
from tests.test_probe import _repo

pytestmark = sandbox_needed()


def test_robustness_tables_follow_the_probe_records_of_the_shown_models(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    args = ["--workspace", str(repo), "evaluate", "shortcut-loudness", "shortcut-random"]
    assert main([*args, "--task", "toy", "--probes", "--probe-clips", "8", "--quiet"]) == 0
    results = repo / "results"
    rec = json.loads((results / "shortcut-loudness" / "probes" / "toy.json").read_text())

    built = build_board(results, tmp_path / "board", repo / "submissions", repo=repo)
    md = built.markdown
    section = md[md.index("## Will a policy exploit it?") :]
    row = next(x for x in section.splitlines() if x.startswith("| Shortcut: loudness"))
    worst = rec["hacking"]["worst"]
    assert f"{100 * worst['flip_rate']:.1f}" in row and markdown_cell(worst["probe"]) in row
    acc = rec["sensitivity"]["overall"]["accuracy"]
    assert row.split(" | ")[1].startswith(f"{100 * acc:.1f} [")
    assert "| Shortcut: random" in section
    html = (tmp_path / "board" / "site" / "index.html").read_text()
    assert '<section id="robustness">' in html and 'href="#robustness"' in html
    assert html.count('class="heat"') == 2  # sensitivity by family, flip rate by transform
    plots = tmp_path / "board" / "site" / "plots"
    svg = (plots / "00-toy-sensitivity.svg").read_text()
    assert (plots / "00-toy-sensitivity.pdf").read_bytes().startswith(b"%PDF")
    assert 'href="plots/00-toy-sensitivity.svg"' in html and "noise_white" in svg
    assert "Shortcut: loudness" in svg  # a line per model, with its legend

    # a probe record of another model (a retrained one, say) is never shown as this one's
    rec["model_fingerprint"] = "0" * 64
    (results / "shortcut-loudness" / "probes" / "toy.json").write_text(json.dumps(rec))
    md = build_board(results, tmp_path / "board2", repo / "submissions", repo=repo).markdown
    section = md[md.index("## Will a policy exploit it?") :]
    assert "| Shortcut: loudness" not in section
    assert "Probes left out (older model or pairs, or unreadable): shortcut-loudness." in section


def test_hostile_names_are_escaped_in_the_robustness_tables() -> None:
    from benchmark.leaderboard.robustness import (
        Range,
        RobustRow,
        RobustTask,
        markdown_section,
        site_section,
    )

    evil = "<script>alert(1)</script>|x"
    row = RobustRow(
        submission="evil",
        name=evil,
        degradation=Range(0.5, 0.4, 0.6),
        worst_probe="gain@+6dB",
        worst_flip=Range(1.0, 0.9, 1.0),
        bon_all=Range(0.1, -0.2, 0.4),
        bon_n=Range(None),
        n=10,
        families={"noise_white": [1.0, 0.5]},
        flips={"gain@+6dB": 1.0},
        not_monotone=("noise_white",),
        consistent=False,
    )
    task = RobustTask("t<b>", [row], 10, 2, 5, 4, ["gain@+6dB"], stale=[evil])
    html = site_section([task])
    assert "<script>" not in html and "<b>" not in html
    md = "\n".join(markdown_section([task]))
    table_row = next(x for x in md.splitlines() if "alert" in x and x.startswith("|"))
    assert table_row.count(" | ") == 4  # the name's pipe does not open a column
    assert "scored the test clips differently" in md
