"""Miniature native corpus layouts, written by the tests (no corpus audio is redistributable).

One module per corpus (`bvcc`, `nisqa`, `singmos`, `somos`, `tmhint_qi`, `vmc23`), each with

    write(root: Path, *, audio: bool = True, **variant) -> list[dict]

which writes the corpus's native layout in miniature under `root` (verbatim file names, headers and
quirks; tiny generated audio when `audio`), and returns the clips the reader is expected to produce:
dicts with `clip_id, split, subset, mos, system_id, content_id` (MOS as the reader must compute it,
independently of the reader's code). The expected clips drive the independent pair counts in
`tests/test_corpora_pairs.py`.
"""
