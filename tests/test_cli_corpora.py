"""The corpus verbs of the CLI: download (offline parts), card, prepare overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from benchmark.cli import main
from tests.layouts import somos

REPO = Path(__file__).resolve().parents[1]


def test_download_manual_corpus_prints_steps_and_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["download", "tmhint_qi", "--data-root", str(tmp_path), "--quiet"]) == 3
    out = capsys.readouterr().out
    assert "TMHINTQI.zip" in out and "raw_data.csv" in out
    assert f"mosrm prepare tmhint_qi --data-root {tmp_path}" in out
    assert main(["download", "vmc23", "--instructions"]) == 0
    assert "track1_answer.txt" in capsys.readouterr().out
    assert main(["download", "nope", "--data-root", str(tmp_path)]) == 2
    assert "bvcc" in capsys.readouterr().err


def test_card_without_data_has_static_parts_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--repo", str(tmp_path / "ws"), "card", "somos", "--out", str(tmp_path)]) == 0
    text = (tmp_path / "somos.md").read_text()
    assert "Zenodo record 7378801" in text and "Maniati" in text
    assert "not computed" in text and "14,100" in text
    assert not (tmp_path / "somos-delta-mos.svg").exists()
    assert (
        main(["--repo", str(tmp_path / "ws"), "card", "--all", "--data-root", str(tmp_path)]) == 2
    )
    assert "--data-root names one corpus" in capsys.readouterr().err


def test_card_with_fixture_data_describes_the_prepared_pairs(tmp_path: Path) -> None:
    from benchmark.paths import prepared_dir

    somos.write(tmp_path / "data", audio=False)
    out = tmp_path / "cards"
    args = ["--repo", str(tmp_path / "ws"), "card", "somos", "--data-root", str(tmp_path / "data")]
    assert main([*args, "--labels-only", "--out", str(out), "--quiet"]) == 0
    text = (out / "somos.md").read_text()
    manifest = json.loads((prepared_dir("somos") / "manifest.json").read_text())
    for split, sha in manifest["pair_sha256"].items():
        assert sha in text, split
    assert "not probed (labels-only)" in text
    assert (out / "somos-delta-mos.svg").is_file()
    assert str(tmp_path) not in text  # no machine-specific paths in a committed card


def test_prepare_count_overrides_go_to_their_own_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    somos.write(tmp_path / "data", audio=False)
    base = [
        "--repo",
        str(tmp_path / "ws"),
        "prepare",
        "somos",
        "--data-root",
        str(tmp_path / "data"),
    ]
    assert main([*base, "--labels-only", "--quiet"]) == 0
    canonical = capsys.readouterr().out
    assert main([*base, "--labels-only", "--quiet", "--pairs", "test.cross=2"]) == 0
    custom = capsys.readouterr().out
    line = next(x for x in custom.splitlines() if x.strip().startswith("test:"))
    path = Path(line.split()[1])
    assert path.parent.name.startswith("custom-")
    meta = json.loads(pq.read_schema(path).metadata[b"mosrm.meta"])
    assert meta["count_overrides"] == {"cross": 2}
    assert meta["relations"]["cross"]["sampled"] == 2
    # the canonical pair files are untouched
    first = next(x for x in canonical.splitlines() if x.strip().startswith("test:"))
    assert Path(first.split()[1]).parent.name == "somos"
    for bad in ("test.cross", "test.nope=3", "test.cross=-1", "test.cross=x"):
        assert main([*base, "--labels-only", "--pairs", bad]) == 2
        assert "--pairs" in capsys.readouterr().err


@pytest.mark.parametrize("task", ["bvcc", "nisqa", "singmos", "somos", "tmhint_qi", "vmc23"])
def test_committed_cards_are_up_to_date_with_the_task_yaml(task: str) -> None:
    """The committed cards of the six corpora (data not shipped) match their task YAML."""
    from benchmark.cards.card import render_card
    from benchmark.data.tasks import get_task

    card = render_card(get_task(REPO / "benchmark" / "shipped" / "tasks", task), None)
    committed = (REPO / "data_cards" / f"{task}.md").read_text(encoding="utf-8")
    assert card.markdown == committed, f"run `mosrm card {task}` and commit data_cards/{task}.md"
