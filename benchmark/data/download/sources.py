"""Per-corpus recipes: the real sources, their checksums, the manual steps and the final layouts.

Where each pin comes from (checked against public prep scripts; see the package docstring for the
policy):

* BVCC `main.tar.gz`, Zenodo record 6572573: md5 fc880c2a208c3285a47bd9a64f34eb11, as pinned by
  several independent public loaders of the record (the same value Zenodo's record API lists).
* SOMOS `somos.zip`, Zenodo record 7378801: md5 bdfde4cae256549dfab05d713136e4af, the value public
  SOMOS pipelines pin as "the published MD5"; `audios.zip` is *inside* `somos.zip` (SHEET's
  `egs/somos/local/data_download.sh` downloads only `somos.zip` and then unzips `audios.zip`).
* NISQA `NISQA_Corpus.zip`, Zenodo record 4728081: no pinned md5 could be found, so the md5 is read
  from the record's API JSON at download time.
* UTMOS22 `strong/transcriptions_clustered.csv`: pinned to commit 138d258c of sarulab-speech/UTMOS22
  (content at a commit never changes); GitHub publishes no checksum, so its sha256 is recorded on
  first download (trust on first use).
* VMC'23 answer keys: SHEET (unilight/sheet) `egs/vmc23/answers/track{1,2}_answer.txt` pinned to
  commit 610f45b8; `track3_answer.txt` is read by SHEET's `run_vmc23_test.sh` from the same folder,
  but no commit holding it could be confirmed offline, so it is fetched from the `main` branch
  (UNVERIFIED). All three are trust-on-first-use.
* `listener_wise_answer.csv` (VMC'23 track 2 per-listener scores): no public copy was found; it is
  optional and described as a manual step.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmark.data.download.extract import Nested, Unpack
from benchmark.errors import DataError, MosrmError

WORK_DIR = ".mosrm-downloads"
"""Folder under the data root holding archives until they are unpacked, partial downloads,
staging folders and the unpack markers."""

UTMOS22_COMMIT = "138d258cff3e5f566e82236ace2845e75b2cabed"
SHEET_COMMIT = "610f45b809cc8e5d144bdff0730b965e46f77804"
_UTMOS22_RAW = f"https://raw.githubusercontent.com/sarulab-speech/UTMOS22/{UTMOS22_COMMIT}"
_SHEET_RAW = "https://raw.githubusercontent.com/unilight/sheet"


def zenodo_file_url(record: int, name: str) -> str:
    return f"https://zenodo.org/records/{record}/files/{name}?download=1"


def zenodo_api_url(record: int) -> str:
    return f"https://zenodo.org/api/records/{record}"


@dataclass(frozen=True)
class Remote:
    """One file fetched over HTTP. Mirrored, its URL becomes `<mirror>/<corpus>/<name>`."""

    name: str
    url: str
    dest: str | None = None
    """Path under the data root; None: an archive, kept in `.mosrm-downloads/` until unpacked."""
    checksum: str | None = None
    """Pinned 'md5:<hex>' or 'sha256:<hex>'."""
    zenodo_record: int | None = None
    """Without a pinned checksum: read the md5 from this Zenodo record's API JSON."""
    unpack: Unpack | None = None


@dataclass(frozen=True)
class ManualArchive:
    """An archive the user fetches by hand and drops into the data root; we unpack it safely."""

    name: str
    source: str
    unpack: Unpack
    what: str


@dataclass(frozen=True)
class Recipe:
    corpus: str
    title: str
    licence: str
    layout: str
    automatic: tuple[str, ...]
    manual: tuple[str, ...]
    remotes: tuple[Remote, ...] = ()
    manual_archives: tuple[ManualArchive, ...] = ()
    hf_dataset: str | None = None
    check: Callable[[Path], list[str]] = lambda root: []
    """Manual steps still open for the tree under `root` (empty: the reader's layout is there)."""


