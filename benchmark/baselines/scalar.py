"""The reference scalar reward model: encoder -> masked mean pooling -> MLP -> one score per clip.

It is both what the training loop trains and a trusted submission entry:

    entry: benchmark.baselines.scalar:build
    weights: model.safetensors
    params: {config: {...}}      # optional: the config saved in the weights is used otherwise

A model is fully described by its JSON config (encoder type and sizes, head, seed), which `save`
writes into the safetensors metadata, so a weights file is self-describing and `build` can check
that the config it is given matches the weights before scoring anything: a wrong config would
otherwise load into the wrong shapes, or silently into the right shapes with the wrong STFT.
Weights are read only with `safetensors.torch.load_file` (pickle is never loaded).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

import torch
from torch import nn

from benchmark.baselines.encoders import Encoder, build_encoder, frame_mask, resolve_encoder_config
from benchmark.data.batch import Batch
from benchmark.errors import SubmissionError

CONFIG_VERSION = 1
METADATA_KEY = "mosrm_config"


class ConfiguredModule(Protocol):
    """What `load_configured` builds: a module with its resolved config and its saved tensors."""

    config: dict[str, Any]

    def saved_state(self) -> dict[str, torch.Tensor]: ...

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = ...) -> Any: ...

    def eval(self) -> Any: ...


M = TypeVar("M", bound=ConfiguredModule)
"""The one safetensors metadata key: the model config as sorted-key JSON. One key only, so the
header (and so the file) is byte-identical from save to save."""

HEAD_DEFAULTS: dict[str, Any] = {"hidden": 128, "dropout": 0.1}
DEFAULT_CONFIG: dict[str, Any] = {
    "version": CONFIG_VERSION,
    "seed": 0,
    "encoder": {"type": "logmel"},
    "head": HEAD_DEFAULTS,
}


def resolve_config(config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`config` completed with the defaults (encoder and head), unknown keys refused.

    Two configs that build the same model resolve to the same dict, so comparing and hashing
    resolved configs is meaningful.
    """
    given = dict(config or {})
    unknown = sorted(set(given) - set(DEFAULT_CONFIG))
    if unknown:
        raise SubmissionError(
            f"model config: unknown key '{unknown[0]}' (known: {', '.join(sorted(DEFAULT_CONFIG))})"
        )
    version = given.get("version", CONFIG_VERSION)
    if version != CONFIG_VERSION:
        raise SubmissionError(
            f"model config: version {version!r}, this harness reads version {CONFIG_VERSION}"
        )
    head = dict(given.get("head") or {})
    unknown = sorted(set(head) - set(HEAD_DEFAULTS))
    if unknown:
        raise SubmissionError(
            f"model config: unknown key 'head.{unknown[0]}' "
            f"(known: {', '.join(sorted(HEAD_DEFAULTS))})"
        )
    encoder = given.get("encoder") or DEFAULT_CONFIG["encoder"]
    if not isinstance(encoder, Mapping):
        raise SubmissionError("model config: 'encoder' must be a mapping with a 'type'")
    return {
        "version": CONFIG_VERSION,
        "seed": int(given.get("seed", DEFAULT_CONFIG["seed"])),
        "encoder": resolve_encoder_config(dict(encoder)),
        "head": {**copy.deepcopy(HEAD_DEFAULTS), **head},
    }


