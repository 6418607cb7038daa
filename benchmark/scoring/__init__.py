"""Stage 3, pairs to predictions: submissions and their specs (`models`, `spec`), the sandbox that
runs untrusted code (`sandbox/`), the scoring loop (`loop`) with its content-keyed cache and
journal (`cache`, `journal`), batch prefetching, torchrun sharding, the smoke run and predictions
files.

The only stage that runs model code; it computes no metric. It imports `pairs`, `data` and the
bottom modules.
"""


def __getattr__(name: str) -> object:
    """Names of the old `benchmark.scoring` module (now `benchmark.scoring.loop`), for one release, with a warning."""
    from benchmark._moved import old_attribute

    return old_attribute(__name__, name)
