"""`cylwatch seed`: migrate, then build the demo city unless it is there; print the logins."""

from __future__ import annotations

import argparse
import sys

import asyncpg

from server.db.install import NotADemo, is_demo
from server.db.migrate import migrate, migrate_url
from server.db.pool import connect
from server.kernel.settings import Settings
from server.seed.city import seed_city
from server.seed.records import AlreadySeeded
from server.seed.users import format_demo_users


def _count(text: str) -> int:
    """argparse type: a count, refused before anything is touched when negative."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``cylwatch seed``."""
    p = sub.add_parser(
        "seed",
        help="build the synthetic Zhengzhou-like demo city",
        description=(
            "Create a synthetic demo city: districts from config/districts.geojson, gas\n"
            "companies, filling stations, stores, customers, devices and cylinders with a\n"
            "realistic spread of inspection and scrap dates, plus demo logins. Migrates the\n"
            "database first. Sizes default to [seed] in the settings."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--cylinders", type=_count, metavar="N", help="cylinders (default [seed] cylinders)"
    )
    p.add_argument("--companies", type=_count, metavar="N", help="gas companies")
    p.add_argument("--stations", type=_count, metavar="N", help="filling stations")
    p.add_argument("--stores", type=_count, metavar="N", help="stores (供应站)")
    p.add_argument(
        "--customers",
        type=_count,
        metavar="N",
        help="real-name customers (default [seed] customers, scaled down for a smaller city)",
    )
    p.add_argument("--vehicles", type=_count, metavar="N", help="delivery vehicles")
    p.add_argument(
        "--history-months",
        type=_count,
        metavar="N",
        help="months of history before today: fills, deliveries, inspections, refusals,"
        " alerts, complaints (default [seed] history_months; 0: a small sample of fills)",
    )
    p.add_argument("--random-seed", type=int, metavar="N", help="random seed (default [seed])")
    p.add_argument(
        "--demo",
        action="store_true",
        help="seed a fresh database (no users yet) and mark it as the demo; without it only"
        " a database already marked as the demo is touched (docs/SECURITY.md)",
    )
    p.add_argument(
        "--if-empty",
        action="store_true",
        help="do nothing (exit 0) if the database already holds cylinders",
    )
    p.add_argument(
        "--database-url",
        metavar="URL",
        help="override [services] database_owner_url (else database_url)",
    )
    p.set_defaults(func=run_seed)


async def run_seed(args: argparse.Namespace, settings: Settings) -> int:
    """`cylwatch seed`: migrate, then seed unless already seeded; print the demo logins.

    Only a database marked as the demo, or a fresh one with ``--demo``, is seeded
    (server.db.install)."""
    dsn = getattr(args, "database_url", None) or migrate_url(settings)
    cylinders = settings.seed.cylinders if args.cylinders is None else args.cylinders
    await migrate(settings, dsn)
    conn = await connect(settings, dsn)
    try:
        if not getattr(args, "demo", False) and not await is_demo(conn):
            print(
                "cylwatch seed: this database is not marked as the demo; the demo city's"
                " logins are published, so it is seeded only into a fresh database with"
                " --demo (`cylwatch seed --demo`)",
                file=sys.stderr,
            )
            return 1
        existing = int(await conn.fetchval("SELECT count(*) FROM cylinders"))
        if existing and args.if_empty:
            print(f"database already seeded ({existing:,} cylinders); nothing to do")
            return 0
        try:
            summary = await seed_city(
                conn,
                settings,
                cylinders=cylinders,
                companies=args.companies,
                stations=args.stations,
                stores=args.stores,
                customers=args.customers,
                vehicles=args.vehicles,
                random_seed=args.random_seed,
                history_months=getattr(args, "history_months", None),
            )
        except NotADemo as exc:
            print(f"cylwatch seed: {exc}", file=sys.stderr)
            return 1
        except AlreadySeeded as exc:
            if args.if_empty:  # seeded by someone else between our check and our lock
                print(f"database already seeded ({exc.cylinders:,} cylinders); nothing to do")
                return 0
            print(f"cylwatch seed: {exc}", file=sys.stderr)
            return 1
        except (ValueError, OSError) as exc:  # bad counts, unreadable districts file
            print(f"cylwatch seed: {exc}", file=sys.stderr)
            return 2
        except asyncpg.UniqueViolationError as exc:
            print(
                "cylwatch seed: the database already holds master data that clashes with the "
                f"demo city ({exc.constraint_name}); use a fresh database",
                file=sys.stderr,
            )
            return 1
    finally:
        await conn.close()
    print("seeded the demo city:")
    for line in summary.lines():
        print(f"  {line}")
    if not getattr(args, "quiet_logins", False):  # `cylwatch demo` prints them after the URLs
        print("demo logins:")
        print(format_demo_users())
    return 0
