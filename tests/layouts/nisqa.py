"""A miniature NISQA Corpus: all seven databases, each with its `<DB>_file.csv` and tiny 48 kHz wavs.

Mirrors the published layout: per-database file lists with the full 52-column header, degraded
audio under `<DB>/deg/`, clean references under `<DB>/ref/` in the SIM databases only, and
`filepath_deg` relative to the `NISQA_Corpus/` folder. File names follow the real patterns
(`c00001_<ref>.wav` for simulated conditions, `book_..._live_phone_<n>.wav` for live ones). As in
the real LIVE databases, `filename_ref` is empty where there is no reference. Condition numbers
restart at 1 in every database. `mos` and `mos_std` are written rounded to 10 significant digits
from generated integer votes, like the corpus's own 9–10-digit values; the expected MOS is the value
as written. The `<DB>_con.csv` files are written for completeness; the reader ignores them.

The four quality dimensions (`noi`, `col`, `dis`, `loud`, with their `_std`) are written for every
clip from votes derived from the clip's own (`dimension_votes`), so each dimension orders clips
differently from `mos`.

Variants: `dbs=[...]` writes only those databases; `windows_paths=True` writes `filepath_deg` with
backslashes (as a CSV re-saved on Windows would have them); `label="noi"` (or `col`, `dis`,
`loud`) returns the clips expected when a task takes its label from that dimension;
`empty_dimension=True` leaves the dimension cells of `NO_DIMENSIONS` empty (a clip left out of
dimension tasks).
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

RATE = 48000
SECONDS = 0.05

HEADER = (
    "db,con,file,con_description,filename_deg,filename_ref,source,lang,votes,mos,noi,col,dis,loud,"
    "noi_std,col_std,dis_std,loud_std,mos_std,filepath_deg,filepath_ref,filter,timeclipping,wbgn,"
    "p50mnru,bgn,clipping,arb_filter,asl_in,asl_out,codec1,codec2,codec3,plcMode1,plcMode2,plcMode3,"
    "wbgn_snr,bgn_snr,tc_fer,tc_nburst,cl_th,bp_low,bp_high,p50_q,bMode1,bMode2,bMode3,FER1,FER2,"
    "FER3,asl_in_level,asl_out_level"
).split(",")

SPLITS = {
    "NISQA_TRAIN_SIM": "train",
    "NISQA_TRAIN_LIVE": "train",
    "NISQA_VAL_SIM": "dev",
    "NISQA_VAL_LIVE": "dev",
    "NISQA_TEST_FOR": "test",
    "NISQA_TEST_P501": "test",
    "NISQA_TEST_LIVETALK": "test",
}

# Per database: (con, filename_deg, filename_ref or "", votes). Ties are deliberate: equal vote
# lists give equal MOS (clips that never pair with each other).
_SIM_REFS = ("common_voice_en_100", "common_voice_en_200", "common_voice_en_300")
_VOTES = (
    [4, 5, 4, 4, 5],
    [3, 3, 4, 2, 3],
    [2, 1, 2, 2],
    [5, 4, 4, 5, 5, 4],
    [1, 2, 1],
    [3, 4, 3, 3],
    [2, 3, 2, 3, 2],
    [4, 4, 3, 4],
    [1, 1, 2, 1, 1],
)


def _sim(refs: tuple[str, ...], cons: int, offset: int) -> list[tuple[int, str, str, list[int]]]:
    out = []
    for c in range(1, cons + 1):
        for r, ref in enumerate(refs):
            votes = _VOTES[(offset + 3 * (c - 1) + r) % len(_VOTES)]
            out.append((c, f"c{c:05d}_{ref}.wav", f"{ref}.wav", votes))
    return out


def _live(cons: int, files: int, offset: int) -> list[tuple[int, str, str, list[int]]]:
    out = []
    for c in range(1, cons + 1):
        for f in range(files):
            votes = _VOTES[(offset + 2 * c + f) % len(_VOTES)]
            name = f"book_{f:05d}_chp_0009_reader_0670{f}_17_seg_live_phone_{c}.wav"
            out.append((c, name, "", votes))
    return out


def _clips() -> dict[str, list[tuple[int, str, str, list[int]]]]:
    clips = {
        "NISQA_TRAIN_SIM": _sim(_SIM_REFS, 3, 0),
        "NISQA_TRAIN_LIVE": _live(2, 2, 1),
        "NISQA_VAL_SIM": _sim(_SIM_REFS[:2], 2, 4),
        "NISQA_VAL_LIVE": _live(2, 2, 3),
        "NISQA_TEST_FOR": _sim(("for_cnv_m_0103_01", "for_cnv_f_0104_02"), 2, 2),
        "NISQA_TEST_P501": _sim(("P501_C_english_f1_FB_48k", "P501_C_english_m1_FB_48k"), 2, 5),
        "NISQA_TEST_LIVETALK": [
            (c, f"c{c:02d}_{t}.wav", "", _VOTES[(2 * c + i) % len(_VOTES)])
            for c in (1, 2)
            for i, t in enumerate(("f1", "m1"))
        ],
    }
    # A single-vote clip: the corpus leaves mos_std empty (NaN) there.
    clips["NISQA_VAL_LIVE"].append(
        (3, "book_00009_chp_0001_reader_09999_1_seg_live_skype_3.wav", "", [3])
    )
    # The same MOS in two conditions of one content group (a tie that must not pair).
    con, name, ref, _ = clips["NISQA_TEST_P501"][2]
    clips["NISQA_TEST_P501"][2] = (con, name, ref, list(clips["NISQA_TEST_P501"][0][3]))
    return clips


def _wav(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(RATE * SECONDS)
    t = np.arange(n) / RATE
    x = 0.2 * np.sin(2 * np.pi * (180 + 20 * seed) * t) + 0.01 * rng.standard_normal(n)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.astype(np.float32), RATE, subtype="PCM_16")


def _num(x: float) -> str:
    return format(x, ".10g")


def write(root: Path, *, audio: bool = True, **variant: Any) -> list[dict]:
    dbs = list(variant.pop("dbs", SPLITS))
    windows_paths = bool(variant.pop("windows_paths", False))
    label = str(variant.pop("label", "mos"))
    assert label == "mos" or label in DIMENSIONS
    empty_dimension = bool(variant.pop("empty_dimension", False))
    if variant:
        raise TypeError(f"unknown NISQA layout variant(s): {', '.join(variant)}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    expected: list[dict] = []
    all_rows: list[dict[str, str]] = []
    seed = 0
    for db, entries in _clips().items():
        if db not in dbs:
            continue
        folder = root / db
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for i, (con, deg, ref, votes) in enumerate(entries, start=1):
            mos_text = _num(sum(votes) / len(votes))
            std_text = _num(statistics.stdev(votes)) if len(votes) > 1 else ""
            rel = f"{db}/deg/{deg}"
            row = dict.fromkeys(HEADER, "")
            row.update(
                db=db,
                con=str(con),
                file=str(i),
                con_description=f"condition {con} of {db}",
                filename_deg=deg,
                filename_ref=ref,
                source="CommonVoice" if ref else "live",
                lang="en",
                votes=str(len(votes)),
                mos=mos_text,
                mos_std=std_text,
                filepath_deg=rel.replace("/", "\\") if windows_paths else rel,
                filepath_ref=f"{db}/ref/{ref}" if ref else "",
            )
            clip_id = f"{db}/{deg.removesuffix('.wav')}"
            for dim in DIMENSIONS:
                if empty_dimension and clip_id == NO_DIMENSIONS:
                    continue
                dim_votes = dimension_votes(votes, dim)
                row[dim] = _num(sum(dim_votes) / len(dim_votes))
                row[f"{dim}_std"] = _num(statistics.stdev(dim_votes)) if len(votes) > 1 else ""
            rows.append(row)
            if audio:
                _wav(root / rel, seed)
                if ref:
                    _wav(folder / "ref" / ref, seed + 1000)
            seed += 1
            if label != "mos":
                if not row[label]:
                    continue
                mos_text, std_text = row[label], row[f"{label}_std"]
            expected.append(
                {
                    "clip_id": f"{db}/{deg.removesuffix('.wav')}",
                    "split": SPLITS[db],
                    "subset": None,
                    "mos": float(mos_text),
                    "system_id": f"{db}:{con}",
                    "content_id": ref or None,
                    "n_ratings": len(votes),
                    "rating_std": float(std_text) if std_text else None,
                    "audio_path": rel,
                }
            )
        _write_csv(folder / f"{db}_file.csv", HEADER, rows)
        cons = sorted({r["con"] for r in rows}, key=int)
        _write_csv(
            folder / f"{db}_con.csv",
            ["db", "con", "con_description"],
            [{"db": db, "con": c, "con_description": f"condition {c} of {db}"} for c in cons],
        )
        (folder / "readme.txt").write_text(f"{db}: miniature test fixture\n")
        all_rows.extend(rows)
    _write_csv(root / "NISQA_corpus_file.csv", HEADER, all_rows)
    return expected


DIMENSIONS = ("noi", "col", "dis", "loud")
NO_DIMENSIONS = "NISQA_TRAIN_SIM/c00002_common_voice_en_200"
"""The clip whose dimension cells the `empty_dimension` variant leaves empty."""


def dimension_votes(votes: list[int], dimension: str) -> list[int]:
    """A dimension's votes: each listener's overall vote moved by -1, 0 or +1 (clipped to 1–5)."""
    k = DIMENSIONS.index(dimension)
    return [min(5, max(1, v + (j * (k + 1) + k) % 3 - 1)) for j, v in enumerate(votes)]


def _write_csv(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
