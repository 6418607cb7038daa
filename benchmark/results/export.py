"""Pair indices and clip metadata as a Hugging Face Parquet dataset (`mosrm export-pairs`).

None of the corpora's audio may be redistributed, but the pairs are what makes results comparable:
someone holding the corpus and these files scores exactly the pairs the leaderboard scored. So the
export holds clip ids, corpus-relative audio paths, MOS and grouping keys, never audio and never a
path of this machine.

Layout of the export folder (loadable with `datasets.load_dataset(DIR, "<task>")`):

    README.md              dataset card: YAML front matter (licence, configs) + per-corpus licences
    <task>/<split>.parquet the harness's pair file for that split, byte for byte
    <task>/clips.parquet   the task's clip table (audio path relative to the corpus root)

The pair files are copied, not rewritten, so each exported file's SHA-256 is the `pair_file_sha256`
recorded in results JSON: a user checks they have the leaderboard's pairs with `sha256sum`. Only a
task's canonical prepared folder is exported (custom `--pairs` sets are not the leaderboard's).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from benchmark import HARNESS_VERSION
from benchmark.errors import DataError, MosrmError

if TYPE_CHECKING:
    import pyarrow as pa

    from benchmark.data.tasks import Task

CARD = "README.md"
CLIPS_FILE = "clips.parquet"
CLIPS_SPLIT = "clips"
"""Split name of a task's `<task>-clips` config (the clip table spans every split)."""

_SPLIT_NAME = re.compile(r"^\w+$")
_HUB_LICENSES = {"apache-2.0": "apache-2.0", "cc-by-4.0": "cc-by-4.0", "cc0": "cc0-1.0"}
"""Leading words of a task's `license` that name one Hub licence id; any other text is `other`."""
_SIZE_CATEGORIES: tuple[tuple[int, str], ...] = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
)


@dataclass(frozen=True)
class PreparedFiles:
    """What `mosrm prepare` left for one task, checked against its manifest."""

    task: Task
    folder: Path
    manifest: dict[str, Any]
    pair_files: dict[str, Path]
    clips: pa.Table
    """The clip table as exported: `audio_path` relative to the corpus root (null if outside)."""


def is_prepared(task: Task) -> bool:
    from benchmark.paths import prepared_dir

    return (prepared_dir(task.name) / "manifest.json").is_file()


def load_prepared_files(task: Task) -> PreparedFiles:
    """The task's canonical prepared folder, refused unless its files hash to its manifest and its
    task version is today's (an export must be the pairs `evaluate` would score)."""
    import pyarrow.parquet as pq

    from benchmark.hashing import sha256_file
    from benchmark.paths import prepared_dir

    folder = prepared_dir(task.name)
    path = folder / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MosrmError(
            f"task '{task.name}' is not prepared (no {path}): run `mosrm prepare {task.name}` first"
        ) from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable manifest ({exc})") from None
    try:
        version = manifest["task_version"]
        names: dict[str, str] = manifest["pair_files"]
        hashes: dict[str, str] = manifest["pair_sha256"]
        clips_sha = manifest["clips_sha256"]
    except (KeyError, TypeError):
        raise DataError(
            f"{path}: not a prepare manifest (rerun `mosrm prepare {task.name}`)"
        ) from None
    if version != task.spec.version:
        raise MosrmError(
            f"{path}: prepared for version {version} of task '{task.name}', the task is now "
            f"version {task.spec.version}: rerun `mosrm prepare {task.name}`"
        )
    pair_files = {split: folder / name for split, name in sorted(names.items())}
    checks = [(folder / "clips.parquet", clips_sha)]
    checks += [(pair_files[s], hashes.get(s)) for s in pair_files]
    for file, expected in checks:
        if not file.is_file() or sha256_file(file) != expected:
            raise DataError(
                f"{file}: missing or changed since `mosrm prepare` (its manifest says sha256 "
                f"{expected}): rerun `mosrm prepare {task.name}`"
            )
    for split in pair_files:
        if split == CLIPS_SPLIT or not _SPLIT_NAME.match(split):
            raise DataError(
                f"task '{task.name}': split name '{split}' cannot be a dataset split "
                f"(letters, digits and _ only, and not '{CLIPS_SPLIT}')"
            )
    clips = pq.read_table(folder / "clips.parquet")
    clips = clips.set_column(
        clips.schema.get_field_index("audio_path"),
        "audio_path",
        _corpus_paths(clips, manifest, path),
    )
    return PreparedFiles(task, folder, manifest, pair_files, clips)


