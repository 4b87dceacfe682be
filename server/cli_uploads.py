"""``cylwatch uploads sweep``: remove uploaded files no ``uploads`` row names.

A submission refused after its files were stored (``server.kernel.uploads.store`` writes the
bytes, then the row, in the request's transaction) leaves bytes on disk with no row; this
command removes them once they are older than ``--older-than-hours``
(``server.kernel.uploads.sweep_orphans``; docs/ARCHITECTURE.md §3). A file any row names is
never removed — records and their photos are kept permanently. Run it from cron, e.g. daily.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from server.db.pool import connect
from server.kernel.settings import Settings
from server.kernel.uploads import sweep_orphans

__all__ = ["add_commands"]

DEFAULT_GRACE_HOURS = 24.0
"""A request stores its files and commits their rows within seconds (bounded by the HTTP
timeouts); a day leaves any upload in flight alone with a wide margin, and an orphan costs
only disk until the next run."""
MIN_GRACE_HOURS = 1.0
"""Never closer to the present than an hour: far past any request's time limit."""


def add_commands(sub: Any) -> None:
    up = sub.add_parser("uploads", help="the uploaded files under [uploads] dir")
    usub = up.add_subparsers(dest="uploads_command", metavar="SUBCOMMAND")
    usub.required = True
    p = usub.add_parser(
        "sweep", help="remove files older than the grace period that no uploads row names"
    )
    p.add_argument(
        "--older-than-hours",
        type=float,
        default=DEFAULT_GRACE_HOURS,
        help=f"grace period (default {DEFAULT_GRACE_HOURS:g}, at least {MIN_GRACE_HOURS:g})",
    )
    p.add_argument("--dry-run", action="store_true", help="list what would be removed")
    p.set_defaults(func=cmd_uploads_sweep)


async def cmd_uploads_sweep(args: argparse.Namespace, settings: Settings) -> int:
    if args.older_than_hours < MIN_GRACE_HOURS:
        print(f"cylwatch: --older-than-hours must be at least {MIN_GRACE_HOURS:g}")
        return 2
    conn = await connect(settings)
    try:
        paths = await sweep_orphans(
            conn,
            settings.uploads,
            dt.timedelta(hours=args.older_than_hours),
            dry_run=args.dry_run,
        )
    finally:
        await conn.close()
    for path in paths:
        print(path)
    verb = "would remove" if args.dry_run else "removed"
    print(f"uploads sweep: {verb} {len(paths)} orphan file(s)")
    return 0
