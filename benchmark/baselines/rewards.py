"""Rewards for the GRPO-trained judge: plain accuracy and the paper's MOS-aware reward.

A completion is *correct* when the order of its two scores matches the MOS order of the pair; a
tie is wrong, as under the harness's strict accuracy (a judge rewarded for ties learns to hedge).

Accuracy reward: R_acc = +1 if correct, −1 otherwise.

MOS-aware reward (the paper's idea, with this exact formula): R = R_acc + R_Δ with

    d    = clip(ΔMOS / P90, 0, 1)          P90 = the task's 90th-percentile ΔMOS of its train pairs
    c(d) = (1 + cos(π d)) / 2              1 at d = 0, ½ at d = ½, 0 at d ≥ 1
    R_Δ  = +w · c(d)         if correct    (a small-gap pair earns up to w more when right)
    R_Δ  = −w · (1 − c(d))   if wrong      (and loses nothing extra when wrong; a wide gap up to w)

so R ranges over [1, 1 + w] when right and [−1 − w, −1] when wrong. w (default 0.5) stays below 1
so the accuracy term dominates: every right answer earns more than any wrong one, whatever the two
gaps, and the sign of a reward is its correctness. Dividing by P90 makes d comparable across tasks
whose MOS scales spread differently; the cosine is flat at both ends, so gaps near 0 (the hard,
near-noise pairs) and gaps beyond P90 (the easy ones) are each treated alike.

A caution that the code's tests pin down: for one pair, every rollout shares d, so
R = f(d) + (2 + w)/2 · R_acc with f(d) = w(2c(d) − 1)/2: a per-pair shift plus a constant scale of the
accuracy reward. GRPO's group baseline removes the shift and its per-group std removes the scale, so
under group normalisation the MOS-aware reward gives the plain reward's advantages (up to the ε in
the std); without the std (`scale_rewards: none`) it multiplies them by the constant (2 + w)/2.
What the paper's description ("a larger reward when right, a smaller penalty when wrong") asks for
is exactly a per-pair shift, which a group baseline cannot see.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def is_correct(tokens: torch.Tensor, a_is_better: torch.Tensor) -> torch.Tensor:
    """Bool [...]: the completion's scores (tokens [..., 2]: score A, score B) order the pair as
    its MOS does. `a_is_better` [...] says whether clip A (presented first) has the higher MOS.
    Equal scores are wrong (strict)."""
    sa, sb = tokens[..., 0], tokens[..., 1]
    a = a_is_better.to(tokens.device)
    return torch.where(a, sa > sb, sb > sa)


def accuracy_reward(correct: torch.Tensor) -> torch.Tensor:
    """+1 where correct, −1 elsewhere (float64)."""
    return correct.double() * 2.0 - 1.0


def gap_fraction(delta_mos: torch.Tensor, p90: float) -> torch.Tensor:
    """d = clip(ΔMOS / P90, 0, 1)."""
    if not p90 > 0:
        raise ValueError(f"P90 of ΔMOS must be > 0, got {p90}")
    return (delta_mos.double().abs() / p90).clamp(0.0, 1.0)


def mos_aware_reward(
    correct: torch.Tensor, delta_mos: torch.Tensor, p90: float, weight: float = 0.5
) -> torch.Tensor:
    """R = R_acc + R_Δ, as in the module docstring; `delta_mos` broadcasts against `correct`."""
    c = (1.0 + torch.cos(math.pi * gap_fraction(delta_mos, p90))) / 2.0
    bonus = torch.where(correct, weight * c, -weight * (1.0 - c))
    return accuracy_reward(correct) + bonus


def percentile_90(delta_mos: np.ndarray) -> float:
    """The 90th percentile of a task's train-pair ΔMOS (numpy's linear interpolation)."""
    values = np.abs(np.asarray(delta_mos, dtype=np.float64))
    if values.size == 0:
        raise ValueError("no train pairs to take the ΔMOS percentile of")
    return float(np.percentile(values, 90))


REWARDS = ("accuracy", "mos_aware")


def reward(
    name: str,
    correct: torch.Tensor,
    delta_mos: torch.Tensor,
    p90: torch.Tensor | float,
    weight: float = 0.5,
) -> torch.Tensor:
    """The named reward per rollout. `p90` may be per pair ([B, 1], its task's) or one number."""
    if name == "accuracy":
        return accuracy_reward(correct)
    if name == "mos_aware":
        if isinstance(p90, torch.Tensor):
            d = (delta_mos.double().abs() / p90.double()).clamp(0.0, 1.0)
            return mos_aware_reward(correct, d, 1.0, weight)
        return mos_aware_reward(correct, delta_mos, float(p90), weight)
    raise ValueError(f"unknown reward '{name}' (known: {', '.join(REWARDS)})")
