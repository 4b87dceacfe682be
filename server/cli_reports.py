"""``cylwatch reports refresh``: refresh the report rollups now (``server.db.rollup_refresh``;
docs/ARCHITECTURE.md §9 "Reports").

Every server process refreshes them every ``[reports] rollup_refresh_s`` already; this is for
an operator after a bulk load (a seeded history, an enterprise upload of old fills), a
deployment whose servers run with the round off, or a cron job. It waits for a refresh that
another process is doing, then refreshes everything with what is stored now — the whole
history of fills too, which the round refreshes once a day — and prints the watermark.
``--no-wait`` returns at once (exit 1) when another process holds the lock.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from typing import Any

from server.db.pool import connect
from server.db.rollup_refresh import RollupJobError, refresh
from server.db.rollups import watermark
from server.kernel.settings import Settings

__all__ = ["add_commands"]


def add_commands(sub: Any) -> None:
    reports = sub.add_parser("reports", help="the reports' rollups")
    rsub = reports.add_subparsers(dest="reports_command", metavar="SUBCOMMAND")
    rsub.required = True
    p = rsub.add_parser(
        "refresh",
        help="refresh the report rollups now and print their watermark",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--no-wait",
        action="store_true",
        help="give up (exit 1) when another process is refreshing instead of waiting",
    )
    p.add_argument("--database-url", help="override [services] database_url")
    p.set_defaults(func=cmd_reports_refresh)


async def cmd_reports_refresh(args: argparse.Namespace, settings: Settings) -> int:
    conn = await connect(settings, args.database_url)
    try:
        started = time.perf_counter()
        try:
            done = await refresh(
                conn, settings, wait=not args.no_wait, now=dt.datetime.now(dt.UTC), full=True
            )
        except RollupJobError as exc:
            print(f"report rollups: {exc}", file=sys.stderr)
            return 1
        if not done:
            print("another process is refreshing the rollups; not waiting", file=sys.stderr)
            return 1
        state = await watermark(conn)
    finally:
        await conn.close()
    assert state is not None
    print(
        f"report rollups refreshed in {time.perf_counter() - started:.1f} s ({state.mode}): "
        f"days before {state.upto} from the rollups, later days live"
    )
    return 0
