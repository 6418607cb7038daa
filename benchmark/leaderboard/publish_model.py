"""`mosrm publish --model FOLDER --repo-id ORG/NAME`: a trained reference baseline's submission
folder to a Hugging Face model repo, in one commit; weights live on the Hub, never in git.

A trained folder (`mosrm train`, `make paper`) is a complete submission: `submission.yaml`, the
safetensors weights, its shipped backbone (`encoder/`), `train-config.json`, `card.md` and the
training curve. Published as it is, anyone can download it and `mosrm evaluate` it, and its
fingerprint (which covers every file) says whether they scored the same bytes. Left out, listed:
`checkpoint/` (resume state, not the model) and hidden files. Refused, one line each: a folder
without a valid `submission.yaml`, a symlink, audio, and pickle files (`.bin`, `.pt`, `.pth`,
`.pkl`, `.ckpt`: a submission holds none). The repo's README.md is the model card: a Hub header
(library, licence, base model, tags), then the folder's `card.md`, then how to score it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmark.errors import MosrmError

PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"})
SKIPPED_DIRS = ("checkpoint",)


def model_manifest(folder: str | Path) -> Any:
    """Every file one model publish uploads, checked and hashed, no network (module doc)."""
    from benchmark.hashing import sha256_file
    from benchmark.leaderboard.publish import (
        CARD,
        Manifest,
        ManifestEntry,
        _posix,
        _sha256,
        _walk,
    )
    from benchmark.scoring.spec import read_spec

    folder = Path(folder)
    if not (folder / "submission.yaml").is_file():
        raise MosrmError(
            f"{folder}: not a submission folder (no submission.yaml); --model takes a trained "
            "folder, e.g. one `mosrm train` wrote"
        )
    spec = read_spec(folder)
    skipped: list[tuple[Path, str]] = []
    placed: list[tuple[str, Path]] = []
    for path, hidden in _walk(folder, "model folder"):
        rel = _posix(path, folder)
        if hidden:
            skipped.append((path, "hidden"))
        elif rel.split("/")[0] in SKIPPED_DIRS:
            if (folder / rel.split("/")[0], "resume state, not the model") not in skipped:
                skipped.append((folder / rel.split("/")[0], "resume state, not the model"))
        elif path.suffix.lower() in PICKLE_SUFFIXES:
            raise MosrmError(
                f"{path}: a pickle file in the model folder; a submission holds none (save "
                "weights as safetensors)"
            )
        elif rel == CARD:
            skipped.append((path, "the model card replaces it"))
        else:
            placed.append((rel, path))
    entries = [ManifestEntry(rel, p, p.stat().st_size, sha256_file(p)) for rel, p in placed]
    card = model_card(folder, spec).encode("utf-8")
    entries.append(ManifestEntry(CARD, folder / "card.md", len(card), _sha256(card), card))
    entries.sort(key=lambda e: e.path_in_repo)
    return Manifest("model", tuple(entries), tuple(sorted(skipped, key=lambda s: str(s[0]))))


def model_card(folder: Path, spec: Any) -> str:
    """README.md of the model repo: the Hub header, the folder's own card, how to score it."""
    import json

    import yaml

    header: dict[str, Any] = {
        "library_name": "mosrm-bench",
        "license": _licence(spec.license),
        "tags": ["speech", "speech-quality", "reward-model", "mos", "mosrm-bench"],
    }
    base = _base_model(folder)
    if base:
        header["base_model"] = base
    train = folder / "train-config.json"
    if train.is_file():
        tasks = json.loads(train.read_text(encoding="utf-8")).get("tasks") or []
        header["tags"] = header["tags"] + [f"trained-on:{t}" for t in tasks]
    own = (folder / "card.md").read_text(encoding="utf-8") if (folder / "card.md").is_file() else ""
    name = folder.name
    usage = [
        "",
        "## Scoring it",
        "",
        "This repository is a mosrm-bench submission folder, published by `mosrm publish --model`:",
        "",
        "```sh",
        f"hf download ORG/NAME --local-dir {name}   # this repository",
        f"mosrm evaluate {name} --task bvcc",
        "```",
        "",
        "Its fingerprint covers every file here, so a result names the exact bytes it scored.",
        "",
    ]
    text = yaml.safe_dump(header, sort_keys=False, allow_unicode=True)
    return "---\n" + text + "---\n\n" + own.rstrip("\n") + "\n" + "\n".join(usage)


def _licence(value: object) -> str:
    return str(value).lower() if isinstance(value, str) and value.strip() else "other"


def _base_model(folder: Path) -> str | None:
    """The hub id of a pinned backbone the folder records (train-config.json), if any."""
    import json

    from benchmark.baselines.backbones import hub_encoders

    train = folder / "train-config.json"
    if not train.is_file():
        return None
    found = hub_encoders(json.loads(train.read_text(encoding="utf-8")))
    return str(found[0]["source"]) if found else None
