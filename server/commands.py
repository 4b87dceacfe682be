"""Operator commands: migrate, serve, demo, users."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
from typing import Any

from aiohttp import web

from server.db.migrate import migrate
from server.db.pool import connect
from server.domain.statuses import ROLES
from server.kernel.passwords import hash_password
from server.kernel.services import redact
from server.kernel.settings import Settings, load_settings

log = logging.getLogger(__name__)


def add_commands(sub: Any) -> None:
    p = sub.add_parser("migrate", help="create the database if needed and apply migrations")
    p.add_argument("--database-url", help="override CYL_DATABASE_URL")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("serve", help="run HTTP, websockets and an ingest worker")
    p.add_argument("--host", help="listen address (default from [http] host)")
    p.add_argument("--port", type=int, help="listen port (default from [http] port)")
    p.add_argument("--workers", type=int, default=1, help="server processes sharing the port")
    p.add_argument(
        "--no-ingest", action="store_true", help="do not run an ingest worker in-process"
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "demo",
        help="migrate, seed a demo city if empty, serve, and simulate its devices",
        description="Everything needed to see the platform working: migrations, a synthetic "
        "Zhengzhou-like city (if the database is empty), the server with an ingest worker, "
        "and the device simulator. Prints the URLs and demo logins.",
    )
    p.add_argument("--cylinders", type=int, help="cylinders to seed (default from [seed])")
    p.add_argument("--port", type=int, help="listen port")
    p.add_argument("--no-sim", action="store_true", help="do not start the device simulator")
    p.add_argument("--sim-rate", type=float, default=50.0, help="simulated messages per second")
    p.set_defaults(func=cmd_demo)

    users = sub.add_parser("user", help="manage platform users")
    usub = users.add_subparsers(dest="user_command", metavar="ACTION")
    usub.required = True
    p = usub.add_parser("add", help="create a user (asks for the password if not given)")
    p.add_argument("username")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--password", help="the password (prompted when omitted)")
    p.add_argument("--display-name")
    p.add_argument("--company", help="company code (company_admin, station_operator)")
    p.add_argument(
        "--site", help="site code (station_operator: the station; inspector: the agency)"
    )
    p.add_argument("--district", action="append", default=[], help="district code (repeatable)")
    p.set_defaults(func=cmd_user_add)
    p = usub.add_parser("list", help="list users")
    p.set_defaults(func=cmd_user_list)
    p = usub.add_parser("passwd", help="set a user's password")
    p.add_argument("username")
    p.add_argument("--password", help="the new password (prompted when omitted)")
    p.set_defaults(func=cmd_user_passwd)


async def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    dsn = args.database_url or settings.services.database_url
    result = await migrate(settings, dsn)
    print(
        f"database {redact(dsn)}: applied {len(result.applied)} migration(s)"
        f" {' '.join(result.applied)}; {len(result.already)} already applied;"
        f" {result.partitions_created} new partition(s)"
    )
    for v in result.changed:
        print(f"warning: migration {v} was edited after it was applied", file=sys.stderr)
    return 0


def _run_server(
    settings: Settings, host: str, port: int, with_ingest: bool, reuse_port: bool
) -> None:
    from server.app import create_app

    app = create_app(settings, with_ingest=with_ingest)
    try:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        loop = asyncio.new_event_loop()
    web.run_app(
        app,
        host=host,
        port=port,
        reuse_port=reuse_port,
        loop=loop,
        print=None,
        access_log=None,
        handle_signals=True,
    )


def _child(config: str | None, host: str, port: int, with_ingest: bool, index: int) -> None:
    os.environ["CYL_WORKER_INDEX"] = str(index)
    settings = load_settings(config)
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s [{index}] %(levelname)s %(name)s: %(message)s"
    )
    _run_server(settings, host, port, with_ingest, True)


async def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    host = args.host or settings.http.host
    port = args.port or settings.http.port
    await _preflight(settings)
    print(f"CylinderWatch serving on http://{host}:{port} ({args.workers} process(es))", flush=True)
    if args.workers <= 1:
        # aiohttp's run_app owns its event loop: leave the CLI's loop first (see cli.main)
        raise ServeInline(host, port, not args.no_ingest)
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(
            target=_child, args=(args.config, host, port, not args.no_ingest, i), daemon=False
        )
        for i in range(args.workers)
    ]
    for proc in procs:
        proc.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.join(10)
    return 0


class ServeInline(Exception):
    """Raised out of the CLI's event loop so that aiohttp's run_app can own a fresh one."""

    def __init__(self, host: str, port: int, with_ingest: bool) -> None:
        super().__init__("serve")
        self.host, self.port, self.with_ingest = host, port, with_ingest


async def _preflight(settings: Settings) -> None:
    """Fail fast, in one line, if PostgreSQL or Redis is down or the schema is old."""
    from server.app import connect_redis
    from server.db.migrate import check_current

    conn = await connect(settings)
    try:
        pending = await check_current(conn)
    finally:
        await conn.close()
    if pending:
        from server.kernel.services import ServiceUnavailable

        raise ServiceUnavailable(
            "PostgreSQL",
            settings.services.database_url,
            f"{len(pending)} migration(s) pending: run `cylwatch migrate`",
        )
    redis = await connect_redis(settings)
    await redis.aclose()


def serve_inline(exc: ServeInline, settings: Settings) -> None:
    _run_server(settings, exc.host, exc.port, exc.with_ingest, False)


async def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from server import seed

    await migrate(settings)
    conn = await connect(settings)
    try:
        count = await conn.fetchval("SELECT count(*) FROM cylinders")
    finally:
        await conn.close()
    if not count:
        n = args.cylinders or settings.seed.cylinders
        print(f"seeding a demo city with {n:,} cylinders ...", flush=True)
        seed_args = argparse.Namespace(
            cylinders=n,
            companies=None,
            stations=None,
            stores=None,
            customers=None,
            vehicles=None,
            random_seed=None,
            if_empty=True,
            database_url=None,
            quiet_logins=True,
        )
        await seed.run_seed(seed_args, settings)
    port = args.port or settings.http.port
    base = f"http://127.0.0.1:{port}"
    print("\nCylinderWatch demo city is starting.")
    print(f"  regulator dashboard   {base}/")
    print(f"  command-centre wall   {base}/big-screen")
    print(f"  field officer (PWA)   {base}/m")
    print(f"  cylinder archive      {base}/cylinders")
    print(f"  API (OpenAPI)         {base}/api/v1/openapi.json")
    print("\nDemo logins:")
    print(seed.format_demo_users(), flush=True)
    sim: subprocess.Popen[bytes] | None = None
    if not args.no_sim:
        cmd = [sys.executable, "-m", "server.cli", "sim", "--rate", str(args.sim_rate)]
        if args.config:
            cmd[3:3] = ["--config", args.config]
        # a plain Popen on purpose: the simulator outlives this short-lived event loop
        sim = subprocess.Popen(cmd)  # noqa: S603, ASYNC220 - our own CLI
    try:
        raise ServeInline("0.0.0.0", port, True)
    finally:
        if sim is not None:
            import atexit

            atexit.register(sim.terminate)


async def _resolve(conn: Any, table: str, code: str | None) -> int | None:
    if not code:
        return None
    value = await conn.fetchval(f"SELECT id FROM {table} WHERE code = $1", code)
    if value is None:
        raise SystemExit(f"cylwatch: no {table[:-1]} with code {code!r}")
    return int(value)


def _ask_password(settings: Settings, given: str | None) -> str:
    password = given or getpass.getpass("password: ")
    if len(password) < settings.auth.min_password_length:
        raise SystemExit(
            f"cylwatch: a password needs at least {settings.auth.min_password_length} characters"
        )
    return password


async def cmd_user_add(args: argparse.Namespace, settings: Settings) -> int:
    password = _ask_password(settings, args.password)
    conn = await connect(settings)
    try:
        company_id = await _resolve(conn, "companies", args.company)
        site_id = await _resolve(conn, "sites", args.site)
        if args.role == "station_operator" and site_id and company_id is None:
            company_id = await conn.fetchval("SELECT company_id FROM sites WHERE id = $1", site_id)
        try:
            uid = await conn.fetchval(
                """INSERT INTO users (username, password_hash, display_name, role, company_id, site_id, districts)
                   VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id""",
                args.username,
                hash_password(settings.auth, password),
                args.display_name,
                args.role,
                company_id,
                site_id,
                args.district,
            )
        except Exception as exc:  # asyncpg constraint errors → one clear line
            import asyncpg

            if isinstance(exc, asyncpg.UniqueViolationError):
                raise SystemExit(f"cylwatch: user {args.username!r} already exists") from None
            if isinstance(exc, asyncpg.CheckViolationError):
                raise SystemExit(
                    f"cylwatch: role {args.role} needs its scope: company_admin --company, "
                    "station_operator --site, inspector --site, officer --district"
                ) from None
            raise
        await conn.execute(
            "INSERT INTO audit_log (username, action, entity, entity_id, details)"
            " VALUES ('cli', 'user.create', 'user', $1, $2)",
            str(uid),
            {"username": args.username, "role": args.role},
        )
    finally:
        await conn.close()
    print(f"created user {args.username} ({args.role}), id {uid}")
    return 0


async def cmd_user_list(args: argparse.Namespace, settings: Settings) -> int:
    conn = await connect(settings)
    try:
        rows = await conn.fetch(
            "SELECT username, role, company_id, site_id, districts, active FROM users ORDER BY id"
        )
    finally:
        await conn.close()
    for r in rows:
        scope = ",".join(r["districts"]) or (
            f"company {r['company_id']}" if r["company_id"] else "city"
        )
        print(
            f"{r['username']:<20} {r['role']:<17} {scope:<24} {'active' if r['active'] else 'disabled'}"
        )
    return 0


async def cmd_user_passwd(args: argparse.Namespace, settings: Settings) -> int:
    """Set a password and end every session of the account (docs/SECURITY.md "Sessions and
    credentials"): whoever held one must log in with the new password."""
    password = _ask_password(settings, args.password)
    conn = await connect(settings)
    try:
        uid = await conn.fetchval(
            "UPDATE users SET password_hash = $2, updated_at = now() WHERE username = $1"
            " RETURNING id",
            args.username,
            hash_password(settings.auth, password),
        )
    finally:
        await conn.close()
    if uid is None:
        print(f"cylwatch: no user {args.username!r}", file=sys.stderr)
        return 1
    ended = await _end_all_sessions(settings, int(uid))
    print(f"password of {args.username} changed; {ended} session(s) ended")
    return 0


async def _end_all_sessions(settings: Settings, user_id: int) -> int:
    """Delete the user's sessions in Redis and tell every server process to close their
    websockets (the message the Redis bridge carries; the CLI has no bus of its own)."""
    from realtime.bridge import bridge_channel, encode, new_origin
    from server.app import connect_redis
    from server.kernel.principal import end_user_sessions, session_index, sessions_ended_event

    redis = await connect_redis(settings)
    try:
        ended = await end_user_sessions(redis, session_index(settings, user_id))
        event = sessions_ended_event(user_id)
        await redis.publish(bridge_channel(settings), encode(event, f"cli:{new_origin()}"))
    finally:
        await redis.aclose()
    return len(ended)