def _corpus_paths(clips: pa.Table, manifest: dict[str, Any], source: Path) -> pa.Array:
    """Each clip's audio path relative to the corpus root, null where it lies outside it.

    After resampling, the clip table points into the audio cache; the cache manifest remembers
    each clip's source path (relative to the data root, or absolute when outside it).
    """
    import pyarrow as pa

    paths = clips.column("audio_path").to_pylist()
    cache = manifest.get("audio_cache")
    if cache is not None:
        from benchmark.data.audio_cache import CACHE_DIR, MANIFEST

        cache_manifest = Path(cache["folder"]) / CACHE_DIR / MANIFEST
        try:
            entries = json.loads(cache_manifest.read_text(encoding="utf-8"))["clips"]
            paths = [entries[cid]["source"] for cid in clips.column("clip_id").to_pylist()]
        except (OSError, ValueError, KeyError, TypeError):
            raise DataError(
                f"{cache_manifest}: missing or incomplete, so the clips' source paths are unknown "
                f"(rerun `mosrm prepare {manifest.get('task')}`)"
            ) from None
    root = os.path.realpath(str(manifest.get("data_root", "")))
    out: list[str | None] = []
    for p in paths:
        if not os.path.isabs(p):
            out.append(PurePosixPath(Path(p).as_posix()).as_posix())
            continue
        real = os.path.realpath(p)
        inside = real.startswith(root + os.sep)
        out.append(Path(os.path.relpath(real, root)).as_posix() if inside else None)
    return pa.array(out, pa.string())


def export_pairs(tasks: Sequence[Task], out_dir: str | Path) -> list[Path]:
    """Write the export of `tasks` (each prepared) into `out_dir`; return the files written.

    Every task is checked before anything is written, so an unprepared task leaves `out_dir` as it
    was. Parquet files left in a task's export folder by an earlier export (a split since removed)
    are deleted, so the folder holds exactly what the card lists.
    """
    from benchmark.atomic import atomic_write_bytes, atomic_write_text
    from benchmark.data.tables import write_parquet

    if not tasks:
        raise MosrmError("nothing to export: no task given")
    loaded = [load_prepared_files(t) for t in sorted(tasks, key=lambda t: t.name)]
    names = {p.task.name for p in loaded}
    clash = sorted(n for n in names if n.endswith("-clips") and n.removesuffix("-clips") in names)
    if clash:
        raise MosrmError(f"task name '{clash[0]}' clashes with another task's clips config")
    out = Path(out_dir)
    written: list[Path] = []
    for prep in loaded:
        folder = out / prep.task.name
        folder.mkdir(parents=True, exist_ok=True)
        keep = {f"{s}.parquet" for s in prep.pair_files} | {CLIPS_FILE}
        for old in sorted(folder.glob("*.parquet")):
            if old.name not in keep:
                old.unlink()
        for split, src in prep.pair_files.items():
            dst = folder / f"{split}.parquet"
            atomic_write_bytes(dst, src.read_bytes())
            written.append(dst)
        meta = {
            "task": prep.task.name,
            "task_version": prep.task.spec.version,
            "harness_version": prep.manifest.get("harness_version"),
        }
        write_parquet(prep.clips, folder / CLIPS_FILE, meta)
        written.append(folder / CLIPS_FILE)
    atomic_write_text(out / CARD, dataset_card(loaded, out))
    written.append(out / CARD)
    return written


def hub_license(text: str) -> str | None:
    """The Hub licence id a task's `license` text names, or None (unverified or not one id)."""
    if "unverified" in text.lower():
        return None
    first = re.split(r"[\s(;,]", text.strip(), maxsplit=1)[0].lower()
    return _HUB_LICENSES.get(first)


def _size_category(n: int) -> str:
    return next((label for limit, label in _SIZE_CATEGORIES if n < limit), "n>10M")


def front_matter(loaded: Sequence[PreparedFiles]) -> dict[str, Any]:
    """The card's YAML header: one config per task (pair files by split) and one for its clips."""
    ids = {hub_license(p.task.spec.license) for p in loaded}
    configs: list[dict[str, Any]] = []
    for i, prep in enumerate(loaded):
        name = prep.task.name
        pairs: dict[str, Any] = {"config_name": name}
        if i == 0:
            pairs["default"] = True  # `load_dataset(DIR)` without a config name loads this one
        pairs["data_files"] = [{"split": s, "path": f"{name}/{s}.parquet"} for s in prep.pair_files]
        configs.append(pairs)
        configs.append(
            {
                "config_name": f"{name}-clips",
                "data_files": [{"split": CLIPS_SPLIT, "path": f"{name}/{CLIPS_FILE}"}],
            }
        )
    tags = ["speech", "speech-quality", "mos", "pairwise-preference", "reward-modeling"]
    if any(p.task.spec.synthetic for p in loaded):
        tags.append("synthetic")
    largest = max(max(_pair_counts(p).values(), default=0) for p in loaded)
    return {
        "pretty_name": "mosrm-bench pair indices: " + ", ".join(p.task.name for p in loaded),
        "license": ids.pop() if len(ids) == 1 and None not in ids else "other",
        "tags": tags,
        "task_categories": ["audio-classification"],
        "size_categories": [_size_category(largest)],
        "configs": configs,
    }


