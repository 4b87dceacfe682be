"""What a test does when a tool it needs is not installed (docs/ARCHITECTURE.md §12).

On a developer's machine a missing tool (Chromium, node, the npm packages) skips the tests
that need it, with the command that installs it. In CI (``CI=true``, as CI services and
``.ci/run`` set it) every tool is installed first, so a missing one is a broken build: the
tests fail, and a green run can never mean "the browser tests did not run".
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """Is this run a CI run (``CI`` set to true, 1 or yes, as CI services set it)?"""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing(what: str, install: str) -> NoReturn:
    """Skip the test for want of *what* (fail it in CI), naming the command that installs it."""
    message = f"{what} is not installed: {install}"
    if in_ci():
        pytest.fail(f"{message} (CI must have it: a skipped test would hide a failure)", False)
    pytest.skip(message)
