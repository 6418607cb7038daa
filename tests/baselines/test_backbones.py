"""Pinned backbones (`benchmark.baselines.backbones`): a hub id at a commit, checked against its
sha256, converted to safetensors once, shipped into trained submissions; all offline, through a
Hugging Face cache laid out as `snapshot_download` leaves it."""

from __future__ import annotations

import json
import os

import pytest
import torch

from benchmark.baselines import backbones
from benchmark.baselines.encoders import SSLEncoder, build_encoder
from benchmark.hashing import sha256_file
from tests.baselines.test_encoders import TINY, save_tiny
from tests.baselines.tiny_hf import fake_hub_cache

COMMIT = "4" * 40


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A fake cache holding `org/tiny-ssl` at COMMIT as a pickled `pytorch_model.bin` (what many
    speech checkpoints publish) and its feature-extractor config; returns (snapshot, digests)."""
    from huggingface_hub import constants
    from transformers import AutoModel, Wav2Vec2Config, Wav2Vec2FeatureExtractor

    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    src = tmp_path / "published"
    torch.manual_seed(3)
    model = AutoModel.from_config(Wav2Vec2Config(**TINY))
    src.mkdir()
    model.config.save_pretrained(src)
    torch.save(model.state_dict(), src / "pytorch_model.bin")  # a pickled checkpoint, as published
    Wav2Vec2FeatureExtractor(do_normalize=True).save_pretrained(src)
    assert (src / "pytorch_model.bin").is_file()
    snapshot = fake_hub_cache(cache, "org/tiny-ssl", src, COMMIT)
    return snapshot, {"pytorch_model.bin": sha256_file(src / "pytorch_model.bin")}


def _encoder(digests, **over):
    return {"type": "ssl", "source": "org/tiny-ssl", "revision": COMMIT, "sha256": digests, **over}


def test_a_pinned_hub_id_is_checked_converted_and_cached(hub):
    snapshot, digests = hub
    folder = backbones.fetch(_encoder(digests), "paper-bt.yaml")
    assert folder == backbones.cache_dir("org/tiny-ssl", COMMIT)
    names = sorted(p.name for p in folder.iterdir())
    assert "model.safetensors" in names and "pytorch_model.bin" not in names  # no pickle shipped
    assert "preprocessor_config.json" in names
    # the converted copy computes what the published checkpoint computes
    from transformers import AutoModel

    x = torch.randn(1, 4000)
    want = AutoModel.from_pretrained(snapshot).eval()(x).last_hidden_state
    got = AutoModel.from_pretrained(folder).eval()(x).last_hidden_state
    torch.testing.assert_close(got, want)
    # once per machine: a second fetch reuses the folder (same inode of its weights)
    inode = (folder / "model.safetensors").stat().st_ino
    assert backbones.fetch(_encoder(digests), "x") == folder
    assert (folder / "model.safetensors").stat().st_ino == inode


def test_the_encoder_loads_a_pinned_hub_id_from_its_verified_copy(hub):
    _, digests = hub
    enc = build_encoder(_encoder(digests))
    assert isinstance(enc, SSLEncoder)
    assert enc.normalize is True  # "auto" read the published feature extractor
    assert enc.config["source"] == "org/tiny-ssl" and enc.config["revision"] == COMMIT
    feats, frames = enc(torch.randn(2, 3200), torch.tensor([3200, 2000]))
    assert feats.shape[0] == 2 and torch.isfinite(feats).all()


def test_a_changed_file_is_refused_naming_both_digests(hub):
    _, digests = hub
    wrong = {"pytorch_model.bin": "0" * 64}
    with pytest.raises(backbones.BackboneError) as err:
        backbones.fetch(_encoder(wrong), "training/paper-bt.yaml")
    msg = str(err.value)
    assert "\n" not in msg and "training/paper-bt.yaml" in msg
    assert digests["pytorch_model.bin"] in msg and "0" * 64 in msg
    assert not backbones.cache_dir("org/tiny-ssl", COMMIT).exists()  # nothing cached


@pytest.mark.parametrize(
    "over, words",
    [
        ({"revision": "main"}, "40-hex commit"),
        ({"revision": None}, "40-hex commit"),
        ({"sha256": {}}, "must map each weight file"),
        ({"sha256": {"pytorch_model.bin": "abc"}}, "not a sha256"),
        ({"sha256": {"model.safetensors": "1" * 64}}, "has no 'model.safetensors'"),
    ],
)
def test_unpinned_or_wrong_pins_are_one_line_errors(hub, over, words):
    _, digests = hub
    with pytest.raises(backbones.BackboneError, match=words) as err:
        backbones.fetch(_encoder(digests, **over), "cfg.yaml")
    assert "\n" not in str(err.value)


def test_ship_links_cached_backbones_and_copies_a_users_folder(hub, tmp_path):
    _, digests = hub
    out = tmp_path / "trained"
    out.mkdir()
    cfg = backbones.ship(_encoder(digests), out)
    assert cfg["source"] == "encoder" and cfg["revision"] == COMMIT  # the record stays
    cached = backbones.cache_dir("org/tiny-ssl", COMMIT) / "model.safetensors"
    assert os.path.samefile(out / "encoder" / "model.safetensors", cached)
    # a user's own folder is copied, never linked (they may change it in place later)
    mine = save_tiny(tmp_path / "mine")
    out2 = tmp_path / "trained2"
    out2.mkdir()
    cfg2 = backbones.ship({"type": "ssl", "source": mine}, out2)
    assert cfg2["source"] == "encoder"
    a, b = out2 / "encoder" / "model.safetensors", tmp_path / "mine" / "model.safetensors"
    assert a.read_bytes() == b.read_bytes() and not os.path.samefile(a, b)
    # logmel (nothing to ship) is left as it is
    assert backbones.ship({"type": "logmel"}, out2) == {"type": "logmel"}


def test_hub_encoders_finds_every_nested_ssl_hub_source(hub):
    _, digests = hub
    config = {
        "model": {"encoder": _encoder(digests)},
        "dpo": {"units": {"frontend": _encoder(digests, finetune=False)}},
        "other": [{"type": "ssl", "source": "/abs/folder"}],
    }
    found = backbones.hub_encoders(config)
    assert [e["source"] for e in found] == ["org/tiny-ssl", "org/tiny-ssl"]
    assert json.dumps(found)  # plain data
