"""BVCC's native `main/` folder in miniature (see benchmark/data/corpora/bvcc.py for the real layout).

27 clips: per split three systems x three text clusters, with the quirks of the release: headerless
MOS lists ending in a blank line, headerless per-rating files with five fields a row (the last one
holding `{}` and underscores), and a UTMOS22 cluster file that also lists out-of-domain clips.
Per split some clips share their MOS, so equal-MOS exclusions are exercised. Deliberate gaps:
`sys9efbf-utt0d3c5a1` (dev) is absent from the cluster file, and `sys64e2f-uttf00ba7e` (test) has
no per-rating rows.

Variants:
- `rating_header=True`: the per-rating files start with a header line (tolerated by the reader).
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000
SECONDS = 0.05

CLIPS: tuple[tuple[str, str, str, int], ...] = (
    # (split, system, utterance, cluster)
    ("train", "sys64e2f", "utt9c183cd", 0),
    ("train", "sys64e2f", "utt369d5fb", 1),
    ("train", "sys64e2f", "utt169c0fe", 2),
    ("train", "sys7ab3c", "uttce1d077", 0),
    ("train", "sys7ab3c", "utt6db38d6", 1),
    ("train", "sys7ab3c", "utt925e844", 2),
    ("train", "sys2e1cb", "utt43d0b94", 0),
    ("train", "sys2e1cb", "uttfbc186a", 1),
    ("train", "sys2e1cb", "uttda18f1e", 2),
    ("dev", "sys64e2f", "utt23c3d0f", 3),
    ("dev", "sys64e2f", "uttf5fa7ae", 4),
    ("dev", "sys64e2f", "utt8409fdc", 5),
    ("dev", "sys9efbf", "utt406ec07", 3),
    ("dev", "sys9efbf", "utt87d12f1", 4),
    ("dev", "sys9efbf", "utt0d3c5a1", 5),
    ("dev", "sys2e1cb", "utt0e4bbad", 3),
    ("dev", "sys2e1cb", "utt8479256", 4),
    ("dev", "sys2e1cb", "utt177dc7b", 5),
    ("test", "sys7ab3c", "utt40cf951", 6),
    ("test", "sys7ab3c", "utt6e1b06c", 7),
    ("test", "sys7ab3c", "utte98ff28", 8),
    ("test", "sys9efbf", "utt7b33e8a", 6),
    ("test", "sys9efbf", "utt79d28a7", 7),
    ("test", "sys9efbf", "utt18dbcf8", 8),
    ("test", "sys64e2f", "uttf00ba7e", 6),
    ("test", "sys64e2f", "utta1d91d9", 7),
    ("test", "sys64e2f", "utt9eda11f", 8),
)
NOT_CLUSTERED = frozenset({"sys9efbf-utt0d3c5a1"})
NO_RATINGS = frozenset({"sys64e2f-uttf00ba7e"})
SAME_RATINGS = {
    # clip -> clip whose ratings it reuses (reversed), giving equal MOS inside one relation
    "sys7ab3c-utt6db38d6": "sys64e2f-utt369d5fb",  # train, same cluster
    "sys2e1cb-uttda18f1e": "sys2e1cb-utt43d0b94",  # train, same system
    "sys9efbf-utt87d12f1": "sys64e2f-utt23c3d0f",  # dev, cross
    "sys9efbf-utt18dbcf8": "sys9efbf-utt7b33e8a",  # test, same system
}
LISTS = {"train": "train_mos_list.txt", "dev": "val_mos_list.txt", "test": "test_mos_list.txt"}
PER_RATING = {"train": "TRAINSET", "dev": "DEVSET", "test": "TESTSET"}
N_RATERS = 8


def clip_id(system: str, utt: str) -> str:
    return f"{system}-{utt}"


def ratings() -> dict[str, list[int]]:
    """Every clip's integer ratings (the per-rating rows written for it), by clip id."""
    rng = random.Random(22)
    out: dict[str, list[int]] = {}
    for _, system, utt, _ in CLIPS:
        out[clip_id(system, utt)] = [rng.randint(1, 5) for _ in range(N_RATERS)]
    for clip, source in SAME_RATINGS.items():
        out[clip] = list(reversed(out[source]))
    return out


