"""What a sandboxed submission's model said about itself when it was built, kept by fingerprint.

A submission's own code runs only in the sandbox (`benchmark.scoring.sandbox`), and starting it costs
seconds: a child process, bubblewrap, the model's imports and weights. A fully cached evaluation
needs none of its scores, only two facts the built model reports: its sample rate (part of the
score-cache key and of the results' `preprocessing`) and its measured parameter count (the
results' `model` block). Both are recorded here the first time the model is built and read back
by later runs, so those runs never start the sandbox and write byte-identical results.

Honest because of the key: the fingerprint covers the spec and every file of the folder (no code
run to compute it), so the same fingerprint is the same code, weights and parameters. Whenever the
model is started anyway (some unit is not cached), the sandbox compares the rate it reports with
the recorded one and refuses a model whose rate changed (cached scores would then be keyed by a
rate the model no longer uses); the parameter count is re-recorded from what it measures.

Layout: `$MOSRM_HOME/models/<fingerprint>.json`, `{"fingerprint", "sample_rate", "parameters"}`.
A record that is missing, unreadable or malformed is ignored (the model is started, and the record
rewritten); one that cannot be written (a read-only home) costs only a sandbox start next time
(a full disk stops the run, as everywhere: `errors.MachineError`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_FINGERPRINT = re.compile(r"^[0-9a-f]{16,64}$")


@dataclass(frozen=True)
class ModelFacts:
    """What the built model reported: sample rate (Hz) and parameter count (None: not measured)."""

    sample_rate: int
    parameters: int | None


def facts_path(fingerprint: str) -> Path:
    from benchmark.paths import home

    if not _FINGERPRINT.match(fingerprint):
        raise ValueError(f"not a model fingerprint: {fingerprint!r}")
    return home() / "models" / f"{fingerprint}.json"


def _is_count(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def recorded(fingerprint: str) -> ModelFacts | None:
    """The facts recorded for this fingerprint, or None (never recorded, or not trustworthy)."""
    try:
        raw = json.loads(facts_path(fingerprint).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict) or raw.get("fingerprint") != fingerprint:
        return None
    rate, params = raw.get("sample_rate"), raw.get("parameters")
    if not isinstance(rate, int) or not _is_count(rate, 1):
        return None
    if not (params is None or _is_count(params, 0)):
        return None
    return ModelFacts(sample_rate=rate, parameters=params)


def record(fingerprint: str, sample_rate: int, parameters: int | None) -> None:
    """Keep what the model just reported (atomically; an unwritable home is not an error)."""
    from benchmark.atomic import atomic_write_text

    facts = ModelFacts(int(sample_rate), None if parameters is None else int(parameters))
    if recorded(fingerprint) == facts:
        return
    text = json.dumps(
        {
            "fingerprint": fingerprint,
            "sample_rate": facts.sample_rate,
            "parameters": facts.parameters,
        },
        sort_keys=True,
    )
    path = facts_path(fingerprint)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text + "\n")
    except OSError:
        pass  # the next run starts the sandbox once more, that is all
