"""Acceptance: hostile submissions scored in ONE `mosrm run` beside a good one (issue 20 and before).

Each misbehaviour ends as a recorded failure naming its reason, or is contained (scored, and no
better than a length shortcut); the good submission is scored, the board is rebuilt, the score
cache and the labels are untouched, and the run exits non-zero. The attacks of issue 20:

1. `build()` writes /proc/sys (core_pattern, swappiness): refused, the child is not root;
2. a score learnt from the order clips arrive in: as good as a length shortcut, no better;
3. a judge that answers by the parity of its calls: chance, and not a "perfect" judge;
4. bytecode in `__pycache__` that differs from the source: the folder is refused;
5. 512 MiB on stderr; a frame claiming 2 GiB: one bounded failure line each;
6. files in /tmp plus two 1000 MiB subprocesses under `--memory-mb 1200`: stopped;
7. busy-waiting just under the per-call timeout: stopped by the task's time budget;
8. malformed frames (a 300,000-deep header, `"arrays": 5`, a shape of 1e999): one line each;

and a stranger's folder naming a trusted entry (`benchmark.baselines.shortcuts:...`), which runs
sandboxed: its run record says so (uid, mechanism).
"""

from __future__ import annotations

import importlib.util
import json
import py_compile
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from benchmark.cli import main
from benchmark.paths import prepared_dir, score_cache_path
from tests.hostile import HOLD_MEMORY, PROTOCOL_FD, old_order
from tests.sandbox_required import sandbox_needed
from tests.toy_task import write_toy_repo

pytestmark = sandbox_needed()

