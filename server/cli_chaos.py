"""``cylwatch chaos``: faults injected while a simulated city runs (docs/RELIABILITY.md
"Chaos runs"); the rounds themselves are `server.chaos`.

Everything it starts is private — a PostgreSQL cluster, a Mosquitto, `cylwatch ingest` — so
it may run on a machine that serves other work; it needs the PostgreSQL 15 server programs
(``initdb``) and ``mosquitto`` installed, not running.
"""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from server.kernel.settings import Settings

__all__ = ["add_commands"]


def add_commands(sub: Any) -> None:
    from server.chaos import FAULTS, ChaosConfig

    d = ChaosConfig()
    p = sub.add_parser(
        "chaos",
        help="inject faults while a simulated city runs; check nothing is lost",
        description="Start a private PostgreSQL, Mosquitto (config/mosquitto.conf, "
        "persistence on) and `cylwatch ingest`, publish the simulator's mix at --rate with "
        "QoS 1, inject each fault in turn and print fault → outcome → recovery time: every "
        "message the broker acknowledged stored exactly once, fill authorization answering "
        f"again. Faults: {', '.join(FAULTS)}.",
    )
    p.add_argument(
        "--fault",
        action="append",
        choices=list(FAULTS),
        help="a fault to run (repeatable; default: all, in order)",
    )
    p.add_argument("--rate", type=float, default=d.rate, help="messages/s (default %(default)s)")
    p.add_argument(
        "--duration", type=float, default=d.duration_s, help="seconds of traffic per fault"
    )
    p.add_argument(
        "--warmup", type=float, default=d.warmup_s, help="seconds of traffic before the fault"
    )
    p.add_argument(
        "--fault-seconds",
        type=float,
        default=d.fault_s,
        help="length of a fault that lasts (pause-db, disk-full, broker-down; default %(default)s)",
    )
    p.add_argument("--workers", type=int, default=d.workers, help="ingest worker processes")
    p.add_argument(
        "--autosave-interval",
        type=int,
        help="override the broker's autosave_interval (default: config/mosquitto.conf's)",
    )
    p.add_argument(
        "--mosquitto",
        metavar="PATH",
        help="the broker program to run (default: mosquitto on PATH), e.g. a newer build",
    )
    p.add_argument("--logs", type=Path, help="keep ingest and broker logs in this directory")
    p.set_defaults(func=cmd_chaos)


def _interrupt(_sig: int, _frame: FrameType | None) -> NoReturn:
    raise KeyboardInterrupt


async def cmd_chaos(args: argparse.Namespace, settings: Settings) -> int:
    from server.chaos import ChaosConfig, format_table, run_chaos

    # a SIGTERM (a CI timeout, systemd) unwinds like Ctrl-C, so that the private services are
    # stopped and their temp dirs removed
    signal.signal(signal.SIGTERM, _interrupt)

    if args.logs:
        args.logs.mkdir(parents=True, exist_ok=True)
    cfg = ChaosConfig(
        rate=args.rate,
        duration_s=args.duration,
        warmup_s=args.warmup,
        fault_s=args.fault_seconds,
        workers=args.workers,
        autosave_interval=args.autosave_interval,
        mosquitto=args.mosquitto,
        keep_logs=args.logs,
    )
    if args.fault:
        cfg.faults = list(args.fault)
    outcomes = await run_chaos(cfg)
    print()
    print(format_table(outcomes))
    return 0 if all(o.ok for o in outcomes) else 1
