"""SingMOS (VoiceMOS'24 track 2): Chinese and Japanese singing clips with per-judge ratings.

The corpus circulates in two native layouts, and users have either one, so the reader takes both.

Hugging Face layout (`layout: hf`; dataset TangRain/SingMOS, CC-BY-4.0; SingMOS-Pro is the same
layout):

    wavs/sys0001-utt0001.wav ...
    info/split.json     {"<dataset>": {"train": [utt ids], "valid": [...], "eval_v1": [...], ...}}
    info/score.json     {"utterance": {"<utt id>": {"sys_id": "sys0001",
                                                    "wav": "wavs/sys0001-utt0001.wav",
                                                    "score": {"mos": 4.2, "judges": [...],
                                                              "scores": [...]}}},
                         "system": {...}}
    info/sys_info.json  {"<sys id>": {"sample_rate": 16000, "tag": {...}}}   (optional)

VoiceMOS'24 zip layout (`layout: voicemos24`; the challenge's train- and eval-phase zips, as SHEET
reads them):

    DATA/wav/voicemos2024-track2-sys0001-utt0001.wav ...
    DATA/sets/train_mos_list.txt  val_mos_list.txt  eval_mos_list.txt
        no header, one line per clip: voicemos2024-track2-sys0001-utt0001,4.000000

Options (`data.options` of the task YAML):

- `layout`: `auto` (default), `hf` or `voicemos24`. `auto` uses whichever layout's metadata is
  present and refuses to guess when both are.
- `splits`: our split (`train`/`dev`/`test`) -> their split name, or a list of names whose clips
  are pooled. hf default: `{train: train, dev: valid, test: [eval_v1, eval]}`, the names being
  keys inside each dataset of `split.json`. voicemos24 default: `{train: train, dev: val, test:
  eval}`, naming `DATA/sets/<name>_mos_list.txt`. A default name missing from the data is fine (no
  clips in that split); a name set explicitly must exist.
- `datasets` (hf only): the dataset names of `split.json` to read; default all of them. A clip
  listed by several datasets is read once; listed under two of our splits, it is an error.

Clip ids are the corpus's own and stable: the utterance id (`sys0001-utt0001`) in the hf layout,
the sample id (`voicemos2024-track2-sys0001-utt0001`) in the voicemos24 layout. The two layouts'
ids differ, so results on one are not joined with the other. `system_id` is `sys_id` (hf) or the
third `-` field of the sample id (voicemos24). `content_id` stays null: SingMOS documents no
content key (UNVERIFIED whether one exists), so these clips join same-system and cross pairs only,
recorded as a kept-with-caveat skip.

Decisions on UNVERIFIED points (sources: singmos_predictor `train.py`/`infer.py`/
`singmos/mos_dataset.py`, SHEET `egs/singmos/local/data_prep.py`, the Hugging Face viewer of
TangRain/SingMOS, whose split column shows `train`, `valid` and `eval_v1`):

- `wav` is relative to the data root (singmos_predictor joins it onto the root); a bare file name
  is taken as relative to `wavs/`.
- singmos_predictor reads the test lists of each dataset as `eval`, the Hugging Face viewer shows
  `eval_v1`: the default test mapping pools both names. Other names (e.g. `eval_v2`) are not read;
  their clips are recorded as skips.
- `mos` is the published value. The ratings in `scores` give `n_ratings`, the sample standard
  deviation and the individual `ratings` (in `scores` order); their mean must equal `mos` within 1e-6, or when rounded to the decimals `mos` is
  written with (3.47 for 3.4666...). A mismatch means the two fields describe different clips, so
  it is an error rather than a guess. The table records the largest such rounding
  (`benchmark.data.tables.attach_mos_rounding`) so `validate_clips` accepts it beside the ratings.
- `sample_rate` comes from `sys_info.json` when present (a system missing there gets null and
  `prepare` probes the audio). singmos_predictor drops non-16 kHz systems; this reader keeps them.
- voicemos24 lists: a trailing `.wav` on a sample id is ignored; the data root may also be the
  `DATA` folder itself (SHEET's `db_root`), then paths are `wav/<id>.wav`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from benchmark.data.corpora._native import (
    Skip,
    check_root,
    clip_table,
    layout_hint,
    mean_agrees,
    parse_float,
    printed_tolerance,
    rating_stats,
    read_rows,
    require_file,
    split_label,
)
from benchmark.data.tables import attach_mos_rounding
from benchmark.errors import DataError

CORPUS = "singmos"

LAYOUT_HF = """\
wavs/sys0001-utt0001.wav ...
info/split.json     {"<dataset>": {"train": [utt ids], "valid": [...], "eval_v1": [...], ...}}
info/score.json     {"utterance": {"<utt id>": {"sys_id": "sys0001",
                                                "wav": "wavs/sys0001-utt0001.wav",
                                                "score": {"mos": 4.2, "judges": [...],
                                                          "scores": [...]}}},
                     "system": {...}}
