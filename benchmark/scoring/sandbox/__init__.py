"""Running untrusted submission code: a bubblewrap-confined child process, unprivileged, without
network, labels or the score cache, talking to the harness over a checked pipe protocol (`host`,
`launch`, `confine`, `seccomp`, `cgroups`, `watch`, `budget`, `protocol`).

What the sandbox promises is listed in the README's sandbox table and each promise is attacked in
`tests/test_adversarial.py`; nothing outside this package starts submitted code.
"""

from benchmark.scoring.sandbox.command import SandboxLimits
from benchmark.scoring.sandbox.host import SandboxedModel, bubblewrap

__all__ = ["SandboxLimits", "SandboxedModel", "bubblewrap"]
