"""Audio encoders for the reference reward models: waveforms in, masked frame features out.

One interface, so the scalar model (and the training loop) never care which encoder they hold:

    features, frame_lengths = encoder(waveforms, lengths)
    # waveforms float32 [B, T], zero-padded; lengths int64 [B] (valid samples per row)
    # features float32 [B, F, D], zero at every frame >= frame_lengths[b]; frame_lengths int64 [B]

Features are returned per frame, not pooled: pooling is the head's choice, and a frame sequence
keeps the door open for attention pooling or frame-level losses. Two guarantees hold for every
encoder, because the harness scores clips in length-bucketed batches of any size and caches the
scores (see `benchmark.scoring.loop`):

- nothing beyond a clip's length influences its valid frames (padding is masked, not just ignored
  at the end), so a clip's features do not depend on the batch it is in beyond float noise;
- every row has at least one valid frame (an empty or very short clip is zero-extended), so a
  masked mean never divides by zero.

Each encoder carries a JSON-serialisable `config` (with its `type`), and `build_encoder(config)`
rebuilds it: a saved model stores only that config next to its weights.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from benchmark.baselines.backbones import looks_like_path as _looks_like_path
from benchmark.errors import SubmissionError, first_line


def frame_mask(frame_lengths: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Bool [B, F]: True on valid frames."""
    t = torch.arange(num_frames, device=frame_lengths.device)
    return t[None, :] < frame_lengths[:, None]


