"""TMHINT-QI (Chen et al., "InQSS", 2022): enhanced Mandarin speech with per-rating quality scores.

The data root is the unzipped `TMHINTQI.zip` (linked from the InQSS README):

```
<data root>/
  raw_data.csv      # idx,method,uttr,snr,noise,quality_score,intelligibility_score,file_name
                    # ONE ROW PER RATING; file_name = the wav stem, e.g. DDAE_snr-2_babble_TMHINT_b2_21_02
  train/*.wav  test/*.wav      # <file_name>.wav, 16 kHz
```

Clips are the distinct `file_name`s of `raw_data.csv`; `mos` is the mean of the clip's
`quality_score`s, `n_ratings` their count and `rating_std` their sample (n-1) standard deviation.
Rows whose `quality_score` is empty or NA (rows that only carry an intelligibility score) do not
count as ratings. Clips with no valid quality score at all are left out and recorded as a skip (the
corpus has four: `FCN_snr0_street_TMHINT_b2_22_03`, `Trans_snr2_pink_TMHINT_g4_24_09`,
`DDAE_snr2_pink_TMHINT_b2_22_01`, `DDAE_snr5_white_TMHINT_g4_24_07`). A non-numeric score, or one
outside the 1–5 scale, is an error naming the line.

Keys, from the file name `{method}_{snr}_{noise}_TMHINT_<spk>_<list>_<sent>` (`.wav` and a
`train/` or `test/` prefix are tolerated in `file_name`):

- `clip_id` = the file name stem.
- `system_id` = everything before `_TMHINT_`, e.g. `DDAE_snr-2_babble`, `Noisy_snr5_white`. Clean
  clips are named `clean_TMHINT_<spk>_<list>_<sent>` and get `clean`; a name starting with
  `TMHINT_` (no method at all) gets `TMHINT`. The name is used rather than the `method, snr, noise`
  columns because how those columns spell clean clips is not documented.
- `content_id` = `<spk>_<list>_<sent>` (e.g. `b2_21_02`), `speaker_id` = `<spk>` (e.g. `b2`).
- `audio_path` = `train/<stem>.wav` or `test/<stem>.wav`; `sample_rate` = 16000.

Train vs test. The public prep scripts (SHEET's `egs/tmhint-qi`) take the split from the folder the
wav lies in (`train/` or `test/`) and join `raw_data.csv` on `<folder>/<file_name>.wav`, so
`file_name` carries no folder; the InQSS paper's test set is speakers b2 and g4. Option `split_by`:

- `path`: a `train/`/`test/` prefix in `file_name` if there is one, else the folder holding
  `<file_name>.wav` (so it needs the audio, or the prefixes, and fails with `labels_only` otherwise).
- `speaker`: test iff the speaker is b2 or g4 (`TEST_SPEAKERS`), train otherwise; never looks at
  audio.
- `auto` (default): the prefix if present; else the wav's folder when reading with audio; else
  (`labels_only`) the speaker rule. Clips whose folder contradicts the speaker rule keep the
  folder's split and are reported as a kept-with-caveat skip, because a `labels_only` read would
  place them differently.

Dev. The corpus has no dev set (SHEET samples 10% of the train wavs with seed 1337). Here dev is
made of whole content groups so no `<spk>_<list>_<sent>` is in both train and dev: the train
clips' content ids are sorted, `k = round(dev_fraction * n)` of the `n` ids (Python `round`) are
drawn with `numpy.random.default_rng(dev_seed).choice(sorted_ids, size=k, replace=False)`, and
every train clip of a drawn content id moves to dev. Options `dev_fraction` (default 0.1, in
[0, 1)) and `dev_seed` (default 1337). The draw depends only on the train content ids and the
options, never on row order.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from benchmark.corpora._native import (
    Skip,
    check_root,
    clip_table,
    layout_hint,
    parse_float,
    rating_stats,
    read_rows,
    require_file,
)
from benchmark.errors import DataError

CORPUS = "tmhint_qi"
SAMPLE_RATE = 16000

LAYOUT = """\
<data root>/
  raw_data.csv      # idx,method,uttr,snr,noise,quality_score,intelligibility_score,file_name
                    # ONE ROW PER RATING; file_name = the wav stem, e.g. DDAE_snr-2_babble_TMHINT_b2_21_02
  train/*.wav  test/*.wav      # <file_name>.wav, 16 kHz
"""

METADATA = "raw_data.csv"
HEADER: tuple[str, ...] = (
    "idx",
    "method",
    "uttr",
    "snr",
    "noise",
    "quality_score",
    "intelligibility_score",
    "file_name",
)
REQUIRED: tuple[str, ...] = ("quality_score", "file_name")
FOLDERS = ("train", "test")
TEST_SPEAKERS = frozenset({"b2", "g4"})
SCALE = (1.0, 5.0)

SPLIT_BY = ("auto", "path", "speaker")
OPTIONS = ("split_by", "dev_fraction", "dev_seed")
DEFAULTS: dict[str, Any] = {"split_by": "auto", "dev_fraction": 0.1, "dev_seed": 1337}

NAME = re.compile(
    r"^(?:(?P<system>.+)_)?TMHINT_(?P<speaker>[A-Za-z]+\d+)_(?P<list>\d+)_(?P<sent>\d+)$"
)
NAME_HINT = (
    "{method}_{snr}_{noise}_TMHINT_<spk>_<list>_<sent> (e.g. DDAE_snr-2_babble_TMHINT_b2_21_02 "
    "or clean_TMHINT_b1_01_03)"
)
MISSING_VALUES = frozenset({"", "na", "nan", "none", "null"})


@dataclass
class _Clip:
    stem: str
    system: str
    speaker: str
    content: str
    first: str
    folder: str | None = None
    scores: list[float] = field(default_factory=list)
    empty_rows: int = 0


def _options(options: dict[str, Any]) -> tuple[str, float, int]:
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise DataError(
            f"tmhint_qi reader: unknown option(s) {', '.join(unknown)} "
            f"(known: {', '.join(OPTIONS)})"
        )
    merged = {**DEFAULTS, **options}
    split_by = merged["split_by"]
    if split_by not in SPLIT_BY:
        raise DataError(
            f"tmhint_qi reader: option 'split_by' must be one of {', '.join(SPLIT_BY)}; "
            f"got {split_by!r}"
        )
    fraction = merged["dev_fraction"]
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        raise DataError(
            f"tmhint_qi reader: option 'dev_fraction' must be a number; got {fraction!r}"
        )
    if not 0.0 <= fraction < 1.0:
        raise DataError(
            f"tmhint_qi reader: option 'dev_fraction' must be in [0, 1); got {fraction}"
        )
    seed = merged["dev_seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DataError(
            f"tmhint_qi reader: option 'dev_seed' must be a non-negative integer; got {seed!r}"
        )
    return split_by, float(fraction), seed


def _parse_name(value: str, path: Path, line: int) -> tuple[str | None, str, re.Match[str]]:
    """(folder prefix or None, stem, name match) of one `file_name` cell."""
    rel = value.strip().replace("\\", "/")
    rel = rel.removeprefix("./")
    folder, _, name = rel.rpartition("/")
    if folder and folder not in FOLDERS:
        raise DataError(
            f"{path}:{line}: field 'file_name': '{value}' lies in '{folder}/'; expected a bare "
            f"wav stem, optionally prefixed by train/ or test/; {NAME_HINT}"
        )
    stem = name[:-4] if name.lower().endswith(".wav") else name
    match = NAME.match(stem)
    if match is None:
        raise DataError(
            f"{path}:{line}: field 'file_name': '{value}' does not follow the TMHINT-QI naming "
            f"{NAME_HINT}"
        )
    return folder or None, stem, match


def _read_ratings(path: Path) -> dict[str, _Clip]:
    clips: dict[str, _Clip] = {}
    for line, raw in read_rows(
        path, corpus=CORPUS, layout=LAYOUT, header=HEADER, required=REQUIRED
    ):
        assert isinstance(raw, dict)
        folder, stem, match = _parse_name(raw["file_name"], path, line)
        clip = clips.get(stem)
        if clip is None:
            speaker = match["speaker"]
            clip = clips[stem] = _Clip(
                stem=stem,
                system=match["system"] or "TMHINT",
                speaker=speaker,
                content=f"{speaker}_{match['list']}_{match['sent']}",
                first=f"{path}:{line}",
                folder=folder,
            )
        elif folder is not None and clip.folder is not None and folder != clip.folder:
            raise DataError(
                f"{path}:{line}: field 'file_name': '{raw['file_name']}' puts {stem} in {folder}/ "
                f"but {clip.first} put it in {clip.folder}/"
            )
        elif folder is not None:
            clip.folder = folder
        value = raw["quality_score"]
        if value.strip().lower() in MISSING_VALUES:
            clip.empty_rows += 1
            continue
        score = parse_float(value, path, line, "quality_score")
        if not SCALE[0] <= score <= SCALE[1]:
            raise DataError(
                f"{path}:{line}: field 'quality_score': {value} is outside the 1–5 quality scale"
            )
        clip.scores.append(score)
    if not clips:
        raise DataError(f"{path}: no rating rows (only a header?); {layout_hint(CORPUS, LAYOUT)}")
    return clips


def _wav_names(folder: Path) -> set[str]:
    """Stems of the wavs in one audio folder, listed once instead of one stat per clip."""
    if not folder.is_dir():
        return set()
    with os.scandir(folder) as entries:
        return {e.name[:-4] for e in entries if e.name.lower().endswith(".wav") and e.is_file()}


def _speaker_split(clip: _Clip) -> str:
    return "test" if clip.speaker in TEST_SPEAKERS else "train"


def _folders(
    root: Path, clips: list[_Clip], split_by: str, labels_only: bool
) -> tuple[dict[str, str], list[str]]:
    """The audio folder (= train/test split) of every clip, and the clips that contradict the
    speaker rule."""
    out: dict[str, str] = {}
    if split_by == "speaker":
        return {c.stem: _speaker_split(c) for c in clips}, []
    need_audio = [c for c in clips if c.folder is None]
    if need_audio and labels_only and split_by == "path":
        raise DataError(
            f"{root / METADATA}: split_by 'path' needs the train/ and test/ wav folders (or a "
            f"train/ or test/ prefix in file_name, e.g. {need_audio[0].first}), but labels_only "
            f"reads metadata only; use split_by 'auto' or 'speaker'"
        )
    names: dict[str, set[str]] = {}
    if need_audio and not labels_only:
        names = {f: _wav_names(root / f) for f in FOLDERS}
        if not any(names.values()):
            raise DataError(
                f"{root}: no wavs under train/ or test/; split_by '{split_by}' takes each clip's "
                f"split from the folder its wav lies in (read with labels_only, or use split_by "
                f"'speaker'); {layout_hint(CORPUS, LAYOUT)}"
            )
    missing: list[str] = []
    for clip in clips:
        if clip.folder is not None:
            out[clip.stem] = clip.folder
        elif labels_only:
            out[clip.stem] = _speaker_split(clip)
        else:
            found = [f for f in FOLDERS if clip.stem in names[f]]
            if len(found) == 2:
                raise DataError(
                    f"{root}: {clip.stem}.wav is in both train/ and test/, so its split is "
                    f"ambiguous (listed at {clip.first})"
                )
            if not found:
                missing.append(clip.stem)
                continue
            out[clip.stem] = found[0]
    if missing:
        shown = ", ".join(f"{s}.wav" for s in sorted(missing)[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise DataError(
            f"{root}: {len(missing)} clip(s) of {METADATA} have no wav under train/ or test/ "
            f"({shown}{more}); split_by '{split_by}' needs it to place the clip (read with "
            f"labels_only, or use split_by 'speaker'); {layout_hint(CORPUS, LAYOUT)}"
        )
    disagree = [c.stem for c in clips if out[c.stem] != _speaker_split(c)]
    return out, disagree


def dev_contents(train_contents: set[str], fraction: float, seed: int) -> set[str]:
    """The content groups moved from train to dev (the rule in the module docstring)."""
    ordered = sorted(train_contents)
    k = round(fraction * len(ordered))
    if k == 0:
        return set()
    drawn = np.random.default_rng(seed).choice(ordered, size=k, replace=False)
    return {str(c) for c in drawn}


class TmhintQiReader:
    name = CORPUS

    def available(self, root: Path, options: dict[str, Any]) -> bool:
        _options(options)
        return (Path(root) / METADATA).is_file()

    def read(self, root: Path, options: dict[str, Any], *, labels_only: bool = False) -> pa.Table:
        split_by, fraction, seed = _options(options)
        root = check_root(Path(root), CORPUS, LAYOUT)
        path = require_file(root, METADATA, CORPUS, LAYOUT, "one row per rating")
        clips = _read_ratings(path)
        unrated = sorted(s for s, c in clips.items() if not c.scores)
        rated = [clips[s] for s in sorted(clips) if clips[s].scores]
        if not rated:
            raise DataError(f"{path}: no clip has a valid quality_score")
        folders, disagree = _folders(root, rated, split_by, labels_only)
        dev = dev_contents({c.content for c in rated if folders[c.stem] == "train"}, fraction, seed)
        rows = []
        for clip in rated:
            folder = folders[clip.stem]
            mos, n, std = rating_stats(clip.scores)
            rows.append(
                {
                    "clip_id": clip.stem,
                    "corpus": CORPUS,
                    "split": "dev" if folder == "train" and clip.content in dev else folder,
                    "subset": None,
                    "audio_path": f"{folder}/{clip.stem}.wav",
                    "mos": mos,
                    "n_ratings": n,
                    "rating_std": std,
                    "system_id": clip.system,
                    "speaker_id": clip.speaker,
                    "content_id": clip.content,
                    "sample_rate": SAMPLE_RATE,
                    "duration": None,
                }
            )
        skips = [
            Skip.of(
                f"no valid quality_score in {METADATA} (every rating row empty or NA)", unrated
            ),
            Skip.of(
                "some rating rows have an empty or NA quality_score; MOS from the remaining ratings",
                [c.stem for c in rated if c.empty_rows],
                kept=True,
            ),
            Skip.of(
                f"wav folder contradicts the test-speaker rule ({', '.join(sorted(TEST_SPEAKERS))} "
                f"= test): split follows the folder, a labels_only read would differ",
                disagree,
                kept=True,
            ),
        ]
        return clip_table(rows, skips)
