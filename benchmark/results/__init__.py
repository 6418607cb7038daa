"""Stage 5, numbers to records: the versioned results schema and run records (`schema`), failure
records (`failures`), the human report (`report`), hardware facts (`hardware`) and the pair export.

Results are data: nothing here recomputes a metric or runs a model.
"""


def __getattr__(name: str) -> object:
    """Names of the old `benchmark.results` module (now `benchmark.results.schema`), for one release, with a warning."""
    from benchmark._moved import old_attribute

    return old_attribute(__name__, name)
