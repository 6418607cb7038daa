"""Pretrained backbones named by a training config: fetched at a pinned revision, checked against
their sha256, converted to safetensors, cached once per machine.

A paper-scale config names its SSL encoder as a hub id (`source: microsoft/wavlm-base-plus`)
with the commit (`revision`, 40 hex digits) and the sha256 of its weight files (`sha256`:
{file: digest}). A moving `main` or a re-uploaded file would otherwise change a reference
baseline without any config changing. So such an encoder is never loaded from the hub id itself
but from a local folder (`local_source`, called by `encoders.SSLEncoder`; a trained submission
ships that folder as its `encoder/`):

- the snapshot at `revision` (`huggingface_hub`, through `scoring.hub_weights.snapshot`), each
  file named in `sha256` hashed and compared (a mismatch or a missing file is one line naming
  both digests);
- re-saved as safetensors with its feature-extractor config (`save_pretrained`), because the
  trained submission ships its backbone beside its weights and a submission holds no pickle: a
  checkpoint published as `pytorch_model.bin` is read once here, by trusted code, with torch's
  weights-only loader (what `transformers` uses), never inside a submission;
- under `$MOSRM_HOME/backbones/<id>@<commit>/`, written atomically, so every seed and recipe
  shares one copy.

The config's hash (and so the trained cache's key) is computed from the config as written, hub
id and pins included; the trained model's stored encoder config keeps `revision` and `sha256`
as the record of where its shipped backbone came from.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmark.errors import MosrmError, first_line
from benchmark.hashing import sha256_file

COMMIT = re.compile(r"^[0-9a-f]{40}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
KEEP = ("preprocessor_config.json",)
"""Files copied beside the re-saved weights (the feature extractor: `normalize: auto` reads it)."""


class BackboneError(MosrmError):
    """A pinned backbone that cannot be fetched or does not match its pins."""


def looks_like_path(source: str) -> bool:
    """A hub id is 'name' or 'owner/name'; anything else (absolute, ./, ~, deeper) is a folder."""
    return (
        Path(source).is_absolute()
        or source.startswith((".", "~"))
        or source.count("/") >= 2
        or "\\" in source
    )


def is_hub_id(source: str) -> bool:
    return not looks_like_path(source) and not Path(source).expanduser().exists()


def hub_encoders(config: Any) -> list[dict[str, Any]]:
    """Every SSL encoder mapping in a (nested) config whose source is a hub id."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            source = node.get("source")
            if node.get("type") == "ssl" and isinstance(source, str) and is_hub_id(source):
                found.append(dict(node))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    return found


def check_pins(encoder: Mapping[str, Any], where: str) -> None:
    """A hub encoder of a reference config must be pinned: a commit and at least one digest."""
    revision, digests = encoder.get("revision"), encoder.get("sha256")
    if not isinstance(revision, str) or not COMMIT.match(revision):
        raise BackboneError(
            f"{where}: encoder '{encoder.get('source')}': 'revision' must be a 40-hex commit "
            f"(got {revision!r}); a branch name moves"
        )
    if not isinstance(digests, Mapping) or not digests:
        raise BackboneError(
            f"{where}: encoder '{encoder.get('source')}': 'sha256' must map each weight file to "
            "its sha256"
        )
    for name, digest in digests.items():
        if not isinstance(digest, str) or not SHA256.match(digest):
            raise BackboneError(f"{where}: encoder sha256 of '{name}': not a sha256 digest")


def cache_root() -> Path:
    from benchmark.paths import home

    return home() / "backbones"


def cache_dir(source: str, revision: str) -> Path:
    return cache_root() / f"{source.replace('/', '--')}@{revision}"


def fetch(encoder: Mapping[str, Any], where: str, *, download: bool = True) -> Path:
    """The local safetensors folder of a pinned hub encoder (fetched, verified, converted once)."""
    from benchmark.atomic import file_lock

    check_pins(encoder, where)
    source, revision = str(encoder["source"]), str(encoder["revision"])
    target = cache_dir(source, revision)
    with file_lock(target.parent / f".{target.name}.lock"):
        if (target / "config.json").is_file():
            return target
        from benchmark.scoring.hub_weights import snapshot

        snap = snapshot(source, revision, download, f"{where}: encoder '{source}'")
        verify(snap, encoder["sha256"], f"{where}: encoder '{source}@{revision[:12]}'")
        convert(snap, target)
    return target


def verify(folder: Path, digests: Mapping[str, str], where: str) -> None:
    for name, want in sorted(digests.items()):
        path = folder / name
        if not path.is_file():
            raise BackboneError(f"{where}: the snapshot has no '{name}' to check its sha256")
        got = sha256_file(path)
        if got != want:
            raise BackboneError(f"{where}: '{name}' has sha256 {got}, the config pins {want}")


def convert(snapshot: Path, target: Path) -> None:
    """`snapshot` re-saved as safetensors (+ its feature-extractor config) at `target`."""
    from transformers import AutoModel

    tmp = target.with_name(target.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model = AutoModel.from_pretrained(str(snapshot), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise BackboneError(f"backbone {snapshot}: cannot load: {first_line(exc)}") from None
    model.save_pretrained(str(tmp), safe_serialization=True)
    for name in KEEP:
        if (snapshot / name).is_file():
            shutil.copyfile(snapshot / name, tmp / name)
    tmp.replace(target)


def local_source(encoder: Mapping[str, Any], where: str = "SSL encoder") -> str:
    """Where to load an encoder from: a pinned hub id (one with `sha256`) -> its verified local
    copy (`fetch`); anything else (a folder, an unpinned hub id) as it is."""
    source = str(encoder["source"])
    if encoder.get("sha256") is None or not is_hub_id(source):
        return source
    from huggingface_hub import constants

    return str(fetch(encoder, where, download=not constants.HF_HUB_OFFLINE))


def local_folder(encoder: Mapping[str, Any]) -> Path | None:
    """The folder a trained submission ships for this encoder config (None: nothing to ship)."""
    if encoder.get("type") != "ssl" or not isinstance(encoder.get("source"), str):
        return None
    path = Path(local_source(encoder)).expanduser()
    return path if path.is_dir() else None


def ship(encoder: Mapping[str, Any], out: Path) -> dict[str, Any]:
    """The encoder config a trained submission in `out` stores: a local backbone (a folder, or a
    pinned hub id's verified copy) copied into `out/encoder/` and named relatively, so the
    submission is self-contained and its fingerprint covers the backbone. Files from this
    machine's backbone cache (immutable once written) are hard-linked where the file system
    allows: every seed and recipe of a paper run would otherwise hold its own ~380 MB copy."""
    import os

    cfg = dict(encoder)
    folder = local_folder(cfg)
    if folder is None:
        return cfg
    target = out / "encoder"
    shutil.rmtree(target, ignore_errors=True)
    cached = folder.resolve().is_relative_to(cache_root().resolve())

    def link_or_copy(src: str, dst: str) -> object:
        if cached:
            try:
                os.link(src, dst)
                return dst
            except OSError:
                pass
        return shutil.copy2(src, dst)

    shutil.copytree(folder, target, copy_function=link_or_copy)
    cfg["source"] = "encoder"
    return cfg
