"""Nothing a stranger names runs unsandboxed (issue 20, point 1b).

Only the repository's own baseline folders (byte-identical to `benchmark/baselines/official.json`,
or trained by the harness under `$MOSRM_HOME/trained/`) run in the harness process; a stranger's
folder naming a reference adapter (`benchmark.baselines.*`) runs in the sandbox, hub weights
fetched by the harness beforehand and bound read-only.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml

from benchmark.errors import SubmissionError
from benchmark.scoring.models import Batch, current_fingerprint, load_submission
from benchmark.scoring.sandbox import SandboxedModel
from benchmark.scoring.trust import MANIFEST, compute_manifest, official_manifest, official_roots
from tests.baselines.tiny_hf import fake_hub_cache
from tests.sandbox_required import sandbox_needed

REPO = Path(__file__).resolve().parents[1]
OFFICIAL = REPO / "benchmark" / "shipped" / "submissions"

needs_bwrap = sandbox_needed()


def _batch() -> Batch:
    x = torch.zeros(2, 8000)
    x[0, :8000] = torch.sin(torch.arange(8000) * 0.05)
    x[1, :4000] = 0.3 * torch.sin(torch.arange(4000) * 0.11)
    return Batch(x, torch.tensor([8000, 4000]), 16000, ("a", "b"))


def _tiny(folder: Path, seed: int = 0) -> None:
    from transformers import Wav2Vec2ForSequenceClassification

    from tests.baselines.tiny_hf import tiny_wav2vec2_config

    torch.manual_seed(seed)
    model = Wav2Vec2ForSequenceClassification(
        tiny_wav2vec2_config("layer", num_labels=1, classifier_proj_size=8)
    )
    model.save_pretrained(folder)
    for f in folder.iterdir():  # transformers writes the weights 0600; the sandbox user reads them
        f.chmod(0o644)


def _stranger(root: Path, name: str, entry: str, params: dict | None = None, **extra) -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"name": name, "display_name": name, "kind": "scalar", "entry": entry, **extra}
    if params:
        spec["params"] = params
    (folder / "submission.yaml").write_text(yaml.safe_dump(spec))
    return folder


@pytest.fixture
def factory_calls(monkeypatch: pytest.MonkeyPatch) -> list:
    """Calls of the hub adapter's factory in this (the harness's) process."""
    from benchmark.baselines import hub

    calls: list = []
    real = hub.build

    def recording(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(hub, "build", recording)
    return calls


def test_the_manifest_lists_the_shipped_baselines_as_they_are():
    now = compute_manifest(*official_roots())
    assert now == official_manifest(), (
        f"{MANIFEST.relative_to(REPO)} is not current for submissions/ and the reference models: run "
        "`python -m benchmark.scoring.trust --write`, review which folders it adds, and commit it"
    )
    assert {"dnsmos", "plcmos", "shortcut-duration", "shortcut-loudness"} <= set(now)


def test_official_baselines_run_in_process_with_their_committed_fingerprints():
    import json

    for folder in sorted(p.parent for p in OFFICIAL.glob("*/submission.yaml")):
        sub = load_submission(folder)
        assert not sub.sandboxed and not isinstance(sub.model, SandboxedModel), folder.name
        committed = REPO / "leaderboard" / "results" / folder.name / "demo.json"
        if committed.is_file():
            record = json.loads(committed.read_text())
            assert sub.fingerprint == record["model_fingerprint"], folder.name


@needs_bwrap
def test_a_strangers_hub_entry_with_a_local_model_runs_in_the_sandbox(tmp_path, factory_calls):
    repo_subs = tmp_path / "repo" / "submissions"  # where strangers' folders go too
    folder = _stranger(repo_subs, "hub-stranger", "benchmark.baselines.hub:build", {"source": "m"})
    _tiny(folder / "m")
    sub = load_submission(folder)
    try:
        assert sub.sandboxed and isinstance(sub.model, SandboxedModel)
        assert sub.model.params["source"] == str(folder / "m")  # a file of the folder: absolute
        got = sub.model.score(_batch())
        assert got.shape == (2,) and torch.isfinite(got).all() and got[0] != got[1]
        assert sub.model.parameters_count and sub.model.parameters_count > 0
    finally:
        sub.close()
    assert factory_calls == []  # built and run in the child only
    # the same spec and files: the same (harness-computed) fingerprint; another model: another
    assert current_fingerprint(folder) == sub.fingerprint
    shutil.rmtree(folder / "m")
    _tiny(folder / "m", seed=1)
    assert current_fingerprint(folder) != sub.fingerprint


@needs_bwrap
def test_a_strangers_hub_id_is_fetched_by_the_harness_and_bound_read_only(
    tmp_path, monkeypatch, factory_calls
):
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # no test touches the network
    _tiny(tmp_path / "weights")
    snapshot = fake_hub_cache(cache, "org/tiny-mos", tmp_path / "weights", "a" * 40)
    folder = _stranger(
        tmp_path, "hub-id", "benchmark.baselines.hub:build", {"source": "org/tiny-mos"}
    )
    sub = load_submission(folder)
    try:
        assert isinstance(sub.model, SandboxedModel)
        assert sub.model.params["source"] == str(snapshot)
        assert sub.model.extra_ro == (cache / "models--org--tiny-mos",)
        assert torch.isfinite(sub.model.score(_batch())).all()
    finally:
        sub.close()
    assert factory_calls == []
    first = sub.fingerprint

    # new weights under the same id (a new commit on main): a new fingerprint, computed here
    _tiny(tmp_path / "weights2", seed=3)
    fake_hub_cache(cache, "org/tiny-mos", tmp_path / "weights2", "b" * 40)
    assert current_fingerprint(folder) != first

    missing = _stranger(tmp_path, "gone", "benchmark.baselines.hub:build", {"source": "org/nope"})
    with pytest.raises(SubmissionError, match=r"params\.source.*hub model 'org/nope'") as err:
        load_submission(missing)
    assert "\n" not in str(err.value)


@needs_bwrap
def test_a_shortcut_entry_runs_sandboxed_unless_byte_identical_to_the_shipped_folder(tmp_path):
    subs = tmp_path / "submissions"
    copy = subs / "shortcut-duration"
    shutil.copytree(OFFICIAL / "shortcut-duration", copy)
    same = load_submission(copy)
    assert not same.sandboxed
    assert same.fingerprint == load_submission(OFFICIAL / "shortcut-duration").fingerprint

    stranger = _stranger(subs, "my-duration", "benchmark.baselines.shortcuts:DurationModel")
    sub = load_submission(stranger)
    try:
        assert sub.sandboxed and isinstance(sub.model, SandboxedModel)
        assert sub.model.score(_batch()).tolist() == [0.5, 0.25]
    finally:
        sub.close()


def test_one_byte_changed_in_an_official_copy_is_no_longer_trusted(tmp_path):
    copy = tmp_path / "submissions" / "shortcut-random"
    shutil.copytree(OFFICIAL / "shortcut-random", copy)
    assert not load_submission(copy, unsandboxed=True).sandboxed
    yaml_path = copy / "submission.yaml"
    text = yaml_path.read_bytes()
    yaml_path.write_bytes(text.replace(b"seed: 0", b"seed: 1"))
    assert len(yaml_path.read_bytes()) == len(text)
    sub = load_submission(copy, unsandboxed=True)
    assert sub.sandboxed and isinstance(sub.model, SandboxedModel)
    (copy / "extra.txt").write_text("")  # an added file: not the official folder either
    yaml_path.write_bytes(text)
    assert load_submission(copy, unsandboxed=True).sandboxed


def test_folders_the_harness_trained_run_in_process(tmp_path):
    from benchmark.paths import home

    spec = ("benchmark.baselines.shortcuts:DurationModel",)
    trained = _stranger(home() / "trained" / "0123abcd", "my-trained", *spec)
    assert not load_submission(trained).sandboxed
    elsewhere = _stranger(tmp_path, "my-trained", *spec)
    assert load_submission(elsewhere, unsandboxed=True).sandboxed


def test_without_bubblewrap_a_strangers_module_entry_is_a_one_line_refusal(tmp_path, monkeypatch):
    import benchmark.scoring.sandbox.host as host

    monkeypatch.setattr("benchmark.scoring.sandbox.bubblewrap", lambda: None)
    monkeypatch.setattr(host, "bubblewrap", lambda: None)
    folder = _stranger(tmp_path, "dur", "benchmark.baselines.shortcuts:DurationModel")
    with pytest.raises(SubmissionError, match=r"bubblewrap.*--unsafe-no-sandbox") as err:
        load_submission(folder)
    assert "\n" not in str(err.value)
    # --unsafe-no-sandbox: a separate process without bubblewrap, never the harness's own
    sub = load_submission(folder, unsandboxed=True)
    try:
        assert isinstance(sub.model, SandboxedModel) and not sub.model.sandbox
        assert sub.model.score(_batch()).tolist() == [0.5, 0.25]
        assert sub.model._proc is not None and sub.model._proc.pid > 0
    finally:
        sub.close()
    assert not load_submission(OFFICIAL / "shortcut-duration").sandboxed  # needs no bwrap


def test_an_unknown_adapter_is_a_load_error_not_a_sandbox_start(tmp_path):
    folder = _stranger(tmp_path, "nope", "benchmark.baselines.nope:build")
    with pytest.raises(SubmissionError, match=r"field 'entry': no module named"):
        load_submission(folder, unsandboxed=True)