def _missing(root: Path, rels: tuple[str, ...]) -> list[str]:
    return [rel for rel in rels if not (root / rel).is_file()]


def _has_wavs(folder: Path) -> bool:
    return folder.is_dir() and any(folder.rglob("*.wav"))


def _metadata_step(corpus: str, root: Path, missing: list[str]) -> str:
    shown = ", ".join(missing[:5]) + (", …" if len(missing) > 5 else "")
    return (
        f"{len(missing)} metadata file(s) missing under {root} ({shown}): run "
        f"`mosrm download {corpus} --data-root {root}` again, or see its instructions for the "
        f"layout"
    )


# --------------------------------------------------------------------------------------- BVCC

BVCC_SETS = ("train_mos_list.txt", "val_mos_list.txt", "test_mos_list.txt")
BVCC_LAYOUT = """\
<data root>/                       # the main/ folder of main.tar.gz
  README, 01_get.py 02_gather.py 03_preprocess.py, secret_{sys,utt}_mappings.txt
  DATA/wav/sysXXXXX-uttYYYYYYY.wav   # 7,106 wavs once the Blizzard samples are gathered
  DATA/mydata_system.csv
  DATA/sets/train_mos_list.txt val_mos_list.txt test_mos_list.txt
  DATA/sets/TRAINSET DEVSET TESTSET
  transcriptions_clustered.csv     # UTMOS22: wav_name,transcription,track,cluster,reference
"""


def _bvcc_listed_wavs(root: Path) -> list[str]:
    names: list[str] = []
    for name in BVCC_SETS:
        path = root / "DATA" / "sets" / name
        try:
            with path.open(newline="", encoding="utf-8-sig") as f:
                names.extend(row[0].strip() for row in csv.reader(f) if row and row[0].strip())
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(
                f"{path}: cannot read ({exc}); expected lines like "
                f"'sys64e2f-utt9c183cd.wav,3.375'; layout:\n{BVCC_LAYOUT}"
            ) from None
    return names


def _bvcc_check(root: Path) -> list[str]:
    rels = (
        *(f"DATA/sets/{n}" for n in BVCC_SETS),
        "DATA/sets/TRAINSET",
        "DATA/sets/DEVSET",
        "DATA/sets/TESTSET",
        "DATA/mydata_system.csv",
        "transcriptions_clustered.csv",
    )
    missing = _missing(root, rels)
    if missing:
        return [_metadata_step("bvcc", root, missing)]
    listed = _bvcc_listed_wavs(root)
    absent = [n for n in listed if not (root / "DATA" / "wav" / n).is_file()]
    if not absent:
        return []
    return [
        f"Blizzard Challenge audio: {len(absent)} of the {len(listed)} wavs listed in "
        f"DATA/sets/*_mos_list.txt are not in {root / 'DATA' / 'wav'} (e.g. {absent[0]}). They "
        f"may not be redistributed: accept the Blizzard Challenge terms of use "
        f"(https://www.cstr.ed.ac.uk/projects/blizzard/data.html: research only, no "
        f"redistribution), install SoX and sv56demo (install_sv56.sh in the data root builds it) "
        f"on PATH, then run in {root}: python 01_get.py && python 02_gather.py && "
        f"python 03_preprocess.py (about 74 GB of disk while processing). Until then the BVCC "
        f"reader leaves those clips out."
    ]


