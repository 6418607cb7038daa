"""The reference generative pairwise judge: it reads both clips and *writes* its verdict.

Like the paper's generative reward model, the judge answers with a short completion over a tiny
vocabulary: a discrete score for clip A, then one for clip B (score tokens 0 .. K−1 stand for the
scores 1 .. K), the second conditioned on the first. The order of the two scores is the preference
and equal scores are a tie. A shared audio encoder (`benchmark.baselines.encoders`) embeds each
clip by masked mean pooling; the two embeddings, in presentation order, set the initial state of a
small autoregressive decoder (a GRU cell over token embeddings, a BOS token first). That is the
smallest model with the interface GRPO needs from a text-emitting audio LM:

- `completion_logp(a, b, tokens) -> [B, L]`: per-token log-probabilities of given completions;
- `sample(a, b, n, temperature, ...) -> [B, n, L]`: sampled completions (temperature 0 = greedy);
- `prefer(a, b)`: the harness's pairwise protocol, greedy decoding, 1.0 if score_A > score_B,
  0.0 if lower, 0.5 on a tie (the harness asks both orders and averages). With
  `tie_break="expected"` (a build param, not part of the trained config) a tie of the greedy
  scores is decided by the expected scores under the judge's own token distributions, E[score_A]
  from the first step and E[score_B | the greedy score_A] from the second: the paper's protocol
  reads the written scores, and an expectation is what they estimate. Only ties move; an exact
  tie of the expectations stays 0.5.

So `benchmark.baselines.grpo` is written over per-token log-probs of sampled completions, exactly
as for an audio LLM; swapping this model for one is a matter of these three methods.

Sampling takes optional uniforms (inverse-CDF sampling): the trainer draws them per pair from a
seed, so a completion does not depend on which rank or batch the pair landed in, nor on the device.
A submission entry, like `benchmark.baselines.scalar:build`: the config (encoder, levels, sizes,
seed) travels in the safetensors metadata, weights are never read with pickle, and padding is
masked, so the answer does not depend on the batch.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmark.baselines.encoders import Encoder, build_encoder, resolve_encoder_config
from benchmark.baselines.scalar import config_json, load_configured, masked_mean
from benchmark.baselines.scalar import save as save  # one weights writer for every reference model
from benchmark.data.batch import Batch
from benchmark.errors import SubmissionError

CONFIG_VERSION = 1
KIND = "judge"
"""Stored in the config, so a judge's weights are never mistaken for a scalar model's."""

COMPLETION_LENGTH = 2
"""Score of clip A, then score of clip B."""

DEFAULT_CONFIG: dict[str, Any] = {
    "version": CONFIG_VERSION,
    "kind": KIND,
    "seed": 0,
    "encoder": {"type": "logmel"},
    "levels": 5,
    "hidden": 64,
}


def resolve_config(config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`config` completed with the defaults, unknown keys and bad values refused (one line)."""
    given = dict(config or {})
    unknown = sorted(set(given) - set(DEFAULT_CONFIG))
    if unknown:
        raise SubmissionError(
            f"judge config: unknown key '{unknown[0]}' (known: {', '.join(sorted(DEFAULT_CONFIG))})"
        )
    if given.get("version", CONFIG_VERSION) != CONFIG_VERSION:
        raise SubmissionError(
            f"judge config: version {given['version']!r}, this harness reads {CONFIG_VERSION}"
        )
    if given.get("kind", KIND) != KIND:
        raise SubmissionError(f"judge config: kind {given['kind']!r} is not a judge's config")
    encoder = given.get("encoder") or DEFAULT_CONFIG["encoder"]
    if not isinstance(encoder, Mapping):
        raise SubmissionError("judge config: 'encoder' must be a mapping with a 'type'")
    levels, hidden = given.get("levels", 5), given.get("hidden", 64)
    if not isinstance(levels, int) or not 2 <= levels <= 100:
        raise SubmissionError(
            f"judge config: 'levels' must be an integer in 2..100, got {levels!r}"
        )
    if not isinstance(hidden, int) or hidden < 1:
        raise SubmissionError(f"judge config: 'hidden' must be a positive integer, got {hidden!r}")
    return {
        "version": CONFIG_VERSION,
        "kind": KIND,
        "seed": int(given.get("seed", 0)),
        "encoder": resolve_encoder_config(dict(encoder)),
        "levels": levels,
        "hidden": hidden,
    }


