"""Discrete audio units: k-means over encoder frames, the vocabulary of the DPO baseline's unit LM.

A DPO policy needs a likelihood of the audio, and an autoregressive model over a small discrete
vocabulary gives one exactly (a sum of log-softmax terms) without modelling a waveform. The units
are the usual recipe for that (HuBERT / GSLM style): frame features, k-means centroids fitted once
on training clips, each frame replaced by the index of its nearest centroid.

- Frames come from `LogMelEncoder.log_mel` (the reference encoder's own front end: same STFT,
  filterbank and zero-padding guarantees) or, when configured, from a frozen SSL encoder
  (`benchmark.baselines.encoders.SSLEncoder`, its layers averaged). Log-mel frames (10 ms) can be
  stacked `stack` at a time with hop `stride` to make one unit of 20–40 ms, and optionally
  normalised per utterance over the clip's valid frames (`normalise: mean | meanvar`; `none` keeps
  the level and spectral tilt, which are quality cues).
- The codebook is fitted by scikit-learn's `MiniBatchKMeans` (seeded) on a seeded subsample of
  training-clip frames (`fit_codebook`); scoring never calls scikit-learn: the nearest centroid is
  an argmin over squared distances computed in float64 in torch, row by row of the padded batch,
  so a clip's units depend on nothing but its own valid frames (padding is masked out).
- `collapse: true` merges runs of a repeated unit into one (deduplicated units, as in GSLM).

The tokenizer's config and codebook are saved together as one safetensors file (config in the
metadata), so a submission's units are exactly the ones its LM was trained on.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from benchmark.baselines.encoders import frame_mask
from benchmark.errors import SubmissionError

METADATA_KEY = "mosrm_units"

DEFAULTS: dict[str, Any] = {
    "frontend": {"type": "logmel", "n_mels": 40},
    "stack": 2,  # log-mel frames per unit (ignored for an SSL front end)
    "stride": 2,  # log-mel frames between units (ignored for an SSL front end)
    "normalise": "none",  # none | mean | meanvar, per utterance over valid frames
    "codebook_size": 64,
    "collapse": False,
}
FIT_DEFAULTS: dict[str, Any] = {"clips": 400, "frames": 40000, "batch_size": 1024, "n_init": 3}


def resolve_units_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The tokenizer config with defaults filled in; unknown keys and bad values refused."""
    given = dict(config or {})
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise SubmissionError(
            f"units config: unknown key '{unknown[0]}' (known: {', '.join(sorted(DEFAULTS))})"
        )
    out = {**copy.deepcopy(DEFAULTS), **copy.deepcopy(given)}
    if out["normalise"] not in ("none", "mean", "meanvar"):
        raise SubmissionError("units config: 'normalise' must be none, mean or meanvar")
    for key in ("stack", "stride", "codebook_size"):
        if not isinstance(out[key], int) or out[key] < 1:
            raise SubmissionError(f"units config: '{key}' must be an integer >= 1")
    if not isinstance(out["frontend"], Mapping):
        raise SubmissionError("units config: 'frontend' must be a mapping with a 'type'")
    from benchmark.baselines.encoders import resolve_encoder_config

    frontend = dict(out["frontend"])
    if frontend.get("type", "logmel") == "logmel":  # only the front end is used: no conv stack
        frontend = {**frontend, "channels": [1], "strides": [1]}
    out["frontend"] = resolve_encoder_config(frontend)
    out["collapse"] = bool(out["collapse"])
    return out


