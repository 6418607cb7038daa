"""Framing between the harness and a sandboxed model: a JSON header, then raw array bytes.

Pipes carry only numbers and short strings: no pickle (a pickle from untrusted code is code), no clip
ids (a model that sees ids can look labels up). Each message is an 8-byte big-endian header length,
the UTF-8 JSON header, then `header["nbytes"]` bytes of little-endian array data.

Both ends check what they receive before they allocate for it, and the harness trusts nothing the
child sends: a reply's header is capped (`MAX_REPLY_HEADER`), its nesting is checked in the raw
bytes before it is parsed (`parse_header`), and its fields, array count, dtype, shape and byte count
must be exactly those of the reply the harness asked for (`check_reply`), so the only body it ever
reads is the one array it expects. The child checks the harness's requests as cheaply
(`check_request`, `check_setup`). Every violation is a `ProtocolError` with a one-line reason.
"""

from __future__ import annotations

import json
import math
import re
import struct
from typing import Any

import numpy as np

MAX_HEADER = 1 << 20
"""Largest header the child accepts from the harness: the start-up header carries the submission's
`params`, written by its author (a long list of numbers is possible)."""

MAX_REPLY_HEADER = 64 << 10
"""Largest header the harness accepts from the child. A reply header holds a few fields and one
array's shape (under 200 bytes); the longest honest one is a failure, whose message the child cuts
to 500 characters plus a file name (a few KiB even if JSON escapes every character as \\uXXXX), so
64 KiB leaves ample room while what the harness reads and parses per frame stays trivial."""

REPLY_DEPTH = 4
"""Nesting of a reply header: {"arrays": [{"shape": [...]}]}."""

REQUEST_DEPTH = 32
"""Nesting the child accepts: the start-up header's `params` come from the submission's YAML."""

MAX_ERROR = 500
"""A failure reply's message is cut to this many characters, on one line."""

MAX_SAMPLE_RATE = 384_000
"""The highest rate audio hardware and formats commonly use; the harness resamples every clip to
the model's rate, so an absurd one would make it allocate without bound."""

REPLY_DTYPES = ("<f4", "<f8")
"""What a score or preference array may be: little-endian float32 or float64."""

MAX_DIM = 1 << 40
"""Largest dimension the child accepts in a request (its memory limit bounds the rest)."""

PROTOCOL_VERSION = 1


class ProtocolError(ValueError):
    """A message that breaks the protocol; its text is one short line."""


def frames(header: dict[str, Any], *arrays: np.ndarray) -> list[bytes | memoryview]:
    """One message as buffers to write in order (the arrays' memory is sent without a copy)."""
    parts = [np.ascontiguousarray(a) for a in arrays]
    meta = [{"dtype": a.dtype.str, "shape": list(a.shape)} for a in parts]
    nbytes = sum(a.nbytes for a in parts)
    head = json.dumps({**header, "arrays": meta, "nbytes": nbytes}).encode("utf-8")
    return [
        struct.pack(">Q", len(head)) + head,
        *(memoryview(a.data).cast("B") for a in parts if a.size),
    ]


def shared_frames(header: dict[str, Any], *arrays: np.ndarray) -> list[bytes | memoryview]:
    """A message whose arrays were written to the shared memory (`sandbox.shared`): the header
    describes them, with `"shared": true`, and no body follows."""
    meta = [{"dtype": a.dtype.str, "shape": list(a.shape)} for a in arrays]
    nbytes = sum(a.nbytes for a in arrays)
    head = {**header, "shared": True, "arrays": meta, "nbytes": nbytes}
    raw = json.dumps(head).encode("utf-8")
    return [struct.pack(">Q", len(raw)) + raw]


def encode(header: dict[str, Any], *arrays: np.ndarray) -> bytes:
    """One message as a single bytes object (for small messages)."""
    return b"".join(bytes(f) for f in frames(header, *arrays))


def header_length(prefix: bytes | bytearray, limit: int = MAX_HEADER) -> int:
    """The header length a message's 8-byte prefix announces, at most `limit`."""
    (n,) = struct.unpack(">Q", prefix)
    if n > limit:
        raise ProtocolError(f"header of {n} bytes exceeds {limit}")
    return int(n)


# a JSON string (possibly the unterminated last one); possessive, so it never backtracks
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.S)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPEN = frozenset(b"[{")


