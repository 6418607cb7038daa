"""Readers and a task's label column (`label_column`, from `label.column` in the task YAML):
corpora with one score refuse another dimension clearly instead of pairing on quality."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.data.corpora import get_reader
from benchmark.errors import DataError


@pytest.mark.parametrize("reader", ["demo", "bvcc", "somos", "singmos", "vmc23"])
def test_single_score_readers_refuse_another_label(reader: str, tmp_path: Path):
    with pytest.raises(DataError) as err:
        get_reader(reader).read(tmp_path, {"label_column": "noi"})
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{reader} reader: no score column 'noi'")
    assert "it has one score, overall quality" in msg


@pytest.mark.parametrize("bad", [3, "", ["noi"]])
def test_label_column_must_be_a_name(bad, tmp_path: Path):
    with pytest.raises(DataError, match="option 'label_column' must be a column name"):
        get_reader("nisqa").read(tmp_path, {"label_column": bad})