class UnitTokenizer(nn.Module):
    """`forward(waveforms [B, T], lengths [B]) -> (units int64 [B, U], counts int64 [B])`.

    Units beyond a row's count are 0 (padding); every row has at least one unit. The codebook is
    a buffer (saved with the tokenizer); an SSL backbone is frozen and reloaded from its source.
    """

    codebook: torch.Tensor
    frontend: Any

    def __init__(self, config: Mapping[str, Any] | None, codebook: torch.Tensor | None = None):
        super().__init__()
        from benchmark.baselines.encoders import build_encoder

        self.config = resolve_units_config(config)
        self.frontend = build_encoder(self.config["frontend"])
        self.frontend.requires_grad_(False)
        self.logmel = self.frontend.config["type"] == "logmel"
        if self.logmel:  # only `log_mel` is used: drop the conv stack built by the constructor
            self.frontend.blocks = nn.ModuleList()
        self.sample_rate = int(self.frontend.sample_rate)
        self.stack = int(self.config["stack"]) if self.logmel else 1
        self.stride = int(self.config["stride"]) if self.logmel else 1
        k = int(self.config["codebook_size"])
        dim = self.feature_dim
        if codebook is None:
            codebook = torch.zeros(k, dim)
        if tuple(codebook.shape) != (k, dim):
            raise SubmissionError(
                f"units codebook has shape {list(codebook.shape)}, the config implies [{k}, {dim}]"
            )
        self.register_buffer("codebook", codebook.float().contiguous())

    @property
    def feature_dim(self) -> int:
        if self.logmel:
            return int(self.frontend.config["n_mels"]) * int(self.config["stack"])
        return int(self.frontend.output_dim)

    @property
    def vocab(self) -> int:
        return int(self.config["codebook_size"])

    def train(self, mode: bool = True) -> UnitTokenizer:
        super().train(mode)
        self.frontend.eval()  # frozen: never dropout / SpecAugment
        return self

    def frames(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Unit-rate feature vectors [B, U, D] (zero beyond each row's count) and counts [B]."""
        with torch.no_grad():
            if self.logmel:
                x, n = self.frontend.log_mel(waveforms, lengths)  # [B, M, F], padding zeroed
                x = x.transpose(1, 2)  # [B, F, M]
                x = self._normalise(x, n)
                if x.shape[1] < self.stack:  # a clip shorter than one unit: zero-extended
                    x = nn.functional.pad(x, (0, 0, 0, self.stack - x.shape[1]))
                x = x.unfold(1, self.stack, self.stride)  # [B, U, M, stack]
                x = x.transpose(2, 3).reshape(x.shape[0], x.shape[1], -1)
                counts = (
                    torch.div((n - self.stack).clamp(min=0), self.stride, rounding_mode="floor") + 1
                )
            else:
                x, counts = self.frontend(waveforms, lengths)
                x = self._normalise(x.float(), counts)
        mask = frame_mask(counts, x.shape[1])
        return x * mask[:, :, None], counts

    def _normalise(self, x: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        mode = self.config["normalise"]
        if mode == "none":
            return x
        m = frame_mask(n, x.shape[1]).to(x.dtype)[:, :, None]
        count = n.clamp(min=1).to(x.dtype)[:, None, None]
        mean = (x * m).sum(1, keepdim=True) / count
        x = x - mean
        if mode == "meanvar":
            var = (x.square() * m).sum(1, keepdim=True) / count
            x = x / torch.sqrt(var + 1e-5)
        return x * m

    def assign(self, feats: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """Nearest centroid per unit, in float64 (no near-tie flips between batch sizes)."""
        c = self.codebook.to(feats.device, torch.float64)
        x = feats.to(torch.float64)
        dist = (c.square().sum(-1)[None, None, :] - 2.0 * x @ c.T) + x.square().sum(-1)[..., None]
        units = dist.argmin(-1)
        return units * frame_mask(counts, units.shape[1])

    def forward(
        self, waveforms: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        feats, counts = self.frames(waveforms, lengths)
        units = self.assign(feats, counts)
        if self.config["collapse"]:
            units, counts = collapse_repeats(units, counts)
        return units, counts

    def saved_state(self) -> dict[str, torch.Tensor]:
        return {"codebook": self.codebook}


def collapse_repeats(units: torch.Tensor, counts: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Runs of one unit merged into one: [3, 3, 5, 5, 5, 3] -> [3, 5, 3]; padding stays 0."""
    valid = frame_mask(counts, units.shape[1])
    first = torch.ones_like(valid)
    first[:, 1:] = units[:, 1:] != units[:, :-1]
    keep = first & valid
    new_counts = keep.sum(1)
    # stable sort puts kept positions first, in order
    order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices
    out = torch.gather(units, 1, order)[:, : int(new_counts.max().clamp(min=1))]
    return out * frame_mask(new_counts, out.shape[1]), new_counts


def fit_codebook(frames: np.ndarray, size: int, *, seed: int, fit: Mapping[str, Any]) -> np.ndarray:
    """Centroids [size, D] (float32) of `frames` [N, D] by scikit-learn's seeded MiniBatchKMeans."""
    from sklearn.cluster import MiniBatchKMeans

    if frames.shape[0] < size:
        raise SubmissionError(
            f"units: {frames.shape[0]} training frames for a codebook of {size} units; "
            "use fewer units or more clips"
        )
    km = MiniBatchKMeans(
        n_clusters=size,
        random_state=seed,
        batch_size=int(fit["batch_size"]),
        n_init=int(fit["n_init"]),
    )
    km.fit(frames.astype(np.float64))
    return np.ascontiguousarray(km.cluster_centers_, dtype=np.float32)


def save_tokenizer(tokenizer: UnitTokenizer, path: Path) -> Path:
    """Codebook + config (metadata, sorted-key JSON): byte-identical for the same codebook."""
    from safetensors.torch import save_file

    from benchmark.atomic import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {METADATA_KEY: json.dumps(tokenizer.config, sort_keys=True, separators=(",", ":"))}
    with atomic_path(path) as tmp:
        save_file({"codebook": tokenizer.codebook.detach().cpu().contiguous()}, str(tmp), meta)
    return path


def load_tokenizer(path: str | Path, *, confine: bool = True) -> UnitTokenizer:
    """A tokenizer from its safetensors file; a one-line error naming the file if it is not one.

    A relative SSL `source` in the stored config is resolved beside the file (the submission
    ships its backbone), and with `confine` (a submission's file) any other folder is refused;
    training reads back its own checkpoint with `confine=False`, whose front end is the config's
    (a folder anywhere, or a pinned hub id), shipped only when the submission is written."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise SubmissionError(f"{path}: units codebook not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            codebook = f.get_tensor("codebook")
        config = json.loads(meta[METADATA_KEY])
    except Exception as exc:
        raise SubmissionError(
            f"{path}: not a units codebook ({type(exc).__name__}: {exc})".splitlines()[0]
        ) from None
    frontend = config.get("frontend", {})
    if frontend.get("type") == "ssl" and confine:
        from benchmark.baselines.encoders import confined_source

        frontend["source"] = confined_source(str(frontend["source"]), path.parent, str(path))
    return UnitTokenizer(config, codebook)
