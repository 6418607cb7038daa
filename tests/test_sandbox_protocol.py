"""A hostile submission attacks the harness through the sandbox's pipes (issue 20, #5 and #8).

Each `model.py` below finds the protocol pipe (the child keeps it on a dup'd descriptor and points
fd 1 at stderr; a hostile model finds it in /proc/self/fd) and writes raw frames to it, or floods
stderr. Every attack must end as one `SubmissionError` line naming the folder, with no traceback
from a library, with the harness's memory flat, and with every process of the child gone by the
time the error is raised, even one that ignores SIGTERM and keeps running.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import torch
import yaml

from benchmark.errors import SubmissionError
from benchmark.scoring.models import Batch, load_submission
from benchmark.scoring.sandbox import SandboxLimits
from benchmark.scoring.sandbox.protocol import (
    MAX_REPLY_HEADER,
    ProtocolError,
    check_reply,
    check_request,
    parse_header,
)
from tests.hostile import PROTOCOL_FD
from tests.sandbox_required import sandbox_needed

pytestmark = sandbox_needed()

HOSTILE = r'''
import fcntl, json, os, signal, stat, struct, sys, threading, time

import torch

MARK = MARKER


def mark():
    """Name this process MARK (its children inherit it), so the test can look for survivors."""
    with open("/proc/self/comm", "w") as f:
        f.write(MARK)


PROTOCOL_FD


def write(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def send(head, body=b"", length=None):
    raw = head if isinstance(head, bytes) else json.dumps(head).encode()
    write(protocol_fd(), struct.pack(">Q", len(raw) if length is None else length) + raw + body)


def linger():
    """Keep running whatever the harness asks: SIGTERM ignored, a forked helper, a busy thread."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if os.fork() == 0:
        while True:
            time.sleep(0.1)
    threading.Thread(target=lambda: [time.sleep(0.1) for _ in iter(int, 1)]).start()


START = {"ok": True, "protocol": 1, "sample_rate": 16000, "parameters": None, "arrays": [], "nbytes": 0}


def reply(arrays, nbytes):
    return {"ok": True, "arrays": arrays, "nbytes": nbytes}


AT_START = {
    "deep_big": b'{"ok": true, "x": ' + b"[" * 300_000 + b"]" * 300_000 + b"}",
    "deep_small": b'{"ok": true, "x": ' + b"[" * 30_000 + b"]" * 30_000 + b"}",
    "deep_in_string": b'{"ok": true, "x": "' + b"[" * 60_000 + b'"}',
    "arrays_int": {**START, "arrays": 5},
    "not_json": b"\xff\xfe{{{ not json",
    "not_object": b"[1, 2, 3]",
    "huge_length": None,
    "ok_str": {**START, "ok": "yes"},
    "rate_str": {**START, "sample_rate": "16000"},
    "rate_huge": {**START, "sample_rate": 10**30},
    "rate_bool": {**START, "sample_rate": True},
    "rate_inf": json.dumps(START).replace('"sample_rate": 16000', '"sample_rate": 1e999').encode(),
    "nbytes_start": {**START, "nbytes": 2**31},
    "error_dict": {"ok": False, "error": {"a": [1]}, "arrays": [], "nbytes": 0},
    "many_digits": b'{"ok": true, "sample_rate": ' + b"9" * 50_000 + b"}",
}

AT_CALL = {
    "nbytes_2g": reply([{"dtype": "<f8", "shape": [3]}], 2**31),
    "shape_2g": reply([{"dtype": "<f8", "shape": [2**28]}], 2**31),
    "shape_inf": json.dumps(reply([{"dtype": "<f8", "shape": [0]}], 24))
    .replace("[0]", "[1e999]")
    .encode(),
    "shape_negative": reply([{"dtype": "<f8", "shape": [-3]}], 24),
    "shape_float": reply([{"dtype": "<f8", "shape": [3.0]}], 24),
    "shape_bool": reply([{"dtype": "<f8", "shape": [True, True, True]}], 24),
    "shape_huge": reply([{"dtype": "<f8", "shape": [2**80]}], 24),
    "shape_str": reply([{"dtype": "<f8", "shape": "3"}], 24),
    "shape_wrong": reply([{"dtype": "<f8", "shape": [4]}], 32),
    "shape_2d": reply([{"dtype": "<f8", "shape": [3, 1]}], 24),
    "dtype_int": reply([{"dtype": "<i8", "shape": [3]}], 24),
    "dtype_object": reply([{"dtype": "|O", "shape": [3]}], 24),
    "dtype_big_endian": reply([{"dtype": ">f8", "shape": [3]}], 24),
    "two_arrays": reply([{"dtype": "<f8", "shape": [3]}] * 2, 48),
    "no_array": reply([], 0),
    "arrays_int_call": reply(5, 24),
}