BVCC = Recipe(
    corpus="bvcc",
    title="BVCC (VoiceMOS Challenge 2022, main track)",
    licence=(
        "VCC and ESPnet-TTS samples as distributed in main.tar.gz; Blizzard Challenge samples "
        "under the Blizzard terms of use (research only, no redistribution; some teams also "
        "forbid commercial use); UTMOS22 cluster file: MIT."
    ),
    layout=BVCC_LAYOUT,
    automatic=(
        "main.tar.gz from Zenodo record 6572573 (md5 pinned), unpacked into the data root "
        "without its top folder main/; the archive is deleted afterwards.",
        f"transcriptions_clustered.csv from sarulab-speech/UTMOS22 (commit {UTMOS22_COMMIT[:8]}, "
        f"strong/transcriptions_clustered.csv), sha256 recorded on first download.",
    ),
    manual=(
        "Install SoX (http://sox.sourceforge.net) and sv56demo (ITU-T STL; the bundled "
        "install_sv56.sh downloads and compiles it) and put both on PATH.",
        "Read and accept the Blizzard Challenge terms of use: "
        "https://www.cstr.ed.ac.uk/projects/blizzard/data.html (no redistribution, research only).",
        "In the data root run: python 01_get.py (downloads the Blizzard 2008-2016 releases), "
        "python 02_gather.py (selects the samples), python 03_preprocess.py (16 kHz + sv56 "
        "normalisation into DATA/wav/). The bundled README says about 74 GB of disk are needed.",
        "Run `mosrm download bvcc --data-root <data root>` again: it checks that all 7,106 wavs "
        "listed in DATA/sets/*_mos_list.txt are in DATA/wav/.",
    ),
    remotes=(
        Remote(
            name="main.tar.gz",
            url=zenodo_file_url(6572573, "main.tar.gz"),
            checksum="md5:fc880c2a208c3285a47bd9a64f34eb11",
            unpack=Unpack(strip_top="main"),
        ),
        Remote(
            name="transcriptions_clustered.csv",
            url=f"{_UTMOS22_RAW}/strong/transcriptions_clustered.csv",
            dest="transcriptions_clustered.csv",
        ),
    ),
    check=_bvcc_check,
)

# -------------------------------------------------------------------------------------- NISQA

NISQA_DBS = (
    "NISQA_TRAIN_SIM",
    "NISQA_TRAIN_LIVE",
    "NISQA_VAL_SIM",
    "NISQA_VAL_LIVE",
    "NISQA_TEST_FOR",
    "NISQA_TEST_P501",
    "NISQA_TEST_LIVETALK",
)
NISQA_LAYOUT = """\
<data root>/                       # the NISQA_Corpus/ folder of NISQA_Corpus.zip
  NISQA_corpus_file.csv  NISQA_corpus_con.csv
  NISQA_TRAIN_SIM/ NISQA_TRAIN_LIVE/ NISQA_VAL_SIM/ NISQA_VAL_LIVE/
  NISQA_TEST_FOR/ NISQA_TEST_P501/ NISQA_TEST_LIVETALK/
      <DB>_file.csv  <DB>_con.csv  deg/*.wav  (ref/*.wav in SIM sets)
"""


def _nisqa_check(root: Path) -> list[str]:
    missing = _missing(root, tuple(f"{db}/{db}_file.csv" for db in NISQA_DBS))
    return [_metadata_step("nisqa", root, missing)] if missing else []


NISQA = Recipe(
    corpus="nisqa",
    title="NISQA Corpus",
    licence=(
        "See the corpus readme: the source speech keeps its own licences; the NISQA test sets "
        "are for non-commercial use."
    ),
    layout=NISQA_LAYOUT,
    automatic=(
        "NISQA_Corpus.zip (about 16 GB) from Zenodo record 4728081, verified against the md5 "
        "listed by the record's API (https://zenodo.org/api/records/4728081), unpacked into the "
        "data root without its top folder NISQA_Corpus/; the archive is deleted afterwards. The "
        "same zip is on TU Berlin DepositOnce "
        "(https://depositonce.tu-berlin.de/bitstream/11303/13012.5/9/NISQA_Corpus.zip).",
    ),
    manual=(),
    remotes=(
        Remote(
            name="NISQA_Corpus.zip",
            url=zenodo_file_url(4728081, "NISQA_Corpus.zip"),
            zenodo_record=4728081,
            unpack=Unpack(strip_top="NISQA_Corpus"),
        ),
    ),
    check=_nisqa_check,
)

