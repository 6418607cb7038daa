"""VoiceMOS Challenge 2023: an out-of-domain test set (every clip is split `test`).

Three tracks, each its own kind of audio: track 1 French TTS (Blizzard 2023: the NEB and AD voices,
reported as subsets `1a` and `1b`), track 2 singing voice conversion (SVCC 2023, subset `2`), track
3 Mandarin enhanced speech (TMHINT-QI style, subset `3`). The challenge released the audio per track
and the answer keys afterwards; the keys are not in the audio zips.

Native layout (answer files in `answers_dir`, default the data root):

    track1_answer.txt  track2_answer.txt  track3_answer.txt
        no header, one line per clip: <sample_id>,<MOS>
        VoiceMOS2023Track1-A-AD_test_0026,4.42105263157895
        VoiceMOS2023Track2-B01-SF1-CDF1-30001,2.857142857142857
        VoiceMOS2023Track3-CMGAN_snr-2_babble_TMHINT_b2_21_02,1.14
    listener_wise_answer.csv   (optional, track 2) sample_id,listener_name,score: one row per rating
    track1/<sample_id>.wav  track2/<sample_id>.wav  track3/<sample_id>.wav

Options (`data.options` of the task YAML):

- `answers_dir`: folder of the answer files, relative to the data root (default `.`).
- `tracks`: which tracks to read, default `[1, 2, 3]`. Each selected track's answer file is
  required; the SHEET repository publishes them (github.com/unilight/sheet, `egs/vmc23/answers/`).
- `listener_file`: per-rating file for track 2, relative to `answers_dir` (default
  `listener_wise_answer.csv`; read when present, required when set explicitly; `null` = ignore).
  It fills `n_ratings`, `rating_std` and the individual `ratings` (file order) of track-2 clips; its
  per-clip mean must match the answer MOS within 1e-6, or when rounded to the decimals the answer
  is written with. The MOS stays the answer's; the table records the largest rounding allowed
  (`benchmark.data.tables.attach_mos_rounding`) so `validate_clips` accepts it beside the ratings.

Clip id = the sample id (stable, the challenge's own); audio at `track<N>/<sample_id>.wav`.
Keys parsed from the sample id (the part after `VoiceMOS2023Track<N>-`):

- track 1 `A-AD_test_0026`: system `A-AD` (system letter + voice: the same letter on NEB and AD is a
  different voice), content `AD_test_0026`; subset `1a` for NEB content, `1b` for AD content.
- track 2 `B01-SF1-CDF1-30001`: system `B01`, source singer `SF1`, target singer `CDF1` (the
  speaker), content `SF1-30001` (the source singer's utterance every system converts).
  `SOU`/`TAR` lines are the natural source/target singing and are systems like any other.
- track 3 `CMGAN_snr-2_babble_TMHINT_b2_21_02`: system `CMGAN_snr-2_babble` (method, SNR, noise),
  content `b2_21_02` (speaker, list, sentence), speaker `b2`. `clean_TMHINT_b2_21_02` gets system
  `clean` (the clean reference, rated like the others). Lines that start with `TMHINT_` (255 of
  2,215: unprocessed references that SHEET's `egs/vmc23/local/data_prep.py` drops) are left out and
  recorded as a skip.

`sample_rate` is left null (datasets.md: track 1 22 kHz, track 2 24 kHz, track 3 16 kHz, not
verified per file); `prepare` probes the audio.
"""

from __future__ import annotations

import re
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

CORPUS = "vmc23"

LAYOUT = """\
track1_answer.txt  track2_answer.txt  track3_answer.txt
    no header, one line per clip: <sample_id>,<MOS>
    VoiceMOS2023Track1-A-AD_test_0026,4.42105263157895
    VoiceMOS2023Track2-B01-SF1-CDF1-30001,2.857142857142857
    VoiceMOS2023Track3-CMGAN_snr-2_babble_TMHINT_b2_21_02,1.14
listener_wise_answer.csv   (optional, track 2) sample_id,listener_name,score: one row per rating
track1/<sample_id>.wav  track2/<sample_id>.wav  track3/<sample_id>.wav
"""

OPTIONS = ("answers_dir", "listener_file", "tracks")
TRACKS = (1, 2, 3)
ANSWER_FILE = "track{}_answer.txt"
LISTENER_FILE = "listener_wise_answer.csv"
LISTENER_HEADER = ("sample_id", "listener_name", "score")
WHERE_TO_GET = (
    "the challenge answer keys are published in the SHEET repository "
    "(https://github.com/unilight/sheet, egs/vmc23/answers/); put them in the folder named by "
    "option 'answers_dir' (default: the data root)"
)

