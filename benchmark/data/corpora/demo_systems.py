"""The demo corpus's systems: the degradation chains a rendering goes through, how each draws its
parameters per clip, and how much each impairs the listener model's expected quality.

Why its own module: this table is the demo's ground truth (what a reward model should learn to
hear), read on its own when someone asks why a demo clip got its MOS; the generator
(`data.corpora.demo`) runs it, the operations are `data.degrade`'s. Changing a number here
changes the corpus: bump `demo.GENERATOR_VERSION`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from benchmark.data.degrade import (
    Codec,
    add_noise,
    bandlimit,
    drop_packets,
    hard_clip,
    reverb,
)

Q_CLEAN = 4.3
"""Expected quality of an undegraded clip (espeak-ng is intelligible but clearly synthetic)."""


def _lerp(value: float, worst: float, best: float) -> float:
    """Where `value` lies between the mildest (`best`, 0) and harshest (`worst`, 1) setting."""
    return float(np.clip((value - best) / (worst - best), 0.0, 1.0))


Params = Mapping[str, float]
Stage = Callable[[np.ndarray, Params, np.random.Generator], np.ndarray]


def _identity(x: np.ndarray, p: Params, rng: np.random.Generator) -> np.ndarray:
    return x


@dataclass(frozen=True)
class System:
    """One degradation chain: how a clip draws its parameters, is processed and is impaired.

    Processing is `pre`, then the optional ffmpeg `codec` round trip, then `post`; the split exists
    only so that all codec round trips of a job can share ffmpeg processes. `impairment` maps the
    drawn parameters to the D term of the listener model (0 = transparent); it is linear in where
    each parameter lies inside its documented range.
    """

    index: int
    name: str
    description: str
    draw: Callable[[np.random.Generator], dict[str, float]]
    impairment: Callable[[Params], float]
    pre: Stage = _identity
    codec: Callable[[Params], Codec] | None = None
    post: Stage = _identity

    @property
    def system_id(self) -> str:
        return f"sys{self.index}-{self.name}"

    @property
    def needs_ffmpeg(self) -> bool:
        return self.codec is not None


def _u(rng: np.random.Generator, lo: float, hi: float, digits: int) -> float:
    """A uniform draw rounded so the parameter prints exactly in the manifest."""
    return round(float(rng.uniform(lo, hi)), digits)


SYSTEMS: tuple[System, ...] = (
    System(
        0,
        "clean",
        "no degradation",
        draw=lambda rng: {},
        impairment=lambda p: 0.0,
    ),
    System(
        1,
        "noise",
        "additive white noise, SNR uniform in [5, 20] dB",
        draw=lambda rng: {"snr_db": _u(rng, 5.0, 20.0, 2)},
        impairment=lambda p: 0.25 + 1.15 * _lerp(p["snr_db"], 5.0, 20.0),
        pre=lambda x, p, rng: add_noise(x, p["snr_db"], rng, pink=False),
    ),
    System(
        2,
        "narrowband",
        "zero-phase 8th-order Butterworth-magnitude band-pass from 300 Hz to an upper edge "
        "uniform in [2400, 3600] Hz",
        draw=lambda rng: {"high_hz": _u(rng, 2400.0, 3600.0, 0)},
        impairment=lambda p: 0.3 + 0.5 * _lerp(p["high_hz"], 2400.0, 3600.0),
        pre=lambda x, p, rng: bandlimit(x, 300.0, p["high_hz"]),
    ),
    System(
        3,
        "codec",
        "Opus (libopus) encode/decode at a bitrate uniform in [6, 14] kbps",
        draw=lambda rng: {"kbps": _u(rng, 6.0, 14.0, 1)},
        impairment=lambda p: 0.25 + 0.85 * _lerp(p["kbps"], 6.0, 14.0),
        codec=lambda p: Codec("libopus", "ogg", int(round(p["kbps"] * 1000))),
    ),
    System(
        4,
        "clipping",
        "hard clipping at a level uniform in [0.03, 0.3] of the peak",
        draw=lambda rng: {"level": _u(rng, 0.03, 0.3, 4)},
        impairment=lambda p: (
            0.2 + 1.0 * _lerp(math.log10(p["level"]), math.log10(0.03), math.log10(0.3))
        ),
        pre=lambda x, p, rng: hard_clip(x, p["level"]),
    ),
    System(
        5,
        "packetloss",
        "20 ms frames zeroed independently at a loss rate uniform in [3, 25] %",
        draw=lambda rng: {"loss": _u(rng, 0.03, 0.25, 4)},
        impairment=lambda p: 0.2 + 1.2 * _lerp(p["loss"], 0.25, 0.03),
        pre=lambda x, p, rng: drop_packets(x, p["loss"], rng),
    ),
    System(
        6,
        "reverb",
        "convolution with a decaying-noise room response, RT60 uniform in [0.3, 1.2] s",
        draw=lambda rng: {"rt60": _u(rng, 0.3, 1.2, 3)},
        impairment=lambda p: 0.15 + 0.85 * _lerp(p["rt60"], 1.2, 0.3),
        pre=lambda x, p, rng: reverb(x, p["rt60"], rng),
    ),
    System(
        7,
        "combo",
        "pink noise (SNR uniform in [5, 15] dB), then MP3 (libmp3lame) at 8 kbps, "
        "then 20 ms packet loss uniform in [2, 10] %",
        draw=lambda rng: {
            "snr_db": _u(rng, 5.0, 15.0, 2),
            "kbps": 8.0,
            "loss": _u(rng, 0.02, 0.1, 4),
        },
        impairment=lambda p: (
            (0.4 + 0.8 * _lerp(p["snr_db"], 5.0, 15.0))
            + 0.6
            + (0.1 + 0.6 * _lerp(p["loss"], 0.1, 0.02))
        ),
        pre=lambda x, p, rng: add_noise(x, p["snr_db"], rng, pink=True),
        codec=lambda p: Codec("libmp3lame", "mp3", int(round(p["kbps"] * 1000))),
        post=lambda x, p, rng: drop_packets(x, p["loss"], rng),
    ),
)
"""The systems; `sys0-clean` is transparent and `sys7-combo` the heaviest on average."""

_SYSTEM_BY_NAME = {s.name: s for s in SYSTEMS} | {s.system_id: s for s in SYSTEMS}


def expected_quality(impairment: float) -> float:
    """Listener-model expected MOS before content effects: 4.3 when clean, ~1.5 at D ~ 1.8.

    The exponential keeps stacked impairments from driving the score below the ACR floor of 1.
    """
    return 1.0 + (Q_CLEAN - 1.0) * math.exp(-impairment)
