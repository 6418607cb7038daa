"""The mark for tests that need the sandbox: a skip on a machine without bubblewrap, a failure where
it must be there.

`make test` (and so CI) sets MOSRM_REQUIRE_SANDBOX=1: `make setup` installs bubblewrap, so a
`bwrap` that is missing or cannot start there means the sandbox's protections went untested,
which must not pass as a green run of skips.
"""

from __future__ import annotations

import os

import pytest

from benchmark.scoring.sandbox import bubblewrap

REQUIRE_ENV = "MOSRM_REQUIRE_SANDBOX"


def sandbox_needed() -> pytest.MarkDecorator:
    """`pytestmark = sandbox_needed()`: skip without bubblewrap, unless REQUIRE_ENV says fail."""
    missing = bubblewrap() is None
    if missing and os.environ.get(REQUIRE_ENV, "") not in ("", "0"):
        pytest.fail(
            f"bubblewrap cannot run here and {REQUIRE_ENV} is set: the sandbox tests must run "
            "(`make setup` installs bubblewrap; see README, 'Your code runs in a sandbox')",
            pytrace=False,
        )
    return pytest.mark.skipif(missing, reason="bubblewrap cannot run here")