def parse_header(raw: bytes | bytearray, max_depth: int) -> dict[str, Any]:
    """A header as a dict; nested more than `max_depth` deep, not UTF-8 JSON, or not an object
    is a `ProtocolError`.

    The depth is counted in the raw bytes before `json` sees them (brackets inside strings do not
    count), so parsing never recurses deeper than `max_depth`. Catching `RecursionError` alone
    would not do: where it strikes depends on the caller's stack depth, on the recursion limit
    (which libraries raise) and on the interpreter (3.12 counts C recursion apart); a raised limit
    lets the C parser overflow a thread's stack and crash the harness rather than raise; and a
    structure just under the limit parses, then blows up whatever walks it next (a repr in a
    message, a check, a JSON record). `RecursionError` is still caught, as a second line."""
    raw = bytes(raw)
    if raw.count(b"[") + raw.count(b"{") > max_depth:  # else it cannot be deeper: skip the scan
        depth = 0
        for c in _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS):
            depth += 1 if c in _OPEN else -1
            if depth > max_depth:
                raise ProtocolError(f"header nested deeper than {max_depth}")
    try:
        head = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ProtocolError(f"header is not UTF-8 JSON ({_one_line(str(exc), 120)})") from None
    if not isinstance(head, dict):
        raise ProtocolError(f"header is not a JSON object but {type(head).__name__}")
    return head


def check_reply(head: dict[str, Any], shape: tuple[int, ...] | None) -> tuple[str | None, int]:
    """Check a reply header against the reply the harness asked for, before any body is read.

    `shape`: that of the one float array (`REPLY_DTYPES`) an ok reply to a call carries; None for
    the start-up reply, which carries no array but `protocol`, `sample_rate` and `parameters`. A
    failure reply carries no array, an `error` (cut here, in `head`, to one line of `MAX_ERROR`
    characters) and an optional `stage`. Returns the array's dtype (None without one) and the
    size of the body, the only size the harness then reads."""
    ok = head.get("ok")
    if type(ok) is not bool:
        raise ProtocolError(f"'ok' must be true or false, got {_show(ok)}")
    allowed: tuple[str, ...]
    if not ok:
        allowed = ("ok", "stage", "error", "arrays", "nbytes")
    elif shape is None:
        allowed = ("ok", "protocol", "sample_rate", "parameters", "arrays", "nbytes")
    else:
        allowed = ("ok", "arrays", "nbytes")
    unknown = [k for k in head if k not in allowed]
    if unknown:
        raise ProtocolError(f"unknown field {_show(unknown[0])}")
    arrays = head.get("arrays")
    if type(arrays) is not list:
        raise ProtocolError(f"'arrays' must be a list, got {_show(arrays)}")
    want = 1 if ok and shape is not None else 0
    if len(arrays) != want:
        raise ProtocolError(f"{len(arrays)} arrays, expected {want}")
    dtype, nbytes = None, 0
    if want:
        assert shape is not None
        meta = arrays[0]
        if type(meta) is not dict or sorted(meta) != ["dtype", "shape"]:
            raise ProtocolError(f"an array must be {{dtype, shape}}, got {_show(meta)}")
        dtype, got = meta["dtype"], meta["shape"]
        if type(dtype) is not str or dtype not in REPLY_DTYPES:
            raise ProtocolError(
                f"array dtype {_show(dtype)} is not allowed, expected one of '<f4', '<f8'"
            )
        if type(got) is not list or any(type(s) is not int for s in got):
            raise ProtocolError(f"'shape' must be a list of ints, got {_show(got)}")
        if tuple(got) != shape:
            raise ProtocolError(f"returned shape {_show(got)}, expected {list(shape)}")
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    if type(head.get("nbytes")) is not int or head["nbytes"] != nbytes:
        raise ProtocolError(f"'nbytes' is {_show(head.get('nbytes'))}, expected {nbytes}")
    if not ok:
        error, stage = head.get("error"), head.get("stage")
        if type(error) is not str:
            raise ProtocolError(f"'error' must be a string, got {_show(error)}")
        if stage is not None and type(stage) is not str:
            raise ProtocolError(f"'stage' must be a string, got {_show(stage)}")
        head["error"] = _one_line(error, MAX_ERROR)
    elif shape is None:
        if head.get("protocol") != PROTOCOL_VERSION or type(head.get("protocol")) is not int:
            raise ProtocolError(
                f"'protocol' is {_show(head.get('protocol'))}, expected {PROTOCOL_VERSION}"
            )
        rate = head.get("sample_rate")
        if type(rate) is not int or not 1 <= rate <= MAX_SAMPLE_RATE:
            raise ProtocolError(
                f"'sample_rate' must be an int in [1, {MAX_SAMPLE_RATE}], got {_show(rate)}"
            )
        count = head.get("parameters")
        if count is not None and (type(count) is not int or not 0 <= count < 1 << 62):
            raise ProtocolError(f"'parameters' must be a count or null, got {_show(count)}")
    return dtype, nbytes


