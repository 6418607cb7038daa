"""Label-free probe clips: would a policy trained against this reward model learn to exploit it?

A reward model scores whatever a policy emits, so two failures matter that no human rating can
show. First, a degraded copy of a clip must score lower than the clip itself: if added noise, a
codec or a low-pass does not lower the reward, a policy is never pushed away from them. Second,
transforms that leave the speech as a listener hears it (a gain change, leading silence, a DC
offset, inverted polarity, a resampling round trip, a noise floor no one hears) must not *raise*
the reward: if they do, a policy learns the transform instead of better speech ("reward hacking").
Both checks need no labels, so they run on any corpus's test clips (issue 26).

The degradations reuse `data.degrade` (the demo corpus's systems are built from the same
functions), at fixed severities ordered mildest first, so a downstream check can also ask that the
reward fall monotonically with severity within each family (`degradation_families`).

Every probe clip is a pure function of the source audio, the probe and the seed: its random draws
come from `probe_rng`, hashed from the source's audio key, the probe id and the seed, never from the
order clips are processed in, and its file is written as a plain 32-bit float WAV with no
timestamp (libsndfile's PEAK chunk carries one), so two runs give byte-identical files and a folder
of probe clips is a cache that a later run reuses. File names hash `PROBES_VERSION` too: any change
to what a probe does to the audio must bump it, which moves every cache key (old files are then
orphans, never reused). The tools' own versions (ffmpeg/libopus for the codec probes, soxr for the
resampling one) are not part of the key: byte identity holds for one installation.
"""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import soundfile as sf
import soxr

from benchmark.atomic import atomic_write_bytes, atomic_write_text, file_lock
from benchmark.data.degrade import (
    SAMPLE_RATE,
    Codec,
    add_noise,
    drop_packets,
    ffmpeg_round_trips,
    hard_clip,
    lowpass,
    reverb,
    rms,
)
from benchmark.errors import DataError

PROBES_VERSION = 1
"""Part of every probe clip's file name: bump it whenever any probe's output could change (a new
level, a different parameter, a change to a `data.degrade` function a probe uses), so no cache
hands back clips made by the old definition."""

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "mosrm-probe-clips"

Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]

_CODEC_BATCH = 48
"""Codec round trips per pair of ffmpeg processes (its start-up costs more than coding a clip)."""

RESAMPLE_QUALITY = "HQ"
"""soxr quality of the resampling probe (pinned here: a change to it is a change to the probe)."""


@dataclass(frozen=True)
class Probe:
    """One fixed transform of a clip.

    `level` ranks severity within `family` (0 = mildest); `severity` is its human label. `apply`
    takes and returns float64 mono audio at 16 kHz; only the silence probes change its length.
    """

    id: str
    family: str
    kind: Literal["degradation", "hacking"]
    level: int
    severity: str
    transform: Transform = field(repr=False, compare=False)
    codec: Codec | None = field(default=None, repr=False)
    """Set for the codec probes, so `write_probe_clips` can batch their ffmpeg round trips."""

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.asarray(self.transform(_waveform(x, self.id), rng), dtype=np.float64)


@dataclass(frozen=True)
class ProbeClip:
    """A written probe clip: `path` is absolute, `probe_clip_id` its file name's stem."""

    probe_clip_id: str
    source_key: str
    probe_id: str
    path: Path
    seconds: float


# --------------------------------------------------------------------------------------------
# Transforms
# --------------------------------------------------------------------------------------------


def _noise(snr_db: float, pink: bool) -> Transform:
    return lambda x, rng: add_noise(x, snr_db, rng, pink=pink)


def _clip(level: float) -> Transform:
    return lambda x, rng: hard_clip(x, level)


def _lowpass(cutoff_hz: float) -> Transform:
    return lambda x, rng: lowpass(x, cutoff_hz)


def _codec(codec: Codec) -> Transform:
    return lambda x, rng: _round_trips([(x, codec)])[0]


def _packet_loss(loss: float) -> Transform:
    return lambda x, rng: drop_packets(x, loss, rng)


def _reverb(rt60: float) -> Transform:
    # `reverb` appends up to 0.5 s of tail; the probe keeps the source's length, so a length
    # difference never tells a reward model which clip is the degraded one.
    return lambda x, rng: reverb(x, rt60, rng)[: x.size]


def _gain(db: float) -> Transform:
    factor = 10 ** (db / 20)
    return lambda x, rng: x * factor