def score_levels(mos: torch.Tensor, levels: int) -> torch.Tensor:
    """MOS on the 1–5 scale -> the score token (0 .. levels−1) of the nearest of `levels` evenly
    spaced scores: the SFT targets. 1 -> 0, 5 -> levels−1, out-of-range MOS clipped."""
    x = (mos.double().clamp(1.0, 5.0) - 1.0) / 4.0 * (levels - 1)
    return torch.floor(x + 0.5).long().clamp(0, levels - 1)


class PairwiseJudge(nn.Module):
    """Shared encoder -> per-clip embedding; both embeddings (in order) -> decoder state; a GRU
    decoder emits score tokens. `forward` is the training path (teacher-forced log-probs); the
    public methods take harness `Batch`es. Initialised from `config["seed"]` without touching the
    global RNG, so one config always builds one untrained model. No dropout: rollouts are sampled
    from the very distribution whose log-probs the GRPO ratio uses.
    """

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.config = resolve_config(config)
        self.levels = int(self.config["levels"])
        self.bos = self.levels  # the start token, never emitted
        hidden = int(self.config["hidden"])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config["seed"])
            self.encoder: Encoder = build_encoder(self.config["encoder"])
            self.embed_clip = nn.Sequential(nn.Linear(self.encoder.output_dim, hidden), nn.GELU())
            # [e_A, e_B, e_A − e_B] in presentation order: the judge sees which clip came first
            self.fuse = nn.Sequential(nn.Linear(3 * hidden, hidden), nn.Tanh())
            self.tokens = nn.Embedding(self.levels + 1, hidden)
            self.cell = nn.GRUCell(hidden, hidden)
            self.out = nn.Linear(hidden, self.levels)
        self.sample_rate = self.encoder.sample_rate

    # -- training path (tensors) -----------------------------------------------------------------

    def pooled(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Encoder features, masked-mean pooled per clip: [B, D]."""
        features, frame_lengths = self.encoder(waveforms, lengths)
        return masked_mean(features, frame_lengths)

    def pooled_pair(
        self, wa: torch.Tensor, la: torch.Tensor, wb: torch.Tensor, lb: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Both sides pooled in one encoder call (padding is masked, so batching them together
        changes nothing): each clip is encoded once whatever the presentation orders."""
        n, length = wa.shape[0], max(wa.shape[1], wb.shape[1])
        pad = nn.functional.pad
        waves = torch.cat([pad(wa, (0, length - wa.shape[1])), pad(wb, (0, length - wb.shape[1]))])
        p = self.pooled(waves, torch.cat([la, lb]).to(waves.device))
        return p[:n], p[n:]

    def context(
        self,
        wa: torch.Tensor,
        la: torch.Tensor,
        wb: torch.Tensor,
        lb: torch.Tensor,
        swap: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Initial decoder states [B, H] (or [B, G, H] for a [B, G] `swap`): clip A first, clip B
        second, or the other way round where `swap` is True."""
        return self.context_from(*self.pooled_pair(wa, la, wb, lb), swap)

    def context_from(
        self, pa: torch.Tensor, pb: torch.Tensor, swap: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`context` from pooled encoder features [B, D] of both sides."""
        ea, eb = self.embed_clip(pa), self.embed_clip(pb)
        if swap is None:
            return self.fuse(torch.cat([ea, eb, ea - eb], dim=-1))
        s = swap.to(ea.device)[..., None]  # [B, G, 1], broadcast against [B, 1, H]
        ea_, eb_ = ea[:, None, :], eb[:, None, :]
        first, second = torch.where(s, eb_, ea_), torch.where(s, ea_, eb_)
        return self.fuse(torch.cat([first, second, first - second], dim=-1))

    def _step(self, h: torch.Tensor, prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One decoder step: new state and the next token's logits."""
        shape = h.shape
        h = self.cell(self.tokens(prev).reshape(-1, shape[-1]), h.reshape(-1, shape[-1]))
        return h.reshape(shape), self.out(h).reshape(*shape[:-1], self.levels)

    def logp_given(
        self, h0: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0
    ) -> torch.Tensor:
        """Teacher-forced per-token log-probs [..., L] of `tokens` [..., L] from states [..., H],
        under the distribution `sample_given` draws from at `temperature` (logits / τ), so that
        GRPO's ratio and KL are about the distribution that was sampled."""
        if tokens.shape[:-1] != h0.shape[:-1]:
            h0 = h0.unsqueeze(-2).expand(*tokens.shape[:-1], h0.shape[-1])
        h, prev, out = h0, torch.full_like(tokens[..., 0], self.bos), []
        for t in range(tokens.shape[-1]):
            h, logits = self._step(h, prev)
            logp = torch.log_softmax(logits.float() / temperature, dim=-1)
            out.append(logp.gather(-1, tokens[..., t : t + 1]).squeeze(-1))
            prev = tokens[..., t]
        return torch.stack(out, dim=-1)

    @torch.no_grad()
    def sample_given(
        self,
        h0: torch.Tensor,
        n: int,
        temperature: float = 1.0,
        *,
        uniforms: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """`n` completions [B, n, L] per state of `h0` [B, H]; temperature 0 = greedy (n copies).

        Token t of completion j is drawn by inverse CDF from `uniforms[b, j, t]` (in [0, 1)), or
        from `torch.rand(..., generator=generator)` when no uniforms are given.
        """
        b = h0.shape[0]
        shape = (b, n, COMPLETION_LENGTH)
        if temperature > 0 and uniforms is None:
            uniforms = torch.rand(shape, generator=generator, device=h0.device, dtype=torch.float64)
        h = h0.unsqueeze(1).expand(b, n, h0.shape[-1])
        prev = torch.full((b, n), self.bos, dtype=torch.long, device=h0.device)
        out = []
        for t in range(COMPLETION_LENGTH):
            h, logits = self._step(h, prev)
            if temperature > 0:
                assert uniforms is not None
                probs = torch.softmax(logits.double() / temperature, dim=-1)
                cdf = probs.cumsum(-1)
                u = uniforms[..., t].to(cdf.device, torch.float64)[..., None] * cdf[..., -1:]
                prev = (cdf <= u).sum(-1).clamp(max=self.levels - 1)
            else:
                prev = logits.argmax(-1)
            out.append(prev)
        return torch.stack(out, dim=-1)

    def forward(
        self,
        wa: torch.Tensor | None,
        la: torch.Tensor | None,
        wb: torch.Tensor | None,
        lb: torch.Tensor | None,
        tokens: torch.Tensor,
        swap: torch.Tensor | None = None,
        pooled: tuple[torch.Tensor, torch.Tensor] | None = None,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """Per-token log-probs [B, G, L] of completions `tokens` [B, G, L] (or [B, L] -> [B, L]),
        each given its pair in the order `swap` [B, G] says (None: A then B), at the sampling
        `temperature`. `pooled` (both sides' `pooled_pair` features) skips the encoder, for
        training with it frozen."""
        if pooled is None:
            assert wa is not None and la is not None and wb is not None and lb is not None
            pooled = self.pooled_pair(wa, la, wb, lb)
        if tokens.dim() == 2:
            return self.logp_given(self.context_from(*pooled), tokens, temperature)
        if swap is None:
            swap = torch.zeros(tokens.shape[:2], dtype=torch.bool)
        return self.logp_given(self.context_from(*pooled, swap), tokens, temperature)

    # -- harness protocol (Batches) --------------------------------------------------------------

    def _pair(self, a: Batch, b: Batch) -> torch.Tensor:
        for batch in (a, b):
            if batch.sample_rate != self.sample_rate:
                raise ValueError(
                    f"batch at {batch.sample_rate} Hz, model expects {self.sample_rate}"
                )
        device = next(self.parameters()).device
        return self.context(
            a.waveforms.to(device),
            a.lengths.to(device),
            b.waveforms.to(device),
            b.lengths.to(device),
        )

    def completion_logp(self, a: Batch, b: Batch, tokens: torch.Tensor) -> torch.Tensor:
        """Per-token log-probs [B, L] of completions `tokens` [B, L] for pairs (a[i], b[i])."""
        return self.logp_given(self._pair(a, b), tokens.to(next(self.parameters()).device))

    def sample(
        self,
        a: Batch,
        b: Batch,
        n: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """`n` sampled completions [B, n, L] per pair (temperature 0: the greedy one, n times)."""
        with torch.no_grad():
            return self.sample_given(self._pair(a, b), n, temperature, generator=generator)

    tie_break: str = "none"
    """'none' (a greedy tie is 0.5) or 'expected' (module doc); set by `build`."""

    def prefer(self, a: Batch, b: Batch) -> torch.Tensor:
        """Greedy verdict per pair: 1.0 if score_A > score_B, 0.0 if lower, 0.5 if equal (or, with
        `tie_break='expected'`, a tie decided by the expected scores)."""
        with torch.no_grad():
            h0 = self._pair(a, b)
            if self.tie_break == "expected":
                return self.verdict_expected(h0)
            tokens = self.sample_given(h0, 1, 0.0)[:, 0]
        return verdict(tokens)

    @torch.no_grad()
    def verdict_expected(self, h0: torch.Tensor) -> torch.Tensor:
        """Greedy verdicts [B], ties decided by E[score_A] against E[score_B | greedy score_A]."""
        levels = torch.arange(self.levels, device=h0.device, dtype=torch.float64)
        h, prev = h0, torch.full(h0.shape[:1], self.bos, dtype=torch.long, device=h0.device)
        tokens, means = [], []
        for _ in range(COMPLETION_LENGTH):
            h, logits = self._step(h, prev)
            probs = torch.softmax(logits.double(), dim=-1)
            means.append((probs * levels).sum(-1))
            prev = logits.argmax(-1)
            tokens.append(prev)
        greedy = verdict(torch.stack(tokens, dim=-1))
        by_mean = (means[0] > means[1]).float() + 0.5 * (means[0] == means[1]).float()
        return torch.where(greedy == 0.5, by_mean.to(greedy.dtype), greedy)

    def fingerprint(self) -> str:
        extra = "" if self.tie_break == "none" else f"\0tie_break={self.tie_break}"
        text = config_json(self.config) + extra
        return "judge-v1-" + hashlib.sha256(text.encode()).hexdigest()[:24]

    def saved_state(self) -> dict[str, torch.Tensor]:
        """Everything but a frozen pretrained backbone (reloaded from its source)."""
        skip = tuple("encoder." + p for p in self.encoder.frozen_prefixes())
        return {k: v for k, v in self.state_dict().items() if not k.startswith(skip)}


def verdict(tokens: torch.Tensor) -> torch.Tensor:
    """Completions [..., L] -> P(A better) as the harness reads it: 1.0, 0.0, or 0.5 on a tie."""
    sa, sb = tokens[..., 0], tokens[..., 1]
    return (sa > sb).float() + 0.5 * (sa == sb).float()


def new_model(config: Mapping[str, Any] | None = None) -> PairwiseJudge:
    return PairwiseJudge(config)


TIE_BREAKS = ("none", "expected")


def build(
    weights_path: str | Path | None = None,
    config: Mapping[str, Any] | None = None,
    tie_break: str = "none",
) -> PairwiseJudge:
    """A `PairwiseJudge` in eval mode, weights loaded if given; the submission entry point.

    Config from `config`, else the weights' metadata; both given must agree, and every tensor must
    have the shape the config implies, or a one-line `SubmissionError` names the file and where.
    `tie_break` (`params.tie_break`): how `prefer` reads equal greedy scores (module doc).
    """
    if tie_break not in TIE_BREAKS:
        raise SubmissionError(
            f"judge: params.tie_break must be one of {', '.join(TIE_BREAKS)}, got {tie_break!r}"
        )
    model = load_configured(
        lambda c: PairwiseJudge(copy.deepcopy(dict(c or {}))),
        resolve_config,
        weights_path,
        config,
        "judge",
    )
    model.tie_break = tie_break
    return model
