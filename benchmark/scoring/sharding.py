"""Scoring sharded over processes and machines (`torchrun`): whole batches per rank, rank 0 writes.

`mosrm evaluate … --nproc N` relaunches itself as `torchrun --standalone --nproc-per-node N -m
benchmark.cli evaluate …` (`launch`); `torchrun … -m benchmark.cli evaluate …` works directly, on
one node or several (torchrun's rendezvous). Every rank runs the same evaluation (SPMD, as the
training loop does), and the scoring loop asks this module at three points:

- after reading the score cache (`agree_cached`): the ranks check that they score the same model on
  the same clips and audio (a digest of the cache keys: a node with other data or another
  submission is a one-line error, not a silent mix), and pool what their caches hold, so a unit any
  rank has cached is not computed again (node-local caches are merged into rank 0's);
- once the units to compute are bucketed (`ShardGroup.run`): the buckets, exactly the batches one
  process would run, are dealt out whole by total audio length (`split_shards`), so a model whose
  last bits depend on its batch partners (padding width: the log-mel CNN does) still gives
  byte-identical scores, and so byte-identical results;
- after a rank's share (`ShardGroup.run`, again): every rank gets every score over the process
  group (nothing here needs a shared filesystem), rank 0 puts the other ranks' scores into its
  cache, and an error on any rank is raised on every rank, so all go on in step (the same failure
  is recorded once, by rank 0) instead of waiting on each other.

Each rank also commits every finished batch to the cache it opened, as one process does: on one
node that is the shared `$MOSRM_HOME/scores.sqlite`, so a rank that dies (an exception, SIGKILL)
loses nothing it finished, and a rerun computes only what is missing. On several nodes each keeps
its own cache, which the next run's `agree_cached` merges.

Only rank 0 writes results, predictions, run records and failure records (`writes_results`); the
other ranks print nothing to stdout. Collectives run over gloo on CPU tensors even on GPU nodes
(the scores are a few floats; NCCL would need them on the device), with a timeout
(`$MOSRM_DIST_TIMEOUT` seconds, default `DEFAULT_TIMEOUT_S`) so that a hung rank fails the run
instead of stalling it; a peer that disappears fails the collective at once, and torchrun stops the
other ranks. Either way the run ends with a one-line `MachineError` or torchrun's non-zero exit,
and a rerun resumes from the cache. Exchanges use JSON bytes in uint8 tensors, never pickle.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from benchmark.errors import DataError, MachineError, MosrmError, SubmissionError

TIMEOUT_ENV = "MOSRM_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 1800
"""Seconds a rank waits for the others in one exchange: longer than any imbalance between the
ranks' shares should be (they are balanced), short enough that a hung rank ends the run."""

Put = Callable[[list[tuple[Any, Any]]], None]
"""Commits finished (key, value) items to the score cache (`scoring.ScoreCache.put_*`)."""

_ERRORS: dict[str, type[Exception]] = {
    cls.__name__: cls for cls in (MosrmError, MachineError, DataError, SubmissionError)
}
"""Errors re-raised on every rank with the failing rank's class and message."""


def split_shards(weights: Sequence[float], world: int) -> list[list[int]]:
    """Item indices per rank: longest first onto the least-loaded rank, each index exactly once.

    Deterministic (ties: the lower index first, onto the lower rank), so every rank computes the
    same split on its own; each rank's list is ascending, so it runs its batches in plan order.
    No rank ends more than the heaviest item above the lightest.
    """
    if world < 1:
        raise ValueError(f"world size must be >= 1, got {world}")
    loads = [(0.0, rank) for rank in range(world)]
    shares: list[list[int]] = [[] for _ in range(world)]
    for i in sorted(range(len(weights)), key=lambda i: (-weights[i], i)):
        load, rank = heapq.heappop(loads)
        shares[rank].append(i)
        heapq.heappush(loads, (load + float(weights[i]), rank))
    return [sorted(s) for s in shares]