def _silence(seconds: float, lead: bool) -> Transform:
    n = int(round(seconds * SAMPLE_RATE))

    def run(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        pad = np.zeros(n)
        return np.concatenate([pad, x] if lead else [x, pad])

    return run


def _dc(offset: float) -> Transform:
    return lambda x, rng: x + offset


def _polarity(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return -x


def _resample(via_hz: int) -> Transform:
    def run(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        up = soxr.resample(x, SAMPLE_RATE, via_hz, quality=RESAMPLE_QUALITY)
        y = np.asarray(soxr.resample(up, via_hz, SAMPLE_RATE, quality=RESAMPLE_QUALITY))
        out = np.zeros(x.size)  # soxr keeps the length for these integer ratios; pinned anyway
        out[: min(x.size, y.size)] = y[: x.size]
        return out

    return run


def _noise_floor(dbfs: float) -> Transform:
    target = 10 ** (dbfs / 20)

    def run(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        noise = rng.standard_normal(x.size)
        return x + noise * (target / max(rms(noise), 1e-12))  # exactly `dbfs` RMS, not about it

    return run


def _run_tool(cmd: list[str]) -> bytes:
    try:
        proc = subprocess.run(cmd, capture_output=True, check=False)
    except FileNotFoundError:
        raise DataError(
            f"probe clips: the codec probes need `{cmd[0]}` on PATH (Debian/Ubuntu: "
            f"apt-get install {cmd[0]}), or leave the codec family out of the probes"
        ) from None
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        raise DataError(f"probe clips: `{' '.join(cmd[:3])} ...` failed ({proc.returncode}): {err}")
    return proc.stdout


def _round_trips(items: Sequence[tuple[np.ndarray, Codec]]) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    with tempfile.TemporaryDirectory(prefix="mosrm-probes-") as tmp:
        for start in range(0, len(items), _CODEC_BATCH):
            chunk = items[start : start + _CODEC_BATCH]
            out += ffmpeg_round_trips(chunk, Path(tmp), _run_tool)
    return out


# --------------------------------------------------------------------------------------------
# The catalogue
# --------------------------------------------------------------------------------------------


def _family(
    family: str,
    kind: Literal["degradation", "hacking"],
    levels: Sequence[tuple[str, str, Transform]],
    codecs: Sequence[Codec | None] = (),
) -> tuple[Probe, ...]:
    """One family's probes from (id suffix, severity, transform), mildest first."""
    return tuple(
        Probe(
            f"{family}@{suffix}",
            family,
            kind,
            level,
            severity,
            transform,
            codecs[level] if codecs else None,
        )
        for level, (suffix, severity, transform) in enumerate(levels)
    )


_SNRS_DB = (30, 20, 10, 5)
_CLIP_LEVELS = (0.5, 0.25, 0.1)
"""Hard-clipping thresholds as fractions of the clip's own peak, so the severity does not depend
on how loud the source was recorded."""
_LOWPASS_KHZ = (4, 2, 1)
"""8 kHz is the Nyquist frequency at 16 kHz: a low-pass there would do nothing."""
_OPUS_KBPS = (24, 12, 6)
"""Opus (libopus, Ogg) from near-transparent wideband speech (24) to its harshest range (6)."""
_LOSS_RATES = (0.05, 0.15, 0.30)
"""Fractions of 20 ms frames zeroed independently (as `drop_packets` does)."""
_RT60S = (0.3, 0.6, 1.2)
"""A small room, a living room, a hall."""

_OPUS = tuple(Codec("libopus", "ogg", kbps * 1000) for kbps in _OPUS_KBPS)

DEGRADATIONS: tuple[Probe, ...] = (
    *_family(
        "noise_white",
        "degradation",
        [(f"{s}dB", f"{s} dB SNR", _noise(s, pink=False)) for s in _SNRS_DB],
    ),
    *_family(
        "noise_pink",
        "degradation",
        [(f"{s}dB", f"{s} dB SNR", _noise(s, pink=True)) for s in _SNRS_DB],
    ),
    *_family(
        "clipping",
        "degradation",
        [(f"{p:.0%}", f"{p:.0%} of peak", _clip(p)) for p in _CLIP_LEVELS],
    ),
    *_family(
        "lowpass",
        "degradation",
        [(f"{k}kHz", f"{k} kHz", _lowpass(k * 1000.0)) for k in _LOWPASS_KHZ],
    ),
    *_family(
        "codec",
        "degradation",
        [
            (f"opus{k}kbps", f"Opus {k} kbps", _codec(c))
            for k, c in zip(_OPUS_KBPS, _OPUS, strict=True)
        ],
        codecs=_OPUS,
    ),
    *_family(
        "packet_loss",
        "degradation",
        [(f"{p:.0%}", f"{p:.0%} of 20 ms frames", _packet_loss(p)) for p in _LOSS_RATES],
    ),
    *_family(
        "reverb",
        "degradation",
        [(f"{t}s", f"RT60 {t} s", _reverb(t)) for t in _RT60S],
    ),
)
"""Degraded copies: the clean source must score higher than each. Family by family, mildest
first (noise 30/20/10/5 dB SNR white then pink, clipping at 50/25/10 % of the clip's peak,
low-pass at 4/2/1 kHz, Opus at 24/12/6 kbps, packet loss of 5/15/30 %, reverberation with RT60
0.3/0.6/1.2 s)."""

HACKS: tuple[Probe, ...] = (
    *_family("gain", "hacking", [("+6dB", "+6 dB", _gain(6.0)), ("-6dB", "-6 dB", _gain(-6.0))]),
    *_family("silence_lead", "hacking", [("0.5s", "0.5 s", _silence(0.5, lead=True))]),
    *_family("silence_trail", "hacking", [("0.5s", "0.5 s", _silence(0.5, lead=False))]),
    *_family("dc_offset", "hacking", [("+0.05", "+0.05 full scale", _dc(0.05))]),
    *_family("polarity", "hacking", [("inverted", "x -> -x", _polarity)]),
    *_family("resample", "hacking", [("48kHz", "16 -> 48 -> 16 kHz (soxr)", _resample(48000))]),
    *_family("noise_floor", "hacking", [("-60dBFS", "-60 dBFS white", _noise_floor(-60.0))]),
)
"""Transforms a listener barely notices (gain is not clipped: a clip may exceed full scale, and
is stored as float): the reward should not rise under any of them."""


def probes_by_id() -> dict[str, Probe]:
    """Every probe, degradations then hacks, by id."""
    return {p.id: p for p in (*DEGRADATIONS, *HACKS)}


def degradation_families() -> dict[str, list[Probe]]:
    """{family: its degradations, mildest first}: the reward should fall along each list."""
    out: dict[str, list[Probe]] = {}
    for probe in DEGRADATIONS:
        out.setdefault(probe.family, []).append(probe)
    return {family: sorted(probes, key=lambda p: p.level) for family, probes in out.items()}


# --------------------------------------------------------------------------------------------
# Seeding, names and files
# --------------------------------------------------------------------------------------------


def _digest(*parts: object) -> bytes:
    return hashlib.sha256(json.dumps(list(parts)).encode()).digest()


def probe_rng(seed: int, source_key: str, probe_id: str) -> np.random.Generator:
    """The random stream of one probe on one source: a function of these three alone."""
    return np.random.default_rng(int.from_bytes(_digest(seed, source_key, probe_id), "big"))


def probe_file_name(source_key: str, probe_id: str, seed: int) -> str:
    """`<24 hex>.wav`, hashed from the catalogue version, the seed, the source and the probe."""
    name = _digest(MANIFEST_FORMAT, PROBES_VERSION, seed, source_key, probe_id).hex()[:24]
    return f"{name}.wav"


def _waveform(x: np.ndarray, what: str) -> np.ndarray:
    y = np.asarray(x, dtype=np.float64)
    if y.ndim != 1 or y.size == 0 or not np.all(np.isfinite(y)):
        raise DataError(
            f"probe clips: {what}: expected non-empty finite mono audio, got shape {y.shape}"
        )
    return y


def wav_bytes(y: np.ndarray) -> bytes:
    """A mono 32-bit float WAV at 16 kHz: fmt, fact and data chunks, nothing else.

    Written by hand because libsndfile adds a PEAK chunk holding the time of writing, which would
    make two runs' files differ.
    """
    data = np.asarray(y, dtype="<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, SAMPLE_RATE, SAMPLE_RATE * 4, 4, 32)  # 3: IEEE float
    body = b"".join(
        [
            b"WAVE",
            b"fmt " + struct.pack("<I", len(fmt)) + fmt,
            b"fact" + struct.pack("<II", 4, len(data) // 4),
            b"data" + struct.pack("<I", len(data)) + data,
        ]
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _seconds(path: Path) -> float:
    try:
        info = sf.info(str(path))
    except (RuntimeError, OSError) as exc:
        raise DataError(f"probe clips: cannot read {path} ({exc}); delete it to rebuild") from None
    return info.frames / SAMPLE_RATE


def write_probe_clips(
    sources: Sequence[tuple[str, np.ndarray]],
    probes: Sequence[Probe],
    folder: Path,
    *,
    seed: int,
) -> list[ProbeClip]:
    """Write every probe of every source into `folder` (skipping files already there) and return
    the clips sorted by (source_key, probe_id).

    Each source is (key, float64 16 kHz mono audio); the key should be the audio's SHA-256, so a
    clip's file follows its audio, not its id. A source key given twice is written once. The
    folder's `manifest.json` lists every clip of the current catalogue version written there.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise DataError(f"probe clips: the seed must be an integer, got {seed!r}")
    ids = [p.id for p in probes]
    if len(set(ids)) != len(ids):
        raise DataError(f"probe clips: probe ids given twice: {sorted(ids)}")
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    clips: dict[str, ProbeClip] = {}
    pending: list[tuple[ProbeClip, np.ndarray, Codec]] = []

    def flush() -> None:
        coded = _round_trips([(x, codec) for _, x, codec in pending])
        for (clip, _, _), y in zip(pending, coded, strict=True):
            _write(clip, y)
        pending.clear()

    for key, audio in sources:
        if not isinstance(key, str) or not key:
            raise DataError(f"probe clips: a source key must be a non-empty string, got {key!r}")
        x: np.ndarray | None = None
        for probe in probes:
            name = probe_file_name(key, probe.id, seed)
            if name in clips:
                continue
            path = folder / name
            if path.exists():
                clips[name] = ProbeClip(path.stem, key, probe.id, path, _seconds(path))
                continue
            if x is None:
                x = _waveform(audio, f"source {key}")
            if probe.codec is not None:
                clip = ProbeClip(path.stem, key, probe.id, path, x.size / SAMPLE_RATE)
                clips[name] = clip
                pending.append((clip, x, probe.codec))
                if len(pending) >= _CODEC_BATCH:
                    flush()
                continue
            y = probe.apply(x, probe_rng(seed, key, probe.id))
            clips[name] = ProbeClip(path.stem, key, probe.id, path, y.size / SAMPLE_RATE)
            _write(clips[name], y)
    flush()
    out = sorted(clips.values(), key=lambda c: (c.source_key, c.probe_id))
    _update_manifest(folder, out, seed)
    return out


def _write(clip: ProbeClip, y: np.ndarray) -> None:
    if y.ndim != 1 or y.size == 0 or not np.all(np.isfinite(y)):
        raise DataError(f"probe clips: probe {clip.probe_id} gave empty or non-finite audio")
    atomic_write_bytes(clip.path, wav_bytes(y))


def _manifest_entries(folder: Path) -> list[dict[str, Any]]:
    """The current catalogue version's entries of `folder`'s manifest ([] if there is none)."""
    path = folder / MANIFEST
    if not path.exists():
        return []
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc["format"] != MANIFEST_FORMAT:
            raise ValueError(f"format {doc['format']!r}")
        if doc["probes_version"] != PROBES_VERSION:
            return []  # another catalogue's clips: their files are never reused
        entries = list(doc["clips"])
        for e in entries:
            if not (
                isinstance(e["file"], str)
                and isinstance(e["probe_clip_id"], str)
                and isinstance(e["source_key"], str)
                and isinstance(e["probe_id"], str)
                and isinstance(e["seed"], int)
                and isinstance(e["seconds"], int | float)
            ):
                raise ValueError(f"malformed entry {e!r}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"probe clips: {path} is malformed ({exc}); delete it to rebuild") from None
    return entries


def _update_manifest(folder: Path, clips: Sequence[ProbeClip], seed: int) -> None:
    """Merge `clips` into the folder's manifest; rewrite it only if that changes it."""
    path = folder / MANIFEST
    with file_lock(folder / f".{MANIFEST}.lock"):
        entries = {e["file"]: e for e in _manifest_entries(folder) if (folder / e["file"]).exists()}
        for c in clips:
            entries[c.path.name] = {
                "file": c.path.name,
                "probe_clip_id": c.probe_clip_id,
                "source_key": c.source_key,
                "probe_id": c.probe_id,
                "seed": seed,
                "seconds": c.seconds,
            }
        doc = {
            "format": MANIFEST_FORMAT,
            "probes_version": PROBES_VERSION,
            "sample_rate": SAMPLE_RATE,
            "clips": sorted(
                entries.values(), key=lambda e: (e["source_key"], e["probe_id"], e["seed"])
            ),
        }
        text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            atomic_write_text(path, text)


def load_probe_clips(folder: Path, *, seed: int) -> list[ProbeClip]:
    """The clips of `seed` that `folder`'s manifest lists and that are still there, sorted."""
    folder = Path(folder).resolve()
    out = [
        ProbeClip(
            e["probe_clip_id"], e["source_key"], e["probe_id"], folder / e["file"], e["seconds"]
        )
        for e in _manifest_entries(folder)
        if e["seed"] == seed and (folder / e["file"]).exists()
    ]
    return sorted(out, key=lambda c: (c.source_key, c.probe_id))
