"""Ingest counters and latencies, rendered in the Prometheus text exposition format.

Operators need to see, per worker, that messages flow (received vs stored), that the broker
redelivers (duplicates), what devices send wrong (dead letters by reason) and whether the
fill-authorization promise of docs/ARCHITECTURE.md §10 (p99 ≤ 50 ms) holds. Counters are plain ints
bumped without locks: each is written by one thread only — the worker's loop, or for the
fill-authorization figures the reply thread's (:mod:`ingest.replies`); percentiles come from a
bounded window of recent samples so memory stays flat however long the worker runs.

Every live :class:`Metrics` registers itself in a process-wide registry;
:func:`render_prometheus` renders them all (the HTTP engineer serves it at ``/metrics``).
"""

from __future__ import annotations

import asyncio
import math
import time
import weakref
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "AUTH_PHASES",
    "LOOP_LAG_INTERVAL_S",
    "LatencyWindow",
    "Metrics",
    "probe_loop_lag",
    "render_prometheus",
]

WINDOW_SAMPLES = 4096
"""Samples kept per latency window: enough for a stable p99 at 500 auth requests/s over
the last ~8 s, small enough to sort on every scrape."""


class LatencyWindow:
    """The most recent latency samples (seconds) with percentile queries."""

    def __init__(self, size: int = WINDOW_SAMPLES) -> None:
        self._samples: deque[float] = deque(maxlen=size)
        self.count = 0
        self.total = 0.0
        self.max = 0.0
        """The largest sample since the worker started (a window's p99 can miss a stall)."""

    def add(self, seconds: float) -> None:
        self._samples.append(seconds)
        self.count += 1
        self.total += seconds
        if seconds > self.max:
            self.max = seconds

    def recent(self, n: int) -> list[float]:
        """The last *n* samples (at most the window), oldest first."""
        if n <= 0:
            return []
        samples = list(self._samples)
        return samples[-n:]

    def percentile(self, q: float) -> float | None:
        """Nearest-rank percentile *q* in [0, 1] of the window, ``None`` when empty."""
        if not self._samples:
            return None
        ordered = sorted(self._samples)
        rank = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
        return ordered[rank]


LOOP_LAG_INTERVAL_S = 0.01
"""Period of the event-loop lag probe: 100 wake-ups a second cost well under 1 % of a core
and resolve a stall of a few ms; a window (4,096 samples) spans the last ~40 s."""


async def probe_loop_lag(window: LatencyWindow) -> None:
    """Sleep :data:`LOOP_LAG_INTERVAL_S` again and again (until cancelled); how late each
    wake-up comes is how long any ready task — a gun's reply among them — waits for the
    loop it runs on."""
    while True:
        asked = time.perf_counter()
        await asyncio.sleep(LOOP_LAG_INTERVAL_S)
        window.add(max(0.0, time.perf_counter() - asked - LOOP_LAG_INTERVAL_S))


AUTH_PHASES = ("queued", "conn_wait", "query", "publish")
"""Where a fill-authorization reply's time goes, in order: *queued* — receipt until its task
first runs (the event loop's backlog); *conn_wait* — waiting for one of the authorizer's own
connections; *query* — :data:`ingest.auth.AUTH_SQL` on it, send to result in hand (the
database, plus the loop's delay in resuming the task); *publish* — handing the reply to the
broker (with aiomqtt: until its PUBACK)."""

_registry: weakref.WeakSet[Metrics] = weakref.WeakSet()


def _zero() -> int:
    return 0