class Model:
    sample_rate = 16000

    def __init__(self, mode):
        self.mode = mode

    def score(self, batch):
        m = self.mode
        linger()
        if m == "truncated_exit":
            send(reply([{"dtype": "<f8", "shape": [len(batch)]}], 8 * len(batch)), b"\0" * 8)
            os._exit(0)
        if m == "truncated_hang":
            send(reply([{"dtype": "<f8", "shape": [len(batch)]}], 8 * len(batch)), b"\0" * 8)
            time.sleep(3600)
        send(AT_CALL[m])
        time.sleep(3600)


def build(mode, flood=0):
    mark()
    if mode == "stderr_flood":  # no newline, ever
        chunk = b"x" * (1 << 20)
        for _ in range(flood):
            write(2, chunk)
        raise ValueError("flooded")
    if mode == "load_fails_and_lingers":
        linger()
        raise ValueError("cannot build")
    if mode in AT_START:
        linger()
        if mode == "huge_length":
            send(b"{}", length=2**63)
        else:
            send(AT_START[mode])
        time.sleep(3600)
    return Model(mode)
'''
HOSTILE = HOSTILE.replace("\nPROTOCOL_FD\n", PROTOCOL_FD)


LIMITS = SandboxLimits(startup_timeout=60, call_timeout=20)


def _folder(tmp_path: Path, mode: str, **params: object) -> tuple[Path, str]:
    marker = "z" + uuid.uuid4().hex[:14]  # a process name is at most 15 characters
    folder = tmp_path / mode.replace("_", "-")
    folder.mkdir(parents=True)
    (folder / "model.py").write_text(HOSTILE.replace("MARKER", repr(marker)))
    spec = {
        "name": folder.name,
        "display_name": folder.name,
        "kind": "scalar",
        "entry": "model.py:build",
        "params": {"mode": mode, **params},
    }
    (folder / "submission.yaml").write_text(yaml.safe_dump(spec))
    return folder, marker


def _alive(marker: str) -> list[int]:
    """Processes (not zombies) named `marker`: the child and what it forked."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        if name == marker and stat[stat.rindex(")") + 2] != "Z":
            found.append(int(pid))
    return found


def _batch(n: int = 3) -> Batch:
    return Batch(torch.rand(n, 800), torch.tensor([800, 400, 200][:n]), 16000, ("x", "y", "z")[:n])


def _attack(folder: Path, marker: str, phase: str, limits: SandboxLimits = LIMITS) -> str:
    sub = load_submission(folder, limits=limits)
    try:
        if phase == "call":
            assert sub.model.sample_rate == 16000
        with pytest.raises(SubmissionError) as err:
            if phase == "start":
                sub.model.sample_rate  # noqa: B018 - starts the child
            else:
                sub.model.score(_batch())
        # ended before the error reached us: nothing of the child runs any more
        assert _alive(marker) == [], "the child outlived its failure"
        assert sub.model._proc is None
    finally:
        sub.close()
    message = str(err.value)
    assert message.startswith(f"{folder}: ") and "\n" not in message, message
    return message


START_ATTACKS = {
    "deep_big": r"start-up: bad reply from the model \(header of \d+ bytes exceeds 65536\)",
    "deep_small": r"start-up: bad reply .*nested deeper than 4",
    "deep_in_string": r"start-up: bad reply .*unknown field 'x'",
    "arrays_int": r"start-up: bad reply .*'arrays' must be a list, got 5",
    "not_json": r"start-up: bad reply .*not UTF-8 JSON",
    "not_object": r"start-up: bad reply .*not a JSON object",
    "huge_length": r"start-up: bad reply .*header of 9223372036854775808 bytes exceeds",
    "ok_str": r"start-up: bad reply .*'ok' must be true or false, got 'yes'",
    "rate_str": r"start-up: bad reply .*'sample_rate' must be an int in \[1, \d+\], got '16000'",
    "rate_huge": r"start-up: bad reply .*'sample_rate' must be an int",
    "rate_bool": r"start-up: bad reply .*'sample_rate' must be an int .*got True",
    "rate_inf": r"start-up: bad reply .*'sample_rate' must be an int .*got inf",
    "nbytes_start": r"start-up: bad reply .*'nbytes' is 2147483648, expected 0",
    "error_dict": r"start-up: bad reply .*'error' must be a string",
    "many_digits": r"start-up: bad reply .*not UTF-8 JSON",
}

CALL_ATTACKS = {
    "nbytes_2g": r"score\(\): bad reply .*'nbytes' is 2147483648, expected 24",
    "shape_2g": r"score\(\): bad reply .*returned shape \[268435456\], expected \[3\]",
    "shape_inf": r"score\(\): bad reply .*'shape' must be a list of ints, got \[inf\]",
    "shape_negative": r"score\(\): bad reply .*returned shape \[-3\], expected \[3\]",
    "shape_float": r"score\(\): bad reply .*'shape' must be a list of ints, got \[3.0\]",
    "shape_bool": r"score\(\): bad reply .*'shape' must be a list of ints, got \[True, True, True\]",
    "shape_huge": r"score\(\): bad reply .*returned shape \[1208925819614629174706176\], expected",
    "shape_str": r"score\(\): bad reply .*'shape' must be a list of ints, got '3'",
    "shape_wrong": r"score\(\): bad reply .*returned shape \[4\], expected \[3\]",
    "shape_2d": r"score\(\): bad reply .*returned shape \[3, 1\], expected \[3\]",
    "dtype_int": r"score\(\): bad reply .*dtype '<i8' .*expected one of '<f4', '<f8'",
    "dtype_object": r"score\(\): bad reply .*dtype '\|O'",
    "dtype_big_endian": r"score\(\): bad reply .*dtype '>f8'",
    "two_arrays": r"score\(\): bad reply .*2 arrays, expected 1",
    "no_array": r"score\(\): bad reply .*0 arrays, expected 1",
    "arrays_int_call": r"score\(\): bad reply .*'arrays' must be a list, got 5",
    "truncated_exit": r"score\(\): the reply was cut short after 8 of 24 bytes: .*exited",
    "truncated_hang": r"score\(\) took longer than 3 s \(timeout\)",
}


@pytest.mark.parametrize("mode", sorted(START_ATTACKS))
def test_a_malformed_start_up_reply_is_one_failure_line(tmp_path, mode):
    folder, marker = _folder(tmp_path, mode)
    message = _attack(folder, marker, "start")
    assert re.search(START_ATTACKS[mode], message), message
    assert "Traceback" not in message and "Error:" not in message.split("(stderr")[0], message


@pytest.mark.parametrize("mode", sorted(CALL_ATTACKS))
def test_a_malformed_call_reply_is_one_failure_line(tmp_path, mode):
    folder, marker = _folder(tmp_path, mode)
    limits = SandboxLimits(startup_timeout=60, call_timeout=3 if mode == "truncated_hang" else 20)
    message = _attack(folder, marker, "call", limits)
    assert re.search(CALL_ATTACKS[mode], message), message


def test_a_failed_load_whose_child_lingers_is_ended_before_the_error(tmp_path):
    """build() forks a helper, starts a thread that never ends and ignores SIGTERM, then raises:
    the interpreter would wait for the thread forever, and the harness waits for nothing."""
    folder, marker = _folder(tmp_path, "load_fails_and_lingers")
    message = _attack(folder, marker, "start")
    assert "building the model failed: ValueError: cannot build (model.py:" in message


HARNESS = r"""
import json, sys, time

import torch  # imported before measuring: it is not the attack's

from benchmark.errors import SubmissionError
from benchmark.scoring.models import Batch, load_submission
from benchmark.scoring.sandbox import SandboxLimits


def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024


folder, phase = sys.argv[1], sys.argv[2]
sub = load_submission(folder, limits=SandboxLimits(startup_timeout=120, call_timeout=20))
if phase == "call":
    assert sub.model.sample_rate == 16000
batch = Batch(torch.rand(3, 800), torch.tensor([800, 400, 200]), 16000, ("x", "y", "z"))
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the peak (VmHWM) restarts from the current RSS
before, start = status("VmRSS"), time.monotonic()
try:
    sub.model.sample_rate if phase == "start" else sub.model.score(batch)
    error = None
except SubmissionError as exc:
    error = str(exc)
print(json.dumps({"error": error, "growth": status("VmHWM") - before, "s": time.monotonic() - start}))
"""


def _harness_growth(folder: Path, phase: str) -> dict:
    """Run the harness in a process of its own and read how far its peak RSS rose."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, "-c", HARNESS, str(folder), phase],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_gigabytes_on_stderr_without_a_newline_leave_the_harness_flat(tmp_path):
    folder, marker = _folder(tmp_path, "stderr_flood", flood=1536)  # 1.5 GiB, one "line"
    got = _harness_growth(folder, "start")
    assert got["error"] and "building the model failed: ValueError: flooded" in got["error"]
    assert "(stderr: xxxx" in got["error"] and len(got["error"]) < 2000
    assert got["growth"] < 64 << 20, got  # 1.5 GiB went through; a few chunks at most were kept
    assert _alive(marker) == []


def test_a_reply_claiming_2_gib_allocates_nothing(tmp_path):
    folder, marker = _folder(tmp_path, "nbytes_2g")
    got = _harness_growth(folder, "call")
    assert got["error"] and "'nbytes' is 2147483648, expected 24" in got["error"]
    assert got["growth"] < 16 << 20, got
    assert got["s"] < 10, got  # refused at once, not after waiting for 2 GiB that never come
    assert _alive(marker) == []


# -- the checks themselves, without a child -----------------------------------------------------


def test_depth_is_checked_before_parsing_and_brackets_in_strings_do_not_count():
    assert parse_header(b'{"error": "' + b"[{" * 1000 + b'"}', 4) == {"error": "[{" * 1000}
    assert parse_header(b'{"e": "\\"[[[[[[[\\\\"}', 2) == {"e": '"[[[[[[[\\'}
    with pytest.raises(ProtocolError, match="nested deeper than 4"):
        parse_header(b"[" * 5 + b"]" * 5, 4)
    with pytest.raises(ProtocolError, match="nested deeper than 4"):
        parse_header(b'{"a": "x\\\\"' + b"[" * 5000, 4)  # an escaped backslash ends the string
    with pytest.raises(ProtocolError, match="nested deeper than 32"):  # never a RecursionError
        parse_header(b"[" * (MAX_REPLY_HEADER // 2) + b"]" * (MAX_REPLY_HEADER // 2), 32)


def test_a_valid_reply_passes_and_error_text_is_cut_to_one_line():
    head = {"ok": True, "arrays": [{"dtype": "<f4", "shape": [3]}], "nbytes": 12}
    assert check_reply(head, (3,)) == ("<f4", 12)
    start = {"ok": True, "protocol": 1, "sample_rate": 16000, "parameters": 5, "arrays": []}
    assert check_reply({**start, "nbytes": 0}, None) == (None, 0)
    failed = {
        "ok": False,
        "stage": "score",
        "error": "a\nb" + "x" * 5000,
        "arrays": [],
        "nbytes": 0,
    }
    check_reply(failed, (3,))
    assert failed["error"].startswith("a b") and len(failed["error"]) <= 501


def test_the_child_checks_what_the_harness_sends():
    waves = {"dtype": "<f4", "shape": [2, 100]}
    lengths = {"dtype": "<i8", "shape": [2]}
    good = {"op": "score", "arrays": [waves, lengths], "nbytes": 816}
    assert [m[1] for m in check_request(good)] == [(2, 100), (2,)]
    bad = [
        ({**good, "nbytes": 2**40}, "nbytes"),
        ({**good, "op": "exec"}, "unknown request"),
        ({**good, "arrays": [waves]}, "2 arrays"),
        ({**good, "arrays": [lengths, lengths]}, "dtype"),
        ({**good, "arrays": [waves, {"dtype": "<i8", "shape": [3]}]}, "batch"),
        ({**good, "arrays": [{"dtype": "<f4", "shape": [2, -1]}, lengths]}, "shape"),
        ({**good, "arrays": 5}, "list"),
    ]
    for head, what in bad:
        with pytest.raises(ProtocolError, match=what):
            check_request(head)


def test_the_child_refuses_a_malformed_request_before_reading_its_body():
    import io
    import struct

    from benchmark.scoring.sandbox.child import _receive
    from benchmark.scoring.sandbox.protocol import encode

    def frame(raw: bytes) -> io.BytesIO:
        return io.BytesIO(struct.pack(">Q", len(raw)) + raw)

    waves, lengths = torch.rand(2, 5).numpy(), torch.tensor([5, 3]).numpy()
    head, arrays = _receive(io.BytesIO(encode({"op": "score"}, waves, lengths)))
    assert head["op"] == "score" and (arrays[0] == waves).all() and list(arrays[1]) == [5, 3]
    with pytest.raises(ProtocolError, match="nested deeper than 32"):
        _receive(frame(b"[" * 300_000 + b"]" * 300_000))
    with pytest.raises(ProtocolError, match="exceeds"):
        _receive(io.BytesIO(struct.pack(">Q", 1 << 62)))
    claims = json.dumps({"op": "score", "arrays": [], "nbytes": 1 << 40}).encode()
    with pytest.raises(ProtocolError, match="score carries 2 arrays, got 0"):
        _receive(frame(claims))
    with pytest.raises(ProtocolError, match="start-up field 'folder'"):
        _receive(frame(b'{"folder": 5, "arrays": [], "nbytes": 0}'), setup=True)