# ------------------------------------------------------------------------------------ SingMOS

SINGMOS_REPO = "TangRain/SingMOS"
SINGMOS_LAYOUT = """\
<data root>/                       # a snapshot of the Hugging Face dataset TangRain/SingMOS
  wavs/sysXXXX-uttXXXX.wav
  info/split.json  info/score.json  info/sys_info.json
"""


def _singmos_check(root: Path) -> list[str]:
    missing = _missing(root, ("info/split.json", "info/score.json"))
    if not _has_wavs(root / "wavs"):
        missing.append("wavs/*.wav")
    return [_metadata_step("singmos", root, missing)] if missing else []


SINGMOS = Recipe(
    corpus="singmos",
    title="SingMOS (VoiceMOS Challenge 2024, track 2)",
    licence="CC-BY-4.0 (Hugging Face dataset card).",
    layout=SINGMOS_LAYOUT,
    automatic=(
        f"A snapshot of the Hugging Face dataset {SINGMOS_REPO} into the data root, via "
        f"huggingface_hub (pip install huggingface_hub, or mosrm-bench[download]); "
        f"huggingface_hub checks each file against the Hub's hashes. --mirror does not apply: "
        f"set HF_ENDPOINT for a Hub mirror.",
    ),
    manual=(),
    hf_dataset=SINGMOS_REPO,
    check=_singmos_check,
)

# -------------------------------------------------------------------------------------- SOMOS

SOMOS_LAYOUT = """\
<data root>/                       # somos.zip unpacked, with its inner audios.zip
  audios/<sentenceId>_<systemId>.wav
  raw_scores_with_metadata/raw_scores.tsv  raw_scores_with_metadata/split1/...
  training_files/split1/{full,clean}/TRAINSET VALIDSET TESTSET
  training_files/split1/{full,clean}/{train,valid,test}_mos_list.txt
"""


def _somos_check(root: Path) -> list[str]:
    clean = "training_files/split1/clean"
    missing = _missing(root, tuple(f"{clean}/{n}" for n in ("TRAINSET", "VALIDSET", "TESTSET")))
    if not _has_wavs(root / "audios"):
        missing.append("audios/*.wav")
    return [_metadata_step("somos", root, missing)] if missing else []


SOMOS = Recipe(
    corpus="somos",
    title="SOMOS (Samsung Open MOS)",
    licence="CC BY-NC-SA 4.0 (non-commercial), per the Zenodo record (UNVERIFIED here).",
    layout=SOMOS_LAYOUT,
    automatic=(
        "somos.zip (about 4 GB) from Zenodo record 7378801 (md5 pinned), unpacked into the data "
        "root; the audios.zip it contains is unpacked into audios/ and removed; the archive is "
        "deleted afterwards.",
    ),
    manual=(),
    remotes=(
        Remote(
            name="somos.zip",
            url=zenodo_file_url(7378801, "somos.zip"),
            checksum="md5:bdfde4cae256549dfab05d713136e4af",
            unpack=Unpack(
                strip_top="somos",
                nested=(Nested("audios.zip", Unpack(into="audios", strip_top="audios")),),
            ),
        ),
    ),
    check=_somos_check,
)

# ---------------------------------------------------------------------------------- TMHINT-QI

TMHINT_DRIVE = "https://drive.google.com/file/d/1TMDiz6dnS76hxyeAcCQxeSqqEOH4UDN0/view?usp=sharing"
TMHINT_LAYOUT = """\
<data root>/                       # the TMHINTQI/ folder of TMHINTQI.zip
  raw_data.csv      # one row per rating; header:
                    # idx,method,uttr,snr,noise,quality_score,intelligibility_score,file_name
  train/*.wav  test/*.wav
"""


