"""The `demo` corpus: a small synthetic MOS corpus generated locally on first use.

A fresh machine has no licensed listening-test data, yet smoke tests, tutorials and `make run` need
a corpus whose MOS genuinely follows the audio. So the corpus is built from scratch: English
sentences are spoken by espeak-ng voices, every rendering goes through several degradation chains
("systems") whose severity is drawn per clip, and a simulated listener panel turns the drawn
severity into integer ACR votes. Nothing is downloaded and nothing is redistributed; the data card
(`data_cards/demo.md`) documents the model.

Layout of the data root after generation:

    manifest.json   generator version, options, tool versions, sha256 of every wav and, per clip,
                    the drawn degradation parameters, impairment, expected MOS and the votes (one
                    digit per listener); written last, so its presence marks a complete corpus
    clips.csv       the clip table (CLIP_SCHEMA columns but `ratings`, which the reader fills from
                    the manifest's votes: a list does not fit a CSV cell, and the file predates it)
    wav/<clip_id>.wav   16 kHz mono PCM-16

The systems (degradation chains and their impairments) are `data.corpora.demo_systems`, the
operations `data.degrade`; this module is the generator around them: options, tools, rendering in
worker processes, the listener panel, the atomic build and the reader, each a short section (about
630 lines together, kept in one file because each section is read with the others when the corpus
changes).

Generation is deterministic: degradation parameters, votes and MOS depend only on the options, so
they are the same everywhere; audio bytes (and so durations) are identical wherever the espeak-ng
and ffmpeg versions match (both are recorded in the manifest).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import soundfile as sf
import soxr

from benchmark.atomic import file_lock, temp_sibling
from benchmark.data.corpora._native import split_label
from benchmark.data.corpora.demo_systems import _SYSTEM_BY_NAME, SYSTEMS, expected_quality
from benchmark.data.degrade import (
    Codec,
    ffmpeg_round_trips,
    rms,
)
from benchmark.data.tables import CLIP_SCHEMA, conform
from benchmark.errors import DataError

GENERATOR = "mosrm-demo"
GENERATOR_VERSION = 1
"""Bump whenever a change alters audio, parameters or MOS: existing roots then regenerate."""

CORPUS = "demo"
SAMPLE_RATE = 16000
TARGET_RMS_DBFS = -23.0
PEAK_LIMIT = 0.99

SENTENCES: tuple[str, ...] = (
    "The kettle whistled while we set the table.",
    "Please close the window before the rain starts.",
    "A small boat drifted slowly toward the harbour.",
    "My neighbour grows tomatoes on her balcony.",
    "The train to the coast leaves at seven.",
    "He painted the fence a cheerful shade of blue.",
    "We found an old map inside the library book.",
    "The children laughed at the clumsy puppy.",
    "Turn left at the bakery and keep walking.",
    "Fresh snow covered the quiet mountain road.",
    "She tuned the guitar before the concert began.",
    "The museum opens late on Thursday evenings.",
    "Our team finished the puzzle in record time.",
    "A gentle breeze carried the smell of pine.",
    "The soup needs a little more salt and pepper.",
    "Remember to water the plants on Sunday.",
    "The lighthouse keeper waved from the rocks.",
    "Two owls were calling across the valley.",
    "He forgot his umbrella at the bus stop.",
    "The market sells bread, cheese and honey.",
    "Every morning the baker starts work at four.",
    "The bridge was closed for repairs all week.",
    "Bright lanterns lined the narrow street.",
    "The professor wrote the equation on the board.",
    "Our flight was delayed by thick fog.",
    "The cat slept in a patch of warm sunlight.",
    "Could you pass me the blue notebook, please?",
    "The river rose quickly after the storm.",
    "They planted an apple tree in the garden.",
    "The old clock in the hall stopped at noon.",
    "A crowd gathered to watch the street musician.",
    "The recipe calls for three ripe bananas.",
    "We watched the sunset from the hilltop.",
    "The printer ran out of paper again.",
    "Her bicycle has a basket and a bright bell.",
    "The pilot announced a smooth landing ahead.",
    "Wild horses ran along the sandy beach.",
    "The library will be quiet during exams.",
    "He carefully folded the letter into thirds.",
    "The orchestra rehearsed until late at night.",
    "Thin clouds drifted over the quiet lake.",
    "Pack a warm jacket for the mountain hike.",
)
"""Written for this project (no third-party text). Sentence `s07` is `SENTENCES[7]`."""

VOICES: tuple[tuple[str, int], ...] = (
    ("en-us", 175),
    ("en-gb+f3", 165),
    ("en-gb-scotland+m3", 170),
    ("en-us+f2", 180),
    ("en-029+m1", 165),
    ("en-gb-x-rp+f4", 170),
)
"""(espeak-ng voice, words per minute). Voice `v2` is `VOICES[2]`; the voice name is the speaker id."""

CONTENT_EFFECT_SD = 0.15
VOICE_EFFECT_SD = 0.10
RATER_BIAS_SD = 0.3
VOTE_NOISE_SD = 0.6
RATER_POOL_FACTOR = 4
"""Each clip is rated by `n_raters` listeners drawn from a pool of `RATER_POOL_FACTOR * n_raters`."""

SPLIT_FRACTIONS = (("train", 0.6), ("dev", 0.2), ("test", 0.2))

# Independent random streams, so that e.g. changing the panel never changes the audio.
_STREAM_PARAMS = 0
_STREAM_AUDIO = 1
_STREAM_VOTES = 2
_STREAM_PANEL = 3
_STREAM_EFFECTS = 4
_STREAM_SPLIT = 5


# --------------------------------------------------------------------------------------------
# Tools
# --------------------------------------------------------------------------------------------


def _run_tool(cmd: list[str], stdin: bytes | None = None) -> bytes:
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, check=False)
    except FileNotFoundError:
        raise DataError(_missing_tool_message(cmd[0])) from None
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        raise DataError(f"demo corpus: `{' '.join(cmd[:3])} ...` failed ({proc.returncode}): {err}")
    return proc.stdout


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------

DEFAULT_OPTIONS: dict[str, Any] = {
    "n_sentences": 40,
    "n_voices": 4,
    "n_raters": 8,
    "seed": 0,
    "systems": [s.name for s in SYSTEMS],
}


def _int_option(options: Mapping[str, Any], key: str, lo: int, hi: int) -> int:
    value = options.get(key, DEFAULT_OPTIONS[key])
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise DataError(
            f"demo corpus: option '{key}' must be an integer in [{lo}, {hi}], got {value!r}"
        )
    return value


def normalize_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Fill defaults and validate, so equal corpora always have equal option dicts in the manifest."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
    if unknown:
        known = ", ".join(sorted(DEFAULT_OPTIONS))
        raise DataError(
            f"demo corpus: unknown option '{unknown[0]}' in data.options (known options: {known})"
        )
    seed = options.get("seed", DEFAULT_OPTIONS["seed"])
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DataError(f"demo corpus: option 'seed' must be a non-negative integer, got {seed!r}")
    systems = options.get("systems", DEFAULT_OPTIONS["systems"])
    if isinstance(systems, str) or not isinstance(systems, Sequence) or not systems:
        raise DataError(
            f"demo corpus: option 'systems' must be a non-empty list of system names, got {systems!r}"
        )
    chosen: set[int] = set()
    for name in systems:
        system = _SYSTEM_BY_NAME.get(name) if isinstance(name, str) else None
        if system is None:
            known = ", ".join(s.name for s in SYSTEMS)
            raise DataError(
                f"demo corpus: unknown system {name!r} in option 'systems' (known: {known})"
            )
        chosen.add(system.index)
    return {
        "n_sentences": _int_option(options, "n_sentences", 3, len(SENTENCES)),
        "n_voices": _int_option(options, "n_voices", 1, len(VOICES)),
        "n_raters": _int_option(options, "n_raters", 1, 100),
        "seed": seed,
        "systems": [SYSTEMS[i].name for i in sorted(chosen)],
    }


# --------------------------------------------------------------------------------------------
# Tools
# --------------------------------------------------------------------------------------------


def _missing_tool_message(tool: str) -> str:
    return (
        f"demo corpus: {tool} not found on PATH; install it with `apt-get install {tool}` "
        "(or run `make setup`), or point the task at an already generated demo root"
    )


def _required_tools(opts: Mapping[str, Any]) -> list[str]:
    tools = ["espeak-ng"]
    if any(_SYSTEM_BY_NAME[n].needs_ffmpeg for n in opts["systems"]):
        tools.append("ffmpeg")
    return tools


def _tool_versions(tools: Sequence[str]) -> dict[str, str]:
    """Versions that decide the audio bytes; recorded so a byte difference can be explained."""
    versions: dict[str, str] = {}
    if "espeak-ng" in tools:
        out = _run_tool(["espeak-ng", "--version"]).decode(errors="replace")
        versions["espeak-ng"] = out.split("Data at")[0].strip()
    if "ffmpeg" in tools:
        lines = _run_tool(["ffmpeg", "-version"]).decode(errors="replace").splitlines()
        versions["ffmpeg"] = lines[0].split(" Copyright")[0].strip() if lines else "unknown"
    for package in ("numpy", "soxr", "soundfile"):
        with contextlib.suppress(importlib_metadata.PackageNotFoundError):
            versions[package] = importlib_metadata.version(package)
    return versions


# --------------------------------------------------------------------------------------------
# Rendering (runs in worker processes)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    """One sentence spoken by every selected voice; the unit of work of a worker process."""

    seed: int
    sentence: int
    voices: tuple[int, ...]
    systems: tuple[int, ...]
    out_dir: str


def clip_id(sentence: int, voice: int, system: int) -> str:
    return f"{CORPUS}-s{sentence:02d}-v{voice}-sys{system}"


def _rng(seed: int, stream: int, *key: int) -> np.random.Generator:
    """Each (stream, clip) gets its own generator, so results do not depend on worker scheduling."""
    return np.random.default_rng([seed, stream, *key])


def _normalize_level(x: np.ndarray) -> np.ndarray:
    """Same loudness for every clip, so level is not a shortcut to quality; never clips."""
    level = rms(x)
    if level > 0:
        x = x * (10 ** (TARGET_RMS_DBFS / 20) / level)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak > PEAK_LIMIT:
        x = x * (PEAK_LIMIT / peak)
    return x


def _synthesise(text: str, voice: str, speed: int, workdir: Path) -> np.ndarray:
    path = workdir / "tts.wav"
    _run_tool(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text])
    audio, sr = sf.read(path, dtype="float64", always_2d=True)
    mono = audio.mean(axis=1)
    if mono.size == 0 or not np.any(mono):
        raise DataError(f"demo corpus: espeak-ng produced no audio for voice {voice!r}")
    return soxr.resample(mono, sr, SAMPLE_RATE, quality="HQ")


def _render(job: _Job) -> list[dict[str, Any]]:
    """Speak one sentence with each voice and write every rendering through every system."""
    clips: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="mosrm-demo-") as tmp:
        workdir = Path(tmp)
        for v in job.voices:
            voice, speed = VOICES[v]
            base = _normalize_level(_synthesise(SENTENCES[job.sentence], voice, speed, workdir))
            for k in job.systems:
                key = (job.sentence, v, k)
                system = SYSTEMS[k]
                params = system.draw(_rng(job.seed, _STREAM_PARAMS, *key))
                rng = _rng(job.seed, _STREAM_AUDIO, *key)
                audio = system.pre(base, params, rng)
                clips.append({"key": key, "params": params, "rng": rng, "audio": audio})
        coded: list[dict[str, Any]] = []
        items: list[tuple[np.ndarray, Codec]] = []
        for clip in clips:
            make_codec = SYSTEMS[clip["key"][2]].codec
            if make_codec is not None:
                coded.append(clip)
                items.append((clip["audio"], make_codec(clip["params"])))
        for clip, audio in zip(coded, ffmpeg_round_trips(items, workdir, _run_tool), strict=True):
            clip["audio"] = audio
    return [_finish(job, c) for c in clips]


def _finish(job: _Job, clip: Mapping[str, Any]) -> dict[str, Any]:
    """Apply the post-codec stage, write the wav and describe the clip for the table/manifest."""
    sentence, voice, k = clip["key"]
    system = SYSTEMS[k]
    y = system.post(clip["audio"], clip["params"], clip["rng"])
    y = _normalize_level(np.asarray(y, dtype=np.float64))
    if y.size == 0 or not np.all(np.isfinite(y)):
        raise DataError(f"demo corpus: empty or non-finite audio from system {system.system_id}")
    cid = clip_id(sentence, voice, k)
    rel = f"wav/{cid}.wav"
    buf = io.BytesIO()
    sf.write(buf, y.astype(np.float32), SAMPLE_RATE, format="WAV", subtype="PCM_16")
    data = buf.getvalue()
    (Path(job.out_dir) / rel).write_bytes(data)
    return {
        "clip_id": cid,
        "sentence": sentence,
        "voice": voice,
        "system": k,
        "params": dict(clip["params"]),
        "impairment": round(system.impairment(clip["params"]), 6),
        "audio_path": rel,
        "n_samples": int(y.size),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


# --------------------------------------------------------------------------------------------
# Listener panel, splits, table
# --------------------------------------------------------------------------------------------


def _splits(n_sentences: int, seed: int) -> dict[int, str]:
    """Split by sentence, so no content appears in two splits (pairs never cross splits)."""
    order = _rng(seed, _STREAM_SPLIT).permutation(n_sentences)
    n_test = max(1, round(SPLIT_FRACTIONS[2][1] * n_sentences))
    n_dev = max(1, round(SPLIT_FRACTIONS[1][1] * n_sentences))
    out: dict[int, str] = {}
    for rank, s in enumerate(order.tolist()):
        out[s] = "test" if rank < n_test else "dev" if rank < n_test + n_dev else "train"
    return out


def _panel_votes(
    rendered: Sequence[Mapping[str, Any]], opts: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Simulated ACR test: per clip, `n_raters` listeners from a biased pool cast integer votes."""
    seed, n_raters = opts["seed"], opts["n_raters"]
    effects = _rng(seed, _STREAM_EFFECTS)
    content = effects.normal(0.0, CONTENT_EFFECT_SD, len(SENTENCES))
    voice = effects.normal(0.0, VOICE_EFFECT_SD, len(VOICES))
    pool = _rng(seed, _STREAM_PANEL).normal(0.0, RATER_BIAS_SD, RATER_POOL_FACTOR * n_raters)
    out: dict[str, dict[str, Any]] = {}
    for clip in rendered:
        key = (clip["sentence"], clip["voice"], clip["system"])
        expected = expected_quality(clip["impairment"]) + content[key[0]] + voice[key[1]]
        expected = float(np.clip(expected, 1.0, 5.0))
        rng = _rng(seed, _STREAM_VOTES, *key)
        raters = rng.choice(pool.size, size=n_raters, replace=False)
        raw = expected + pool[raters] + rng.normal(0.0, VOTE_NOISE_SD, n_raters)
        votes = np.clip(np.rint(raw), 1, 5).astype(int)
        out[clip["clip_id"]] = {
            "expected_mos": round(expected, 6),
            "votes": votes.tolist(),
            "mos": float(votes.mean()),
            "rating_std": float(votes.std(ddof=1)) if n_raters > 1 else None,
        }
    return out