info/sys_info.json  {"<sys id>": {"sample_rate": 16000, "tag": {...}}}   (optional)
"""

LAYOUT_VOICEMOS24 = """\
DATA/wav/voicemos2024-track2-sys0001-utt0001.wav ...
DATA/sets/train_mos_list.txt  val_mos_list.txt  eval_mos_list.txt
    no header, one line per clip: voicemos2024-track2-sys0001-utt0001,4.000000
"""

LAYOUT = (
    f"either the Hugging Face layout (layout: hf):\n{LAYOUT_HF}"
    f"or the VoiceMOS'24 zip layout (layout: voicemos24):\n{LAYOUT_VOICEMOS24}"
)

LAYOUTS = ("auto", "hf", "voicemos24")
OPTIONS = ("datasets", "layout", "splits")
SPLITS = ("train", "dev", "test")
DEFAULT_SPLITS: dict[str, dict[str, tuple[str, ...]]] = {
    "hf": {"train": ("train",), "dev": ("valid",), "test": ("eval_v1", "eval")},
    "voicemos24": {"train": ("train",), "dev": ("val",), "test": ("eval",)},
}
SPLIT_JSON = "info/split.json"
SCORE_JSON = "info/score.json"
SYS_INFO_JSON = "info/sys_info.json"
LIST_FILE = "{}_mos_list.txt"
NO_CONTENT_KEY = (
    "SingMOS documents no content key: these clips join same_system and cross pairs only"
)


@dataclass(frozen=True)
class _Options:
    layout: str
    splits: dict[str, tuple[str, ...]] | None
    """Our split -> their names, as given; None = the chosen layout's default."""
    datasets: tuple[str, ...] | None


def _fail(message: str) -> DataError:
    return DataError(f"{CORPUS} reader: {message}")