def _tmhint_check(root: Path) -> list[str]:
    missing = _missing(root, ("raw_data.csv",))
    missing += [f"{d}/*.wav" for d in ("train", "test") if not _has_wavs(root / d)]
    if not missing:
        return []
    return [
        f"TMHINT-QI is downloaded by hand ({', '.join(missing)} missing under {root}): get "
        f"TMHINTQI.zip from {TMHINT_DRIVE} (linked from the InQSS README, "
        f"https://github.com/yuwchen/InQSS; `gdown 1TMDiz6dnS76hxyeAcCQxeSqqEOH4UDN0` also "
        f"works), put it at {root / 'TMHINTQI.zip'} and run `mosrm download tmhint_qi "
        f"--data-root {root}` again (it unpacks the zip without its TMHINTQI/ folder and "
        f"__MACOSX/); or unzip it yourself and move the contents of TMHINTQI/ into {root}. The "
        f"authors state no licence: check the terms before use."
    ]


TMHINT_QI = Recipe(
    corpus="tmhint_qi",
    title="TMHINT-QI",
    licence="Not stated by the authors (UNVERIFIED); check before use or redistribution.",
    layout=TMHINT_LAYOUT,
    automatic=(
        "Nothing is downloaded (Google Drive, licence not stated). A TMHINTQI.zip placed in the "
        "data root is unpacked safely without its top folder TMHINTQI/ and __MACOSX/.",
    ),
    manual=(
        f"Download TMHINTQI.zip from {TMHINT_DRIVE} (the link in the InQSS README, "
        "https://github.com/yuwchen/InQSS), e.g. with "
        "`gdown 1TMDiz6dnS76hxyeAcCQxeSqqEOH4UDN0`.",
        "Put it at <data root>/TMHINTQI.zip and run `mosrm download tmhint_qi --data-root "
        "<data root>` again, or unzip it yourself and move the contents of TMHINTQI/ into the "
        "data root (drop __MACOSX/).",
    ),
    manual_archives=(
        ManualArchive(
            name="TMHINTQI.zip",
            source=TMHINT_DRIVE,
            unpack=Unpack(strip_top="TMHINTQI"),
            what="raw_data.csv, train/ and test/",
        ),
    ),
    check=_tmhint_check,
)

# ------------------------------------------------------------------------------------- VMC'23

VMC23_TRACKS = {
    "track1": ManualArchive(
        name="VoiceMOS2023Track1.zip",
        source="https://www.dropbox.com/s/c83l67bkeh9p49k/VoiceMOS2023Track1.zip",
        unpack=Unpack(into="track1", strip_top="VoiceMOS2023Track1"),
        what="French TTS, Blizzard Challenge 2023",
    ),
    "track2": ManualArchive(
        name="VoiceMOS_2023_track2.zip",
        source="https://drive.google.com/file/d/188FJiCBT0RSI6-q4ICJPfGqmR22_9Kd2/view "
        "(gdown 188FJiCBT0RSI6-q4ICJPfGqmR22_9Kd2)",
        unpack=Unpack(into="track2", strip_top="VoiceMOS_2023_track2"),
        what="singing voice conversion, SVCC 2023",
    ),
    "track3": ManualArchive(
        name="VoiceMOS_2023_track3.zip",
        source="https://drive.google.com/file/d/10_1JbEsxKPYZJLDXMeMkcjLHkbDQt84w/view "
        "(gdown 10_1JbEsxKPYZJLDXMeMkcjLHkbDQt84w)",
        unpack=Unpack(into="track3", strip_top="VoiceMOS_2023_track3"),
        what="noisy and enhanced Mandarin speech, TMHINT-QI II",
    ),
}
VMC23_ANSWERS = ("track1_answer.txt", "track2_answer.txt", "track3_answer.txt")
VMC23_LAYOUT = """\
<data root>/
  track1_answer.txt track2_answer.txt track3_answer.txt   # <sample_id>,<MOS>
  listener_wise_answer.csv          # optional (track 2 per-listener scores)
  track1/<sample_id>.wav  track2/<sample_id>.wav  track3/<sample_id>.wav
"""


