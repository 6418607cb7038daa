"""A checkout with one small CSV task (generated audio) and the shortcut submissions, for tests that
run whole prepare/evaluate cycles many times (reuse, concurrency) and must stay fast."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml

REPO = Path(__file__).resolve().parents[1]
SHORTCUTS = ("shortcut-random", "shortcut-duration", "shortcut-loudness")


def write_wav(path: Path, seconds: float, seed: int, amp: float) -> None:
    rng = np.random.default_rng(seed)
    n = int(round(seconds * 16000))
    t = np.arange(n) / 16000
    x = amp * np.sin(2 * np.pi * (200 + 50 * seed) * t) + 0.01 * rng.standard_normal(n)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.astype(np.float32), 16000, subtype="PCM_16")


def write_toy_repo(
    base: Path, *, systems: int = 4, sentences: int = 6, rated: bool = False
) -> Path:
    """`base/repo` with tasks/toy.yaml over `base/data` (systems x sentences clips); returns repo.

    The data files are dated a minute back: a prepare does not record files changed within the
    last seconds as reusable (see benchmark.pairs.reuse.RACY_NS), and these tests want reuse to apply.
    `rated` adds rating counts and standard deviations, so pairs get a label reliability and
    results a noise ceiling.
    """
    repo, data = base / "repo", base / "data"
    rows = ["wav,mos,system,sentence,split" + (",votes,std" if rated else "")]
    rng = np.random.default_rng(7)
    i = 0
    for s in range(systems):
        for c in range(sentences):
            name = f"wav/s{s}_c{c}.wav"
            write_wav(data / name, seconds=0.3 + 0.05 * c, seed=i, amp=0.05 + 0.05 * s)
            mos = round(1.5 + 0.7 * s + rng.uniform(-0.4, 0.4), 3)
            extra = f",{5 + i % 4},{0.5 + 0.1 * (i % 5):.2f}" if rated else ""
            rows.append(f"{name},{mos},sys{s},sent{c},test{extra}")
            i += 1
    (data / "scores.csv").write_text("\n".join(rows) + "\n")
    pairs = {"test": {"same_content": 30, "same_system": 40, "cross": 60}}
    return finish_repo(repo, data, pairs=pairs, bins=4, seed=3, split_column=False, rated=rated)


def finish_repo(
    repo: Path,
    data: Path,
    *,
    pairs: dict,
    bins: int,
    seed: int,
    split_column: bool,
    rated: bool = False,
) -> Path:
    """tasks/toy.yaml over `data/scores.csv` (wav, mos, system, sentence[, split]) and the
    shortcut submissions; the data dated back so reuse applies. Returns `repo`."""
    columns = {"audio": "wav", "score": "mos", "system": "system", "content": "sentence"}
    if split_column:
        columns["split"] = "split"
    if rated:
        columns.update(n_ratings="votes", rating_std="std")
    spec = {
        "name": "toy",
        "version": 1,
        "description": "tiny generated CSV task",
        "reader": "csv",
        "data": {"root": str(data), "options": {"file": "scores.csv", "columns": columns}},
        "pairs": pairs,
        "bins": bins,
        "seed": seed,
        "license": "CC0",
        "citation": "none",
    }
    (repo / "tasks").mkdir(parents=True)
    (repo / "tasks" / "toy.yaml").write_text(yaml.safe_dump(spec))
    for name in SHORTCUTS:
        shutil.copytree(
            REPO / "benchmark" / "shipped" / "submissions" / name, repo / "submissions" / name
        )
    settle(data)
    return repo


def settle(root: Path, seconds_ago: float = 60.0) -> None:
    """Date every file under `root` `seconds_ago` back (see `write_toy_repo`)."""
    t = time.time() - seconds_ago
    for p in root.rglob("*"):
        if p.is_file():
            os.utime(p, (t, t))
