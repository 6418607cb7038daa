"""The fingerprint covers everything the child can run: compiled code is refused, nothing is left out
(issue 20, point 4)."""

from __future__ import annotations

import importlib.util
import py_compile
import shutil
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from benchmark.errors import SubmissionError
from benchmark.scoring.models import current_fingerprint, folder_files

HONEST = """
import torch

class M:
    sample_rate = 16000
    def score(self, batch):
        return batch.lengths.double()

def build():
    return M()
"""

EVIL = HONEST.replace("batch.lengths.double()", "-batch.lengths.double()")


def _folder(tmp_path: Path, name: str = "sub") -> Path:
    folder = tmp_path / name
    folder.mkdir(parents=True)
    (folder / "model.py").write_text(HONEST)
    spec = {"name": name, "display_name": name, "kind": "scalar", "entry": "model.py:build"}
    (folder / "submission.yaml").write_text(yaml.safe_dump(spec))
    return folder


def _refused(folder: Path, file: Path) -> str:
    with pytest.raises(SubmissionError) as err:
        current_fingerprint(folder)
    text = str(err.value)
    assert "\n" not in text and str(file) in text, text
    return text


def test_the_shipped_unchecked_hash_pyc_is_refused(tmp_path):
    """Issue 20 #4: evil code compiled to __pycache__/model.cpython-3XX.pyc (unchecked hash), which
    the import system would run in place of the honest model.py."""
    folder = _folder(tmp_path)
    evil = tmp_path / "evil.py"
    evil.write_text(EVIL)
    pyc = folder / "__pycache__" / f"model.{sys.implementation.cache_tag}.pyc"
    pyc.parent.mkdir()
    py_compile.compile(
        str(evil),
        cfile=str(pyc),
        dfile=str(folder / "model.py"),
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        doraise=True,
    )
    assert "__pycache__" in _refused(folder, pyc)
    shutil.rmtree(pyc.parent)
    assert current_fingerprint(folder)  # the honest folder alone is fine


def test_a_lone_sourceless_module_is_refused(tmp_path):
    """`import helper` would load helper.pyc through SourcelessFileLoader, with no helper.py."""
    folder = _folder(tmp_path)
    src = tmp_path / "helper.py"
    src.write_text("X = 1\n")
    lone = folder / "helper.pyc"
    py_compile.compile(str(src), cfile=str(lone), doraise=True)
    _refused(folder, lone)
    lone.rename(folder / "helper.dat")  # the same bytes under another name: still bytecode
    _refused(folder, folder / "helper.dat")


def test_native_code_is_refused_by_name_and_by_content(tmp_path):
    folder = _folder(tmp_path)
    elf = Path(sys.executable).resolve().read_bytes()[:4096]  # an ELF binary here
    if not elf.startswith(b"\x7fELF"):
        pytest.skip("the interpreter is not an ELF binary on this machine")
    lib = folder / "helper.cpython-311-x86_64-linux-gnu.so"
    lib.write_bytes(elf)
    _refused(folder, lib)
    lib.unlink()
    renamed = folder / "weights.bin"  # loadable with ctypes.CDLL whatever its name
    renamed.write_bytes(elf)
    assert "ELF" in _refused(folder, renamed)
    renamed.unlink()
    for name in ("x.pyd", "x.dylib", "x.DLL", "x.pyo", "x.so"):
        (folder / name).write_bytes(b"not even a binary")
        _refused(folder, folder / name)
        (folder / name).unlink()
    pe = bytearray(256)
    pe[:2], pe[60:64], pe[128:132] = b"MZ", (128).to_bytes(4, "little"), b"PE\0\0"
    (folder / "tool.bin").write_bytes(bytes(pe))
    _refused(folder, folder / "tool.bin")
    (folder / "tool.bin").unlink()
    (folder / "notes.txt").write_text("MZ is a two-letter word, not a PE header\n" * 3)
    assert current_fingerprint(folder)


def test_a_zip_holding_bytecode_is_refused_an_npz_is_not(tmp_path):
    folder = _folder(tmp_path)
    with zipfile.ZipFile(folder / "lib.zip", "w") as z:
        z.writestr("helper.pyc", importlib.util.MAGIC_NUMBER + b"\0" * 12)
    assert "helper.pyc" in _refused(folder, folder / "lib.zip")
    (folder / "lib.zip").unlink()
    import numpy as np

    np.savez(folder / "table.npz", a=np.arange(3))
    assert current_fingerprint(folder)


def test_every_other_file_changes_the_fingerprint(tmp_path):
    folder = _folder(tmp_path)
    (folder / "run.sh").write_text("#!/bin/sh\necho hi\n")  # a script is text: hashed, accepted
    (folder / ".hidden").write_text("x")
    (folder / "data").mkdir()
    (folder / "data" / "w.safetensors").write_bytes(b"\0" * 16)
    base = current_fingerprint(folder)
    listed = {rel for rel, _ in folder_files(folder)}
    assert listed == {"model.py", "submission.yaml", "run.sh", ".hidden", "data/w.safetensors"}
    for rel in sorted(listed):
        path = folder / rel
        old = path.read_bytes()
        path.write_bytes(old + b"\n")
        assert current_fingerprint(folder) != base, rel
        path.write_bytes(old)
    assert current_fingerprint(folder) == base
    (folder / "data" / "empty").write_bytes(b"")
    assert current_fingerprint(folder) != base


def test_the_child_never_reads_bytecode_of_the_folder(tmp_path, monkeypatch):
    """Defence in depth: a stale __pycache__ entry the refusal did not see (written after the
    check) is not used; the model runs its source."""
    from benchmark.scoring.sandbox import child

    folder = _folder(tmp_path)
    (folder / "helper.py").write_text("SIGN = 1\n")
    (folder / "model.py").write_text("import helper\nSIGN = helper.SIGN\n" + HONEST)
    evil = tmp_path / "evil_helper.py"
    evil.write_text("SIGN = -1\n")
    cache = folder / "__pycache__"
    cache.mkdir()
    for name, src in (("helper", evil), ("model", evil)):
        py_compile.compile(
            str(src),
            cfile=str(cache / f"{name}.{sys.implementation.cache_tag}.pyc"),
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            doraise=True,
        )
    (folder / "lone.pyc").write_bytes(
        (cache / f"helper.{sys.implementation.cache_tag}.pyc").read_bytes()
    )
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(key, "0")  # build() sets them: restored after the test
    saved = (list(sys.path), list(sys.path_hooks), dict(sys.modules))
    try:
        child.build(
            {"folder": str(folder), "entry": "model.py:build", "kind": "scalar", "params": {}}
        )
        module = sys.modules["mosrm_submission"]
        assert module.SIGN == 1 and sys.modules["helper"].SIGN == 1
        with pytest.raises(ImportError):
            importlib.import_module("lone")
    finally:
        sys.path[:], sys.path_hooks[:] = saved[0], saved[1]
        for name in set(sys.modules) - set(saved[2]):
            del sys.modules[name]
        sys.path_importer_cache.clear()
