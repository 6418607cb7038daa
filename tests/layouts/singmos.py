"""SingMOS in miniature: the Hugging Face layout (default) or the VoiceMOS'24 zip layout.

The clips are defined once in `CLIPS` (per-judge ratings included) so that tests can compute the
expected `n_ratings` and standard deviations independently of the reader.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

SAMPLE_RATES = {"sys0001": 16000, "sys0002": 24000, "sys0003": 44100, "sys0004": 16000}

CLIPS: list[tuple[str, str, list[int], str, bool]] = [
    # (utt id, system, ratings, split name in split.json, MOS written rounded to 2 decimals)
    ("sys0001-utt0001", "sys0001", [4, 4, 5, 4, 4], "train", False),
    ("sys0001-utt0002", "sys0001", [3, 4, 3, 3, 4], "train", False),
    ("sys0002-utt0003", "sys0002", [2, 3, 2, 2, 3], "train", False),
    ("sys0002-utt0004", "sys0002", [4, 4, 5, 4, 4], "train", False),  # same MOS as utt0001
    ("sys0003-utt0005", "sys0003", [3, 3, 4], "train", True),  # 3.33
    ("sys0003-utt0006", "sys0003", [5], "train", False),  # one rating: no std
    ("sys0004-utt0007", "sys0004", [1, 2, 2, 1, 2], "train", False),
    ("sys0004-utt0008", "sys0004", [3, 3, 3, 3, 3], "train", False),
    ("sys0001-utt0009", "sys0001", [4, 5, 5, 4, 5], "valid", False),
    ("sys0001-utt0010", "sys0001", [2, 2, 3, 2, 2], "valid", False),
    ("sys0002-utt0011", "sys0002", [3, 4, 4, 3, 4], "valid", False),
    ("sys0002-utt0012", "sys0002", [4, 5, 5, 4, 5], "valid", False),  # same MOS as utt0009
    ("sys0003-utt0013", "sys0003", [1, 1, 2], "valid", True),  # 1.33
    ("sys0003-utt0014", "sys0003", [3, 4, 4], "valid", False),  # 3.6666666666666665
    ("sys0001-utt0015", "sys0001", [5, 5, 4, 5, 5], "eval_v1", False),
    ("sys0001-utt0016", "sys0001", [3, 3, 2, 3, 3], "eval_v1", False),
    ("sys0002-utt0017", "sys0002", [2, 2, 2, 3, 2], "eval_v1", False),
    ("sys0002-utt0018", "sys0002", [4, 4, 3, 4, 4], "eval_v1", False),
    ("sys0004-utt0019", "sys0004", [1, 1, 1, 2, 1], "eval_v1", False),
    ("sys0004-utt0020", "sys0004", [2, 3, 3, 2, 3], "eval_v1", False),
    ("sys0001-utt0021", "sys0001", [3, 3, 3, 4, 3], "eval_v2", False),  # unmapped: skipped
    ("sys0003-utt0022", "sys0003", [4, 4, 4], "eval_v2", False),  # unmapped: skipped
    ("sys0004-utt0023", "sys0004", [2, 2, 2, 2, 2], "", False),  # in no split: skipped
]
OUR_SPLIT = {"train": "train", "valid": "dev", "eval_v1": "test"}
SECOND_DATASET = ("sys0001-utt0001", "sys0002-utt0011", "sys0002-utt0017", "sys0003-utt0022")
"""Clips that the second dataset of split.json lists again (same split names)."""


def mos_of(ratings: list[int], rounded: bool) -> float:
    mean = sum(ratings) / len(ratings)
    return round(mean, 2) if rounded else mean


def vm24_id(utt: str) -> str:
    return f"voicemos2024-track2-{utt}"


def _wav(path: Path, sr: int, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = int(0.05 * sr)
    x = 0.2 * np.sin(2 * np.pi * (220 + 20 * seed) * np.arange(n) / sr)
    sf.write(path, x.astype(np.float32), sr, subtype="PCM_16")


def write(root: Path, *, audio: bool = True, **variant: Any) -> list[dict]:
    """Variants: layout ('hf' | 'voicemos24'), test_name (hf: the test list's name, default
    'eval_v1'), sys_info (hf: write info/sys_info.json, default True), base (voicemos24: 'DATA' or
    '' for a root that is the DATA folder itself)."""
    layout = variant.get("layout", "hf")
    if layout == "hf":
        return _write_hf(root, audio, variant.get("test_name", "eval_v1"), variant)
    return _write_voicemos24(root, audio, variant.get("base", "DATA"))


def _write_hf(root: Path, audio: bool, test_name: str, variant: dict[str, Any]) -> list[dict]:
    (root / "info").mkdir(parents=True, exist_ok=True)
    name_of = {"eval_v1": test_name}
    v1: dict[str, list[str]] = {}
    v2: dict[str, list[str]] = {}
    utterances: dict[str, Any] = {}
    expected = []
    for i, (utt, sys_id, ratings, split, rounded) in enumerate(CLIPS):
        mos = mos_of(ratings, rounded)
        if split:
            v1.setdefault(name_of.get(split, split), []).append(utt)
            if utt in SECOND_DATASET:
                v2.setdefault(name_of.get(split, split), []).append(utt)
        utterances[utt] = {
            "sys_id": sys_id,
            "wav": f"wavs/{utt}.wav",
            "score": {
                "mos": mos,
                "judges": [f"judge{j + 1:02d}" for j in range(len(ratings))],
                "scores": ratings,
            },
        }
        if split in OUR_SPLIT:
            expected.append(
                {
                    "clip_id": utt,
                    "split": OUR_SPLIT[split],
                    "subset": None,
                    "mos": mos,
                    "system_id": sys_id,
                    "content_id": None,
                }
            )
        if audio:
            _wav(root / "wavs" / f"{utt}.wav", SAMPLE_RATES[sys_id], i)
    systems = {s: 3.0 for s in SAMPLE_RATES}
    split_json = {"singmos_v1": v1, "singmos_v2": v2}
    (root / "info" / "split.json").write_text(json.dumps(split_json, indent=4) + "\n")
    score_json = {"utterance": utterances, "system": systems}
    (root / "info" / "score.json").write_text(json.dumps(score_json, indent=4) + "\n")
    if variant.get("sys_info", True):
        info = {
            s: {"sample_rate": sr, "tag": {"domain_id": k, "unseen": False}}
            for k, (s, sr) in enumerate(SAMPLE_RATES.items())
        }
        (root / "info" / "sys_info.json").write_text(json.dumps(info, indent=4) + "\n")
    return expected


def _write_voicemos24(root: Path, audio: bool, base: str) -> list[dict]:
    data = root / base if base else root
    (data / "sets").mkdir(parents=True, exist_ok=True)
    files = {"train": "train", "valid": "val", "eval_v1": "eval"}
    lines: dict[str, list[str]] = {name: [] for name in files.values()}
    expected = []
    for i, (utt, sys_id, ratings, split, rounded) in enumerate(CLIPS):
        if split not in files:
            continue
        sid = vm24_id(utt)
        text = f"{mos_of(ratings, rounded):.6f}"
        lines[files[split]].append(f"{sid},{text}")
        expected.append(
            {
                "clip_id": sid,
                "split": OUR_SPLIT[split],
                "subset": None,
                "mos": float(text),
                "system_id": sys_id,
                "content_id": None,
            }
        )
        if audio:
            _wav(data / "wav" / f"{sid}.wav", SAMPLE_RATES[sys_id], i)
    for name, rows in lines.items():
        # The released lists end with a newline; one carries an extra blank line.
        tail = "\n\n" if name == "val" else "\n"
        (data / "sets" / f"{name}_mos_list.txt").write_text("\n".join(rows) + tail)
    return expected
