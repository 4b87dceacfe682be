"""`cylwatch devices mosquitto-config` audits every device credential it changes: one row per
device given a new password, in the transaction that stores it, never the password itself."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from server.cli_devices import cmd_mosquitto_config
from tests.ingest.conftest import Env


async def test_new_device_passwords_are_audited(env: Env, tmp_path: Path) -> None:
    settings = env.with_mqtt("mqtt://cylwatch-ingest:ingest-pw@127.0.0.1:1")
    mark = await env.pool.fetchval("SELECT coalesce(max(id), 0) FROM audit_log")
    args = argparse.Namespace(out=tmp_path / "mq", rotate=True, ingest_user=None)
    assert await cmd_mosquitto_config(args, settings) == 0
    with (tmp_path / "mq" / "new-credentials.csv").open() as fh:
        issued = {row["device_id"]: row["password"] for row in csv.DictReader(fh)}
    rows = await env.pool.fetch(
        "SELECT username, action, entity, entity_id, details FROM audit_log"
        " WHERE id > $1 AND action = 'device.credentials' ORDER BY id",
        mark,
    )
    assert {r["entity_id"] for r in rows} == set(issued) - {"cylwatch-ingest"}
    assert all(r["username"] == "cli" and r["entity"] == "device" for r in rows)
    assert all(r["details"]["rotate"] is True and r["details"]["os_user"] for r in rows)
    text = str([dict(r) for r in rows])
    assert not any(password in text for password in issued.values())
    # regenerating without --rotate changes no credential: nothing audited
    mark = await env.pool.fetchval("SELECT max(id) FROM audit_log")
    args = argparse.Namespace(out=tmp_path / "mq2", rotate=False, ingest_user=None)
    assert await cmd_mosquitto_config(args, settings) == 0
    assert not await env.pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE id > $1 AND action = 'device.credentials'", mark
    )
