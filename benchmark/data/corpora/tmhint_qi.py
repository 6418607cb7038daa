"""TMHINT-QI (Chen et al., "InQSS", 2022): enhanced Mandarin speech with per-rating quality scores.

The data root is the unzipped `TMHINTQI.zip` (linked from the InQSS README):

```
<data root>/
  raw_data.csv      # idx,method,uttr,snr,noise,quality_score,intelligibility_score,file_name
                    # ONE ROW PER RATING; file_name = the wav stem, e.g. DDAE_snr-2_babble_TMHINT_b2_21_02
  train/*.wav  test/*.wav      # <file_name>.wav, 16 kHz
```

Clips are the distinct `file_name`s of `raw_data.csv`; `mos` is the mean of the clip's
`quality_score`s, `ratings` those scores (file order), `n_ratings` their count and `rating_std`
their sample (n-1) standard deviation. Rows whose `quality_score` is empty or NA (rows that only
carry an intelligibility score) do not count as ratings.

Label column (option `label_column`, set by a task's `label.column`): `intelligibility_score`
takes all of the above from that column instead (`quality_score` is the default). Its scale is
not checked here (not documented by the release: the task declares it, and `validate_clips`
enforces it); a header without the column is a one-line error naming the file and the column.
Clips with no valid score in the column are left out as for quality. The split rules below apply
unchanged; the dev draw sees the train sentences of the clips rated in the chosen column, which
are the same sentences for both columns unless every clip of a sentence lacks one score. Clips with no valid quality score at all are left out and recorded as a skip (the
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
- `audio_path` = `<folder>/<stem>.wav`, the folder its wav lies in (or its prefix; with
  `labels_only` and a bare stem, its split); `sample_rate` = 16000.

Train vs test. The split is the folder a wav lies in (`train/` or `test/`), never the speaker:
the test folder holds speakers b2 and g4, but so does most of the train folder (checked on the real
label data: 12,216 of the 12,937 train clips are b2/g4, and every test sentence also occurs in
train), so no speaker rule reproduces it. The public prep scripts (SHEET's `egs/tmhint-qi`) also
take the folder, joining `raw_data.csv` on `<folder>/<file_name>.wav`; `file_name` itself carries
no folder. Without the folders the split comes from the list of the release's 1,978 rated test
stems that ships with the package (`data/tmhint_qi_test_stems.txt`, from PM25/MOS-Datasets @
13b5b611, `audio/tmhintqi/meta/test.csv`, whose split was taken from the release's folders;
provenance in its `#` header; its sha256 `TEST_STEMS_SHA256` is checked on every read). Option
`split_by`:

- `auto` (default): a `train/`/`test/` prefix in `file_name` if there is one; else the folder
  holding `<file_name>.wav` when reading with audio; else (`labels_only`) the list: test iff the
  stem is listed, train otherwise.
- `path`: the prefix or the wav's folder only; with `labels_only` and bare stems it is an error
  (it needs the folders, the prefixes, or split_by `list`).
- `list`: the list alone (the wav's folder, when read, only gives `audio_path`).

Option `test_stems`: a list to use instead of the shipped one (one stem per line, `#` comment lines;
a path relative to the data root, or absolute). Checks, so that a wrong split is never silent:
when the list places clips it must contain at least one rated clip, else the read is refused (not
the release, or another list is needed); listed stems absent from `raw_data.csv` are reported as a
skip when the list places clips (none with the full release); a clip whose folder or prefix
contradicts the list keeps the split `split_by` gives it and is reported as a kept-with-caveat skip.

Dev. The corpus has no dev set (SHEET samples 10% of the train wavs with seed 1337). Here dev is
made of whole content groups so no `<spk>_<list>_<sent>` is in both train and dev: the train
clips' content ids are sorted, `k = round(dev_fraction * n)` of the `n` ids (Python `round`) are
drawn with `numpy.random.default_rng(dev_seed).choice(sorted_ids, size=k, replace=False)`, and
every train clip of a drawn content id moves to dev (test sentences also occur in train, so a
sentence can be in test and in train or dev; only train and dev are kept apart). Options
`dev_fraction` (default 0.1, in [0, 1)) and `dev_seed` (default 1337). The draw depends only on
the train content ids and the options, never on row order.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from benchmark.data.corpora._native import (
    Skip,
    check_root,
    clip_table,
    layout_hint,
    parse_float,
    rating_stats,
    read_rows,
    require_columns,
    require_file,
    split_label,
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
QUALITY = "quality_score"
LABEL_COLUMNS: tuple[str, ...] = (QUALITY, "intelligibility_score")
"""Score columns a task may take its label from (`label_column`); quality is the default."""
FOLDERS = ("train", "test")
SCALE = (1.0, 5.0)

TEST_STEMS_FILE = Path(__file__).resolve().parent / "data" / "tmhint_qi_test_stems.txt"
"""The release's 1,978 rated test stems (provenance in the file's `#` header)."""
TEST_STEMS_SHA256 = "f563597c3b1fec284fee1cf3508017ccfd110defdc844b112fdbc7ee8df08e1a"
SHIPPED_LIST = f"the shipped list of TMHINT-QI test stems ({TEST_STEMS_FILE.name})"

SPLIT_BY = ("auto", "path", "list")
OPTIONS = ("split_by", "test_stems", "dev_fraction", "dev_seed")
DEFAULTS: dict[str, Any] = {
    "split_by": "auto",
    "test_stems": None,
    "dev_fraction": 0.1,
    "dev_seed": 1337,
}

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


@dataclass(frozen=True)
class _Options:
    split_by: str
    test_stems: str | None
    dev_fraction: float
    dev_seed: int
    column: str = QUALITY


@dataclass(frozen=True)
class StemList:
    """A list of test stems and how messages name it."""

    stems: frozenset[str]
    label: str


def _options(options: dict[str, Any]) -> _Options:
    options, column = split_label(options, CORPUS, LABEL_COLUMNS)
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
    test_stems = merged["test_stems"]
    if test_stems is not None and (not isinstance(test_stems, str) or not test_stems.strip()):
        raise DataError(
            f"tmhint_qi reader: option 'test_stems' must be a file path (relative to the data "
            f"root, or absolute); got {test_stems!r}"
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
    return _Options(split_by, test_stems, float(fraction), seed, column or QUALITY)


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


def _read_ratings(path: Path, column: str = QUALITY) -> dict[str, _Clip]:
    """Every clip of `raw_data.csv` with its scores in `column` (one per rating row)."""
    if column != QUALITY:
        require_columns(path, [column], "the task's label column")
    clips: dict[str, _Clip] = {}
    for line, raw in read_rows(
        path, corpus=CORPUS, layout=LAYOUT, header=HEADER, required=(column, "file_name")
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
        value = raw[column]
        if value.strip().lower() in MISSING_VALUES:
            clip.empty_rows += 1
            continue
        score = parse_float(value, path, line, column)
        if column == QUALITY and not SCALE[0] <= score <= SCALE[1]:
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


def read_test_stems(path: Path, *, sha256: str | None = None) -> frozenset[str]:
    """The stems listed in a test-stem file: one per line (`.wav` and a `test/` prefix tolerated),
    `#` comment lines and blank lines skipped. With `sha256`, the file's bytes must hash to it."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the list of test stems: {exc.strerror}") from None
    if sha256 is not None:
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256:
            raise DataError(
                f"{path}: sha256 {digest} differs from the recorded {sha256}: the shipped list of "
                f"TMHINT-QI test stems is damaged; reinstall mosrm-bench (or give a list with "
                f"option 'test_stems')"
            )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; expected one test-clip stem per line") from None
    stems: set[str] = set()
    for line, raw in enumerate(text.splitlines(), start=1):
        value = raw.strip()
        if not value or value.startswith("#"):
            continue
        name = value.replace("\\", "/").removeprefix("./").removeprefix("test/")
        stem = name[:-4] if name.lower().endswith(".wav") else name
        if NAME.match(stem) is None:
            raise DataError(
                f"{path}:{line}: '{value}' is not a TMHINT-QI wav stem; expected one test-clip "
                f"stem per line ({NAME_HINT}) and '#' comment lines"
            )
        stems.add(stem)
    if not stems:
        raise DataError(f"{path}: no stems, only comments or blank lines; expected one per line")
    return frozenset(stems)


