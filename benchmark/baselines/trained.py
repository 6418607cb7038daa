"""The reference baselines that `mosrm run` evaluates beside the shipped submissions: artefacts,
not recipes.

The official ones are committed as ordinary submission folders under `REFERENCE`
(`benchmark/baselines/reference/<name>/`: weights as safetensors, `submission.yaml`, the
training config, a model card and the training curve), inside the package so that a pip
installation ships them too. `mosrm run` scores exactly those files on any machine, so the
official board re-derives anywhere; it never trains them. Re-creating them is `make train`
(`mosrm train training/<name>.yaml --out benchmark/baselines/reference/<name>`): byte for byte on
the same machine and software, close in metrics elsewhere (README, "Reference baselines").

`mosrm run --train` instead trains every config in `training/` here, once, under
`$MOSRM_HOME/trained/<key>/<name>/`, and scores those copies: the key hashes the config and the
exact data it trains on (the tasks' prepared clip tables and pair files), so a changed config or
corpus trains a new copy and an unchanged one is reused. An interrupted training resumes from its
checkpoint on the next run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from benchmark.baselines.train_config import TrainConfig
    from benchmark.pairs.prepare import PreparedTask


from benchmark.scoring.trust import REFERENCE


def reference_folders(prepared: Collection[str] | None = None) -> list[Path]:
    """The committed reference submission folders, by name; with `prepared` (task names), only
    those whose training tasks (their `train-config.json`) are all prepared, as a board can only
    hold a baseline next to the tasks it was made for."""
    out = []
    for spec in sorted(REFERENCE.glob("*/submission.yaml")):
        folder = spec.parent
        if prepared is not None:
            tasks = json.loads((folder / "train-config.json").read_text(encoding="utf-8"))["tasks"]
            if not set(tasks) <= set(prepared):
                continue
        out.append(folder)
    return out


def training_key(config: TrainConfig, prepared: dict[str, PreparedTask]) -> str:
    """The config's hash and the exact data: each task's pair files and its 16 kHz audio cache."""
    from benchmark.data.audio_cache import manifest_sha256

    data = {}
    for name in config.tasks:
        p = prepared[name]
        audio = manifest_sha256(p.audio_root) if p.audio_root is not None else None
        data[name] = {"pairs": p.pair_sha256, "audio": audio}
    text = json.dumps({"config": config.sha256(), "data": data}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def trained_folder(config: TrainConfig, prepared: dict[str, PreparedTask]) -> Path:
    from benchmark.paths import home

    return home() / "trained" / training_key(config, prepared) / config.name


def ensure_trained(
    repo: Path,
    prepared: list[PreparedTask],
    *,
    configs: Sequence[Path] | None = None,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
) -> list[Path]:
    """Submission folders of every config (default: `repo/training/*.yaml`), one per seed of a
    config with `seeds`, whose training tasks are all prepared, training those without a
    finished copy (an interrupted one resumes from its checkpoint)."""
    from benchmark.atomic import file_lock
    from benchmark.baselines.train import train
    from benchmark.baselines.train_config import load_train_config

    if echo is None:
        echo = logging.getLogger(__name__).info
    by_name = {p.task.name: p for p in prepared}
    folders = []
    paths = sorted((repo / "training").glob("*.yaml")) if configs is None else list(configs)
    for path in paths:
        written = load_train_config(path)
        missing = [t for t in written.tasks if t not in by_name]
        if missing:
            echo(f"skip training {written.name}: task(s) {', '.join(missing)} not prepared")
            continue
        # as the card records it: never a machine's absolute path (the card is fingerprinted)
        shown = path.relative_to(repo) if path.is_relative_to(repo) else Path(*path.parts[-2:])
        for config in written.per_seed():
            folder = trained_folder(config, by_name)
            with file_lock(folder.parent / ".lock"):
                if not _finished(folder):
                    echo(f"train {config.name} ({shown}) into {folder} …")
                    train(config, folder, repo=repo, config_path=shown, progress=progress)
                    shutil.rmtree(folder / "checkpoint", ignore_errors=True)
                else:
                    echo(f"trained {config.name}: up to date in {folder}")
            folders.extend(submission_folders(folder))
    return folders


def submission_folders(folder: Path) -> list[Path]:
    """The submissions one training wrote: its own folder first, then the variants a recipe
    writes beside it (DPO's per-unit reward, the GRPO judge's SFT-only stage), by name."""
    siblings = sorted(
        p.parent
        for p in folder.parent.glob("*/submission.yaml")
        if p.parent != folder and p.parent.name.startswith(folder.name + "-")
    )
    return [folder, *siblings]


def _finished(folder: Path) -> bool:
    """A completed training leaves its spec, and no checkpoint to resume (`ensure_trained`
    removes the checkpoint only once the recipe has written every folder)."""
    return (folder / "submission.yaml").is_file() and not (folder / "checkpoint").exists()
