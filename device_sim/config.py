"""Simulator knobs: every rate and count the simulated city uses, with its default.

These are *simulation* parameters (how much load, how many faults), not regulatory
numbers: those (maximum fill mass, tolerances, leak threshold) come from the platform
settings, so a city that changes a rule changes what the simulator calls an overfill too.
Each field is a ``cylwatch sim`` flag of the same name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

__all__ = ["DEFAULT_MIX", "KINDS", "SimConfig", "parse_mix"]

KINDS: Final = ("telemetry", "position", "scan", "gun")
"""What a rate slot can become (besides queued follow-ups): a gun slot is an auth request."""

DEFAULT_MIX: Final[dict[str, float]] = {
    "telemetry": 0.60,
    "position": 0.20,
    "scan": 0.10,
    "gun": 0.10,
}
"""Share of freshly generated messages per kind. Valves outnumber everything in a real
city (one per cylinder), vehicles report often while moving; fills are rare per cylinder
(about once a month) but they are the interesting traffic, so a sim over-weights them."""


def parse_mix(text: str) -> dict[str, float]:
    """``"telemetry=0.6,position=0.2,scan=0.1,gun=0.1"`` → weights (need not sum to 1)."""
    mix = dict.fromkeys(KINDS, 0.0)
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in KINDS:
            raise ValueError(f"bad mix entry {part!r}: expected one of {', '.join(KINDS)}=weight")
        weight = float(value)
        if weight < 0:
            raise ValueError(f"negative weight for {name}")
        mix[name] = weight
    if sum(mix.values()) <= 0:
        raise ValueError("the mix has no positive weight")
    return mix


@dataclass(frozen=True, slots=True)
class SimConfig:
    """One run of the simulated city."""

    rate: float = 200.0
    """Target messages per second, everything included (follow-ups, faults, status)."""
    duration: float = 60.0
    """Seconds to run; 0 runs until interrupted."""
    seed: int = 1
    stations: int | None = None
    """Drive only the first N licensed stations (and their companies' devices)."""
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    illegal_rate: float = 0.05
    """Share of fill requests that should be refused (other company's, overdue, scrapped,
    unknown tag, in equal parts)."""
    overfill_rate: float = 0.02
    underfill_rate: float = 0.03
    check_fail_rate: float = 0.01
    """Share of fills where a pre/post check item fails (the fill is then ``aborted``)."""
    leak_rate: float = 0.001
    circulation_rate: float = 0.002
    """Share of fresh slots that break a circulation rule (an overdue or scrapped cylinder
    dispatched, an empty delivered as full, another company's cylinder taken back, a tag
    read at two far places), in equal parts: the platform's circulation alerts."""
    """Share of valve readings above the leak threshold."""
    dup_rate: float = 0.01
    """Share of messages re-published later with the same msg_id (broker redelivery,
    device retry)."""
    bad_rate: float = 0.005
    """Share of slots that carry a bad payload (not JSON, missing field, wrong type,
    future ts, unknown device, in equal parts)."""
    offline_rate: float = 0.002
    """Probability, per message, that its device drops off the network first; it then
    buffers what it produces and replays it (original ts) when back."""
    offline_seconds: float = 20.0
    """How long a device stays offline."""
    fill_seconds: float = 3.0
    """Time from an ``allow`` to the fill record (a real fill takes a minute or two; a
    sim shortens it so short runs see whole cycles)."""
    auth_timeout: float = 5.0
    """A gun gives up waiting for a reply after this long (counted as lost)."""
    dup_delay_max_s: float = 2.0
    vehicle_speed_kmh: float = 30.0
    """Average urban delivery speed; each vehicle varies ±30 %."""
    dwell_s: float = 45.0
    """Time at each stop (unloading, scanning)."""
    stops_per_route: int = 4
    cargo_per_stop: int = 2
    transfer_share: float = 0.15
    """Share of vehicle trips that move stock station → store (transfer/receive)."""
    connections: int = 4
    """MQTT client connections the sim spreads its devices over."""
    report_every: float = 10.0
    legal_cap: int = 50_000
    illegal_cap: int = 2_000
    customers_cap: int = 2_000
    """Per company: how many customers are read for deliveries."""


@dataclass(frozen=True, slots=True)
class Rules:
    """The regulatory numbers the simulator needs, taken from the platform settings."""

    max_fill_kg: Mapping[str, float]
    """Per model spec (GB 5842)."""
    underfill_tolerance_kg: float
    overfill_tolerance_kg: float
    leak_ppm_threshold: float
    cloned_tag_km: float
    cloned_tag_window_s: int
    """``[circulation]``: how far apart two reads of a cloned tag are, and within what time."""

    @classmethod
    def from_settings(cls, settings: object) -> Rules:
        """From :class:`server.kernel.settings.Settings` (typed loosely: only these fields are read)."""
        filling = getattr(settings, "filling")  # noqa: B009 - duck-typed on purpose
        alerts = getattr(settings, "alerts")  # noqa: B009
        models = getattr(settings, "models")  # noqa: B009
        circulation = getattr(settings, "circulation")  # noqa: B009
        return cls(
            max_fill_kg={spec: m.max_fill_kg for spec, m in models.items()},
            underfill_tolerance_kg=float(filling.underfill_tolerance_kg),
            overfill_tolerance_kg=float(filling.overfill_tolerance_kg),
            leak_ppm_threshold=float(alerts.leak_ppm_threshold),
            cloned_tag_km=float(circulation.cloned_tag_km),
            cloned_tag_window_s=int(circulation.cloned_tag_window_s),
        )
