"""``cylwatch audit verify``: is the audit log's hash chain intact? (docs/SECURITY.md)

Exit 0 when every link holds, 1 naming the first broken row otherwise, so a cron job or a
monitoring check can run it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from server.db.audit_chain import verify_chain
from server.db.pool import connect
from server.kernel.settings import Settings

__all__ = ["add_commands"]


def add_commands(sub: Any) -> None:
    audit = sub.add_parser("audit", help="the append-only audit log")
    asub = audit.add_subparsers(dest="audit_command", metavar="SUBCOMMAND")
    asub.required = True
    p = asub.add_parser(
        "verify", help="check the audit log's hash chain; report the first broken row"
    )
    p.set_defaults(func=cmd_audit_verify)


async def cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    conn = await connect(settings)
    try:
        report = await verify_chain(conn)
    finally:
        await conn.close()
    if report.intact:
        print(f"audit log intact: {report.rows} rows, every link verified")
        return 0
    what = (
        "does not follow the row before it (a row was removed or inserted)"
        if report.broken_link == "prev_hash"
        else "was changed after it was written"
    )
    print(
        f"audit log BROKEN at row {report.first_broken_id}: it {what}; {report.rows} rows checked",
        file=sys.stderr,
    )
    return 1
