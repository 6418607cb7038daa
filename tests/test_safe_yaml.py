"""The YAML loader for user files: ordinary files load as with safe_load, hostile ones are refused
quickly, in bounded memory, with one line naming the file."""

from __future__ import annotations

import shutil
import time
import tracemalloc
from pathlib import Path

import pytest
import yaml

from benchmark.cli import main
from benchmark.data import safe_yaml
from benchmark.data.safe_yaml import MAX_BYTES, MAX_DEPTH, MAX_NODES, load_yaml
from benchmark.errors import SubmissionError, TaskSpecError

REPO = Path(__file__).resolve().parents[1]

# 9 levels of 9 aliases: 9**9 (387M) strings once expanded, 700 bytes on disk
LAUGHS = 'l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
    f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9)
)


def _write(tmp_path: Path, text: str | bytes, name: str = "t.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _error(path: Path, cls: type[Exception] = TaskSpecError) -> str:
    with pytest.raises(cls) as info:
        load_yaml(path, cls)
    msg = str(info.value)
    assert msg.startswith(f"{path}: ") and "\n" not in msg
    return msg


def _refused_fast_and_small(path: Path) -> str:
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        msg = _error(path)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert time.perf_counter() - t0 < 5
    assert peak < 32 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    return msg


@pytest.mark.parametrize(
    "path",
    sorted(REPO.glob("benchmark/shipped/**/*.yaml")) + sorted(REPO.glob("examples/*/*.yaml")),
    ids=lambda p: str(p.relative_to(REPO)),
)
def test_committed_files_load_as_with_safe_load(path: Path) -> None:
    assert load_yaml(path, TaskSpecError) == yaml.safe_load(path.read_text(encoding="utf-8"))


def test_anchors_merge_keys_and_overrides_still_work(tmp_path: Path) -> None:
    text = (
        "base: &b {x: 1, y: [a, b]}\n"
        "derived:\n  <<: *b\n  x: 3\n"
        "copy: *b\n"
        "when: 2024-01-02\n"
        "flags: [yes, no, ~, 0x10, 1e3]\n"
    )
    assert load_yaml(_write(tmp_path, text), TaskSpecError) == yaml.safe_load(text)


def test_billion_laughs_is_refused_fast_with_little_memory(tmp_path: Path) -> None:
    msg = _refused_fast_and_small(_write(tmp_path, LAUGHS))
    assert f"more than {MAX_NODES} YAML nodes" in msg and "alias" in msg


def test_one_long_string_repeated_by_aliases_is_refused(tmp_path: Path) -> None:
    text = f"a: &a {'x' * 60_000}\nb: [{', '.join(['*a'] * 20)}]\n"
    assert "characters of text once aliases are expanded" in _refused_fast_and_small(
        _write(tmp_path, text)
    )


def test_too_many_nodes_without_aliases_is_refused(tmp_path: Path) -> None:
    text = "[" + ",".join(["1"] * (MAX_NODES + 10)) + "]\n"
    assert f"more than {MAX_NODES} YAML nodes" in _refused_fast_and_small(_write(tmp_path, text))


def test_deep_nesting_is_refused_without_recursion_error(tmp_path: Path) -> None:
    msg = _refused_fast_and_small(_write(tmp_path, "[" * 200_000))
    assert f"nested deeper than {MAX_DEPTH} levels" in msg and "line 1, column" in msg


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    assert "alias *a refers to itself" in _error(_write(tmp_path, "params: &a [1, *a]\n"))


@pytest.mark.parametrize(
    ("text", "key", "line", "first"),
    [
        ("a: 1\nb: 2\na: 3\n", "a", 3, 1),
        ("params:\n  x:\n    deep: 1\n    other: 2\n    deep: 3\n", "deep", 5, 3),
        ("list:\n  - {k: 1, k: 2}\n", "k", 2, 2),
        ("1: a\n1.0: b\n", "1.0", 2, 1),  # the same key once constructed
        ("on: a\ntrue: b\n", "true", 2, 1),  # YAML 1.1 booleans
    ],
)
def test_duplicate_keys_at_any_depth_name_the_key_and_line(
    tmp_path: Path, text: str, key: str, line: int, first: int
) -> None:
    msg = _error(_write(tmp_path, text))
    assert f"line {line}, column" in msg
    assert f"duplicate key '{key}' (first at line {first})" in msg


def test_not_utf8_is_one_line_naming_the_byte(tmp_path: Path) -> None:
    msg = _error(_write(tmp_path, "name: a\ndisplay_name: Caf\xe9\n".encode("latin-1")))
    assert "not UTF-8 text (byte 0xe9 on line 2); save the file as UTF-8" in msg
    assert "not UTF-8" in _error(_write(tmp_path, "a: 1\n".encode("utf-16"), "u16.yaml"))


def test_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    assert load_yaml(_write(tmp_path, b"\xef\xbb\xbfa: 1\n"), TaskSpecError) == {"a": 1}


def test_control_characters_are_refused_in_one_line(tmp_path: Path) -> None:
    assert "line 2: character U+001B is not allowed" in _error(
        _write(tmp_path, "a: 1\nb: x\x1b[2J\n")
    )


def test_size_cap_is_checked_before_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*_: object) -> None:
        raise AssertionError("parsed a file over the size cap")

    monkeypatch.setattr(safe_yaml, "_Loader", never)
    path = _write(tmp_path, "a: 1\n" + "#" * MAX_BYTES + "\n")
    assert f"refused: larger than {MAX_BYTES} bytes" in _error(path)


def test_syntax_errors_are_one_line_with_line_and_column(tmp_path: Path) -> None:
    msg = _error(_write(tmp_path, "a: [1, 2\nb: c\n"))
    assert "not valid YAML: line 2, column 2: expected ',' or ']'" in msg
    assert "not valid YAML: line 2, column 1" in _error(_write(tmp_path, "a: 1\n---\nb: 2\n"))


def test_python_tags_never_construct_objects(tmp_path: Path) -> None:
    msg = _error(_write(tmp_path, "!!python/object/apply:os.system ['echo pwned']\n"))
    assert "could not determine a constructor" in msg


def test_unreadable_file_and_callers_error_class(tmp_path: Path) -> None:
    assert "cannot read" in _error(tmp_path / "missing.yaml", SubmissionError)


BAD = {
    "alias-bomb": LAUGHS.replace("l0:", "name: sub\nparams:\n  l0:").replace("\nl", "\n  l"),
    "duplicate-key": "name: sub\nparams:\n  seed: 0\n  seed: 1\n",
    "not-utf8": "name: sub\ndisplay_name: Caf\xe9\n".encode("latin-1"),
    "syntax": "name: sub\nparams: {seed: 0\n",
    "too-large": "name: sub\n" + "#" * MAX_BYTES + "\n",
    "deep": "name: sub\nparams: " + "[" * 10_000 + "\n",
    "control-characters-in-a-key": 'name: sub\n"bad\\nkey\\e[2J": 1\n',
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_validate_prints_one_line_for_each_bad_submission_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    folder = tmp_path / "sub"
    shutil.copytree(REPO / "benchmark" / "shipped" / "submissions" / "shortcut-random", folder)
    _write(folder, BAD[case], "submission.yaml")
    assert main(["validate", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {folder / 'submission.yaml'}: ")
    assert err.count("\n") == 1 and "Traceback" not in err and "\x1b" not in err


def test_validate_prints_one_line_for_a_bad_task_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, LAUGHS, "bomb.yaml")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: refused: more than {MAX_NODES} YAML nodes")
    assert err.count("\n") == 1
