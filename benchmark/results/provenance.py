"""Whether a results file says true things about who made it, and whether its scores are the
model's: the checks behind "verified" on the board.

Why its own module: a results file is written by whoever submits it, so every field that decides
where it lands on the board (`display_name`, `baseline`, `kind`, `shortcut`, `training_data` and so
`zero_shot`, `synthetic`, the task's version, seed and bins) is compared with what the repository
itself holds, the submission's own `submission.yaml` and the task spec (`metadata_problems`), and
its scores are re-computed by running the submission, sandboxed, on a secret random sample of its
pairs (`rescore`). Only a re-score that agrees writes the ledger (`results.ledger`); nothing a
submitter writes can make a row "verified". Never trusts the result's own claims about itself,
and never writes a results file.
"""

from __future__ import annotations

import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

    from benchmark.data.tasks import Task
    from benchmark.pairs.prepared import PreparedTask
    from benchmark.results.schema import TaskResult
    from benchmark.scoring.spec import SubmissionSpec

DEFAULT_SAMPLE = 64
"""Pairs re-scored per results file: enough to catch any edit of more than a few percent of the
scores with near certainty (a forged share f escapes a sample of n with probability (1 - f)^n:
0.26% for f = 9% at n = 64), cheap enough to run on every results PR."""

DEFAULT_TOLERANCE = 1e-6
"""|re-scored − submitted| allowed per score, absolute and relative (`np.isclose`). A model whose
output does not depend on the batch gives the same bits on the same software; the sample is
batched differently from the full run, and a float32 model that does not fully mask padding
moves by up to ~2.4e-7 here (the demo's BT CNN; 0 for the judges and zero-shot models), as does a
different CPU's reduction order. A score edited by hand moves far more."""


def zero_shot(training_data: list[str], task: str) -> bool:
    """A model is zero-shot on a task unless its declared training data names the task: the one
    rule, applied when a result is written (`pipeline`) and when it is checked (here)."""
    return not any(entry.split(":", 1)[0] == task for entry in training_data)


def metadata_problems(
    result: TaskResult,
    task: Task,
    spec: SubmissionSpec | None,
    official: bool,
    baseline_names: dict[str, str],
) -> list[str]:
    """One line per field that disagrees with the task spec or the submission's own
    `submission.yaml` (`spec`; None when its folder is not here, so what only it could tell is
    left to the fingerprint check). `official`: the folder is one of the repository's own
    baselines (`scoring.trust`); `baseline_names`: their display names, by submission."""
    out = []

    def differs(field: str, found: Any, expected: Any, source: str) -> None:
        if found != expected:
            out.append(f"field '{field}' is {found!r} but {source} says {expected!r}")

    t = task.spec
    where = f"tasks/{t.name}.yaml"
    differs("synthetic", result.synthetic, t.synthetic, where)
    differs("seed", result.seed, t.seed, where)
    differs("bins_requested", result.bins_requested, t.bins, where)
    if result.label is not None:
        differs("label.dimension", result.label.dimension, t.label_dimension, where)
    if spec is not None:
        yaml = f"{result.submission}/submission.yaml"
        differs("display_name", result.display_name, spec.display_name, yaml)
        differs("kind", result.kind, spec.kind, yaml)
        differs("shortcut", result.shortcut, spec.shortcut, yaml)
        differs("training_data", result.training_data, list(spec.training_data), yaml)
    if result.baseline and not official:
        out.append(
            f"field 'baseline' is true but '{result.submission}' is not one of the repository's "
            "baselines (only its own folders may carry it)"
        )
    for name, shown in baseline_names.items():
        if name != result.submission and result.display_name == shown:
            out.append(
                f"field 'display_name' is {shown!r}, the name of the repository's baseline '{name}'"
            )
    expected_zero_shot = zero_shot(result.training_data, t.name)
    if result.zero_shot != expected_zero_shot:
        out.append(
            f"field 'zero_shot' is {result.zero_shot} but 'training_data' "
            f"{result.training_data} says {expected_zero_shot}"
        )
    return out


@dataclass(frozen=True)
class Rescore:
    """What re-running the submission on a sample of its pairs found."""

    sampled: int
    differing: int
    max_abs_diff: float
    examples: list[str]

    @property
    def agrees(self) -> bool:
        return self.sampled > 0 and self.differing == 0


SCORE_COLUMNS = ("score_a", "score_b", "p_a_first", "p_b_first")


def sample_rows(n_rows: int, sample: int, seed: int | None = None) -> np.ndarray:
    """Row indices to re-score: `sample` of `n_rows`, drawn from a secret seed (a fresh 128-bit
    one unless a test passes `seed`), so a submitter cannot know which pairs will be checked."""
    rng = np.random.default_rng(secrets.randbits(128) if seed is None else seed)
    k = min(max(sample, 0), n_rows)
    return np.sort(rng.choice(n_rows, size=k, replace=False))


def rescore(
    folder: Path,
    pred: pa.Table,
    prepared: PreparedTask,
    *,
    sample: int = DEFAULT_SAMPLE,
    tolerance: float = DEFAULT_TOLERANCE,
    seed: int | None = None,
) -> Rescore:
    """Run the submission in `folder` (sandboxed unless it is one of the repository's own) on a
    secret sample of the predictions' pairs, with a throw-away score cache (so every score comes
    from the model now, never from a cache), and compare each score with the submitted one."""
    import pyarrow.compute as pc

    from benchmark.scoring.config import ScoringConfig
    from benchmark.scoring.models import load_submission
    from benchmark.scoring.predictions import predict

    rows = sample_rows(pred.num_rows, sample, seed)
    submitted = pred.take(rows)
    ids = submitted.column("pair_id")
    pair_table = prepared.pairs(pred.column("split")[0].as_py())
    pairs = pair_table.filter(pc.is_in(pair_table.column("pair_id"), value_set=ids))
    submission = load_submission(folder)
    try:
        with tempfile.TemporaryDirectory(prefix="mosrm-rescore-") as tmp:
            again = predict(
                submission,
                pairs,
                prepared.clips,
                prepared.audio_base,
                config=ScoringConfig(progress=False),
                cache_path=Path(tmp) / "scores.sqlite",
            )
    finally:
        close = getattr(submission.model, "close", None)
        if callable(close):
            close()
    order = {pid: i for i, pid in enumerate(again.column("pair_id").to_pylist())}
    take = [order[pid] for pid in ids.to_pylist()]
    differing: set[str] = set()
    worst = 0.0
    examples: list[str] = []
    for col in SCORE_COLUMNS:
        if col not in submitted.column_names:
            continue
        mine = np.asarray(submitted.column(col).to_numpy(zero_copy_only=False), dtype=np.float64)
        now = np.asarray(again.column(col).to_numpy(zero_copy_only=False), dtype=np.float64)[take]
        diff = np.abs(mine - now)
        worst = max(worst, float(np.nanmax(diff)) if diff.size else 0.0)
        bad = ~np.isclose(mine, now, rtol=tolerance, atol=tolerance)
        for i in np.flatnonzero(bad):
            pid = str(ids[int(i)].as_py())
            if pid not in differing and len(examples) < 3:
                examples.append(f"{pid}: {col} {mine[i]:.6g} submitted, {now[i]:.6g} now")
            differing.add(pid)
    return Rescore(int(rows.size), len(differing), worst, examples)
