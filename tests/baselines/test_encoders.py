"""Encoders: shapes, padding masking (batch 1 vs batch N, extra padding), config round trips,
the log-mel front end against librosa, and the SSL encoder on tiny random models saved locally."""

from __future__ import annotations

import json

import librosa
import numpy as np
import pytest
import torch

from benchmark.baselines.encoders import (
    LogMelEncoder,
    SSLEncoder,
    build_encoder,
    frame_mask,
    resolve_encoder_config,
)
from benchmark.errors import SubmissionError

TOL = 1e-5
LENGTHS = [48000, 800, 16000, 1, 0, 20111]  # 3 s down to empty: very different padding


def _batch(lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(len(lengths), max(lengths))
    for i, n in enumerate(lengths):
        t = torch.arange(n) / 16000
        x[i, :n] = 0.3 * torch.sin(2 * torch.pi * (150 + 40 * i) * t) + 0.05 * torch.randn(
            n, generator=g
        )
    return x, torch.tensor(lengths, dtype=torch.int64)


def _assert_batch_invariant(encoder: torch.nn.Module, lengths: list[int]) -> None:
    x, n = _batch(lengths)
    with torch.no_grad():
        feats, frames = encoder(x, n)
        assert feats.shape[0] == len(lengths) and feats.shape[1] == int(frames.max())
        assert bool((frames >= 1).all())
        for i, length in enumerate(lengths):
            alone, alone_frames = encoder(x[i : i + 1, :length], n[i : i + 1])
            f = int(frames[i])
            assert int(alone_frames[0]) == f and alone.shape[1] == f
            torch.testing.assert_close(feats[i, :f], alone[0], atol=TOL, rtol=0)
            assert bool((feats[i, f:] == 0).all()), "padded frames must be zero"
        # more zero padding than the longest clip needs changes nothing either
        wider = torch.nn.functional.pad(x, (0, 3217))
        feats2, frames2 = encoder(wider, n)
        assert torch.equal(frames2, frames)
        torch.testing.assert_close(feats2[:, : feats.shape[1]], feats, atol=TOL, rtol=0)


# ------------------------------------------------------------------------- log-mel


def test_logmel_shapes_and_frame_lengths():
    enc = LogMelEncoder().eval()
    x, n = _batch([48000, 16000])
    feats, frames = enc(x, n)
    # 1 + n // 160 frames, then strides 1, 2, 2, 1: ceil(ceil(f / 2) / 2)
    assert frames.tolist() == [76, 26]
    assert feats.shape == (2, 76, 128) and feats.dtype == torch.float32
    assert enc.output_dim == 128 and enc.sample_rate == 16000


def test_logmel_is_batch_size_and_padding_invariant():
    torch.manual_seed(0)
    _assert_batch_invariant(LogMelEncoder().eval(), LENGTHS)


def test_logmel_invariant_for_other_strides_and_kernels():
    torch.manual_seed(1)
    enc = LogMelEncoder(n_mels=40, channels=[32, 32, 48], kernel_size=4, strides=[3, 1, 2])
    _assert_batch_invariant(enc.eval(), [333, 31999, 160, 161, 4000])


def test_logmel_matches_librosa_melspectrogram():
    enc = LogMelEncoder()
    x, n = _batch([12345])
    logmel, frames = enc.log_mel(x, n)
    ref = librosa.feature.melspectrogram(
        y=x[0].numpy().astype(np.float64),
        sr=16000,
        n_fft=400,
        hop_length=160,
        n_mels=64,
        center=True,
        pad_mode="constant",
        power=2.0,
    )
    expected = (np.log(ref + enc.LOG_EPS) + enc.LOG_SHIFT) / enc.LOG_SCALE
    assert int(frames[0]) == ref.shape[1] == 1 + 12345 // 160
    np.testing.assert_allclose(logmel[0].numpy(), expected, atol=2e-4)


def test_logmel_config_round_trips_through_json():
    enc = LogMelEncoder(n_mels=40, channels=(32, 64), strides=(1, 2))
    cfg = json.loads(json.dumps(enc.config))
    assert cfg == enc.config and cfg["type"] == "logmel" and cfg["channels"] == [32, 64]
    again = build_encoder(cfg)
    assert again.config == enc.config
    assert [p.shape for p in again.parameters()] == [p.shape for p in enc.parameters()]
    assert resolve_encoder_config({"type": "logmel"}) == LogMelEncoder().config


def test_logmel_mel_and_window_are_not_saved():
    assert all(k.startswith("blocks.") for k in LogMelEncoder().state_dict())


def test_encoder_config_errors_are_one_line():
    with pytest.raises(SubmissionError, match="unknown key 'n_mel'") as e1:
        resolve_encoder_config({"type": "logmel", "n_mel": 80})
    with pytest.raises(SubmissionError, match="unknown type 'cnn'") as e2:
        build_encoder({"type": "cnn"})
    with pytest.raises(SubmissionError, match="same, non-zero length") as e3:
        LogMelEncoder(channels=[8, 8], strides=[1])
    with pytest.raises(SubmissionError, match="needs 'source'") as e4:
        resolve_encoder_config({"type": "ssl"})
    for e in (e1, e2, e3, e4):
        assert "\n" not in str(e.value)


def test_frame_mask():
    assert frame_mask(torch.tensor([0, 2, 3]), 3).tolist() == [
        [False, False, False],
        [True, True, False],
        [True, True, True],
    ]


# ------------------------------------------------------------------------- SSL (tiny, local)

TINY = {
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "conv_dim": (16, 16, 16),
    "conv_stride": (5, 4, 4),
    "conv_kernel": (10, 4, 4),
    "num_feat_extract_layers": 3,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
}
# per-frame LayerNorm in the CNN extractor (the large checkpoints' layout): padding-invariant
STABLE = {"feat_extract_norm": "layer", "do_stable_layer_norm": True}
# GroupNorm over time in the first conv (base checkpoints): reads padding, so run clip by clip
GROUP = {"feat_extract_norm": "group", "do_stable_layer_norm": False}


def save_tiny(folder, kind: str = "wav2vec2", **norm) -> str:
    """A random-initialised tiny model written with save_pretrained (no network anywhere)."""
    from transformers import AutoModel, Wav2Vec2Config, WavLMConfig

    cls = {"wav2vec2": Wav2Vec2Config, "wavlm": WavLMConfig}[kind]
    torch.manual_seed(0)
    AutoModel.from_config(cls(**TINY, **(norm or STABLE))).save_pretrained(folder)
    return str(folder)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


# WavLM's own attention mixes a bool padding mask with its float position bias (a torch warning)
@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")
@pytest.mark.parametrize(
    "kind,norm",
    [("wav2vec2", STABLE), ("wavlm", STABLE), ("wav2vec2", GROUP)],
    ids=["wav2vec2-layer", "wavlm-layer", "wav2vec2-group"],
)
def test_ssl_shapes_and_batch_invariance(tmp_path, kind, norm):
    enc = SSLEncoder(save_tiny(tmp_path / "m", kind, **norm)).eval()
    assert enc.per_clip == (norm is GROUP)
    assert enc.output_dim == 16 and enc.min_samples == 10 + 5 * (4 + 4 * 3 - 1)  # 85 samples
    x, n = _batch([16000, 3000, 9000])
    feats, frames = enc(x, n)
    assert frames.tolist() == enc.backbone._get_feat_extract_output_lengths(n).tolist()
    assert feats.shape == (3, int(frames.max()), 16)
    _assert_batch_invariant(enc, [16000, 3000, 9000, 40, 0])


def test_group_norm_backbone_batched_would_read_padding(tmp_path):
    """Why `per_clip` exists: the same backbone run batched changes a short clip's features."""
    enc = SSLEncoder(save_tiny(tmp_path / "m", "wav2vec2", **GROUP)).eval()
    x, n = _batch([16000, 3000])
    mask = frame_mask(n, x.shape[1]).long()
    with torch.no_grad():
        batched = enc.backbone(x, attention_mask=mask).last_hidden_state
        alone = enc.backbone(x[1:2, :3000]).last_hidden_state
    f = alone.shape[1]
    assert (batched[1, :f] - alone[0]).abs().max() > 1e-2


def test_ssl_normalize_is_masked(tmp_path):
    enc = SSLEncoder(save_tiny(tmp_path / "m"), normalize=True).eval()
    _assert_batch_invariant(enc, [16000, 2500, 7000])
    x, n = _batch([4000, 2000])
    y = enc._normalize(x, n)
    assert abs(float(y[1, :2000].mean())) < 1e-5 and abs(float(y[1, :2000].std()) - 1) < 1e-3
    assert bool((y[1, 2000:] == 0).all())


@pytest.mark.parametrize("do_normalize", [True, False])
def test_ssl_normalize_auto_follows_the_models_feature_extractor(tmp_path, do_normalize):
    """`normalize: auto` (the default) is what the checkpoint's preprocessor_config.json says, and
    the normalised input is its feature extractor's, to 1e-5, on the valid samples of a batch."""
    from transformers import Wav2Vec2FeatureExtractor

    folder = save_tiny(tmp_path / "m")
    fe = Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=do_normalize)
    fe.save_pretrained(folder)
    enc = SSLEncoder(folder)
    assert enc.normalize is do_normalize and enc.config["normalize"] is do_normalize
    x, n = _batch([4000, 2000])
    x = 0.2 * x + 0.3  # a DC offset and scale the normalisation must remove
    y = enc._normalize(x, n) if enc.normalize else x
    for i, k in enumerate(n.tolist()):
        want = fe(x[i, :k].numpy(), sampling_rate=16000, return_tensors="pt").input_values[0]
        assert (y[i, :k] - want).abs().max() <= 1e-5
    with pytest.raises(SubmissionError, match="normalize must be true, false or 'auto'"):
        SSLEncoder(folder, normalize="yes")


