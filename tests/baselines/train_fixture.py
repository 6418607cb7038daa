"""A tiny CSV task with train/dev/test splits whose MOS follows the audio (noise level), so a
model can learn it in a few CPU steps; used by the training-loop tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from tests.toy_task import finish_repo, write_wav


def write_train_repo(base: Path, *, systems: int = 4, sentences: int = 12) -> Path:
    """`base/repo` with tasks/toy.yaml (train: sentences 0–7, dev: 8–9, test: 10–11)."""
    repo, data = base / "repo", base / "data"
    rows = ["wav,mos,system,sentence,split"]
    rng = np.random.default_rng(3)
    for s in range(systems):
        for c in range(sentences):
            name = f"wav/s{s}_c{c}.wav"
            amp = 0.05 + 0.08 * s  # louder system = better, so the task is learnable
            # tone frequency by sentence only (seed = c): loudness is the one cue of quality
            write_wav(data / name, seconds=0.25 + 0.03 * c, seed=c, amp=amp)
            mos = round(1.5 + 0.9 * s + rng.uniform(-0.3, 0.3), 3)
            split = "train" if c < 8 else "dev" if c < 10 else "test"
            rows.append(f"{name},{mos},sys{s},sent{c},{split}")
    (data / "scores.csv").write_text("\n".join(rows) + "\n")
    pairs = {
        "train": {"same_content": 40, "same_system": 40, "cross": 40},
        "dev": {"same_content": 20, "same_system": 10, "cross": 20},
        "test": {"same_content": 20, "same_system": 10, "cross": 20},
    }
    return finish_repo(repo, data, pairs=pairs, bins=3, seed=5, split_column=True)


TINY_MODEL = {
    "encoder": {"type": "logmel", "n_mels": 16, "channels": [8, 8], "strides": [1, 2]},
    "head": {"hidden": 8, "dropout": 0.0},
}


def config_file(repo: Path, **extra: object) -> Path:
    cfg = {
        "name": "toy-bt",
        "tasks": ["toy"],
        "loss": "bt",
        "model": TINY_MODEL,
        "epochs": 4,
        "batch_size": 8,
        "lr": 0.01,
        "max_seconds": 0.5,
        **extra,
    }
    path = repo / "training" / f"{cfg['name']}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(cfg))
    return path


def torchrun_train(repo: Path, config: Path, out: Path, nproc: int = 2) -> None:
    """`mosrm train CONFIG --out OUT` under `torchrun --standalone` with `nproc` CPU (gloo)
    processes, one thread each; fails the test with torchrun's stderr tail."""
    import os
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd += ["--nproc_per_node", str(nproc), "-m", "benchmark.cli", "--repo", str(repo)]
    cmd += ["train", str(config), "--quiet", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MOSRM_REPO": str(repo)}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
