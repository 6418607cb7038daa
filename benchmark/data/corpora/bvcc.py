"""BVCC (VoiceMOS Challenge 2022, main track): the native `main/` folder of Zenodo record 6572573.

The data root is the extracted `main/` folder (the one that contains `DATA/`):

```
main/
  secret_sys_mappings.txt  secret_utt_mappings.txt        (not read)
  DATA/mydata_system.csv                                  (not read; system_ID,mean)
  DATA/sets/train_mos_list.txt  val_mos_list.txt  test_mos_list.txt
      no header, one clip a line:  sys64e2f-utt9c183cd.wav,3.375
  DATA/sets/TRAINSET  DEVSET  TESTSET
      one row per rating, no header:  sysID,uttID,rating,ignore,listenerinfo
      sys64e2f,sys64e2f-utt9c183cd.wav,4,VDP1ovyrBzg8_1,{}_30-39_bZPQE7w4Zl3g_Female_Valid_1_No
  DATA/wav/sys64e2f-utt9c183cd.wav                        16 kHz; the Blizzard clips appear only
      after running the gathering scripts of main.tar.gz (01_get.py, 02_gather.py, 03_preprocess.py)
  transcriptions_clustered.csv                            option cluster_file; UTMOS22 strong/ file
      header: wav_name,transcription,track,cluster,reference
```

What the reader produces, and why:

- Splits: `train_mos_list.txt` → train, `val_mos_list.txt` → dev, `test_mos_list.txt` → test.
  `clip_id` is the wav name without `.wav`, `system_id` its `sysXXXXX` prefix (before the first
  `-`), `audio_path` is `DATA/wav/<wav name>`, `sample_rate` 16000, `speaker_id` unknown.
- MOS is the official list value. `n_ratings` / `rating_std` and the individual `ratings` (in
  file order) come from the per-rating file of the same split; the mean of those ratings must match the list MOS within 1e-6, otherwise the download
  is corrupt or mixed up and the reader stops (a silently wrong MOS would corrupt every pair label).
  A per-rating file may start with a header line (the release has none). Clips without any
  per-rating row keep n/std unknown and are reported as a kept skip.
- Content key: BVCC names are obfuscated, so same-content pairs need the UTMOS22 text clusters
  (`cluster` column, 343 clusters over the main track): `content_id = "cluster-<n>"`. Clips missing
  from the cluster file keep no content key (they still join same-system and cross pairs) and are
  reported as a kept skip.
- Audio: unless `labels_only`, clips whose `DATA/wav/<name>` is absent are left out and reported
  (the Blizzard part of BVCC cannot be redistributed and must be gathered locally); no audio at all
  is an error, since it almost always means the gathering scripts were never run.
- A clip listed twice (in one list or in two) is an error: its split would be ambiguous.

Options (`data.options` in the task YAML):

- `cluster_file` (default `transcriptions_clustered.csv`): the UTMOS22 cluster file, relative to the
  data root or absolute. `mosrm download bvcc` fetches it (MIT-licensed, from
  sarulab-speech/UTMOS22, `strong/transcriptions_clustered.csv`). `null` runs without content keys:
  the same_content relation then has no pairs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from benchmark.data.corpora._native import (
    Skip,
    check_root,
    clip_table,
    layout_hint,
    parse_float,
    rating_stats,
    read_rows,
    require_file,
    split_label,
)
from benchmark.errors import DataError

CORPUS = "bvcc"
SAMPLE_RATE = 16000

LAYOUT = """\
main/
  secret_sys_mappings.txt  secret_utt_mappings.txt        (not read)
  DATA/mydata_system.csv                                  (not read; system_ID,mean)
  DATA/sets/train_mos_list.txt  val_mos_list.txt  test_mos_list.txt
      no header, one clip a line:  sys64e2f-utt9c183cd.wav,3.375
  DATA/sets/TRAINSET  DEVSET  TESTSET
      one row per rating, no header:  sysID,uttID,rating,ignore,listenerinfo
      sys64e2f,sys64e2f-utt9c183cd.wav,4,VDP1ovyrBzg8_1,{}_30-39_bZPQE7w4Zl3g_Female_Valid_1_No
  DATA/wav/sys64e2f-utt9c183cd.wav                        16 kHz; the Blizzard clips appear only
      after running the gathering scripts of main.tar.gz (01_get.py, 02_gather.py, 03_preprocess.py)
  transcriptions_clustered.csv                            option cluster_file; UTMOS22 strong/ file
      header: wav_name,transcription,track,cluster,reference