@dataclass
class ShardGroup:
    """This process's place in a sharded run, and the exchanges the scoring loop makes through it."""

    rank: int
    world: int
    local_rank: int
    group: Any = None
    """The gloo process group of the exchanges (None: the default group)."""
    batches: list[list[int]] | None = field(default=None, repr=False)
    """While this rank scores its share: its buckets, the batches `scoring._run_units` runs."""

    @property
    def main(self) -> bool:
        return self.rank == 0

    # ----------------------------------------------------------------------------- exchanges

    def all_gather_bytes(self, data: bytes) -> list[bytes]:
        """`data` of every rank, in rank order (uint8 tensors over gloo: no pickle)."""
        import torch
        import torch.distributed as dist

        try:
            size = torch.tensor([len(data)], dtype=torch.int64)
            sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(self.world)]
            dist.all_gather(sizes, size, group=self.group)
            longest = max(int(s) for s in sizes)
            mine = torch.zeros(longest, dtype=torch.uint8)
            if data:
                mine[: len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
            parts = [torch.empty(longest, dtype=torch.uint8) for _ in range(self.world)]
            dist.all_gather(parts, mine, group=self.group)
        except RuntimeError as exc:  # gloo: a peer died, hung past the timeout, or hung up
            raise MachineError(
                f"sharded scoring: rank {self.rank} of {self.world} lost the other ranks "
                f"({_one_line(exc)}); scores finished so far are cached: rerun to resume"
            ) from None
        return [bytes(p[: int(s)].numpy().tobytes()) for p, s in zip(parts, sizes, strict=True)]

    def agree_cached(self, what: str, keys: Sequence[Any], have: dict[Any, Any], put: Put) -> None:
        """Check that every rank scores `what` (model fingerprint and preprocessing) on the same
        `keys`, and pool the ranks' cache hits into `have` on every rank (rank 0 `put`s the ones
        its cache lacked), so that the units left to compute are the same everywhere."""
        plan = _digest([what, list(keys)])
        found = [[k, have[k]] for k in keys if k in have]
        mine = json.dumps([plan, _digest(found)]).encode()
        answers = [json.loads(b) for b in self.all_gather_bytes(mine)]
        odd = [r for r, (p, _) in enumerate(answers) if p != answers[0][0]]
        if odd:
            raise MachineError(
                f"sharded scoring: rank {odd[0]} of {self.world} is not scoring what rank 0 is "
                "(another submission, or other clips or audio): every node needs the same task "
                "data, submissions and options"
            )
        if all(f == answers[0][1] for _, f in answers):
            return  # the usual case: one node, one cache file
        pooled: dict[Any, Any] = {}
        for payload in self.all_gather_bytes(json.dumps(found).encode()):
            for key, value in json.loads(payload):
                pooled.setdefault(_tuples(key), _tuples(value))  # the lowest rank's value
        new = [(k, v) for k, v in pooled.items() if k not in have]
        have.update(new)
        if self.main and new:
            put(new)

    def run(
        self,
        plan: Sequence[list[int]],
        weights: Sequence[float],
        score: Callable[[list[int], Put], None],
        have: dict[Any, Any],
        put: Put,
    ) -> None:
        """Score this rank's buckets of `plan` (`split_shards` by `weights`), then pool the scores.

        `score(units, put)` runs the scoring loop on `units` (this rank's share, ascending) while
        `batches` holds its buckets, committing each batch with `put`. Afterwards every rank's
        items are in `have` on every rank and in rank 0's cache, and if any rank failed, the lowest
        failing rank's error is raised on every rank (its own exception where it happened).
        """
        mine = [list(plan[k]) for k in split_shards(weights, self.world)[self.rank]]
        done: list[tuple[Any, Any]] = []

        def record(items: list[tuple[Any, Any]]) -> None:
            put(items)  # committed here first: a rank killed later keeps this batch
            done.extend(items)

        failure: BaseException | None = None
        self.batches = mine
        try:
            if mine:
                score(sorted(u for b in mine for u in b), record)
        except (Exception, SystemExit) as exc:
            failure = exc
            if not isinstance(exc, MosrmError | SystemExit) and not self.main:
                traceback.print_exception(exc, file=sys.stderr)  # rank 0 records only its text
        finally:
            self.batches = None
        payload = {"items": done, "error": None if failure is None else _describe(failure)}
        answers = [json.loads(b) for b in self.all_gather_bytes(json.dumps(payload).encode())]
        others = [
            (_tuples(k), _tuples(v))
            for r, a in enumerate(answers)
            if r != self.rank
            for k, v in a["items"]
        ]
        have.update(others)
        if self.main and others:
            put(others)  # the finished work of every rank survives a failure on any of them
        failed = [(r, a["error"]) for r, a in enumerate(answers) if a["error"] is not None]
        if failed:
            rank, error = failed[0]
            if rank == self.rank and failure is not None:
                raise failure
            raise _rebuild(rank, error)


# ---------------------------------------------------------------------------------------------
# the active group


_ACTIVE: ShardGroup | None = None


def active() -> ShardGroup | None:
    """The group of the sharded run in progress, or None (one process)."""
    return _ACTIVE


def writes_results() -> bool:
    """Whether this process writes results (always, except on ranks other than 0 of a shard run)."""
    return _ACTIVE is None or _ACTIVE.main


@contextmanager
def activated(group: ShardGroup | None) -> Iterator[ShardGroup | None]:
    """Make `group` the active one inside the block (None: score in this process alone)."""
    global _ACTIVE
    before, _ACTIVE = _ACTIVE, group
    try:
        yield group
    finally:
        _ACTIVE = before


def under_torchrun() -> bool:
    """Whether torchrun started this process as one of several ranks."""
    return _env_int("WORLD_SIZE", 1) > 1


def timeout_s() -> float:
    raw = os.environ.get(TIMEOUT_ENV, "")
    if not raw:
        return float(DEFAULT_TIMEOUT_S)
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise MosrmError(f"${TIMEOUT_ENV}: expected a positive number of seconds, got '{raw}'")
    return value


def join_from_env() -> ShardGroup | None:
    """This rank's group when torchrun started several (None when alone): gloo, with the timeout."""
    if not under_torchrun():
        return None
    from datetime import timedelta

    import torch.distributed as dist

    timeout = timedelta(seconds=timeout_s())
    try:
        if not dist.is_initialized():
            dist.init_process_group("gloo", timeout=timeout)
        group = None if dist.get_backend() == "gloo" else dist.new_group(backend="gloo")
    except (RuntimeError, ValueError) as exc:
        raise MachineError(
            f"sharded scoring: could not join the torchrun job ({_one_line(exc)})"
        ) from None
    return ShardGroup(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", 0), group)


def leave(group: ShardGroup | None) -> None:
    """Tear the default process group down after a run that went through (no-op when alone)."""
    if group is None:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def rank_device(device: str, group: ShardGroup | None) -> str:
    """The scoring device of this rank: `auto` and `cuda` mean cuda:LOCAL_RANK (modulo the GPUs
    present) when CUDA is there, else `auto` is the CPU; an explicit device is kept."""
    if group is None or device not in ("auto", "cuda"):
        return device
    import torch

    if not torch.cuda.is_available():
        return "cpu" if device == "auto" else device
    index = group.local_rank % torch.cuda.device_count()
    torch.cuda.set_device(index)  # for models that call .cuda() without an index
    return f"cuda:{index}"


def launch(nproc: int, argv: Sequence[str]) -> int:
    """Run `mosrm <argv>` (without --nproc) as `nproc` torchrun ranks on this machine; its exit
    status, with one line saying what to do when it is not 0."""
    import subprocess

    args = _without_nproc(list(argv))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd += [f"--nproc-per-node={nproc}", "-m", "benchmark.cli", *args]
    env = dict(os.environ)
    # torchrun would give each rank one thread; on the CPU the ranks share the cores instead
    env.setdefault("OMP_NUM_THREADS", str(max(1, len(os.sched_getaffinity(0)) // nproc)))
    sys.stdout.flush()
    rc = subprocess.run(cmd, env=env, check=False).returncode
    if rc != 0:
        from benchmark.errors import MosrmError

        raise MosrmError(
            f"sharded run over {nproc} processes failed (torchrun exit {rc}; the cause is "
            "above); scores finished so far are cached: rerun to resume"
        )
    return 0


# ---------------------------------------------------------------------------------------------
# helpers


def _without_nproc(argv: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, separators=(",", ":")).encode()).hexdigest()


def _tuples(value: Any) -> Any:
    """JSON lists back to the tuples the cache keys and pair values are."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300]


def _describe(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, SystemExit):
        code = exc.code if isinstance(exc.code, int | str) or exc.code is None else str(exc.code)
        return {"type": "SystemExit", "code": code, "message": str(exc)}
    known = next((c.__name__ for c in type(exc).__mro__ if _ERRORS.get(c.__name__) is c), None)
    return {"type": type(exc).__name__, "as": known, "message": str(exc)}


def _rebuild(rank: int, error: dict[str, Any]) -> BaseException:
    """The error a rank raised, as the other ranks raise it."""
    kind, message = error["type"], error["message"]
    if kind == "SystemExit":
        return SystemExit(error.get("code"))
    known = error.get("as")
    if known in _ERRORS:
        return _ERRORS[known](message)
    return RuntimeError(f"rank {rank}: {kind}: {message} (traceback on that rank's stderr)")
