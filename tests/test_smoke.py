"""`mosrm validate` runs the model on a generated task: bad shapes, NaN and padding leaks are caught
there, with the folder named, instead of failing (or silently succeeding) in `evaluate`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from benchmark.cli import main
from tests.sandbox_required import sandbox_needed

pytestmark = sandbox_needed()

CODE = """
import torch


class Model:
    sample_rate = 16000

    def __init__(self, mode):
        self.mode = mode

    def score(self, batch):
        x = batch.waveforms.abs()
        if self.mode == "masked":
            m = batch.mask().float()
            return ((x * m).sum(1) / m.sum(1)).double()
        if self.mode == "padding":  # mean over the padded width: depends on the batch
            return x.mean(1).double()
        if self.mode == "shape":
            return x.mean(1, keepdim=True)
        if self.mode == "nan":
            return torch.full((len(batch),), float("nan"))


class Judge:
    sample_rate = 16000

    def prefer(self, a, b):
        return torch.sigmoid(a.lengths.double() - b.lengths.double())


def build(mode="masked"):
    return Model(mode)


def judge():
    return Judge()
"""


def _folder(tmp_path: Path, mode: str, kind: str = "scalar") -> Path:
    folder = tmp_path / mode
    folder.mkdir()
    (folder / "model.py").write_text(CODE)
    entry = "model.py:judge" if kind == "pairwise" else "model.py:build"
    spec = {"name": mode, "display_name": mode, "kind": kind, "entry": entry}
    if kind == "scalar":
        spec["params"] = {"mode": mode}
    (folder / "submission.yaml").write_text(yaml.safe_dump(spec))
    return folder


def test_a_masked_model_validates_with_a_report(tmp_path, capsys):
    assert main(["validate", str(_folder(tmp_path, "masked"))]) == 0
    out = capsys.readouterr().out
    assert "ok: submission 'masked' (scalar, sandboxed)" in out
    assert "smoke run on 12 generated clips" in out and "batch 1 vs 8 agree" in out


def test_a_pairwise_judge_validates(tmp_path, capsys):
    assert main(["validate", str(_folder(tmp_path, "judge", kind="pairwise"))]) == 0
    assert "(pairwise, sandboxed)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("padding", r"scores change with batch size \(batch 1 vs 8.*mask it with batch.lengths"),
        ("shape", r"smoke run at batch size 1: score\(\): bad reply .*returned shape \[1, 1\]"),
        ("nan", r"smoke run at batch size 1: model: score\(\) returned 1 non-finite value"),
    ],
)
def test_bad_models_fail_validate_naming_the_folder(tmp_path, capsys, mode, message):
    folder = _folder(tmp_path, mode)
    assert main(["validate", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {folder.resolve()}: ") and len(err.splitlines()) == 1
    assert re.search(message, err), err
