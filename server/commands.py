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
from collections.abc import Sequence
from typing import Any

import asyncpg
import msgspec
from aiohttp import web

from server.db.migrate import migrate, migrate_url
from server.db.pool import connect
from server.domain.statuses import ROLES
from server.kernel.passwords import hash_password
from server.kernel.request_ids import configure_logging
from server.kernel.services import redact
from server.kernel.settings import Settings, load_settings

log = logging.getLogger(__name__)


def add_commands(sub: Any) -> None:
    p = sub.add_parser("migrate", help="create the database if needed and apply migrations")
    p.add_argument(
        "--database-url", help="override [services] database_owner_url (else database_url)"
    )
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
    # allow_abbrev=False: `--password SECRET` must be refused, not taken for --password-file
    p = usub.add_parser(
        "add",
        help="create a user (the password is asked for, or read from a file)",
        allow_abbrev=False,
    )
    p.add_argument("username")
    p.add_argument("--role", required=True, choices=ROLES)
    _password_source(p)
    p.add_argument("--display-name")
    p.add_argument("--company", help="company code (company_admin, station_operator)")
    p.add_argument(
        "--site", help="site code (station_operator: the station; inspector: the agency)"
    )
    p.add_argument("--district", action="append", default=[], help="district code (repeatable)")
    p.set_defaults(func=cmd_user_add)
    p = usub.add_parser("list", help="list users")
    p.set_defaults(func=cmd_user_list)
    p = usub.add_parser("passwd", help="set a user's password", allow_abbrev=False)
    p.add_argument("username")
    _password_source(p)
    p.set_defaults(func=cmd_user_passwd)


def _password_source(p: argparse.ArgumentParser) -> None:
    """Passwords never come from argv: other local users can read a process's arguments
    (``ps``) and shells keep them in their history (docs/SECURITY.md "Defaults and secrets")."""
    p.add_argument(
        "--password-file",
        metavar="PATH",
        help="read the password from the first line of PATH (default: asked on the"
        " terminal, or read from the first line of standard input when it is not one)",
    )


async def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    dsn = args.database_url or migrate_url(settings)
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
    configure_logging(settings.logging.format, tag=str(index))
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

    def __init__(
        self, host: str, port: int, with_ingest: bool, settings: Settings | None = None
    ) -> None:
        super().__init__("serve")
        self.host, self.port, self.with_ingest = host, port, with_ingest
        self.settings = settings
        """Settings the command changed (the demo's), else the CLI's own."""


async def _preflight(settings: Settings) -> None:
    """Fail fast, in one line, if PostgreSQL or Redis is down, the schema is old, the
    ID-number hash key is missing, or no one could administer the platform."""
    from server.app import connect_redis
    from server.db.install import load_id_hash_key
    from server.db.migrate import check_current

    conn = await connect(settings)
    try:
        pending = await check_current(conn)
        if not pending:
            await load_id_hash_key(settings.privacy, conn, os.environ)
            await _first_admin(settings, conn)
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


FIRST_ADMIN = "admin"


async def _first_admin(settings: Settings, conn: Any) -> None:
    """The first start of a real install has no administrator and no default password
    (docs/SECURITY.md "Defaults and secrets"): on a terminal, ask for the password of
    ``admin``; unattended (systemd, a container), refuse to start with the command that
    makes one, rather than serve a platform nobody can administer."""
    if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM users WHERE role = 'admin' AND active)"):
        return
    if not sys.stdin.isatty():
        raise SystemExit(
            "cylwatch: no administrator yet: create one with"
            f" `cylwatch user add {FIRST_ADMIN} --role admin`, then start again"
        )
    print(f"No administrator yet: choose the password of user {FIRST_ADMIN!r}.", flush=True)
    args = argparse.Namespace(password_file=None)
    await _insert_user(
        conn, settings, _ask_password(settings, args), username=FIRST_ADMIN, role="admin"
    )
    print(f"created user {FIRST_ADMIN} (admin)", flush=True)


def serve_inline(exc: ServeInline, settings: Settings) -> None:
    _run_server(exc.settings or settings, exc.host, exc.port, exc.with_ingest, False)