"""

SETS_DIR = "DATA/sets"
WAV_DIR = "DATA/wav"
SPLITS: tuple[tuple[str, str, str], ...] = (
    ("train", "train_mos_list.txt", "TRAINSET"),
    ("dev", "val_mos_list.txt", "DEVSET"),
    ("test", "test_mos_list.txt", "TESTSET"),
)
"""(split, official MOS list, per-rating file), all under `DATA/sets/`."""

DEFAULT_CLUSTER_FILE = "transcriptions_clustered.csv"
CLUSTER_HEADER = ("wav_name", "transcription", "track", "cluster", "reference")
CLUSTER_SOURCE = (
    "https://raw.githubusercontent.com/sarulab-speech/UTMOS22/master/"
    "strong/transcriptions_clustered.csv"
)
OPTIONS: dict[str, str] = {
    "cluster_file": f"UTMOS22 cluster file, relative to the data root (default "
    f"{DEFAULT_CLUSTER_FILE}); null = no content keys",
}
MOS_TOLERANCE = 1e-6
"""Per-rating mean vs list MOS: the lists print means of 8 integer ratings (exact in binary), so
anything beyond float noise is a real disagreement."""

GATHER_HINT = (
    "the Blizzard Challenge clips are not redistributed: gather them with the scripts bundled in "
    "main.tar.gz (01_get.py, 02_gather.py, 03_preprocess.py, see its README)"
)


def _error(message: str) -> DataError:
    return DataError(f"{message}; {layout_hint(CORPUS, LAYOUT)}")


def _cluster_path(root: Path, options: Mapping[str, Any]) -> Path | None:
    """The cluster file named by the options (None when explicitly disabled)."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        known = "; ".join(f"{k}: {v}" for k, v in OPTIONS.items())
        raise DataError(
            f"bvcc reader: unknown option(s) {', '.join(unknown)} (known options: {known})"
        )
    value = options.get("cluster_file", DEFAULT_CLUSTER_FILE)
    if value is None:
        return None
    if not isinstance(value, str | Path) or not str(value).strip():
        raise DataError(
            f"bvcc reader: option 'cluster_file' must be a path (relative to the data root) or "
            f"null, got {value!r}"
        )
    path = Path(value).expanduser()
    return path if path.is_absolute() else root / path


