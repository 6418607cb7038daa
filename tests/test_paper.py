"""`make paper`'s path (`mosrm run --paper`) on fixture-shaped corpora of all five training corpora
plus VMC'23, with the real `training/paper-*.yaml` configs made tiny: every SSL encoder swapped for
a tiny random wav2vec 2.0 saved locally, a few steps each, the recipes, tasks, seeds and
out-of-domain test kept. It trains every config per seed, scores every trained model and the
shipped baselines in the sandbox on every task, builds the board and the paper's table."""

from __future__ import annotations

import copy
import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from benchmark.baselines.train_config import load_train_config
from benchmark.cli import main
from benchmark.paths import default_data_root
from tests.sandbox_required import sandbox_needed

pytestmark = sandbox_needed()

REPO = Path(__file__).resolve().parents[1]
PAPER = sorted((REPO / "training").glob("paper-*.yaml"))
CORPORA = ("bvcc", "nisqa", "singmos", "somos", "tmhint_qi", "vmc23")
SEEDS = [0, 1]  # two seeds show mean ± sd; the real configs' three are checked below


def _tiny_encoder(folder: Path) -> str:
    import torch
    from transformers import AutoModel, Wav2Vec2Config

    from tests.baselines.test_encoders import STABLE, TINY

    torch.manual_seed(0)
    AutoModel.from_config(Wav2Vec2Config(**TINY, **STABLE)).save_pretrained(folder)
    return str(folder)


def _swap_encoders(node: Any, source: str) -> None:
    if isinstance(node, dict):
        if node.get("type") == "ssl":
            for key in ("revision", "sha256"):
                node.pop(key, None)
            node["source"] = source
        for value in node.values():
            _swap_encoders(value, source)


def tiny_paper_configs(folder: Path, encoder: str) -> list[Path]:
    """The real paper configs, the encoder swapped and the sizes cut (module doc)."""
    folder.mkdir(parents=True)
    out = []
    for path in PAPER:
        raw = yaml.safe_load(path.read_text())
        cfg = copy.deepcopy(raw)
        _swap_encoders(cfg, encoder)
        cfg.update(seeds=SEEDS, epochs=1, per_task_per_epoch=6, batch_size=4, max_seconds=0.05)
        cfg.update(checkpoint_every=0, patience=None, bf16=False)
        if cfg["loss"] == "dpo":
            cfg["model"] = {**cfg["model"], "dim": 8, "layers": 1, "heads": 2, "ff": 16, "vocab": 4}
            cfg["dpo"]["units"]["codebook_size"] = 4
            cfg["dpo"]["fit"] = {"clips": 4, "frames": 200}
            cfg["dpo"]["ref"] = {"epochs": 1, "batch_size": 4, "lr": 0.01, "per_task_per_epoch": 6}
        if cfg["loss"] == "grpo":
            cfg["model"]["hidden"] = 8
            cfg["grpo"].update(group_size=2, sft_epochs=1, sft_per_task=6)
        if "head" in cfg.get("model", {}):
            cfg["model"]["head"] = {"hidden": 8, "dropout": 0.0}
        target = folder / path.name
        target.write_text(yaml.safe_dump(cfg, sort_keys=False))
        load_train_config(target)  # still a valid config
        out.append(target)
    return out


def test_the_paper_configs_are_paper_scale_and_pinned() -> None:
    from benchmark.baselines.backbones import check_pins, hub_encoders

    assert {load_train_config(p).loss for p in PAPER} == {"bt", "mse", "dpo", "grpo"}
    finetuned = []
    for path in PAPER:
        config = load_train_config(path)
        assert config.tasks == ["bvcc", "nisqa", "singmos", "somos", "tmhint_qi"], path
        assert config.out_of_domain == ["vmc23"], path
        assert config.seeds is not None and len(config.seeds) >= 3, path
        assert config.per_task_per_epoch, f"{path}: equal draws per corpus"
        assert config.dev_split == "dev" and config.patience, f"{path}: dev-based selection"
        encoders = hub_encoders(config.model_dump())
        assert encoders, f"{path}: a pretrained SSL encoder"
        for enc in encoders:
            check_pins(enc, str(path))  # a commit and a sha256, or this raises
            assert enc["source"] == "microsoft/wavlm-base-plus"
            finetuned.append(bool(enc.get("finetune")))
        text = path.read_text()
        assert "Why these settings" in text, f"{path}: says why its hyper-parameters"
    assert True in finetuned and False in finetuned  # frozen and a fine-tuned variant