class Metrics:
    """Counters of one ingest worker."""

    def __init__(self, worker: str) -> None:
        self.worker = worker
        self.received = 0
        self.stored = 0
        self.duplicates = 0
        self.ignored = 0
        self.dead_letters: Counter[str] = Counter()
        self.auth_requests = 0
        self.auth_denied = 0
        self.auth_latency = LatencyWindow()
        self.auth_phases = {phase: LatencyWindow() for phase in AUTH_PHASES}
        self.loop_lag = LatencyWindow()
        """How late a periodic sleep of the worker's event loop wakes: the time any ready
        task waits behind whatever holds the loop (batch work among it)."""
        self.reply_loop_lag = LatencyWindow()
        """The same on the fill-authorization thread's own loop (:mod:`ingest.replies`)."""
        self.reply_connected = False
        self.batches = 0
        self.batch_rows = 0
        self.batch_latency = LatencyWindow()
        self.db_retries = 0
        self.reconnects = 0
        self.alerts_raised = 0
        self.connected = False
        self.pending: Callable[[], int] = _zero
        """Messages received and waiting for a batch (set by the worker: its buffer's length)."""
        self.unacked: Callable[[], int] = _zero
        """Messages received and not yet acknowledged to the broker: waiting for a batch, or
        in a batch not yet committed (the worker's ack queue)."""
        self.batch_phases: Counter[str] = Counter()
        """Seconds spent per step of storing a batch (lookups, rows, insert, rules, state,
        alerts, commit), summed over the worker's life: where a batch's time goes."""
        _registry.add(self)

    def dead_letter(self, reason: str) -> None:
        """Count a dead letter under its reason *class* (the text before ':')."""
        self.dead_letters[reason.split(":", 1)[0].strip() or "unknown"] += 1

    def snapshot(self) -> dict[str, Any]:
        """Plain numbers, for benchmarks and tests."""
        return {
            "received": self.received,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "ignored": self.ignored,
            "dead_letters": dict(self.dead_letters),
            "dead_letters_total": sum(self.dead_letters.values()),
            "auth_requests": self.auth_requests,
            "auth_denied": self.auth_denied,
            "auth_p50_s": self.auth_latency.percentile(0.50),
            "auth_p99_s": self.auth_latency.percentile(0.99),
            "auth_max_s": self.auth_latency.max,
            "auth_phases_s": {
                phase: _window_summary(window) for phase, window in self.auth_phases.items()
            },
            "loop_lag_s": _window_summary(self.loop_lag),
            "reply_loop_lag_s": _window_summary(self.reply_loop_lag),
            "batches": self.batches,
            "batch_p50_s": self.batch_latency.percentile(0.50),
            "batch_p99_s": self.batch_latency.percentile(0.99),
            "db_retries": self.db_retries,
            "reconnects": self.reconnects,
            "alerts_raised": self.alerts_raised,
            "batch_phases_s": {k: round(v, 3) for k, v in self.batch_phases.items()},
        }

    def render_prometheus(self) -> str:
        return render_prometheus([self])


def _window_summary(window: LatencyWindow) -> dict[str, float | None]:
    return {
        "p50": window.percentile(0.50),
        "p99": window.percentile(0.99),
        "max": window.max if window.count else None,
    }


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


_HELP = {
    "cylwatch_ingest_received_total": ("counter", "MQTT messages received"),
    "cylwatch_ingest_stored_total": ("counter", "messages stored (first delivery of a msg_id)"),
    "cylwatch_ingest_duplicates_total": ("counter", "redelivered messages already stored"),
    "cylwatch_ingest_ignored_total": (
        "counter",
        "own replies, and copies of fill requests (answered on the reply connection),"
        " seen on the shared subscription",
    ),
    "cylwatch_ingest_dead_letters_total": ("counter", "messages refused, by reason"),
    "cylwatch_ingest_auth_requests_total": ("counter", "fill authorization requests answered"),
    "cylwatch_ingest_auth_denied_total": ("counter", "fill authorization requests denied"),
    "cylwatch_ingest_auth_latency_seconds": ("summary", "receive-to-reply time, recent window"),
    "cylwatch_ingest_auth_phase_seconds": (
        "summary",
        "fill authorization time by phase (queued, conn_wait, query, publish), recent window",
    ),
    "cylwatch_ingest_auth_phase_max_seconds": ("gauge", "slowest of each phase since start"),
    "cylwatch_ingest_loop_lag_seconds": (
        "summary",
        "event loop lag (a periodic sleep's overshoot), recent window",
    ),
    "cylwatch_ingest_loop_lag_max_seconds": ("gauge", "largest event loop lag since start"),
    "cylwatch_ingest_reply_loop_lag_seconds": (
        "summary",
        "fill authorization thread's event loop lag, recent window",
    ),
    "cylwatch_ingest_reply_loop_lag_max_seconds": (
        "gauge",
        "largest lag of the fill authorization thread's event loop since start",
    ),
    "cylwatch_ingest_batches_total": ("counter", "batches committed"),
    "cylwatch_ingest_batch_rows_total": ("counter", "messages in committed batches"),
    "cylwatch_ingest_batch_latency_seconds": ("summary", "batch commit time, recent window"),
    "cylwatch_ingest_db_retries_total": ("counter", "batch commits retried (database down)"),
    "cylwatch_ingest_reconnects_total": ("counter", "MQTT (re)connections"),
    "cylwatch_ingest_alerts_total": ("counter", "alerts raised or bumped"),
    "cylwatch_ingest_pending_messages": ("gauge", "messages received, waiting for a batch"),
    "cylwatch_ingest_unacked_messages": (
        "gauge",
        "messages received and not yet acknowledged to the broker (waiting or being committed)",
    ),
    "cylwatch_ingest_connected": ("gauge", "1 when connected to the broker"),
    "cylwatch_ingest_reply_connected": (
        "gauge",
        "1 when the fill authorization connection is connected to the broker",
    ),
}


