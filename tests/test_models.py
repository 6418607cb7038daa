from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from benchmark.errors import SubmissionError
from benchmark.models import ImplicitAsScalar, discover_submissions, load_submission, read_spec

REPO = Path(__file__).resolve().parents[1]

MODEL_PY = """
import torch

class Model:
    def __init__(self, gain=1.0, weights_path=None):
        self.sample_rate = 16000
        self.gain = gain
        self.weights_path = weights_path

    def score(self, batch):
        return batch.lengths.to(torch.float64) * self.gain

def build(**kw):
    return Model(**kw)

class Implicit:
    sample_rate = 16000
    beta = 0.5
    def policy_logp(self, batch):
        return batch.lengths.to(torch.float64)
    def reference_logp(self, batch):
        return torch.zeros(len(batch), dtype=torch.float64)
"""


def _submission(tmp_path: Path, spec: dict, name: str = "toy", code: str = MODEL_PY) -> Path:
    folder = tmp_path / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.py").write_text(code)
    full = {
        "name": name,
        "display_name": "Toy",
        "kind": "scalar",
        "entry": "model.py:build",
        **spec,
    }
    (folder / "submission.yaml").write_text(yaml.safe_dump(full))
    return folder


def test_repo_submissions_load():
    folders = discover_submissions(REPO / "submissions")
    names = {f.name for f in folders}
    assert {"shortcut-random", "shortcut-duration", "shortcut-loudness"} <= names
    for folder in folders:
        sub = load_submission(folder)
        assert sub.fingerprint and sub.model.sample_rate > 0


def test_load_file_entry_with_params(tmp_path):
    sub = load_submission(_submission(tmp_path, {"params": {"gain": 2.0}}))
    assert sub.model.gain == 2.0 and sub.spec.kind == "scalar"


def test_fingerprint_tracks_params_and_code(tmp_path):
    a = load_submission(_submission(tmp_path / "a", {"params": {"gain": 1.0}})).fingerprint
    b = load_submission(_submission(tmp_path / "b", {"params": {"gain": 2.0}})).fingerprint
    c = load_submission(
        _submission(tmp_path / "c", {"params": {"gain": 1.0}}, code=MODEL_PY + "\n# x\n")
    )
    assert a != b and a != c.fingerprint
    assert a == load_submission(_submission(tmp_path / "d", {"params": {"gain": 1.0}})).fingerprint


def test_weights_must_be_safetensors_inside_folder(tmp_path):
    with pytest.raises(SubmissionError, match="safetensors"):
        load_submission(_submission(tmp_path / "p", {"weights": "model.pkl"}))
    outside = tmp_path / "secret.safetensors"
    outside.write_bytes(b"x")
    with pytest.raises(SubmissionError, match="outside the submission folder"):
        load_submission(_submission(tmp_path / "q", {"weights": "../secret.safetensors"}))
    with pytest.raises(SubmissionError, match="not found"):
        load_submission(_submission(tmp_path / "r", {"weights": "w.safetensors"}))


def test_weights_path_is_passed_and_hashed(tmp_path):
    folder = _submission(tmp_path, {"weights": "w.safetensors"})
    (folder / "w.safetensors").write_bytes(b"one")
    first = load_submission(folder)
    assert first.model.weights_path == (folder / "w.safetensors").resolve()
    (folder / "w.safetensors").write_bytes(b"two")
    assert load_submission(folder).fingerprint != first.fingerprint


def test_entry_cannot_escape_or_name_arbitrary_modules(tmp_path):
    with pytest.raises(SubmissionError, match="outside the submission folder"):
        load_submission(_submission(tmp_path / "a", {"entry": "../model.py:build"}))
    with pytest.raises(SubmissionError, match="benchmark"):
        load_submission(_submission(tmp_path / "b", {"entry": "os:system"}))
    with pytest.raises(SubmissionError, match="has no 'nope'"):
        load_submission(_submission(tmp_path / "c", {"entry": "model.py:nope"}))


def test_unknown_key_and_name_mismatch(tmp_path):
    with pytest.raises(SubmissionError, match=r"'colour': unknown key"):
        read_spec(_submission(tmp_path / "a", {"colour": "red"}))
    folder = _submission(tmp_path / "b", {}, name="toy")
    (folder / "submission.yaml").write_text(
        (folder / "submission.yaml").read_text().replace("name: toy", "name: other")
    )
    with pytest.raises(SubmissionError, match="field 'name'"):
        read_spec(folder)


def test_yaml_is_loaded_safely(tmp_path):
    folder = _submission(tmp_path, {})
    (folder / "submission.yaml").write_text("!!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(SubmissionError, match="not valid YAML"):
        read_spec(folder)


def test_implicit_needs_reference_and_is_scored_as_log_ratio(tmp_path):
    with pytest.raises(SubmissionError, match="reference_model"):
        read_spec(_submission(tmp_path / "a", {"kind": "implicit", "entry": "model.py:Implicit"}))
    sub = load_submission(
        _submission(
            tmp_path / "b",
            {"kind": "implicit", "entry": "model.py:Implicit", "reference_model": "base-v1"},
        )
    )
    assert isinstance(sub.model, ImplicitAsScalar)
    import torch

    from benchmark.models import Batch

    batch = Batch(torch.zeros(2, 4), torch.tensor([4, 2]), 16000, ("a", "b"))
    assert sub.model.score(batch).tolist() == [2.0, 1.0]


def test_kind_mismatch(tmp_path):
    with pytest.raises(SubmissionError, match="kind 'pairwise'"):
        load_submission(_submission(tmp_path, {"kind": "pairwise"}))
