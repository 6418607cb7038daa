"""The process that runs a submission's code: inside bubblewrap, under the sandbox's limits.

Started by `benchmark.scoring.sandbox.host` through `benchmark.scoring.sandbox.launch` (which joins the cgroup,
sets the rlimits, drops to the sandbox's user, sets no-new-privileges and the seccomp filter,
all before this interpreter starts, so nothing here or in the submission can raise them) as
`python -I -B -m benchmark.scoring.sandbox.child`, with the submission folder, the Python environment
and this package visible read-only, a private /tmp, no network and nothing of `$MOSRM_HOME`. It
builds the model, then answers requests on a private copy of fd 0/1 until told to stop. The
model's own prints go to stderr (fd 1 is pointed there, so they cannot corrupt the protocol).
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import os
import sys
import traceback
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from benchmark.scoring.sandbox.protocol import (
    MAX_HEADER,
    PROTOCOL_VERSION,
    REQUEST_DEPTH,
    ProtocolError,
    check_request,
    check_setup,
    decode_arrays,
    frames,
    header_length,
    parse_header,
)


def _read_exact(stream: io.RawIOBase, n: int) -> bytearray:
    data = bytearray(n)
    view = memoryview(data)
    got = 0
    while got < n:
        k = stream.readinto(view[got:])
        if not k:
            raise EOFError("harness closed the pipe")
        got += k
    return data


def _receive(
    stream: io.RawIOBase, *, setup: bool = False, shared: tuple[int, int] | None = None
) -> tuple[dict[str, Any], list[np.ndarray]]:
    """The next request (or, with `setup`, the start-up header), checked before its body is read
    (`protocol.check_request`): the harness is trusted, but a check costs nothing. A request
    marked shared has its arrays in the shared memory (`sandbox.shared`: fd, size)."""
    size = header_length(_read_exact(stream, 8), MAX_HEADER)
    head = parse_header(_read_exact(stream, size), REQUEST_DEPTH)
    if setup:
        check_setup(head)
        return head, []
    metas = check_request(head)
    if head.get("shared"):
        from benchmark.scoring.sandbox.shared import child_view

        if shared is None or not 0 < head["nbytes"] <= shared[1]:
            raise ProtocolError("a shared-memory request without (enough) shared memory")
        return head, decode_arrays(metas, child_view(shared[0], shared[1], head["nbytes"]))
    return head, decode_arrays(metas, _read_exact(stream, head["nbytes"]))


def _source_only(folder: Path) -> type:
    """Imports from `folder` read `.py` source only: no bytecode (a `__pycache__` entry, a lone
    sourceless `.pyc`) and no extension module of the folder is ever loaded, even one the
    harness's refusal (`models.folder_files`) missed. The rest of the environment keeps its
    caches."""
    from importlib.machinery import SOURCE_SUFFIXES, FileFinder, SourceFileLoader

    class SourceOnly(SourceFileLoader):
        def get_code(self, fullname: str) -> Any:
            path = self.get_filename(fullname)
            return self.source_to_code(self.get_data(path), path)

    root = str(folder)

    def hook(path: str) -> FileFinder:
        where = os.path.abspath(path or ".")
        if where != root and not where.startswith(root + os.sep):
            raise ImportError("not the submission folder")
        return FileFinder(where, (SourceOnly, SOURCE_SUFFIXES))

    sys.path_hooks.insert(0, hook)
    sys.path_importer_cache.clear()
    return SourceOnly


def build(setup: dict[str, Any]) -> Any:
    """Import the entry and call its factory with the params.

    `file.py:callable`: the folder's own file, its sibling modules importable (source only). A
    module entry (`benchmark.baselines.x:callable`, a stranger's folder naming a reference
    adapter): imported from the read-only package, with the params the harness resolved (files
    of the folder as absolute paths, hub ids as the snapshots it fetched). Either way the hub
    libraries are offline: the sandbox has no network, and outside it (`--unsafe-no-sandbox`)
    nothing is fetched behind the fingerprint's back."""
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[key] = "1"
    from benchmark.scoring.interfaces import ImplicitAsScalar
    from benchmark.scoring.spec import is_module_entry

    folder = Path(setup["folder"])
    target, _, attr = str(setup["entry"]).partition(":")
    if is_module_entry(setup["entry"]):
        module = importlib.import_module(target)
    else:
        if not target.endswith(".py"):
            raise ImportError(f"'{target}' is neither a file of the folder nor a reference adapter")
        code = folder / target
        name = "mosrm_submission"
        loader = _source_only(folder)(name, str(code))
        spec = importlib.util.spec_from_file_location(name, code, loader=loader)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {code}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        sys.path.insert(0, str(folder))  # sibling modules of the entry file import as usual
        spec.loader.exec_module(module)
    factory = getattr(module, attr, None)
    if factory is None:
        raise AttributeError(f"'{target}' has no '{attr}'")
    kwargs = dict(setup.get("params") or {})
    if setup.get("weights"):
        kwargs["weights_path"] = folder / setup["weights"]
    model = factory(**kwargs)
    if setup["kind"] == "implicit":
        for need in ("policy_logp", "reference_logp", "beta", "sample_rate"):
            if not hasattr(model, need):
                raise TypeError(f"kind 'implicit' but the model has no {need}")
        model = ImplicitAsScalar(model)
    method = "prefer" if setup["kind"] == "pairwise" else "score"
    if not callable(getattr(model, method, None)):
        raise TypeError(f"kind '{setup['kind']}' but the model has no {method}()")
    sr = getattr(model, "sample_rate", None)
    if not isinstance(sr, int) or isinstance(sr, bool) or sr <= 0:
        raise TypeError(f"sample_rate must be a positive int, got {sr!r}")
    return model