def test_make_paper_runs_end_to_end_on_fixture_corpora(tmp_path: Path, capsys) -> None:
    for corpus in CORPORA:
        importlib.import_module(f"tests.layouts.{corpus}").write(default_data_root(corpus))
    training = tiny_paper_configs(tmp_path / "training", _tiny_encoder(tmp_path / "tiny-ssl"))
    ws = tmp_path / "ws"
    ws.mkdir()
    args = ["--workspace", str(ws), "run", "--paper", "--training", str(tmp_path / "training")]
    rc = main([*args, "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0, out

    results = ws / "results"
    families = [load_train_config(p).name for p in training]
    trained = sorted(p.name for p in results.iterdir() if p.name.startswith("paper-"))
    for family in families:
        for seed in SEEDS:
            name = f"{family}-s{seed}"
            assert name in trained, (name, trained)
            for task in CORPORA:  # in-domain and out-of-domain, every seed
                record = json.loads((results / name / f"{task}.json").read_text())
                assert record["training_data"] and record["metrics"]["overall"]["n"] > 0
                assert record["zero_shot"] is (task == "vmc23"), (name, task)
    # the recipes' variants, per seed, and the shipped baselines beside them
    assert {"paper-dpo-s0-norm", "paper-grpo-s1-sft"} <= set(trained)
    assert (results / "dnsmos" / "vmc23.json").is_file()

    board = ws / "board"
    assert (board / "README.md").is_file() and (board / "site" / "index.html").is_file()
    paper = (board / "paper.md").read_text()
    assert paper in out  # printed too
    rows = {line.split(" | ")[0].lstrip("| "): line for line in paper.splitlines()}
    bt = next(line for name, line in rows.items() if name.startswith("BT reward model"))
    cells = [c.strip() for c in bt.strip("|").split("|")]
    assert cells[1] == "0, 1"  # the seeds
    assert all(re.fullmatch(r"\d+\.\d ± \d+\.\d", c) for c in cells[2:]), cells
    assert "not comparable" in paper and "80.04" in paper  # the literature beside it
    # the table is the results': recompute one mean by hand
    accs = []
    for seed in SEEDS:
        overall = json.loads((results / f"paper-bt-s{seed}" / "vmc23.json").read_text())
        o = overall["metrics"]["overall"]
        accs.append(100 * o["correct"] / o["n"])
    assert cells[-1].startswith(f"{sum(accs) / len(accs):.1f} ± ")

    # cached: training again finds every seed of every config up to date and trains nothing
    from benchmark.baselines.trained import ensure_trained
    from benchmark.orchestrate import prepare_tasks

    said: list[str] = []
    prepared = prepare_tasks(ws, list(CORPORA), progress=False, echo=said.append)
    folders = ensure_trained(ws, prepared, configs=training, progress=False, echo=said.append)
    assert not [x for x in said if x.startswith("train paper-")]
    cached = [x for x in said if x.startswith("trained paper-") and "up to date" in x]
    assert len(cached) == len(families) * len(SEEDS)
    assert {f.name for f in folders} == set(trained)


def test_a_missing_corpus_is_one_line_and_the_rest_runs(tmp_path: Path, capsys) -> None:
    training = tmp_path / "training"
    training.mkdir()
    (training / "paper-x.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "paper-x",
                "tasks": ["bvcc", "somos"],
                "out_of_domain": ["vmc23"],
                "loss": "bt",
                "model": {"encoder": {"type": "logmel", "n_mels": 8, "channels": [4]}},
                "epochs": 1,
                "batch_size": 4,
                "max_seconds": 0.05,
            }
        )
    )
    importlib.import_module("tests.layouts.vmc23").write(default_data_root("vmc23"))
    ws = tmp_path / "ws"
    ws.mkdir()
    rc = main(["--workspace", str(ws), "run", "--paper", "--training", str(training), "--quiet"])
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text
    for corpus in ("bvcc", "somos"):
        line = next(x for x in text.splitlines() if x.startswith(f"skip {corpus}:"))
        assert f"get it: `mosrm download {corpus}`" in line and "mosrm prepare" in line
    assert "skip training paper-x: task(s) bvcc, somos not prepared" in text
    assert rc == 0
    paper = (ws / "board" / "paper.md").read_text()
    assert "Not run here (data not present): bvcc, somos." in paper
    assert (ws / "results" / "shortcut-duration" / "vmc23.json").is_file()


@pytest.mark.parametrize("flag", [["--training", "nowhere"]])
def test_training_without_paper_is_refused(tmp_path: Path, capsys, flag) -> None:
    rc = main(["--workspace", str(tmp_path), "run", *flag])
    assert rc == 2 and "--training goes with --paper" in capsys.readouterr().err


def test_the_plan_of_the_real_paper_config_on_fixture_corpora_counts_their_pair_files(
    tmp_path: Path, capsys
) -> None:
    """`mosrm train training/paper-bt.yaml --plan` with the six fixture corpora present: every
    task present, and each split's pairs as printed are the rows of its prepared pair file."""
    import pyarrow.parquet as pq

    from benchmark.paths import prepared_dir

    for corpus in CORPORA:
        importlib.import_module(f"tests.layouts.{corpus}").write(default_data_root(corpus))
    args = ["--workspace", str(tmp_path), "train", str(REPO / "training" / "paper-bt.yaml")]
    rc = main([*args, "--plan", "--no-micro-run"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "missing" not in out and "3 models (seeds 0, 1, 2)" in out
    for task in CORPORA:
        files = sorted(prepared_dir(task).glob("pairs-*.parquet"))
        assert files, task
        block = out[out.index(f"  {task} (") :].split("\n\n")[0]
        for f in files:
            split, rows = f.stem.removeprefix("pairs-"), pq.read_table(f).num_rows
            assert re.search(rf"\n +{split} +\w+ +\d+ +{rows} ", block), (task, split, rows, block)
    assert "expected" not in out.split("steps (per model")[1].split("\n\n")[0]  # counted, not asked