CODE = r"""
import fcntl, json, os, socket, sqlite3, stat, struct, subprocess, sys, time

import numpy as np
import torch

HERE = os.path.dirname(__file__)
SECRETS = dict(line.split("=", 1) for line in open(os.path.join(HERE, "paths.txt")).read().split())


PROTOCOL_FD


def forge(head):
    # a reply frame of the child's own making, then silence
    raw = head if isinstance(head, bytes) else json.dumps(head).encode()
    view = memoryview(struct.pack(">Q", len(raw)) + raw)
    fd = protocol_fd()
    while view:
        view = view[os.write(fd, view):]
    time.sleep(60)


HOLD_MEMORY


class Model:
    sample_rate = 16000

    def __init__(self, mode):
        self.mode = mode
        self.seen = {}
        self.calls = 0

    def score(self, batch):
        n, m = len(batch), self.mode
        if m == "good":
            x = batch.waveforms * batch.mask()
            return (x.pow(2).sum(1) / batch.lengths).sqrt().double()
        if m == "raise":
            raise RuntimeError("boom")
        if m == "exit0":
            raise SystemExit(0)
        if m == "sleep":
            time.sleep(3600)
        if m == "stubborn":
            while True:
                try:
                    time.sleep(0.05)
                except BaseException:  # swallows KeyboardInterrupt and friends
                    pass
        if m == "memory":  # attack #6
            hold_memory(30)
            return torch.zeros(n, dtype=torch.float64)
        if m == "busy":  # attack #7: busy-wait just under the per-call timeout, every call
            until = time.monotonic() + 4.5
            while time.monotonic() < until:
                pass
            return torch.zeros(n, dtype=torch.float64)
        if m == "order":  # attack #2: a clip's score is how many clips of its length came
            out = []  # before it (then, never to tie, minus a tiny count of all clips so far)
            for k in batch.lengths.tolist():
                self.seen[k] = self.seen.get(k, 0) + 1
                self.calls += 1
                out.append(self.seen[k] - 1e-6 * self.calls)
            return torch.tensor(out, dtype=torch.float64)
        if m == "flood":  # attack #5: 512 MiB on stderr, no newline
            chunk = b"x" * (1 << 20)
            for _ in range(512):
                os.write(2, chunk)
            raise RuntimeError("flooded")
        if m == "nbytes":  # attack #5: a reply claiming 2 GiB
            forge({"ok": True, "arrays": [{"dtype": "<f8", "shape": [n]}], "nbytes": 2**31})
        if m == "deep":  # attack #8: a 300,000-deep header
            forge(b'{"ok": true, "x": ' + b"[" * 300_000 + b"]" * 300_000 + b"}")
        if m == "arrays5":  # attack #8
            forge({"ok": True, "arrays": 5, "nbytes": 8 * n})
        if m == "shape_inf":  # attack #8
            head = {"ok": True, "arrays": [{"dtype": "<f8", "shape": [0]}], "nbytes": 8 * n}
            forge(json.dumps(head).replace("[0]", "[1e999]").encode())
        if m == "nan":
            return torch.full((n,), float("nan"))
        if m == "shape":
            return torch.zeros(n, 2)
        if m == "socket":
            try:
                socket.create_connection(("1.1.1.1", 443), timeout=2)
            except OSError:
                pass
            return torch.rand(n, generator=torch.Generator().manual_seed(n)).double()
        if m == "writer":
            for path in (SECRETS["victim"], os.path.join(HERE, "pwned.txt")):
                try:
                    open(path, "w").write("x")
                except OSError:
                    pass
            return torch.rand(n, generator=torch.Generator().manual_seed(n)).double()
        if m == "labels":  # cheat: read the prepared clip table and return the true MOS
            try:
                import pyarrow.parquet as pq

                mos = dict(zip(*pq.read_table(SECRETS["labels"], columns=["clip_id", "mos"]).to_pydict().values()))
                return torch.tensor([mos.get(c, 0.0) for c in batch.clip_ids], dtype=torch.float64)
            except Exception:
                return torch.rand(n, generator=torch.Generator().manual_seed(n)).double()
        if m == "cache":  # sabotage another submission's cached scores
            try:
                con = sqlite3.connect(SECRETS["cache"])
                con.execute("UPDATE clip_scores SET score = 0")
                con.commit()
            except Exception:
                pass
            return batch.lengths.double()
        raise AssertionError(m)

    def prefer(self, a, b):  # attack #3: 1 on odd calls, 0 on even ones, whatever the audio
        self.calls += 1
        return torch.full((len(a),), float(self.calls % 2), dtype=torch.float64)


def write_back(path):
    with open(path) as f:
        old = f.read()
    with open(path, "w") as f:
        f.write(old)


def build(mode):
    if mode == "build_raise":
        raise ValueError("cannot build")
    if mode == "root":  # attack #1: as the harness's root, this would reach the host's kernel
        for path in ("/proc/sys/kernel/core_pattern", "/proc/sys/vm/swappiness"):
            try:
                write_back(path)
            except OSError as e:
                raise PermissionError(f"refused: {path}: {e.strerror}") from None
    return Model(mode)
"""
CODE = CODE.replace("\nPROTOCOL_FD\n", PROTOCOL_FD)
CODE = CODE.replace("\nHOLD_MEMORY\n", HOLD_MEMORY)


EVIL = "def build(mode):\n    raise SystemExit('the bytecode ran, not the source')\n"

MODES = {
    # failures: recorded, with the words the record must contain
    "raise": "RuntimeError: boom",
    "build_raise": "building the model failed: ValueError: cannot build",
    "import_exit": "building the model failed: SystemExit: 7",
    "exit0": "score() raised SystemExit",
    "sleep": "timeout",
    "stubborn": "timeout",
    "nan": "non-finite",
    "shape": "shape [",
    "root": "PermissionError: refused: /proc/sys/kernel/core_pattern",
    "pyc": "a bytecode cache (__pycache__) in a submission folder",
    "flood": "RuntimeError: flooded",
    "nbytes": "'nbytes' is 2147483648",
    "deep": "exceeds 65536",
    "arrays5": "'arrays' must be a list, got 5",
    "shape_inf": "'shape' must be a list of ints, got [inf]",
    "memory": "stopped: memory limit",
    "busy": "the time budget of this task is spent",
    # contained: scored, harmlessly
    "socket": None,
    "writer": None,
    "labels": None,
    "cache": None,
    "order": None,
    "oddeven": None,
    "stranger": None,
}
FAILURES = sum(v is not None for v in MODES.values())


