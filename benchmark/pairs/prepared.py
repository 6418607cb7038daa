"""A task whose clip table and pair files are on disk: what every stage after pairs reads.

Its own module, below both `prepare` (which builds one) and `reuse` (which loads one back), so that
neither imports the other's caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.errors import MosrmError

if TYPE_CHECKING:
    import pyarrow as pa

    from benchmark.data.corpora._native import Skip
    from benchmark.data.tasks import Task

CANONICAL_RANGE = (1.0, 5.0)
"""Every corpus's MOS is rescaled to this range (`prepare.rescale_to_canonical`)."""


@dataclass
class PreparedTask:
    """A task whose clip table and pair files are on disk."""

    task: Task
    data_root: Path
    folder: Path
    clips: pa.Table
    pair_files: dict[str, Path] = field(default_factory=dict)
    pair_sha256: dict[str, str] = field(default_factory=dict)
    pair_meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    skips: list[Skip] = field(default_factory=list)
    labels_only: bool = False
    audio_root: Path | None = None
    """Where `clips.audio_path` resolves: the 16 kHz cache folder once resampled, else data_root."""

    @property
    def audio_base(self) -> Path:
        return self.audio_root if self.audio_root is not None else self.data_root

    def pairs(self, split: str) -> pa.Table:
        from benchmark.data.tables import read_parquet

        if split not in self.pair_files:
            raise MosrmError(
                f"task '{self.task.name}' has no '{split}' pairs (splits: {', '.join(self.pair_files)})"
            )
        return read_parquet(self.pair_files[split])
