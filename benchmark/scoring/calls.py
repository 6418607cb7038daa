"""Calling a submitted model: the only place the loop touches it.

Why its own module: every way a model can misbehave (no or a bad sample rate, a wrong shape, a
non-finite or out-of-range value, an exception, running out of memory) becomes here one
`SubmissionError` naming the model fingerprint and the clips, before anything reaches the score
cache, so a bad score can never be reused by a later run. Nothing here reads audio or the cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmark.data.batch import Batch
from benchmark.errors import SubmissionError

if TYPE_CHECKING:
    import torch


def _sample_rate(model: Any, fingerprint: str) -> int:
    """The model's sample rate, checked: with the model fingerprint, all a cache lookup needs."""
    sr = getattr(model, "sample_rate", None)
    if not isinstance(sr, int | np.integer) or isinstance(sr, bool) or sr <= 0:
        raise SubmissionError(
            f"model {fingerprint}: sample_rate must be a positive int, got {sr!r}"
        )
    return int(sr)


def _prepare_model(model: Any, device: torch.device, fingerprint: str) -> tuple[Any, int]:
    """Move the model to `device`, put torch modules in eval mode, read its sample rate.

    Called only when some unit is not in the cache: a fully cached run never imports torch."""
    import torch

    sr = _sample_rate(model, fingerprint)
    if hasattr(model, "to"):
        moved = model.to(device)
        if moved is not None:
            model = moved
    if isinstance(model, torch.nn.Module):
        model.eval()  # dropout on would make scores random
    return model, sr


def _validate(
    out: Any, n: int, what: str, fingerprint: str, clip_ids: Sequence[str], *, prob: bool = False
) -> np.ndarray:
    """Model output as float64 [n] (in [0, 1] if `prob`), or SubmissionError naming the clips.

    Runs before anything is cached, so a bad score can never be reused by a later run.
    """
    import torch

    def fail(reason: str) -> SubmissionError:
        shown = ", ".join(clip_ids[:8]) + (f", ... ({len(clip_ids)} clips)" if n > 8 else "")
        return SubmissionError(f"model {fingerprint}: {what} {reason} for clips {shown}")

    if not isinstance(out, torch.Tensor):  # the contract is Tensor[B]: a list is a mistake
        raise fail(f"returned {type(out).__name__}, not a torch.Tensor of shape [{n}]")
    t = out
    if t.is_complex() or t.dtype == torch.bool:
        raise fail(f"returned dtype {t.dtype}, expected a real number per clip")
    if t.shape != (n,):
        raise fail(f"returned shape {list(t.shape)}, expected [{n}]")
    # a copy, never the model's memory; the common case (float on the CPU) in one numpy call,
    # because each call here runs on caches the forward pass has just evicted (~0.1 ms a batch)
    if t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64, torch.float16):
        values = t.detach().numpy().astype(np.float64)
    else:
        values = t.detach().to("cpu", torch.float64, copy=True).numpy()
    if not np.isfinite(values).all():
        bad = ~np.isfinite(values)
        named = [c for c, b in zip(clip_ids, bad, strict=True) if b]
        raise fail(f"returned {int(bad.sum())} non-finite values (at {', '.join(named[:8])})")
    if prob:
        out_of_range = (values < 0.0) | (values > 1.0)
        if out_of_range.any():
            named = [c for c, b in zip(clip_ids, out_of_range, strict=True) if b]
            raise fail(
                f"returned {int(out_of_range.sum())} values outside [0, 1] "
                f"(at {', '.join(named[:8])})"
            )
    return values


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300]


def _run_model(
    fn: Any, args: tuple[Batch, ...], what: str, fingerprint: str, clip_ids: Sequence[str]
) -> Any:
    try:
        return fn(*args)
    except SubmissionError:
        raise  # a sandboxed model's failure already says what and where
    except Exception as exc:
        shown = ", ".join(clip_ids[:8]) + (", ..." if len(clip_ids) > 8 else "")
        hint = ""
        if "out of memory" in str(exc).lower():
            hint = " (lower ScoringConfig.max_batch_samples or max_batch_size)"
        raise SubmissionError(
            f"model {fingerprint}: {what} raised {_short(exc)} on clips {shown}{hint}"
        ) from exc
