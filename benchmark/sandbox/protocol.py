"""Framing between the harness and a sandboxed model: a JSON header, then raw array bytes.

Pipes carry only numbers and short strings: no pickle (a pickle from untrusted code is code), no clip
ids (a model that sees ids can look labels up). Each message is an 8-byte big-endian header length,
the UTF-8 JSON header, then `header["nbytes"]` bytes of little-endian array data.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

MAX_HEADER = 1 << 20
"""A header larger than this is a protocol violation (headers hold shapes and short messages)."""

PROTOCOL_VERSION = 1


def frames(header: dict[str, Any], *arrays: np.ndarray) -> list[bytes | memoryview]:
    """One message as buffers to write in order (the arrays' memory is sent without a copy)."""
    parts = [np.ascontiguousarray(a) for a in arrays]
    meta = [{"dtype": a.dtype.str, "shape": list(a.shape)} for a in parts]
    nbytes = sum(a.nbytes for a in parts)
    head = json.dumps({**header, "arrays": meta, "nbytes": nbytes}).encode("utf-8")
    return [
        struct.pack(">Q", len(head)) + head,
        *(memoryview(a).cast("B") for a in parts if a.size),
    ]


def encode(header: dict[str, Any], *arrays: np.ndarray) -> bytes:
    """One message as a single bytes object (for small messages)."""
    return b"".join(bytes(f) for f in frames(header, *arrays))


def header_length(prefix: bytes) -> int:
    (n,) = struct.unpack(">Q", prefix)
    if n > MAX_HEADER:
        raise ValueError(f"message header of {n} bytes exceeds {MAX_HEADER}")
    return int(n)


ALLOWED_DTYPES = frozenset({"<f4", "<f8", "<i8", "<i4", "|b1", "<f2"})


def decode_arrays(header: dict[str, Any], body: bytes | bytearray) -> list[np.ndarray]:
    """The arrays of a message, checked against the declared dtypes, shapes and byte count.

    A `bytearray` body gives writable arrays that share its memory (no copy)."""
    out = []
    offset = 0
    for meta in header.get("arrays", []):
        dtype = str(meta["dtype"])
        if dtype not in ALLOWED_DTYPES:
            raise ValueError(f"array dtype {dtype!r} not allowed")
        shape = tuple(int(s) for s in meta["shape"])
        if any(s < 0 for s in shape) or len(shape) > 4:
            raise ValueError(f"bad array shape {shape}")
        size = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        if offset + size > len(body):
            raise ValueError("message body shorter than its arrays")
        count = size // np.dtype(dtype).itemsize
        out.append(np.frombuffer(body, dtype=dtype, count=count, offset=offset).reshape(shape))
        offset += size
    if offset != len(body):
        raise ValueError("message body longer than its arrays")
    return out