def _vmc23_check(root: Path) -> list[str]:
    steps: list[str] = []
    missing = _missing(root, VMC23_ANSWERS)
    if missing:
        steps.append(_metadata_step("vmc23", root, missing))
    for folder, archive in VMC23_TRACKS.items():
        if not _has_wavs(root / folder):
            steps.append(
                f"VMC'23 {folder} ({archive.what}): no wavs in {root / folder}: download "
                f"{archive.name} "
                f"from {archive.source} (links of the challenge, "
                f"https://voicemos-challenge-2023.github.io), put it at {root / archive.name} "
                f"and run `mosrm download vmc23 --data-root {root}` again (it unpacks it into "
                f"{folder}/ without its {archive.unpack.strip_top}/ folder and __MACOSX/)"
            )
    return steps


VMC23 = Recipe(
    corpus="vmc23",
    title="VMC'23 (VoiceMOS Challenge 2023, out-of-domain test sets)",
    licence=(
        "Per track, the terms of the Blizzard Challenge 2023, SVCC 2023 and TMHINT-QI releases "
        "(see the challenge site); answer keys as published in SHEET (MIT)."
    ),
    layout=VMC23_LAYOUT,
    automatic=(
        f"track1_answer.txt and track2_answer.txt from unilight/sheet egs/vmc23/answers/ "
        f"(commit {SHEET_COMMIT[:8]}), track3_answer.txt from the same folder on the main "
        f"branch; sha256 recorded on first download.",
        "VoiceMOS2023Track1.zip, VoiceMOS_2023_track2.zip and VoiceMOS_2023_track3.zip placed in "
        "the data root are unpacked safely into track1/, track2/ and track3/.",
    ),
    manual=(
        *(
            f"Download {a.name} ({folder}: {a.what}) from {a.source} and put it in the data root."
            for folder, a in VMC23_TRACKS.items()
        ),
        "Run `mosrm download vmc23 --data-root <data root>` again to unpack them.",
        "Optional: listener_wise_answer.csv (track 2 per-listener scores, "
        "sample_id,listener_name,score) has no public download that mosrm knows of; if you have "
        "it, put it in the data root.",
    ),
    remotes=(
        Remote(
            name="track1_answer.txt",
            url=f"{_SHEET_RAW}/{SHEET_COMMIT}/egs/vmc23/answers/track1_answer.txt",
            dest="track1_answer.txt",
        ),
        Remote(
            name="track2_answer.txt",
            url=f"{_SHEET_RAW}/{SHEET_COMMIT}/egs/vmc23/answers/track2_answer.txt",
            dest="track2_answer.txt",
        ),
        Remote(
            name="track3_answer.txt",
            url=f"{_SHEET_RAW}/main/egs/vmc23/answers/track3_answer.txt",
            dest="track3_answer.txt",
        ),
    ),
    manual_archives=tuple(VMC23_TRACKS.values()),
    check=_vmc23_check,
)

RECIPES: dict[str, Recipe] = {r.corpus: r for r in (BVCC, NISQA, SINGMOS, SOMOS, TMHINT_QI, VMC23)}


def get_recipe(corpus: str) -> Recipe:
    try:
        return RECIPES[corpus]
    except KeyError:
        known = ", ".join(RECIPES)
        raise MosrmError(f"unknown corpus '{corpus}' (known corpora: {known})") from None


def render_instructions(recipe: Recipe) -> str:
    lines = [recipe.title, "", "Automatic (mosrm download):"]
    lines += [f"  - {text}" for text in recipe.automatic]
    lines += ["", "By hand:"]
    if recipe.manual:
        lines += [f"  {i}. {text}" for i, text in enumerate(recipe.manual, start=1)]
    else:
        lines.append("  nothing.")
    lines += ["", f"Licence: {recipe.licence}", "", "Final layout (point --data-root here):"]
    lines += [f"  {row}" for row in recipe.layout.rstrip().splitlines()]
    return "\n".join(lines) + "\n"