_REQUESTS = {"score": 1, "prefer": 2, "close": 0}
"""Each request the harness makes, and how many batches (waveforms, lengths) it carries."""


def check_request(head: dict[str, Any]) -> list[tuple[str, tuple[int, ...]]]:
    """The child's check of a request: a known op, and per batch float32 waveforms [B, T] and
    int64 lengths [B], with `nbytes` their size. Returns the arrays' (dtype, shape)."""
    op = head.get("op")
    if type(op) is not str or op not in _REQUESTS:
        raise ProtocolError(f"unknown request {_show(op)}")
    unknown = [k for k in head if k not in ("op", "arrays", "nbytes", "shared")]
    if head.get("shared", False) not in (True, False):
        raise ProtocolError(f"'shared' must be true or false, got {_show(head.get('shared'))}")
    if unknown:
        raise ProtocolError(f"unknown field {_show(unknown[0])}")
    arrays = head.get("arrays")
    if type(arrays) is not list:
        raise ProtocolError(f"'arrays' must be a list, got {_show(arrays)}")
    if len(arrays) != 2 * _REQUESTS[op]:
        raise ProtocolError(f"{op} carries {2 * _REQUESTS[op]} arrays, got {len(arrays)}")
    metas: list[tuple[str, tuple[int, ...]]] = []
    for i, meta in enumerate(arrays):
        dtype, ndim = ("<f4", 2) if i % 2 == 0 else ("<i8", 1)
        if type(meta) is not dict or meta.get("dtype") != dtype:
            raise ProtocolError(f"array {i}: expected dtype {dtype}, got {_show(meta)}")
        shape = meta.get("shape")
        if (
            type(shape) is not list
            or len(shape) != ndim
            or any(type(s) is not int or not 0 <= s <= MAX_DIM for s in shape)
        ):
            raise ProtocolError(f"array {i}: bad shape {_show(shape)}")
        metas.append((dtype, tuple(shape)))
    for (_, waves), (_, lengths) in zip(metas[::2], metas[1::2], strict=True):
        if waves[0] != lengths[0]:
            raise ProtocolError(f"a batch of {waves[0]} waveforms but {lengths[0]} lengths")
    nbytes = sum(math.prod(shape) * np.dtype(dtype).itemsize for dtype, shape in metas)
    if type(head.get("nbytes")) is not int or head["nbytes"] != nbytes:
        raise ProtocolError(f"'nbytes' is {_show(head.get('nbytes'))}, expected {nbytes}")
    return metas


def check_setup(head: dict[str, Any]) -> None:
    """The child's check of the start-up header: the fields it uses, of their types, no arrays
    (fields it does not know are left to whoever added them)."""
    none = type(None)
    for key, kinds in (
        ("folder", str),
        ("entry", str),
        ("kind", str),
        ("device", (str, none)),
        ("bf16", (bool, none)),
        ("params", (dict, none)),
        ("weights", (str, none)),
        ("shared_memory", (dict, none)),
    ):
        if not isinstance(head.get(key), kinds):
            raise ProtocolError(f"start-up field {key!r} is {_show(head.get(key))}")
    if head.get("arrays") != [] or head.get("nbytes") != 0:
        raise ProtocolError("the start-up header carries no arrays")


def decode_arrays(
    metas: list[tuple[str, tuple[int, ...]]], body: bytes | bytearray | memoryview
) -> list[np.ndarray]:
    """The arrays of a checked message (`check_request`) in its body, whose size it matches.

    A `bytearray` body gives writable arrays that share its memory (no copy)."""
    out = []
    offset = 0
    for dtype, shape in metas:
        count = math.prod(shape)
        out.append(np.frombuffer(body, dtype=dtype, count=count, offset=offset).reshape(shape))
        offset += count * np.dtype(dtype).itemsize
    if offset != len(body):
        raise ProtocolError("message body does not match its arrays")
    return out


def _one_line(text: str, limit: int) -> str:
    """`text` cut to `limit` printable characters on one line."""
    text = "".join(c if c.isprintable() else " " for c in text[: 4 * limit])
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _show(value: object) -> str:
    """A short repr of something a hostile child sent (its depth is already bounded)."""
    return _one_line(repr(value), 80)
