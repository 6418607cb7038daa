"""A miniature TMHINT-QI: `raw_data.csv` with one row per rating, and 16 kHz wavs in train/ and test/.

Mirrors the published layout: the verbatim header, `file_name` as a bare wav stem (the split is the
folder the wav lies in), rating rows of one clip scattered through the file, 1–2 ratings per train
clip and 3–6 per test clip, the four documented clips whose quality score is empty in every row
(their wavs in test/, and not in the release's list of test stems), one clip with an empty score
beside valid ones, `clean_TMHINT_*` clips, and a trailing blank line.

Like the release, the split is not the speaker: the test folder holds real test stems of speakers
b2 and g4 (three systems × six sentences, every stem in the shipped list
`benchmark/data/corpora/data/tmhint_qi_test_stems.txt`), and the train folder holds b2/g4 clips too (the
same sentences under other systems, and b2/g4 sentences without a test clip) beside speakers b1 and
g1. How the `method, snr, noise` columns spell clean clips is undocumented; they are written as
`clean, None, None` here (the reader ignores them).

The expected splits apply the documented rule independently: the folder (or the `file_name`
prefix); without audio and prefixes, test iff the stem is in the list, parsed here from the file
itself. Then `round(0.1 * n)` of the sorted train content ids drawn with
`numpy.random.default_rng(1337).choice(..., replace=False)` become dev.

Variants: `prefix=True` writes `file_name` as `train/<stem>.wav` / `test/<stem>.wav`;
`misplaced=True` puts the wav of one train clip (`MISPLACED`, a b2 stem not in the list) in test/,
so its folder contradicts the list; `label="intelligibility_score"` returns the clips expected when
a task takes its label from that column (every rating row carries one, on a 0–1 scale, including
the rows whose quality score is empty, so the four clips without quality are rated there).
"""

from __future__ import annotations

import csv
import functools
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

RATE = 16000
SECONDS = 0.05
HEADER = [
    "idx",
    "method",
    "uttr",
    "snr",
    "noise",
    "quality_score",
    "intelligibility_score",
    "file_name",
]
DEV_FRACTION = 0.1
DEV_SEED = 1337
TEST_STEMS = (
    Path(__file__).resolve().parents[2]
    / "benchmark"
    / "data"
    / "corpora"
    / "data"
    / "tmhint_qi_test_stems.txt"
)

UNRATED = (
    "FCN_snr0_street_TMHINT_b2_22_03",
    "Trans_snr2_pink_TMHINT_g4_24_09",
    "DDAE_snr2_pink_TMHINT_b2_22_01",
    "DDAE_snr5_white_TMHINT_g4_24_07",
)
PARTIAL = "clean_TMHINT_b1_01_01"
"""A clip with one empty quality_score row beside a valid one."""
MISPLACED = "Noisy_snr5_white_TMHINT_b2_22_02"
"""A train clip (not in the list) whose wav the `misplaced` variant puts in test/."""

TEST_SYSTEMS = ("MMSE_snr2_street", "MMSE_snr5_babble", "clean")
TEST_CONTENTS = ("b2_22_02", "b2_22_08", "b2_30_07", "g4_24_01", "g4_24_03", "g4_26_05")
"""Every `<system>_TMHINT_<content>` of these is a test stem of the release."""
TRAIN_ONLY_B2_G4 = ("b2_23_05", "b2_27_01", "g4_29_04", "g4_32_02")
"""b2/g4 sentences with train clips only in the fixture."""


@functools.cache
def listed_test_stems() -> frozenset[str]:
    """The stems of the shipped list, parsed here (not by the reader): `#` lines are comments."""
    lines = TEST_STEMS.read_text(encoding="utf-8").splitlines()
    return frozenset(s.strip() for s in lines if s.strip() and not s.startswith("#"))


