"""``cylwatch devices mosquitto-config --out DIR`` and ``cylwatch devices broker-sync``: the
broker's view of the device registry (docs/SECURITY.md "Broker"; DESIGN §5) — password and
ACL files for a broker run with them, or the dynamic-security plugin's clients and roles
brought in line with the registry. Every password set is audited, never the password.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
import time
from pathlib import Path
from typing import Any

from server.kernel.settings import Settings

__all__ = ["add_commands", "audit_device_credentials", "cmd_broker_sync", "cmd_mosquitto_config"]

log = logging.getLogger(__name__)


def add_commands(sub: Any) -> None:
    d = sub.add_parser("devices", help="device registry tools")
    dsub = d.add_subparsers(dest="devices_command", metavar="ACTION")
    dsub.required = True
    p = dsub.add_parser(
        "mosquitto-config",
        help="write Mosquitto password and ACL files for every registered device",
        description="Writes DIR/passwd, DIR/acl and DIR/new-credentials.csv (passwords "
        "generated in this run, mode 0600: give it to the installer, then delete it). "
        "Existing devices keep their password unless --rotate.",
    )
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--rotate", action="store_true", help="new passwords for every device")
    p.add_argument(
        "--ingest-user",
        help="username of the ingest workers "
        "(default: the user in CYL_MQTT_URL, else cylwatch-ingest)",
    )
    p.set_defaults(func=cmd_mosquitto_config)
    p = dsub.add_parser(
        "broker-sync",
        help="bring the broker's clients and roles in line with the device registry",
        description="Through the broker's dynamic-security plugin ([services] mqtt_admin_url;"
        ' docs/SECURITY.md "Broker"): every active device gets a client holding only its own'
        " role, inactive ones are disabled and disconnected, clients of devices no longer"
        " registered are deleted; the ingest client gets the ingest role and the admin client"
        " the platform role. Idempotent: run it after setting up the broker, after a broker"
        " outage, and from a timer. Passwords it sets go to DIR/new-credentials-<time>.csv"
        " (mode 0600: give it to the installer, then delete it).",
    )
    p.add_argument("--out", required=True, type=Path, help="directory of the installers' CSV")
    p.add_argument("--rotate", action="store_true", help="new passwords for every device")
    p.add_argument(
        "--ingest-user",
        help="username of the ingest workers "
        "(default: the user in CYL_MQTT_URL, else cylwatch-ingest)",
    )
    p.add_argument("--admin-url", help="override [services] mqtt_admin_url")
    p.set_defaults(func=cmd_broker_sync)


# ---------------------------------------------------------------------- credentials


async def audit_device_credentials(
    conn: Any, device_ids: list[str], rotate: bool, command: str = "devices mosquitto-config"
) -> None:
    """One audit row per device given a new MQTT password, in the transaction that stores
    it (docs/SECURITY.md "Audit log"): who ran the command, which device, never the password."""
    if not device_ids:
        return
    await conn.execute(
        "INSERT INTO audit_log (username, action, entity, entity_id, details)"
        " SELECT 'cli', 'device.credentials', 'device', d,"
        " jsonb_build_object('command', $4::text, 'rotate', $2::boolean,"
        " 'os_user', $3::text)"
        " FROM unnest($1::text[]) AS d",
        device_ids,
        rotate,
        getpass.getuser(),
        command,
    )


async def cmd_mosquitto_config(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.credentials import (
        DeviceCredential,
        is_safe_id,
        mosquitto_hash,
        new_password,
        write_files,
    )
    from ingest.transport import parse_mqtt_url
    from server.db.pool import connect

    address = parse_mqtt_url(settings.services.mqtt_url)
    ingest_user = args.ingest_user or address.username or "cylwatch-ingest"
    ingest_password = address.password if ingest_user == address.username else None
    generated_ingest = ingest_password is None
    if ingest_password is None:
        ingest_password = new_password()
    conn = await connect(settings)
    try:
        async with conn.transaction():
            rows = await conn.fetch(
                "SELECT id, device_id, kind, mqtt_password_hash FROM devices"
                " WHERE active ORDER BY device_id FOR UPDATE"
            )
            creds: list[DeviceCredential] = []
            skipped = []
            for r in rows:
                if not is_safe_id(r["device_id"]) or r["device_id"] == ingest_user:
                    skipped.append(r["device_id"])
                    continue
                if r["mqtt_password_hash"] and not args.rotate:
                    creds.append(
                        DeviceCredential(r["device_id"], r["kind"], r["mqtt_password_hash"])
                    )
                    continue
                password = new_password()
                hashed = mosquitto_hash(password)
                await conn.execute(
                    "UPDATE devices SET mqtt_password_hash = $2, updated_at = now() WHERE id = $1",
                    r["id"],
                    hashed,
                )
                creds.append(DeviceCredential(r["device_id"], r["kind"], hashed, password))
            await audit_device_credentials(
                conn, [c.device_id for c in creds if c.password is not None], args.rotate
            )
            paths = write_files(
                args.out,
                creds,
                ingest_user,
                mosquitto_hash(ingest_password),
                ingest_password if generated_ingest else None,
            )
    finally:
        await conn.close()
    fresh = sum(1 for c in creds if c.password is not None)
    print(
        f"wrote {paths['passwd']} and {paths['acl']} for {len(creds)} device(s);"
        f" {fresh} new password(s) in {paths['csv']} (mode 0600: hand it over, then delete)"
    )
    if skipped:
        print(
            f"skipped {len(skipped)} device id(s) unusable as MQTT usernames/topic levels:"
            f" {', '.join(skipped[:10])}",
            file=sys.stderr,
        )
    if generated_ingest:
        print(
            f"ingest user {ingest_user!r} got a new password (in the CSV): put it in"
            f" CYL_MQTT_URL as mqtt://{ingest_user}:<password>@host:port"
        )
    return 0


async def cmd_broker_sync(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.broker_sync import DeviceEntry, sync_broker
    from ingest.credentials import mosquitto_hash, write_installer_csv
    from ingest.dynsec import BrokerControl
    from ingest.transport import parse_mqtt_url
    from server.db.pool import connect

    admin_url = args.admin_url or settings.services.mqtt_admin_url
    if not admin_url:
        print(
            "cylwatch devices broker-sync: no admin client: set [services] mqtt_admin_url"
            " (CYL_SERVICES__MQTT_ADMIN_URL) or --admin-url",
            file=sys.stderr,
        )
        return 2
    address = parse_mqtt_url(settings.services.mqtt_url)
    ingest_user = args.ingest_user or address.username or "cylwatch-ingest"
    ingest_password = address.password if ingest_user == address.username else None
    conn = await connect(settings)
    try:
        rows = await conn.fetch("SELECT device_id, kind, active FROM devices ORDER BY device_id")
        devices = [DeviceEntry(r["device_id"], r["kind"], bool(r["active"])) for r in rows]
        async with BrokerControl(admin_url, settings.services.connect_timeout_s) as control:
            report = await sync_broker(
                control,
                devices,
                ingest_user=ingest_user,
                ingest_password=ingest_password,
                shared_group=settings.ingest.shared_group,
                admin_user=parse_mqtt_url(admin_url).username,
                rotate=args.rotate,
            )
        if report.passwords:
            # the file first: a password set on the broker but lost here locks a device out
            stamp = time.strftime("%Y%m%dT%H%M%S")
            args.out.mkdir(parents=True, exist_ok=True)
            csv_path = args.out / f"new-credentials-{stamp}.csv"
            write_installer_csv(csv_path, sorted(report.passwords.items()))
            # the same password's file-fallback hash, so both ways accept it
            await conn.executemany(
                "UPDATE devices SET mqtt_password_hash = $2, updated_at = now()"
                " WHERE device_id = $1",
                [(d, mosquitto_hash(pw)) for d, pw in report.passwords.items()],
            )
            await audit_device_credentials(
                conn, sorted(report.passwords), args.rotate, "devices broker-sync"
            )
            print(
                f"{len(report.passwords)} new password(s) in {csv_path}"
                " (mode 0600: hand it over, then delete)"
            )
    finally:
        await conn.close()
    for label, names in (
        ("created", report.created),
        ("enabled", report.enabled),
        ("disabled (and disconnected)", report.disabled),
        ("deleted", report.deleted),
        ("roles repaired", report.repaired),
    ):
        if names:
            print(
                f"{label}: {len(names)} ({', '.join(names[:10])}{', ...' if len(names) > 10 else ''})"
            )
    if ingest_user in report.passwords:
        print(
            f"ingest client {ingest_user!r} got a new password (in the CSV): put it in"
            f" CYL_MQTT_URL as mqtt://{ingest_user}:<password>@host:port"
        )
    if report.ingest_password_set:
        print(f"ingest client {ingest_user!r}: password set from CYL_MQTT_URL")
    if report.admin_changed:
        print("the admin client now holds only the platform role (control topic, no data)")
    if report.skipped:
        print(
            f"skipped {len(report.skipped)} device id(s) unusable as MQTT usernames/topic"
            f" levels: {', '.join(report.skipped[:10])}",
            file=sys.stderr,
        )
    print(f"broker in line with {len(devices)} registered device(s)")
    return 0
