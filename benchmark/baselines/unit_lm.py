"""A small causal transformer over unit sequences: the policy and reference of the DPO baseline.

The implicit reward needs log π(x) for a whole clip, so the model is a plain autoregressive LM:
a clip's units u_1..u_n are read as BOS u_1 .. u_n and predicted as u_1 .. u_n EOS, and

    log π(x) = Σ_{t=1}^{n+1} log softmax(h_{t-1})[target_t]

summed in float64 over the n + 1 real targets (`logp` also returns n, the unit count, for the
per-unit variant). Positions are rotary (RoPE), so there is no length cap: a clip of any
duration is scored whole, never truncated. Each row attends only to its own earlier, valid
tokens (causal mask and key-padding mask), and the padding targets are masked out of the sum, so
a clip's log-probability does not depend on the other rows of its batch.

The model is fully described by its JSON config (vocabulary, sizes, seed); parameters are drawn
from the seed without touching the global RNG, so the same config builds the same untrained LM.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from benchmark.baselines.encoders import frame_mask
from benchmark.errors import SubmissionError

DEFAULTS: dict[str, Any] = {
    "vocab": 64,  # units; EOS = vocab (a target only), BOS = vocab + 1 (an input only)
    "dim": 64,
    "layers": 2,
    "heads": 4,
    "ff": 192,
    "dropout": 0.0,
    "seed": 0,
}


def resolve_lm_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    given = dict(config or {})
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise SubmissionError(
            f"unit LM config: unknown key '{unknown[0]}' (known: {', '.join(sorted(DEFAULTS))})"
        )
    out = {**copy.deepcopy(DEFAULTS), **given}
    for key in ("vocab", "dim", "layers", "heads", "ff"):
        if not isinstance(out[key], int) or out[key] < 1:
            raise SubmissionError(f"unit LM config: '{key}' must be an integer >= 1")
    if out["dim"] % out["heads"] or (out["dim"] // out["heads"]) % 2:
        raise SubmissionError("unit LM config: 'dim' / 'heads' must be an even integer (RoPE)")
    out["dropout"] = float(out["dropout"])
    out["seed"] = int(out["seed"])
    return out


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE on [B, H, T, Dh] (pairs (i, i + Dh/2) rotated by position-dependent angles)."""
    a, b = x.chunk(2, dim=-1)
    return torch.cat((a * cos - b * sin, a * sin + b * cos), dim=-1)


class _Block(nn.Module):
    """Pre-norm transformer block: causal self-attention with RoPE, then a GELU MLP."""

    def __init__(self, dim: int, heads: int, ff: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, ff), nn.GELU(), nn.Linear(ff, dim))
        self.drop = nn.Dropout(dropout)
        self.dropout = dropout

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, d // self.heads).unbind(2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))  # [B, H, T, Dh]
        q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        p = self.dropout if self.training else 0.0
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        x = x + self.drop(self.proj(att.transpose(1, 2).reshape(b, t, d)))
        return x + self.drop(self.mlp(self.norm2(x)))


class UnitLM(nn.Module):
    """`forward(units [B, U], counts [B]) -> (summed log-prob float64 [B], counts [B])`."""

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.config = resolve_lm_config(config)
        c = self.config
        self.eos, self.bos = c["vocab"], c["vocab"] + 1
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(c["seed"])
            self.embed = nn.Embedding(c["vocab"] + 2, c["dim"])
            self.blocks = nn.ModuleList(
                _Block(c["dim"], c["heads"], c["ff"], c["dropout"]) for _ in range(c["layers"])
            )
            self.norm = nn.LayerNorm(c["dim"])
            self.out = nn.Linear(c["dim"], c["vocab"] + 1)  # units and EOS (BOS is never a target)

    def _rope(self, t: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        half = self.config["dim"] // self.config["heads"] // 2
        freq = 10000.0 ** (-torch.arange(half, device=device, dtype=torch.float64) / half)
        ang = torch.arange(t, device=device, dtype=torch.float64)[:, None] * freq[None, :]
        return ang.cos().float(), ang.sin().float()

    def token_logprobs(self, units: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """log p(target_t | prefix) per position [B, U + 1]; targets are u_1..u_n, EOS, then pad
        (whose entries are 0, so a plain sum over a row is the clip's log-probability)."""
        b, u = units.shape
        counts = counts.to(units.device)
        pos = torch.arange(u + 1, device=units.device)
        valid_in = pos[None, :] <= counts[:, None]  # BOS + n units
        inputs = torch.cat([torch.full_like(units[:, :1], self.bos), units], dim=1)
        targets = torch.cat([units, torch.zeros_like(units[:, :1])], dim=1)
        targets = torch.where(pos[None, :] == counts[:, None], self.eos, targets)
        targets = targets * valid_in  # pad targets -> 0 (masked below)
        inputs = inputs * valid_in
        causal = torch.ones(u + 1, u + 1, dtype=torch.bool, device=units.device).tril()
        mask = (causal[None, :, :] & valid_in[:, None, :])[:, None, :, :]  # [B, 1, T, T]
        cos, sin = self._rope(u + 1, units.device)
        x = self.embed(inputs)
        for block in self.blocks:
            x = block(x, mask, cos, sin)
        logits = self.out(self.norm(x)).float()
        lp = torch.log_softmax(logits, dim=-1).gather(-1, targets[..., None]).squeeze(-1)
        return lp * valid_in

    def forward(self, units: torch.Tensor, counts: torch.Tensor) -> tuple[torch.Tensor, ...]:
        lp = self.token_logprobs(units, counts)
        return lp.double().sum(1), counts.to(units.device)

    def logp(self, units: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Summed log-probability of each clip's units and EOS [B] (float64), and the unit count."""
        return self(units, lengths)


def pad_units(seqs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-padded [B, U] units and counts [B] from 1-D unit tensors."""
    counts = torch.tensor([int(s.numel()) for s in seqs], dtype=torch.int64)
    out = torch.zeros(len(seqs), int(counts.max()), dtype=torch.int64)
    for i, s in enumerate(seqs):
        out[i, : s.numel()] = s
    return out * frame_mask(counts, out.shape[1]), counts
