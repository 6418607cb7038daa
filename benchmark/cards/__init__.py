"""Data cards: one Markdown card per task, with its statistics, ΔMOS histogram and label
reliability section, written from a prepared task. Renders; never changes a pair.
"""


def __getattr__(name: str) -> object:
    """Names of the old `benchmark.cards` module (now `benchmark.cards.card`), for one release, with a warning."""
    from benchmark._moved import old_attribute

    return old_attribute(__name__, name)