class Encoder(nn.Module):
    """Base class: `forward(waveforms, lengths) -> (features [B, F, D], frame_lengths [B])`.

    Subclasses set `sample_rate` (Hz the waveforms must be at), `output_dim` (D) and `config`, and
    declare their constructor defaults in `DEFAULTS` so a partial config can be completed and an
    unknown key refused before anything is built.
    """

    TYPE: ClassVar[str]
    DEFAULTS: ClassVar[dict[str, Any]]
    sample_rate: int
    output_dim: int
    config: dict[str, Any]

    def forward(
        self, waveforms: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def frozen_prefixes(self) -> tuple[str, ...]:
        """State-dict prefixes (relative to the encoder) that are not trained and need not be
        saved, because the encoder reloads them from their source (a frozen pretrained model)."""
        return ()

    @classmethod
    def resolve(cls, config: dict[str, Any]) -> dict[str, Any]:
        """`config` completed with the defaults; unknown or missing required keys are refused."""
        given = {k: v for k, v in config.items() if k != "type"}
        unknown = sorted(set(given) - set(cls.DEFAULTS))
        if unknown:
            raise SubmissionError(
                f"encoder config: unknown key '{unknown[0]}' for type '{cls.TYPE}' "
                f"(known: {', '.join(sorted(cls.DEFAULTS))})"
            )
        missing = sorted(k for k, v in cls.DEFAULTS.items() if v is _REQUIRED and k not in given)
        if missing:
            raise SubmissionError(f"encoder config: type '{cls.TYPE}' needs '{missing[0]}'")
        merged = {**copy.deepcopy(cls.DEFAULTS), **copy.deepcopy(given)}
        return {"type": cls.TYPE, **_jsonable(merged)}


_REQUIRED = object()
"""Marks a constructor argument without a default in `Encoder.DEFAULTS`."""


def _jsonable(value: Any) -> Any:
    """Tuples become lists, so a config compares equal to itself after a JSON round trip."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------
# log-mel + conv stack, trained from scratch


class _ConvBlock(nn.Module):
    """Conv1d over time -> LayerNorm over channels (per frame, so padding cannot leak) -> GELU."""

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.kernel_size = kernel_size
        self.padding = kernel_size // 2
        self.conv = nn.Conv1d(cin, cout, kernel_size, stride=stride, padding=self.padding)
        self.norm = nn.LayerNorm(cout)

    def out_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        span = lengths + 2 * self.padding - self.kernel_size
        return torch.div(span, self.stride, rounding_mode="floor") + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [B, C, F]
        y = self.conv(x).transpose(1, 2)
        return nn.functional.gelu(self.norm(y)).transpose(1, 2)


class LogMelEncoder(Encoder):
    """Log-mel spectrogram -> small 1-D conv stack, trained from scratch.

    STFT with a Hann window (25 ms / 10 ms at 16 kHz by default), `center=True` with *zero*
    padding: frame t is centred on sample t * hop, a clip of n samples has 1 + n // hop frames, and
    frames near a clip's end see the same zeros whether the row is padded in a batch or not
    (reflect padding would read past the end in one case and mirror the clip in the other). The mel
    filterbank comes from `librosa.filters.mel` (Slaney-normalised, as librosa defaults), rebuilt
    from the config rather than saved. Log compression is `log(mel + 1e-6)` shifted and scaled to
    about unit range by fixed constants: a per-utterance or batch normalisation would either read
    padding or remove the level and spectral tilt that quality depends on.

    Each conv block is Conv1d -> per-frame LayerNorm -> GELU, and its output is zeroed beyond each
    clip's (strided) frame length before the next block, so zero-padding in the conv sees exactly
    what it sees when the clip is alone.

    The default config (64 mels, channels [64, 128, 128, 128], kernel 5, strides [1, 2, 2, 1]) has
    226,624 parameters and reduces 100 frames/s to 25 frames/s of 128-dim features.
    """

    window: torch.Tensor
    mel: torch.Tensor

    TYPE = "logmel"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "sample_rate": 16000,
        "n_fft": 400,
        "hop_length": 160,
        "n_mels": 64,
        "f_min": 0.0,
        "f_max": None,  # None = sample_rate / 2
        "channels": [64, 128, 128, 128],
        "kernel_size": 5,
        "strides": [1, 2, 2, 1],
    }
    LOG_EPS = 1e-6
    LOG_SHIFT = 5.0  # log-mel of speech at typical levels spans roughly [-14, 4]
    LOG_SCALE = 4.0

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 400,
        hop_length: int = 160,
        n_mels: int = 64,
        f_min: float = 0.0,
        f_max: float | None = None,
        channels: list[int] | tuple[int, ...] = (64, 128, 128, 128),
        kernel_size: int = 5,
        strides: list[int] | tuple[int, ...] = (1, 2, 2, 1),
    ) -> None:
        super().__init__()
        import librosa

        if len(channels) != len(strides) or not channels:
            raise SubmissionError(
                f"encoder config: 'channels' ({len(channels)}) and 'strides' ({len(strides)}) "
                "need the same, non-zero length"
            )
        if hop_length < 1 or n_fft < 1 or kernel_size < 1 or min(strides) < 1:
            raise SubmissionError("encoder config: n_fft, hop_length, kernel_size, strides >= 1")
        self.config = self.resolve(
            {
                "sample_rate": sample_rate,
                "n_fft": n_fft,
                "hop_length": hop_length,
                "n_mels": n_mels,
                "f_min": f_min,
                "f_max": f_max,
                "channels": channels,
                "kernel_size": kernel_size,
                "strides": strides,
            }
        )
        self.sample_rate = int(sample_rate)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        mel = librosa.filters.mel(
            sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=f_min, fmax=f_max
        )
        # derived from the config, so not part of the saved state
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.register_buffer("mel", torch.from_numpy(mel).float(), persistent=False)
        dims = [n_mels, *channels]
        self.blocks = nn.ModuleList(
            _ConvBlock(dims[i], dims[i + 1], kernel_size, strides[i]) for i in range(len(strides))
        )
        self.output_dim = int(channels[-1])

    def log_mel(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Normalised log-mel [B, n_mels, F] (padding frames zeroed) and frame lengths [B]."""
        spec = torch.stft(
            waveforms.float(),
            self.n_fft,
            hop_length=self.hop_length,
            window=self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )
        power = spec.real.square() + spec.imag.square()  # [B, n_fft // 2 + 1, F]
        logmel = torch.log(torch.matmul(self.mel, power) + self.LOG_EPS)
        x = (logmel + self.LOG_SHIFT) / self.LOG_SCALE
        frames = torch.div(lengths.to(x.device), self.hop_length, rounding_mode="floor") + 1
        return x * frame_mask(frames, x.shape[-1])[:, None, :], frames

    def forward(
        self, waveforms: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x, frames = self.log_mel(waveforms, lengths)
        for block in self.blocks:
            assert isinstance(block, _ConvBlock)
            x = block(x)
            frames = block.out_lengths(frames)
            x = x * frame_mask(frames, x.shape[-1])[:, None, :]
        return x.transpose(1, 2), frames


# ---------------------------------------------------------------------------------------------
# pretrained self-supervised encoder (WavLM / wav2vec 2.0 / HuBERT) through transformers


def confined_source(source: str, base: Path, what: str) -> str:
    """A backbone `source` named by a submission's files: a hub id as it is, or a folder that
    must lie inside the submission folder `base` (relative names resolve beside the weights).

    The fingerprint covers the submission folder only, so a backbone loaded from elsewhere could
    change without the score cache noticing, and a stranger's file could point anywhere."""
    from benchmark.errors import SubmissionError

    local = (base / source) if not Path(source).expanduser().is_absolute() else Path(source)
    if not _looks_like_path(source) and not local.is_dir():
        return source  # a hub id
    resolved, root = local.expanduser().resolve(), base.resolve()
    if resolved != root and root not in resolved.parents:
        raise SubmissionError(
            f"{what}: backbone source '{source}' is outside the submission folder {base}; "
            "ship it inside the folder (named relatively) or name a hub id"
        )
    return str(resolved)


def load_pretrained(source: str, revision: str | None = None) -> Any:
    """`AutoModel.from_pretrained` on a local folder or a hub id (at `revision`), with a one-line
    error.

    A local folder is loaded with `local_files_only`, so no network is touched; a hub id goes
    through the Hugging Face cache (downloading only where the machine is online). Training
    replaces a pinned hub id by its verified local copy first (`benchmark.baselines.backbones`).
    """
    from transformers import AutoModel

    path = Path(source).expanduser()
    local = path.exists() or _looks_like_path(source)
    if local and not path.is_dir():
        raise SubmissionError(
            f"SSL encoder: local model folder '{path}' not found (give a folder written by "
            "save_pretrained, or a Hugging Face hub id such as 'microsoft/wavlm-base-plus')"
        )
    try:
        if local:
            return AutoModel.from_pretrained(str(path), local_files_only=True)
        return AutoModel.from_pretrained(source, revision=revision)
    except (OSError, ValueError, KeyError) as exc:
        where = f"local folder '{path}'" if local else f"hub model '{source}'"
        raise SubmissionError(f"SSL encoder: cannot load {where}: {first_line(exc)}") from None


class SSLEncoder(Encoder):
    """A pretrained self-supervised speech model with a learned softmax-weighted sum of its layers.

    Hidden states of every layer (the CNN-projected input and each transformer layer) are mixed by
    softmax weights learned with the head (SUPERB-style), because quality cues sit in different
    layers than the phonetic ones the last layer specialises in.

    Padding: models whose CNN feature extractor uses GroupNorm (`feat_extract_norm="group"`, e.g.
    wav2vec2-base, HuBERT-base, WavLM-base(-plus)) normalise each channel over the *whole padded*
    time axis, so a clip's features change with the padding of its batch, and the attention mask
    cannot fix that. For those the encoder runs the backbone clip by clip on the unpadded waveform
    (exact, slower). Models with per-frame LayerNorm in the extractor
    (`feat_extract_norm="layer"`, with `do_stable_layer_norm=True`: the large checkpoints) run
    batched with an attention mask built from the lengths: their CNN has no padding, so valid
    frames see only valid samples, and attention never looks at padded frames.

    `finetune=False` (default) freezes the backbone: it stays in eval mode (no dropout, no
    SpecAugment), runs without gradients, and is not saved with the head (it is reloaded from
    `source`). `finetune=True` trains the transformer, keeping the CNN feature extractor frozen as
    the usual fine-tuning recipes do, and the whole backbone is saved. `normalize` applies the
    per-clip zero-mean/unit-variance normalisation (masked) that some checkpoints were trained on;
    "auto" (default) reads it from the model's own feature extractor (`do_normalize` in its
    preprocessor_config.json: true for wav2vec2-base, false for WavLM), False where it ships none.
    `revision` (a hub commit) and `sha256` ({file: digest}) pin a hub id; training fetches and
    checks them (`benchmark.baselines.backbones`) and ships the backbone, so in a trained model they
    are the record of where its `encoder/` folder came from.
    """

    TYPE = "ssl"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "source": _REQUIRED,
        "finetune": False,
        "normalize": "auto",
        "sample_rate": 16000,
        "revision": None,
        "sha256": None,
    }

    def __init__(
        self,
        source: str,
        finetune: bool = False,
        normalize: bool | str = "auto",
        sample_rate: int = 16000,
        revision: str | None = None,
        sha256: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        from benchmark.baselines.backbones import local_source

        # a pinned hub id is fetched, checked and loaded from its verified local copy
        loaded = local_source({"source": source, "revision": revision, "sha256": sha256})
        if normalize == "auto":
            from benchmark.baselines.hub import load_feature_extractor

            extractor = load_feature_extractor(loaded, "SSL encoder")
            normalize = bool(getattr(extractor, "do_normalize", False))
        elif not isinstance(normalize, bool):
            raise SubmissionError(
                f"encoder config: normalize must be true, false or 'auto', got {normalize!r}"
            )
        self.config = self.resolve(
            {
                "source": source,
                "finetune": finetune,
                "normalize": normalize,
                "sample_rate": sample_rate,
                "revision": revision,
                "sha256": sha256,
            }
        )
        self.sample_rate = int(sample_rate)
        self.finetune = bool(finetune)
        self.normalize = bool(normalize)
        self.backbone = load_pretrained(loaded, revision if loaded == source else None)
        cfg = self.backbone.config
        self.per_clip = getattr(cfg, "feat_extract_norm", "layer") == "group"
        self.min_samples = 1
        for k, s in zip(reversed(cfg.conv_kernel), reversed(cfg.conv_stride), strict=True):
            self.min_samples = (self.min_samples - 1) * s + k  # receptive field of one frame
        n_layers = cfg.num_hidden_layers + 1
        self.layer_logits = nn.Parameter(torch.zeros(n_layers))
        self.output_dim = int(cfg.hidden_size)
        if self.finetune:
            self.backbone.freeze_feature_encoder()
            # LayerDrop skips whole layers in training, and the skipped ones are missing from
            # the hidden states the learned layer weights mix: every layer runs, every step
            self.backbone.config.layerdrop = 0.0
        else:
            self.backbone.requires_grad_(False)
            self.backbone.eval()

    def frozen_prefixes(self) -> tuple[str, ...]:
        return () if self.finetune else ("backbone.",)

    def train(self, mode: bool = True) -> SSLEncoder:
        super().train(mode)
        if not self.finetune:
            self.backbone.eval()
        return self

    def _normalize(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        m = frame_mask(lengths, x.shape[1]).to(x.dtype)
        n = lengths.clamp(min=1).to(x.dtype)[:, None]
        mean = (x * m).sum(1, keepdim=True) / n
        var = ((x - mean).square() * m).sum(1, keepdim=True) / n
        return (x - mean) / torch.sqrt(var + 1e-7) * m

    def _hidden_states(
        self, x: torch.Tensor, lengths: torch.Tensor, num_frames: int
    ) -> torch.Tensor:
        """All hidden states stacked, [L, B, F, H]: batched with an attention mask, or clip by
        clip on the unpadded waveform where the extractor's GroupNorm would read padding."""
        with self._spec_augment_fits(int(lengths.min())):
            if not self.per_clip:
                mask = frame_mask(lengths, x.shape[1]).to(torch.long)
                out = self.backbone(x, attention_mask=mask, output_hidden_states=True)
                return torch.stack(out.hidden_states, dim=0)
            rows = []
            for i, n in enumerate(lengths.tolist()):
                out = self.backbone(x[i : i + 1, :n], output_hidden_states=True)
                h = torch.stack(out.hidden_states, dim=0)  # [L, 1, F_i, H]
                rows.append(nn.functional.pad(h, (0, 0, 0, num_frames - h.shape[2])))
            return torch.cat(rows, dim=1)

    @contextlib.contextmanager
    def _spec_augment_fits(self, samples: int) -> Iterator[None]:
        """Fine-tuning runs the checkpoint's own SpecAugment (time masks of `mask_time_length`
        frames), which raises on a clip shorter than one mask; such a batch trains unmasked."""
        cfg = self.backbone.config
        frames = int(self.backbone._get_feat_extract_output_lengths(torch.tensor(samples)))
        short = self.backbone.training and frames <= int(getattr(cfg, "mask_time_length", 0))
        before = getattr(cfg, "apply_spec_augment", False)
        if short:
            cfg.apply_spec_augment = False
        try:
            yield
        finally:
            cfg.apply_spec_augment = before

    def forward(
        self, waveforms: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = lengths.to(waveforms.device).clamp(min=self.min_samples)
        x = waveforms.float()
        if x.shape[1] < self.min_samples:  # zero-extend very short clips to one frame
            x = nn.functional.pad(x, (0, self.min_samples - x.shape[1]))
        if self.normalize:
            x = self._normalize(x, lengths)
        frames = self.backbone._get_feat_extract_output_lengths(lengths).to(torch.int64)
        # a frozen backbone runs without gradients; the layer weights below still get theirs
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.finetune):
            stacked = self._hidden_states(x, lengths, int(frames.max()))
        w = torch.softmax(self.layer_logits, dim=0).to(stacked.dtype)
        feats = torch.einsum("l,lbfh->bfh", w, stacked)
        return feats * frame_mask(frames, feats.shape[1])[:, :, None].to(feats.dtype), frames


ENCODERS: dict[str, type[Encoder]] = {
    LogMelEncoder.TYPE: LogMelEncoder,
    SSLEncoder.TYPE: SSLEncoder,
}


def resolve_encoder_config(config: dict[str, Any]) -> dict[str, Any]:
    """The complete config of an encoder (defaults filled in, `type` first checked)."""
    kind = config.get("type", LogMelEncoder.TYPE)
    if kind not in ENCODERS:
        raise SubmissionError(
            f"encoder config: unknown type '{kind}' (known: {', '.join(sorted(ENCODERS))})"
        )
    return ENCODERS[kind].resolve(config)


def build_encoder(config: dict[str, Any]) -> Encoder:
    """Rebuild an encoder from its `config` (as stored with a saved model)."""
    full = resolve_encoder_config(config)
    kwargs = {k: v for k, v in full.items() if k != "type"}
    return ENCODERS[full["type"]](**kwargs)
