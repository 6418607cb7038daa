"""The GRPO objective (and its DAPO variant) as pure functions over per-token log-probabilities.

Nothing here knows about audio or the judge: inputs are per-token log-probs [N, G, L] of G sampled
completions for each of N prompts (pairs), so the same functions train a text-emitting audio LM.
Conventions (DeepSeekMath's GRPO; TRL's trainer uses the same ones):

- Advantages are group-normalised: for prompt n, A_{n,i} = (r_{n,i} − mean_i r_n) / (std_i r_n + ε)
  with the sample std (Bessel-corrected, as `torch.std`); a group whose rewards are all equal has
  A = 0 (it carries no signal about which completion is better). `scale_rewards` = "batch" divides
  by the std of all rewards in the batch instead, "none" not at all (Dr. GRPO).
- Policy term per token, with ρ = exp(log π − log π_old):
  min(ρ·A, clip(ρ, 1 − ε_low, 1 + ε_high)·A), maximised. π_old is the policy that sampled the
  completions (frozen at the first of the μ inner iterations); at that first iteration ρ = 1.
- KL to the reference per token, the k3 estimator: exp(ref − logp) − (ref − logp) − 1 ≥ 0, an
  unbiased estimate of KL(π‖π_ref) under samples from π; it enters the loss as + β·KL.
- Aggregation: "sequence" (GRPO) averages each completion's tokens, then the completions;
  "token" (DAPO) averages all valid tokens of the batch at once, so long completions are not
  down-weighted. With fixed-length completions (the judge's two score tokens) they coincide.
- DAPO: clip-higher (ε_high > ε_low, e.g. 0.28 vs 0.2), dynamic sampling (groups whose rewards are
  all equal are dropped from the loss; DAPO then draws more prompts to refill the batch, here the
  batch is simply smaller) and token-level aggregation. `DAPO` below is that preset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

Aggregation = Literal["sequence", "token"]
Scale = Literal["group", "batch", "none"]


@dataclass(frozen=True)
class Objective:
    """The knobs of the clipped objective: clip range, KL weight, aggregation, group filtering."""

    eps_low: float = 0.2
    eps_high: float = 0.2
    beta: float = 0.04
    aggregation: Aggregation = "sequence"
    dynamic_sampling: bool = False


GRPO = Objective()
DAPO = Objective(eps_low=0.2, eps_high=0.28, aggregation="token", dynamic_sampling=True)


def group_advantages(
    rewards: torch.Tensor,
    eps: float = 1e-4,
    scale: Scale = "group",
    batch_std: torch.Tensor | None = None,
) -> torch.Tensor:
    """[N, G] rewards -> [N, G] advantages (see the module docstring).

    `batch_std`, for `scale="batch"`: the std of the whole global batch, when this process holds
    only a slice of it (a torchrun rank), so every rank divides by the same number."""
    r = rewards.double()
    centred = r - r.mean(dim=1, keepdim=True)
    if scale == "none":
        return centred
    if scale == "batch" and batch_std is not None:
        std = batch_std.to(r.device, r.dtype)
    elif scale == "batch":
        std = r.std() if r.numel() > 1 else torch.zeros((), dtype=r.dtype)
    elif scale == "group":
        std = r.std(dim=1, keepdim=True) if r.shape[1] > 1 else torch.zeros_like(centred[:, :1])
    else:
        raise ValueError(f"scale must be 'group', 'batch' or 'none', got {scale!r}")
    # an all-equal group (or batch) has nothing to normalise: its centred rewards are 0 already
    return torch.where(std > 0, centred / (std + eps), torch.zeros_like(centred))


def informative_groups(rewards: torch.Tensor) -> torch.Tensor:
    """Bool [N]: groups whose rewards are not all equal (DAPO's dynamic sampling keeps these)."""
    return (rewards != rewards[:, :1]).any(dim=1)


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(π‖π_ref): exp(ref − logp) − (ref − logp) − 1."""
    delta = ref_logp - logp
    return torch.exp(delta) - delta - 1.0


def clipped_surrogate(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    eps_low: float = 0.2,
    eps_high: float = 0.2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token min(ρA, clip(ρ, 1−ε_low, 1+ε_high)A) (to maximise) and a bool "clipped" mask
    (the clipped branch is the smaller one and differs from ρA). `advantages` broadcasts
    ([N, G] against [N, G, L]: one advantage for every token of a completion)."""
    adv = advantages if advantages.dim() == logp.dim() else advantages[..., None]
    ratio = torch.exp(logp - old_logp)
    plain = ratio * adv
    clipped = torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high) * adv
    return torch.minimum(plain, clipped), clipped < plain


