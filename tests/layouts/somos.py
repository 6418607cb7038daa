"""The SOMOS release in miniature (see benchmark/data/corpora/somos.py for the real layout).

27 clips: per split three systems x three sentences, under `training_files/split1/{clean,full}/`
with the release's headers, utteranceIds carrying `.wav` (as in the release), a variable number of
ratings per clip (one clip has a single rating, so no std), and some clips sharing their MOS. The
`full` variant holds extra ratings of "unreliable" listeners, so its means differ from `clean`.

Variants:
- `mean_decimals=N`: print the lists' `mean` rounded to N decimals (default: Python's repr).
- `wav_suffix=False`: utteranceIds without `.wav` (tolerated by the reader).
- `for_variant="full"`: return the clips expected with the reader option `variant: full`.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

SAMPLE_RATE = 24000
SECONDS = 0.05

SPLIT_CLIPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # split -> (sentenceIds, systemIds); every sentence is rendered by every system
    "train": (("novel_2007_0098", "news_2011_0012", "booksent_2012_0005"), ("000", "015", "103")),
    "dev": (("wiki_0003", "reportorial_2011_0020", "novel_2009_0157"), ("015", "103", "200")),
    "test": (("news_2008_0311", "booksent_2013_0042", "wiki_0177"), ("000", "200", "015")),
}
SINGLE_RATING = "news_2011_0012_103"
SAME_RATINGS = {
    # clip -> clip whose clean ratings it reuses (reversed), giving equal MOS inside one relation
    "novel_2007_0098_015": "novel_2007_0098_000",  # train, same sentence
    "novel_2009_0157_200": "wiki_0003_200",  # dev, same system
    "wiki_0177_000": "news_2008_0311_200",  # test, cross
}
FILES = {
    "train": ("train_mos_list.txt", "TRAINSET", "train_system.csv"),
    "dev": ("valid_mos_list.txt", "VALIDSET", "valid_system.csv"),
    "test": ("test_mos_list.txt", "TESTSET", "test_system.csv"),
}


def clips() -> list[tuple[str, str, str, str]]:
    """(split, clip_id, sentenceId, systemId) of every clip."""
    return [
        (split, f"{sentence}_{system}", sentence, system)
        for split, (sentences, systems) in SPLIT_CLIPS.items()
        for sentence in sentences
        for system in systems
    ]


def ratings(variant: str = "clean") -> dict[str, list[int]]:
    """Every clip's `choice`s in the per-rating file of `variant`, by clip id."""
    rng = random.Random(7378801)
    clean: dict[str, list[int]] = {}
    extra: dict[str, list[int]] = {}
    for _, cid, _, _ in clips():
        n = 1 if cid == SINGLE_RATING else rng.randint(2, 6)
        clean[cid] = [rng.randint(1, 5) for _ in range(n)]
        extra[cid] = [rng.randint(1, 5) for _ in range(2)] + [5]
    for cid, source in SAME_RATINGS.items():
        clean[cid] = list(reversed(clean[source]))
    if variant == "clean":
        return clean
    return {cid: clean[cid] + extra[cid] for cid in clean}


def _mean_text(scores: list[int], decimals: int | None) -> str:
    mean = math.fsum(scores) / len(scores)
    return repr(mean) if decimals is None else f"{mean:.{decimals}f}"


def _write_audio(path: Path, seed: int) -> None:
    n = int(SECONDS * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    x = 0.3 * np.sin(2 * np.pi * (150 + 25 * seed) * t)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")


def write(root: Path, *, audio: bool = True, **variant: Any) -> list[dict]:
    unknown = set(variant) - {"mean_decimals", "wav_suffix", "for_variant"}
    if unknown:
        raise TypeError(f"unknown SOMOS layout variant(s): {sorted(unknown)}")
    decimals = variant.get("mean_decimals")
    suffix = ".wav" if variant.get("wav_suffix", True) else ""
    root = Path(root)
    all_clips = clips()
    expected: dict[str, list[dict]] = {}
    for name in ("clean", "full"):
        folder = root / "training_files" / "split1" / name
        folder.mkdir(parents=True, exist_ok=True)
        scores = ratings(name)
        expected[name] = []
        for split, (list_name, rating_name, system_name) in FILES.items():
            mos_lines = ["utteranceId,mean"]
            rating_rows = []
            systems: dict[str, list[int]] = {}
            for i, (clip_split, cid, sentence, system) in enumerate(all_clips):
                if clip_split != split:
                    continue
                mean_text = _mean_text(scores[cid], decimals)
                mos_lines.append(f"{cid}{suffix},{mean_text}")
                for k, choice in enumerate(scores[cid]):
                    listener = f"KEXM{4957 + 13 * k + i:04d}{k}"
                    rating_rows.append(f"{system},{cid}{suffix},{choice},{listener}")
                systems.setdefault(system, []).extend(scores[cid])
                expected[name].append(
                    {
                        "clip_id": cid,
                        "split": split,
                        "subset": None,
                        "mos": float(mean_text),
                        "system_id": system,
                        "content_id": sentence,
                    }
                )
            rating_rows.sort(key=lambda r: (r.split(",")[3], r))  # listener order, not by clip
            header = "systemId,utteranceId,choice,listenerId"
            (folder / list_name).write_text("\n".join(mos_lines) + "\n", encoding="utf-8")
            (folder / rating_name).write_text(
                "\n".join([header, *rating_rows]) + "\n", encoding="utf-8"
            )
            (folder / system_name).write_text(
                "systemId,mean\n"
                + "".join(f"{s},{_mean_text(v, None)}\n" for s, v in sorted(systems.items())),
                encoding="utf-8",
            )
    if audio:
        for i, (_, cid, _, _) in enumerate(all_clips):
            _write_audio(root / "audios" / f"{cid}.wav", seed=i)
    return expected[variant.get("for_variant", "clean")]
