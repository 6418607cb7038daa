"""What the sandbox costs: the same model scored in-process and in its bubblewrap child.

200 generated clips of 2–4 s (demo-like lengths), batch size 16, a small log-mel convolutional
network (the kind of model that trains on a CPU here; its forward pass is the work the sandbox
must not dwarf). The child is started before timing: start-up (interpreter + torch import + model
build, once per submission and run) is reported apart. Goal: sandboxed scoring within 10% of the
in-process time at batch 16.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
import yaml

from benchmark.scoring.config import ScoringConfig
from benchmark.scoring.loop import score_clips
from benchmark.scoring.models import Batch, load_submission
from benchmark.scoring.sandbox import bubblewrap
from benchmarks.bench_scoring import N_CLIPS, corpus  # noqa: F401 - the shared clip fixture

pytestmark = pytest.mark.skipif(bubblewrap() is None, reason="bubblewrap cannot run here")

ROUNDS = 15

MODEL = """
import torch


class LogMelCnn(torch.nn.Module):
    sample_rate = 16000

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.register_buffer("window", torch.hann_window(400))
        self.mel = torch.nn.Linear(201, 64, bias=False)
        self.conv = torch.nn.Sequential(
            torch.nn.Conv1d(64, 128, 5, padding=2), torch.nn.ReLU(),
            torch.nn.Conv1d(128, 128, 5, padding=2), torch.nn.ReLU(),
            torch.nn.Conv1d(128, 128, 5, padding=2), torch.nn.ReLU(),
        )
        self.head = torch.nn.Linear(128, 1)

    def score(self, batch):
        spec = torch.stft(batch.waveforms, 400, 160, window=self.window, return_complex=True)
        power = spec.abs().transpose(1, 2)
        x = torch.log1p(power @ self.mel.weight.abs().T).transpose(1, 2)
        h = self.conv(x)
        frames = (batch.lengths // 160 + 1).clamp(max=h.shape[-1])
        mask = torch.arange(h.shape[-1])[None, :] < frames[:, None]
        pooled = (h * mask[:, None, :]).sum(-1) / frames[:, None]
        return self.head(pooled).squeeze(-1).double()


def build():
    return LogMelCnn()
"""


def _folder(tmp: Path) -> Path:
    folder = tmp / "logmel-cnn"
    folder.mkdir()
    (folder / "model.py").write_text(MODEL)
    spec = {"name": folder.name, "display_name": "cnn", "kind": "scalar", "entry": "model.py:build"}
    (folder / "submission.yaml").write_text(yaml.safe_dump(spec))
    return folder


def test_sandbox_overhead(benchmark, corpus, tmp_path):  # noqa: F811
    root, clips = corpus
    torch.set_num_threads(torch.get_num_threads())
    config = ScoringConfig(max_batch_size=16, progress=False, device="cpu")
    sub = load_submission(_folder(tmp_path))
    start = time.perf_counter()
    # start the child outside the timing: its sample rate may be known without starting it
    # (`benchmark.scoring.model_facts`), so one tiny call does it
    one = Batch(torch.zeros(1, 1600), torch.tensor([1600]), 16000, ("warm-up",))
    assert sub.model.score(one).shape == (1,) and sub.model.sample_rate == 16000
    startup = time.perf_counter() - start
    exec_globals: dict = {}
    exec(compile(MODEL, "model.py", "exec"), exec_globals)  # the same code, in this process
    local = exec_globals["build"]()
    counter = iter(range(1000))

    def run(model: object) -> dict[str, float]:
        cache = tmp_path / f"cache-{next(counter)}.sqlite"
        return score_clips(model, clips, root, fingerprint="bench", config=config, cache_path=cache)

    # interleaved, and each sandboxed round set against the in-process rounds just before and
    # just after it, so a busy moment of the machine hits both sides of a ratio alike; the
    # median of those paired ratios (a ratio of minima swung 1.03-1.14 between runs here)
    inside, outside = [], []

    def timed(model: object) -> tuple[float, dict[str, float]]:
        t = time.perf_counter()
        scores = run(model)
        return time.perf_counter() - t, scores

    for _ in range(ROUNDS):
        seconds, reference = timed(local)
        inside.append(seconds)
        seconds, sandboxed = timed(sub.model)
        outside.append(seconds)
    inside.append(timed(local)[0])
    benchmark.pedantic(run, args=(sub.model,), rounds=1, iterations=1)
    sub.close()
    for cid, value in reference.items():
        assert abs(sandboxed[cid] - value) <= 1e-6 * max(1.0, abs(value))
    paired = [o / ((inside[i] + inside[i + 1]) / 2) for i, o in enumerate(outside)]
    ratio = float(sorted(paired)[len(paired) // 2])
    benchmark.extra_info.update(
        {
            "in_process_s": round(min(inside), 3),
            "ratio": round(ratio, 3),
            "startup_s": round(startup, 2),
        }
    )
    print(
        f"\n{N_CLIPS} clips at batch 16: in-process {min(inside):.3f} s, sandboxed "
        f"{min(outside):.3f} s (minima); {ratio:.3f}x, median of paired rounds; child start-up "
        f"{startup:.2f} s"
    )
    assert ratio <= 1.10
