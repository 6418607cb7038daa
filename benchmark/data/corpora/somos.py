"""SOMOS (Samsung Open MOS, Zenodo record 7378801): the extracted `somos.zip` plus `audios.zip`.

The data root is the folder that holds `training_files/` and `audios/`:

```
<data root>/
  audios/<sentenceId>_<systemId>.wav                  e.g. audios/novel_2007_0098_015.wav
  training_files/split1/clean/  (and full/)           option split (split1), option variant
    train_mos_list.txt  valid_mos_list.txt  test_mos_list.txt
        header: utteranceId,mean                      novel_2007_0098_015.wav,3.5
    TRAINSET  VALIDSET  TESTSET                       one row per rating
        header: systemId,utteranceId,choice,listenerId
        015,novel_2007_0098_015.wav,4,KEXM49572020611127
    train_system.csv  valid_system.csv  test_system.csv     (not read; systemId,mean)
  raw_scores_with_metadata/                           (not read)
```

What the reader produces, and why:

- Splits: `train_mos_list.txt` → train, `valid_mos_list.txt` → dev, `test_mos_list.txt` → test, from
  `training_files/<split>/<variant>/` (`split1/clean` by default, as the public prep scripts use).
- `clip_id` is the utteranceId without a trailing `.wav` (the release's lists carry it, as the public
  prep scripts show; ids without it are accepted too), `audio_path` is `audios/<clip_id>.wav`.
- `system_id` is the `systemId` of the per-rating rows; the utteranceId must end in `_<systemId>`
  (`novel_2007_0098_015` → system `015`), and `content_id` is what precedes it (the sentenceId,
  `novel_2007_0098`): the id and the ratings must tell the same story, or a file is mixed up.
- MOS is the list's `mean`; it must equal the mean of the clip's per-rating `choice`s within 1e-6,
  or within half a unit of the last digit `mean` is printed with (so a list rounded to 2 decimals
  still reads); anything else means the list and the ratings come from different releases or
  variants. `n_ratings` / `rating_std` (sample std) and the individual `ratings` (the choices, in
  file order) come from the per-rating rows; the table records the largest rounding allowed
  (`benchmark.data.tables.attach_mos_rounding`), so `validate_clips` accepts the printed MOS beside
  the exact mean of its ratings. Every listed clip
  must have per-rating rows; rows of clips not in the split's list are ignored.
- `sample_rate` is left unknown (the release is believed to be 24 kHz; `prepare` probes the files).
- A clip listed twice (in one list or in two) is an error: its split would be ambiguous.

Options (`data.options` in the task YAML):

- `split` (default `split1`): the folder under `training_files/` (split1 is the one published).
- `variant` (default `clean`): `clean` (ratings of reliable listeners only) or `full`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from benchmark.data.corpora._native import (
    check_root,
    clip_table,
    layout_hint,
    parse_float,
    printed_tolerance,
    rating_stats,
    read_rows,
    require_file,
    split_label,
)
from benchmark.data.tables import attach_mos_rounding
from benchmark.errors import DataError

CORPUS = "somos"

LAYOUT = """\
<data root>/
  audios/<sentenceId>_<systemId>.wav                  e.g. audios/novel_2007_0098_015.wav
  training_files/split1/clean/  (and full/)           option split (split1), option variant
    train_mos_list.txt  valid_mos_list.txt  test_mos_list.txt
        header: utteranceId,mean                      novel_2007_0098_015.wav,3.5
    TRAINSET  VALIDSET  TESTSET                       one row per rating
        header: systemId,utteranceId,choice,listenerId
        015,novel_2007_0098_015.wav,4,KEXM49572020611127
    train_system.csv  valid_system.csv  test_system.csv     (not read; systemId,mean)
  raw_scores_with_metadata/                           (not read)
