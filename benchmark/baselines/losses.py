"""Training losses: pairwise Bradley–Terry and pointwise MSE for scalar reward models, DPO for
implicit ones.

The benchmark judges a model only by which clip of a pair it scores higher, so the natural
objective is Bradley–Terry on preference pairs, P(chosen > rejected) = σ(r_chosen − r_rejected).
MSE to MOS is the classic MOS-prediction objective, kept for comparison and for corpora without
pairs. Both are written with stable primitives (`softplus`, not `log(sigmoid(.))`), so a large
score gap gives a loss of 0 or |gap| rather than inf or NaN, and finite gradients.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch.nn import functional as F

Reduction = Literal["mean", "sum", "none"]


def _reduce(loss: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def bradley_terry_loss(
    r_chosen: torch.Tensor,
    r_rejected: torch.Tensor,
    weight: torch.Tensor | None = None,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """−log σ(r_chosen − r_rejected) per pair, = softplus(r_rejected − r_chosen).

    Its gradient with respect to r_chosen is −σ(r_rejected − r_chosen): pairs the model already
    orders confidently contribute almost nothing. `weight` (per pair, e.g. by ΔMOS) scales each
    pair's loss; with `reduction="mean"` the weighted losses are averaged over pairs.
    """
    if r_chosen.shape != r_rejected.shape:
        raise ValueError(f"shapes differ: {tuple(r_chosen.shape)} vs {tuple(r_rejected.shape)}")
    loss = F.softplus(r_rejected - r_chosen)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def mse_loss(
    predicted: torch.Tensor, mos: torch.Tensor, reduction: Reduction = "mean"
) -> torch.Tensor:
    """(predicted − MOS)² per clip."""
    if predicted.shape != mos.shape:
        raise ValueError(f"shapes differ: {tuple(predicted.shape)} vs {tuple(mos.shape)}")
    return _reduce((predicted - mos.to(predicted.dtype)).square(), reduction)


def dpo_loss(
    policy_chosen_logp: torch.Tensor,
    policy_rejected_logp: torch.Tensor,
    ref_chosen_logp: torch.Tensor,
    ref_rejected_logp: torch.Tensor,
    beta: float,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Direct Preference Optimisation (Rafailov et al., 2023), per pair:

        −log σ(β [(log π(y_c) − log π_ref(y_c)) − (log π(y_r) − log π_ref(y_r))])
        = softplus(−β · margin)

    It is Bradley–Terry on the implicit reward r(y) = β (log π(y) − log π_ref(y)), which is why a
    DPO-trained policy is scored as that reward (`benchmark.scoring.models.ImplicitAsScalar`). This is
    the formula of TRL's default `loss_type="sigmoid"` DPO loss with `label_smoothing=0`
    (−logsigmoid(β · logits), logits = chosen log-ratio − rejected log-ratio); TRL is not a
    dependency here, so the tests check it against hand-computed values instead. Log-probs are
    whatever the caller sums (summed over units here); the softplus form stays finite for any
    margin.
    """
    shapes = {
        tuple(t.shape)
        for t in (policy_chosen_logp, policy_rejected_logp, ref_chosen_logp, ref_rejected_logp)
    }
    if len(shapes) != 1:
        raise ValueError(f"log-prob shapes differ: {sorted(shapes)}")
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    margin = (policy_chosen_logp - ref_chosen_logp) - (policy_rejected_logp - ref_rejected_logp)
    return _reduce(F.softplus(-beta * margin), reduction)