def _shown(path: Path, root: Path) -> str:
    """`path` relative to the data root when inside it: skip reasons end up in shared data cards."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _missing_cluster_file(path: Path) -> DataError:
    return _error(
        f"{path}: missing UTMOS22 cluster file (option cluster_file; it gives BVCC its content "
        f"keys). Put transcriptions_clustered.csv there: `mosrm download bvcc` fetches it (MIT "
        f"licence) from {CLUSTER_SOURCE}; or set `cluster_file: null` to run without content "
        f"keys (same_content then has no pairs)"
    )


def _float(value: str, path: Path, line: int, field: str) -> float:
    try:
        return parse_float(value, path, line, field)
    except DataError as exc:
        raise _error(str(exc)) from None


def _split_name(name: str, path: Path, line: int) -> tuple[str, str]:
    """(clip_id, system_id) of a BVCC wav name such as `sys64e2f-utt9c183cd.wav`."""
    stem = name[: -len(".wav")] if name.endswith(".wav") else ""
    system, dash, utt = stem.partition("-")
    if not (system and dash and utt):
        raise _error(
            f"{path}:{line}: '{name}' is not a BVCC wav name (expected <system>-<utterance>.wav, "
            f"e.g. sys64e2f-utt9c183cd.wav)"
        )
    return stem, system


def _read_list(path: Path) -> list[tuple[int, str, str, str, float]]:
    """(line, wav name, clip_id, system_id, MOS) for every clip of an official MOS list."""
    out = []
    for line, row in read_rows(path, corpus=CORPUS, layout=LAYOUT, header=None):
        if len(row) < 2:
            raise _error(
                f"{path}:{line}: {len(row)} field(s), expected 2 (<wav name>,<MOS>, no header, "
                f"e.g. sys64e2f-utt9c183cd.wav,3.375)"
            )
        name = row[0]
        clip_id, system = _split_name(name, path, line)
        out.append((line, name, clip_id, system, _float(row[1], path, line, "MOS")))
    if not out:
        raise _error(f"{path}: no clips listed")
    return out


def _looks_like_header(row: list[str]) -> bool:
    """A first line naming columns instead of holding a rating (the release has none)."""
    return len(row) >= 3 and row[0].lower() in {"sysid", "system_id", "systemid", "sys_id"}


def _read_ratings(path: Path) -> dict[str, list[float]]:
    """wav name -> ratings, from a per-rating file (TRAINSET, DEVSET, TESTSET)."""
    ratings: dict[str, list[float]] = {}
    for line, row in read_rows(path, corpus=CORPUS, layout=LAYOUT, header=None):
        if line == 1 and _looks_like_header(row):
            continue
        if len(row) < 3:
            raise _error(
                f"{path}:{line}: {len(row)} field(s), expected at least 3 "
                f"(sysID,uttID,rating,ignore,listenerinfo)"
            )
        system, name, value = row[0], row[1], row[2]
        _, name_system = _split_name(name, path, line)
        if system != name_system:
            raise _error(
                f"{path}:{line}: field 'sysID' is '{system}' but the utterance '{name}' "
                f"belongs to '{name_system}'"
            )
        ratings.setdefault(name, []).append(_float(value, path, line, "rating"))
    return ratings


def _read_clusters(path: Path) -> dict[str, str]:
    """wav name -> content key `cluster-<n>` from the UTMOS22 cluster file."""
    clusters: dict[str, str] = {}
    rows = read_rows(
        path,
        corpus=CORPUS,
        layout=LAYOUT,
        header=CLUSTER_HEADER,
        required=("wav_name", "cluster"),
    )
    for line, row in rows:
        name, value = row["wav_name"], row["cluster"]
        try:
            cluster = int(value)
        except ValueError:
            raise _error(
                f"{path}:{line}: field 'cluster': '{value}' is not an integer cluster id"
            ) from None
        content = f"cluster-{cluster}"
        if clusters.setdefault(name, content) != content:
            raise _error(
                f"{path}:{line}: '{name}' is listed again with another cluster "
                f"({clusters[name]} before, {content} here)"
            )
    return clusters


def _check_audio_folder(root: Path) -> Path:
    wav_dir = root / WAV_DIR
    has_wav = wav_dir.is_dir() and any(p.suffix == ".wav" for p in wav_dir.iterdir())
    if not has_wav:
        state = "is empty" if wav_dir.is_dir() else "is missing"
        raise _error(
            f"{wav_dir}: the audio folder {state}; {GATHER_HINT}; or build the pair index from "
            f"the labels alone with `mosrm prepare --labels-only`"
        )
    return wav_dir


class BvccReader:
    """Reader for the native BVCC `main/` folder (see the module docstring for the layout)."""

    name = CORPUS

    def available(self, root: Path, options: dict[str, Any]) -> bool:
        """True when the MOS lists, the per-rating files and the cluster file (if used) exist."""
        options, _ = split_label(options, CORPUS)
        root = Path(root)
        cluster = _cluster_path(root, options)
        needed = [
            root / SETS_DIR / f for _, mos_list, ratings in SPLITS for f in (mos_list, ratings)
        ]
        if cluster is not None:
            needed.append(cluster)
        return all(p.is_file() for p in needed)

    def read(self, root: Path, options: dict[str, Any], *, labels_only: bool = False) -> pa.Table:
        """The BVCC clip table; raises DataError for anything that contradicts the layout."""
        options, _ = split_label(options, CORPUS)
        root = check_root(Path(root), CORPUS, LAYOUT)
        cluster_path = _cluster_path(root, options)
        files = [
            (
                split,
                require_file(root, f"{SETS_DIR}/{mos_list}", CORPUS, LAYOUT, "official MOS list"),
                require_file(root, f"{SETS_DIR}/{per_rating}", CORPUS, LAYOUT, "per-rating scores"),
            )
            for split, mos_list, per_rating in SPLITS
        ]
        if cluster_path is not None and not cluster_path.is_file():
            raise _missing_cluster_file(cluster_path)
        clusters = _read_clusters(cluster_path) if cluster_path is not None else None
        wav_dir = None if labels_only else _check_audio_folder(root)

        rows: list[dict[str, Any]] = []
        seen: dict[str, tuple[Path, int]] = {}
        no_ratings: list[str] = []
        no_cluster: list[str] = []
        no_audio: list[str] = []
        for split, list_path, ratings_path in files:
            ratings = _read_ratings(ratings_path)
            for line, name, clip_id, system, mos in _read_list(list_path):
                if clip_id in seen:
                    first, first_line = seen[clip_id]
                    raise _error(
                        f"{list_path}:{line}: clip '{name}' is listed twice (first at "
                        f"{first}:{first_line}); each clip belongs to exactly one split"
                    )
                seen[clip_id] = (list_path, line)
                n_ratings = rating_std = None
                scores = ratings.get(name)
                if scores:
                    mean, n_ratings, rating_std = rating_stats(scores)
                    if not math.isclose(mean, mos, rel_tol=0.0, abs_tol=MOS_TOLERANCE):
                        raise _error(
                            f"clip '{name}': MOS {mos!r} in {list_path}:{line} but the mean of its "
                            f"{n_ratings} ratings in {ratings_path} is {mean!r}; the files "
                            f"disagree (a corrupt or mixed-up download?)"
                        )
                if wav_dir is not None and not (wav_dir / name).is_file():
                    no_audio.append(clip_id)
                    continue
                if not scores:
                    no_ratings.append(clip_id)
                content = None if clusters is None else clusters.get(name)
                if clusters is not None and content is None:
                    no_cluster.append(clip_id)
                rows.append(
                    {
                        "clip_id": clip_id,
                        "corpus": CORPUS,
                        "split": split,
                        "subset": None,
                        "audio_path": f"{WAV_DIR}/{name}",
                        "mos": mos,
                        "n_ratings": n_ratings,
                        "rating_std": rating_std,
                        "ratings": list(scores) if scores else None,
                        "system_id": system,
                        "speaker_id": None,
                        "content_id": content,
                        "sample_rate": SAMPLE_RATE,
                        "duration": None,
                    }
                )
        skips = [
            Skip.of(
                f"audio file missing under {WAV_DIR}/ ({GATHER_HINT}, then prepare again)",
                no_audio,
            ),
            Skip.of(
                f"no per-rating rows in {SETS_DIR}/TRAINSET, DEVSET or TESTSET: "
                f"n_ratings and rating_std unknown",
                no_ratings,
                kept=True,
            ),
        ]
        if cluster_path is None:
            skips.append(
                Skip.of(
                    "cluster_file: null, so no content key (no same_content pairs)",
                    [r["clip_id"] for r in rows],
                    kept=True,
                )
            )
        else:
            skips.append(
                Skip.of(
                    f"not in the cluster file {_shown(cluster_path, root)}: no content key (joins "
                    "same_system and cross pairs only)",
                    no_cluster,
                    kept=True,
                )
            )
        if not rows:
            raise _error(
                f"{root}: every listed clip's audio is missing under {WAV_DIR}/; {GATHER_HINT}"
            )
        return clip_table(rows, skips)
