"""The scalar reference model: save/build round trips, config/weights mismatches, batch-size
invariance through the harness's scoring loop, seeded determinism, and use as a submission entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors import safe_open
from safetensors.torch import save_file

from benchmark.baselines.scalar import (
    METADATA_KEY,
    ScalarRewardModel,
    build,
    masked_mean,
    new_model,
    read_config,
    resolve_config,
    save,
)
from benchmark.data.tables import CLIP_SCHEMA, from_rows
from benchmark.errors import SubmissionError
from benchmark.scoring.config import ScoringConfig
from benchmark.scoring.loop import score_clips
from benchmark.scoring.models import Batch, load_submission, model_info
from tests.baselines.test_encoders import save_tiny

SMALL = {
    "encoder": {"type": "logmel", "n_mels": 32, "channels": [16, 24], "strides": [1, 2]},
    "head": {"hidden": 8},
}


def _batch(lengths: list[int], seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(len(lengths), max(lengths))
    for i, n in enumerate(lengths):
        x[i, :n] = 0.2 * torch.randn(n, generator=g)
    ids = tuple(f"c{i}" for i in range(len(lengths)))
    return Batch(x, torch.tensor(lengths, dtype=torch.int64), 16000, ids)


def _perturbed(config: dict | None = None) -> ScalarRewardModel:
    """A model whose weights differ from its seeded init, so a round trip proves weights load."""
    model = ScalarRewardModel(config)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:  # a frozen backbone is reloaded from its source, not saved
                p.add_(0.01 * torch.randn_like(p))
    return model.eval()


# ------------------------------------------------------------------------- config


def test_default_config_is_complete_and_json():
    cfg = resolve_config()
    assert json.loads(json.dumps(cfg)) == cfg
    assert cfg["encoder"]["type"] == "logmel" and cfg["head"] == {"hidden": 128, "dropout": 0.1}
    assert resolve_config({"encoder": {"type": "logmel"}}) == cfg
    model = ScalarRewardModel()
    assert sum(p.numel() for p in model.parameters()) == 243_265  # stated in the docstring
    assert model.sample_rate == 16000


@pytest.mark.parametrize(
    "bad,match",
    [
        ({"encoder": {"type": "logmel"}, "lr": 1}, "unknown key 'lr'"),
        ({"head": {"hiden": 8}}, "unknown key 'head.hiden'"),
        ({"version": 2}, "version 2"),
        ({"encoder": "logmel"}, "'encoder' must be a mapping"),
    ],
)
def test_config_errors(bad, match):
    with pytest.raises(SubmissionError, match=match) as exc:
        ScalarRewardModel(bad)
    assert "\n" not in str(exc.value)


def test_fingerprint_is_a_hash_of_the_config():
    a, b = ScalarRewardModel(SMALL), ScalarRewardModel({**SMALL, "head": {"hidden": 8}})
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != ScalarRewardModel({**SMALL, "seed": 1}).fingerprint()
    assert a.fingerprint() != ScalarRewardModel().fingerprint()


def test_seeded_init_is_deterministic_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b = ScalarRewardModel({**SMALL, "seed": 7}), new_model({**SMALL, "seed": 7})
    assert torch.rand(1).item() == before.item()
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    batch = _batch([16000, 4000])
    assert torch.equal(a.eval().score(batch), b.eval().score(batch))
    other = ScalarRewardModel({**SMALL, "seed": 8}).state_dict()
    assert not torch.equal(sa["head.0.weight"], other["head.0.weight"])


# ------------------------------------------------------------------------- forward / pooling


def test_masked_mean_ignores_padding():
    feats = torch.tensor([[[1.0], [3.0], [100.0]], [[2.0], [4.0], [6.0]]])
    assert masked_mean(feats, torch.tensor([2, 3])).tolist() == [[2.0], [4.0]]


def test_score_shape_dtype_and_sample_rate_check():
    model = ScalarRewardModel(SMALL).eval()
    with torch.inference_mode():
        out = model.score(_batch([16000, 100, 0]))
    assert out.shape == (3,) and out.dtype == torch.float32 and torch.isfinite(out).all()
    wrong = Batch(torch.zeros(1, 10), torch.tensor([10]), 8000, ("x",))
    with pytest.raises(ValueError, match="8000 Hz"):
        model.score(wrong)


def test_gradients_reach_encoder_and_head():
    model = ScalarRewardModel(SMALL).train()
    batch = _batch([8000, 3000])
    model(batch.waveforms, batch.lengths).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


# ------------------------------------------------------------------------- save / build


def test_round_trip_gives_identical_scores(tmp_path):
    model = _perturbed(SMALL)
    path = save(model, tmp_path / "model.safetensors")
    batch = _batch([16000, 2345, 48000])
    with torch.inference_mode():
        expected = model.score(batch)
        from_meta = build(weights_path=path)
        from_params = build(weights_path=path, config=SMALL)
        assert torch.equal(from_meta.score(batch), expected)
        assert torch.equal(from_params.score(batch), expected)
    assert not from_meta.training
    assert from_meta.fingerprint() == model.fingerprint()
    assert read_config(path) == model.config


def test_save_is_deterministic_and_carries_the_config(tmp_path):
    model = _perturbed(SMALL)
    a = save(model, tmp_path / "a.safetensors").read_bytes()
    b = save(model, tmp_path / "b.safetensors").read_bytes()
    assert a == b
    with safe_open(str(tmp_path / "a.safetensors"), framework="pt") as f:
        meta = f.metadata()
    assert list(meta) == [METADATA_KEY]
    assert meta[METADATA_KEY] == json.dumps(model.config, sort_keys=True, separators=(",", ":"))


def test_shape_mismatch_names_file_and_first_tensor(tmp_path):
    path = save(_perturbed(SMALL), tmp_path / "model.safetensors")
    wider = {**SMALL, "encoder": {**SMALL["encoder"], "channels": [16, 32]}}
    with pytest.raises(SubmissionError) as exc:
        build(weights_path=path, config=wider)
    msg = str(exc.value)
    assert "\n" not in msg and str(path) in msg
    # sorted names: blocks.0 is unchanged (32 mels -> 16), blocks.1's bias comes first
    assert "'encoder.blocks.1.conv.bias'" in msg and "[24]" in msg and "[32]" in msg


def test_missing_and_extra_tensors_are_named(tmp_path):
    deeper = {
        **SMALL,
        "encoder": {**SMALL["encoder"], "channels": [16, 24, 24], "strides": [1, 2, 1]},
    }
    path = save(_perturbed(SMALL), tmp_path / "model.safetensors")
    with pytest.raises(SubmissionError, match=r"'encoder\.blocks\.2\.conv\.bias'.*missing"):
        build(weights_path=path, config=deeper)
    path2 = save(_perturbed(deeper), tmp_path / "deep.safetensors")
    with pytest.raises(SubmissionError, match=r"'encoder\.blocks\.2\.conv\.bias' in the file"):
        build(weights_path=path2, config=SMALL)


def test_config_mismatch_with_equal_shapes_is_caught(tmp_path):
    path = save(_perturbed(SMALL), tmp_path / "model.safetensors")
    hop = {**SMALL, "encoder": {**SMALL["encoder"], "hop_length": 320}}
    with pytest.raises(SubmissionError, match=r"differs from params at 'encoder\.hop_length'"):
        build(weights_path=path, config=hop)


def test_seed_in_params_need_not_match_the_saved_one(tmp_path):
    """Training may set the seed in the saved config while the params config omits it."""
    model = _perturbed({**SMALL, "seed": 5})
    path = save(model, tmp_path / "model.safetensors")
    built = build(weights_path=path, config=SMALL)
    assert built.config == model.config and built.fingerprint() == model.fingerprint()
    batch = _batch([8000])
    with torch.inference_mode():
        assert torch.equal(built.score(batch), model.score(batch))


def test_unreadable_or_undescribed_weights(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(SubmissionError, match="not a readable safetensors file") as exc:
        build(weights_path=junk)
    assert str(junk) in str(exc.value) and "\n" not in str(exc.value)
    bare = tmp_path / "bare.safetensors"
    model = _perturbed(SMALL)
    save_file({k: v.contiguous() for k, v in model.saved_state().items()}, str(bare))
    with pytest.raises(SubmissionError, match="must be given in params"):
        build(weights_path=bare)
    with torch.inference_mode():  # with the config given, a file without metadata loads
        batch = _batch([4000])
        assert torch.equal(build(weights_path=bare, config=SMALL).score(batch), model.score(batch))


# ------------------------------------------------------------------------- in the harness


def _clip_table(root: Path, write_wav) -> object:
    rows = []
    for i in range(18):
        seconds = [0.02, 0.05, 0.3, 1.0, 2.5, 0.11][i % 6] + 0.013 * i
        sr = 22050 if i % 5 == 4 else 16000
        write_wav(root / f"c{i:02d}.wav", seconds=seconds, sr=sr, seed=i, amp=0.05 + 0.03 * i)
        rows.append(
            {
                "clip_id": f"c{i:02d}",
                "corpus": "t",
                "split": "test",
                "audio_path": f"c{i:02d}.wav",
                "mos": 3.0,
            }
        )
    return from_rows(rows, CLIP_SCHEMA)


def test_batch_size_invariance_through_score_clips(tmp_path, write_wav):
    clips = _clip_table(tmp_path / "data", write_wav)
    model = _perturbed()  # the default config

    def run(bs: int) -> dict[str, float]:
        cfg = ScoringConfig(max_batch_size=bs, progress=False, device="cpu")
        return score_clips(
            model,
            clips,
            tmp_path / "data",
            fingerprint=model.fingerprint(),
            config=cfg,
            cache_path=tmp_path / f"{bs}.db",
        )

    s1, s16 = run(1), run(16)
    assert list(s1) == list(s16) and len(s1) == 18
    for cid in s1:
        assert s1[cid] == pytest.approx(s16[cid], abs=1e-5)
    assert len({round(v, 6) for v in s1.values()}) == 18  # not a constant


def test_usable_as_a_trusted_submission_entry(tmp_path, write_wav):
    from benchmark.paths import home

    # trusted in-process where the harness keeps what it trained (benchmark.scoring.trust); the same
    # folder anywhere else is a stranger's, and runs sandboxed (tests/test_trusted_entries.py)
    folder = home() / "trained" / "0123abcd" / "logmel-bt"
    folder.mkdir(parents=True)
    model = _perturbed(SMALL)
    save(model, folder / "model.safetensors")
    spec = {
        "name": "logmel-bt",
        "display_name": "Log-mel CNN (BT)",
        "kind": "scalar",
        "entry": "benchmark.baselines.scalar:build",
        "weights": "model.safetensors",
        "params": {"config": SMALL},
        "baseline": True,
    }
    (folder / "submission.yaml").write_text(yaml.safe_dump(spec))
    sub = load_submission(folder)
    assert not sub.sandboxed and isinstance(sub.model, ScalarRewardModel)
    assert model_info(sub)["parameters"] == sum(p.numel() for p in model.parameters())
    batch = _batch([16000, 500])
    with torch.inference_mode():
        assert torch.equal(sub.model.score(batch), model.score(batch))

    wrong = {**spec, "params": {"config": {**SMALL, "head": {"hidden": 9}}}}
    (folder / "submission.yaml").write_text(yaml.safe_dump(wrong))
    with pytest.raises(SubmissionError, match=r"'head\.0\.bias'") as exc:
        load_submission(folder)
    assert "\n" not in str(exc.value)


def test_frozen_ssl_model_saves_only_its_head(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    source = save_tiny(tmp_path / "tiny")
    config = {"encoder": {"type": "ssl", "source": source}, "head": {"hidden": 8}}
    model = _perturbed(config)
    path = save(model, tmp_path / "model.safetensors")
    with safe_open(str(path), framework="pt") as f:
        names = sorted(f.keys())
    assert names == [
        "encoder.layer_logits",
        "head.0.bias",
        "head.0.weight",
        "head.3.bias",
        "head.3.weight",
    ]
    batch = _batch([16000, 3000, 120])
    with torch.inference_mode():
        assert torch.equal(build(weights_path=path).score(batch), model.score(batch))


def test_finetuned_ssl_model_saves_its_backbone(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    source = save_tiny(tmp_path / "tiny")
    config = {"encoder": {"type": "ssl", "source": source, "finetune": True}}
    model = _perturbed(config)
    path = save(model, tmp_path / "model.safetensors")
    with safe_open(str(path), framework="pt") as f:
        assert any(k.startswith("encoder.backbone.encoder.layers.") for k in f.keys())
    batch = _batch([16000, 3000])
    with torch.inference_mode():  # the fine-tuned weights, not the pretrained ones, come back
        assert torch.equal(build(weights_path=path).score(batch), model.score(batch))
