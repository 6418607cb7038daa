"""`mosrm init NAME --kind K`: a commented submission folder that validates and evaluates as written.

Why: a researcher's first question is "what do I write?". Each kind's template
(`workspace.SHIPPED / "templates"`) is a working example, masked and batch-invariant, with the
contract in its docstring and the next commands in its YAML; replacing the example's body with
their model is the whole job. The predictions template also gets its scores file: the clips of the
task's eval pairs (`results.clip_list`), scored by the same stand-in, so that it evaluates too.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from benchmark.errors import MosrmError
from benchmark.workspace import SHIPPED

TEMPLATES = SHIPPED / "templates"
KINDS = ("scalar", "pairwise", "implicit", "predictions")
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def init_submission(out: Path, name: str, kind: str, repo: Path) -> Path:
    """Write the `kind` template as submission `name` into the folder `out` (which must not exist
    or be empty); returns it. For kind 'predictions' the demo task is prepared (synthesised the
    first time) to write its scores file."""
    if kind not in KINDS:
        raise MosrmError(f"init: unknown kind '{kind}' (known: {', '.join(KINDS)})")
    if not NAME.match(name):
        raise MosrmError(
            f"init: '{name}' is not a submission name (lower-case letters, digits, '_', '.', "
            "'-'; at most 64; starting with a letter or digit)"
        )
    if out.exists() and any(out.iterdir()):
        raise MosrmError(f"init: {out} exists and is not empty; choose another name or --out")
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted((TEMPLATES / kind).iterdir()):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            if path.name == "submission.yaml":
                text = text.replace("NAME", name)
            (out / path.name).write_text(text, encoding="utf-8")
    if kind == "predictions":
        _stand_in_scores(out, "demo", repo)
    return out


def _stand_in_scores(folder: Path, task_name: str, repo: Path) -> None:
    """`<task>-scores.csv`: every clip of the task's eval pairs with the template's stand-in
    score (mean log energy of its 25 ms frames, as the scalar template computes it)."""
    import csv
    import tempfile

    import numpy as np
    import soundfile as sf

    from benchmark.data.tasks import workspace_task
    from benchmark.orchestrate import find_data_root
    from benchmark.pairs.prepare import prepare
    from benchmark.results.clip_list import export_clips

    task = workspace_task(repo, task_name)
    root, looked = find_data_root(task, None)
    if root is None:
        shutil.rmtree(folder)
        raise MosrmError(f"init: task '{task_name}' has no data at {looked[0]}")
    prepared = prepare(task, root, reuse=True)
    with tempfile.TemporaryDirectory(prefix="mosrm-init-") as tmp:
        listing = Path(tmp) / "clips.csv"
        export_clips(prepared, listing)
        rows = list(csv.DictReader(listing.open(encoding="utf-8")))
    lines = ["clip_id,score"]
    for r in rows:
        x, _ = sf.read(r["audio_path"], dtype="float32")
        frame = 400
        n = x.size // frame
        if n == 0:
            value = 0.0
        else:
            energy = (x[: n * frame].reshape(n, frame) ** 2).mean(axis=1)
            value = float(np.log(np.maximum(energy, 1e-10)).mean())
        lines.append(f"{r['clip_id']},{value!r}")
    (folder / f"{task_name}-scores.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def hub_submission(repo: Path, ref: str, *, download: bool = True) -> Path:
    """`--model hf:ORG/NAME[@REV]`: the submission folder for a Hugging Face audio classifier
    (`baselines.hub`), written into the workspace's `submissions/hf-org--name/` and returned.

    The revision is pinned: REV (a branch, tag or commit) is resolved to the commit of the
    snapshot the harness fetched (`scoring.hub_weights`, offline-aware: `HF_HUB_OFFLINE`), and
    without REV the folder keeps the commit it was first pinned to (new weights under the same id
    never slip in; give `@main` to move on). The folder is a stranger's like any other: it runs
    in the sandbox, and its fingerprint covers the fetched files."""
    import yaml

    from benchmark.scoring.hub_weights import REPO_ID, snapshot

    if not ref.startswith("hf:"):
        raise MosrmError(f"--model {ref}: expected hf:ORG/NAME[@REVISION]")
    repo_id, _, revision = ref[3:].partition("@")
    if not REPO_ID.match(repo_id) or "/" not in repo_id:
        raise MosrmError(f"--model {ref}: '{repo_id}' is not a hub id (ORG/NAME)")
    name = re.sub(r"[^a-z0-9_.-]+", "-", "hf-" + repo_id.lower().replace("/", "--"))[:64]
    folder = repo / "submissions" / name
    spec_path = folder / "submission.yaml"
    pinned = None
    if spec_path.is_file() and not revision:
        old = yaml.safe_load(spec_path.read_text(encoding="utf-8")) or {}
        if old.get("params", {}).get("source") == repo_id:
            pinned = old.get("params", {}).get("revision")
    fetched = snapshot(repo_id, revision or pinned, download, f"--model {ref}")
    commit = fetched.name if fetched.parent.name == "snapshots" else None
    spec = {
        "name": name,
        "display_name": f"{repo_id} (hub audio classifier)",
        "kind": "scalar",
        "entry": "benchmark.baselines.hub:build",
        "params": {"source": repo_id, **({"revision": commit} if commit else {})},
        "revision": commit,
        "url": f"https://huggingface.co/{repo_id}",
        "description": (
            f"{repo_id} through its own feature extractor; its single logit (raw, no softmax) "
            f"is the score. Written by `mosrm evaluate --model {ref}`."
        ),
    }
    folder.mkdir(parents=True, exist_ok=True)
    text = "# written by `mosrm evaluate --model`: edit params (e.g. output) as you need\n"
    text += yaml.safe_dump({k: v for k, v in spec.items() if v is not None}, sort_keys=False)
    spec_path.write_text(text, encoding="utf-8")
    return folder