def _names(value: Any, key: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise _fail(f"option '{key}' must be a name or a non-empty list of names, got {value!r}")
    if not all(isinstance(v, str) and v.strip() for v in items):
        raise _fail(f"option '{key}' must hold non-empty strings, got {value!r}")
    return tuple(v.strip() for v in items)


def _parse_options(options: Mapping[str, Any]) -> _Options:
    options, _ = split_label(options, CORPUS)
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise _fail(f"unknown option(s) {', '.join(unknown)} (known: {', '.join(OPTIONS)})")
    layout = options.get("layout", "auto")
    if layout not in LAYOUTS:
        raise _fail(f"option 'layout' is {layout!r}; expected one of {', '.join(LAYOUTS)}")
    splits = None
    if options.get("splits") is not None:
        raw = options["splits"]
        if not isinstance(raw, Mapping) or not raw:
            raise _fail(
                "option 'splits' must map our split names (train, dev, test) to their split names"
            )
        bad = sorted(str(k) for k in raw if k not in SPLITS)
        if bad:
            raise _fail(
                f"option 'splits': unknown split(s) {', '.join(bad)} (ours: {', '.join(SPLITS)})"
            )
        splits = {str(k): _names(v, f"splits.{k}") for k, v in raw.items()}
        owner: dict[str, str] = {}
        for ours, theirs in splits.items():
            for name in theirs:
                if owner.setdefault(name, ours) != ours:
                    raise _fail(
                        f"option 'splits': '{name}' is mapped to both {owner[name]} and {ours}"
                    )
    datasets = None
    if options.get("datasets") is not None:
        datasets = _names(options["datasets"], "datasets")
    return _Options(layout=layout, splits=splits, datasets=datasets)


def _hf_present(root: Path) -> bool:
    return (root / SPLIT_JSON).is_file() or (root / SCORE_JSON).is_file()


def _voicemos24_base(root: Path) -> str | None:
    """'DATA' when the root holds the unzipped DATA folder, '' when the root is DATA itself."""
    for base in ("DATA", ""):
        sets = root / base / "sets"
        if sets.is_dir() and any(sets.glob(LIST_FILE.format("*"))):
            return base
    return None


def _detect(root: Path) -> str:
    hf = _hf_present(root)
    vm = _voicemos24_base(root) is not None
    if hf and vm:
        raise DataError(
            f"{root}: both SingMOS layouts are present ({SPLIT_JSON} and a sets/*_mos_list.txt); "
            f"set option 'layout' to hf or voicemos24"
        )
    if hf:
        return "hf"
    if vm:
        return "voicemos24"
    nested = sorted(
        {p.parent.parent for p in root.glob(f"*/{SPLIT_JSON}")}
        | {p.parent.parent.parent for p in root.glob(f"*/DATA/sets/{LIST_FILE.format('*')}")}
        | {p.parent.parent for p in root.glob(f"*/sets/{LIST_FILE.format('*')}")}
    )
    hint = (
        f"; found SingMOS metadata one level down at {nested[0]}: point the data root there"
        if nested
        else ""
    )
    raise DataError(
        f"{root}: no SingMOS metadata found ({SPLIT_JSON} or DATA/sets/*_mos_list.txt){hint}; "
        f"{layout_hint(CORPUS, LAYOUT)}"
    )


def _split_names(opts: _Options, layout: str) -> dict[str, tuple[str, ...]]:
    return opts.splits if opts.splits is not None else DEFAULT_SPLITS[layout]


class _Json:
    """A parsed JSON metadata file that can point at the line where a key is written."""

    def __init__(self, path: Path, layout: str) -> None:
        self.path = path
        try:
            self.text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise DataError(f"{path}: cannot read: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise DataError(f"{path}: not UTF-8 text; {layout_hint(CORPUS, layout)}") from None
        try:
            self.data = json.loads(self.text)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno}); "
                f"{layout_hint(CORPUS, layout)}"
            ) from None

    def at(self, key: str) -> str:
        """'path:line' of the first `"key":` in the file (just 'path' if not found)."""
        needle = json.dumps(key, ensure_ascii=False)
        match = re.search(re.escape(needle) + r"\s*:", self.text)
        if match is None:
            return str(self.path)
        return f"{self.path}:{self.text.count(chr(10), 0, match.start()) + 1}"