def _test_stems(root: Path, value: str | None) -> StemList:
    """The shipped list (sha256-checked), or the user's list of option `test_stems`."""
    if value is None:
        return StemList(read_test_stems(TEST_STEMS_FILE, sha256=TEST_STEMS_SHA256), SHIPPED_LIST)
    path = root / Path(value).expanduser()
    if not path.is_file():
        raise DataError(
            f"{path}: list of test stems not found (option 'test_stems' is {value!r}: a file "
            f"relative to the data root {root}, or absolute)"
        )
    return StemList(read_test_stems(path), f"the test_stems list {value}")


@dataclass
class _Placement:
    split: dict[str, str] = field(default_factory=dict)
    folder: dict[str, str] = field(default_factory=dict)
    """The folder of each clip's wav (its prefix, the folder found, or else its split)."""
    by_list: int = 0
    """How many clips the list placed."""
    disagree: list[str] = field(default_factory=list)
    """Clips whose folder or prefix contradicts the list."""


def _place(
    root: Path, clips: list[_Clip], split_by: str, listed: StemList, labels_only: bool
) -> _Placement:
    """The split and wav folder of every rated clip (the rule in the module docstring)."""
    need_audio = [c for c in clips if c.folder is None]
    if need_audio and labels_only and split_by == "path":
        raise DataError(
            f"{root / METADATA}: split_by 'path' takes the split from the train/ and test/ wav "
            f"folders or a train/ or test/ prefix in file_name, but file_name is a bare stem "
            f"({need_audio[0].first}) and labels_only reads no audio; read with the audio "
            f"folders, or use split_by 'list' (or 'auto') to take it from the list of test stems"
        )
    names: dict[str, set[str]] = {}
    if need_audio and not labels_only:
        names = {f: _wav_names(root / f) for f in FOLDERS}
        if not any(names.values()):
            raise DataError(
                f"{root}: no wavs under train/ or test/, where the audio of every clip is read "
                f"from (read with labels_only for the pair index from {METADATA} alone: the "
                f"split then comes from the list of test stems); {layout_hint(CORPUS, LAYOUT)}"
            )
    out = _Placement()
    missing: list[str] = []
    for clip in clips:
        folder = clip.folder
        if folder is None and not labels_only:
            found = [f for f in FOLDERS if clip.stem in names[f]]
            if len(found) == 2:
                raise DataError(
                    f"{root}: {clip.stem}.wav is in both train/ and test/, so its split is "
                    f"ambiguous (listed at {clip.first})"
                )
            if not found:
                missing.append(clip.stem)
                continue
            folder = found[0]
        listed_as = "test" if clip.stem in listed.stems else "train"
        if split_by == "list" or folder is None:
            out.split[clip.stem] = listed_as
            out.by_list += 1
        else:
            out.split[clip.stem] = folder
        out.folder[clip.stem] = folder or listed_as
        if folder is not None and folder != listed_as:
            out.disagree.append(clip.stem)
    if missing:
        shown = ", ".join(f"{s}.wav" for s in sorted(missing)[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise DataError(
            f"{root}: {len(missing)} clip(s) of {METADATA} have no wav under train/ or test/ "
            f"({shown}{more}); reading with audio needs every wav (read with labels_only for "
            f"the pair index from {METADATA} alone); {layout_hint(CORPUS, LAYOUT)}"
        )
    if out.by_list and not any(c.stem in listed.stems for c in clips):
        raise DataError(
            f"{root / METADATA}: none of its {len(clips)} rated clips is in {listed.label} "
            f"({len(listed.stems)} stems), so the list cannot give the split (test iff listed): "
            f"the file is not the release the list was made from; give the right list with "
            f"option 'test_stems', or read with the train/ and test/ wav folders (or train/ or "
            f"test/ prefixes in file_name)"
        )
    return out


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
        opts = _options(options)
        root = check_root(Path(root), CORPUS, LAYOUT)
        path = require_file(root, METADATA, CORPUS, LAYOUT, "one row per rating")
        listed = _test_stems(root, opts.test_stems)
        column = opts.column
        clips = _read_ratings(path, column)
        unrated = sorted(s for s, c in clips.items() if not c.scores)
        rated = [clips[s] for s in sorted(clips) if clips[s].scores]
        if not rated:
            raise DataError(f"{path}: no clip has a valid {column}")
        placed = _place(root, rated, opts.split_by, listed, labels_only)
        train = {c.content for c in rated if placed.split[c.stem] == "train"}
        dev = dev_contents(train, opts.dev_fraction, opts.dev_seed)
        rows = []
        for clip in rated:
            split = placed.split[clip.stem]
            mos, n, std = rating_stats(clip.scores)
            rows.append(
                {
                    "clip_id": clip.stem,
                    "corpus": CORPUS,
                    "split": "dev" if split == "train" and clip.content in dev else split,
                    "subset": None,
                    "audio_path": f"{placed.folder[clip.stem]}/{clip.stem}.wav",
                    "mos": mos,
                    "n_ratings": n,
                    "rating_std": std,
                    "ratings": clip.scores,
                    "system_id": clip.system,
                    "speaker_id": clip.speaker,
                    "content_id": clip.content,
                    "sample_rate": SAMPLE_RATE,
                    "duration": None,
                }
            )
        absent = sorted(listed.stems - set(clips)) if placed.by_list else []
        follows = (
            "split follows the list (split_by 'list'), audio read from the folder"
            if opts.split_by == "list"
            else "split follows the folder (the list alone would place it in the other split)"
        )
        skips = [
            Skip.of(f"no valid {column} in {METADATA} (every rating row empty or NA)", unrated),
            Skip.of(
                f"some rating rows have an empty or NA {column}; MOS from the remaining ratings",
                [c.stem for c in rated if c.empty_rows],
                kept=True,
            ),
            Skip.of(
                f"listed as test clips in {listed.label} but absent from {METADATA}, so the "
                f"test split lacks them",
                absent,
            ),
            Skip.of(
                f"wav folder (or file_name prefix) contradicts {listed.label}: {follows}",
                placed.disagree,
                kept=True,
            ),
        ]
        return clip_table(rows, skips)