def _mos_text(scores: list[int]) -> str:
    return repr(math.fsum(scores) / len(scores))


def _write_audio(path: Path, seed: int) -> None:
    n = int(SECONDS * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    x = 0.3 * np.sin(2 * np.pi * (180 + 20 * seed) * t)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")


def write(root: Path, *, audio: bool = True, **variant: Any) -> list[dict]:
    unknown = set(variant) - {"rating_header"}
    if unknown:
        raise TypeError(f"unknown BVCC layout variant(s): {sorted(unknown)}")
    root = Path(root)
    sets = root / "DATA" / "sets"
    sets.mkdir(parents=True, exist_ok=True)
    scores = ratings()
    lists: dict[str, list[str]] = {s: [] for s in LISTS}
    per_rating: dict[str, list[str]] = {s: [] for s in LISTS}
    expected = []
    for i, (split, system, utt, cluster) in enumerate(CLIPS):
        cid = clip_id(system, utt)
        wav = f"{cid}.wav"
        mos_text = _mos_text(scores[cid])
        lists[split].append(f"{wav},{mos_text}")
        if cid not in NO_RATINGS:
            for k, rating in enumerate(scores[cid]):
                listener = f"L{k:02d}x{i:02d}_{k % 3}"
                info = f"{{}}_30-39_Q{k:03d}_{'Female' if k % 2 else 'Male'}_Valid_1_No"
                per_rating[split].append(f"{system},{wav},{rating},{listener},{info}")
        if audio:
            _write_audio(root / "DATA" / "wav" / wav, seed=i)
        expected.append(
            {
                "clip_id": cid,
                "split": split,
                "subset": None,
                "mos": float(mos_text),
                "system_id": system,
                "content_id": None if cid in NOT_CLUSTERED else f"cluster-{cluster}",
            }
        )
    for split, name in LISTS.items():
        (sets / name).write_text("\n".join(lists[split]) + "\n\n", encoding="utf-8")
    for split, name in PER_RATING.items():
        rows = sorted(per_rating[split], key=lambda r: (r.split(",")[3], r))  # listener order
        if variant.get("rating_header"):
            rows.insert(0, "sysID,uttID,rating,ignore,listenerinfo")
        (sets / name).write_text("\n".join(rows) + "\n", encoding="utf-8")
    cluster_rows = ["wav_name,transcription,track,cluster,reference"]
    for _, system, utt, cluster in CLIPS:
        if clip_id(system, utt) not in NOT_CLUSTERED:
            text = f"t ɛ k s t {cluster}"
            cluster_rows.append(f"{clip_id(system, utt)}.wav,{text},main,{cluster},{text}")
    cluster_rows.append("sys4bd6e-uttc0c0b3d.wav,ə w ʌ n,ood,400,ə w ʌ n")
    (root / "transcriptions_clustered.csv").write_text(
        "\n".join(cluster_rows) + "\n", encoding="utf-8"
    )
    systems = sorted({system for _, system, _, _ in CLIPS})
    (root / "DATA" / "mydata_system.csv").write_text(
        "system_ID,mean\n" + "".join(f"{s},3.0\n" for s in systems), encoding="utf-8"
    )
    (root / "secret_sys_mappings.txt").write_text(
        "".join(f"{s} system{i}\n" for i, s in enumerate(systems)), encoding="utf-8"
    )
    (root / "secret_utt_mappings.txt").write_text(
        "".join(f"{clip_id(s, u)} utterance{i}\n" for i, (_, s, u, _) in enumerate(CLIPS)),
        encoding="utf-8",
    )
    return expected
