"""Degradations of speech audio: noise, band limits, clipping, packet loss, reverberation and
lossy-codec round trips through ffmpeg, each a pure function of the audio, its parameters and a
seeded numpy Generator.

Why its own module: the demo corpus builds its systems from them (`data.corpora.demo`), and the
same operations make the label-free degraded copies a probe compares clean clips with, so one
definition serves both and a change to one is a change to both (the demo's generator version and
every cache keyed by these bytes must then move). numpy only (no scipy.signal: worker processes
skip a second of import), float64 in and out; nothing here reads or writes a corpus.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000
"""The rate every degradation assumes (the harness's canonical rate)."""


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def add_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator, pink: bool) -> np.ndarray:
    noise = rng.standard_normal(x.size)
    if pink:
        spec = np.fft.rfft(noise)
        freqs = np.fft.rfftfreq(x.size, 1.0 / SAMPLE_RATE)
        shape = np.zeros_like(freqs)
        shape[1:] = 1.0 / np.sqrt(freqs[1:])
        noise = np.fft.irfft(spec * shape, n=x.size)
    noise *= rms(x) / max(rms(noise), 1e-12) * 10 ** (-snr_db / 20)
    return x + noise


def bandlimit(x: np.ndarray, low_hz: float, high_hz: float, order: int = 8) -> np.ndarray:
    """Zero-phase Butterworth-magnitude band-pass applied in the FFT domain.

    Done with numpy alone so worker processes skip importing scipy.signal (about a second each).
    """
    n = fft_size(2 * x.size)
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    with np.errstate(divide="ignore"):
        high = 1.0 / np.sqrt(1.0 + (freqs / high_hz) ** (2 * order))
        low = 1.0 / np.sqrt(1.0 + (low_hz / freqs) ** (2 * order))
    return np.fft.irfft(np.fft.rfft(x, n) * high * low, n)[: x.size]


def lowpass(x: np.ndarray, cutoff_hz: float, order: int = 8) -> np.ndarray:
    """Zero-phase Butterworth-magnitude low-pass in the FFT domain (`bandlimit` without its low
    edge, which would divide by the zero frequency): -3 dB at `cutoff_hz`, -28 dB at 1.5 times it
    with order 8."""
    n = fft_size(2 * x.size)
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    gain = 1.0 / np.sqrt(1.0 + (freqs / cutoff_hz) ** (2 * order))
    return np.fft.irfft(np.fft.rfft(x, n) * gain, n)[: x.size]


def fft_size(n: int) -> int:
    """The power of two >= n: FFT lengths that are fast and, given enough padding, never wrap around."""
    return 1 << max(0, (n - 1).bit_length())


def hard_clip(x: np.ndarray, level: float) -> np.ndarray:
    peak = float(np.max(np.abs(x))) or 1.0
    threshold = level * peak
    return np.clip(x, -threshold, threshold)


def drop_packets(x: np.ndarray, loss: float, rng: np.random.Generator) -> np.ndarray:
    frame = SAMPLE_RATE // 50  # 20 ms, the usual VoIP packet
    n_frames = math.ceil(x.size / frame)
    lost = rng.random(n_frames) < loss
    y = x.copy()
    for i in np.flatnonzero(lost):
        y[i * frame : (i + 1) * frame] = 0.0
    return y


def reverb(x: np.ndarray, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """Convolve with exponentially decaying noise: a cheap stand-in for a room impulse response."""
    n = int(rt60 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    ir = rng.standard_normal(n) * np.exp(-6.908 * t / rt60)  # -60 dB at rt60
    # Reverberant-to-direct energy ratio grows with rt60 (about -2 dB at 0.3 s, +4 dB at 1.2 s).
    ir *= math.sqrt(2.0 * rt60) / max(rms(ir) * math.sqrt(n), 1e-12)
    ir[0] = 1.0
    tail = int(min(rt60, 0.5) * SAMPLE_RATE)
    size = fft_size(x.size + n - 1)
    wet = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(ir, size), size)
    return wet[: x.size + tail]


@dataclass(frozen=True)
class Codec:
    """One ffmpeg encode/decode round trip: encoder, container and bitrate in bit/s."""

    encoder: str
    container: str
    bitrate: int


def ffmpeg_round_trips(
    items: Sequence[tuple[np.ndarray, Codec]],
    workdir: Path,
    run_tool: Callable[[list[str]], bytes],
) -> list[np.ndarray]:
    """Encode every item and decode it back, using one ffmpeg process for each direction.

    ffmpeg's start-up costs more than coding a short sentence, so batching all round trips of a job
    into two processes roughly halves generation time. Outputs keep their input length, so
    durations stay comparable across systems.
    """
    if not items:
        return []
    base = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y"]
    exact = ["-flags", "+bitexact", "-fflags", "+bitexact"]
    encode, decode = list(base), list(base)
    for i, (x, _) in enumerate(items):
        sf.write(workdir / f"in{i}.wav", x.astype(np.float32), SAMPLE_RATE, subtype="FLOAT")
        encode += ["-i", str(workdir / f"in{i}.wav")]
    for i, (_, codec) in enumerate(items):
        coded = workdir / f"coded{i}.{codec.container}"
        encode += ["-map", f"{i}:a", "-threads", "1", "-ac", "1", "-ar", str(SAMPLE_RATE)]
        encode += ["-c:a", codec.encoder, "-b:a", str(codec.bitrate), *exact, str(coded)]
        decode += ["-i", str(coded)]
    for i in range(len(items)):
        decode += ["-map", f"{i}:a", "-threads", "1", "-ac", "1", "-ar", str(SAMPLE_RATE)]
        decode += [*exact, "-f", "f32le", str(workdir / f"decoded{i}.raw")]
    run_tool(encode)
    run_tool(decode)
    out = []
    for i, (x, _) in enumerate(items):
        pcm = np.fromfile(workdir / f"decoded{i}.raw", dtype="<f4").astype(np.float64)
        y = np.zeros(x.size)
        y[: min(x.size, pcm.size)] = pcm[: x.size]
        out.append(y)
    return out
