"""Which folders `make run` evaluates after a training: its own and the variants beside it."""

from __future__ import annotations

from pathlib import Path

from benchmark.baselines.trained import _finished, submission_folders


def _spec(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "submission.yaml").write_text("name: x\n")
    return folder


def test_variants_beside_the_folder_in_name_order(tmp_path: Path) -> None:
    key = tmp_path / "abc123"
    main = _spec(key / "demo-dpo")
    norm = _spec(key / "demo-dpo-norm")
    _spec(key / "demo-dpoX")  # not a variant: no dash after the name
    (key / "demo-dpo-partial").mkdir()  # no spec: not a submission
    assert submission_folders(main) == [main, norm]


def test_finished_needs_a_spec_and_no_checkpoint(tmp_path: Path) -> None:
    folder = _spec(tmp_path / "demo-bt")
    assert _finished(folder)
    (folder / "checkpoint").mkdir()
    assert not _finished(folder)
    assert not _finished(tmp_path / "missing")
