"""What the simulator sent and what came back (:class:`SimStats`), and the percentile its
report and the benches use — the counting of :mod:`device_sim.behaviour`, kept apart from the
behaviour itself."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["SimStats", "percentile"]


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile *q* in [0, 1]; ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return ordered[rank]


@dataclass(slots=True)
class SimStats:
    """What the simulator sent and what came back."""

    sent: Counter[str] = field(default_factory=Counter)
    """Per contract kind (auth, fill, telemetry, scan, position, status)."""
    labels: Counter[str] = field(default_factory=Counter)
    """Per origin: dup, replay, bad:<kind>, illegal:<kind>, overfill, underfill, ..."""
    scans: Counter[str] = field(default_factory=Counter)
    """Per scan action."""
    decisions: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    auth_lost: int = 0
    unexpected: int = 0
    """Replies that disagree with the expected decision."""
    unexpected_examples: list[str] = field(default_factory=list)
    unmatched_replies: int = 0
    buffered: int = 0
    offline_events: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.sent.values())