def config_json(config: Mapping[str, Any]) -> str:
    """The canonical JSON of a config: sorted keys, no spaces (what is saved and hashed)."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


def masked_mean(features: torch.Tensor, frame_lengths: torch.Tensor) -> torch.Tensor:
    """Mean over the valid frames of [B, F, D] features -> [B, D]; padded frames count for nothing
    (they are zeroed here too, so an encoder that left garbage there still cannot leak it)."""
    mask = frame_mask(frame_lengths, features.shape[1]).to(features.dtype)
    total = (features * mask[:, :, None]).sum(dim=1)
    return total / frame_lengths.clamp(min=1).to(features.dtype)[:, None]


class ScalarRewardModel(nn.Module):
    """Encoder + masked mean pooling + MLP head (Linear -> GELU -> Dropout -> Linear).

    `forward(waveforms [B, T], lengths [B]) -> scores [B]` is the training path; `score(batch)` is
    the harness's scalar protocol. Parameters are initialised from `config["seed"]` without
    touching the global RNG, so the same config always builds the same untrained model. The
    default config (log-mel encoder, head hidden 128) has 243,265 parameters.
    """

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.config = resolve_config(config)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config["seed"])
            self.encoder: Encoder = build_encoder(self.config["encoder"])
            head = self.config["head"]
            self.head = nn.Sequential(
                nn.Linear(self.encoder.output_dim, int(head["hidden"])),
                nn.GELU(),
                nn.Dropout(float(head["dropout"])),
                nn.Linear(int(head["hidden"]), 1),
            )
        self.sample_rate = self.encoder.sample_rate

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        features, frame_lengths = self.encoder(waveforms, lengths)
        return self.head(masked_mean(features, frame_lengths)).squeeze(-1)

    def score(self, batch: Batch) -> torch.Tensor:
        if batch.sample_rate != self.sample_rate:
            raise ValueError(f"batch at {batch.sample_rate} Hz, model expects {self.sample_rate}")
        device = next(self.parameters()).device
        return self(batch.waveforms.to(device), batch.lengths.to(device))

    def fingerprint(self) -> str:
        """Hash of the resolved config (the weights are hashed by the harness as folder files)."""
        return "scalar-v1-" + hashlib.sha256(config_json(self.config).encode()).hexdigest()[:24]

    def saved_state(self) -> dict[str, torch.Tensor]:
        """The tensors `save` writes: the whole state dict except a frozen pretrained backbone,
        which is reloaded from its source rather than copied into every weights file."""
        skip = tuple("encoder." + p for p in self.encoder.frozen_prefixes())
        return {k: v for k, v in self.state_dict().items() if not k.startswith(skip)}


def new_model(config: Mapping[str, Any] | None = None) -> ScalarRewardModel:
    """An untrained model from a (partial) config, initialised from its seed: what training
    starts from. Raises a one-line `SubmissionError` for an unknown or inconsistent key."""
    return ScalarRewardModel(config)


def save(model: Any, path: str | Path) -> Path:
    """Write `model.saved_state()` and its config (metadata) to a safetensors file (any reference
    model with `config` and `saved_state()`: the scalar RM, the GRPO judge).

    Deterministic: the same model gives byte-identical files (safetensors orders the tensors; the
    metadata is one sorted-key JSON string).
    """
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.saved_state().items()}
    save_file(tensors, str(path), metadata={METADATA_KEY: config_json(model.config)})
    return path


def publish_weights(
    best: Path,
    dest: Path,
    model_config: Mapping[str, Any],
    resolve: Callable[[Mapping[str, Any]], dict[str, Any]],
) -> None:
    """A training's best weights as a submission's file: the same tensors, with the config the
    submission names (a shipped backbone named relatively) as metadata, and the trained seed."""
    from safetensors.torch import load_file, save_file

    from benchmark.atomic import atomic_path

    stored = read_config(best) or {}
    merged = {**resolve(model_config), "seed": stored.get("seed", 0)}
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest) as tmp:
        save_file(load_file(str(best)), str(tmp), metadata={METADATA_KEY: config_json(merged)})


def read_config(path: str | Path) -> dict[str, Any] | None:
    """The config stored in a weights file's metadata (None if it has none)."""
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as exc:  # safetensors raises its own error type for a corrupt header
        raise SubmissionError(f"{path}: not a readable safetensors file ({exc})") from None
    if METADATA_KEY not in meta:
        return None
    try:
        config = json.loads(meta[METADATA_KEY])
    except json.JSONDecodeError as exc:
        raise SubmissionError(f"{path}: metadata '{METADATA_KEY}' is not JSON ({exc})") from None
    if not isinstance(config, dict):
        raise SubmissionError(f"{path}: metadata '{METADATA_KEY}' is not a JSON object")
    return config


