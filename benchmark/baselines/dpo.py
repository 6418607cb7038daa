"""The DPO baseline as the harness scores it: an implicit reward from a unit-LM policy and its
reference.

    entry: benchmark.baselines.dpo:build
    kind: implicit
    weights: model.safetensors          # the DPO policy π (its config, β and the hashes of the
                                        # two files below in the metadata)
    reference_model: reference.safetensors
    params: {reference: reference.safetensors, units: units.safetensors, normalise: sum}

The harness wraps it in `ImplicitAsScalar`: reward(x) = β (log π(x) − log π_ref(x)), with
log π(x) the unit LM's summed log-probability of the clip's units (`benchmark.baselines.unit_lm`)
and the units from the submission's own codebook (`benchmark.baselines.units`).

`normalise: per_unit` divides both log-probabilities, and so the log-ratio, by the clip's unit
count. The summed log-ratio adds one term per unit, so a longer clip gets a larger reward of the
same sign just for being longer: between clips of different length it is partly a duration
shortcut in disguise. The per-unit variant measures the average log-ratio instead, and the board
shows both beside the duration shortcut.

The policy's metadata records the sha256 of the reference and codebook files it was trained
with, so a swapped or edited reference is a one-line error rather than a silently different
reward.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from benchmark.baselines.unit_lm import UnitLM
from benchmark.baselines.units import UnitTokenizer, load_tokenizer
from benchmark.data.batch import Batch
from benchmark.errors import SubmissionError

METADATA_KEY = "mosrm_dpo"
Normalise = Literal["sum", "per_unit"]


class UnitDPOModel(nn.Module):
    """Implicit reward model (`benchmark.scoring.models.ImplicitRewardModel`): units -> policy, reference."""

    def __init__(
        self,
        tokenizer: UnitTokenizer,
        policy: UnitLM,
        reference: UnitLM,
        beta: float,
        normalise: Normalise = "sum",
    ) -> None:
        super().__init__()
        if normalise not in ("sum", "per_unit"):
            raise SubmissionError(f"normalise must be 'sum' or 'per_unit', got {normalise!r}")
        self.tokenizer = tokenizer
        self.policy = policy
        self.reference = reference
        self.beta = float(beta)
        self.normalise = normalise
        self.sample_rate = tokenizer.sample_rate
        self._last: tuple[Batch, torch.Tensor, torch.Tensor] | None = None

    def units(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's units (computed once for the policy and reference calls on one batch)."""
        if batch.sample_rate != self.sample_rate:
            raise ValueError(f"batch at {batch.sample_rate} Hz, model expects {self.sample_rate}")
        if self._last is not None and self._last[0] is batch:
            return self._last[1], self._last[2]
        device = self.tokenizer.codebook.device
        units, counts = self.tokenizer(batch.waveforms.to(device), batch.lengths.to(device))
        self._last = (batch, units, counts)
        return units, counts

    def _logp(self, lm: UnitLM, batch: Batch) -> torch.Tensor:
        units, counts = self.units(batch)
        lp, n = lm.logp(units, counts)
        return lp / n.to(lp.dtype) if self.normalise == "per_unit" else lp

    def policy_logp(self, batch: Batch) -> torch.Tensor:
        return self._logp(self.policy, batch)

    def reference_logp(self, batch: Batch) -> torch.Tensor:
        out = self._logp(self.reference, batch)
        self._last = None  # the harness calls policy first, then reference: done with this batch
        return out


def lm_state(lm: UnitLM) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous().clone() for k, v in lm.state_dict().items()}


def save_lm(lm: UnitLM, path: Path, extra: dict[str, Any] | None = None) -> Path:
    """LM weights with `{"lm": config, **extra}` as sorted-key JSON metadata (byte-stable)."""
    from safetensors.torch import save_file

    from benchmark.atomic import atomic_path

    meta = json.dumps({"lm": lm.config, **(extra or {})}, sort_keys=True, separators=(",", ":"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file(lm_state(lm), str(tmp), metadata={METADATA_KEY: meta})
    return path


def load_lm(path: str | Path, what: str) -> tuple[UnitLM, dict[str, Any]]:
    """A unit LM and its metadata from safetensors; one-line errors for a missing/foreign file."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise SubmissionError(f"{path}: {what} weights not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})[METADATA_KEY])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        first = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise SubmissionError(f"{path}: not a unit-LM {what} file ({first})") from None
    lm = UnitLM(meta.get("lm"))
    expected = lm.state_dict()
    for name in sorted(set(expected) | set(tensors)):
        if name not in tensors or name not in expected:
            raise SubmissionError(f"{path}: tensor '{name}' does not match the stored LM config")
        if tuple(expected[name].shape) != tuple(tensors[name].shape):
            raise SubmissionError(
                f"{path}: tensor '{name}' has shape {list(tensors[name].shape)}, the stored LM "
                f"config implies {list(expected[name].shape)}"
            )
    lm.load_state_dict(tensors)
    return lm.eval(), meta


def build(
    weights_path: str | Path,
    reference: str | Path,
    units: str | Path,
    normalise: Normalise = "sum",
) -> UnitDPOModel:
    """The submission entry: policy (`weights`), reference and codebook, all safetensors.

    The reference and codebook must be the files the policy was trained with (their sha256 is in
    the policy's metadata); the vocabularies of the three must agree.
    """
    from benchmark.hashing import sha256_file

    policy, meta = load_lm(weights_path, "policy")
    for key, path, what in (
        ("reference_sha256", reference, "reference"),
        ("units_sha256", units, "units"),
    ):
        path = Path(path)
        if not path.is_file():
            raise SubmissionError(f"{path}: {what} file not found")
        if meta.get(key) != sha256_file(path):
            raise SubmissionError(
                f"{path}: not the {what} this policy was trained with ({weights_path} records "
                f"sha256 {str(meta.get(key))[:16]}…)"
            )
    ref, _ = load_lm(reference, "reference")
    tokenizer = load_tokenizer(units)
    for lm, path in ((policy, weights_path), (ref, reference)):
        if lm.config["vocab"] != tokenizer.vocab:
            raise SubmissionError(
                f"{path}: LM vocabulary {lm.config['vocab']} but the codebook has "
                f"{tokenizer.vocab} units"
            )
    if "beta" not in meta:
        raise SubmissionError(f"{weights_path}: no 'beta' in the policy's metadata")
    return UnitDPOModel(tokenizer, policy, ref, float(meta["beta"]), normalise).eval()
