"""A submission folder's files and fingerprint: read, hashed, never imported or run here.

The fingerprint that keys the score cache covers the spec and every file of the folder, so editing
any of them means re-scoring; nothing is left out. Compiled code, which runs without a source a
reader can check and which the import system prefers over or uses instead of a `.py`, is refused
with a one-line error naming the file (`folder_files`): anything under `__pycache__`, Python
bytecode (`.pyc`/`.pyo`, or a file starting with this interpreter's bytecode magic), extension
modules and native libraries (`.so`, `.pyd`, `.dylib`, `.dll` and every suffix CPython loads as an
extension), any native executable by its magic bytes (ELF, Mach-O, PE; a renamed `.so` can still be
loaded with ctypes), and zip archives holding any of these (zipimport runs `.pyc` from a zip on
`sys.path`). Scripts (shebang or not) are text: read, hashed, accepted. The child also imports the
folder's modules from source only (`sandbox.child.build`), so no bytecode of the folder is ever
read even if one slipped through.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from benchmark.errors import SubmissionError
from benchmark.hashing import sha256_file
from benchmark.scoring.interfaces import MODEL_API_VERSION
from benchmark.scoring.spec import SubmissionSpec

COMPILED_SUFFIXES = (".pyc", ".pyo", ".so", ".pyd", ".dylib", ".dll")
"""Bytecode and native-code file names refused in a submission folder (with every suffix of
`importlib.machinery.EXTENSION_SUFFIXES` and `BYTECODE_SUFFIXES`: see the module docstring)."""


NATIVE_MAGIC = {
    b"\x7fELF": "an ELF executable or shared library",
    b"\xfe\xed\xfa\xce": "a Mach-O binary",
    b"\xfe\xed\xfa\xcf": "a Mach-O binary",
    b"\xce\xfa\xed\xfe": "a Mach-O binary",
    b"\xcf\xfa\xed\xfe": "a Mach-O binary",
    b"\xca\xfe\xba\xbe": "a universal Mach-O binary (or Java class file)",
}
"""The first four bytes of native code; PE (Windows) is checked apart (`MZ` + a `PE` header)."""


def folder_files(folder: Path) -> list[tuple[str, str]]:
    """(relative path, sha256) of every file of a submission folder, sorted; none left out.

    Compiled code is refused with a one-line error naming the file (`check_not_compiled`). A
    symlink is followed only if it stays inside the folder, so nothing outside can change behind
    the fingerprint's back.
    """
    root = folder.resolve()
    out: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for d in list(dirnames):
            if (Path(dirpath) / d).is_symlink():
                _check_link(root, Path(dirpath) / d)
            if d == "__pycache__":
                inside = sorted((Path(dirpath) / d).iterdir())
                raise SubmissionError(
                    f"{inside[0] if inside else Path(dirpath) / d}: a bytecode cache "
                    "(__pycache__) in a submission folder; delete it: only source runs"
                )
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_symlink():
                _check_link(root, path)
            if not path.is_file():
                raise SubmissionError(f"{path}: not a regular file (submission folders hold files)")
            check_not_compiled(path)
            out.append((path.relative_to(root).as_posix(), sha256_file(path)))
    return sorted(out)


def _compiled_suffixes() -> tuple[str, ...]:
    from importlib.machinery import BYTECODE_SUFFIXES, EXTENSION_SUFFIXES

    return tuple({*COMPILED_SUFFIXES, *BYTECODE_SUFFIXES, *EXTENSION_SUFFIXES})


def _compiled_name(name: str) -> bool:
    return name.lower().endswith(_compiled_suffixes()) or "__pycache__" in name.split("/")


def check_not_compiled(path: Path) -> None:
    """A one-line `SubmissionError` naming `path` if it is compiled code (module docstring)."""
    what = None
    if _compiled_name(path.name):
        what = "compiled code (bytecode or a native library)"
    else:
        with path.open("rb") as f:
            head = f.read(64)
            if head[:4] in NATIVE_MAGIC:
                what = NATIVE_MAGIC[head[:4]]
            elif head[:4] == importlib.util.MAGIC_NUMBER:
                what = "Python bytecode"
            elif head[:2] == b"MZ" and len(head) >= 64:
                offset = int.from_bytes(head[60:64], "little")
                f.seek(offset)
                if f.read(4) == b"PE\0\0":
                    what = "a Windows (PE) executable or library"
            elif head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
                what = _compiled_in_zip(path)
    if what is not None:
        raise SubmissionError(
            f"{path}: {what} in a submission folder; ship the source instead: only source "
            "code runs (a compiled file would run without anything a reader can check)"
        )


def _compiled_in_zip(path: Path) -> str | None:
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return None  # not an archive after all (or one nothing can import from)
    bad = sorted(n for n in names if _compiled_name(n))
    return f"a zip archive holding compiled code ('{bad[0]}')" if bad else None


def _check_link(root: Path, path: Path) -> None:
    if not path.resolve().is_relative_to(root):
        raise SubmissionError(f"{path}: a symlink pointing outside the submission folder")


def _digest(spec: SubmissionSpec, folder: Path) -> dict[str, Any]:
    return {
        "api": MODEL_API_VERSION,
        "spec": spec.model_dump(mode="json"),
        "files": folder_files(folder),
    }


def _fingerprint(digest: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(digest, sort_keys=True).encode()).hexdigest()[:32]
