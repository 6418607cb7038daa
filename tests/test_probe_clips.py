"""The probe clips of issue 26: each degradation does what its label says, each hacking transform
is the exact operation it names, and a folder of probe clips is a deterministic cache (a clip is a
function of the source audio's key, the probe and the seed alone)."""

from __future__ import annotations

import functools
import json
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from benchmark.data import probes as probes_mod
from benchmark.data.degrade import SAMPLE_RATE, rms
from benchmark.data.probes import (
    DEGRADATIONS,
    HACKS,
    MANIFEST,
    PROBES_VERSION,
    Probe,
    degradation_families,
    load_probe_clips,
    probe_file_name,
    probe_rng,
    probes_by_id,
    write_probe_clips,
)
from benchmark.errors import DataError

SR = SAMPLE_RATE
BY_ID = probes_by_id()


@functools.cache
def _opus_reason() -> str | None:
    """Why the codec probes cannot run here (None: they can)."""
    if shutil.which("ffmpeg") is None:
        return "ffmpeg is not installed"
    out = subprocess.run(
        ["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True, check=False
    ).stdout
    return None if "libopus" in out else "this ffmpeg has no libopus encoder"


def need_opus() -> None:
    reason = _opus_reason()
    if reason is not None:
        pytest.skip(f"codec probes: {reason}")


def every_probe() -> list[Probe]:
    """The whole catalogue, less the codec probes where ffmpeg cannot run them."""
    codec_ok = _opus_reason() is None
    return [p for p in (*DEGRADATIONS, *HACKS) if codec_ok or p.family != "codec"]


def speechish(seconds: float = 1.5, seed: int = 0) -> np.ndarray:
    """A voiced-sounding test signal: harmonics of a gliding 120-200 Hz pitch, syllable-rate AM,
    a little noise; peak about 0.5."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    f0 = 120 + 40 * (1 + np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 25))
    x = x * (0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)) + 0.01 * rng.standard_normal(n)
    return 0.5 * x / np.max(np.abs(x))


def tone(freq: float, seconds: float = 1.0, amp: float = 0.3) -> np.ndarray:
    return amp * np.sin(2 * np.pi * freq * np.arange(int(seconds * SR)) / SR)


def middle(x: np.ndarray) -> np.ndarray:
    """The middle half: filter edges and soxr's settling stay out of the measurement."""
    return x[x.size // 4 : 3 * x.size // 4]


def db(a: float, b: float) -> float:
    return 20 * np.log10(a / b)


def apply(probe_id: str, x: np.ndarray, seed: int = 0, key: str = "k") -> np.ndarray:
    return BY_ID[probe_id].apply(x, probe_rng(seed, key, probe_id))


# --------------------------------------------------------------------------------------------
# The catalogue
# --------------------------------------------------------------------------------------------


def test_catalogue_has_the_stated_probes_in_order():
    counts = {f: len(ps) for f, ps in degradation_families().items()}
    assert counts == {
        "noise_white": 4,
        "noise_pink": 4,
        "clipping": 3,
        "lowpass": 3,
        "codec": 3,
        "packet_loss": 3,
        "reverb": 3,
    }
    assert len(DEGRADATIONS) == 23 and len(HACKS) == 8
    assert [(p.id, p.severity) for p in DEGRADATIONS] == [
        *[(f"noise_white@{s}dB", f"{s} dB SNR") for s in (30, 20, 10, 5)],
        *[(f"noise_pink@{s}dB", f"{s} dB SNR") for s in (30, 20, 10, 5)],
        *[(f"clipping@{p}%", f"{p}% of peak") for p in (50, 25, 10)],
        *[(f"lowpass@{k}kHz", f"{k} kHz") for k in (4, 2, 1)],
        *[(f"codec@opus{k}kbps", f"Opus {k} kbps") for k in (24, 12, 6)],
        *[(f"packet_loss@{p}%", f"{p}% of 20 ms frames") for p in (5, 15, 30)],
        *[(f"reverb@{t}s", f"RT60 {t} s") for t in (0.3, 0.6, 1.2)],
    ]
    assert [p.family for p in HACKS] == [
        "gain",
        "gain",
        "silence_lead",
        "silence_trail",
        "dc_offset",
        "polarity",
        "resample",
        "noise_floor",
    ]
    every = (*DEGRADATIONS, *HACKS)
    assert len({p.id for p in every}) == 31 == len(BY_ID)
    assert {p.kind for p in DEGRADATIONS} == {"degradation"}
    assert {p.kind for p in HACKS} == {"hacking"}
    for group in (DEGRADATIONS, HACKS):
        families: dict[str, list[int]] = {}
        for p in group:
            families.setdefault(p.family, []).append(p.level)
        # contiguous families, mildest first: levels read 0, 1, ..., k-1 in catalogue order
        assert [p.family for p in group] == [f for f, ls in families.items() for _ in ls]
        for family, levels in families.items():
            assert levels == list(range(len(levels))), family
    for family, ps in degradation_families().items():
        assert [p.level for p in ps] == list(range(len(ps)))
        assert all(p.family == family for p in ps)
    assert BY_ID["noise_white@30dB"].level == 0 and BY_ID["noise_white@5dB"].level == 3
    assert BY_ID["gain@+6dB"].level == 0 and BY_ID["gain@-6dB"].level == 1
    assert PROBES_VERSION == 1


def test_only_the_silence_probes_change_the_length_and_none_touch_their_input():
    x = speechish(0.6)
    before = x.copy()
    for probe in every_probe():
        y = probe.apply(x, probe_rng(0, "k", probe.id))
        assert y.dtype == np.float64 and y.ndim == 1 and np.all(np.isfinite(y)), probe.id
        extra = 8000 if probe.family.startswith("silence") else 0
        assert y.size == x.size + extra, probe.id
        assert np.array_equal(x, before), probe.id


def test_a_probe_refuses_empty_or_non_finite_audio():
    with pytest.raises(DataError, match="non-empty finite mono"):
        BY_ID["gain@+6dB"].apply(np.zeros(0), np.random.default_rng(0))
    with pytest.raises(DataError, match="non-empty finite mono"):
        BY_ID["gain@+6dB"].apply(np.array([0.0, np.nan]), np.random.default_rng(0))
    with pytest.raises(DataError, match="non-empty finite mono"):
        BY_ID["gain@+6dB"].apply(np.zeros((2, 10)), np.random.default_rng(0))


# --------------------------------------------------------------------------------------------
# Degradations: the property each label states
# --------------------------------------------------------------------------------------------

NOISE = [p for p in DEGRADATIONS if p.family.startswith("noise_")]


@pytest.mark.parametrize("probe", NOISE, ids=lambda p: p.id)
def test_noise_probes_add_noise_at_the_stated_snr(probe: Probe):
    snr = float(probe.id.split("@")[1].removesuffix("dB"))
    assert probe.severity == f"{snr:.0f} dB SNR"
    x = speechish()
    y = apply(probe.id, x)
    assert abs(db(rms(x), rms(y - x)) - snr) < 0.1


def band_power_per_hz(noise: np.ndarray, lo: float, hi: float) -> float:
    power = np.abs(np.fft.rfft(noise)) ** 2
    freqs = np.fft.rfftfreq(noise.size, 1 / SR)
    band = (freqs >= lo) & (freqs < hi)
    return float(power[band].mean())


def test_pink_noise_has_more_energy_per_hz_below_1khz_than_above_4khz_and_white_does_not():
    x = speechish(3.0)
    pink = apply("noise_pink@10dB", x) - x
    white = apply("noise_white@10dB", x) - x
    pink_tilt = band_power_per_hz(pink, 20, 1000) / band_power_per_hz(pink, 4000, 8000)
    white_tilt = band_power_per_hz(white, 20, 1000) / band_power_per_hz(white, 4000, 8000)
    assert pink_tilt > 4  # 1/f: about 13x between the bands' mean densities
    assert 0.8 < white_tilt < 1.25


@pytest.mark.parametrize("probe", degradation_families()["clipping"], ids=lambda p: p.id)
def test_clipping_bounds_the_clip_at_the_stated_fraction_of_its_peak(probe: Probe):
    fraction = float(probe.id.split("@")[1].removesuffix("%")) / 100
    x = speechish()
    y = apply(probe.id, x)
    bound = fraction * np.max(np.abs(x))
    assert np.max(np.abs(y)) == pytest.approx(bound, abs=1e-15)  # it clips there, not lower
    unclipped = np.abs(x) < bound
    assert np.array_equal(y[unclipped], x[unclipped])


@pytest.mark.parametrize(
    ("probe_id", "stop_hz"),
    [("lowpass@4kHz", 6000.0), ("lowpass@2kHz", 3000.0), ("lowpass@1kHz", 1500.0)],
)
def test_lowpass_removes_a_tone_above_its_edge_and_keeps_300_hz(probe_id: str, stop_hz: float):
    high = tone(stop_hz)
    assert db(rms(middle(high)), rms(middle(apply(probe_id, high)))) > 20
    low = tone(300.0)
    assert abs(db(rms(middle(apply(probe_id, low))), rms(middle(low)))) < 1


def test_codec_probes_run_and_change_the_audio_more_as_the_bitrate_falls():
    need_opus()
    x = speechish()
    errors = []
    for probe in degradation_families()["codec"]:
        y = apply(probe.id, x)
        assert y.size == x.size and np.all(np.isfinite(y))
        assert rms(y) > 0.3 * rms(x), probe.id  # speech came back, not silence
        errors.append(rms(y - x) / rms(x))
        assert errors[-1] > 1e-3, probe.id
    assert errors == sorted(errors)  # about 0.1, 0.24, 0.46 of the clip's RMS


def test_packet_loss_zeroes_about_the_stated_fraction_of_20ms_frames():
    x = speechish(30.0) + 0.05  # no frame of the source is all zeros
    frame = SR // 50
    fractions = []
    for probe in degradation_families()["packet_loss"]:
        rate = float(probe.id.split("@")[1].removesuffix("%")) / 100
        y = apply(probe.id, x)
        frames = y[: y.size // frame * frame].reshape(-1, frame)
        zero = np.all(frames == 0, axis=1)
        assert np.array_equal(frames[~zero], x[: y.size // frame * frame].reshape(-1, frame)[~zero])
        fractions.append(zero.mean())
        assert abs(zero.mean() - rate) < 0.03, probe.id
    assert fractions == sorted(fractions)


def test_reverb_keeps_the_length_and_its_decay_grows_with_rt60():
    x = np.concatenate([speechish(1.0), np.zeros(int(1.5 * SR))])
    end = SR  # the source ends here
    tails = []
    for probe in degradation_families()["reverb"]:
        y = apply(probe.id, x)
        assert y.size == x.size
        tails.append(float(np.sum(y[end:] ** 2)))
    assert np.sum(x[end:] ** 2) == 0
    assert 0 < tails[0] < tails[1] < tails[2]


# --------------------------------------------------------------------------------------------
# Hacking transforms: each is exactly the operation it names
# --------------------------------------------------------------------------------------------


def test_gain_probes_scale_by_exactly_6_db():
    x = speechish()
    nz = x != 0
    up = apply("gain@+6dB", x)
    down = apply("gain@-6dB", x)
    assert np.max(np.abs(up[nz] / x[nz] - 10 ** (6 / 20))) < 1e-12
    assert np.max(np.abs(down[nz] / x[nz] - 10 ** (-6 / 20))) < 1e-12
    loud = apply("gain@+6dB", 0.9 * x / np.max(np.abs(x)))
    assert np.max(np.abs(loud)) > 1  # not clipped: stored as float


def test_silence_probes_add_8000_zeros_at_their_end_only():
    x = speechish()
    lead = apply("silence_lead@0.5s", x)
    trail = apply("silence_trail@0.5s", x)
    assert lead.size == trail.size == x.size + 8000
    assert np.array_equal(lead[:8000], np.zeros(8000)) and np.array_equal(lead[8000:], x)
    assert np.array_equal(trail[-8000:], np.zeros(8000)) and np.array_equal(trail[:-8000], x)


def test_polarity_negates_and_dc_offset_adds_the_constant():
    x = speechish()
    assert np.array_equal(apply("polarity@inverted", x), -x)
    assert np.array_equal(apply("dc_offset@+0.05", x), x + 0.05)


def test_resample_round_trip_keeps_a_1khz_tone_and_the_length():
    for n in (SR, SR + 1, 12345):
        x = tone(1000.0)[:n] if n <= SR else np.resize(tone(1000.0), n)
        y = apply("resample@48kHz", x)
        assert abs(y.size - x.size) <= 1
        assert abs(db(rms(middle(y)), rms(middle(x)))) < 0.5
    x = speechish()
    assert not np.array_equal(apply("resample@48kHz", x), x)  # it did go through soxr


def test_noise_floor_adds_white_noise_at_minus_60_dbfs():
    x = speechish()
    noise = apply("noise_floor@-60dBFS", x) - x
    assert abs(20 * np.log10(rms(noise)) + 60) < 0.5
    tilt = band_power_per_hz(noise, 20, 1000) / band_power_per_hz(noise, 4000, 8000)
    assert 0.7 < tilt < 1.4  # white


# --------------------------------------------------------------------------------------------
# Seeding, files and the cache
# --------------------------------------------------------------------------------------------


def sources() -> list[tuple[str, np.ndarray]]:
    return [("a" * 64, speechish(1.0, seed=1)), ("b" * 64, speechish(0.8, seed=2))]


def snapshot(folder: Path) -> dict[str, tuple[bytes, int, int]]:
    return {
        p.name: (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino)
        for p in sorted(folder.iterdir())
    }


def test_seed_and_source_key_move_the_noise_but_nothing_else_does():
    x = speechish()
    base = apply("noise_white@20dB", x, seed=0, key="k1")
    assert np.array_equal(base, apply("noise_white@20dB", x, seed=0, key="k1"))
    assert not np.array_equal(base, apply("noise_white@20dB", x, seed=1, key="k1"))
    assert not np.array_equal(base, apply("noise_white@20dB", x, seed=0, key="k2"))
    # the probe id is part of the stream too: white and pink draw different normals
    r1 = probe_rng(0, "k1", "noise_white@20dB").standard_normal(4)
    r2 = probe_rng(0, "k1", "noise_pink@20dB").standard_normal(4)
    assert not np.array_equal(r1, r2)


def test_same_sources_twice_give_byte_identical_files_whatever_their_order(tmp_path: Path):
    probes = every_probe()
    first = write_probe_clips(sources(), probes, tmp_path / "a", seed=7)
    second = write_probe_clips(sources()[::-1], probes, tmp_path / "b", seed=7)
    assert len(first) == 2 * len(probes)
    a = {p.name: p.read_bytes() for p in (tmp_path / "a").glob("*.wav")}
    b = {p.name: p.read_bytes() for p in (tmp_path / "b").glob("*.wav")}
    assert a == b and len(a) == len(first)
    assert (tmp_path / "a" / MANIFEST).read_bytes() == (tmp_path / "b" / MANIFEST).read_bytes()
    strip = [(c.probe_clip_id, c.source_key, c.probe_id, c.path.name, c.seconds) for c in first]
    assert strip == [
        (c.probe_clip_id, c.source_key, c.probe_id, c.path.name, c.seconds) for c in second
    ]
    assert first == sorted(first, key=lambda c: (c.source_key, c.probe_id))


def test_written_clips_are_the_probes_output_as_float32_wav(tmp_path: Path):
    srcs = dict(sources())
    clips = write_probe_clips(list(srcs.items()), every_probe(), tmp_path, seed=3)
    for clip in clips:
        assert clip.path.is_absolute() and clip.path.parent == tmp_path.resolve()
        assert clip.path.name == probe_file_name(clip.source_key, clip.probe_id, 3)
        assert clip.probe_clip_id == clip.path.stem
        info = sf.info(str(clip.path))
        assert (info.samplerate, info.channels, info.subtype) == (SR, 1, "FLOAT")
        assert clip.seconds == info.frames / SR
        y, _ = sf.read(str(clip.path), dtype="float32")
        x = srcs[clip.source_key]
        want = BY_ID[clip.probe_id].apply(x, probe_rng(3, clip.source_key, clip.probe_id))
        # the codec probes are batched through ffmpeg here, one by one in `apply`: same output
        assert np.array_equal(y, want.astype(np.float32)), clip.probe_id


def test_the_wav_has_no_timestamped_chunk(tmp_path: Path):
    """libsndfile's PEAK chunk holds the time of writing: two runs a second apart would differ."""
    (clip,) = write_probe_clips(sources()[:1], [BY_ID["gain@+6dB"]], tmp_path, seed=0)
    data = clip.path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    chunks, at = [], 12
    while at < len(data):
        tag, size = data[at : at + 4], struct.unpack("<I", data[at + 4 : at + 8])[0]
        chunks.append(tag)
        at += 8 + size
    assert chunks == [b"fmt ", b"fact", b"data"]


def test_a_different_seed_or_key_writes_different_clips(tmp_path: Path):
    (key, x), _ = sources()
    probe = [BY_ID["noise_white@20dB"]]
    (c0,) = write_probe_clips([(key, x)], probe, tmp_path, seed=0)
    (c1,) = write_probe_clips([(key, x)], probe, tmp_path, seed=1)
    (c2,) = write_probe_clips([("c" * 64, x)], probe, tmp_path, seed=0)
    assert len({c0.path, c1.path, c2.path}) == 3
    reads = [sf.read(str(c.path))[0] for c in (c0, c1, c2)]
    assert not np.array_equal(reads[0], reads[1])
    assert not np.array_equal(reads[0], reads[2])


def test_a_second_write_into_the_folder_writes_nothing(tmp_path: Path):
    probes = every_probe()
    first = write_probe_clips(sources(), probes, tmp_path, seed=0)
    before = snapshot(tmp_path)
    again = write_probe_clips(sources()[::-1], probes, tmp_path, seed=0)
    assert again == first
    assert snapshot(tmp_path) == before  # same bytes, same mtimes, same inodes (no rewrite)


def test_an_existing_file_is_reused_not_recomputed(tmp_path: Path):
    (key, x), _ = sources()
    probe = BY_ID["noise_white@20dB"]
    path = tmp_path / probe_file_name(key, probe.id, 0)
    path.write_bytes(probes_mod.wav_bytes(np.zeros(123)))
    (clip,) = write_probe_clips([(key, x)], [probe], tmp_path, seed=0)
    assert clip.seconds == 123 / SR and sf.read(str(path))[0].size == 123


def test_bumping_the_catalogue_version_moves_every_file_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    probes = [BY_ID["gain@+6dB"], BY_ID["polarity@inverted"]]
    old = write_probe_clips(sources(), probes, tmp_path, seed=0)
    monkeypatch.setattr(probes_mod, "PROBES_VERSION", 2)
    new = write_probe_clips(sources(), probes, tmp_path, seed=0)
    assert not {c.path for c in old} & {c.path for c in new}
    listed = json.loads((tmp_path / MANIFEST).read_text())
    assert listed["probes_version"] == 2
    assert {e["file"] for e in listed["clips"]} == {c.path.name for c in new}


def test_the_manifest_lists_every_clip_written_into_the_folder(tmp_path: Path):
    degraded = write_probe_clips(sources(), [BY_ID["clipping@50%"]], tmp_path, seed=0)
    hacked = write_probe_clips(sources()[:1], [BY_ID["polarity@inverted"]], tmp_path, seed=0)
    other_seed = write_probe_clips(sources()[:1], [BY_ID["noise_white@5dB"]], tmp_path, seed=9)
    doc = json.loads((tmp_path / MANIFEST).read_text())
    assert doc["format"] == "mosrm-probe-clips" and doc["sample_rate"] == SR
    entries = doc["clips"]
    assert len(entries) == 4
    assert entries == sorted(entries, key=lambda e: (e["source_key"], e["probe_id"], e["seed"]))
    both = sorted(degraded + hacked, key=lambda c: (c.source_key, c.probe_id))
    assert load_probe_clips(tmp_path, seed=0) == both
    assert load_probe_clips(tmp_path, seed=9) == other_seed
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(DataError, match="delete it to rebuild"):
        load_probe_clips(tmp_path, seed=0)


def test_a_bad_source_is_refused_with_its_key(tmp_path: Path):
    with pytest.raises(DataError, match="source bad"):
        write_probe_clips([("bad", np.zeros(0))], [BY_ID["gain@+6dB"]], tmp_path, seed=0)
    with pytest.raises(DataError, match="source key"):
        write_probe_clips([("", np.ones(10))], [BY_ID["gain@+6dB"]], tmp_path, seed=0)
    with pytest.raises(DataError, match="twice"):
        write_probe_clips([("k", np.ones(10))], [BY_ID["gain@+6dB"]] * 2, tmp_path, seed=0)