def _json_number(value: Any) -> float | None:
    """A finite float from a JSON number (or numeric string), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        out = float(value)
    except ValueError:
        return None
    return out if math.isfinite(out) else None


def _hf_audio_path(wav: str) -> str:
    path = wav.strip().replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path if "/" in path else f"wavs/{path}"


def _sample_rates(root: Path) -> tuple[dict[str, int], Path | None]:
    path = root / SYS_INFO_JSON
    if not path.is_file():
        return {}, None
    info = _Json(path, LAYOUT_HF)
    if not isinstance(info.data, dict):
        raise DataError(
            f'{path}: expected a JSON object {{sys_id: {{"sample_rate": int, ...}}}}; '
            f"{layout_hint(CORPUS, LAYOUT_HF)}"
        )
    rates: dict[str, int] = {}
    for sys_id, entry in info.data.items():
        rate = entry.get("sample_rate") if isinstance(entry, dict) else None
        if rate is None:
            continue
        if isinstance(rate, bool) or not isinstance(rate, int | float) or rate <= 0 or rate % 1:
            raise DataError(
                f"{info.at(sys_id)}: system '{sys_id}': field 'sample_rate': {rate!r} is not a "
                f"positive integer; {layout_hint(CORPUS, LAYOUT_HF)}"
            )
        rates[str(sys_id)] = int(rate)
    return rates, path


def _split_membership(
    split: _Json, opts: _Options, names: dict[str, tuple[str, ...]]
) -> tuple[dict[str, list[tuple[str, str, str]]], dict[str, set[str]]]:
    """utt -> [(our split, dataset, their split)] for mapped names; utt -> unmapped names."""
    hint = layout_hint(CORPUS, LAYOUT_HF)
    if not isinstance(split.data, dict) or not split.data:
        raise DataError(
            f"{split.path}: expected a JSON object {{dataset: {{split: [utt ids]}}}}; {hint}"
        )
    available = [str(d) for d in split.data]
    chosen = list(opts.datasets) if opts.datasets is not None else available
    missing = [d for d in chosen if d not in split.data]
    if missing:
        raise DataError(
            f"{split.path}: option 'datasets' names {', '.join(missing)}, not in the file "
            f"(datasets: {', '.join(available)})"
        )
    ours_of = {name: ours for ours, theirs in names.items() for name in theirs}
    mapped: dict[str, list[tuple[str, str, str]]] = {}
    unmapped: dict[str, set[str]] = {}
    seen_names: set[str] = set()
    for dataset in chosen:
        lists = split.data[dataset]
        if not isinstance(lists, dict):
            raise DataError(
                f"{split.at(dataset)}: dataset '{dataset}' is not an object of split lists; {hint}"
            )
        for name, utts in lists.items():
            if not isinstance(utts, list) or not all(isinstance(u, str) for u in utts):
                raise DataError(
                    f"{split.at(name)}: dataset '{dataset}', split '{name}': expected a list of "
                    f"utterance ids; {hint}"
                )
            seen_names.add(name)
            ours = ours_of.get(name)
            for utt in utts:
                utt = utt.strip()
                if ours is None:
                    unmapped.setdefault(utt, set()).add(name)
                else:
                    mapped.setdefault(utt, []).append((ours, dataset, name))
    if opts.splits is not None:
        for ours, theirs in opts.splits.items():
            if not seen_names & set(theirs):
                raise DataError(
                    f"{split.path}: option 'splits' maps {ours} to {', '.join(theirs)}, but the "
                    f"selected datasets have only the splits {', '.join(sorted(seen_names))}"
                )
    conflicts = sorted(u for u, where in mapped.items() if len({w[0] for w in where}) > 1)
    if conflicts:
        utt = conflicts[0]
        places = ", ".join(f"{d}/{n} -> {o}" for o, d, n in sorted(set(mapped[utt])))
        raise DataError(
            f"{split.path}: {len(conflicts)} utterance(s) fall into two of our splits, e.g. "
            f"'{utt}' ({places}); a clip must be in one split: restrict option 'datasets' or "
            f"change option 'splits'"
        )
    return mapped, unmapped


def _hf_row(
    utt: str, entry: Any, score: _Json, rates: dict[str, int], our_split: str
) -> dict[str, Any]:
    def bad(detail: str) -> DataError:
        # Located only on failure: finding the line scans the whole (multi-MB) file.
        return DataError(
            f"{score.at(utt)}: utterance '{utt}': {detail}; {layout_hint(CORPUS, LAYOUT_HF)}"
        )

    if not isinstance(entry, dict):
        raise bad("expected an object with sys_id, wav and score")
    sys_id = entry.get("sys_id")
    if isinstance(sys_id, bool) or not isinstance(sys_id, str | int) or not str(sys_id).strip():
        raise bad("field 'sys_id' missing or empty")
    sys_id = str(sys_id).strip()
    wav = entry.get("wav")
    if not isinstance(wav, str) or not wav.strip():
        raise bad("field 'wav' missing or empty")
    block = entry.get("score")
    if not isinstance(block, dict) or "mos" not in block:
        raise bad("field 'score.mos' missing")
    mos = _json_number(block["mos"])
    if mos is None:
        raise bad(f"field 'score.mos': {block['mos']!r} is not a number")
    n_ratings: int | None = None
    std: float | None = None
    ratings: list[float] | None = None
    scores = block.get("scores")
    if scores is not None:
        if not isinstance(scores, list):
            raise bad("field 'score.scores' is not a list")
        judges = block.get("judges")
        if isinstance(judges, list) and len(judges) != len(scores):
            raise bad(f"{len(judges)} judges but {len(scores)} scores")
        values = [_json_number(s) for s in scores]
        ratings = [v for v in values if v is not None]
        if len(ratings) != len(values):
            raise bad(f"field 'score.scores': {scores!r} holds a value that is not a number")
        ratings = ratings or None
        if ratings:
            mean, n_ratings, std = rating_stats(ratings)
            if not mean_agrees(mean, mos, repr(mos)):
                raise bad(
                    f"score.mos is {mos!r} but the {n_ratings} ratings in score.scores average "
                    f"{mean:.6f}"
                )
    return {
        "clip_id": utt,
        "corpus": CORPUS,
        "split": our_split,
        "subset": None,
        "audio_path": _hf_audio_path(wav),
        "mos": mos,
        "n_ratings": n_ratings,
        "rating_std": std,
        "ratings": ratings,
        "system_id": sys_id,
        "speaker_id": None,
        "content_id": None,
        "sample_rate": rates.get(sys_id),
    }


def _read_hf(root: Path, opts: _Options) -> pa.Table:
    split_path = require_file(
        root, SPLIT_JSON, CORPUS, LAYOUT_HF, "which utterances form each split"
    )
    score_path = require_file(root, SCORE_JSON, CORPUS, LAYOUT_HF, "MOS and per-judge ratings")
    split = _Json(split_path, LAYOUT_HF)
    mapped, unmapped = _split_membership(split, opts, _split_names(opts, "hf"))
    score = _Json(score_path, LAYOUT_HF)
    utterances = score.data.get("utterance") if isinstance(score.data, dict) else None
    if not isinstance(utterances, dict):
        raise DataError(
            f'{score_path}: expected a JSON object with an "utterance" object of '
            f"{{utt_id: {{sys_id, wav, score}}}}; {layout_hint(CORPUS, LAYOUT_HF)}"
        )
    absent = sorted(u for u in mapped if u not in utterances)
    if absent:
        _, dataset, name = mapped[absent[0]][0]
        raise DataError(
            f"{split_path}: {len(absent)} utterance(s) listed there have no entry under "
            f"\"utterance\" in {score_path}, e.g. '{absent[0]}' (dataset {dataset}, split {name})"
        )
    rates, _ = _sample_rates(root)
    rows = [_hf_row(u, utterances[u], score, rates, where[0][0]) for u, where in mapped.items()]
    skips: list[Skip] = []
    by_names: dict[tuple[str, ...], list[str]] = {}
    for utt, names in unmapped.items():
        if utt not in mapped:
            by_names.setdefault(tuple(sorted(names)), []).append(utt)
    for split_names, ids in sorted(by_names.items()):
        skips.append(
            Skip.of(
                f"listed in {SPLIT_JSON} only under split(s) {', '.join(split_names)}, which option "
                f"'splits' does not map to train/dev/test",
                ids,
            )
        )
    unlisted = [u for u in utterances if u not in mapped and u not in unmapped]
    scope = " of the datasets chosen by option 'datasets'" if opts.datasets is not None else ""
    skips.append(Skip.of(f"in {SCORE_JSON} but in no split of {SPLIT_JSON}{scope}", unlisted))
    return _finish(rows, skips, split_path)


def _score(value: str, path: Path, line: int) -> float:
    return parse_float(value, path, line, "MOS", (CORPUS, LAYOUT_VOICEMOS24))


def _read_voicemos24(root: Path, opts: _Options) -> pa.Table:
    base = _voicemos24_base(root)
    if base is None:
        base = "DATA"
    prefix = f"{base}/" if base else ""
    pattern = "voicemos2024-track2-sys0001-utt0001,4.000000"
    seen: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    for ours, theirs in _split_names(opts, "voicemos24").items():
        for name in theirs:
            rel = f"{prefix}sets/{LIST_FILE.format(name)}"
            path = require_file(root, rel, CORPUS, LAYOUT_VOICEMOS24, f"the {ours} split")
            rows_iter = read_rows(path, corpus=CORPUS, layout=LAYOUT_VOICEMOS24, header=None)
            for line, fields in rows_iter:
                assert isinstance(fields, list)
                if len(fields) != 2 or not fields[0]:
                    raise DataError(
                        f"{path}:{line}: expected '<sample id>,<MOS>' (e.g. {pattern}), got "
                        f"{len(fields)} field(s); {layout_hint(CORPUS, LAYOUT_VOICEMOS24)}"
                    )
                mos = _score(fields[1], path, line)
                sid = fields[0].removesuffix(".wav")
                parts = sid.split("-")
                if len(parts) < 3 or not all(parts[:3]):
                    raise DataError(
                        f"{path}:{line}: sample id '{sid}' has no system field (expected ids "
                        f"like voicemos2024-track2-sys0001-utt0001, system = third '-' field); "
                        f"{layout_hint(CORPUS, LAYOUT_VOICEMOS24)}"
                    )
                here = f"{path}:{line}"
                if sid in seen:
                    raise DataError(f"{here}: sample id '{sid}' already listed at {seen[sid]}")
                seen[sid] = here
                rows.append(
                    {
                        "clip_id": sid,
                        "corpus": CORPUS,
                        "split": ours,
                        "subset": None,
                        "audio_path": f"{prefix}wav/{sid}.wav",
                        "mos": mos,
                        "system_id": parts[2],
                        "speaker_id": None,
                        "content_id": None,
                    }
                )
    return _finish(rows, [], root / prefix / "sets")


def _finish(rows: Sequence[dict[str, Any]], skips: list[Skip], source: Path) -> pa.Table:
    if not rows:
        raise DataError(f"{source}: no clips in any of the mapped splits (see option 'splits')")
    skips = [*skips, Skip.of(NO_CONTENT_KEY, [r["clip_id"] for r in rows], kept=True)]
    rounding = max(
        (printed_tolerance(repr(r["mos"])) for r in rows if r.get("ratings")), default=0.0
    )
    return attach_mos_rounding(clip_table(rows, skips), rounding)


class SingmosReader:
    name = CORPUS

    def available(self, root: Path, options: dict[str, Any]) -> bool:
        root = Path(root)
        try:
            opts = _parse_options(options)
            if not root.is_dir():
                return False
            layout = _detect(root) if opts.layout == "auto" else opts.layout
        except DataError:
            return False
        if layout == "hf":
            return (root / SPLIT_JSON).is_file() and (root / SCORE_JSON).is_file()
        base = _voicemos24_base(root)
        if base is None:
            return False
        prefix = f"{base}/" if base else ""
        return all(
            (root / f"{prefix}sets" / LIST_FILE.format(name)).is_file()
            for theirs in _split_names(opts, "voicemos24").values()
            for name in theirs
        )

    def read(self, root: Path, options: dict[str, Any], *, labels_only: bool = False) -> pa.Table:
        """Clip table from metadata only; audio is never opened (`prepare` probes it)."""
        opts = _parse_options(options)
        shown = {"auto": LAYOUT, "hf": LAYOUT_HF, "voicemos24": LAYOUT_VOICEMOS24}[opts.layout]
        root = check_root(Path(root), CORPUS, shown)
        layout = _detect(root) if opts.layout == "auto" else opts.layout
        if layout == "hf":
            return _read_hf(root, opts)
        if opts.datasets is not None:
            raise _fail("option 'datasets' applies to the hf layout only")
        return _read_voicemos24(root, opts)
