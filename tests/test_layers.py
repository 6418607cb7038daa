"""The house stays legible: the package's imports point down its stages only, with no cycles.

Data flows one way (corpus reader → clip table → pair table → scorer → predictions → metrics →
results → board), and the folders say so: each module may import modules of its own layer or of
layers below it, never above, and no chain of imports comes back to where it started. Imports inside
functions count (they are dependencies all the same); those under `TYPE_CHECKING` do not (they are
for the type checker only). Old module paths (`benchmark._moved`) are for outside code, never for
the package itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

from benchmark._moved import new_name

PACKAGE = Path(__file__).resolve().parents[1] / "benchmark"

LAYERS = (
    (
        "bottom",
        (
            "benchmark",
            "_moved",
            "errors",
            "paths",
            "workspace",
            "atomic",
            "hashing",
            "escape",
            "progress",
        ),
    ),
    ("data", ("data",)),
    ("pairs", ("pairs",)),
    ("scoring", ("scoring",)),
    ("stats", ("stats",)),
    ("results", ("results",)),
    ("cards", ("cards",)),
    ("baselines", ("baselines",)),
    ("leaderboard", ("leaderboard",)),
    (
        "top",
        (
            "pipeline",
            "orchestrate",
            "paper",
            "probe",
            "validate_results",
            "templates",
            "api",
            "cli",
        ),
    ),
)
ORDER = " < ".join(name for name, _ in LAYERS)
RULE = f"arrows point down only ({ORDER}; README, 'Layout')"


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        if path.is_relative_to(PACKAGE / "shipped"):
            continue  # data: templates a user copies, which import `benchmark.models` as theirs do
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def layer(module: str) -> int:
    parts = module.split(".")
    head = "benchmark" if len(parts) == 1 else parts[1]
    for i, (_, members) in enumerate(LAYERS):
        if head in members:
            return i
    raise AssertionError(f"{module} is in no layer: put it in a stage's folder ({RULE})")


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skip


def imports(module: str, path: Path, known: dict[str, Path]) -> dict[str, int]:
    """The package's modules that `module` imports, each with the line of its first import."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_nodes(tree)
    is_package = path.name == "__init__.py"
    found: dict[str, int] = {}

    def add(target: str, line: int) -> None:
        assert target.split(".")[0] != "benchmark" or target in known or new_name(target) is None, (
            f"{path}:{line}: imports the old path {target}; use {new_name(target)}"
        )
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != module:
            found.setdefault(target, line)

    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("benchmark"):
                    add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if not source.startswith("benchmark"):
                continue
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                add(sub if sub in known else source, node.lineno)
    return found


def graph() -> dict[str, dict[str, int]]:
    known = modules()
    return {m: imports(m, p, known) for m, p in known.items()}


def _cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_every_import_points_down_a_layer_or_stays_in_its_own():
    known = modules()
    wrong = []
    for module, targets in sorted(graph().items()):
        for target, line in sorted(targets.items()):
            if layer(target) > layer(module):
                up = LAYERS[layer(target)][0]
                wrong.append(
                    f"{known[module].relative_to(PACKAGE.parent)}:{line}: {module} "
                    f"({LAYERS[layer(module)][0]}) imports {target} ({up}): {RULE}"
                )
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    cycles = _cycles(graph())
    assert not cycles, "\n".join(
        f"import cycle: {' -> '.join(c)}: break it by moving what both need below both"
        for c in cycles
    )


def test_the_checks_catch_an_arrow_up_and_a_cycle():
    """The walker sees imports inside functions, skips TYPE_CHECKING, and finds cycles."""
    assert _cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b": 1}, "b": {}}) == []
    known = {"benchmark.data.audio": Path(), "benchmark.stats.metrics": Path()}
    source = PACKAGE / "data" / "audio.py"
    tree_text = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from benchmark.stats.metrics import aggregate\n"
    )
    fake = Path(__file__).with_name("_layer_probe.py")
    try:
        fake.write_text(tree_text)
        assert imports("benchmark.data.audio", fake, known) == {}
        fake.write_text(tree_text + "def f():\n    from benchmark.stats import metrics\n")
        assert imports("benchmark.data.audio", fake, known) == {"benchmark.stats.metrics": 5}
    finally:
        fake.unlink(missing_ok=True)
    assert layer("benchmark.stats.metrics") > layer("benchmark.data.audio")
    assert source.is_file()


def test_old_paths_still_import_the_same_modules_and_submitted_code_is_never_warned():
    import subprocess
    import sys

    code = (
        "import warnings; warnings.simplefilter('error')\n"
        "from benchmark.models import Batch, ScalarRewardModel, SubmissionSpec\n"
        "from benchmark.batch import Batch as B2\n"
        "import benchmark.scoring.models as m, benchmark.models as old\n"
        "assert Batch is B2 and m is old and old.__spec__.name == 'benchmark.scoring.models'\n"
        "try:\n"
        "    import benchmark.pair_rows\n"
        "except DeprecationWarning as w:\n"
        "    assert 'benchmark.pairs.rows' in str(w), w\n"
        "else:\n"
        "    raise AssertionError('no warning')\n"
        "warnings.simplefilter('ignore')\n"
        "import benchmark.pair_rows, benchmark.pairs.rows\n"
        "assert benchmark.pair_rows is benchmark.pairs.rows\n"
        "from benchmark.scoring import ScoringConfig, predict\n"
        "from benchmark.scoring.predictions import predict as p1\n"
        "assert predict is p1\n"
        "from benchmark.pipeline import prepare\n"
        "from benchmark.pairs.prepare import prepare as p2\n"
        "assert prepare is p2\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