def test_ssl_frozen_trains_only_layer_weights(tmp_path):
    enc = SSLEncoder(save_tiny(tmp_path / "m"))
    enc.train()
    assert not enc.backbone.training, "a frozen backbone stays in eval mode (no dropout)"
    assert not any(p.requires_grad for p in enc.backbone.parameters())
    assert enc.frozen_prefixes() == ("backbone.",)
    x, n = _batch([8000, 4000])
    feats, _ = enc(x, n)
    feats.square().sum().backward()
    assert enc.layer_logits.grad is not None and enc.layer_logits.grad.abs().sum() > 0


def test_ssl_finetune_trains_transformer_not_cnn(tmp_path):
    enc = SSLEncoder(save_tiny(tmp_path / "m"), finetune=True)
    enc.train()
    assert enc.backbone.training and enc.frozen_prefixes() == ()
    trainable = {k for k, p in enc.backbone.named_parameters() if p.requires_grad}
    assert trainable and not any(k.startswith("feature_extractor.") for k in trainable)
    assert any(k.startswith("encoder.layers.") for k in trainable)


def test_ssl_config_rebuilds(tmp_path):
    enc = SSLEncoder(save_tiny(tmp_path / "m"))
    cfg = json.loads(json.dumps(enc.config))
    assert cfg == {
        "type": "ssl",
        "source": str(tmp_path / "m"),
        "finetune": False,
        "normalize": False,
        "sample_rate": 16000,
        "revision": None,
        "sha256": None,
    }
    assert isinstance(build_encoder(cfg), SSLEncoder)