_CSV_COLUMNS = [f.name for f in CLIP_SCHEMA if f.name != "ratings"]


def _write_clips_csv(rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(_CSV_COLUMNS)
        for row in rows:
            writer.writerow(
                [
                    "" if row[c] is None else repr(row[c]) if isinstance(row[c], float) else row[c]
                    for c in _CSV_COLUMNS
                ]
            )


def _read_clips_csv(path: Path) -> pa.Table:
    try:
        table = pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                column_types={f.name: f.type for f in CLIP_SCHEMA},
                strings_can_be_null=True,
            ),
        )
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: cannot read the demo clip table: {exc}") from None
    return conform(table, CLIP_SCHEMA, path)


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load_manifest(root: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _is_complete(root: Path, opts: Mapping[str, Any]) -> bool:
    """A root is usable only if its manifest matches and everything it lists is on disk."""
    manifest = _load_manifest(root)
    if (
        manifest is None
        or manifest.get("generator") != GENERATOR
        or manifest.get("generator_version") != GENERATOR_VERSION
        or manifest.get("options") != dict(opts)
        or not (root / "clips.csv").is_file()
    ):
        return False
    files = manifest.get("files")
    return isinstance(files, dict) and all((root / rel).is_file() for rel in files)


_OWN_ENTRIES = {"manifest.json", "clips.csv", "wav"}


def _check_replaceable(root: Path) -> None:
    """Refuse to replace a folder holding anything the generator did not write."""
    if not root.exists():
        return
    if not root.is_dir():
        raise DataError(f"{root}: demo data root exists and is not a folder")
    manifest = _load_manifest(root)
    if manifest is not None and manifest.get("generator") == GENERATOR:
        return
    foreign = sorted(p.name for p in root.iterdir() if p.name not in _OWN_ENTRIES)
    if foreign:
        raise DataError(
            f"{root}: cannot generate the demo corpus here: the folder holds files the generator "
            f"did not write (e.g. {foreign[0]}); point data.root at an empty or demo-only folder"
        )


def _lock(root: Path) -> contextlib.AbstractContextManager[None]:
    """Serialise generations of the same root across processes (e.g. parallel test workers)."""
    return file_lock(root.parent / f".{root.name}.lock")


_MIN_RENDERINGS_FOR_POOL = 16
"""Below this, starting spawned workers (each re-imports numpy) costs more than it saves."""


def _build(tmp: Path, opts: Mapping[str, Any], workers: int) -> None:
    """Write the whole corpus into `tmp`; the manifest is written last, marking it complete."""
    (tmp / "wav").mkdir(parents=True)
    systems = tuple(_SYSTEM_BY_NAME[n].index for n in opts["systems"])
    voices = tuple(range(opts["n_voices"]))
    jobs = [_Job(opts["seed"], s, voices, systems, str(tmp)) for s in range(opts["n_sentences"])]
    workers = max(1, min(workers, len(jobs)))
    if workers == 1 or len(jobs) * len(voices) < _MIN_RENDERINGS_FOR_POOL:
        batches = [_render(job) for job in jobs]
    else:
        # spawn, not fork: the parent may hold pyarrow/torch threads that fork would corrupt.
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            batches = list(pool.map(_render, jobs))
    rendered = [clip for batch in batches for clip in batch]
    panel = _panel_votes(rendered, opts)
    splits = _splits(opts["n_sentences"], opts["seed"])
    rows = []
    for clip in rendered:
        votes = panel[clip["clip_id"]]
        rows.append(
            {
                "clip_id": clip["clip_id"],
                "corpus": CORPUS,
                "split": splits[clip["sentence"]],
                "subset": None,
                "audio_path": clip["audio_path"],
                "mos": votes["mos"],
                "n_ratings": opts["n_raters"],
                "rating_std": votes["rating_std"],
                "system_id": SYSTEMS[clip["system"]].system_id,
                "speaker_id": VOICES[clip["voice"]][0],
                "content_id": f"s{clip['sentence']:02d}",
                "sample_rate": SAMPLE_RATE,
                "duration": clip["n_samples"] / SAMPLE_RATE,
            }
        )
    _write_clips_csv(rows, tmp / "clips.csv")
    manifest = {
        "generator": GENERATOR,
        "generator_version": GENERATOR_VERSION,
        "options": dict(opts),
        "tools": _tool_versions(_required_tools(opts)),
        "n_clips": len(rows),
        "clips_csv_sha256": _sha256(tmp / "clips.csv"),
        "systems": {s.system_id: s.description for s in SYSTEMS if s.name in opts["systems"]},
        "files": {c["audio_path"]: c["sha256"] for c in rendered},
        "conditions": {
            c["clip_id"]: {
                "params": c["params"],
                "impairment": c["impairment"],
                "expected_mos": panel[c["clip_id"]]["expected_mos"],
                "votes": "".join(str(v) for v in panel[c["clip_id"]]["votes"]),
            }
            for c in rendered
        },
    }
    _write_manifest(tmp, manifest)


def _write_manifest(folder: Path, manifest: Mapping[str, Any]) -> None:
    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    (folder / "manifest.json").write_text(text, encoding="utf-8")


def generate(
    root: Path, options: Mapping[str, Any] | None = None, workers: int | None = None
) -> Path:
    """Generate the corpus into `root` unless an identical one is already there.

    The corpus is built in a hidden sibling folder and renamed into place only once complete, so an
    interrupted run can never leave a root that looks finished. `workers` only changes speed.
    """
    root = Path(root)
    opts = normalize_options(options)
    if _is_complete(root, opts):
        return root
    for tool in _required_tools(opts):
        if shutil.which(tool) is None:
            raise DataError(_missing_tool_message(tool))
    with _lock(root):
        if _is_complete(root, opts):  # another process finished while we waited
            return root
        _check_replaceable(root)
        for stale in root.parent.glob(f".{root.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        for stale in root.parent.glob(f".{root.name}.old-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = temp_sibling(root)
        old = temp_sibling(root, "old")
        try:
            _build(tmp, opts, workers or os.cpu_count() or 1)
            if root.exists():
                root.rename(old)
            tmp.rename(root)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)
    return root


class DemoReader:
    """Reader for the synthetic `demo` corpus; generates it under `root` on first use."""

    name = CORPUS

    def available(self, root: Path, options: dict[str, Any]) -> bool:
        """True when the corpus is generated at `root` or the tools to generate it are installed."""
        opts = normalize_options(split_label(options, CORPUS)[0])
        if _is_complete(Path(root), opts):
            return True
        return all(shutil.which(tool) is not None for tool in _required_tools(opts))

    def read(self, root: Path, options: dict[str, Any], *, labels_only: bool = False) -> pa.Table:
        """The clip table, generating (or regenerating, when options changed) the corpus first."""
        root = Path(root)
        options, _ = split_label(options, CORPUS)
        generate(root, options)
        table = _read_clips_csv(root / "clips.csv")
        return _with_ratings(table, root / "manifest.json")


def _with_ratings(table: pa.Table, manifest_path: Path) -> pa.Table:
    """Fill `ratings` with each clip's panel votes, kept in the manifest as one digit per vote.

    The votes are what `mos` is the mean of, so the clip table gains them without the generator
    (and so the audio, MOS and GENERATOR_VERSION) changing.
    """
    manifest = _load_manifest(manifest_path.parent) or {}
    conditions = manifest.get("conditions")
    if not isinstance(conditions, dict):
        raise DataError(f"{manifest_path}: field 'conditions' is missing; regenerate the corpus")
    ratings = []
    for cid in table.column("clip_id").to_pylist():
        votes = (conditions.get(cid) or {}).get("votes")
        if not isinstance(votes, str) or not votes or not all(v in "12345" for v in votes):
            raise DataError(
                f"{manifest_path}: field 'conditions.{cid}.votes' is {votes!r}; expected one "
                f"digit 1-5 per listener (delete the folder to regenerate the corpus)"
            )
        ratings.append([float(v) for v in votes])
    index = table.schema.get_field_index("ratings")
    column = pa.array(ratings, type=CLIP_SCHEMA.field("ratings").type)
    return table.set_column(index, CLIP_SCHEMA.field("ratings"), column)
