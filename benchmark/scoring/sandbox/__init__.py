"""Running untrusted submission code: a bubblewrap-confined child process (see `host`)."""

from benchmark.scoring.sandbox.command import SandboxLimits
from benchmark.scoring.sandbox.host import SandboxedModel, bubblewrap

__all__ = ["SandboxLimits", "SandboxedModel", "bubblewrap"]
