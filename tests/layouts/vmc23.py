"""VoiceMOS Challenge 2023 in miniature: answer keys, track-2 per-listener ratings, track folders.

Sample ids follow the published answer files; `T2_RATINGS` holds the per-listener ratings so that
tests can compute n_ratings and standard deviations independently of the reader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

RATES = {1: 22050, 2: 24000, 3: 16000}

T1: list[tuple[str, str, str, str, str]] = [
    # (sample id, MOS as written, subset, system, content)
    ("VoiceMOS2023Track1-A-NEB_test_0290", "4.44444444444444", "1a", "A-NEB", "NEB_test_0290"),
    ("VoiceMOS2023Track1-BF-NEB_test_0290", "2", "1a", "BF-NEB", "NEB_test_0290"),
    ("VoiceMOS2023Track1-C-NEB_test_0290", "3.70588235294118", "1a", "C-NEB", "NEB_test_0290"),
    ("VoiceMOS2023Track1-A-NEB_test_0308", "4.44444444444444", "1a", "A-NEB", "NEB_test_0308"),
    ("VoiceMOS2023Track1-BF-NEB_test_0308", "1.93333333333333", "1a", "BF-NEB", "NEB_test_0308"),
    ("VoiceMOS2023Track1-C-NEB_test_0308", "3", "1a", "C-NEB", "NEB_test_0308"),
    ("VoiceMOS2023Track1-A-AD_test_0026", "4.42105263157895", "1b", "A-AD", "AD_test_0026"),
    ("VoiceMOS2023Track1-BF-AD_test_0026", "2.25", "1b", "BF-AD", "AD_test_0026"),
    ("VoiceMOS2023Track1-A-AD_test_0039", "4.52941176470588", "1b", "A-AD", "AD_test_0039"),
    ("VoiceMOS2023Track1-BF-AD_test_0039", "2.25", "1b", "BF-AD", "AD_test_0039"),
]

T2: list[tuple[str, str, str, str]] = [
    # (sample id, system, target speaker, content)
    ("VoiceMOS2023Track2-B01-SF1-CDF1-30001", "B01", "CDF1", "SF1-30001"),
    ("VoiceMOS2023Track2-B01-SF1-CDF1-30002", "B01", "CDF1", "SF1-30002"),
    ("VoiceMOS2023Track2-B01-SM1-CDF1-30001", "B01", "CDF1", "SM1-30001"),
    ("VoiceMOS2023Track2-B02-SF1-CDF1-30001", "B02", "CDF1", "SF1-30001"),
    ("VoiceMOS2023Track2-B02-SF1-CDF1-30002", "B02", "CDF1", "SF1-30002"),
    ("VoiceMOS2023Track2-B02-SM1-CDF1-30001", "B02", "CDF1", "SM1-30001"),
    ("VoiceMOS2023Track2-SOU-SF1-SF1-30001", "SOU", "SF1", "SF1-30001"),
    ("VoiceMOS2023Track2-TAR-CDF1-CDF1-30001", "TAR", "CDF1", "CDF1-30001"),
]
T2_RATINGS: dict[str, list[int]] = {
    "VoiceMOS2023Track2-B01-SF1-CDF1-30001": [3, 3, 3, 2, 3, 3, 3],  # 2.857…, written 2.86
    "VoiceMOS2023Track2-B01-SF1-CDF1-30002": [4, 3, 4, 3, 4, 3, 3],
    "VoiceMOS2023Track2-B01-SM1-CDF1-30001": [4, 4, 3, 4, 4],
    "VoiceMOS2023Track2-B02-SF1-CDF1-30001": [1, 1, 2, 1, 1, 1],
    "VoiceMOS2023Track2-B02-SF1-CDF1-30002": [2, 1, 2, 1, 2],
    "VoiceMOS2023Track2-B02-SM1-CDF1-30001": [4, 4, 3, 4, 4],  # same MOS as B01-SM1
    "VoiceMOS2023Track2-SOU-SF1-SF1-30001": [4, 3, 4, 3],
}
T2_NO_RATINGS = {"VoiceMOS2023Track2-TAR-CDF1-CDF1-30001": "3.75"}
T2_ROUNDED = {"VoiceMOS2023Track2-B01-SF1-CDF1-30001"}

T3: list[tuple[str, str, str | None, str]] = [
    # (sample id, MOS as written, system (None: a TMHINT_ line, left out), content)
    (
        "VoiceMOS2023Track3-CMGAN_snr-2_babble_TMHINT_b2_21_02",
        "1.14",
        "CMGAN_snr-2_babble",
        "b2_21_02",
    ),
    (
        "VoiceMOS2023Track3-CMGAN_snr-2_babble_TMHINT_b2_21_03",
        "2.0",
        "CMGAN_snr-2_babble",
        "b2_21_03",
    ),
    ("VoiceMOS2023Track3-Noisy_snr5_white_TMHINT_b2_21_02", "1.5", "Noisy_snr5_white", "b2_21_02"),
    ("VoiceMOS2023Track3-Noisy_snr5_white_TMHINT_b2_21_03", "2.0", "Noisy_snr5_white", "b2_21_03"),
    ("VoiceMOS2023Track3-clean_TMHINT_b2_21_02", "4.75", "clean", "b2_21_02"),
    ("VoiceMOS2023Track3-clean_TMHINT_b2_21_03", "4.5", "clean", "b2_21_03"),
    ("VoiceMOS2023Track3-DDAE_snr0_pink_TMHINT_g4_24_09", "3.25", "DDAE_snr0_pink", "g4_24_09"),
    ("VoiceMOS2023Track3-TMHINT_b2_21_02", "3.0", None, "b2_21_02"),
    ("VoiceMOS2023Track3-TMHINT_b2_21_03", "2.5", None, "b2_21_03"),
]
T3_LEFT_OUT = [sid for sid, _, system, _ in T3 if system is None]


def t2_mos_text(sid: str) -> str:
    if sid in T2_NO_RATINGS:
        return T2_NO_RATINGS[sid]
    ratings = T2_RATINGS[sid]
    mean = sum(ratings) / len(ratings)
    return f"{mean:.2f}" if sid in T2_ROUNDED else repr(mean)


def _wav(path: Path, sr: int, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = int(0.05 * sr)
    x = 0.2 * np.sin(2 * np.pi * (220 + 15 * seed) * np.arange(n) / sr)
    sf.write(path, x.astype(np.float32), sr, subtype="PCM_16")


def write(root: Path, *, audio: bool = True, **variant: Any) -> list[dict]:
    """Variants: answers_dir (folder of the answer files, default the root), tracks (which answer
    files to write, default (1, 2, 3)), listener (write listener_wise_answer.csv, default True)."""
    answers = root / variant.get("answers_dir", ".")
    answers.mkdir(parents=True, exist_ok=True)
    tracks = tuple(variant.get("tracks", (1, 2, 3)))
    expected: list[dict] = []
    lines: dict[int, list[str]] = {1: [], 2: [], 3: []}
    for sid, text, subset, system, content in T1:
        lines[1].append(f"{sid},{text}")
        expected.append(_clip(sid, text, subset, system, content))
    listener_rows = ["sample_id,listener_name,score"]
    for sid, system, _target, content in T2:
        text = t2_mos_text(sid)
        lines[2].append(f"{sid},{text}")
        expected.append(_clip(sid, text, "2", system, content))
        for j, score in enumerate(T2_RATINGS.get(sid, [])):
            listener_rows.append(f"{sid},listener{j + 1:02d},{score}")
    for sid, text, system, content in T3:
        lines[3].append(f"{sid},{text}")
        if system is not None:
            expected.append(_clip(sid, text, "3", system, content))
    for track in tracks:
        # The released keys end with a newline; track 1 here also with a trailing blank line.
        tail = "\n\n" if track == 1 else "\n"
        (answers / f"track{track}_answer.txt").write_text("\n".join(lines[track]) + tail)
    if variant.get("listener", True) and 2 in tracks:
        (answers / "listener_wise_answer.csv").write_text("\n".join(listener_rows) + "\n")
    if audio:
        for track, rows in lines.items():
            for i, line in enumerate(rows):
                sid = line.split(",")[0]
                _wav(root / f"track{track}" / f"{sid}.wav", RATES[track], i)
    return [e for e in expected if int(e["subset"][0]) in tracks]


def _clip(sid: str, text: str, subset: str, system: str, content: str) -> dict:
    return {
        "clip_id": sid,
        "split": "test",
        "subset": subset,
        "mos": float(text),
        "system_id": system,
        "content_id": content,
    }