def _clips() -> list[tuple[str, str, str, list[int], str]]:
    """(stem, system, content, quality scores, folder) of the rated clips."""
    out = []
    other = [f"b1_01_{s:02d}" for s in range(1, 11)] + [f"g1_11_{s:02d}" for s in range(1, 11)]
    for i, content in enumerate(other):
        out.append(
            (
                f"DDAE_snr-2_babble_TMHINT_{content}",
                "DDAE_snr-2_babble",
                content,
                [1 + i % 5, 1 + (i // 5) % 5],
                "train",
            )
        )
        out.append(
            (
                f"Noisy_snr5_white_TMHINT_{content}",
                "Noisy_snr5_white",
                content,
                [5 - i % 4],
                "train",
            )
        )
        if i % 4 == 0:
            out.append(
                (f"clean_TMHINT_{content}", "clean", content, [5, 4 - (i // 4) % 3], "train")
            )
    # b2/g4 in train: the test sentences under other systems, and sentences without a test clip.
    for i, content in enumerate(TEST_CONTENTS):
        for j, system in enumerate(("DDAE_snr-2_babble", "Noisy_snr5_white")):
            scores = [1 + (i + 3 * j) % 5] if (i + j) % 2 else [2 + (i + j) % 4, 1 + i % 5]
            out.append((f"{system}_TMHINT_{content}", system, content, scores, "train"))
    for i, content in enumerate(TRAIN_ONLY_B2_G4):
        for j, system in enumerate(("DDAE_snr-2_babble", "MMSE_snr2_street")):
            out.append(
                (f"{system}_TMHINT_{content}", system, content, [1 + (2 * i + j) % 5], "train")
            )
    for i, content in enumerate(TEST_CONTENTS):
        for j, system in enumerate(TEST_SYSTEMS):
            n = 3 + (i + j) % 4
            scores = [1 + (i + 2 * j + k) % 5 for k in range(n)]
            out.append((f"{system}_TMHINT_{content}", system, content, scores, "test"))
    # A tie inside one content group: equal MOS, so that same-content pair must not appear.
    stem, system, content, _, folder = out[-1]
    out[-1] = (stem, system, content, list(out[-2][3]), folder)
    return out


def _wav(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(RATE * SECONDS)
    t = np.arange(n) / RATE
    x = 0.2 * np.sin(2 * np.pi * (150 + 10 * seed) * t) + 0.01 * rng.standard_normal(n)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.astype(np.float32), RATE, subtype="PCM_16")


def _columns(system: str) -> tuple[str, str, str]:
    if system == "clean":
        return "clean", "None", "None"
    method, snr, noise = system.split("_")
    return method, snr.removeprefix("snr"), noise


def write(root: Path, *, audio: bool = True, **variant: Any) -> list[dict]:
    prefix = bool(variant.pop("prefix", False))
    label = str(variant.pop("label", "quality_score"))
    assert label in ("quality_score", "intelligibility_score")
    misplaced = bool(variant.pop("misplaced", False))
    if variant:
        raise TypeError(f"unknown TMHINT-QI layout variant(s): {', '.join(variant)}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    clips = _clips()
    listed = listed_test_stems()
    folder_of = {stem: folder for stem, _, _, _, folder in clips}
    # The release's property, checked on the fixture's own construction: test folder = the list.
    assert all((folder == "test") == (stem in listed) for stem, folder in folder_of.items())
    assert not set(UNRATED) & listed
    for stem in UNRATED:
        folder_of[stem] = "test"
    if misplaced:
        assert folder_of[MISPLACED] == "train"
        folder_of[MISPLACED] = "test"

    # Rating rows: one per score, scattered (round k of every clip, then round k+1 ...).
    ratings: list[tuple[str, str, str]] = []  # (stem, content, quality_score text)
    per_clip = {stem: [str(s) for s in scores] for stem, _, _, scores, _ in clips}
    per_clip[PARTIAL].insert(1, "")
    for stem in UNRATED:
        per_clip[stem] = ["", ""]
    contents = {stem: content for stem, _, content, _, _ in clips}
    for stem in UNRATED:
        contents[stem] = stem.split("_TMHINT_")[1]
    for k in range(max(len(v) for v in per_clip.values())):
        for stem, texts in per_clip.items():
            if k < len(texts):
                ratings.append((stem, contents[stem], texts[k]))
    systems = {stem: stem.split("_TMHINT_")[0] for stem in per_clip}
    intelligibility: dict[str, list[float]] = {}
    with (root / "raw_data.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(HEADER)
        for idx, (stem, content, score) in enumerate(ratings):
            method, snr, noise = _columns(systems[stem])
            name = f"{folder_of[stem]}/{stem}.wav" if prefix else stem
            intel = f"{0.5 + 0.1 * (idx % 5):.1f}"
            intelligibility.setdefault(stem, []).append(float(intel))
            writer.writerow([idx, method, f"TMHINT_{content}", snr, noise, score, intel, name])
        f.write("\n")
    if audio:
        for seed, (stem, folder) in enumerate(sorted(folder_of.items())):
            _wav(root / folder / f"{stem}.wav", seed)

    # Expected clips, from the scores written above.
    placed = dict(folder_of)
    if not audio and not prefix:
        placed = {stem: "test" if stem in listed else "train" for stem in placed}
    if label == "intelligibility_score":
        clips = [
            (stem, systems[stem], contents[stem], intelligibility[stem], folder_of[stem])
            for stem in per_clip
        ]
    train_contents = sorted({c for stem, _, c, _, _ in clips if placed[stem] == "train"})
    k = round(DEV_FRACTION * len(train_contents))
    rng = np.random.default_rng(DEV_SEED)
    dev = {str(c) for c in rng.choice(train_contents, size=k, replace=False)}
    expected = []
    for stem, system, content, scores, _ in clips:
        split = placed[stem]
        if split == "train" and content in dev:
            split = "dev"
        expected.append(
            {
                "clip_id": stem,
                "split": split,
                "subset": None,
                "mos": statistics.fmean(scores),
                "system_id": system,
                "content_id": content,
                "speaker_id": content.split("_")[0],
                "n_ratings": len(scores),
                "rating_std": statistics.stdev(scores) if len(scores) > 1 else None,
                "ratings": [float(x) for x in scores],
                "audio_path": f"{placed[stem]}/{stem}.wav",
            }
        )
    return expected
