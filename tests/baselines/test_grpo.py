"""The GRPO judge: objective and rewards against hand-computed values, the judge's log-probs and
sampling, and the recipe end to end on the toy task (learns, resumes, torchrun, loads, smoke run)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from benchmark.baselines.grpo import (
    DAPO,
    GRPO,
    Objective,
    aggregate,
    clipped_surrogate,
    group_advantages,
    grpo_loss,
    informative_groups,
    kl_k3,
    units,
)
from benchmark.baselines.judge import build, new_model, save, score_levels, verdict
from benchmark.baselines.rewards import (
    accuracy_reward,
    is_correct,
    mos_aware_reward,
    percentile_90,
    reward,
)
from benchmark.errors import SubmissionError
from benchmark.scoring.models import Batch

TINY = {
    "encoder": {"type": "logmel", "n_mels": 16, "channels": [8, 8], "strides": [1, 2]},
    "levels": 4,
    "hidden": 16,
}

# -- the objective, by hand ----------------------------------------------------------------------


def test_group_advantages_by_hand():
    r = torch.tensor([[1.0, -1.0, -1.0, -1.0], [1.0, 1.0, 1.0, 1.0], [0.5, 1.5, 0.5, 1.5]])
    a = group_advantages(r, eps=0.0)
    # group 0: mean −0.5, sample std sqrt((2.25 + 3 × 0.25) / 3) = 1
    assert torch.allclose(a[0], torch.tensor([1.5, -0.5, -0.5, -0.5], dtype=torch.float64))
    assert torch.equal(a[1], torch.zeros(4, dtype=torch.float64))  # all equal: no signal
    s = math.sqrt(1 / 3)  # group 2: deviations ±0.5, sample variance 4 × 0.25 / 3
    want = torch.tensor([-0.5, 0.5, -0.5, 0.5], dtype=torch.float64) / s
    assert torch.allclose(a[2], want)
    assert torch.allclose(group_advantages(r, eps=1e-4)[0], a[0] / (1 + 1e-4))
    centred = group_advantages(r, scale="none")
    assert torch.allclose(centred[0], torch.tensor([1.5, -0.5, -0.5, -0.5], dtype=torch.float64))
    batch = group_advantages(r, eps=0.0, scale="batch")
    assert torch.allclose(batch, centred / r.double().std())
    assert informative_groups(r).tolist() == [True, False, True]


def test_clipped_surrogate_by_hand():
    ratio = torch.tensor([1.5, 1.5, 0.5, 0.5, 1.1])
    adv = torch.tensor([1.0, -1.0, 1.0, -1.0, 2.0])
    old = torch.zeros(5)
    obj, clipped = clipped_surrogate(torch.log(ratio), old, adv, 0.2, 0.2)
    # ρ=1.5,A=1: min(1.5, 1.2); ρ=1.5,A=−1: min(−1.5, −1.2); ρ=0.5,A=1: min(0.5, 0.8);
    # ρ=0.5,A=−1: min(−0.5, −0.8); ρ=1.1,A=2: inside the clip range, 2.2 both ways
    assert torch.allclose(obj, torch.tensor([1.2, -1.5, 0.5, -0.8, 2.2]))
    assert clipped.tolist() == [True, False, False, True, False]
    high, _ = clipped_surrogate(torch.log(ratio), old, adv, DAPO.eps_low, DAPO.eps_high)
    assert torch.allclose(high, torch.tensor([1.28, -1.5, 0.5, -0.8, 2.2]))  # clip-higher


def test_kl_k3_by_hand_and_unbiased():
    got = kl_k3(torch.log(torch.tensor([0.5, 0.3])), torch.log(torch.tensor([0.25, 0.3])))
    assert torch.allclose(got, torch.tensor([0.5 + math.log(2) - 1, 0.0]))
    p = torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
    q = torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)
    expected = (p * kl_k3(p.log(), q.log())).sum()  # E_{x~π}[k3] = KL(π‖π_ref)
    assert torch.allclose(expected, (p * (p / q).log()).sum())


def test_grpo_loss_by_hand():
    # one prompt, two completions of two tokens; the second completion's last token is padding
    logp = torch.log(torch.tensor([[[0.6, 0.5], [0.2, 0.9]]])).requires_grad_()
    old = torch.log(torch.tensor([[[0.5, 0.5], [0.25, 0.9]]]))
    ref = torch.log(torch.tensor([[[0.5, 0.4], [0.2, 0.9]]]))
    adv = torch.tensor([[1.0, -1.0]])
    mask = torch.tensor([[[True, True], [True, False]]])
    obj = Objective(eps_low=0.1, eps_high=0.1, beta=0.5)
    # token objectives: ρ = 1.2 -> clipped to 1.1 (A=1); ρ = 1; ρ = 0.8 (A=−1) -> min(−0.8, −0.9)
    k = [0.5 / 0.6 - math.log(0.5 / 0.6) - 1, 0.4 / 0.5 - math.log(0.4 / 0.5) - 1, 0.0]
    t = [-1.1 + 0.5 * k[0], -1.0 + 0.5 * k[1], 0.9 + 0.5 * k[2]]
    loss, stats = grpo_loss(logp, old, ref, adv, mask, obj)
    assert math.isclose(
        float(loss.detach()), ((t[0] + t[1]) / 2 + t[2]) / 2, rel_tol=1e-6
    )  # sequence
    token = Objective(eps_low=0.1, eps_high=0.1, beta=0.5, aggregation="token")
    loss_t, _ = grpo_loss(logp, old, ref, adv, mask, token)
    assert math.isclose(float(loss_t.detach()), sum(t) / 3, rel_tol=1e-6)  # DAPO: every token alike
    assert math.isclose(stats["clip_frac"], 2 / 3, rel_tol=1e-6)
    assert math.isclose(stats["kl"], sum(k) / 3, rel_tol=1e-5)
    # dynamic sampling drops the group: loss 0, still a graph (distributed ranks all-reduce)
    dropped, _ = grpo_loss(logp, old, ref, adv, mask, DAPO, keep=torch.tensor([False]))
    assert float(dropped.detach()) == 0.0 and dropped.requires_grad
    assert float(aggregate(torch.ones(1, 1, 2), torch.zeros(1, 1, 2), "sequence")) == 0.0
    no_ref, s2 = grpo_loss(logp, old, None, adv, mask, GRPO)
    assert s2["kl"] == 0.0 and float(no_ref.detach()) < float(loss.detach())


@pytest.mark.parametrize(
    ("scale", "objective"),
    [("group", GRPO), ("batch", GRPO), ("none", DAPO), ("batch", DAPO)],
)
def test_two_ranks_with_global_counts_follow_one_process(scale, objective):
    """What grpo_train does under torchrun: each rank normalises by the global batch std and
    divides its loss by the global count / world size, so DDP's mean of the two ranks' gradients
    is the one-process gradient, even when dynamic sampling leaves one rank with nothing."""
    gen = torch.Generator().manual_seed(0)
    n, g, length = 4, 4, 2
    base = torch.randn(n, g, length, generator=gen, dtype=torch.float64)
    old = base + 0.1 * torch.randn(n, g, length, generator=gen, dtype=torch.float64)
    ref = base + 0.1 * torch.randn(n, g, length, generator=gen, dtype=torch.float64)
    rewards = torch.tensor(
        [[1.0, -1.0, 1.0, 1.0], [-1.0, -1.0, 1.0, -1.0], [1.0] * 4, [-1.0] * 4]
    )  # rank 1 (rows 2, 3) holds only all-equal groups
    mask = torch.ones(n, g, length, dtype=torch.bool)

    def grad(rows, batch_std, denominator):
        logp = base[rows].clone().requires_grad_()
        r = rewards[rows]
        adv = group_advantages(r, scale=scale, batch_std=batch_std)
        keep = informative_groups(r) if objective.dynamic_sampling else None
        loss, _ = grpo_loss(
            logp, old[rows], ref[rows], adv, mask[rows], objective, keep, denominator
        )
        loss.backward()
        return logp.grad

    whole = grad(slice(0, 4), None, None)
    std = rewards.double().std()
    keep_all = informative_groups(rewards) if objective.dynamic_sampling else None
    count = units(mask, objective.aggregation, keep_all) / 2
    halves = [grad(slice(0, 2), std, count), grad(slice(2, 4), std, count)]
    assert torch.allclose(torch.cat(halves) / 2, whole, atol=1e-12)


# -- rewards -------------------------------------------------------------------------------------


def test_correctness_is_strict_and_accuracy_is_plus_minus_one():
    tokens = torch.tensor([[3, 1], [1, 3], [2, 2], [3, 1]])
    a_better = torch.tensor([True, True, True, False])
    correct = is_correct(tokens, a_better)
    assert correct.tolist() == [True, False, False, False]  # a tie is wrong
    assert accuracy_reward(correct).tolist() == [1.0, -1.0, -1.0, -1.0]


def test_mos_aware_reward_at_its_edges():
    p90, w = 0.8, 0.5
    right, wrong = torch.tensor([True]), torch.tensor([False])
    for delta, r_right, r_wrong in [
        (0.0, 1.5, -1.0),  # d = 0: full bonus when right, no extra penalty when wrong
        (0.4, 1.25, -1.25),  # d = ½: c(d) = ½
        (0.8, 1.0, -1.5),  # d = 1 (ΔMOS = P90): no bonus, full extra penalty
        (2.0, 1.0, -1.5),  # beyond P90: clipped to d = 1
    ]:
        d = torch.tensor([delta], dtype=torch.float64)
        assert math.isclose(float(mos_aware_reward(right, d, p90, w)), r_right, abs_tol=1e-12)
        assert math.isclose(float(mos_aware_reward(wrong, d, p90, w)), r_wrong, abs_tol=1e-12)
    # a quarter of the way: c = (1 + cos(π/4)) / 2
    c = (1 + math.cos(math.pi / 4)) / 2
    got = mos_aware_reward(torch.tensor([True, False]), torch.tensor([0.2]), p90, w)
    assert torch.allclose(got, torch.tensor([1 + w * c, -1 - w * (1 - c)], dtype=torch.float64))
    with pytest.raises(ValueError, match="P90"):
        mos_aware_reward(right, torch.tensor([0.1]), 0.0)
    assert percentile_90(np.arange(11) / 10) == pytest.approx(0.9)
    per_pair = reward("mos_aware", right[None], torch.tensor([[0.4]]), torch.tensor([[0.8]]), w)
    assert float(per_pair) == pytest.approx(1.25)


def test_group_normalisation_cancels_a_correctness_only_shaping():
    """Every rollout of a pair shares its ΔMOS, so R_Δ is a per-pair shift plus a constant scale:
    with the group std the MOS-aware advantages equal the plain ones (documented in rewards)."""
    correct = torch.tensor([[True, False, False, True], [True, True, True, False]])
    delta = torch.tensor([[0.05], [0.9]])
    plain = group_advantages(accuracy_reward(correct), eps=0.0)
    shaped = group_advantages(mos_aware_reward(correct, delta, 1.0, 0.5), eps=0.0)
    assert torch.allclose(plain, shaped)
    ratio = group_advantages(mos_aware_reward(correct, delta, 1.0, 0.5), scale="none") / (
        group_advantages(accuracy_reward(correct), scale="none")
    )
    assert torch.allclose(ratio, torch.full_like(ratio, 1.25))  # (2 + w) / 2


# -- the judge -----------------------------------------------------------------------------------


def _batch(seed: int, lengths: list[int]) -> Batch:
    from benchmark.data.audio import pad_batch

    rng = np.random.default_rng(seed)
    waves = [(0.1 * rng.normal(size=n)).astype(np.float32) for n in lengths]
    return pad_batch(waves, 16000, [f"c{i}" for i in range(len(waves))])


def test_judge_logp_is_a_distribution_and_matches_sampling():
    torch.manual_seed(0)
    model = new_model({**TINY, "seed": 3}).eval()
    a, b = _batch(0, [3000, 5000]), _batch(1, [4000, 2000])
    k = model.levels
    grid = torch.tensor([[i, j] for i in range(k) for j in range(k)])
    logp = torch.stack(
        [model.completion_logp(a, b, grid[n : n + 1].expand(2, 2)) for n in range(k * k)], 1
    )  # [B, K², L]
    probs = logp.sum(-1).exp()
    assert torch.allclose(probs.sum(1), torch.ones(2), atol=1e-5)  # a proper distribution
    # greedy = argmax token by token; prefer reads its order
    greedy = model.sample(a, b, 3, temperature=0.0)
    assert (greedy == greedy[:, :1]).all()
    first = logp[:, ::k, 0].argmax(-1)
    assert torch.equal(greedy[:, 0, 0], first)
    assert torch.equal(model.prefer(a, b), verdict(greedy[:, 0]))
    # sampling at temperature 1 follows the model's probabilities
    gen = torch.Generator().manual_seed(0)
    draws = model.sample(a, b, 4000, temperature=1.0, generator=gen)
    freq = torch.zeros(2, k * k)
    for row in range(2):
        idx = draws[row, :, 0] * k + draws[row, :, 1]
        freq[row] = torch.bincount(idx, minlength=k * k).float() / 4000
    assert (freq - probs).abs().max() < 0.03
    # inverse CDF: u = 0 gives the first token, u -> 1 the last
    h0 = model._pair(a, b)
    u0 = torch.zeros(2, 1, 2, dtype=torch.float64)
    assert (model.sample_given(h0, 1, uniforms=u0) == 0).all()
    u1 = torch.full((2, 1, 2), 1 - 1e-12, dtype=torch.float64)
    assert (model.sample_given(h0, 1, uniforms=u1) == k - 1).all()


def test_logp_at_a_temperature_is_the_distribution_sampled_at_it():
    """GRPO's ratio and KL must be about what was sampled: at τ = 0.25 the draws follow
    exp(logp_given(..., 0.25)), not the τ = 1 probabilities."""
    torch.manual_seed(0)
    model = new_model({**TINY, "seed": 3}).eval()
    a, b = _batch(0, [3000, 5000]), _batch(1, [4000, 2000])
    k = model.levels
    h0 = model._pair(a, b)
    grid = torch.tensor([[i, j] for i in range(k) for j in range(k)])
    with torch.no_grad():
        probs = torch.stack(
            [
                model.logp_given(h0, grid[n : n + 1].expand(2, 2), 0.25).sum(-1).exp()
                for n in range(k * k)
            ],
            1,
        )
        plain = torch.stack(
            [
                model.logp_given(h0, grid[n : n + 1].expand(2, 2)).sum(-1).exp()
                for n in range(k * k)
            ],
            1,
        )
    assert torch.allclose(probs.sum(1), torch.ones(2), atol=1e-5)
    assert (probs - plain).abs().max() > 0.05  # the temperature matters for this model
    draws = model.sample_given(h0, 4000, 0.25, generator=torch.Generator().manual_seed(1))
    freq = torch.stack(
        [
            torch.bincount(draws[r, :, 0] * k + draws[r, :, 1], minlength=k * k).float() / 4000
            for r in range(2)
        ]
    )
    assert (freq - probs).abs().max() < 0.03


def test_judge_is_batch_independent_and_round_trips(tmp_path):
    model = new_model({**TINY, "seed": 1}).eval()
    lengths = [1200, 4800, 2500, 3900]
    a, b = _batch(2, lengths), _batch(3, lengths[::-1])
    tokens = torch.tensor([[0, 1], [2, 2], [3, 0], [1, 3]])
    whole = model.completion_logp(a, b, tokens)
    for i in range(4):
        one = model.completion_logp(_row(a, i), _row(b, i), tokens[i : i + 1])
        assert torch.allclose(one, whole[i : i + 1], atol=1e-5)
    path = save(model, tmp_path / "judge.safetensors")
    again = build(path)
    assert torch.equal(again.completion_logp(a, b, tokens), whole)
    assert save(again, tmp_path / "again.safetensors").read_bytes() == path.read_bytes()
    with pytest.raises(SubmissionError, match="differs from params at 'levels'|shape"):
        build(path, config={**TINY, "levels": 5})
    with pytest.raises(SubmissionError, match="unknown key 'colour'"):
        new_model({**TINY, "colour": 1})
    assert score_levels(torch.tensor([1.0, 2.4, 3.0, 5.0, 6.0]), 5).tolist() == [0, 1, 2, 4, 4]


def _row(batch: Batch, i: int) -> Batch:
    n = int(batch.lengths[i])
    return Batch(
        batch.waveforms[i : i + 1, :n], batch.lengths[i : i + 1], 16000, batch.clip_ids[i : i + 1]
    )


def test_sft_lowers_the_loss_on_a_toy_batch():
    from benchmark.baselines.grpo_train import sft_loss_of

    model = new_model({**TINY, "seed": 2})
    chosen, rejected = _batch(6, [3000, 4000, 2000, 3600]), _batch(7, [2600, 3900, 4200, 3100])
    mc, mr = np.array([4.5, 3.2, 2.0, 4.9]), np.array([1.2, 2.8, 1.0, 3.5])
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(8):
        loss = sft_loss_of(model, chosen, rejected, mc, mr, model.levels, torch.device("cpu"))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[0] == pytest.approx(math.log(model.levels), abs=0.3)  # about uniform at first
    assert all(np.diff(losses) < 0) and losses[-1] < 0.9 * losses[0], losses


def test_one_grpo_step_moves_logprobs_along_the_advantages():
    model = new_model({**TINY, "seed": 5})
    a, b = _batch(4, [3000, 4000, 3500]), _batch(5, [2500, 3800, 4100])
    wa, la, wb, lb = a.waveforms, a.lengths, b.waveforms, b.lengths
    swap = torch.tensor([[False], [True], [False]])
    with torch.no_grad():
        h0 = model.context(wa, la, wb, lb, swap)[:, 0]
        tokens = model.sample_given(h0, 4, 1.0, generator=torch.Generator().manual_seed(1))
        old = model.logp_given(h0, tokens)
    correct = is_correct(tokens, ~swap.expand(3, 4))
    rewards = accuracy_reward(correct) + 0.1 * tokens[..., 0].double()  # some spread per group
    adv = group_advantages(rewards).float()
    assert adv.abs().sum() > 0
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    swap_g = swap.expand(3, 4)
    loss, stats = grpo_loss(
        model(wa, la, wb, lb, tokens, swap_g),
        old,
        old,
        adv,
        torch.ones_like(tokens, dtype=torch.bool),
    )
    assert stats["kl"] == pytest.approx(0.0, abs=1e-6) and stats["clip_frac"] == 0.0
    opt.zero_grad()
    loss.backward()
    opt.step()
    with torch.no_grad():
        new = model(wa, la, wb, lb, tokens, swap_g)
    moved = (adv[..., None] * (new - old)).sum()
    assert moved > 0, moved  # completions with positive advantage became more likely


# -- the recipe end to end on the toy task -------------------------------------------------------


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    from tests.baselines.train_fixture import write_train_repo

    return write_train_repo(tmp_path_factory.mktemp("grpo"))


def _config(repo: Path, **extra: object) -> Path:
    from tests.baselines.train_fixture import config_file

    grpo = {"sft_epochs": 2, "sft_per_task": 48, "iterations": 2, **extra.pop("grpo", {})}  # type: ignore[dict-item]
    base = {
        "name": "toy-grpo",
        "loss": "grpo",
        "model": TINY,
        "epochs": 1,
        "per_task_per_epoch": 32,
        "batch_size": 8,
        "grpo": grpo,
    }
    return config_file(repo, **{**base, **extra})


def test_recipe_writes_two_judges_that_load_and_pass_the_smoke_run(repo, tmp_path):
    from benchmark.baselines.train import train
    from benchmark.baselines.train_config import load_train_config
    from benchmark.scoring.models import load_submission
    from benchmark.scoring.smoke import smoke_run

    cfg = load_train_config(_config(repo, grpo={"dapo": True}))  # the DAPO path end to end
    out = train(cfg, tmp_path / "toy-grpo", repo=repo, progress=False)
    assert out == tmp_path / "toy-grpo"
    for folder, name in [(out, "toy-grpo"), (tmp_path / "toy-grpo-sft", "toy-grpo-sft")]:
        for f in ("submission.yaml", "model.safetensors", "curve.csv", "curve.png", "card.md"):
            assert (folder / f).is_file(), (folder, f)
        sub = load_submission(folder, unsandboxed=True)
        assert sub.spec.kind == "pairwise" and sub.spec.name == name and sub.spec.baseline
        report = smoke_run(sub)
        assert report.max_abs_diff == 0.0
    rows = (out / "curve.csv").read_text().splitlines()
    head = rows[0].split(",")
    assert head[:2] == ["stage", "epoch"] and {"reward", "kl", "clip_frac"} <= set(head)
    card = (out / "card.md").read_text()
    assert "P90 of train ΔMOS per task" in card and "reward `mos_aware`" in card
    assert "ε = [0.2, 0.28], token aggregation" in card and "DAPO dynamic sampling" in card
    assert "GRPO: reward" not in (tmp_path / "toy-grpo-sft" / "card.md").read_text()
    # the SFT judge is the GRPO run's start: its weights are the reference, GRPO moved away
    a, b = (
        load_file(str(out / "model.safetensors")),
        load_file(str(tmp_path / "toy-grpo-sft" / "model.safetensors")),
    )
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_resume_mid_grpo_gives_identical_weights(repo, tmp_path):
    from benchmark.baselines.train import train
    from benchmark.baselines.train_config import load_train_config

    path = _config(repo, name="toy-resume", checkpoint_every=2, grpo={"train_encoder": False})
    cfg = load_train_config(path)
    whole = train(cfg, tmp_path / "whole" / "toy-resume", repo=repo, progress=False)
    cut = tmp_path / "cut" / "toy-resume"
    # SFT: 2 epochs × 6 batches; stop after 3 GRPO batches (a checkpoint was taken after 2)
    assert train(cfg, cut, repo=repo, progress=False, stop_after_steps=15) is None
    assert (cut / "checkpoint" / "grpo" / "state.json").is_file()
    assert train(cfg, cut, repo=repo, progress=False) == cut
    for name in ("toy-resume", "toy-resume-sft"):
        x = load_file(str(whole.parent / name / "model.safetensors"))
        y = load_file(str(cut.parent / name / "model.safetensors"))
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x), name
    # train_encoder: false -> GRPO left the SFT encoder alone and tuned the rest
    grpo, sft = (
        load_file(str(cut.parent / n / "model.safetensors"))
        for n in ("toy-resume", "toy-resume-sft")
    )
    assert all(torch.equal(grpo[k], sft[k]) for k in grpo if k.startswith("encoder."))
    assert any(not torch.equal(grpo[k], sft[k]) for k in grpo if not k.startswith("encoder."))


def test_torchrun_two_processes_follow_one(repo, tmp_path):
    from benchmark.baselines.train import train
    from benchmark.baselines.train_config import load_train_config
    from tests.baselines.train_fixture import torchrun_train

    one = load_train_config(_config(repo, name="one", batch_size=8))
    single = train(one, tmp_path / "single" / "one", repo=repo, progress=False)
    two = _config(repo, name="two", batch_size=4, grpo={"sft_batch_size": 4})
    torchrun_train(repo, two, tmp_path / "ddp" / "two")
    for a_name, b_name in [("one", "two"), ("one-sft", "two-sft")]:
        a = load_file(str(single.parent / a_name / "model.safetensors"))
        b = load_file(str(tmp_path / "ddp" / b_name / "model.safetensors"))
        worst = max(float((a[k] - b[k]).abs().max()) for k in a)
        assert worst <= 1e-3, (a_name, worst)  # float noise through Adam, not other samples:
    # every pair drew the same rollouts and earned the same rewards on either split of the batch
    for column in ("reward", "correct"):
        assert _column(single.parent / "one", column) == _column(tmp_path / "ddp" / "two", column)


def _column(folder: Path, name: str) -> list[str]:
    rows = [r.split(",") for r in (folder / "curve.csv").read_text().splitlines()]
    i = rows[0].index(name)
    return [r[i] for r in rows[1:] if r[i]]


def test_a_bad_grpo_block_is_a_one_line_error(repo, capsys):
    from benchmark.cli import main

    for grpo, message in [
        ({"group_size": 1}, "field 'grpo.group_size'"),
        ({"rewards": "mos_aware"}, "field 'grpo.rewards': unknown key"),
        ({"reward": "bleu"}, "field 'grpo.reward'"),
    ]:
        path = _config(repo, name="toy-bad", grpo=grpo)
        assert main(["--repo", str(repo), "train", str(path), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1, err
        assert "toy-bad.yaml" in err


def test_the_expected_score_tie_break_decides_ties_only(tmp_path):
    """Constructed logits (`_step` replaced): a greedy tie (both scores 3) is decided by the
    expected scores, E[A] = 3.4 > E[B | A=3] = 2.8 -> A; the reverse -> B; equal -> 0.5; a greedy
    non-tie is never moved, even against the expectations. Without the option every tie is 0.5."""
    model = new_model({**TINY, "seed": 1, "levels": 5}).eval()

    def logits_for(probs: list[float]) -> torch.Tensor:
        return torch.log(torch.tensor(probs, dtype=torch.float64)).float()

    cases = {  # (first-step p, second-step p) per row
        "A by mean": ([0, 0, 0, 0.6, 0.4], [0, 0.1, 0.2, 0.6, 0.1]),
        "B by mean": ([0, 0.1, 0.2, 0.6, 0.1], [0, 0, 0, 0.6, 0.4]),
        "exact tie": ([0, 0, 0, 1.0, 0], [0, 0, 0, 1.0, 0]),
        "no tie": ([0.55, 0, 0, 0, 0.45], [0.4, 0.6, 0, 0, 0]),  # A=0 < B=1, yet E[A] 1.8 > 0.6
    }
    rows = list(cases.values())

    def step(h: torch.Tensor, prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        first = bool((prev == model.bos).all())
        logits = torch.stack([logits_for(r[0] if first else r[1]) for r in rows]).clamp(min=-1e4)
        if prev.dim() == 2:  # sample_given's [B, n] states
            logits = logits[:, None, :].expand(*prev.shape, logits.shape[-1])
        return h, logits

    model._step = step  # type: ignore[method-assign]
    h0 = torch.zeros(len(rows), 4)
    got = model.verdict_expected(h0).tolist()
    assert got == [1.0, 0.0, 0.5, 0.0]
    plain = verdict(model.sample_given(h0, 1, 0.0)[:, 0]).tolist()
    assert plain == [0.5, 0.5, 0.5, 0.0]  # the same greedy scores, ties at 0.5
    path = save(new_model({**TINY, "seed": 1}).eval(), tmp_path / "j.safetensors")
    assert build(path, tie_break="expected").fingerprint() != build(path).fingerprint()
    with pytest.raises(SubmissionError, match="params.tie_break must be one of none, expected"):
        build(path, tie_break="coin")
