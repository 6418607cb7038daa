"""Between the harness and bubblewrap: join the sandbox's cgroups, stage, drop root, exec bwrap.

Run by `benchmark.scoring.sandbox.host` as `python -I -S launch.py SPEC_JSON` (no site, no package import:
it must start in milliseconds and trust nothing but the standard library). In this order:

1. join the cgroups the harness made for this sandbox (before anything forks, so that bwrap and
   every process under it are inside: membership is inherited at fork);
2. when run as root, make a private mount namespace and mount a tmpfs on the staging folder with
   each tree the child must read (interpreter, environment, this package, the submission folder)
   bound read-only inside it; root can reach `/root/...` (mode 0700), the sandbox's user cannot, and
   bwrap, run as that user, binds from the staging folder instead. The host's mounts are untouched;
3. set the hard rlimits (so they bind bwrap and everything it starts);
4. when run as root, drop to the sandbox's user and group for good (no supplementary groups), so
   that the sandbox's user *outside* every namespace is never 0: `bwrap --uid` run by root would
   map the child back to outside uid 0, with root's rights on /proc/sys and anything uid-checked;
5. exec bwrap, which then builds its namespaces as an unprivileged user.
Any failure exits 125 with one line on stderr, before any submission code exists in the process.
"""

import ctypes
import json
import os
import resource
import sys

CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    1,
    2,
    4,
    32,
    4096,
    16384,
    1 << 18,
)
PR_SET_NO_NEW_PRIVS = 38

RLIMITS = {
    "as": resource.RLIMIT_AS,
    "cpu": resource.RLIMIT_CPU,
    "fsize": resource.RLIMIT_FSIZE,
    "nproc": resource.RLIMIT_NPROC,
    "core": resource.RLIMIT_CORE,
}


def _fail(what: str, exc: BaseException) -> None:
    sys.stderr.write(f"mosrm sandbox launcher: {what}: {exc}\n")
    sys.stderr.flush()
    os._exit(125)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(
    libc: ctypes.CDLL, src: str | None, dst: str, fstype: str | None, flags: int, data: str | None
) -> None:
    enc = [None if x is None else x.encode() for x in (src, dst, fstype, data)]
    _check(libc.mount(enc[0], enc[1], enc[2], ctypes.c_ulong(flags), enc[3]), f"mount {dst}")


def stage(root: str, binds: list[list[str]]) -> None:
    """A private mount namespace with a tmpfs on `root` holding each (source, name) bound read-only."""
    libc = _libc()
    _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE, None)
    _mount(libc, "mosrm-stage", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
    for src, name in binds:
        dst = os.path.join(root, name)
        if os.path.isdir(src):
            os.mkdir(dst, 0o755)
        else:
            os.close(os.open(dst, os.O_CREAT | os.O_WRONLY, 0o644))
        _mount(libc, src, dst, None, MS_BIND | MS_REC, None)
        _mount(libc, None, dst, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, None)
    _mount(libc, None, root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "mode=0755")


def main() -> None:
    try:
        spec = json.loads(sys.argv[1])
    except (IndexError, ValueError) as exc:
        _fail("bad arguments", exc)
    for procs in spec.get("cgroup_procs", []):
        try:
            with open(procs, "w") as f:
                f.write(str(os.getpid()))
        except OSError as exc:
            _fail(f"joining {procs}", exc)
    if spec.get("stage"):
        try:
            stage(spec["stage"], spec["binds"])
        except OSError as exc:
            _fail("staging the read-only trees", exc)
    for name, value in sorted(spec.get("rlimits", {}).items()):
        try:
            soft, hard = value
            resource.setrlimit(RLIMITS[name], (soft, hard))
        except (OSError, ValueError, KeyError) as exc:
            _fail(f"setting rlimit {name}", exc)
    uid, gid = spec.get("uid"), spec.get("gid")
    try:
        if gid is not None:
            os.setgroups([])
            os.setresgid(gid, gid, gid)
        if uid is not None:
            os.setresuid(uid, uid, uid)
            if os.getuid() != uid or os.geteuid() != uid:
                raise OSError("uid did not change")
        _check(_libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")
    except OSError as exc:
        _fail("dropping privileges", exc)
    argv = spec["argv"]
    try:
        os.execv(argv[0], argv)
    except OSError as exc:
        _fail(f"starting {argv[0]}", exc)


if __name__ == "__main__":
    main()