def test_ssl_missing_local_folder_is_one_line_error(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(SubmissionError) as exc:
        SSLEncoder(str(missing))
    msg = str(exc.value)
    assert str(missing) in msg and "not found" in msg and "\n" not in msg


def test_ssl_folder_without_model_is_one_line_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SubmissionError) as exc:
        SSLEncoder(str(tmp_path / "empty"))
    assert str(tmp_path / "empty") in str(exc.value) and "\n" not in str(exc.value)


def test_a_backbone_source_cannot_leave_the_submission_folder(tmp_path):
    """Weights metadata or params naming a local backbone outside the submission folder are
    refused (the fingerprint would not cover it); a hub id and an inside folder pass."""
    from benchmark.baselines.encoders import confined_source
    from benchmark.errors import SubmissionError

    sub = tmp_path / "sub"
    (sub / "encoder").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    assert confined_source("microsoft/wavlm-base", sub, "x") == "microsoft/wavlm-base"
    assert confined_source("encoder", sub, "x") == str((sub / "encoder").resolve())
    assert confined_source(str(sub / "encoder"), sub, "x") == str((sub / "encoder").resolve())
    for bad in (str(tmp_path / "elsewhere"), "../elsewhere", "./../elsewhere"):
        with pytest.raises(SubmissionError, match="outside the submission folder") as err:
            confined_source(bad, sub, "sub/model.safetensors")
        assert "\n" not in str(err.value)


def test_finetuning_survives_layerdrop_and_clips_shorter_than_a_spec_augment_mask(tmp_path):
    """Checkpoints ship LayerDrop and SpecAugment (wav2vec2-base: 0.1 and 0.05 x 10 frames): in
    training mode the first dropped layers from the hidden states the layer weights mix, the
    second raised on a clip shorter than one mask."""
    from transformers import AutoModel, Wav2Vec2Config

    cfg = Wav2Vec2Config(**TINY, **STABLE, layerdrop=0.9, mask_time_prob=0.5, mask_time_length=10)
    torch.manual_seed(0)
    AutoModel.from_config(cfg).save_pretrained(tmp_path / "m")
    enc = SSLEncoder(str(tmp_path / "m"), finetune=True).train()
    for n in (800, 8000):  # 9 frames (< one mask), then 99 (masked)
        for _ in range(5):  # LayerDrop 0.9 would drop a layer in nearly every call
            feats, frames = enc(torch.randn(2, n), torch.tensor([n, n - 100]))
            assert feats.shape[0] == 2 and torch.isfinite(feats).all()
    assert enc.backbone.config.apply_spec_augment  # restored after the short batch
    frozen = SSLEncoder(str(tmp_path / "m"))
    assert frozen.backbone.config.layerdrop == 0.9  # only fine-tuning changes it (eval ignores it)
