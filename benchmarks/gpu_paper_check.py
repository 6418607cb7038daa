"""Issue 25, item 5: what `training/paper-bt.yaml` costs on this device, measured by training it.

The device machines have no network, so the real WavLM-base-plus cannot be fetched there: the
encoder is a random-initialised model of the same architecture (`WavLMConfig()` is the base
shape: 12 layers, 768 dims, the CNN front end; base-plus differs only in its pretraining data),
so time and memory are the real ones and accuracy is not. Everything else is the paper config:
batch, clip cap, bf16, frozen encoder with layer weights (and `--finetune` for paper-bt-ft).

For each task (the demo, and a fixture-shaped corpus when `--fixture` names one of
tests/layouts), it trains `--steps` optimizer steps and writes throughput (training clips per
second: two per BT pair), seconds per step and peak memory (CUDA: `max_memory_allocated`; CPU:
peak RSS growth) to `OUT/paper-check.json`. `--tiny` swaps in a 2-layer encoder for a CPU check
of the script itself.

    python benchmarks/gpu_paper_check.py --out $OUT [--device cuda] [--fixture bvcc] [--tiny]
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _encoder(folder: Path, tiny: bool) -> str:
    import torch
    from transformers import AutoModel, Wav2Vec2FeatureExtractor, WavLMConfig

    torch.manual_seed(0)
    cfg = (
        WavLMConfig(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            conv_dim=(16, 16, 16, 16),
            conv_kernel=(10, 4, 4, 4),
            conv_stride=(5, 4, 4, 4),  # 50 frames a second, as the real model: attention is T²
            num_feat_extract_layers=4,
            num_conv_pos_embeddings=8,
            num_conv_pos_embedding_groups=2,
        )
        if tiny
        else WavLMConfig()
    )
    AutoModel.from_config(cfg).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(do_normalize=False).save_pretrained(folder)
    return str(folder)


def _config(base: Path, encoder: str, task: str, steps: int, finetune: bool) -> Path:
    name = "paper-bt-ft.yaml" if finetune else "paper-bt.yaml"
    raw = yaml.safe_load((REPO / "training" / name).read_text())
    enc = raw["model"]["encoder"]
    for key in ("revision", "sha256"):
        enc.pop(key, None)
    enc["source"] = encoder
    raw.update(tasks=[task], out_of_domain=[], seeds=None, epochs=1, patience=None)
    raw.update(per_task_per_epoch=steps * raw["batch_size"], checkpoint_every=0)
    raw["dev_split"] = "none"  # no dev evaluation: the wall time is the training steps
    raw["name"] = f"check-{task}"
    path = base / f"{raw['name']}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _measure(config_path: Path, repo: Path, out: Path, device: str) -> dict[str, object]:
    import torch

    from benchmark.baselines.train import train
    from benchmark.baselines.train_config import load_train_config

    config = load_train_config(config_path).model_copy(update={"device": device})
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    began = time.perf_counter()
    train(config, out, repo=repo, progress=False)
    if cuda:
        torch.cuda.synchronize()
    wall = time.perf_counter() - began
    from benchmark.baselines.plan import make_plan

    steps = int(make_plan(config, repo, micro_run=False).steps_per_model or 0)
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if cuda
        else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    )
    return {
        "task": config.tasks[0],
        "steps": steps,
        "batch_pairs": config.batch_size,
        "bf16": bool(config.bf16 and cuda),
        "wall_s": round(wall, 2),
        "s_per_step": round(wall / max(1, steps), 4),
        "train_clips_per_s": round(2 * config.batch_size * steps / wall, 1),
        "peak_mib": round(peak, 1),
        "peak_kind": "cuda max_memory_allocated" if cuda else "cpu peak RSS growth",
        "note": "wall includes audio loading and writing the submission, no dev evaluation",
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--fixture", choices=("bvcc", "nisqa", "singmos", "somos", "tmhint_qi"))
    ap.add_argument("--finetune", action="store_true")
    ap.add_argument("--tiny", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import os

    os.environ.setdefault("MOSRM_HOME", str(out / "home"))
    from benchmark.paths import default_data_root

    ws = out / "ws"
    ws.mkdir(exist_ok=True)
    encoder = _encoder(out / "encoder", args.tiny)
    tasks = ["demo"]
    if args.fixture:
        importlib.import_module(f"tests.layouts.{args.fixture}").write(
            default_data_root(args.fixture)
        )
        tasks.append(args.fixture)
    rows = []
    for task in tasks:
        cfg = _config(out, encoder, task, args.steps, args.finetune)
        rows.append(_measure(cfg, ws, out / f"trained-{task}", args.device))
        print(json.dumps(rows[-1]), flush=True)
    import torch

    record = {
        "device": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu",
        "torch": torch.__version__,
        "encoder": "random WavLM-base shape"
        if not args.tiny
        else "tiny random WavLM (script check)",
        "finetune": args.finetune,
        "rows": rows,
    }
    (out / "paper-check.json").write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
