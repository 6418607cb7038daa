"""The board as Markdown, from a results folder: loaded and checked (`leaderboard.load`), computed
once (`leaderboard.data`), formatted (`leaderboard.markdown`). Reads results; never scores.
"""

from __future__ import annotations

from pathlib import Path

from benchmark.leaderboard.data import board_data
from benchmark.leaderboard.load import (  # noqa: F401 - the loaders, where callers found them
    current_fingerprints,
    load_results,
    predictions_path,
)
from benchmark.leaderboard.markdown import markdown


def render_markdown(results_root: str | Path, submissions_root: str | Path | None = None) -> str:
    """The whole board as Markdown (`leaderboard.markdown` over `leaderboard.data.board_data`).

    With `submissions_root`, each result's model fingerprint is checked against its folder's.
    """
    return markdown(board_data(results_root, submissions_root))
