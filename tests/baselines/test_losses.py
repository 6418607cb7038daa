"""Losses against hand-computed values and closed-form gradients, including huge score gaps."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from benchmark.baselines.losses import bradley_terry_loss, mse_loss


def test_bradley_terry_hand_values():
    chosen = torch.tensor([0.0, 2.0, 1.0, -3.0], dtype=torch.float64)
    rejected = torch.tensor([0.0, 0.0, 4.0, -3.0], dtype=torch.float64)
    per_pair = bradley_terry_loss(chosen, rejected, reduction="none")
    expected = [math.log(2), math.log1p(math.exp(-2)), math.log1p(math.exp(3)), math.log(2)]
    assert per_pair.tolist() == pytest.approx(expected, abs=1e-12)
    assert bradley_terry_loss(chosen, rejected).item() == pytest.approx(sum(expected) / 4)
    assert bradley_terry_loss(chosen, rejected, reduction="sum").item() == pytest.approx(
        sum(expected)
    )


def test_bradley_terry_is_stable_for_huge_gaps():
    chosen = torch.tensor([1000.0, -1000.0], requires_grad=True)
    rejected = torch.zeros(2)
    loss = bradley_terry_loss(chosen, rejected, reduction="none")
    assert loss.tolist() == [0.0, 1000.0]  # log(sigmoid) would give -inf -> inf here
    loss.sum().backward()
    assert torch.isfinite(chosen.grad).all() and chosen.grad.tolist() == [-0.0, -1.0]


def test_bradley_terry_gradient_matches_closed_form():
    g = torch.Generator().manual_seed(0)
    chosen = torch.randn(32, generator=g, dtype=torch.float64, requires_grad=True)
    rejected = torch.randn(32, generator=g, dtype=torch.float64, requires_grad=True)
    bradley_terry_loss(chosen, rejected, reduction="sum").backward()
    d = (chosen - rejected).detach()
    # d/dr_c [-log σ(d)] = -(1 - σ(d)) = -σ(-d); d/dr_r = +σ(-d)
    torch.testing.assert_close(chosen.grad, -torch.sigmoid(-d))
    torch.testing.assert_close(rejected.grad, torch.sigmoid(-d))
    # and it is the same function as torch's own -logsigmoid
    torch.testing.assert_close(
        bradley_terry_loss(chosen, rejected, reduction="none"), -F.logsigmoid(d)
    )
    assert torch.autograd.gradcheck(
        lambda c, r: bradley_terry_loss(c, r), (chosen.detach().requires_grad_(), rejected)
    )


def test_bradley_terry_weights():
    chosen, rejected = torch.tensor([0.0, 2.0]), torch.tensor([0.0, 0.0])
    w = torch.tensor([2.0, 0.0])
    assert bradley_terry_loss(chosen, rejected, weight=w).item() == pytest.approx(math.log(2))


def test_mos_mse_hand_values():
    pred = torch.tensor([3.0, 1.5, 4.0])
    mos = torch.tensor([2.0, 2.5, 4.0], dtype=torch.float64)
    assert mse_loss(pred, mos, reduction="none").tolist() == [1.0, 1.0, 0.0]
    assert mse_loss(pred, mos).item() == pytest.approx(2 / 3)
    torch.testing.assert_close(mse_loss(pred, mos), F.mse_loss(pred, mos.float()))


def test_shape_and_reduction_errors():
    with pytest.raises(ValueError, match="shapes differ"):
        bradley_terry_loss(torch.zeros(3), torch.zeros(2))
    with pytest.raises(ValueError, match="shapes differ"):
        mse_loss(torch.zeros(3, 1), torch.zeros(3))
    with pytest.raises(ValueError, match="reduction"):
        bradley_terry_loss(torch.zeros(2), torch.zeros(2), reduction="avg")  # type: ignore[arg-type]
