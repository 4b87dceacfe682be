"""Reports of a simulator run: a one-line progress line and a final table.

The final table uses ``rich`` when it is installed (a nicer terminal) and falls back to
plain aligned text, so the simulator needs nothing beyond the platform's dependencies.
"""

from __future__ import annotations

from collections.abc import Callable

from .stats import SimStats, percentile

__all__ = ["progress_line", "render_summary", "summary_rows"]


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f} ms"


def progress_line(stats: SimStats, elapsed_s: float, pending: int) -> str:
    lat = stats.latencies_ms
    return (
        f"[{elapsed_s:6.1f}s] sent {stats.total} ({stats.total / max(elapsed_s, 1e-9):.0f}/s)"
        f" auth allow {stats.decisions['allow']} deny {stats.decisions['deny']}"
        f" lost {stats.auth_lost} pending {pending}"
        f" p50 {_ms(percentile(lat, 0.5))} p99 {_ms(percentile(lat, 0.99))}"
        f" offline {stats.offline_events} buffered {stats.buffered}"
    )


def summary_rows(stats: SimStats, elapsed_s: float) -> list[tuple[str, str, str]]:
    """(section, item, value) rows of the final report."""
    rows: list[tuple[str, str, str]] = [
        ("total", "messages", str(stats.total)),
        ("total", "seconds", f"{elapsed_s:.1f}"),
        ("total", "messages/s", f"{stats.total / max(elapsed_s, 1e-9):.1f}"),
    ]
    rows += [("sent by kind", k, str(v)) for k, v in sorted(stats.sent.items())]
    rows += [("sent by origin", k, str(v)) for k, v in sorted(stats.labels.items())]
    rows += [("scans", k, str(v)) for k, v in sorted(stats.scans.items())]
    rows += [("auth replies", k, str(v)) for k, v in sorted(stats.decisions.items())]
    rows += [("deny reasons", k, str(v)) for k, v in sorted(stats.reasons.items())]
    lat = stats.latencies_ms
    rows += [
        ("auth latency", "replies", str(len(lat))),
        ("auth latency", "p50", _ms(percentile(lat, 0.50))),
        ("auth latency", "p95", _ms(percentile(lat, 0.95))),
        ("auth latency", "p99", _ms(percentile(lat, 0.99))),
        ("auth latency", "max", _ms(max(lat) if lat else None)),
        ("auth", "lost (no reply in time)", str(stats.auth_lost)),
        ("auth", "reply not as expected", str(stats.unexpected)),
        ("auth", "unmatched replies", str(stats.unmatched_replies)),
        ("devices", "offline episodes", str(stats.offline_events)),
        ("devices", "messages buffered offline", str(stats.buffered)),
    ]
    rows += [("skipped", k, str(v)) for k, v in sorted(stats.skipped.items())]
    rows += [("unexpected", "example", e) for e in stats.unexpected_examples]
    return rows


def render_summary(stats: SimStats, elapsed_s: float, out: Callable[[str], None] = print) -> None:
    rows = summary_rows(stats, elapsed_s)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        width = max(len(f"{s} / {i}") for s, i, _ in rows)
        out("cylwatch sim — summary")
        for section, item, value in rows:
            out(f"  {f'{section} / {item}':<{width}}  {value}")
        return
    table = Table(title="cylwatch sim — summary")
    table.add_column("section")
    table.add_column("item")
    table.add_column("value", justify="right")
    for row in rows:
        table.add_row(*row)
    console = Console(record=True, width=100)
    with console.capture() as cap:
        console.print(table)
    out(cap.get().rstrip("\n"))
