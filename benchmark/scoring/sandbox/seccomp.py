"""The system-call filter of the sandbox: a classic-BPF program that bubblewrap installs (`--seccomp`).

A reward model reads arrays, computes and writes numbers back; it never needs to trace another
process, mount a file system, load a kernel module or BPF program, open performance counters, use
`userfaultfd` or io_uring (both favourite kernel exploit primitives), touch the kernel keyring,
change the clock or make new namespaces. Each of those fails with EPERM (a well-behaved library
sees an ordinary error, not a crash). `clone3` answers ENOSYS, so the C library falls back to
`clone`, whose flags a classic-BPF filter can inspect (`clone3` passes them in memory): a clone that
asks for a new namespace fails with EPERM. Calls of another ABI than the native one (i386 or x32 on
an x86-64 kernel) kill the process, since the numbers below would not mean what they say there.

The program is built here, without libseccomp, for the two architectures we run on; elsewhere
`program()` returns None and the run record says no filter applied.
"""

from __future__ import annotations

import platform
import struct

# (x86-64 number, aarch64 number); None where the call does not exist on that architecture
DENIED: dict[str, tuple[int | None, int | None]] = {
    "ptrace": (101, 117),
    "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271),
    "kcmp": (312, 272),
    "pidfd_getfd": (438, 438),
    "mount": (165, 40),
    "umount2": (166, 39),
    "pivot_root": (155, 41),
    "chroot": (161, 51),
    "open_tree": (428, 428),
    "move_mount": (429, 429),
    "fsopen": (430, 430),
    "fsconfig": (431, 431),
    "fsmount": (432, 432),
    "fspick": (433, 433),
    "mount_setattr": (442, 442),
    "unshare": (272, 97),
    "setns": (308, 268),
    "bpf": (321, 280),
    "perf_event_open": (298, 241),
    "userfaultfd": (323, 282),
    "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427),
    "keyctl": (250, 219),
    "add_key": (248, 217),
    "request_key": (249, 218),
    "init_module": (175, 105),
    "finit_module": (313, 273),
    "delete_module": (176, 106),
    "kexec_load": (246, 104),
    "kexec_file_load": (320, 294),
    "reboot": (169, 142),
    "swapon": (167, 224),
    "swapoff": (168, 225),
    "acct": (163, 89),
    "quotactl": (179, 60),
    "quotactl_fd": (443, 443),
    "settimeofday": (164, 170),
    "clock_settime": (227, 112),
    "clock_adjtime": (305, 266),
    "adjtimex": (159, 171),
    "sethostname": (170, 161),
    "setdomainname": (171, 162),
    "syslog": (103, 116),
    "vhangup": (153, 58),
    "open_by_handle_at": (304, 265),
    "name_to_handle_at": (303, 264),
    "lookup_dcookie": (212, 18),
    "fanotify_init": (300, 262),
    "process_madvise": (440, 440),
    "iopl": (172, None),
    "ioperm": (173, None),
    "modify_ldt": (154, None),
    "uselib": (134, None),
    "_sysctl": (156, None),
}
CLONE = (56, 220)
CLONE3 = (435, 435)

_ARCH = {"x86_64": (0, 0xC000003E), "amd64": (0, 0xC000003E), "aarch64": (1, 0xC00000B7)}
_ARCH["arm64"] = _ARCH["aarch64"]
X32_BIT = 0x40000000
"""x86-64 system calls with this bit set are the x32 ABI's: refused as a foreign ABI."""

NAMESPACE_FLAGS = 0x7E020000
"""CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
CLONE_NEWNET: a clone that asks for any of them is refused."""

EPERM, ENOSYS = 1, 38
RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000
RET_KILL_PROCESS = 0x80000000

# classic BPF opcodes
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06
_NR, _ARCH_OFFSET, _ARG0 = 0, 4, 16  # offsets in struct seccomp_data (little-endian)


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k)


def program(machine: str | None = None) -> bytes | None:
    """The filter as raw `struct sock_filter` records for `machine` (default: this one), or None
    where we have no system-call table for it."""
    found = _ARCH.get((machine or platform.machine()).lower())
    if found is None:
        return None
    column, audit_arch = found
    denied = sorted({nr for nrs in DENIED.values() if (nr := nrs[column]) is not None})
    # layout: the checks, clone's flags test, then the returns (classic BPF jumps forward only)
    body: list[tuple[int, int | str, int | str, int]] = []
    body.append((_LD_W_ABS, 0, 0, _ARCH_OFFSET))
    body.append((_JEQ_K, 0, "kill", audit_arch))
    body.append((_LD_W_ABS, 0, 0, _NR))
    if column == 0:
        body.append((_JGE_K, "kill", 0, X32_BIT))
    body.extend((_JEQ_K, "eperm", 0, nr) for nr in denied)
    body.append((_JEQ_K, "enosys", 0, CLONE3[column]))
    body.append((_JEQ_K, 0, "allow", CLONE[column]))
    body.append((_LD_W_ABS, 0, 0, _ARG0))  # clone's flags, low 32 bits: the namespace flags
    body.append((_JSET_K, "eperm", "allow", NAMESPACE_FLAGS))
    returns = {
        "allow": RET_ALLOW,
        "eperm": RET_ERRNO | EPERM,
        "enosys": RET_ERRNO | ENOSYS,
        "kill": RET_KILL_PROCESS,
    }
    at = {name: len(body) + i for i, name in enumerate(returns)}
    out = []
    for i, (code, jt, jf, k) in enumerate(body):
        # a jump's offset counts from the next instruction
        t = at[jt] - i - 1 if isinstance(jt, str) else jt
        f = at[jf] - i - 1 if isinstance(jf, str) else jf
        if not (0 <= t < 256 and 0 <= f < 256):
            raise AssertionError("seccomp program too long for 8-bit jumps")
        out.append(_insn(code, t, f, k))
    out.extend(_insn(_RET_K, 0, 0, value) for value in returns.values())
    return b"".join(out)