class _Runner:
    """Turns requests into model calls; batches get opaque ids that are unique within the run."""

    def __init__(self, model: Any, setup: dict[str, Any]) -> None:
        import torch

        self.torch = torch
        self.model = model
        self.sr = int(model.sample_rate)
        self.device = torch.device(setup.get("device") or "cpu")
        self.bf16 = bool(setup.get("bf16")) and self.device.type == "cuda"
        self.counter = 0
        if hasattr(model, "to"):
            moved = model.to(self.device)
            if moved is not None:
                self.model = moved
        if isinstance(self.model, torch.nn.Module):
            self.model.eval()

    def _batch(self, waves: np.ndarray, lengths: np.ndarray) -> Any:
        from benchmark.data.batch import Batch

        ids = tuple(str(self.counter + i) for i in range(len(lengths)))
        self.counter += len(lengths)
        return Batch(
            self.torch.from_numpy(waves).to(self.device),
            self.torch.from_numpy(lengths.astype(np.int64)).to(self.device),
            self.sr,
            ids,
        )

    def call(self, op: str, arrays: list[np.ndarray]) -> np.ndarray:
        torch = self.torch
        autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16)
            if self.bf16
            else torch.autocast("cpu", enabled=False)
        )
        with torch.inference_mode(), autocast:
            if op == "score":
                out = self.model.score(self._batch(arrays[0], arrays[1]))
            elif op == "prefer":
                a = self._batch(arrays[0], arrays[1])
                b = self._batch(arrays[2], arrays[3])
                out = self.model.prefer(a, b)
            else:
                raise ValueError(f"unknown request {op!r}")
        if not isinstance(out, torch.Tensor):  # the contract is Tensor[B]; say so, do not guess
            raise TypeError(
                f"{op}() returned {type(out).__name__}, not a torch.Tensor of shape [B]"
            )
        return np.asarray(out.detach().to("cpu", torch.float64).numpy())


def _parameters(model: Any) -> int | None:
    inner = getattr(model, "model", model)  # behind ImplicitAsScalar
    params = getattr(inner, "parameters", None)
    try:
        return int(sum(p.numel() for p in params())) if callable(params) else None
    except Exception:  # not a torch module
        return None


def _reply(out: BinaryIO, header: dict[str, Any], *arrays: np.ndarray) -> None:
    for frame in frames(header, *arrays):
        out.write(frame)
    out.flush()


def _error(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" ({Path(tb[-1].filename).name}:{tb[-1].lineno})" if tb else ""
    text = f"{type(exc).__name__}: {exc}".strip()
    return (text[:500] + where).replace("\n", " ")


def main() -> int:
    proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # the model's prints must not corrupt the protocol
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    sys.dont_write_bytecode = True
    try:
        setup, _ = _receive(proto_in, setup=True)
        runner = _Runner(build(setup), setup)
    except BaseException as exc:  # anything the submission does is reported
        _reply(proto_out, {"ok": False, "stage": "build", "error": _error(exc)})
        return 3
    _reply(
        proto_out,
        {
            "ok": True,
            "protocol": PROTOCOL_VERSION,
            "sample_rate": runner.sr,
            "parameters": _parameters(runner.model),
        },
    )
    memory = setup.get("shared_memory") or {}
    fd, size = memory.get("fd"), memory.get("bytes")
    shared = (fd, size) if type(fd) is int and type(size) is int else None
    while True:
        try:
            head, arrays = _receive(proto_in, shared=shared)
        except EOFError:
            return 0
        except ProtocolError as exc:
            _reply(proto_out, {"ok": False, "stage": "request", "error": f"bad request: {exc}"})
            return 5
        if head.get("op") == "close":
            return 0
        try:
            result = runner.call(str(head.get("op")), arrays)
        except BaseException as exc:  # SystemExit, MemoryError, ... from the model
            _reply(proto_out, {"ok": False, "stage": head.get("op"), "error": _error(exc)})
            return 4
        _reply(proto_out, {"ok": True}, result)


if __name__ == "__main__":
    sys.exit(main())