"""

SPLITS: tuple[tuple[str, str, str], ...] = (
    ("train", "train_mos_list.txt", "TRAINSET"),
    ("dev", "valid_mos_list.txt", "VALIDSET"),
    ("test", "test_mos_list.txt", "TESTSET"),
)
"""(split, MOS list, per-rating file), all under `training_files/<split>/<variant>/`."""

LIST_HEADER = ("utteranceId", "mean")
RATING_HEADER = ("systemId", "utteranceId", "choice", "listenerId")
RATING_REQUIRED = ("systemId", "utteranceId", "choice")
VARIANTS = ("clean", "full")
OPTIONS: dict[str, str] = {
    "split": "folder under training_files/ (default split1)",
    "variant": "clean (default) or full",
}


def _error(message: str) -> DataError:
    return DataError(f"{message}; {layout_hint(CORPUS, LAYOUT)}")


def _options(options: Mapping[str, Any]) -> tuple[str, str]:
    """(split folder, variant) from the task options."""
    options, _ = split_label(options, CORPUS)
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        known = "; ".join(f"{k}: {v}" for k, v in OPTIONS.items())
        raise DataError(
            f"somos reader: unknown option(s) {', '.join(unknown)} (known options: {known})"
        )
    split = options.get("split", "split1")
    if not isinstance(split, str) or not split or "/" in split or "\\" in split or split[0] == ".":
        raise DataError(
            f"somos reader: option 'split' must name a folder under training_files/ "
            f"(e.g. split1), got {split!r}"
        )
    variant = options.get("variant", "clean")
    if variant not in VARIANTS:
        raise DataError(
            f"somos reader: option 'variant' must be one of {', '.join(VARIANTS)}, got {variant!r}"
        )
    return split, variant


def _folders(path: Path) -> str:
    names = sorted(p.name for p in path.iterdir() if p.is_dir()) if path.is_dir() else []
    return ", ".join(names) or "none"


def _set_dir(root: Path, split: str, variant: str) -> str:
    """`training_files/<split>/<variant>`, or a DataError saying which splits/variants exist."""
    rel = f"training_files/{split}/{variant}"
    split_dir = root / "training_files" / split
    if split_dir.is_dir() and not (split_dir / variant).is_dir():
        raise _error(
            f"{split_dir / variant}: no '{variant}' variant (option variant); variants present "
            f"in {split_dir}: {_folders(split_dir)}"
        )
    if (root / "training_files").is_dir() and not split_dir.is_dir():
        raise _error(
            f"{split_dir}: no split '{split}' (option split); splits present in "
            f"{root / 'training_files'}: {_folders(root / 'training_files')}"
        )
    return rel


def _float(value: str, path: Path, line: int, field: str) -> float:
    try:
        return parse_float(value, path, line, field)
    except DataError as exc:
        raise _error(str(exc)) from None


def _strip_wav(utterance: str) -> str:
    return utterance[: -len(".wav")] if utterance.endswith(".wav") else utterance


def _read_list(path: Path) -> list[tuple[int, str, float, float]]:
    """(line, clip_id, MOS, tolerance) for every clip of a MOS list."""
    out = []
    for line, row in read_rows(path, corpus=CORPUS, layout=LAYOUT, header=LIST_HEADER):
        clip_id = _strip_wav(row["utteranceId"])
        if not clip_id:
            raise _error(f"{path}:{line}: field 'utteranceId' is empty")
        mos = _float(row["mean"], path, line, "mean")
        out.append((line, clip_id, mos, printed_tolerance(row["mean"])))
    if not out:
        raise _error(f"{path}: no clips listed")
    return out


def _read_ratings(path: Path) -> dict[str, tuple[str, int, list[float]]]:
    """clip_id -> (systemId, first line, choices) from a per-rating file."""
    out: dict[str, tuple[str, int, list[float]]] = {}
    rows = read_rows(
        path, corpus=CORPUS, layout=LAYOUT, header=RATING_HEADER, required=RATING_REQUIRED
    )
    for line, row in rows:
        clip_id = _strip_wav(row["utteranceId"])
        system = row["systemId"]
        if not system:
            raise _error(f"{path}:{line}: field 'systemId' is empty")
        if not clip_id.endswith(f"_{system}") or len(clip_id) <= len(system) + 1:
            raise _error(
                f"{path}:{line}: field 'systemId' is '{system}' but utteranceId "
                f"'{row['utteranceId']}' does not end in '_{system}' "
                f"(expected <sentenceId>_<systemId>, e.g. novel_2007_0098_015)"
            )
        choice = _float(row["choice"], path, line, "choice")
        entry = out.setdefault(clip_id, (system, line, []))
        if entry[0] != system:  # e.g. `x_1_015` rated as system `015` and as `1_015`
            raise _error(f"{path}:{line}: '{clip_id}' rated under systems {entry[0]} and {system}")
        entry[2].append(choice)
    return out


class SomosReader:
    """Reader for the native SOMOS release (see the module docstring for the layout)."""

    name = CORPUS

    def available(self, root: Path, options: dict[str, Any]) -> bool:
        """True when the MOS lists and per-rating files of the chosen split/variant exist."""
        split, variant = _options(options)
        folder = Path(root) / "training_files" / split / variant
        return all((folder / f).is_file() for _, lst, per in SPLITS for f in (lst, per))

    def read(self, root: Path, options: dict[str, Any], *, labels_only: bool = False) -> pa.Table:
        """The SOMOS clip table; raises DataError for anything that contradicts the layout.

        Audio is never opened here (`prepare` checks and probes it), so `labels_only` changes
        nothing.
        """
        split_name, variant = _options(options)
        root = check_root(Path(root), CORPUS, LAYOUT)
        rel = _set_dir(root, split_name, variant)
        files = [
            (
                split,
                require_file(root, f"{rel}/{mos_list}", CORPUS, LAYOUT, "MOS list"),
                require_file(root, f"{rel}/{per_rating}", CORPUS, LAYOUT, "per-rating scores"),
            )
            for split, mos_list, per_rating in SPLITS
        ]
        rows: list[dict[str, Any]] = []
        seen: dict[str, tuple[Path, int]] = {}
        rounding = 0.0
        for split, list_path, ratings_path in files:
            ratings = _read_ratings(ratings_path)
            for line, clip_id, mos, tolerance in _read_list(list_path):
                if clip_id in seen:
                    first, first_line = seen[clip_id]
                    raise _error(
                        f"{list_path}:{line}: clip '{clip_id}' is listed twice (first at "
                        f"{first}:{first_line}); each clip belongs to exactly one split"
                    )
                seen[clip_id] = (list_path, line)
                if clip_id not in ratings:
                    raise _error(
                        f"{list_path}:{line}: clip '{clip_id}' has no per-rating rows in "
                        f"{ratings_path}, so its system and MOS cannot be checked (list and "
                        f"ratings from different variants or releases?)"
                    )
                system, _, choices = ratings[clip_id]
                mean, n_ratings, rating_std = rating_stats(choices)
                if not math.isclose(mean, mos, rel_tol=0.0, abs_tol=tolerance + 1e-12):
                    raise _error(
                        f"clip '{clip_id}': mean {mos!r} in {list_path}:{line} but the mean of its "
                        f"{n_ratings} ratings in {ratings_path} is {mean!r} (tolerance "
                        f"{tolerance:g}); the files disagree (different variants or releases?)"
                    )
                rounding = max(rounding, tolerance + 1e-12)
                rows.append(
                    {
                        "clip_id": clip_id,
                        "corpus": CORPUS,
                        "split": split,
                        "subset": None,
                        "audio_path": f"audios/{clip_id}.wav",
                        "mos": mos,
                        "n_ratings": n_ratings,
                        "rating_std": rating_std,
                        "ratings": list(choices),
                        "system_id": system,
                        "speaker_id": None,
                        "content_id": clip_id[: -len(system) - 1],
                        "sample_rate": None,
                        "duration": None,
                    }
                )
        return attach_mos_rounding(clip_table(rows), rounding)