def _pair_counts(prep: PreparedFiles) -> dict[str, int]:
    meta = prep.manifest.get("pair_meta", {})
    return {s: int(meta.get(s, {}).get("n_pairs", 0)) for s in prep.pair_files}


def dataset_card(loaded: Sequence[PreparedFiles], out: Path) -> str:
    """README.md of the export: front matter, then what each file is and whose terms apply.

    Deterministic (no dates): the same prepared tasks give the same bytes. The hashes of the
    exported files are those of the files already in `out` (written before the card).
    """
    import yaml

    from benchmark.data.tables import PAIR_COLUMNS_DOC
    from benchmark.escape import markdown_cell as cell
    from benchmark.hashing import sha256_file

    header = yaml.safe_dump(front_matter(loaded), sort_keys=False, allow_unicode=True)
    lines = [
        "---",
        header.rstrip("\n"),
        "---",
        "",
        "# mosrm-bench pair indices",
        "",
        "The pairs of clips, and the clips' metadata, that the mosrm-bench harness scores reward "
        "models on, as written by `mosrm export-pairs` (harness version "
        f"{HARNESS_VERSION}). **No audio is included**: fetch each corpus from its source (see "
        "the table), then join on `clip_id`, or on `audio_path`, which is relative to the corpus "
        "root.",
        "",
        "## Tasks and licences",
        "",
        "The pairs and MOS derive from each corpus's labels, so the corpus's terms apply to them.",
        "",
        "| task | corpus | version | synthetic | pairs per split | licence | source |",
        "|---|---|---|---|---|---|---|",
    ]
    for prep in loaded:
        spec = prep.task.spec
        corpora = sorted(set(prep.clips.column("corpus").to_pylist()))
        counts = ", ".join(f"{s}: {n}" for s, n in _pair_counts(prep).items())
        url = cell(spec.url) if spec.url else "see the corpus's terms"
        row = [
            cell(spec.name),
            cell(", ".join(corpora)),
            str(spec.version),
            "**yes** (generated locally, not real listener ratings)" if spec.synthetic else "no",
            cell(counts),
            cell(spec.license),
            url,
        ]
        lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "## Files and checksums",
        "",
        "Each `<task>/<split>.parquet` is the harness's pair file, byte for byte: its SHA-256 is "
        "the `pair_file_sha256` of every result computed on those pairs, so `sha256sum` tells "
        "whether you hold the same pairs.",
        "",
        "| file | rows | sha256 | harness pair-file sha256 | prepared with harness |",
        "|---|---|---|---|---|",
    ]
    for prep in loaded:
        name = prep.task.name
        recorded = prep.manifest["pair_sha256"]
        built_with = cell(prep.manifest.get("harness_version", "unknown"))
        for split, n in _pair_counts(prep).items():
            digest = sha256_file(out / name / f"{split}.parquet")
            lines.append(
                f"| `{name}/{split}.parquet` | {n} | `{digest}` | `{recorded[split]}` "
                f"| {built_with} |"
            )
        digest = sha256_file(out / name / CLIPS_FILE)
        lines.append(
            f"| `{name}/{CLIPS_FILE}` | {prep.clips.num_rows} | `{digest}` | — | {built_with} |"
        )
        outside = prep.clips.column("audio_path").null_count
        if outside:
            lines += [
                "",
                f"{outside} clip(s) of `{name}` lie outside its corpus root: their `audio_path` "
                "is left empty.",
            ]
        overrides = prep.manifest.get("count_overrides")
        if overrides:
            lines += [
                "",
                f"`{name}` was prepared with non-standard pair counts: "
                f"{cell(json.dumps(overrides, sort_keys=True))}.",
            ]
    name, split = loaded[0].task.name, next(iter(loaded[0].pair_files))
    lines += [
        "",
        "## Pair columns",
        "",
        "| column | meaning |",
        "|---|---|",
        *(f"| `{k}` | {cell(v)} |" for k, v in PAIR_COLUMNS_DOC.items()),
        "",
        "The clip configs (`<task>-clips`, split `clips`) hold one row per clip: `clip_id`, "
        "`corpus`, `split`, `subset`, `audio_path` (relative to the corpus root), `mos` (on the "
        "1–5 scale the pairs use), `n_ratings`, `rating_std`, `system_id`, `speaker_id`, "
        "`content_id`, and the source audio's `sample_rate` and `duration` when it was probed.",
        "",
        "## Loading",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        f'pairs = load_dataset("path/to/this/folder", "{name}")  # a DatasetDict by split',
        f'clips = load_dataset("path/to/this/folder", "{name}-clips")["clips"]',
        "# or one file, without this card:",
        f'load_dataset("parquet", data_files={{"{split}": "path/to/this/folder/{name}/'
        f'{split}.parquet"}})',
        "```",
        "",
    ]
    return "\n".join(lines)
