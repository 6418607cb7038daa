"""The README's robustness table is the committed demo board's probes, cell for cell: a number
pasted from an older run fails here."""

from __future__ import annotations

from pathlib import Path

from benchmark.escape import markdown_cell
from benchmark.leaderboard.load import load_results
from benchmark.leaderboard.robustness import robustness

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "leaderboard" / "results"


def _readme_rows() -> dict[str, list[str]]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Will a policy exploit it?") :]
    section = section[: section.index("\n## ", 5)] if "\n## " in section[5:] else section
    rows = {}
    for line in section.splitlines():
        if line.startswith("| ") and not line.startswith(("| model", "|---")):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            rows[cells[0]] = cells[1:]
    return rows


def test_the_readme_robustness_table_is_the_committed_probes() -> None:
    (demo,) = [t for t in robustness(RESULTS, load_results(RESULTS)) if t.task == "demo"]
    documented = _readme_rows()
    assert len(demo.rows) == 11 and len(documented) == 11
    for r in demo.rows:
        worst = "–" if r.worst_probe is None else f"{r.worst_flip.text()} ({r.worst_probe})"
        want = [
            r.degradation.text(),
            markdown_cell(worst),
            r.bon_all.text(pct=False),
            r.bon_n.text(pct=False),
        ]
        assert documented[markdown_cell(r.name)] == want, r.name


def test_the_documented_probe_cost_is_the_demo_records() -> None:
    import json

    from tests.docs_text import docs_text

    record = json.loads((RESULTS / "demo-bt" / "probes" / "demo.json").read_text(encoding="utf-8"))
    cost = record["cost"]
    assert cost["plain_clips"] == 256 and cost["stream_clips"] == 256 + cost["probe_clips"]
    assert f"the stream is {cost['relative_to_plain']} times the plain" in docs_text().replace(
        "\n", " "
    )


def test_the_documented_probe_interval_widths_are_the_demo_records() -> None:
    import json

    from tests.docs_text import docs_text

    deg, flip = [], []
    for path in sorted(RESULTS.glob("*/probes/demo.json")):
        rec = json.loads(path.read_text(encoding="utf-8"))
        o = rec["sensitivity"]["overall"]
        deg.append(100 * (o["ci_high"] - o["ci_low"]))
        worst = next(
            r for r in rec["hacking"]["rows"] if r["probe"] == rec["hacking"]["worst"]["probe"]
        )
        flip.append(100 * (worst["ci_high"] - worst["ci_low"]))
    text = " ".join(docs_text().split())
    assert (
        f"degradation-accuracy intervals are {min(deg):.1f} to {max(deg):.1f} points wide and the "
        f"worst-flip-rate intervals {min(flip):.1f} to {max(flip):.1f}"
    ) in text
