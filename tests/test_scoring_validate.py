"""Model output validation (`scoring._validate`): every accepted dtype and device path gives
float64 values that are a copy (a model that edits its output later cannot change a cached
score), and every bad output is one `SubmissionError` naming the clips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.errors import SubmissionError
from benchmark.scoring.calls import _validate

IDS = [f"c{i}" for i in range(4)]


@pytest.mark.parametrize(
    "dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int64]
)
def test_every_real_dtype_gives_a_float64_copy(dtype: torch.dtype) -> None:
    out = torch.tensor([0.5, 1.0, 2.0, 3.0]).to(dtype)
    got = _validate(out, 4, "score()", "fp", IDS)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, out.double().numpy())
    out.fill_(7)  # the model reuses its output buffer: the values taken stay
    np.testing.assert_array_equal(got, torch.tensor([0.5, 1.0, 2.0, 3.0]).to(dtype).double())


@pytest.mark.parametrize("out", [[0.0, 1.0, 2.0, 3.0], np.arange(4.0), (0.0, 1.0, 2.0, 3.0)])
def test_lists_and_arrays_are_refused(out: object) -> None:
    """The contract is `Tensor[B]`: a list that happens to have B numbers is a model that does
    not do what its author thinks (a list of per-clip tensors, a batch of one), so it is named."""
    with pytest.raises(SubmissionError) as err:
        _validate(out, 4, "score()", "fp", IDS)
    assert f"returned {type(out).__name__}, not a torch.Tensor of shape [4]" in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("out", "message"),
    [
        (torch.zeros(3), "returned shape [3], expected [4]"),
        (torch.zeros(4, 1), "returned shape [4, 1], expected [4]"),
        (torch.tensor([0.0, float("nan"), 1.0, float("inf")]), "2 non-finite values (at c1, c3)"),
        (torch.zeros(4, dtype=torch.bool), "dtype torch.bool"),
        (torch.zeros(4, dtype=torch.complex64), "dtype torch.complex64"),
        ("four", "returned str, not a torch.Tensor"),
    ],
)
def test_bad_output_is_one_error_naming_the_clips(out: object, message: str) -> None:
    with pytest.raises(SubmissionError) as err:
        _validate(out, 4, "score()", "fp", IDS)
    assert message in str(err.value)
    assert "model fp: score()" in str(err.value) and "c0, c1, c2, c3" in str(err.value)


def test_probabilities_must_be_in_the_unit_interval() -> None:
    with pytest.raises(SubmissionError, match=r"1 values outside \[0, 1\] \(at c2\)"):
        _validate(torch.tensor([0.0, 1.0, 1.5, 0.5]), 4, "prefer()", "fp", IDS, prob=True)