PATTERNS = {
    1: (
        re.compile(r"(?P<letter>[A-Za-z0-9]+)-(?P<content>(?P<tag>[A-Za-z0-9]+)_\S+)"),
        "VoiceMOS2023Track1-<system>-<NEB|AD>_<...>, e.g. VoiceMOS2023Track1-A-AD_test_0026",
    ),
    2: (
        re.compile(r"(?P<system>[^-\s]+)-(?P<src>[^-\s]+)-(?P<tgt>[^-\s]+)-(?P<utt>[^-\s]+)"),
        "VoiceMOS2023Track2-<system>-<source>-<target>-<utterance>, "
        "e.g. VoiceMOS2023Track2-B01-SF1-CDF1-30001",
    ),
    3: (
        re.compile(
            r"(?:(?P<system>\S+)_)?TMHINT_(?P<spk>[^_\s]+)_(?P<list>[^_\s]+)_(?P<sent>[^_\s]+)"
        ),
        "VoiceMOS2023Track3-<method>_<snr>_<noise>_TMHINT_<spk>_<list>_<sent> or "
        "VoiceMOS2023Track3-clean_TMHINT_<spk>_<list>_<sent>, "
        "e.g. VoiceMOS2023Track3-CMGAN_snr-2_babble_TMHINT_b2_21_02",
    ),
}
TRACK1_SUBSETS = {"NEB": "1a", "AD": "1b"}
TMHINT_SKIP = (
    "track 3 lines starting with 'TMHINT_' (unprocessed references; the public prep, SHEET "
    "egs/vmc23/local/data_prep.py, drops them and keeps 'clean_TMHINT_*')"
)
NO_LISTENER_ROWS = "track 2 clips without rows in {}: kept, n_ratings and rating_std unknown"


@dataclass(frozen=True)
class _Options:
    answers_dir: str
    tracks: tuple[int, ...]
    listener_file: str | None
    listener_explicit: bool


def _fail(message: str) -> DataError:
    return DataError(f"{CORPUS} reader: {message}")


def _parse_options(options: dict[str, Any]) -> _Options:
    options, _ = split_label(options, CORPUS)
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise _fail(f"unknown option(s) {', '.join(unknown)} (known: {', '.join(OPTIONS)})")
    answers_dir = options.get("answers_dir", ".")
    if not isinstance(answers_dir, str) or not answers_dir.strip():
        raise _fail(f"option 'answers_dir' must be a folder path, got {answers_dir!r}")
    raw = options.get("tracks", list(TRACKS))
    items = raw if isinstance(raw, list | tuple) else [raw]
    tracks: list[int] = []
    for item in items:
        text = str(item).strip()
        if isinstance(item, bool) or not text.isdigit() or int(text) not in TRACKS:
            raise _fail(f"option 'tracks' must list tracks among 1, 2, 3, got {raw!r}")
        tracks.append(int(text))
    if not tracks or len(set(tracks)) != len(tracks):
        raise _fail(f"option 'tracks' must list distinct tracks among 1, 2, 3, got {raw!r}")
    explicit = "listener_file" in options
    listener = options.get("listener_file", LISTENER_FILE)
    if listener is not None and (not isinstance(listener, str) or not listener.strip()):
        raise _fail(f"option 'listener_file' must be a file name or null, got {listener!r}")
    return _Options(
        answers_dir=answers_dir.strip(),
        tracks=tuple(sorted(tracks)),
        listener_file=listener,
        listener_explicit=explicit and listener is not None,
    )


def _answers_rel(opts: _Options, name: str) -> str:
    return name if opts.answers_dir in (".", "./") else f"{opts.answers_dir.rstrip('/')}/{name}"


def _require(root: Path, rel: str, what: str) -> Path:
    """`require_file` (with its one-level-down hint) that also takes an absolute `answers_dir`."""
    if not Path(rel).is_absolute():
        return require_file(root, rel, CORPUS, LAYOUT, what)
    path = Path(rel)
    if not path.is_file():
        raise DataError(f"{path}: missing metadata file ({what}); {layout_hint(CORPUS, LAYOUT)}")
    return path


def _score(value: str, path: Path, line: int, field: str) -> float:
    return parse_float(value, path, line, field, (CORPUS, LAYOUT))


def _keys(track: int, sid: str, path: Path, line: int) -> dict[str, Any] | None:
    """Grouping keys parsed from a sample id; None for a track-3 `TMHINT_*` line (left out)."""
    prefix = f"VoiceMOS2023Track{track}-"
    pattern, expected = PATTERNS[track]
    if not sid.startswith(prefix):
        raise DataError(
            f"{path}:{line}: sample id '{sid}' does not start with '{prefix}' (expected "
            f"{expected}); {layout_hint(CORPUS, LAYOUT)}"
        )
    match = pattern.fullmatch(sid[len(prefix) :])
    if match is None:
        raise DataError(
            f"{path}:{line}: sample id '{sid}' does not parse (expected {expected}); "
            f"{layout_hint(CORPUS, LAYOUT)}"
        )
    if track == 1:
        tag = match["tag"]
        if tag not in TRACK1_SUBSETS:
            raise DataError(
                f"{path}:{line}: sample id '{sid}': content '{match['content']}' is neither NEB "
                f"(track 1a) nor AD (track 1b) (expected {expected}); {layout_hint(CORPUS, LAYOUT)}"
            )
        return {
            "subset": TRACK1_SUBSETS[tag],
            "system_id": f"{match['letter']}-{tag}",
            "speaker_id": None,
            "content_id": match["content"],
        }
    if track == 2:
        return {
            "subset": "2",
            "system_id": match["system"],
            "speaker_id": match["tgt"],
            "content_id": f"{match['src']}-{match['utt']}",
        }
    if match["system"] is None:
        return None
    return {
        "subset": "3",
        "system_id": match["system"],
        "speaker_id": match["spk"],
        "content_id": f"{match['spk']}_{match['list']}_{match['sent']}",
    }


