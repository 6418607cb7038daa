"""`pip install` like the peers: the built wheel, in a fresh venv outside any checkout, gives a
working `mosrm` (init, validate, evaluate on the demo, board) with the package's tasks,
submissions and reference models as package data, and imports its own `benchmark`, not the
checkout's.

Offline: the wheel is built here without build isolation, installed with --no-deps --no-index,
and the dependencies already installed in this environment are made visible by a .pth file (as a
layered environment would); nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sandbox_required import sandbox_needed

REPO = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.mark.slow
@sandbox_needed()
def test_the_wheel_works_outside_any_checkout(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(dist)],
        check=True, capture_output=True, cwd=tmp_path,
    )  # fmt: skip
    (wheel,) = dist.glob("mosrm_bench-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    # this environment's dependencies, visible after the venv's own packages
    (Path(purelib) / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run(
        [str(py), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip

    work = tmp_path / "elsewhere"  # no checkout above it
    work.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "MOSRM_WORKSPACE", "MOSRM_REPO", "VIRTUAL_ENV")
    }
    env |= {"HOME": str(tmp_path / "home"), "MOSRM_HOME": str(tmp_path / "mosrm-home")}
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    where = _run([str(py), "-c", "import benchmark; print(benchmark.__file__)"], work, env)
    assert Path(where.strip()).is_relative_to(venv), where  # the venv's copy, not the checkout's
    mosrm = str(venv / "bin" / "mosrm")
    out = _run([mosrm, "init", "mine"], work, env)
    ws = tmp_path / "home" / "mosrm"  # no submissions/ or tasks/ here: the default workspace
    assert (ws / "submissions" / "mine" / "model.py").is_file(), out
    assert "ok: submission 'mine'" in _run([mosrm, "validate", "mine"], work, env)
    _run([mosrm, "evaluate", "mine", "--task", "demo", "--quiet"], work, env)
    record = json.loads((ws / "results" / "mine" / "demo.json").read_text())
    assert record["metrics"]["overall"]["n"] > 0
    tasks = _run([mosrm, "tasks"], work, env)
    assert "bvcc" in tasks and "demo" in tasks  # the package's tasks ship with it
    board = _run([mosrm, "board"], work, env)
    assert "demo (synthetic): 1 model(s)" in board
    assert (ws / "board" / "site" / "index.html").is_file()
    assert not (REPO / "submissions").exists() or "mine" not in os.listdir(REPO / "submissions")


def test_package_data_covers_every_shipped_file() -> None:
    """Each file under benchmark/shipped matches a package-data glob (a new kind of file there
    would otherwise be missing from the wheel only)."""
    import fnmatch
    import tomllib

    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    globs = data["tool"]["setuptools"]["package-data"]["benchmark"]
    shipped = REPO / "benchmark" / "shipped"
    files = [p for p in shipped.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert files
    for p in files:
        rel = p.relative_to(REPO / "benchmark").as_posix()
        hits = [g for g in globs if fnmatch.fnmatch(rel, g) and rel.count("/") == g.count("/")]
        assert hits, rel
