"""The soak's samples as a figure and a verdict (docs/BENCHMARKS.md "Soak (issue 10 item 3)").

Kept apart from ``bench/soak.py`` so that a saved CSV can be replotted and judged again
(``python bench/soak.py --plot-only samples.csv``) without running the chain.

The verdict per series: the mean of the run's last third against the mean of its middle third
(the first third is the warm-up). A series "levels off" when the last third is at most
``ratio`` times the middle third, or exceeds it by less than the unit's absolute slack (a
few MiB of RSS or ms of latency is noise, not growth). It is deliberately simple: a leak
that keeps climbing through the whole run fails it; one that grows and then settles does not.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Final

SERIES: Final = {
    # column → (unit kind for the slack, label)
    "server_rss_mib": ("rss", "server RSS"),
    "ingest_rss_mib": ("rss", "ingest supervisor RSS"),
    "worker_rss_mib": ("rss", "ingest worker RSS"),
    "reply_rss_mib": ("rss", "ingest reply process RSS"),
    "postgres_rss_mib": ("rss", "PostgreSQL backends RSS"),
    "mosquitto_rss_mib": ("rss", "Mosquitto RSS"),
    "redis_rss_mib": ("rss", "Redis RSS"),
    "postgres_anon_mib": ("rss", "PostgreSQL backends private (RssAnon)"),
    "worker_anon_mib": ("rss", "ingest worker private (RssAnon)"),
    "server_anon_mib": ("rss", "server private (RssAnon)"),
    "server_cpu_pct": ("cpu", "server CPU"),
    "mosquitto_cpu_pct": ("cpu", "Mosquitto CPU"),
    "redis_cpu_pct": ("cpu", "Redis CPU"),
    "worker_cpu_pct": ("cpu", "ingest worker CPU"),
    "reply_cpu_pct": ("cpu", "ingest reply process CPU"),
    "postgres_cpu_pct": ("cpu", "PostgreSQL CPU"),
    "backlog": ("queue", "ingest backlog"),
    "bridge_queue": ("queue", "Redis bridge queue"),
    "batch_mean_ms": ("ms", "batch commit mean (interval)"),
    "batch_p99_ms": ("ms", "batch commit p99 (worker window)"),
    "alert_p99_ms": ("ms", "alert publish→frame p99"),
    "position_p99_ms": ("ms", "position publish→frame p99"),
}


def load(path: Path) -> list[dict[str, float | None]]:
    """The CSV's rows, numbers as floats and empty cells (no sample in the interval) as None."""
    with path.open(newline="") as fh:
        return [
            {k: (float(v) if v not in ("", None) else None) for k, v in row.items()}
            for row in csv.DictReader(fh)
        ]


