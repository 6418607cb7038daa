"""The 16 kHz audio cache: every clip decoded, downmixed and resampled once, at prepare time.

The paper's protocol resamples all audio to 16 kHz; doing it once per task (instead of in every
scoring run) makes scoring I/O-bound on small files, and fixes the exact waveform every model sees.
Each cached file is float32 mono WAV (lossless with respect to the resampler's output; 16-bit PCM
would add a second rounding and needs explicit clipping of resampler overshoot). It is written
through `audio.load_audio`, the same decoder the scoring loop uses, so there is one code path from
a corpus file to a waveform.

Layout under the task's audio folder (`$MOSRM_HOME/audio/<task>`, shared by every pair set
prepared from the task, so custom pair counts never resample again):

    audio-16k/<aa>/<sha256(clip_id)[:32]>.wav
    audio-16k/audio.f32       every clip's samples in one array (`benchmark.data.packed_audio`)
    audio-16k/manifest.json   rate, resampler, and per clip: source path, size, mtime, sha256;
                              cached file, frames, sha256; the packed store's record and index

File names are hashes of the clip id because clip ids may hold characters that are not portable in
file names (slashes in NISQA ids). A re-run skips clips whose source is unchanged (same size and
mtime as recorded) and whose cached file exists with the recorded size; everything else is redone.
The manifest is checkpointed as work proceeds and every file is written beside its destination
and renamed, so an interrupted run loses at most the clips in flight.

The packed store is written last, from the WAV files, whenever it is absent or stale; a run that
redoes any clip first drops the store's record from the manifest, so a record never describes
files that have changed since.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa

from benchmark.atomic import atomic_path, atomic_write_text
from benchmark.data import packed_audio
from benchmark.data.cache_layout import (  # noqa: F401 - part of this module's interface
    CACHE_DIR,
    CACHE_FORMAT_VERSION,
    CACHE_RATE,
    MANIFEST,
    cache_settings,
    cached_name,
)
from benchmark.hashing import sha256_file

_SFC_SET_ADD_PEAK_CHUNK = 0x1050  # libsndfile's sndfile.h
CHECKPOINT_SECONDS = 10.0


def _load_manifest(
    path: Path, settings: dict[str, Any]
) -> tuple[dict[str, dict[str, Any]], dict[str, Any] | None]:
    """Entries and packed-store record of an earlier run with the same settings (others are
    stale: redo everything)."""
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}, None
    if not isinstance(old, dict) or old.get("settings") != settings:
        return {}, None
    entries = old.get("clips")
    packed = old.get("packed")
    return (
        entries if isinstance(entries, dict) else {},
        packed if isinstance(packed, dict) else None,
    )


def _audio_text(body: dict[str, Any]) -> str:
    """The manifest's audio record (settings and clips) as the manifest wrote it before the
    packed store existed: `manifest_sha256` hashes exactly this."""
    audio = {"settings": body["settings"], "clips": dict(sorted(body["clips"].items()))}
    return json.dumps(audio, indent=1, sort_keys=True) + "\n"


def _write_manifest(
    path: Path,
    settings: dict[str, Any],
    entries: dict[str, Any],
    packed: dict[str, Any] | None = None,
) -> None:
    body: dict[str, Any] = {"settings": settings, "clips": dict(sorted(entries.items()))}
    if packed is not None:
        body["packed"] = packed
    atomic_write_text(path, json.dumps(body, indent=1, sort_keys=True) + "\n")


def _fresh(entry: dict[str, Any] | None, src: Path, dst: Path) -> bool:
    if entry is None or not dst.is_file():
        return False
    st = src.stat()
    return (
        entry.get("source_size") == st.st_size
        and entry.get("source_mtime_ns") == st.st_mtime_ns
        and entry.get("size") == dst.stat().st_size
    )


def _convert(clip_id: str, src: Path, dst: Path, rate: int) -> dict[str, Any]:
    import soundfile as sf

    from benchmark.data.audio import load_audio

    st = src.stat()
    wave = load_audio(src, rate)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with (
        atomic_path(dst) as tmp,
        sf.SoundFile(str(tmp), "w", rate, 1, subtype="FLOAT", format="WAV") as out,
    ):
        # libsndfile adds a PEAK chunk holding the write time to float WAVs: the same audio
        # converted a second later had another SHA-256, so score-cache keys changed with the
        # clock and two nodes preparing one corpus disagreed on every clip
        sf._snd.sf_command(out._file, _SFC_SET_ADD_PEAK_CHUNK, sf._ffi.NULL, 0)
        out.write(wave)
    return {
        "source_size": st.st_size,
        "source_mtime_ns": st.st_mtime_ns,
        "source_sha256": sha256_file(src),
        "frames": int(wave.shape[0]),
        "size": dst.stat().st_size,
        "sha256": sha256_file(dst),
    }


def build_cache(
    clips: pa.Table,
    data_root: Path,
    folder: Path,
    *,
    rate: int = CACHE_RATE,
    workers: int | None = None,
    progress: bool = True,
    verify: bool = False,
    echo: Callable[[str], None] | None = None,
) -> pa.Table:
    """Resample every clip into `folder/audio-16k/` and return the clip table pointing there.

    `audio_path` becomes the cache-relative path (resolve it against `folder`); `sample_rate` and
    `duration` keep describing the source audio. `verify` re-hashes every cached file against the
    manifest and redoes any that differ, and re-hashes the packed store.
    """
    from benchmark.data.audio import resolve_audio_path

    folder.mkdir(parents=True, exist_ok=True)
    (folder / CACHE_DIR).mkdir(exist_ok=True)
    manifest_path = folder / CACHE_DIR / MANIFEST
    settings = cache_settings(rate)
    entries, packed = _load_manifest(manifest_path, settings)
    ids = clips.column("clip_id").to_pylist()
    sources = [resolve_audio_path(data_root, p) for p in clips.column("audio_path").to_pylist()]
    names = [cached_name(c) for c in ids]
    root_text = str(Path(data_root).resolve())

    todo: list[int] = []
    for i, (cid, src, name) in enumerate(zip(ids, sources, names, strict=True)):
        entry = entries.get(cid)
        dst = folder / name
        if (
            entry is not None
            and _fresh(entry, src, dst)
            and not (verify and sha256_file(dst) != entry["sha256"])
        ):
            continue
        todo.append(i)
    if echo and todo:
        echo(f"  resampling {len(todo)} of {len(ids)} clips to {rate} Hz into {folder / CACHE_DIR}")
    if todo and packed is not None:
        # WAVs are about to change: no moment where the manifest's store record describes others
        _write_manifest(manifest_path, settings, entries)
        packed = None

    def work(i: int) -> tuple[int, dict[str, Any]]:
        return i, _convert(ids[i], sources[i], folder / names[i], rate)

    last = time.monotonic()
    bar = None
    if progress and todo:
        from benchmark.progress import bar as progress_bar

        bar = progress_bar(len(todo), "resample", "clip", leave=False)
    n_workers = workers if workers is not None else max(1, min(8, os.cpu_count() or 1))
    try:
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            for i, entry in pool.map(work, todo):
                src = sources[i]
                try:
                    rel = src.resolve().relative_to(root_text).as_posix()
                except ValueError:
                    rel = str(src)
                entries[ids[i]] = {"source": rel, "file": names[i], **entry}
                if bar is not None:
                    bar.update()
                if time.monotonic() - last > CHECKPOINT_SECONDS:
                    _write_manifest(manifest_path, settings, entries)
                    last = time.monotonic()
    except BaseException:  # a bad file or Ctrl-C: keep what is done, then re-raise
        _write_manifest(manifest_path, settings, entries)
        raise
    finally:
        if bar is not None:
            bar.close()
    known = set(ids)
    entries = {k: v for k, v in entries.items() if k in known}
    cache_dir = folder / CACHE_DIR
    if packed_audio.stale_reason(cache_dir, packed, entries, rate, verify=verify) is not None:
        if packed is not None:
            _write_manifest(manifest_path, settings, entries)
        index = {cid: i for i, cid in enumerate(ids)}

        def read(cid: str) -> bytes:
            """The cached WAV's bytes, re-converted first if they no longer hash to its entry."""
            data = (folder / entries[cid]["file"]).read_bytes()
            if hashlib.sha256(data).hexdigest() != entries[cid]["sha256"]:
                i = index[cid]
                entries[cid] = {
                    **entries[cid],
                    **_convert(cid, sources[i], folder / names[i], rate),
                }
                data = (folder / names[i]).read_bytes()
            return data

        packed = packed_audio.write_store(cache_dir, entries, read, rate, workers=n_workers)
    _write_manifest(manifest_path, settings, entries, packed)
    col = clips.schema.get_field_index("audio_path")
    return clips.set_column(col, "audio_path", pa.array(names, pa.string()))


def manifest_sha256(folder: Path) -> str | None:
    """SHA-256 of the cache manifest's audio record: settings and per-clip entries, as written
    before the packed store existed (so the same hash as then for the same audio).

    The store's record is left out: it is a derived copy of the same audio, and its file's mtime
    and inode change whenever it is rewritten, which must not make trained baselines (keyed on
    this hash) train again. A manifest that cannot be parsed hashes as its bytes.
    """
    path = folder / CACHE_DIR / MANIFEST
    if not path.is_file():
        return None
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        text = _audio_text(body)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return sha256_file(path)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
