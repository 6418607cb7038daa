"""Stage 2, clip table to pair table: the seeded, exact pair pools (`build`, `rows`, `ids`), judge
triplets (`triplets`), label reliability (`reliability`), and a task prepared once and reused
while nothing it was built from has changed (`prepare`, `reuse`).

Runs no model and computes no metric; it imports only `data` and the bottom modules.
"""


def __getattr__(name: str) -> object:
    """Names of the old `benchmark.pairs` module (now `benchmark.pairs.build`), for one release, with a warning."""
    from benchmark._moved import old_attribute

    return old_attribute(__name__, name)
