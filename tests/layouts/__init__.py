"""Miniature native corpus layouts, written by the tests (no corpus audio is redistributable).

One module per corpus (`bvcc`, `nisqa`, `singmos`, `somos`, `tmhint_qi`, `vmc23`), each with

    write(root: Path, *, audio: bool = True, **variant) -> list[dict]

which writes the corpus's native layout in miniature under `root` (verbatim file names, headers and
quirks; tiny generated audio when `audio`), and returns the clips the reader is expected to produce:
dicts with `clip_id, split, subset, mos, system_id, content_id` (MOS as the reader must compute it,
independently of the reader's code). The expected clips drive the independent pair counts in
`tests/test_corpora_pairs.py`.
"""

from __future__ import annotations

CONTRACT_KEYS = ("split", "subset", "system_id", "content_id")


def assert_contract(rows: list[dict], expected: list[dict], corpus: str) -> dict[str, dict]:
    """The reader's rows hold exactly the expected clips with the contract's keys and MOS.

    Returns the rows by clip id, so a corpus test can go on to check its own extra columns.
    """
    import pytest

    got = {r["clip_id"]: r for r in rows}
    assert len(got) == len(rows), "duplicate clip ids"
    assert sorted(got) == sorted(e["clip_id"] for e in expected)
    for e in expected:
        r = got[e["clip_id"]]
        for key in CONTRACT_KEYS:
            assert r[key] == e[key], (e["clip_id"], key)
        assert r["mos"] == pytest.approx(e["mos"], abs=1e-9)
        assert r["corpus"] == corpus
    return got
