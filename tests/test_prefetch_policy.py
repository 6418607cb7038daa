"""When the scoring loop reads ahead in a background thread: only when a core is free for it (the
model on an accelerator or in a sandboxed child, or torch on fewer threads than the process may
use); the scores are the same either way."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

import benchmark.scoring.config as scoring_config
import benchmark.scoring.loop as scoring
from benchmark.data.batch import Batch
from benchmark.data.tables import CLIP_SCHEMA, from_rows
from benchmark.scoring.config import ScoringConfig
from benchmark.scoring.loop import score_clips


class ThreadCounter:
    """Records how many background readers (`benchmark.scoring.prefetch` threads) run with the model."""

    sample_rate = 16000

    def __init__(self) -> None:
        self.threads: list[int] = []

    def score(self, batch: Batch) -> torch.Tensor:
        self.threads.append(sum(t.name == "mosrm-prefetch" for t in threading.enumerate()))
        return batch.waveforms.double().sum(dim=1)


@pytest.fixture
def clips(tmp_path: Path, write_wav):
    rows = []
    for i in range(6):
        write_wav(tmp_path / f"c{i}.wav", seconds=0.05 + 0.01 * i, sr=16000, channels=1, seed=i)
        rows.append(
            {
                "clip_id": f"c{i}",
                "corpus": "t",
                "split": "test",
                "audio_path": f"c{i}.wav",
                "mos": 3.0,
                "duration": 0.05 + 0.01 * i,
            }
        )
    return from_rows(rows, CLIP_SCHEMA), tmp_path


@pytest.mark.parametrize(
    ("device", "torch_threads", "cpus", "prefetch", "ahead"),
    [
        ("cpu", 2, 2, 2, 0),  # the model's threads take every core: read inline
        ("cpu", 4, 2, 2, 0),
        ("cpu", 1, 2, 2, 2),  # a core to spare
        ("cpu", 1, 2, 0, 0),  # asked for none
        ("cuda", 8, 8, 3, 3),  # the model runs on the GPU: the CPU reads meanwhile
    ],
)
def test_read_ahead_only_with_a_core_to_spare(
    monkeypatch: pytest.MonkeyPatch,
    device: str,
    torch_threads: int,
    cpus: int,
    prefetch: int,
    ahead: int,
) -> None:
    monkeypatch.setattr(torch, "get_num_threads", lambda: torch_threads)
    monkeypatch.setattr(scoring_config, "_usable_cpus", lambda: cpus)
    config = ScoringConfig(prefetch=prefetch, progress=False)
    assert scoring._read_ahead(config, torch.device(device)) == ahead


def test_no_thread_where_none_helps_and_the_same_scores(
    clips, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table, root = clips
    config = ScoringConfig(max_batch_size=2, progress=False, device="cpu", prefetch=2)
    runs = {}
    for cpus in (torch.get_num_threads(), 1 << 20):  # every core busy / cores to spare
        monkeypatch.setattr(scoring_config, "_usable_cpus", lambda cpus=cpus: cpus)
        model = ThreadCounter()
        scores = score_clips(
            model, table, root, fingerprint="t", config=config, cache_path=tmp_path / f"{cpus}"
        )
        runs[cpus] = scores
        # (the reader ends once it has made the last batch, so it may be gone for the last ones)
        assert max(model.threads) == (0 if cpus == torch.get_num_threads() else 1)
    assert len(set(map(str, runs.values()))) == 1


class Elsewhere(ThreadCounter):
    """A model that, like `SandboxedModel`, computes in another process."""

    runs_elsewhere = True


def test_a_model_in_another_process_gets_read_ahead(
    clips, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every core busy with torch threads, yet the sandboxed child does the computing: this
    process only reads and pads, so the reader thread overlaps with the child."""
    from benchmark.scoring.sandbox.host import SandboxedModel

    assert SandboxedModel.runs_elsewhere is True
    monkeypatch.setattr(scoring_config, "_usable_cpus", torch.get_num_threads)
    config = ScoringConfig(max_batch_size=2, progress=False, device="cpu", prefetch=2)
    assert scoring._read_ahead(config, torch.device("cpu"), elsewhere=True) == 2
    assert scoring._read_ahead(config, torch.device("cpu")) == 0
    table, root = clips
    model = Elsewhere()
    here = ThreadCounter()
    got = score_clips(model, table, root, fingerprint="e", config=config, cache_path=tmp_path / "e")
    want = score_clips(here, table, root, fingerprint="h", config=config, cache_path=tmp_path / "h")
    assert max(model.threads) == 1 and max(here.threads) == 0
    assert got == want
