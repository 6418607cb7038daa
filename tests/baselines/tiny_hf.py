"""A tiny random wav2vec 2.0 configuration for tests that load HF models from a local folder."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any


def tiny_wav2vec2_config(norm: str = "layer", **extra: Any) -> Any:
    """16-dim, 2 layers, 2 conv layers: loads and runs in milliseconds, offline."""
    from transformers import Wav2Vec2Config

    return Wav2Vec2Config(
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8, 8),
        conv_kernel=(10, 3),
        conv_stride=(5, 2),
        num_feat_extract_layers=2,
        feat_extract_norm=norm,
        do_stable_layer_norm=norm == "layer",
        num_conv_pos_embeddings=4,
        num_conv_pos_embedding_groups=2,
        **extra,
    )


QWEN2_AUDIO_SPECIALS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|AUDIO|>",
    "<|audio_bos|>",
    "<|audio_eos|>",
)


def save_tiny_qwen2_audio(folder: Any, seed: int = 0) -> None:
    """A random Qwen2-Audio (16-dim 1-layer audio encoder, 32-dim 2-layer Qwen2; weights drawn
    with std 0.3, not 0.02, so that its answer really depends on the audio) with its processor
    in `folder`: a byte-level BPE tokenizer without merges (so "A" is one token and "AB" two),
    built offline with `tokenizers`, and a Whisper feature extractor with a 2 s window (the
    encoder's input length follows it: 200 mel frames = 2 x max_source_positions)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import (
        PreTrainedTokenizerFast,
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        WhisperFeatureExtractor,
    )

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    backend = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(list(QWEN2_AUDIO_SPECIALS))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<|endoftext|>", eos_token="<|im_end|>"
    )
    extractor = WhisperFeatureExtractor(feature_size=16, chunk_length=2, sampling_rate=16000)
    Qwen2AudioProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    config = Qwen2AudioConfig(
        audio_config={
            "num_mel_bins": 16,
            "encoder_layers": 1,
            "encoder_attention_heads": 2,
            "encoder_ffn_dim": 32,
            "d_model": 16,
            "max_source_positions": 100,
            "initializer_range": 0.3,
        },
        text_config={
            "model_type": "qwen2",
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": 512,
            "initializer_range": 0.3,
        },
        audio_token_index=tokenizer.convert_tokens_to_ids("<|AUDIO|>"),
    )
    torch.manual_seed(seed)
    Qwen2AudioForConditionalGeneration(config).save_pretrained(folder)


def fake_hub_cache(cache: Path, repo_id: str, model_dir: Path, commit: str) -> Path:
    """A Hugging Face cache entry for `repo_id` as `snapshot_download` leaves it: blobs named by
    their sha256, snapshots/<commit>/ linking to them, refs/main naming the commit."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True)
    for f in sorted(model_dir.iterdir()):
        data = f.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / f.name).symlink_to(Path("../../blobs") / blob.name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot
