from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from benchmark.errors import SubmissionError
from benchmark.scoring.models import (
    ImplicitAsScalar,
    discover_submissions,
    load_submission,
    read_spec,
)

REPO = Path(__file__).resolve().parents[1]

MODEL_PY = """
import os

import torch

class Model:
    def __init__(self, gain=1.0, weights_path=None):
        self.sample_rate = 16000
        self.gain = gain
        self.extra = os.path.getsize(weights_path) if weights_path else 0

    def score(self, batch):
        return batch.lengths.to(torch.float64) * self.gain + self.extra

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
    folders = discover_submissions(REPO / "benchmark" / "shipped" / "submissions")
    names = {f.name for f in folders}
    assert {"shortcut-random", "shortcut-duration", "shortcut-loudness"} <= names
    for folder in folders:
        sub = load_submission(folder)
        assert sub.fingerprint and sub.model.sample_rate > 0


def _batch(*lengths: int):
    import torch

    from benchmark.scoring.models import Batch

    n = max(lengths)
    return Batch(
        torch.zeros(len(lengths), n), torch.tensor(lengths), 16000, ("a", "b")[: len(lengths)]
    )


def test_load_file_entry_with_params(tmp_path):
    sub = load_submission(_submission(tmp_path, {"params": {"gain": 2.0}}))
    assert sub.sandboxed and sub.spec.kind == "scalar"
    assert sub.model.score(_batch(4, 2)).tolist() == [8.0, 4.0]  # built and run in the sandbox
    sub.close()


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
    assert first.model.score(_batch(4)).tolist() == [7.0]  # 4 + the 3-byte weights file
    first.close()
    (folder / "w.safetensors").write_bytes(b"two!")
    assert load_submission(folder).fingerprint != first.fingerprint


def test_entry_cannot_escape_or_name_arbitrary_modules(tmp_path):
    with pytest.raises(SubmissionError, match="outside the submission folder"):
        load_submission(_submission(tmp_path / "a", {"entry": "../model.py:build"}))
    with pytest.raises(SubmissionError, match="benchmark.baselines"):
        load_submission(_submission(tmp_path / "b", {"entry": "os:system"}))
    # harness modules other than the reference baselines are not entries (they would run
    # unsandboxed with the submitter's params, e.g. benchmark.data.download:download)
    with pytest.raises(SubmissionError, match="benchmark.baselines"):
        load_submission(_submission(tmp_path / "d", {"entry": "benchmark.data.download:download"}))
    sub = load_submission(_submission(tmp_path / "c", {"entry": "model.py:nope"}))
    with pytest.raises(SubmissionError, match="has no 'nope'"):
        sub.model.sample_rate  # noqa: B018 - starting the sandbox builds the model


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
    assert sub.model.score(_batch(4, 2)).tolist() == [2.0, 1.0]  # beta * (logp - ref)
    sub.close()
    # the wrapper the child uses, in-process: beta * (policy - reference) = 2 * (4 - 2)
    assert ImplicitAsScalar(_Implicit()).score(_batch(4)).tolist() == [4.0]


class _Implicit:
    sample_rate = 16000
    beta = 2.0

    def policy_logp(self, batch):
        return batch.lengths.double()

    def reference_logp(self, batch):
        return batch.lengths.double() / 2


def test_kind_mismatch(tmp_path):
    sub = load_submission(_submission(tmp_path, {"kind": "pairwise"}))
    with pytest.raises(SubmissionError, match=r"kind 'pairwise' but the model has no prefer\(\)"):
        sub.model.sample_rate  # noqa: B018


def test_fingerprint_covers_every_file_of_the_folder(tmp_path):
    folder = _submission(tmp_path, {})
    (folder / "helper.py").write_text("X = 1\n")
    (folder / "data").mkdir()
    (folder / "data" / "table.csv").write_text("a,b\n")
    base = load_submission(folder).fingerprint
    for rel, text in [("helper.py", "X = 2\n"), ("data/table.csv", "a,c\n")]:
        old = (folder / rel).read_text()
        (folder / rel).write_text(text)
        assert load_submission(folder).fingerprint != base, rel
        (folder / rel).write_text(old)
    assert load_submission(folder).fingerprint == base
    (folder / "new.txt").write_text("")
    assert load_submission(folder).fingerprint != base
    (folder / "new.txt").unlink()
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"x")
    with pytest.raises(SubmissionError, match="__pycache__"):  # bytecode would run unchecked
        load_submission(folder)  # (issue 20 #4; more in tests/test_fingerprint.py)


def test_symlinks_and_param_paths_cannot_leave_the_folder(tmp_path):
    folder = _submission(tmp_path / "a", {})
    (tmp_path / "secret.txt").write_text("labels")
    (folder / "link.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(SubmissionError, match="symlink pointing outside"):
        load_submission(folder)
    (folder / "link.txt").unlink()
    (folder / "inner.txt").write_text("ok")
    (folder / "link.txt").symlink_to(folder / "inner.txt")
    load_submission(folder)  # a link inside the folder is fine (and hashed)
    for bad in ("/etc/passwd", "../secret.txt", "~/.ssh/id_rsa", "sub/../../secret.txt"):
        f = _submission(tmp_path / "p", {"params": {"cfg": {"path": bad}}})
        with pytest.raises(SubmissionError, match=r"params\.cfg\.path.*outside the submission"):
            load_submission(f)
    f = _submission(tmp_path / "w", {"params": {"weights_path": "w.safetensors"}})
    with pytest.raises(SubmissionError, match="params.weights_path"):
        load_submission(f)
    ok = _submission(tmp_path / "ok", {"params": {"table": "data/x.csv", "label": "a b"}})
    assert load_submission(ok).fingerprint


TORCH_MODULE = """
import torch