def _traffic(rows: list[dict[str, float | None]]) -> list[dict[str, float | None]]:
    """The rows while the devices published (the drain after the end is not the soak)."""
    busy = [r for r in rows if (r.get("sent_per_s") or 0) > 0]
    return busy or rows


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def thirds(rows: list[dict[str, float | None]], col: str) -> tuple[float | None, ...]:
    """Means of *col* over the first, middle and last third of the traffic."""
    rows = _traffic(rows)
    n = len(rows)
    parts = (rows[: n // 3], rows[n // 3 : 2 * n // 3], rows[2 * n // 3 :])
    return tuple(_mean([v for r in p if (v := r.get(col)) is not None]) for p in parts)


def verdicts(rows: list[dict[str, float | None]], ratio: float, slack: dict[str, float]) -> str:
    """One line per series: first / middle / last third means and whether it levels off."""
    lines = [
        f"levels off: mean(last third) <= {ratio:g} x mean(middle third), or within"
        f" {', '.join(f'{v:g} {k}' for k, v in slack.items())} of it"
    ]
    for col, (unit, label) in SERIES.items():
        first, middle, last = thirds(rows, col)
        if middle is None or last is None:
            lines.append(f"  {label:36} no samples")
            continue
        ok = last <= middle * ratio or last - middle <= slack[unit]
        lines.append(
            f"  {label:36} {first or 0:9.1f} {middle:9.1f} {last:9.1f}"
            f"  {'levels off' if ok else 'GROWS'}"
        )
    return "\n".join(lines)


WINDOW_MIN: Final = 5.0
"""Latency and CPU are compared between the first and the last five minutes of traffic."""
PROCS: Final = ("server", "ingest", "worker", "reply", "postgres", "mosquitto", "redis")


def _median(values: list[float]) -> float | None:
    s = sorted(values)
    return s[len(s) // 2] if s else None


def _fmt(x: float | None, nd: int = 0) -> str:
    return "-" if x is None else f"{x:,.{nd}f}"


def summary(rows: list[dict[str, float | None]]) -> str:
    """The figures docs/BENCHMARKS.md quotes: RSS start / end / peak per process, CPU and
    latencies in the first against the last ``WINDOW_MIN`` minutes, messages sent / stored."""
    busy = _traffic(rows)
    t_first = busy[0]["t_s"] or 0.0
    t_last = busy[-1]["t_s"] or 0.0
    first = [r for r in busy if (r["t_s"] or 0) <= t_first + WINDOW_MIN * 60]
    last = [r for r in busy if (r["t_s"] or 0) >= t_last - WINDOW_MIN * 60]

    def col(part: list[dict[str, float | None]], c: str) -> list[float]:
        return [v for r in part if (v := r.get(c)) is not None]

    out = [f"traffic {len(busy)} samples, {(t_last - t_first) / 60:.1f} min"]
    for p in PROCS:
        rss = col(busy, f"{p}_rss_mib")
        anon = col(busy, f"{p}_anon_mib")
        cpu_a = _mean(col(first, f"{p}_cpu_pct"))
        cpu_b = _mean(col(last, f"{p}_cpu_pct"))
        out.append(
            f"  {p:10} RSS start {_fmt(rss[0] if rss else None)} end"
            f" {_fmt(rss[-1] if rss else None)} peak {_fmt(max(rss) if rss else None)} MiB"
            f" (private {_fmt(anon[0] if anon else None)} → {_fmt(anon[-1] if anon else None)},"
            f" peak {_fmt(max(anon) if anon else None)});"
            f" CPU first {_fmt(cpu_a, 1)} % last {_fmt(cpu_b, 1)} %"
        )
    for c in (
        "batch_mean_ms",
        "alert_p50_ms",
        "alert_p99_ms",
        "position_p50_ms",
        "position_p99_ms",
        "backlog",
        "sent_per_s",
        "stored_per_s",
        "load1",
    ):
        a, b = col(first, c), col(last, c)
        out.append(
            f"  {c:16} first {WINDOW_MIN:g} min median {_fmt(_median(a), 1)} max"
            f" {_fmt(max(a) if a else None, 1)}; last median {_fmt(_median(b), 1)} max"
            f" {_fmt(max(b) if b else None, 1)}"
        )
    end = rows[-1]
    out.append(
        f"  messages: sent {_fmt(end.get('sent_total'))}, received by ingest"
        f" {_fmt(end.get('received_total'))}, stored {_fmt(end.get('stored_total'))};"
        f" db retries {_fmt(end.get('db_retries'))}; websockets closed by the server"
        f" {_fmt(sum(col(rows, 'ws_closed')))}"
    )
    return "\n".join(out)


def plot(rows: list[dict[str, float | None]], png: Path) -> None:
    """Four panels over time: RSS, CPU, queues, latencies (log scale); saved to *png*."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [(r["t_s"] or 0.0) / 60 for r in rows]
    fig, axes = plt.subplots(5, 1, figsize=(11, 15), sharex=True)

    def line(ax: Any, col: str, label: str) -> None:
        pts = [(x, r[col]) for x, r in zip(t, rows, strict=True) if r.get(col) is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=label, linewidth=1.2)

    ax = axes[0]
    for col in ("server", "ingest", "worker", "reply", "postgres", "mosquitto", "redis"):
        line(ax, f"{col}_rss_mib", SERIES[f"{col}_rss_mib"][1].removesuffix(" RSS"))
    line(ax, "postgres_anon_mib", "PostgreSQL backends private (RssAnon)")
    ax.set_ylabel("RSS (MiB)")
    ax.set_title("Resident memory per process (PostgreSQL RSS includes shared buffers touched)")
    ax = axes[1]
    for col in ("server", "worker", "reply", "postgres", "mosquitto", "redis"):
        line(ax, f"{col}_cpu_pct", SERIES.get(f"{col}_cpu_pct", ("", col))[1].removesuffix(" CPU"))
    ax.set_ylabel("CPU (% of one core)")
    ax.set_title("CPU per process (10 s means); load average on the right axis")
    twin = ax.twinx()
    twin.plot(t, [r["load1"] for r in rows], color="black", linestyle=":", label="load 1 min")
    twin.set_ylabel("load average (1 min)")
    twin.legend(loc="upper right", fontsize=8)
    ax = axes[2]
    line(ax, "sent_per_s", "sent by the devices")
    line(ax, "stored_per_s", "stored by ingest")
    ax.set_ylabel("messages/s")
    ax.set_title("Throughput")
    ax = axes[3]
    line(ax, "backlog", "ingest backlog (received − settled)")
    line(ax, "bridge_queue", "ingest → Redis bridge queue")
    ax.set_ylabel("messages")
    ax.set_title("Queue depths (sampled)")
    ax = axes[4]
    line(ax, "batch_mean_ms", "batch commit mean (interval)")
    line(ax, "batch_p99_ms", "batch commit p99 (worker's last 4096 batches)")
    line(ax, "alert_p50_ms", "alert publish→frame p50")
    line(ax, "alert_p99_ms", "alert publish→frame p99")
    line(ax, "position_p50_ms", "position publish→frame p50")
    line(ax, "position_p99_ms", "position publish→frame p99")
    ax.set_yscale("log")
    ax.set_ylabel("ms (log)")
    ax.set_title("Latencies of each 10 s interval")
    ax.set_xlabel("minutes since start")
    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(png, dpi=80)
    plt.close(fig)