def _name(mode: str) -> str:
    return f"z-{mode.replace('_', '-')}"


def _hostile(subs: Path, mode: str, paths: dict[str, Path], name: str | None = None) -> None:
    folder = subs / (name or _name(mode))
    folder.mkdir()
    spec: dict[str, object] = {"name": folder.name, "display_name": mode, "kind": "scalar"}
    if mode == "stranger":  # names a trusted entry from a folder that is not the repository's
        spec["entry"] = "benchmark.baselines.shortcuts:DurationModel"
        (folder / "submission.yaml").write_text(yaml.safe_dump(spec))
        return
    code = CODE if mode != "import_exit" else "import sys\nsys.exit(7)\n" + CODE
    (folder / "model.py").write_text(code)
    (folder / "paths.txt").write_text("\n".join(f"{k}={v}" for k, v in paths.items()))
    if mode == "pyc":  # bytecode compiled from other code, which Python would run unchecked
        evil = folder.parent / "evil-source.py"
        evil.write_text(EVIL)
        target = importlib.util.cache_from_source(str(folder / "model.py"))
        py_compile.compile(
            str(evil), cfile=target, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
        )
        evil.unlink()
    spec["kind"] = "pairwise" if mode == "oddeven" else "scalar"
    spec["entry"] = "model.py:build"
    spec["params"] = {"mode": "good" if mode in ("import_exit", "pyc") else mode}
    (folder / "submission.yaml").write_text(yaml.safe_dump(spec))


def _results(results: Path, name: str) -> dict:
    return json.loads((results / name / "toy.json").read_text())


def _cells(result: dict) -> dict[str, dict]:
    metrics = result["metrics"]
    return {"overall": metrics["overall"], **metrics["by_relation"]}


def _order_leaks(results: Path) -> dict[str, list[str]]:
    """For attacks #2 and #3, the cells where the cheat learnt something from the order: it is
    significantly better than the better length shortcut (longer or shorter wins, ties half: a
    shortcut's tie-half accuracy a, its opposite's 1 - a); for the judge, which sees nothing
    but the parity of its calls, also an interval that leaves chance (either way: always picking
    the worse clip is a channel too), and diagnostics that call it a perfect judge."""
    longer = _cells(_results(results, "shortcut-duration"))
    leaks: dict[str, list[str]] = {}
    for mode in ("order", "oddeven"):
        found = leaks.setdefault(mode, [])
        for cell, c in _cells(_results(results, _name(mode))).items():
            a = longer[cell]["tie_half_accuracy"]
            chance = c["ci_low"] <= 0.5 <= c["ci_high"]
            if c["ci_low"] > max(a, 1 - a) or (mode == "oddeven" and not chance):
                found.append(f"{cell}: {c['accuracy']} [{c['ci_low']}, {c['ci_high']}]")
    d = _results(results, _name("oddeven"))["diagnostics"]
    if (d["position_consistency"], d["first_position_bias"], d["cycle_rate"]) == (1.0, 0.0, 0.0):
        leaks["oddeven"].append("diagnostics: a perfect judge")
    return leaks


def test_the_order_cheats_had_a_channel_before_issue_20(tmp_path, monkeypatch):
    """The same cheats against the harness's old order (by length, then clip-table order; the
    judge shown the smaller clip id first): `_order_leaks` finds them, so it has teeth."""
    old_order(monkeypatch)
    repo = write_toy_repo(tmp_path)
    paths = {"victim": tmp_path / "v", "labels": tmp_path / "l", "cache": tmp_path / "c"}
    for mode in ("order", "oddeven"):
        _hostile(repo / "submissions", mode, paths)
    results = tmp_path / "results"
    assert main(["--repo", str(repo), "run", "--quiet", "--results", str(results)]) == 0
    leaks = _order_leaks(results)
    assert leaks["order"] and leaks["oddeven"], leaks
    assert "diagnostics: a perfect judge" in leaks["oddeven"]


