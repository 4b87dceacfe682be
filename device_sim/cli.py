"""`cylwatch sim`: run the simulated city's devices against the broker."""

from __future__ import annotations

from typing import Any


def add_commands(sub: Any) -> None:
    """Registered by the device simulator module."""