async def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from server import seed
    from server.db.install import is_demo

    await migrate(settings)
    conn = await connect(settings)
    try:
        count = await conn.fetchval("SELECT count(*) FROM cylinders")
        demo = await is_demo(conn)
    finally:
        await conn.close()
    if count and not demo:
        print(
            "cylwatch demo: this database holds cylinders but is not the demo's; point"
            " CYL_DATABASE_URL at another database (or use `cylwatch serve`)",
            file=sys.stderr,
        )
        return 1
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
            demo=True,
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
    # the demo is plain http on this machine: Secure cookies would never come back
    auth = msgspec.structs.replace(settings.auth, secure_cookies=False)
    try:
        raise ServeInline("0.0.0.0", port, True, msgspec.structs.replace(settings, auth=auth))
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


def _ask_password(settings: Settings, args: argparse.Namespace) -> str:
    """The password from ``--password-file``, else asked twice on the terminal, else the
    first line of standard input (a script: ``cylwatch user passwd x < secret``)."""
    path = getattr(args, "password_file", None)
    if path:
        try:
            with open(path, encoding="utf-8") as fh:
                password = fh.readline().rstrip("\r\n")
        except OSError as exc:
            raise SystemExit(f"cylwatch: cannot read {path}: {exc.strerror}") from None
    elif sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise SystemExit("cylwatch: the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < settings.auth.min_password_length:
        raise SystemExit(
            f"cylwatch: a password needs at least {settings.auth.min_password_length} characters"
        )
    return password


async def _cli_audit(conn: Any, action: str, user_id: int, details: dict[str, Any]) -> None:
    """An audit row for a change made at the command line (no platform user: the row names
    the operating-system account that ran the command)."""
    await conn.execute(
        "INSERT INTO audit_log (username, action, entity, entity_id, details)"
        " VALUES ('cli', $1, 'user', $2, $3)",
        action,
        str(user_id),
        {**details, "os_user": getpass.getuser()},
    )


async def _insert_user(
    conn: Any,
    settings: Settings,
    password: str,
    *,
    username: str,
    role: str,
    display_name: str | None = None,
    company_id: int | None = None,
    site_id: int | None = None,
    districts: Sequence[str] = (),
) -> int:
    """Create a user and its audit row in one transaction; constraint errors in one line."""
    try:
        async with conn.transaction():
            uid = int(
                await conn.fetchval(
                    """INSERT INTO users (username, password_hash, display_name, role, company_id,
                                          site_id, districts)
                       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id""",
                    username,
                    hash_password(settings.auth, password),
                    display_name,
                    role,
                    company_id,
                    site_id,
                    list(districts),
                )
            )
            await _cli_audit(conn, "user.create", uid, {"username": username, "role": role})
    except asyncpg.UniqueViolationError:
        raise SystemExit(f"cylwatch: user {username!r} already exists") from None
    except asyncpg.CheckViolationError:
        raise SystemExit(
            f"cylwatch: role {role} needs its scope: company_admin --company, "
            "station_operator --site, inspector --site, officer --district"
        ) from None
    return uid


async def cmd_user_add(args: argparse.Namespace, settings: Settings) -> int:
    password = _ask_password(settings, args)
    conn = await connect(settings)
    try:
        company_id = await _resolve(conn, "companies", args.company)
        site_id = await _resolve(conn, "sites", args.site)
        if args.role == "station_operator" and site_id and company_id is None:
            company_id = await conn.fetchval("SELECT company_id FROM sites WHERE id = $1", site_id)
        uid = await _insert_user(
            conn,
            settings,
            password,
            username=args.username,
            role=args.role,
            display_name=args.display_name,
            company_id=company_id,
            site_id=site_id,
            districts=args.district,
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
    password = _ask_password(settings, args)
    conn = await connect(settings)
    try:
        async with conn.transaction():
            uid = await conn.fetchval(
                "UPDATE users SET password_hash = $2, updated_at = now() WHERE username = $1"
                " RETURNING id",
                args.username,
                hash_password(settings.auth, password),
            )
            if uid is not None:
                await _cli_audit(conn, "user.password", uid, {"username": args.username})
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
