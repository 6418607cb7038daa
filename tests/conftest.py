"""Shared fixtures: an isolated MOSRM_HOME and workspace per test and a tiny generated corpus of
sine-ish clips. The suite never reads the user's own workspace (their submissions, tasks and
results in the current folder or ~/mosrm): a test that wants one makes it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    home = tmp_path_factory.mktemp("mosrm-home")
    monkeypatch.setenv("MOSRM_HOME", str(home))
    monkeypatch.setenv("MOSRM_WORKSPACE", str(tmp_path_factory.mktemp("mosrm-workspace")))
    monkeypatch.delenv("MOSRM_REPO", raising=False)
    return home


@pytest.fixture
def write_wav() -> Callable[..., Path]:
    """write_wav(path, seconds=0.5, sr=16000, channels=1, seed=0, amp=0.3) -> path: a noisy tone."""

    def _write(
        path: Path,
        seconds: float = 0.5,
        sr: int = 16000,
        channels: int = 1,
        seed: int = 0,
        amp: float = 0.3,
    ) -> Path:
        rng = np.random.default_rng(seed)
        n = max(1, int(round(seconds * sr)))
        t = np.arange(n) / sr
        x = amp * np.sin(2 * np.pi * (200 + 50 * seed) * t) + 0.01 * rng.standard_normal(n)
        data = np.stack([x] * channels, axis=1) if channels > 1 else x
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, data.astype(np.float32), sr, subtype="PCM_16")
        return path

    return _write
