"""The pair builder's background sink (`pairs._Behind`): chunks reach `add` in call order, a
worker's error surfaces when the block ends, and a sampler's own error is not masked by it."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from benchmark.pairs.build import _Behind


def test_chunks_arrive_in_order_on_one_other_thread() -> None:
    seen: list[tuple[int, str]] = []

    def add(a: np.ndarray, b: np.ndarray) -> None:
        seen.append((int(a[0]), threading.current_thread().name))

    with _Behind(add) as sink:
        for i in range(50):
            sink(np.array([i]), np.array([i]))
    assert [i for i, _ in seen] == list(range(50))
    names = {name for _, name in seen}
    assert len(names) == 1 and names != {threading.current_thread().name}


def test_a_worker_error_is_raised_and_a_sampler_error_is_kept() -> None:
    def add(a: np.ndarray, b: np.ndarray) -> None:
        if a[0] == 3:
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        with _Behind(add) as sink:
            for i in range(5):
                sink(np.array([i]), np.array([i]))
    with pytest.raises(ValueError, match="sampler"):
        with _Behind(add) as sink:
            sink(np.array([3]), np.array([3]))
            raise ValueError("sampler")