def _read_track(
    root: Path, opts: _Options, track: int
) -> tuple[Path, list[dict[str, Any]], dict[str, str], list[str]]:
    """(answer file, rows, sample id -> MOS as written, left-out TMHINT ids)."""
    name = ANSWER_FILE.format(track)
    path = _require(root, _answers_rel(opts, name), f"track {track} answer key; {WHERE_TO_GET}")
    rows: list[dict[str, Any]] = []
    written: dict[str, str] = {}
    where: dict[str, int] = {}
    left_out: list[str] = []
    for line, fields in read_rows(path, corpus=CORPUS, layout=LAYOUT, header=None):
        assert isinstance(fields, list)
        if len(fields) != 2 or not fields[0]:
            raise DataError(
                f"{path}:{line}: expected '<sample_id>,<MOS>', got {len(fields)} field(s); "
                f"{layout_hint(CORPUS, LAYOUT)}"
            )
        sid = fields[0].removesuffix(".wav")
        mos = _score(fields[1], path, line, "MOS")
        if sid in where:
            raise DataError(f"{path}:{line}: sample id '{sid}' already listed on line {where[sid]}")
        where[sid] = line
        keys = _keys(track, sid, path, line)
        if keys is None:
            left_out.append(sid)
            continue
        written[sid] = fields[1]
        rows.append(
            {
                "clip_id": sid,
                "corpus": CORPUS,
                "split": "test",
                "audio_path": f"track{track}/{sid}.wav",
                "mos": mos,
                **keys,
            }
        )
    return path, rows, written, left_out


def _listener_ratings(
    root: Path, opts: _Options, answers: Path, rows: list[dict[str, Any]], written: dict[str, str]
) -> tuple[Skip | None, float]:
    """Fill n_ratings/rating_std/ratings of track-2 rows in place; a skip for clips without
    ratings, and the largest rounding of an answer MOS that the ratings were accepted with."""
    if opts.listener_file is None:
        return None, 0.0
    rel = _answers_rel(opts, opts.listener_file)
    if not opts.listener_explicit and not (root / rel).is_file():
        return None, 0.0
    path = _require(root, rel, "track 2 per-listener ratings (option 'listener_file')")
    ratings: dict[str, list[float]] = {}
    for line, row in read_rows(path, corpus=CORPUS, layout=LAYOUT, header=LISTENER_HEADER):
        assert isinstance(row, dict)
        sid = row["sample_id"].removesuffix(".wav")
        if sid not in written:
            raise DataError(
                f"{path}:{line}: sample_id '{sid}' is not a clip of {answers}; "
                f"{layout_hint(CORPUS, LAYOUT)}"
            )
        ratings.setdefault(sid, []).append(_score(row["score"], path, line, "score"))
    missing: list[str] = []
    rounding = 0.0
    for clip in rows:
        sid = clip["clip_id"]
        if sid not in ratings:
            missing.append(sid)
            continue
        mean, n, std = rating_stats(ratings[sid])
        if not mean_agrees(mean, clip["mos"], written[sid]):
            raise DataError(
                f"{path}: the {n} rating(s) of '{sid}' average {mean:.6f}, but {answers} gives "
                f"MOS {written[sid]}: the two files disagree"
            )
        clip["n_ratings"] = n
        clip["rating_std"] = std
        clip["ratings"] = ratings[sid]
        rounding = max(rounding, printed_tolerance(written[sid]))
    return Skip.of(NO_LISTENER_ROWS.format(path.name), missing, kept=True), rounding


class Vmc23Reader:
    name = CORPUS

    def available(self, root: Path, options: dict[str, Any]) -> bool:
        try:
            opts = _parse_options(options)
        except DataError:
            return False
        root = Path(root)
        return all(
            (root / _answers_rel(opts, ANSWER_FILE.format(t))).is_file() for t in opts.tracks
        )

    def read(self, root: Path, options: dict[str, Any], *, labels_only: bool = False) -> pa.Table:
        """Clip table from the answer files only; audio is never opened (`prepare` probes it)."""
        opts = _parse_options(options)
        root = check_root(Path(root), CORPUS, LAYOUT)
        rows: list[dict[str, Any]] = []
        skips: list[Skip] = []
        rounding = 0.0
        for track in opts.tracks:
            answers, track_rows, written, left_out = _read_track(root, opts, track)
            if not track_rows:
                raise DataError(f"{answers}: no clips; {layout_hint(CORPUS, LAYOUT)}")
            if track == 2:
                skip, rounding = _listener_ratings(root, opts, answers, track_rows, written)
                if skip is not None:
                    skips.append(skip)
            if left_out:
                skips.append(Skip.of(TMHINT_SKIP, left_out))
            rows.extend(track_rows)
        return attach_mos_rounding(clip_table(rows, skips), rounding)