def test_one_run_with_hostile_submissions(tmp_path, capsys):
    repo = write_toy_repo(tmp_path)
    subs = repo / "submissions"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    paths = {
        "victim": victim,
        "labels": prepared_dir("toy") / "clips.parquet",
        "cache": score_cache_path(),
    }
    _hostile(subs, "good", paths, name="a-good")  # scored first: sabotage would come after it
    for mode in MODES:
        _hostile(subs, mode, paths)
    results = tmp_path / "results"
    args = ["--repo", str(repo), "run", "--quiet", "--results", str(results)]
    args += ["--call-timeout", "5", "--memory-mb", "1200", "--batch-size", "8"]
    args += ["--budget-base-s", "8", "--budget-per-unit-s", "0"]
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 2
    assert f"{FAILURES} submission failure(s)" in err

    good = _results(results, "a-good")
    assert good["metrics"]["overall"]["n"] > 0
    for mode, expected in MODES.items():
        name = _name(mode)
        failed = results / name / "toy.failed.json"
        if expected is None:
            assert not failed.exists(), (mode, failed.read_text() if failed.exists() else "")
            assert (results / name / "toy.json").is_file(), mode
        else:
            record = json.loads(failed.read_text())
            reason = record["reason"]
            assert expected in reason, (mode, reason)
            assert "\n" not in reason and len(reason) < 16_000, (mode, len(reason))
            assert "Traceback" not in reason.split("(stderr")[0], (mode, reason)
            assert not (results / name / "toy.json").exists()
            assert name in err

    # 1: the sandboxed child is not root outside its namespaces; how it was confined is recorded
    for name in ("a-good", _name("stranger")):
        run = json.loads((results / name / "toy.run.json").read_text())
        box = run["sandbox"]
        assert box["sandboxed"] and box["uid"] != 0 and box["seccomp"], (name, box)
        assert box["mechanism"] in ("cgroup-v1", "cgroup-v2", "rlimits")
        assert box["limits"]["memory_mb"] == 1200
    # the repository's own shortcut runs in-process: no sandbox block
    shortcut = json.loads((results / "shortcut-duration" / "toy.run.json").read_text())
    assert shortcut.get("sandbox") is None
    # the stranger naming the duration shortcut scores what the shortcut scores, sandboxed
    stranger = _cells(_results(results, _name("stranger")))
    longer = _cells(_results(results, "shortcut-duration"))
    assert stranger["overall"]["accuracy"] == longer["overall"]["accuracy"]

    # 2, 3: the order tells nothing (see `_order_leaks`)
    assert _order_leaks(results) == {"order": [], "oddeven": []}

    # contained: labels unreadable (the cheat scores like a coin, not 100%), files untouched
    cheat = _results(results, "z-labels")["metrics"]["overall"]
    assert cheat["accuracy"] < 0.75 and cheat["ci_low"] <= 0.5 <= cheat["ci_high"]
    assert victim.read_text() == "precious"
    assert not (subs / "z-writer" / "pwned.txt").exists()
    # the score cache was not rewritten: rescoring the good model from the cache gives its bytes
    before = pq.read_table(results / "a-good" / "toy.predictions.parquet")
    again = tmp_path / "again"
    args = ["--repo", str(repo), "evaluate", "a-good", "--task", "toy", "--quiet"]
    assert main([*args, "--results", str(again)]) == 0
    after = pq.read_table(again / "a-good" / "toy.predictions.parquet")
    assert after.column("score_a").equals(before.column("score_a"))
    # the board was rebuilt and shows the failures as such
    board = (results / "summary.md").read_text()
    assert "a-good" in board or "good" in board
    assert board.count("✗") >= FAILURES
