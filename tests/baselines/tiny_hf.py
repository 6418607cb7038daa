"""A tiny random wav2vec 2.0 configuration for tests that load HF models from a local folder."""

from __future__ import annotations

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