class Net(torch.nn.Module):
    sample_rate = 16000

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(3, 2)  # 3 * 2 + 2 = 8 parameters

    def score(self, batch):
        return batch.lengths.double()


def build():
    return Net()
"""


def test_requirements_are_checked_before_any_code_runs(tmp_path):
    ok = _submission(tmp_path / "a", {"requirements": ["numpy>=1.0", "torch"]})
    load_submission(ok)
    missing = _submission(tmp_path / "b", {"requirements": ["surely-not-installed-pkg>=2"]})
    with pytest.raises(
        SubmissionError,
        match=r"'surely-not-installed-pkg>=2' is needed but not installed; install it with: "
        r".*pip install 'surely-not-installed-pkg>=2'",
    ):
        load_submission(missing)
    old = _submission(tmp_path / "c", {"requirements": ["numpy<1.0"]})
    with pytest.raises(SubmissionError, match=r"'numpy<1.0' is needed but [\d.]+ is installed"):
        load_submission(old)
    skipped = _submission(tmp_path / "d", {"requirements": ['nothere; python_version < "3.0"']})
    load_submission(skipped)  # a marker that does not apply here
    with pytest.raises(SubmissionError, match="not a PEP 508 requirement"):
        read_spec(_submission(tmp_path / "e", {"requirements": ["numpy >>> 1"]}))


def test_model_info_measures_parameters_in_the_sandbox(tmp_path):
    from benchmark.scoring.models import model_info

    folder = _submission(
        tmp_path,
        {
            "entry": "model.py:build",
            "parameters": 99,
            "license": "MIT",
            "url": "https://example.org/m",
            "revision": "abc123",
            "release_date": "2026-01-31",
        },
        code=TORCH_MODULE,
    )
    sub = load_submission(folder)
    declared = model_info(sub)  # not started yet: the declared count, labelled as such
    assert (declared["parameters"], declared["parameters_source"]) == (99, "declared")
    sub.model.sample_rate  # noqa: B018 - start it
    info = model_info(sub)
    sub.close()
    assert (info["parameters"], info["parameters_source"]) == (8, "measured")
    assert (info["license"], info["revision"], info["release_date"]) == (
        "MIT",
        "abc123",
        "2026-01-31",
    )
    shortcut = load_submission(REPO / "benchmark" / "shipped" / "submissions" / "shortcut-random")
    assert model_info(shortcut)["parameters"] is None  # a heuristic has none, and says so