def render_prometheus(workers: Iterable[Metrics] | None = None) -> str:
    """Every live worker's metrics (or the given ones) as Prometheus text format 0.0.4."""
    items = sorted(_registry if workers is None else workers, key=lambda m: m.worker)
    lines: list[str] = []
    samples: dict[str, list[str]] = {name: [] for name in _HELP}

    def add(name: str, m: Metrics, value: float, extra: str = "") -> None:
        labels = f'worker="{_label(m.worker)}"{extra}'
        samples[name].append(f"{name}{{{labels}}} {_num(value)}")

    for m in items:
        add("cylwatch_ingest_received_total", m, m.received)
        add("cylwatch_ingest_stored_total", m, m.stored)
        add("cylwatch_ingest_duplicates_total", m, m.duplicates)
        add("cylwatch_ingest_ignored_total", m, m.ignored)
        for reason, n in sorted(m.dead_letters.items()):
            add("cylwatch_ingest_dead_letters_total", m, n, f',reason="{_label(reason)}"')
        add("cylwatch_ingest_auth_requests_total", m, m.auth_requests)
        add("cylwatch_ingest_auth_denied_total", m, m.auth_denied)
        add("cylwatch_ingest_batches_total", m, m.batches)
        add("cylwatch_ingest_batch_rows_total", m, m.batch_rows)
        add("cylwatch_ingest_db_retries_total", m, m.db_retries)
        add("cylwatch_ingest_reconnects_total", m, m.reconnects)
        add("cylwatch_ingest_alerts_total", m, m.alerts_raised)
        add("cylwatch_ingest_pending_messages", m, m.pending())
        add("cylwatch_ingest_unacked_messages", m, m.unacked())
        add("cylwatch_ingest_connected", m, 1 if m.connected else 0)
        add("cylwatch_ingest_reply_connected", m, 1 if m.reply_connected else 0)
        for name, window in (
            ("cylwatch_ingest_auth_latency_seconds", m.auth_latency),
            ("cylwatch_ingest_batch_latency_seconds", m.batch_latency),
            ("cylwatch_ingest_loop_lag_seconds", m.loop_lag),
            ("cylwatch_ingest_reply_loop_lag_seconds", m.reply_loop_lag),
        ):
            for q in (0.5, 0.99):
                value = window.percentile(q)
                if value is not None:
                    add(name, m, value, f',quantile="{q}"')
            samples[name].append(f'{name}_count{{worker="{_label(m.worker)}"}} {window.count}')
            samples[name].append(f'{name}_sum{{worker="{_label(m.worker)}"}} {_num(window.total)}')
        add("cylwatch_ingest_loop_lag_max_seconds", m, m.loop_lag.max)
        add("cylwatch_ingest_reply_loop_lag_max_seconds", m, m.reply_loop_lag.max)
        phased = "cylwatch_ingest_auth_phase_seconds"
        for phase, window in m.auth_phases.items():
            extra = f',phase="{phase}"'
            for q in (0.5, 0.99):
                value = window.percentile(q)
                if value is not None:
                    add(phased, m, value, f'{extra},quantile="{q}"')
            labels = f'worker="{_label(m.worker)}"{extra}'
            samples[phased].append(f"{phased}_count{{{labels}}} {window.count}")
            samples[phased].append(f"{phased}_sum{{{labels}}} {_num(window.total)}")
            add("cylwatch_ingest_auth_phase_max_seconds", m, window.max, extra)
    for name, (kind, text) in _HELP.items():
        lines.append(f"# HELP {name} {text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(samples[name])
    return "\n".join(lines) + "\n"
