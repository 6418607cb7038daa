"""Training checkpoints and weights: what a killed training run resumes from.

Why its own module: a resumed run must give the weights an uninterrupted one gives, so model,
optimiser, step counters and every rank's RNG state are saved together, atomically, and restored
exactly; weights are safetensors (never pickle), so a published model runs no code when loaded.
Nothing here trains.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.errors import MosrmError

if TYPE_CHECKING:
    import torch


def _save_checkpoint(folder: Path, model: Any, optimizer: Any, state: dict[str, Any]) -> None:
    """Model, optimizer tensors and RNG as safetensors, the rest as JSON.

    `state.json` is the commit: it is written last and names the tensor file of its own step, so a
    kill between the two writes leaves the previous checkpoint whole (a fixed tensor file name
    would pair new tensors with the old record). Older tensor files go once it is written."""
    import torch
    from safetensors.torch import save_file

    from benchmark.atomic import atomic_path, atomic_write_text

    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    for idx, per_param in opt["state"].items():
        for name, value in per_param.items():
            t = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            tensors[f"optim.{idx}.{name}"] = t.detach().cpu().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    name = f"state-step{int(state['steps'])}.safetensors"
    with atomic_path(folder / name) as tmp:
        save_file(tensors, str(tmp))
    record = {**state, "param_groups": opt["param_groups"], "tensors": name}
    atomic_write_text(folder / "state.json", json.dumps(record, sort_keys=True, indent=1) + "\n")
    for old in folder.glob("state*.safetensors"):
        if old.name != name:
            old.unlink(missing_ok=True)


def _rng_file(folder: Path, rank: int, steps: int) -> Path:
    return folder / f"rng-rank{rank}-step{steps}.safetensors"


def _save_rng(folder: Path, rank: int, steps: int) -> None:
    """This rank's CPU and CUDA generator states, for the checkpoint at `steps`.

    Every rank draws its own dropout masks, so every rank keeps its own state; the step count in
    the name ties the file to the `state.json` it belongs with (a kill between the two writes
    leaves a file that no checkpoint names)."""
    import torch
    from safetensors.torch import save_file

    from benchmark.atomic import atomic_path

    folder.mkdir(parents=True, exist_ok=True)
    tensors = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = s
    with atomic_path(_rng_file(folder, rank, steps)) as tmp:
        save_file(tensors, str(tmp))


def _restore_rng(folder: Path, rank: int, steps: int, fallback: Any) -> None:
    """This rank's generators as saved at `steps`; a checkpoint without per-rank files (written
    before they existed) restores rank 0's CPU state on every rank, as it always did."""
    import torch
    from safetensors.torch import load_file

    path = _rng_file(folder, rank, steps)
    if not path.is_file():
        torch.set_rng_state(fallback)
        return
    tensors = load_file(str(path))
    torch.set_rng_state(tensors["cpu"])
    cuda = [tensors[f"cuda.{i}"] for i in range(len(tensors) - 1) if f"cuda.{i}" in tensors]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def _load_checkpoint(
    folder: Path, model: Any, optimizer: Any, config_sha256: str, rank: int = 0
) -> dict[str, Any] | None:
    from safetensors.torch import load_file

    if not (folder / "state.json").is_file():
        return None
    record = json.loads((folder / "state.json").read_text())
    tensor_file = folder / record.pop("tensors", "state.safetensors")
    if not tensor_file.is_file():
        return None
    if record.get("config_sha256") != config_sha256:
        raise MosrmError(
            f"{folder}: a checkpoint of a different config; remove it or use another output folder"
        )
    tensors = load_file(str(tensor_file))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    opt_state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            opt_state.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": opt_state, "param_groups": record.pop("param_groups")})
    _restore_rng(folder, rank, int(record["steps"]), tensors["rng.torch"])
    return record


def save_weights(model: Any, path: Path) -> None:
    """A model's weights (`saved_state()` when it has one: no frozen backbone) as safetensors."""
    from safetensors.torch import save_file

    from benchmark.atomic import atomic_path

    state = model.saved_state() if hasattr(model, "saved_state") else model.state_dict()
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp))


def load_weights(model: Any, path: Path) -> None:
    from safetensors.torch import load_file

    model.load_state_dict(load_file(str(path)), strict=not hasattr(model, "saved_state"))