def aggregate(
    values: torch.Tensor,
    mask: torch.Tensor,
    how: Aggregation,
    denominator: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean of per-token `values` [N, G, L] over the valid tokens of `mask` (same shape), by
    completion first ("sequence") or over all tokens at once ("token"); 0 when nothing is valid.

    `denominator` replaces the local count of valid tokens ("token") or completions ("sequence"):
    a torchrun rank passes the global count / world size (`units`), so that DDP's mean over ranks
    of the local losses is the loss of the whole global batch, whatever each rank kept."""
    m = mask.to(values.dtype)
    if how == "token":
        count = m.sum() if denominator is None else denominator
        return (values * m).sum() / torch.as_tensor(count, dtype=values.dtype).clamp(min=1e-12)
    if how != "sequence":
        raise ValueError(f"aggregation must be 'sequence' or 'token', got {how!r}")
    per_seq = (values * m).sum(-1) / m.sum(-1).clamp(min=1.0)
    seqs = (m.sum(-1) > 0).to(values.dtype)
    count = seqs.sum() if denominator is None else denominator
    return (per_seq * seqs).sum() / torch.as_tensor(count, dtype=values.dtype).clamp(min=1e-12)


def units(mask: torch.Tensor, how: Aggregation, keep: torch.Tensor | None = None) -> torch.Tensor:
    """What `aggregate` averages over, counted: valid tokens ("token") or completions with at
    least one valid token ("sequence"), after dropping the groups `keep` rejects."""
    valid = mask.bool()
    if keep is not None:
        valid = valid & keep.to(valid.device)[:, None, None]
    if how == "token":
        return valid.sum().double()
    return valid.any(-1).sum().double()


def grpo_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    ref_logp: torch.Tensor | None,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    objective: Objective = GRPO,
    keep: torch.Tensor | None = None,
    denominator: float | torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss to minimise, −(surrogate − β·KL) aggregated, and floats to log.

    logp/old_logp/ref_logp/mask: [N, G, L]; advantages [N, G]; `keep` [N] drops whole groups (dynamic
    sampling); `ref_logp` None means no KL term (β ignored). The loss stays connected to `logp`
    even when every token is dropped (it is then 0), so distributed ranks still all-reduce.
    `denominator`: see `aggregate` (torchrun ranks pass the global count / world size).
    """
    valid = mask.bool()
    if keep is not None:
        valid = valid & keep.to(valid.device)[:, None, None]
    surrogate, was_clipped = clipped_surrogate(
        logp, old_logp, advantages, objective.eps_low, objective.eps_high
    )
    per_token = -surrogate
    kl = torch.zeros_like(logp) if ref_logp is None else kl_k3(logp, ref_logp)
    if ref_logp is not None and objective.beta:
        per_token = per_token + objective.beta * kl
    loss = aggregate(per_token, valid, objective.aggregation, denominator)
    with torch.no_grad():
        n = valid.sum().clamp(min=1)
        stats = {
            "kl": float((kl * valid).sum() / n),
            "clip_frac": float((was_clipped & valid).sum() / n),
            "kept_groups": float(valid.any(-1).any(-1).float().mean()),
        }
    return loss, stats
