"""`mosrm` (`benchmark.cli.main`) whose submissions are an in-process RMS model that can fail on
one rank: what tests/test_sharding.py runs under torchrun to kill or break a rank mid-run.

    python -m torch.distributed.run --standalone --nproc-per-node 2 -m tests.shard_worker ARGS

Environment: SHARD_TEST_LOG, a file each rank appends "<rank> <clip id>" to for every clip its
model scored; SHARD_TEST_CRASH = "raise" (score() raises) or "kill" (SIGKILL of the process) on
rank 1 once it has scored one batch; SHARD_TEST_HOMES, a folder under which each rank gets its own
$MOSRM_HOME (`rank<N>`), as nodes without a shared filesystem have.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import torch

from benchmark.data.batch import Batch
from benchmark.scoring import models

FINGERPRINT = "rms-shard-test-v1"


class CrashingRms:
    """RMS over each clip's real samples (exactly batch-invariant), failing as the env says."""

    sample_rate = 16000

    def __init__(self) -> None:
        self.batches = 0

    def score(self, batch: Batch) -> torch.Tensor:
        rank = os.environ.get("RANK", "0")
        crash = os.environ.get("SHARD_TEST_CRASH", "")
        if crash and rank == "1" and self.batches >= 1:
            if crash == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError("boom")
        self.batches += 1
        log = os.environ.get("SHARD_TEST_LOG")
        if log:
            with open(log, "a") as f:
                f.writelines(f"{rank} {cid}\n" for cid in batch.clip_ids)
        out = torch.empty(len(batch), dtype=torch.float64)
        for i, n in enumerate(batch.lengths.tolist()):
            out[i] = batch.waveforms[i, :n].double().pow(2).mean().sqrt()
        return out


def load(folder: str | Path, **_: Any) -> models.Submission:
    """`load_submission` for the test: the folder's spec, this module's model."""
    folder = Path(folder).resolve()
    return models.Submission(models.read_spec(folder), folder, CrashingRms(), FINGERPRINT)


def write_folder(folder: Path) -> Path:
    """A submission folder the CLI accepts; `load` supplies its model."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "submission.yaml").write_text(
        "name: rms\ndisplay_name: RMS\nkind: scalar\nentry: model.py:build\n"
    )
    (folder / "model.py").write_text(
        "from tests.shard_worker import CrashingRms\n\n\ndef build():\n    return CrashingRms()\n"
    )
    return folder


if __name__ == "__main__":
    from benchmark.cli import main

    models.load_submission = load  # type: ignore[assignment]
    homes = os.environ.get("SHARD_TEST_HOMES")
    if homes:
        os.environ["MOSRM_HOME"] = str(Path(homes) / f"rank{os.environ['RANK']}")
    sys.exit(main(sys.argv[1:]))