def _first_difference(a: Any, b: Any, where: str = "") -> str | None:
    """Dotted path of the first (sorted) key where two JSON values differ, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            sub = f"{where}.{key}" if where else str(key)
            if key not in a or key not in b:
                return sub
            found = _first_difference(a[key], b[key], sub)
            if found is not None:
                return found
        return None
    return None if a == b else (where or "(top level)")


def _check_tensors(
    path: Path, expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor]
) -> None:
    for name in sorted(set(expected) | set(found)):
        if name not in found:
            raise SubmissionError(
                f"{path}: tensor '{name}' that the model config needs is missing from the file"
            )
        if name not in expected:
            raise SubmissionError(
                f"{path}: tensor '{name}' in the file does not exist in a model of this config"
            )
        want, have = tuple(expected[name].shape), tuple(found[name].shape)
        if want != have:
            raise SubmissionError(
                f"{path}: tensor '{name}' has shape {list(have)} in the file but "
                f"{list(want)} in a model of this config"
            )


def anchor_source(config: Mapping[str, Any] | None, base: Path) -> dict[str, Any] | None:
    """The config with its SSL `source` resolved against `base`, the folder of the weights: a hub
    id as it is, a folder only inside `base` (`encoders.confined_source`).

    A trained submission ships its local backbone as a folder beside its weights (so it is in
    the submission's fingerprint and moves with it); the config names it relatively.
    """
    from benchmark.baselines.encoders import confined_source

    if config is None:
        return None
    out = copy.deepcopy(dict(config))
    enc = out.get("encoder")
    if isinstance(enc, dict) and enc.get("type") == "ssl" and isinstance(enc.get("source"), str):
        enc["source"] = confined_source(enc["source"], base, str(base / "model config"))
    return out


def build(
    weights_path: str | Path | None = None, config: Mapping[str, Any] | None = None
) -> ScalarRewardModel:
    """Build a `ScalarRewardModel`, loading weights if given; a submission entry point.

    The config is `config` if given, else the one saved in the weights file, else the default.
    With both, every tensor must have the shape the config implies and the two configs must agree,
    or a one-line `SubmissionError` names the file and the first mismatching tensor or key.
    The model is returned in eval mode.
    """
    return load_configured(ScalarRewardModel, resolve_config, weights_path, config, "model")


def load_configured(
    make: Callable[[Mapping[str, Any] | None], M],
    resolve: Callable[[Mapping[str, Any]], dict[str, Any]],
    weights_path: str | Path | None,
    config: Mapping[str, Any] | None,
    what: str,
) -> M:
    """The reference models' loader (scalar RM, GRPO judge): `make(config)` builds the model, from
    `config` if given, else the config saved in the weights' metadata; with both, the two must
    agree (the seed aside) and every tensor must have the shape the config implies, or a one-line
    `SubmissionError` names the file and the first mismatch. Returned in eval mode."""
    path = None if weights_path is None else Path(weights_path)
    stored = None if path is None else read_config(path)
    if path is not None:  # a relative local backbone ships beside the weights
        stored, config = anchor_source(stored, path.parent), anchor_source(config, path.parent)
    if config is None and path is not None and stored is None:
        raise SubmissionError(
            f"{path}: no '{METADATA_KEY}' metadata, so the {what} config must be given in params"
        )
    model = make(config if config is not None else stored)
    if path is not None:
        from safetensors.torch import load_file

        try:
            tensors = load_file(str(path))
        except Exception as exc:
            raise SubmissionError(f"{path}: cannot load weights ({exc})") from None
        _check_tensors(path, model.saved_state(), tensors)
        if stored is not None:
            try:
                saved = resolve(stored)
            except SubmissionError as exc:
                raise SubmissionError(f"{path}: {exc}") from None
            # the seed only chose the initial weights, which the file replaces: not compared,
            # and the model takes the saved one (so saving it again writes the same config)
            diff = _first_difference({**saved, "seed": model.config["seed"]}, model.config)
            if diff is not None:
                raise SubmissionError(
                    f"{path}: the config saved with the weights differs from params at '{diff}'"
                )
            model.config["seed"] = saved["seed"]
        model.load_state_dict(tensors, strict=False)
    return model.eval()
