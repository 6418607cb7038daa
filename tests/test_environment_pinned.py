"""The official board's environment is pinned: `constraints.txt` is what is installed.

`make setup` installs with `-c constraints.txt`, so a re-score on another machine runs the library
versions the committed results were made with; this fails when the file and the environment part
(an upgrade without regenerating the file, or a file edited by hand).
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_constraints_pin_exactly_what_is_installed() -> None:
    pins = {}
    for line in (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name] = version
    assert len(pins) > 50 and "numpy" in pins and "torch" not in pins
    wrong = {}
    for name, version in pins.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = (version, installed)
    assert not wrong, f"constraints.txt vs installed (pinned, installed): {wrong}"
    assert metadata.version("torch").startswith("2.13.0")  # pinned in the Makefile
