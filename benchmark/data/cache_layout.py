"""Where and how a task's resampled audio cache is laid out: its folder, rate, manifest name and
settings. Its own module, below both the cache builder (`audio_cache`) and the packed store it
keeps (`packed_audio`), which both read it.
"""

from __future__ import annotations

import hashlib
from typing import Any

CACHE_RATE = 16_000
CACHE_DIR = "audio-16k"
MANIFEST = "manifest.json"
CACHE_FORMAT_VERSION = 2
"""2: no PEAK chunk (it held the conversion time, so identical audio hashed differently)."""


def cached_name(clip_id: str) -> str:
    """The cache-relative path of a clip's resampled audio."""
    h = hashlib.sha256(clip_id.encode("utf-8")).hexdigest()[:32]
    return f"{CACHE_DIR}/{h[:2]}/{h}.wav"


def cache_settings(rate: int) -> dict[str, Any]:
    import soxr

    from benchmark.data.audio import PREPROCESSING_VERSION, preprocessing_config

    return {
        "cache_format_version": CACHE_FORMAT_VERSION,
        "preprocessing": preprocessing_config(rate),
        "preprocessing_version": PREPROCESSING_VERSION,
        "soxr_version": getattr(soxr, "__version__", "unknown"),
        "format": "WAV float32 mono",
        "rate": rate,
    }
