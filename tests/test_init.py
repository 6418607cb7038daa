"""`mosrm init`: each kind's template validates (sandboxed smoke run) and evaluates as written, its
example really reads the audio and masks the padding, and `examples/` holds the same templates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmark.cli import main
from benchmark.errors import MosrmError
from benchmark.templates import KINDS, TEMPLATES, init_submission
from tests.sandbox_required import sandbox_needed
from tests.toy_task import write_toy_repo

REPO = Path(__file__).resolve().parents[1]


@sandbox_needed()
@pytest.mark.parametrize("kind", ["scalar", "pairwise", "implicit"])
def test_each_code_template_validates_and_evaluates_as_written(tmp_path, capsys, kind):
    repo = write_toy_repo(tmp_path)
    assert main(["--repo", str(repo), "init", f"my-{kind}", "--kind", kind]) == 0
    out = capsys.readouterr().out
    folder = repo / "submissions" / f"my-{kind}"
    assert f"wrote {folder}/" in out and f"mosrm validate my-{kind}" in out
    assert main(["--repo", str(repo), "validate", f"my-{kind}"]) == 0
    assert f"ok: submission 'my-{kind}' ({kind}, sandboxed)" in capsys.readouterr().out
    args = ["--repo", str(repo), "evaluate", f"my-{kind}", "--task", "toy", "--quiet"]
    assert main([*args, "--results", str(tmp_path / "results")]) == 0
    record = json.loads((tmp_path / "results" / f"my-{kind}" / "toy.json").read_text())
    # the toy's systems differ in loudness and MOS rises with it: the stand-in is far above chance
    assert record["metrics"]["overall"]["accuracy"] > 0.7, record["metrics"]["overall"]


def test_the_predictions_template_scores_the_demo_and_evaluates(tmp_path, capsys):
    ws = tmp_path / "ws"
    assert main(["--repo", str(ws), "init", "mine", "--kind", "predictions"]) == 0
    folder = ws / "submissions" / "mine"
    assert (folder / "demo-scores.csv").read_text().startswith("clip_id,score\n")
    capsys.readouterr()
    assert main(["--repo", str(ws), "validate", "mine"]) == 0
    assert "demo: " in capsys.readouterr().out
    assert main(["--repo", str(ws), "evaluate", "mine", "--task", "demo", "--quiet"]) == 0
    assert (ws / "results" / "mine" / "demo.json").is_file()


def test_the_scalar_example_masks_padding_and_reads_the_audio():
    """What `mosrm validate` checks, by hand on the template's own class: a clip scores the same
    alone and padded into a batch, and two different clips score differently."""
    import importlib.util

    from benchmark.data.batch import Batch

    spec = importlib.util.spec_from_file_location("tmpl", TEMPLATES / "scalar" / "model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.Model()
    g = torch.Generator().manual_seed(0)
    a, b = 0.3 * torch.randn(3000, generator=g), 0.05 * torch.randn(5000, generator=g)
    batch = torch.zeros(2, 5000)
    batch[0, :3000], batch[1] = a, b
    both = model.score(Batch(batch, torch.tensor([3000, 5000]), 16000, ("a", "b")))
    alone = model.score(Batch(a[None], torch.tensor([3000]), 16000, ("a",)))
    assert both.shape == (2,) and torch.allclose(both[0], alone[0])
    assert both[0] > both[1]


def test_init_refuses_bad_names_kinds_and_full_folders(tmp_path):
    with pytest.raises(MosrmError, match="not a submission name"):
        init_submission(tmp_path / "x", "Bad Name", "scalar", tmp_path)
    with pytest.raises(MosrmError, match="unknown kind 'ranker'"):
        init_submission(tmp_path / "x", "ok", "ranker", tmp_path)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "model.py").write_text("mine")
    with pytest.raises(MosrmError, match="exists and is not empty"):
        init_submission(tmp_path / "full", "ok", "scalar", tmp_path)
    assert (tmp_path / "full" / "model.py").read_text() == "mine"


@pytest.mark.parametrize("kind", KINDS)
def test_examples_hold_each_kinds_template(kind):
    """`examples/<kind>/` is what `mosrm init example-<kind> --kind <kind>` writes (less the
    predictions' scores file, which depends on the demo synthesised here)."""
    example = REPO / "examples" / kind
    for path in (TEMPLATES / kind).iterdir():
        want = path.read_text(encoding="utf-8")
        if path.name == "submission.yaml":
            want = want.replace("NAME", f"example-{kind}")
        assert (example / path.name).read_text(encoding="utf-8") == want, path.name


def test_the_documented_batch_import_is_the_class():
    """The user guide and the templates name `benchmark.models.Batch`: that import works and is
    the class the harness builds batches with."""
    from benchmark.models import Batch as Documented

    from benchmark.data.batch import Batch
    from tests.docs_text import docs_text

    assert Documented is Batch
    assert "from benchmark.models import Batch" in docs_text()
    for kind in ("scalar", "pairwise", "implicit"):
        assert "from benchmark.models import Batch" in (TEMPLATES / kind / "model.py").read_text()
